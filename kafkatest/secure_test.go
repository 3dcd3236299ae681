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

// TestSecureClusterSmoke starts the smallest secured cluster of each mode
// and proves the three things Secure promises: TLS with the cluster's CA,
// SASL for PLAIN and SCRAM users, and an authorizer that denies what no ACL
// allows until Grant allows it.
func TestSecureClusterSmoke(t *testing.T) {
	for _, mode := range []struct {
		name string
		opts []kafkatest.Option
	}{
		{"KRaft", []kafkatest.Option{kafkatest.KRaft("3.9.2"), kafkatest.Combined(1), kafkatest.Brokers(1)}},
		{"ZooKeeper", []kafkatest.Option{kafkatest.ZooKeeper("3.9.2"), kafkatest.Brokers(2)}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			start := time.Now()
			c := kafkatest.Start(t, append(mode.opts,
				kafkatest.Secure(kafkatest.User{Name: "alice", Password: "alice-secret-1", Mechanism: kafkatest.SCRAMSHA512},
					kafkatest.User{Name: "bob", Password: "bob-secret-2", Mechanism: kafkatest.Plain}))...)
			t.Logf("secured cluster up in %v", time.Since(start))
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			for _, name := range []string{"alice", "bob"} {
				cl := c.UserClient(t, name)
				resp, err := kmsg.NewPtrListPartitionReassignmentsRequest().RequestWith(ctx, cl)
				if err != nil {
					t.Fatalf("%s: ListPartitionReassignments: %v", name, err)
				}
				if err := kerr.ErrorForCode(resp.ErrorCode); !errors.Is(err, kerr.ClusterAuthorizationFailed) {
					t.Errorf("%s without ACLs: ListPartitionReassignments error %v, want CLUSTER_AUTHORIZATION_FAILED", name, err)
				}
			}
			sec := c.Security()
			acl := kafkatest.Permission{Principal: "User:alice", Resource: kmsg.ACLResourceTypeCluster, Name: "kafka-cluster", Operation: kmsg.ACLOperationDescribe}
			if err := sec.Grant(ctx, c, acl); err != nil {
				t.Fatal(err)
			}
			resp, err := kmsg.NewPtrListPartitionReassignmentsRequest().RequestWith(ctx, c.UserClient(t, "alice"))
			if err != nil || resp.ErrorCode != 0 {
				t.Fatalf("alice with DESCRIBE on the cluster: %v, code %d", err, resp.ErrorCode)
			}
			wrong := kafkatest.User{Name: "alice", Password: "not-it", Mechanism: kafkatest.SCRAMSHA512}
			cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Addrs()...)}, sec.ClientOpts(wrong)...)...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			_, err = kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
			t.Logf("wrong password: %v", err)
			if !errors.Is(err, kerr.SaslAuthenticationFailed) {
				t.Errorf("wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
			}
		})
	}
}
