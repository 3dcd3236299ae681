package node_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kupgrade/kupgrade/node"
)

func TestSecretKey(t *testing.T) {
	for _, tt := range []struct {
		key  string
		want bool
	}{
		{"sasl.jaas.config", true},
		{"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config", true},
		{"ssl.keystore.password", true},
		{"ssl.key.password", true},
		{"ssl.truststore.password", true},
		{"SSL.KEYSTORE.PASSWORD", true},
		{"ssl.keystore.key", true},
		{"password.encoder.secret", true},
		{"password.encoder.old.secret", true},
		{"delegation.token.secret.key", true},
		{"sasl.oauthbearer.client.credentials.client.secret", true},
		{"inter.broker.protocol.version", false},
		{"log.message.format.version", false},
		{"ssl.keystore.location", false},
		{"ssl.keymanager.algorithm", false},
		{"sasl.mechanism.inter.broker.protocol", false},
		{"broker.rack", false},
	} {
		if got := node.SecretKey(tt.key); got != tt.want {
			t.Errorf("SecretKey(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
}

// TestChangeRendersRedacted proves that every way a Change is rendered
// (String, %v, %+v, %#v, slog text and JSON) hides secret values, and that
// the Change itself, what the Orchestrator receives, keeps them.
func TestChangeRendersRedacted(t *testing.T) {
	const secret = `org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="hunter2";`
	ch := node.Change{Version: "4.1.2", Set: map[string]string{
		"sasl.jaas.config":              secret,
		"ssl.keystore.password":         "hunter3",
		"inter.broker.protocol.version": "3.9",
	}, Unset: []string{"ssl.key.password"}}
	want := "version=4.1.2 set[inter.broker.protocol.version=3.9 sasl.jaas.config=REDACTED ssl.keystore.password=REDACTED] unset[ssl.key.password]"
	if diff := cmp.Diff(want, ch.String()); diff != "" {
		t.Errorf("String (-want +got):\n%s", diff)
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("restart", "change", ch)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("restart", "change", ch)
	rendered := map[string]string{
		"%v":              fmt.Sprintf("%v", ch),
		"%+v":             fmt.Sprintf("%+v", ch),
		"%#v":             fmt.Sprintf("%#v", ch),
		"%s":              fmt.Sprintf("[%s]", ch),
		"%v of a pointer": fmt.Sprintf("%v", &ch),
		"error":           fmt.Errorf("restart node 4 (%v): boom", ch).Error(),
		"slog":            logs.String(),
	}
	for how, s := range rendered {
		if strings.Contains(s, "hunter") {
			t.Errorf("%s renders a secret: %s", how, s)
		}
		if !strings.Contains(s, "3.9") {
			t.Errorf("%s hides what is not secret: %s", how, s)
		}
	}
	if !strings.HasPrefix(rendered["%#v"], "node.Change{") {
		t.Errorf("%%#v = %s, want Go syntax of a node.Change", rendered["%#v"])
	}
	if ch.Set["sasl.jaas.config"] != secret || ch.Set["ssl.keystore.password"] != "hunter3" {
		t.Error("rendering changed the Change itself: the Orchestrator must get the real values")
	}
	if r := ch.Redacted(); r.Set["sasl.jaas.config"] != node.Redacted || ch.Set["sasl.jaas.config"] != secret {
		t.Errorf("Redacted() = %v, and must leave the original alone", r.Set)
	}
}

func TestSpecRendersRedacted(t *testing.T) {
	s := node.Spec{Version: "4.1.2", Roles: []node.Role{node.RoleBroker}, Rack: "a",
		Config: map[string]string{"sasl.jaas.config": "secret-jaas", "num.io.threads": "8"}}
	want := "4.1.2 broker rack=a [num.io.threads=8 sasl.jaas.config=REDACTED]"
	if diff := cmp.Diff(want, s.String()); diff != "" {
		t.Errorf("String (-want +got):\n%s", diff)
	}
	for _, r := range []string{fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s)} {
		if strings.Contains(r, "secret-jaas") || !strings.Contains(r, "num.io.threads") {
			t.Errorf("rendered %s", r)
		}
	}
	if s.Config["sasl.jaas.config"] != "secret-jaas" {
		t.Error("rendering changed the Spec")
	}
}
