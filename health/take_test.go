package health_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/health"
)

// fake starts a 3-broker kfake cluster (nodes 0, 1, 2; controller 2) with
// topics orders (3 partitions, RF 3, min.insync.replicas 2) and logs (2
// partitions, RF 1), and a client for it.
func fake(t *testing.T, opts ...kfake.Opt) (*kfake.Cluster, *kgo.Client) {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(3)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, client(t, c)
}

// virtual is fake's cluster on a virtual network, for synctest bubbles:
// stalls, outages and back-offs there take no real time.
func virtual(t *testing.T) (*kfake.Cluster, *kgo.Client) {
	t.Helper()
	var vn kfake.VirtualNetwork
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.ListenFn(vn.Listen), kfake.Ports(9092, 9093, 9094))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, client(t, c, kgo.Dialer(vn.DialContext))
}

func client(t *testing.T, c *kfake.Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	ctx := t.Context()
	if _, err := adm.CreateTopic(ctx, 3, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "logs"); err != nil {
		t.Fatal(err)
	}
	return cl
}

func TestTake(t *testing.T) {
	t.Parallel()
	_, cl := fake(t)
	s, err := health.Take(t.Context(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if got := brokerIDs(s); !slices.Equal(got, []int32{0, 1, 2}) || s.Controller != 2 || !s.FencingKnown {
		t.Errorf("brokers %v, controller %d, fencing known %v; want [0 1 2], 2, true", got, s.Controller, s.FencingKnown)
	}
	if s.TakenAt.IsZero() {
		t.Error("TakenAt not set")
	}
	var names []string
	for _, tp := range s.Topics {
		names = append(names, tp.Name)
	}
	if !slices.Equal(names, []string{"logs", "orders"}) {
		t.Fatalf("topics %v, want [logs orders] (sorted)", names)
	}
	logs, orders := s.Topics[0], s.Topics[1]
	if orders.MinISR != 2 || orders.MinISRSource != compat.SourceTopic {
		t.Errorf("orders min ISR %d from %q, want 2 from topic", orders.MinISR, orders.MinISRSource)
	}
	if logs.MinISR != 1 || logs.MinISRSource != compat.SourceDefault {
		t.Errorf("logs min ISR %d from %q, want 1 from default", logs.MinISR, logs.MinISRSource)
	}
	for _, tp := range s.Topics {
		if tp.ID.IsZero() {
			t.Errorf("%s has no topic id", tp.Name)
		}
		for i, p := range tp.Partitions {
			if p.Partition != int32(i) || p.Leader < 0 || !slices.Equal(p.ISR, p.Replicas) {
				t.Errorf("%s: partition %+v at position %d", tp.Name, p, i)
			}
		}
	}
	c := s.Counts()
	if c.Partitions != 5 || c.Replicas != 11 || c.UnderReplicated != 0 || c.Offline != 0 {
		t.Errorf("Counts = %v", c)
	}
	// The snapshot is indexed and judges as expected: with RF 3 and min 2,
	// one node may go, and logs (RF 1) blocks its holders.
	v := health.CanRestart(s, 0)
	for _, r := range v.Reasons {
		if r.Topic != "logs" || r.Rule != health.RuleGoesOffline {
			t.Errorf("unexpected reason %v", r)
		}
	}
}

func TestTakeBrokerDefault(t *testing.T) {
	t.Parallel()
	_, cl := fake(t)
	adm := kadm.NewClient(cl)
	if _, err := adm.AlterBrokerConfigs(t.Context(), []kadm.AlterConfig{{Name: "min.insync.replicas", Value: kadm.StringPtr("3")}}, 0); err != nil {
		t.Fatal(err)
	}
	s, err := health.Take(t.Context(), cl)
	if err != nil {
		t.Fatal(err)
	}
	logs, _ := s.Topic("logs")
	orders, _ := s.Topic("orders")
	if logs.MinISR != 3 || logs.MinISRSource != compat.SourceBroker {
		t.Errorf("logs min ISR %d from %q, want 3 from the broker default", logs.MinISR, logs.MinISRSource)
	}
	if orders.MinISR != 2 || orders.MinISRSource != compat.SourceTopic {
		t.Errorf("orders min ISR %d from %q, want the topic override 2", orders.MinISR, orders.MinISRSource)
	}
}

func TestTakeUnreadableMinISR(t *testing.T) {
	t.Parallel()
	c, cl := fake(t)
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.DescribeConfigs}, Resource: "orders", Err: kerr.TopicAuthorizationFailed, Count: -1})
	s, err := health.Take(t.Context(), cl, health.ConfigBatch(1))
	if err != nil {
		t.Fatal(err)
	}
	orders, _ := s.Topic("orders")
	if orders.MinISRSource != compat.SourceUnknown || !strings.Contains(orders.MinISRError, "TOPIC_AUTHORIZATION_FAILED") {
		t.Errorf("orders min ISR from %q (%q), want unknown with the error", orders.MinISRSource, orders.MinISRError)
	}
	if logs, _ := s.Topic("logs"); logs.MinISRSource != compat.SourceDefault {
		t.Errorf("logs min ISR from %q, want default: one topic's failure is its own", logs.MinISRSource)
	}
	if v := health.CanRestart(s, 0); v.Rules()[health.RuleMinISRUnknown] != 3 {
		t.Errorf("want every orders partition blocked as min-isr-unknown: %v", v)
	}
}

