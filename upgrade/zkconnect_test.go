package upgrade

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/internal/kfaketest"
	"github.com/kupgrade/kupgrade/node"
)

// brokersNameZooKeeper makes the fake brokers report connect as their
// zookeeper.connect ("" for none, as in KRaft mode).
func brokersNameZooKeeper(c *kfake.Cluster, connect string) {
	c.ControlKey(int16(kmsg.DescribeConfigs), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kr.(*kmsg.DescribeConfigsRequest)
		resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
		for _, r := range req.Resources {
			rr := kmsg.NewDescribeConfigsResponseResource()
			rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
			if connect != "" {
				cfg := kmsg.NewDescribeConfigsResponseResourceConfig()
				cfg.Name, cfg.Value = "zookeeper.connect", kmsg.StringPtr(connect)
				rr.Configs = append(rr.Configs, cfg)
			}
			resp.Resources = append(resp.Resources, rr)
		}
		return resp, nil, true
	})
}

// TestZooKeeperConnect checks that the address ZooKeeperConnect names
// replaces the brokers' zookeeper.connect for the ZooKeeper probe and the
// migration's reads, only where the brokers name one, and that NewRunner and
// Inspect refuse an address with no server.
func TestZooKeeperConnect(t *testing.T) {
	const brokers, host = "zookeeper:2181/kt-1", "127.0.0.1:40123/kt-1"
	for _, tt := range []struct {
		name, brokers, override string
		wantServers             []string
		wantConnect             string
	}{
		{"brokers' address", brokers, "", []string{"zookeeper:2181"}, brokers},
		{"override", brokers, host, []string{"127.0.0.1:40123"}, host},
		{"KRaft: no ZooKeeper, override unused", "", host, nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, cl := kfaketest.New(t, kfake.NumBrokers(1))
			brokersNameZooKeeper(c, tt.brokers)
			opts := []RunnerOption{}
			if tt.override != "" {
				opts = append(opts, ZooKeeperConnect(tt.override))
			}
			r, err := NewRunner(cl, nopOrchestrator{}, opts...)
			if err != nil {
				t.Fatal(err)
			}
			ops := r.cfg.ops.(*liveOps)
			if diff := cmp.Diff(tt.wantServers, ops.zk.lookup(t.Context(), cl)); diff != "" {
				t.Errorf("the probe's servers (-want +got):\n%s", diff)
			}
			got, err := ops.zooKeeperConnect(t.Context())
			if err != nil || got != tt.wantConnect {
				t.Errorf("the migration's zookeeper.connect = %q, %v; want %q", got, err, tt.wantConnect)
			}
		})
	}
	_, cl := kfaketest.New(t, kfake.NumBrokers(1))
	for _, bad := range []string{"", "/chroot-only", " , "} {
		if _, err := NewRunner(cl, nopOrchestrator{}, ZooKeeperConnect(bad)); err == nil || !strings.Contains(err.Error(), "ZooKeeperConnect") {
			t.Errorf("NewRunner with ZooKeeperConnect(%q): error %v, want one naming the option", bad, err)
		}
		if _, err := Inspect(t.Context(), cl, ZooKeeperConnect(bad)); err == nil || !strings.Contains(err.Error(), "ZooKeeperConnect") {
			t.Errorf("Inspect with ZooKeeperConnect(%q): error %v, want one naming the option", bad, err)
		}
	}
}

// nopOrchestrator is an Orchestrator that is never asked anything.
type nopOrchestrator struct{}

func (nopOrchestrator) Nodes(ctx context.Context) ([]node.Node, error)              { return nil, nil }
func (nopOrchestrator) Restart(ctx context.Context, id int32, ch node.Change) error { return nil }
