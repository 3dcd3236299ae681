package kafkatest

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/node"
)

func TestSecureRefusesBadUsers(t *testing.T) {
	for _, u := range []User{
		{Name: "", Password: "p", Mechanism: Plain},
		{Name: "admin", Password: "p", Mechanism: Plain},
		{Name: "a b", Password: "p", Mechanism: Plain},
		{Name: "x", Password: `a"b`, Mechanism: SCRAMSHA512},
		{Name: "x", Password: "", Mechanism: SCRAMSHA512},
		{Name: "x", Password: "p", Mechanism: "SCRAM-SHA-256"},
	} {
		if _, err := newSecurity(compat.ModeKRaft, &secureConfig{users: []User{u}}); err == nil {
			t.Errorf("user %+v accepted", u)
		} else if u.Password != "" && strings.Contains(err.Error(), u.Password) && len(u.Password) > 1 {
			t.Errorf("error quotes the password: %v", err)
		}
	}
}

// TestNodeCertificates checks the certificates kafkatest hands to Kafka:
// each node's chain verifies against the CA for 127.0.0.1, and its key is a
// PKCS#8 key of the certificate.
func TestNodeCertificates(t *testing.T) {
	s, err := newSecurity(compat.ModeKRaft, &secureConfig{})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CAPEM()) {
		t.Fatal("CA PEM does not parse")
	}
	for _, id := range []int32{1, 2} {
		chain, key, err := s.nodeCert(id)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := pem.Decode([]byte(chain))
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1"}); err != nil {
			t.Errorf("node %d certificate does not verify for 127.0.0.1: %v", id, err)
		}
		kb, _ := pem.Decode([]byte(key))
		if kb == nil || kb.Type != "PRIVATE KEY" {
			t.Fatalf("node %d key is not a PKCS#8 PEM block", id)
		}
		if _, err := x509.ParsePKCS8PrivateKey(kb.Bytes); err != nil {
			t.Errorf("node %d key: %v", id, err)
		}
		again, _, _ := s.nodeCert(id)
		if again != chain {
			t.Errorf("node %d got a second certificate", id)
		}
		found := false
		for _, sec := range s.Secrets() {
			found = found || sec == key
		}
		if !found {
			t.Errorf("Secrets does not list node %d's key", id)
		}
	}
}

// TestSecureConfig checks the listener, SASL and authorizer keys of a
// KRaft combined node and a ZooKeeper broker.
func TestSecureConfig(t *testing.T) {
	pick := func(cfg map[string]string, keys ...string) map[string]string {
		out := map[string]string{}
		for _, k := range keys {
			out[k] = cfg[k]
		}
		return out
	}
	keys := []string{"listeners", "listener.security.protocol.map", "inter.broker.listener.name", "security.inter.broker.protocol",
		"sasl.enabled.mechanisms", "sasl.mechanism.inter.broker.protocol", "sasl.mechanism.controller.protocol",
		"authorizer.class.name", "super.users", "ssl.keystore.type", "ssl.truststore.type"}
	for _, tt := range []struct {
		mode compat.Mode
		want map[string]string
	}{
		{compat.ModeKRaft, map[string]string{
			"listeners":                            "SASL_SSL://127.0.0.1:9001,CONTROLLER://127.0.0.1:9002",
			"listener.security.protocol.map":       "CONTROLLER:SASL_SSL,SASL_SSL:SASL_SSL",
			"inter.broker.listener.name":           "SASL_SSL",
			"security.inter.broker.protocol":       "",
			"sasl.enabled.mechanisms":              "PLAIN,SCRAM-SHA-512",
			"sasl.mechanism.inter.broker.protocol": "PLAIN",
			"sasl.mechanism.controller.protocol":   "PLAIN",
			"authorizer.class.name":                "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
			"super.users":                          "User:broker;User:admin",
			"ssl.keystore.type":                    "PEM",
			"ssl.truststore.type":                  "PEM",
		}},
		{compat.ModeZooKeeper, map[string]string{
			"listeners":                            "SASL_SSL://127.0.0.1:9001",
			"listener.security.protocol.map":       "",
			"inter.broker.listener.name":           "",
			"security.inter.broker.protocol":       "SASL_SSL",
			"sasl.enabled.mechanisms":              "PLAIN,SCRAM-SHA-512",
			"sasl.mechanism.inter.broker.protocol": "PLAIN",
			"sasl.mechanism.controller.protocol":   "",
			"authorizer.class.name":                "kafka.security.authorizer.AclAuthorizer",
			"super.users":                          "User:broker;User:admin",
			"ssl.keystore.type":                    "PEM",
			"ssl.truststore.type":                  "PEM",
		}},
	} {
		t.Run(tt.mode.String(), func(t *testing.T) {
			s, err := newSecurity(tt.mode, &secureConfig{users: []User{{Name: "bob", Password: "bob-pw", Mechanism: Plain}}})
			if err != nil {
				t.Fatal(err)
			}
			c := &Cluster{cfg: config{mode: tt.mode}, security: s}
			n := &Process{c: c, id: 1, roles: []node.Role{node.RoleBroker}, brokerPort: 9001}
			if tt.mode == compat.ModeKRaft {
				n.roles, n.controllerPort = []node.Role{node.RoleBroker, node.RoleController}, 9002
			}
			cfg := map[string]string{}
			c.applySecurity(n, cfg)
			got := pick(cfg, keys...)
			for k, v := range got {
				if v == "" {
					delete(got, k)
				}
			}
			for k, v := range tt.want {
				if v == "" {
					delete(tt.want, k)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
			jaas := cfg["listener.name.sasl_ssl.plain.sasl.jaas.config"]
			if !strings.Contains(jaas, `user_bob="bob-pw"`) || !strings.Contains(jaas, `username="broker"`) {
				t.Errorf("PLAIN JAAS lacks bob or the broker's own login: %s", jaas)
			}
			if tt.mode == compat.ModeKRaft && cfg["listener.name.controller.plain.sasl.jaas.config"] != jaas {
				t.Error("the controller listener has no PLAIN JAAS (brokers log in to the controllers with it)")
			}
		})
	}
}
