package kafkatest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/kafkatest"
)

// TestContainersSecure runs a secured KRaft node (Secure: SASL_SSL on
// every listener, the authorizer) in a container: the same generated
// config carries the inline PEM stores and JAAS, so a SCRAM user created
// once the node runs is denied what no ACL allows, allowed it after Grant,
// and a wrong password is refused. It runs with host networking and with
// bridge networking (where every listener, the aliases' too, is SASL_SSL and
// the certificates name the aliases).
func TestContainersSecure(t *testing.T) {
	t.Run("host", func(t *testing.T) { testContainersSecure(t, kafkatest.LocalContainers(t, kraftOld), false) })
	t.Run("bridge", func(t *testing.T) { testContainersSecure(t, kafkatest.LocalBridgeContainers(t, kraftOld), true) })
}

func testContainersSecure(t *testing.T, opt kafkatest.Option, bridge bool) {
	start := time.Now()
	c := kafkatest.Start(t, kafkatest.KRaft(kraftOld), kafkatest.Combined(1), opt,
		kafkatest.Secure(kafkatest.User{Name: "alice", Password: "alice-secret-1", Mechanism: kafkatest.SCRAMSHA512}))
	t.Logf("a secured combined node of %s ready in a container in %v", kraftOld, time.Since(start).Round(time.Millisecond))
	n := c.Node(1)
	want := "SASL_SSL://" + n.Addr() + ",CONTROLLER://" + n.ControllerAddr()
	if bridge {
		want = "SASL_SSL://:" + n.Addr()[len("127.0.0.1:"):] + ",INTERNAL://node-1:9092,CONTROLLER://node-1:9093,CONTROLLER_HOST://:" + n.ControllerAddr()[len("127.0.0.1:"):]
		if got, want := n.Config()["listener.security.protocol.map"], "CONTROLLER:SASL_SSL,CONTROLLER_HOST:SASL_SSL,SASL_SSL:SASL_SSL,INTERNAL:SASL_SSL"; got != want {
			t.Errorf("listener.security.protocol.map %q, want %q", got, want)
		}
	}
	if got := n.Config()["listeners"]; got != want {
		t.Errorf("listeners %q, want %q", got, want)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	resp, err := kmsg.NewPtrListPartitionReassignmentsRequest().RequestWith(ctx, c.UserClient(t, "alice"))
	if err != nil {
		t.Fatalf("alice: ListPartitionReassignments: %v", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Errorf("alice without ACLs: ListPartitionReassignments error %v, want CLUSTER_AUTHORIZATION_FAILED", err)
	}
	acl := kafkatest.Permission{Principal: "User:alice", Resource: kmsg.ACLResourceTypeCluster, Name: "kafka-cluster", Operation: kmsg.ACLOperationDescribe}
	if err := c.Security().Grant(ctx, c, acl); err != nil {
		t.Fatal(err)
	}
	resp, err = kmsg.NewPtrListPartitionReassignmentsRequest().RequestWith(ctx, c.UserClient(t, "alice"))
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("alice with DESCRIBE on the cluster: %v, code %d", err, resp.ErrorCode)
	}

	wrong := kafkatest.User{Name: "alice", Password: "not-it", Mechanism: kafkatest.SCRAMSHA512}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Addrs()...)}, c.Security().ClientOpts(wrong)...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Errorf("wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
	}
	// Plaintext on the SASL_SSL port gets no answer.
	plain, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.RequestRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	defer pcancel()
	if _, err := kmsg.NewPtrMetadataRequest().RequestWith(pctx, plain); err == nil {
		t.Error("a plaintext client without SASL got metadata from the SASL_SSL listener")
	}
}