// TestTakeIsFresh removes a broker and checks that the very next snapshot
// shows it gone, where kadm's cached metadata may not.
func TestTakeIsFresh(t *testing.T) {
	t.Parallel()
	c, cl := fake(t)
	if _, err := health.Take(t.Context(), cl); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveNode(1); err != nil {
		t.Fatal(err)
	}
	s, err := health.Take(t.Context(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if got := brokerIDs(s); !slices.Equal(got, []int32{0, 2}) {
		t.Errorf("brokers %v right after removing node 1, want [0 2]", got)
	}
	if v := health.CaughtUp(s, 1); v.OK || v.Reasons[0].Rule != health.RuleNodeDown {
		t.Errorf("CaughtUp(1) = %v, want node-down", v)
	}
}

func TestTakeOptionsValidated(t *testing.T) {
	t.Parallel()
	for _, o := range []health.TakeOption{health.TakeTimeout(0), health.ConfigBatch(0)} {
		if _, err := health.Take(t.Context(), nil, o); err == nil {
			t.Errorf("Take with %v: no error", o)
		}
		if _, err := health.Until(t.Context(), nil, nil, time.Minute, o); err == nil {
			t.Errorf("Until with %v: no error", o)
		}
	}
}

func TestTakeGivesUpWithCause(t *testing.T) {
	t.Parallel()
	c, cl := fake(t)
	c.Close() // nothing answers any more
	_, err := health.Take(t.Context(), cl, health.TakeTimeout(300*time.Millisecond))
	if err == nil || !strings.Contains(err.Error(), "health: snapshot not taken within 300ms") {
		t.Errorf("Take = %v, want the timeout cause", err)
	}
}

// TestUntilCaughtUp restarts a node on a virtual network, in a synctest
// bubble: the 30s outage and the back-off take no real time.
func TestUntilCaughtUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, cl := virtual(t)
		ctx := t.Context()
		if err := c.RemoveNode(1); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		go func() {
			time.Sleep(30 * time.Second)
			if _, _, err := c.AddNode(1, 9093); err != nil {
				t.Error(err)
			}
		}()
		s, err := health.Until(ctx, cl, func(s health.Snapshot) health.Verdict { return health.CaughtUp(s, 1) },
			5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited < 30*time.Second || waited > 40*time.Second {
			t.Errorf("caught up after %v, want soon after the 30s outage", waited)
		}
		if !s.Up(1) {
			t.Errorf("returned snapshot does not show node 1 up: %v", brokerIDs(s))
		}

		// And a node that never comes back: the error carries the last verdict.
		if err := c.RemoveNode(2); err != nil {
			t.Fatal(err)
		}
		_, err = health.Until(ctx, cl, func(s health.Snapshot) health.Verdict { return health.CaughtUp(s, 2) },
			time.Minute)
		if !errors.Is(err, health.ErrTimeout) || !errors.Is(err, health.ErrNotCaughtUp) {
			t.Errorf("Until = %v, want a timeout with the not-caught-up reason", err)
		}
		cl.Close()
	})
}

// TestTakeHedgesAHungBroker stalls every read on one broker, as a paused or
// partitioned broker does: it accepts requests and answers none until the
// client's timeout (10s). Take asks another broker after a second instead, so
// it stays quick. In a synctest bubble, the stalls take no real time.
func TestTakeHedgesAHungBroker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, cl := virtual(t)
		release := make(chan struct{})
		for _, k := range []kmsg.Key{kmsg.Metadata, kmsg.DescribeCluster, kmsg.DescribeConfigs} {
			c.ControlKey(int16(k), func(kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				if c.CurrentNode() == 1 {
					c.SleepControl(func() { <-release })
				}
				return nil, nil, false
			})
		}
		for range 6 { // the client's routing reaches node 1 at least once
			start := time.Now()
			s, err := health.Take(t.Context(), cl)
			if err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("Take took %v with one broker hung, want at most 2s", took)
			}
			if orders, _ := s.Topic("orders"); orders.MinISR != 2 || !slices.Equal(brokerIDs(s), []int32{0, 1, 2}) {
				t.Errorf("snapshot: brokers %v, orders min ISR %d", brokerIDs(s), orders.MinISR)
			}
		}
		close(release)
		cl.Close()
	})
}

func brokerIDs(s health.Snapshot) []int32 {
	var ids []int32
	for _, b := range s.Brokers {
		ids = append(ids, b.ID)
	}
	return ids
}
