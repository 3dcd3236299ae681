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
// and a wrong password is refused.
func TestContainersSecure(t *testing.T) {
	opt := kafkatest.LocalContainers(t, kraftOld)
	start := time.Now()
	c := kafkatest.Start(t, kafkatest.KRaft(kraftOld), kafkatest.Combined(1), opt,
		kafkatest.Secure(kafkatest.User{Name: "alice", Password: "alice-secret-1", Mechanism: kafkatest.SCRAMSHA512}))
	t.Logf("a secured combined node of %s ready in a container in %v", kraftOld, time.Since(start).Round(time.Millisecond))
	if got := c.Node(1).Config()["listeners"]; got != "SASL_SSL://"+c.Node(1).Addr()+",CONTROLLER://"+c.Node(1).ControllerAddr() {
		t.Errorf("listeners %q, want SASL_SSL and CONTROLLER only", got)
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
