package kafkatest

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kupgrade/kupgrade/node"
)

func TestOptionsValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts []Option
		want string // "" = valid
	}{
		{"no mode", nil, "no mode"},
		{"zk", []Option{ZooKeeper("3.6.2")}, ""},
		{"zk 4.x", []Option{ZooKeeper("4.0.0")}, "no ZooKeeper mode"},
		{"zk with controllers", []Option{ZooKeeper("3.9.1"), Controllers(3)}, "KRaft options"},
		{"zk with metadata version", []Option{ZooKeeper("3.9.1"), FormatMetadataVersion("3.8")}, "KRaft option"},
		{"kraft 3.6", []Option{KRaft("3.6.2")}, "3.7.0 or newer"},
		{"kraft", []Option{KRaft("3.9.1")}, ""},
		{"kraft combined", []Option{KRaft("4.1.1"), Combined(3)}, ""},
		{"kraft no brokers", []Option{KRaft("4.1.1"), Brokers(0)}, "at least one broker"},
		{"kraft no controllers", []Option{KRaft("4.1.1"), Controllers(0)}, "at least one controller"},
		{"malformed", []Option{KRaft("4.1")}, `malformed Kafka release "4.1"`},
		{"tiny heap", []Option{KRaft("4.1.1"), HeapMB(64)}, "too small"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := defaultConfig()
			for _, o := range tt.opts {
				o.apply(&cfg)
			}
			err := cfg.finish()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("finish() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("finish() = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestLayout(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts []Option
		want []string // roles per node id 1..n
	}{
		{"kraft default", []Option{KRaft("3.9.1")}, []string{"controller", "controller", "controller", "broker", "broker", "broker"}},
		{"combined", []Option{KRaft("3.9.1"), Combined(3)}, []string{"broker,controller", "broker,controller", "broker,controller"}},
		{"combined plus broker", []Option{KRaft("3.9.1"), Combined(1), Brokers(1)}, []string{"broker,controller", "broker"}},
		{"zk", []Option{ZooKeeper("3.9.1"), Brokers(2)}, []string{"broker", "broker"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := testCluster(t, tt.opts...)
			var got []string
			for _, n := range c.nodes {
				got = append(got, joinRoles(n.roles))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("roles (-want +got):\n%s", diff)
			}
		})
	}
}

// testCluster lays out a cluster without starting anything.
func testCluster(t *testing.T, opts ...Option) *Cluster {
	t.Helper()
	cfg := defaultConfig()
	for _, o := range append([]Option{Dir(t.TempDir())}, opts...) {
		o.apply(&cfg)
	}
	if err := cfg.finish(); err != nil {
		t.Fatal(err)
	}
	c := &Cluster{cfg: cfg, name: "kt-test", dists: map[string]*Distribution{}}
	if err := c.setUp(&Distribution{Release: cfg.release}); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNodeConfigFollowsChanges(t *testing.T) {
	c := testCluster(t, KRaft("3.9.1"), Racks("a", "b"), BrokerConfig(map[string]string{"num.partitions": "4"}),
		NodeConfig(5, map[string]string{"num.io.threads": "3"}))
	n := c.Node(5)
	cfg := n.Config()
	want := map[string]string{"process.roles": "broker", "node.id": "5", "broker.rack": "b", "num.partitions": "4", "num.io.threads": "3"}
	for k, v := range want {
		if cfg[k] != v {
			t.Errorf("node 5 %s = %q, want %q", k, cfg[k], v)
		}
	}
	if !strings.HasPrefix(cfg["controller.quorum.voters"], "1@127.0.0.1:") || strings.Count(cfg["controller.quorum.voters"], "@") != 3 {
		t.Errorf("voters = %q, want three controllers", cfg["controller.quorum.voters"])
	}
	if _, ok := cfg["share.coordinator.state.topic.replication.factor"]; ok {
		t.Error("3.9 config has a 4.x-only key")
	}
	n.apply(&Distribution{Release: "4.1.1"}, node.Change{Set: map[string]string{"x.y": "1"}, Unset: []string{"num.partitions", "num.io.threads"}})
	cfg = n.Config()
	if cfg["x.y"] != "1" || cfg["num.partitions"] != "" || cfg["num.io.threads"] != "" {
		t.Errorf("after change: x.y=%q num.partitions=%q num.io.threads=%q", cfg["x.y"], cfg["num.partitions"], cfg["num.io.threads"])
	}
	if cfg["share.coordinator.state.topic.replication.factor"] != "3" {
		t.Error("4.1 config lacks the share coordinator's replication factor")
	}
	if n.Release() != "4.1.1" {
		t.Errorf("release %q", n.Release())
	}
	// A key unset can be set again.
	n.apply(nil, node.Change{Set: map[string]string{"num.io.threads": "5"}})
	if got := n.Config()["num.io.threads"]; got != "5" {
		t.Errorf("num.io.threads = %q after set again", got)
	}
	if c.Node(1).Config()["broker.rack"] != "" {
		t.Error("a controller got a rack")
	}
}

func TestZooKeeperConfig(t *testing.T) {
	c := testCluster(t, ZooKeeper("3.6.2"), Brokers(2))
	cfg := c.Node(2).Config()
	for _, k := range []string{"process.roles", "node.id", "controller.quorum.voters", "controller.listener.names"} {
		if _, ok := cfg[k]; ok {
			t.Errorf("ZooKeeper-mode broker has KRaft key %s", k)
		}
	}
	if cfg["broker.id"] != "2" || !strings.HasSuffix(cfg["zookeeper.connect"], "/kt-test") || cfg["offsets.topic.replication.factor"] != "2" {
		t.Errorf("config = %v", cfg)
	}
}

func TestClusterIDNeverLooksLikeAnOption(t *testing.T) {
	for range 5000 {
		if id := newClusterID(); len(id) != 22 || id[0] == '-' {
			t.Fatalf("cluster id %q", id)
		}
	}
}

// TestRequireForAcceptsEveryOption: Start looks at its options before the
// cluster exists (does it need a JDK and Maven?); options that write into the
// config's maps must find them made.
func TestRequireForAcceptsEveryOption(t *testing.T) {
	requireFor(t, []Option{NodeConfig(1, map[string]string{"a": "b"}), BrokerConfig(map[string]string{"c": "d"}), Containers()})
}
