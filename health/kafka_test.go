package health_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/health"
	"github.com/kupgrade/kupgrade/internal/hedge"
	"github.com/kupgrade/kupgrade/internal/poll"
	"github.com/kupgrade/kupgrade/kafkatest"
)

// The tests in this file run the package against real Kafka: JVM brokers
// started by kafkatest (they skip with -short). One cluster per flavour is
// shared by its subtests, which run in order and each start from a settled
// cluster (every broker up, every replica in sync).

// A flavour is one kind of real cluster.
type flavour struct {
	name string
	opts []kafkatest.Option
	// fencing: Take learns which brokers are fenced from DescribeCluster v2
	// (KRaft, Kafka 4.0 and later); elsewhere a down broker is just absent.
	fencing bool
	// elr: eligible leader replicas (KIP-966) are on, as in new clusters
	// from Kafka 4.1. The controller then copies its static
	// min.insync.replicas into a cluster-wide dynamic config
	// (ConfigurationControlManager.maybeGenerateElrSafetyRecords), refuses
	// per-broker values and refuses to delete the cluster-wide one.
	elr bool
}

var flavours = []flavour{
	{name: "kraft-3.9.2", opts: []kafkatest.Option{kafkatest.KRaft("3.9.2"), kafkatest.Combined(3)}},
	{name: "kraft-4.1.2", opts: []kafkatest.Option{kafkatest.KRaft("4.1.2"), kafkatest.Combined(3)}, fencing: true, elr: true},
	{name: "zookeeper-3.9.2", opts: []kafkatest.Option{kafkatest.ZooKeeper("3.9.2"), kafkatest.Brokers(3)}},
}

// staticSource is where a topic without an override gets the static
// min.insync.replicas from, as DescribeConfigs says.
func (f flavour) staticSource() compat.ConfigSource {
	if f.elr {
		return compat.SourceCluster
	}
	return compat.SourceStatic
}

// Every broker gets min.insync.replicas=2 in server.properties, so that
// topics without an override show the static source.
const staticMinISR = 2

// Topics every flavour creates.
const (
	orders  = "orders"  // 3 partitions, RF 3, min.insync.replicas 2 (topic override)
	relaxed = "relaxed" // 3 partitions, RF 3, min.insync.replicas 1 (topic override)
	single  = "single"  // 3 partitions, RF 1: one on each broker
	plain   = "plain"   // 1 partition, RF 3, no override
)

func TestRealKafka(t *testing.T) {
	for _, f := range flavours {
		t.Run(f.name, func(t *testing.T) {
			opts := append(slices.Clone(f.opts), kafkatest.BrokerConfig(map[string]string{
				"min.insync.replicas": fmt.Sprint(staticMinISR),
				// Leadership moves back only when a test elects it.
				"auto.leader.rebalance.enable": "false",
			}))
			start := time.Now()
			c := kafkatest.Start(t, opts...)
			r := &realCluster{c: c, cl: c.Client(t), f: f}
			for _, tc := range []struct {
				name       string
				partitions int32
				rf         int16
				minISR     string
			}{
				{orders, 3, 3, "2"},
				{relaxed, 3, 3, "1"},
				{single, 3, 1, ""},
				{plain, 1, 3, ""},
			} {
				var cfg map[string]string
				if tc.minISR != "" {
					cfg = map[string]string{"min.insync.replicas": tc.minISR}
				}
				if err := c.CreateTopic(t.Context(), tc.name, tc.partitions, tc.rf, cfg); err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("cluster up with topics in %v", time.Since(start).Round(time.Millisecond))
			t.Run("take", r.take)
			t.Run("min-isr-sources", r.minISRSources)
			t.Run("canary", r.canary)
			t.Run("kill", r.kill)
			t.Run("elect-preferred", r.electPreferred)
			t.Run("pause", r.pause)
			t.Run("take-timing", r.takeTiming)
		})
	}
}

// A realCluster is a running cluster of one flavour and a client for it.
type realCluster struct {
	c  *kafkatest.Cluster
	cl *kgo.Client
	f  flavour
}

// brokers returns the ids of the broker-role nodes.
func (r *realCluster) brokers() []int32 {
	var ids []int32
	for _, n := range r.c.Brokers() {
		ids = append(ids, n.ID())
	}
	return ids
}

// quick is the back-off of the tests' waits, as health.Until's: checks close
// together, so that the times they report are accurate to about a second.
func quick(timeout time.Duration) poll.Policy {
	return poll.Policy{Initial: 200 * time.Millisecond, Max: time.Second, Timeout: timeout}
}

// settled waits until every broker has caught up and returns the snapshot
// that shows it.
func (r *realCluster) settled(t *testing.T) health.Snapshot {
	t.Helper()
	s, err := health.Until(t.Context(), r.cl, func(s health.Snapshot) health.Verdict {
		for _, id := range r.brokers() {
			if v := health.CaughtUp(s, id); !v.OK {
				return v
			}
		}
		return health.Verdict{Kind: health.KindCaughtUp, OK: true}
	}, 3*time.Minute)
	if err != nil {
		t.Fatalf("cluster not settled: %v", err)
	}
	return s
}

// waitSnapshot takes snapshots until ok accepts one, and returns it with the
// time waited.
func (r *realCluster) waitSnapshot(t *testing.T, within time.Duration, what string, ok func(health.Snapshot) error) (health.Snapshot, time.Duration) {
	t.Helper()
	var last health.Snapshot
	start := time.Now()
	err := poll.Wait(t.Context(), func(ctx context.Context) error {
		s, err := health.Take(ctx, r.cl)
		if err != nil {
			return err
		}
		last = s
		return ok(s)
	}, quick(within))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return last, time.Since(start)
}

// revive brings a paused, killed or stopped node back, for cleanups after a
// test that failed halfway.
func (r *realCluster) revive(t *testing.T, id int32) {
	n := r.c.Node(id)
	switch n.Status() {
	case kafkatest.Paused:
		if err := n.Resume(); err != nil {
			t.Errorf("resume node %d: %v", id, err)
		}
	case kafkatest.Killed, kafkatest.Stopped, kafkatest.Exited:
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := r.c.StartNode(ctx, id); err != nil {
			t.Errorf("start node %d again: %v", id, err)
		}
	}
}

// only returns s with just the named topics, indexed.
func only(s health.Snapshot, names ...string) health.Snapshot {
	out := s
	out.Topics = nil
	for _, tp := range s.Topics {
		if slices.Contains(names, tp.Name) {
			out.Topics = append(out.Topics, tp)
		}
	}
	return out.Indexed()
}

// reasonsFor returns the reasons of v about topic.
func reasonsFor(v health.Verdict, topic string) []health.Reason {
	var out []health.Reason
	for _, r := range v.Reasons {
		if r.Topic == topic {
			out = append(out, r)
		}
	}
	return out
}

// hostedBy returns the partitions of topic that node holds a replica of.
func hostedBy(s health.Snapshot, topic string, node int32) []int32 {
	var out []int32
	tp, _ := s.Topic(topic)
	for _, p := range tp.Partitions {
		if p.HasReplica(node) {
			out = append(out, p.Partition)
		}
	}
	return out
}

// take checks a snapshot of a healthy cluster against what kafkatest made.
func (r *realCluster) take(t *testing.T) {
	r.settled(t)
	start := time.Now()
	s, err := health.Take(t.Context(), r.cl)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Take on a healthy cluster: %v; %v", took.Round(time.Millisecond), s)
	if got := brokerIDs(s); !slices.Equal(got, r.brokers()) {
		t.Errorf("brokers %v, want %v", got, r.brokers())
	}
	for _, b := range s.Brokers {
		if b.Fenced || b.Host != "127.0.0.1" || b.Port == 0 {
			t.Errorf("broker %+v: want unfenced on 127.0.0.1", b)
		}
	}
	if s.FencingKnown != r.f.fencing {
		t.Errorf("FencingKnown = %v, want %v on %s", s.FencingKnown, r.f.fencing, r.f.name)
	}
	if s.ClusterID == "" || !slices.Contains(r.brokers(), s.Controller) || s.TakenAt.IsZero() {
		t.Errorf("cluster id %q, controller %d, taken at %v", s.ClusterID, s.Controller, s.TakenAt)
	}
	if id := r.c.ClusterID(); id != "" && s.ClusterID != id {
		t.Errorf("cluster id %q, want %q as formatted", s.ClusterID, id)
	}
	if !slices.IsSortedFunc(s.Topics, func(a, b health.Topic) int { return strings.Compare(a.Name, b.Name) }) {
		t.Error("topics not sorted by name")
	}
	for _, want := range []struct {
		topic      string
		partitions int
		rf         int
		minISR     int32
		src        compat.ConfigSource
	}{
		{orders, 3, 3, 2, compat.SourceTopic},
		{relaxed, 3, 3, 1, compat.SourceTopic},
		{single, 3, 1, staticMinISR, r.f.staticSource()},
		{plain, 1, 3, staticMinISR, r.f.staticSource()},
	} {
		tp, ok := s.Topic(want.topic)
		if !ok {
			t.Errorf("topic %s missing", want.topic)
			continue
		}
		if tp.ID.IsZero() || tp.Internal || tp.ErrorCode != 0 || len(tp.Partitions) != want.partitions {
			t.Errorf("%s: id %v, internal %v, error %d, %d partitions", tp.Name, tp.ID, tp.Internal, tp.ErrorCode, len(tp.Partitions))
		}
		if tp.MinISR != want.minISR || tp.MinISRSource != want.src || tp.MinISRError != "" {
			t.Errorf("%s: min.insync.replicas %d from %q (%q), want %d from %q", tp.Name, tp.MinISR, tp.MinISRSource, tp.MinISRError, want.minISR, want.src)
		}
		for i, p := range tp.Partitions {
			if p.Partition != int32(i) || len(p.Replicas) != want.rf || p.Leader != p.PreferredLeader() ||
				!slices.Equal(slices.Sorted(slices.Values(p.ISR)), slices.Sorted(slices.Values(p.Replicas))) || p.LeaderEpoch < 0 {
				t.Errorf("%s: partition %+v at position %d", tp.Name, p, i)
			}
		}
	}
	// RF 1 places one partition of single on each broker.
	for _, id := range r.brokers() {
		if got := hostedBy(s, single, id); len(got) != 1 {
			t.Errorf("node %d hosts partitions %v of %s, want one", id, got, single)
		}
	}
	// The RF 1 partitions are at min ISR, not under: Kafka caps
	// min.insync.replicas at the replica count, so acks=all writes succeed.
	if c := s.Counts(); c.Offline != 0 || c.UnderReplicated != 0 || c.UnderMinISR != 0 || c.AtMinISR != 3 || c.Brokers != 3 || c.Fenced != 0 {
		t.Errorf("Counts = %v, want the 3 partitions of %s at min ISR and nothing else", c, single)
	}
	if err := r.cl.ProduceSync(t.Context(), &kgo.Record{Topic: single, Value: []byte("acks=all")}).FirstErr(); err != nil {
		t.Errorf("acks=all write to %s (RF 1, min.insync.replicas %d): %v", single, staticMinISR, err)
	}

	// Healthy: any one broker may restart, except for its RF 1 partition.
	rf1, err := health.NewGate(health.AllowOfflineRF1())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range r.brokers() {
		v := health.CanRestart(s, id)
		if got := v.Rules(); len(got) != 1 || got[health.RuleGoesOffline] != 1 || len(reasonsFor(v, single)) != 1 {
			t.Errorf("CanRestart(%d) on a healthy cluster = %v, want only its %s partition", id, v, single)
		}
		if v := rf1.CanRestart(s, id); !v.OK {
			t.Errorf("CanRestart(%d) with AllowOfflineRF1 on a healthy cluster = %v", id, v)
		}
	}
	// Two of three at once break min.insync.replicas 2 of orders.
	if v := health.CanRestart(only(s, orders, relaxed), 1, 2); v.OK || len(reasonsFor(v, orders)) != 3 || len(reasonsFor(v, relaxed)) != 0 {
		t.Errorf("CanRestart(1, 2) = %v, want every %s partition and no %s one", v, orders, relaxed)
	}
}

// alterMinISR sets (or, with value "", deletes) min.insync.replicas as a
// dynamic broker config: cluster-wide without brokers, else per broker.
func (r *realCluster) alterMinISR(ctx context.Context, value string, brokers ...int32) error {
	ac := kadm.AlterConfig{Op: kadm.SetConfig, Name: "min.insync.replicas", Value: kadm.StringPtr(value)}
	if value == "" {
		ac = kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "min.insync.replicas"}
	}
	rs, err := kadm.NewClient(r.cl).AlterBrokerConfigs(ctx, []kadm.AlterConfig{ac}, brokers...)
	if err != nil {
		return err
	}
	for _, res := range rs {
		if res.Err != nil {
			return fmt.Errorf("broker %q: %w (%s)", res.Name, res.Err, res.ErrMessage)
		}
	}
	return nil
}

// A minISR is what a topic's effective min.insync.replicas should be.
type minISR struct {
	topic string
	n     int32
	src   compat.ConfigSource
}

// kafkaSource is the DescribeConfigs source each of ours stands for.
var kafkaSource = map[compat.ConfigSource]kmsg.ConfigSource{
	compat.SourceTopic:   kmsg.ConfigSourceDynamicTopicConfig,
	compat.SourceBroker:  kmsg.ConfigSourceDynamicBrokerConfig,
	compat.SourceCluster: kmsg.ConfigSourceDynamicDefaultBrokerConfig,
	compat.SourceStatic:  kmsg.ConfigSourceStaticBrokerConfig,
	compat.SourceDefault: kmsg.ConfigSourceDefaultConfig,
}

// agreed waits until every broker describes each topic's min.insync.replicas
// as wanted (brokers apply a dynamic config change at slightly different
// times, and Take reports what the broker it asks says), then checks that
// Take says the same, with one DescribeConfigs batch and with batches of one
// topic. It returns how long the brokers took to agree.
func (r *realCluster) agreed(t *testing.T, what string, want ...minISR) time.Duration {
	t.Helper()
	start := time.Now()
	err := poll.Wait(t.Context(), func(ctx context.Context) error {
		var errs []error
		for _, id := range r.brokers() {
			req := kmsg.NewPtrDescribeConfigsRequest()
			for _, w := range want {
				res := kmsg.NewDescribeConfigsRequestResource()
				res.ResourceType, res.ResourceName, res.ConfigNames = kmsg.ConfigResourceTypeTopic, w.topic, []string{"min.insync.replicas"}
				req.Resources = append(req.Resources, res)
			}
			resp, err := req.RequestWith(ctx, r.cl.Broker(int(id)))
			if err != nil {
				errs = append(errs, fmt.Errorf("broker %d: %w", id, err))
				continue
			}
			for _, w := range want {
				i := slices.IndexFunc(resp.Resources, func(res kmsg.DescribeConfigsResponseResource) bool { return res.ResourceName == w.topic })
				if i < 0 || len(resp.Resources[i].Configs) != 1 {
					errs = append(errs, fmt.Errorf("broker %d: no min.insync.replicas of %s in %+v", id, w.topic, resp.Resources))
					continue
				}
				if c := resp.Resources[i].Configs[0]; c.Value == nil || *c.Value != fmt.Sprint(w.n) || c.Source != kafkaSource[w.src] {
					errs = append(errs, fmt.Errorf("broker %d describes %s as %v from %v, want %d from %v", id, w.topic, deref(c.Value), c.Source, w.n, kafkaSource[w.src]))
				}
			}
		}
		return errors.Join(errs...)
	}, quick(30*time.Second))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	took := time.Since(start)
	for _, opts := range [][]health.TakeOption{nil, {health.ConfigBatch(1)}} {
		s, err := health.Take(t.Context(), r.cl, opts...)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			tp, _ := s.Topic(w.topic)
			if tp.MinISR != w.n || tp.MinISRSource != w.src || tp.MinISRError != "" {
				t.Errorf("%s: Take (options %v) says %s has min.insync.replicas %d from %q (%q), want %d from %q",
					what, opts, w.topic, tp.MinISR, tp.MinISRSource, tp.MinISRError, w.n, w.src)
			}
		}
	}
	return took
}

// minISRSources reads the effective min.insync.replicas from each of its
// sources on a real broker: topic override, cluster-wide dynamic default,
// per-broker dynamic config and static config.
func (r *realCluster) minISRSources(t *testing.T) {
	ctx := t.Context()
	base := r.f.staticSource()
	r.agreed(t, "static", minISR{plain, staticMinISR, base}, minISR{orders, 2, compat.SourceTopic}, minISR{relaxed, 1, compat.SourceTopic})
	// restore deletes the dynamic configs; with ELR, the cluster-wide one
	// cannot be deleted and gets the static value back instead.
	restore := func(ctx context.Context) error {
		if r.f.elr {
			return r.alterMinISR(ctx, fmt.Sprint(staticMinISR))
		}
		return errors.Join(r.alterMinISR(ctx, "", r.brokers()...), r.alterMinISR(ctx, ""))
	}
	t.Cleanup(func() {
		if err := restore(context.Background()); err != nil {
			t.Errorf("restore min.insync.replicas: %v", err)
		}
	})

	// A cluster-wide dynamic default: kadm's AlterBrokerConfigs with no ids.
	if err := r.alterMinISR(ctx, "3"); err != nil {
		t.Fatalf("set the cluster-wide default: %v", err)
	}
	took := r.agreed(t, "cluster-wide default", minISR{plain, 3, compat.SourceCluster}, minISR{single, 3, compat.SourceCluster}, minISR{orders, 2, compat.SourceTopic})
	t.Logf("cluster-wide default applied by every broker after %v", took.Round(time.Millisecond))

	// A per-broker dynamic config on every broker (so whichever broker
	// answers DescribeConfigs says the same) wins over the cluster default.
	err := r.alterMinISR(ctx, "1", r.brokers()...)
	switch {
	case r.f.elr && err == nil:
		t.Errorf("per-broker min.insync.replicas accepted with ELR on")
	case r.f.elr:
		t.Logf("per-broker min.insync.replicas refused, as ELR requires: %v", err)
	case err != nil:
		t.Fatalf("set per-broker min.insync.replicas: %v", err)
	default:
		took = r.agreed(t, "per-broker config", minISR{plain, 1, compat.SourceBroker}, minISR{relaxed, 1, compat.SourceTopic})
		t.Logf("per-broker config applied by every broker after %v", took.Round(time.Millisecond))
		if err := r.alterMinISR(ctx, "", r.brokers()...); err != nil {
			t.Fatalf("delete the per-broker config: %v", err)
		}
		r.agreed(t, "per-broker config deleted", minISR{plain, 3, compat.SourceCluster})
	}

	if r.f.elr {
		if err := r.alterMinISR(ctx, ""); err == nil {
			t.Errorf("cluster-wide min.insync.replicas deleted with ELR on")
		} else {
			t.Logf("cluster-wide min.insync.replicas not deletable, as ELR requires: %v", err)
		}
	}
	if err := restore(ctx); err != nil {
		t.Fatal(err)
	}
	r.agreed(t, "restored", minISR{plain, staticMinISR, base}, minISR{single, staticMinISR, base})
}

// canaryTimeout bounds one canary round trip in these tests.
const canaryTimeout = 3 * time.Second

// newCanary returns a canary on the cluster with its topic ensured.
func (r *realCluster) newCanary(t *testing.T) *health.Canary {
	t.Helper()
	can, err := health.NewCanary(r.cl, health.CanaryTimeout(canaryTimeout))
	if err != nil {
		t.Fatal(err)
	}
	if err := can.Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	return can
}

// probeUntil probes until ok accepts the results, and returns them with the
// time waited.
func probeUntil(t *testing.T, can *health.Canary, within time.Duration, what string, ok func(health.ProbeResults) error) (health.ProbeResults, time.Duration) {
	t.Helper()
	var last health.ProbeResults
	start := time.Now()
	err := poll.Wait(t.Context(), func(ctx context.Context) error {
		rs, err := can.Probe(ctx)
		if err != nil {
			return err
		}
		last = rs
		return ok(rs)
	}, quick(within))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return last, time.Since(start)
}

func allWithin(rs health.ProbeResults) error { return rs.Within(canaryTimeout).Err() }

// canary runs the probe's hand-made Produce and Fetch requests against real
// brokers and reads its records back with an ordinary consumer.
func (r *realCluster) canary(t *testing.T) {
	ctx := t.Context()
	r.settled(t)
	can, err := health.NewCanary(r.cl, health.CanaryTimeout(canaryTimeout))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := can.Probe(ctx); !errors.Is(err, health.ErrNoCanaryTopic) {
		t.Fatalf("Probe before Ensure = %v, want ErrNoCanaryTopic", err)
	}
	can = r.newCanary(t)
	first, took := probeUntil(t, can, time.Minute, "canary after Ensure", allWithin)
	t.Logf("first good probe %v after Ensure", took.Round(time.Millisecond))

	s, err := health.Take(ctx, r.cl)
	if err != nil {
		t.Fatal(err)
	}
	tp, ok := s.Topic(can.Topic())
	if !ok || len(tp.Partitions) != 3 || tp.MinISR != staticMinISR {
		t.Fatalf("canary topic %+v", tp)
	}
	preferred := map[int32]int32{} // broker → the partition it leads by preference
	for _, p := range tp.Partitions {
		if len(p.Replicas) != 3 {
			t.Errorf("canary partition %d has replicas %v, want 3", p.Partition, p.Replicas)
		}
		preferred[p.PreferredLeader()] = p.Partition
	}
	if len(preferred) != 3 {
		t.Fatalf("canary preferred leaders %v, want one partition per broker", preferred)
	}

	// Retried like the first: one produce on a busy machine may take longer
	// than the canary's timeout.
	second, _ := probeUntil(t, can, time.Minute, "second canary probe", allWithin)
	if len(second) != 3 {
		t.Fatalf("%d results, want one per broker: %+v", len(second), second)
	}
	for i, res := range second {
		if res.Err != nil || res.Broker != r.brokers()[i] || res.Partition != preferred[res.Broker] ||
			res.Offset <= first[i].Offset || res.RoundTrip != res.Produce+res.Fetch || res.Produce <= 0 || res.Fetch <= 0 {
			t.Errorf("result %+v after %+v", res, first[i])
		}
	}
	slow, _ := second.Slowest()
	t.Logf("round trips: %v (slowest: broker %d)", roundTrips(second), slow.Broker)

	// The records are real: an ordinary consumer reads them back.
	parts := map[int32]kgo.Offset{}
	for _, res := range second {
		parts[res.Partition] = kgo.NewOffset().At(res.Offset)
	}
	cons, err := r.c.NewClient(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{can.Topic(): parts}))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	got := map[int32]string{}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for len(got) < len(parts) && rctx.Err() == nil {
		fs := cons.PollFetches(rctx)
		fs.EachRecord(func(rec *kgo.Record) {
			if _, seen := got[rec.Partition]; !seen {
				got[rec.Partition] = string(rec.Value)
			}
		})
	}
	for _, res := range second {
		want := fmt.Sprintf("kupgrade canary broker=%d nonce=", res.Broker)
		if v := got[res.Partition]; !strings.HasPrefix(v, want) {
			t.Errorf("partition %d offset %d holds %q, want %q…", res.Partition, res.Offset, v, want)
		}
	}

	// A second Ensure changes nothing.
	if err := can.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if s, err := health.Take(ctx, r.cl); err != nil {
		t.Fatal(err)
	} else if tp, _ := s.Topic(can.Topic()); len(tp.Partitions) != 3 {
		t.Errorf("canary has %d partitions after a second Ensure, want 3", len(tp.Partitions))
	}
}

func roundTrips(rs health.ProbeResults) string {
	var parts []string
	for _, res := range rs {
		if res.Err != nil {
			parts = append(parts, fmt.Sprintf("%d: %v after %v", res.Broker, res.Err, res.RoundTrip.Round(time.Millisecond)))
			continue
		}
		parts = append(parts, fmt.Sprintf("%d: %v", res.Broker, res.RoundTrip.Round(100*time.Microsecond)))
	}
	return strings.Join(parts, ", ")
}

// Nodes the kill and pause tests use: the victim goes down, the candidate is
// the one asked about.
const (
	victim    int32 = 3
	candidate int32 = 2
)

// kill crashes a broker and checks what Take sees and what CanRestart decides
// about another broker, then brings it back and waits until it caught up.
func (r *realCluster) kill(t *testing.T) {
	ctx := t.Context()
	r.settled(t)
	rf1, err := health.NewGate(health.AllowOfflineRF1())
	if err != nil {
		t.Fatal(err)
	}
	can := r.newCanary(t)
	probeUntil(t, can, time.Minute, "canary before the kill", allWithin)
	if err := r.c.Node(victim).Kill(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.revive(t, victim) })

	// The canary sees the crash at once: the broker refuses connections.
	// Kafka sees it only after its session timeout (6s here); until then
	// metadata lists the broker with full ISRs, and so does a snapshot.
	start := time.Now()
	rs, err := can.Probe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(rs, func(res health.ProbeResult) bool { return res.Broker == victim })
	if i < 0 || rs[i].Err == nil {
		t.Errorf("canary right after the kill: %s; want node %d failing", roundTrips(rs), victim)
	}
	t.Logf("canary %v after the kill: %s", time.Since(start).Round(time.Millisecond), roundTrips(rs))
	if s, err := health.Take(ctx, r.cl); err == nil {
		t.Logf("snapshot %v after the kill: node %d up: %v; CanRestart(%d) OK: %v",
			time.Since(start).Round(time.Millisecond), victim, s.Up(victim), candidate, health.CanRestart(only(s, orders), candidate).OK)
	}
	s, took := r.waitSnapshot(t, time.Minute, "killed node seen down", func(s health.Snapshot) error {
		if s.Up(victim) {
			return fmt.Errorf("node %d still up: brokers %v", victim, brokerIDs(s))
		}
		return nil
	})
	t.Logf("killed node %d seen down after %v: %v", victim, took.Round(time.Millisecond), s)
	r.checkDown(t, s, victim)

	// The refusal does not wait for Kafka to shrink the ISRs: the live ISR
	// leaves out the down broker.
	refused := func(s health.Snapshot) {
		t.Helper()
		v := health.CanRestart(s, candidate)
		if v.OK || !errors.Is(v.Err(), health.ErrUnsafe) {
			t.Fatalf("CanRestart(%d) with node %d down = %v, want refused", candidate, victim, v)
		}
		rs := reasonsFor(v, orders)
		if len(rs) != 3 {
			t.Errorf("reasons about %s: %v, want all 3 partitions", orders, rs)
		}
		for i, reason := range rs {
			prefix := fmt.Sprintf("%s-%d: ISR ", orders, i)
			if reason.Partition != int32(i) || reason.Rule != health.RuleBelowMinISR || !slices.Equal(reason.Nodes, []int32{candidate}) ||
				reason.MinISR != 2 || len(reason.ISRAfter) != 1 || slices.Contains(reason.ISRAfter, victim) ||
				!strings.HasPrefix(reason.Message, prefix) || !strings.Contains(reason.Message, "below min.insync.replicas 2") {
				t.Errorf("reason %+v", reason)
			}
		}
		if rs := reasonsFor(v, relaxed); len(rs) != 0 {
			t.Errorf("min.insync.replicas 1 refused: %v", rs)
		}
		if v := health.CanRestart(only(s, relaxed), candidate); !v.OK || v.Checked != 3 {
			t.Errorf("CanRestart(%d) over %s alone = %v, want allowed", candidate, relaxed, v)
		}
		mine := hostedBy(s, single, candidate)
		if rs := reasonsFor(v, single); len(rs) != 1 || len(mine) != 1 || rs[0].Partition != mine[0] || rs[0].Rule != health.RuleGoesOffline ||
			!strings.Contains(rs[0].Message, "AllowOfflineRF1") {
			t.Errorf("reasons about %s: %v, want only partition %v going offline", single, rs, mine)
		}
		g := rf1.CanRestart(s, candidate)
		if len(reasonsFor(g, single)) != 0 || len(reasonsFor(g, orders)) != 3 {
			t.Errorf("with AllowOfflineRF1: %v, want %s allowed and %s still refused", g, single, orders)
		}
		t.Logf("refused: %v", v)
	}
	refused(s)

	// Then Kafka shrinks the ISRs (the controller on fencing, or on the
	// broker's ZooKeeper session expiring) and elects new leaders. A
	// ZooKeeper controller first marks the dead leader's partitions offline
	// and elects in a second step, so for a moment more than the RF 1
	// partition can show no leader: wait for the elections as well.
	s, took = r.waitSnapshot(t, time.Minute, "ISR shrunk and leaders elected", func(s health.Snapshot) error {
		tp, _ := s.Topic(orders)
		for _, p := range tp.Partitions {
			if p.InISR(victim) {
				return fmt.Errorf("%s-%d: ISR %v still has node %d", orders, p.Partition, p.ISR, victim)
			}
		}
		if c := s.Counts(); c.Offline != 1 {
			return fmt.Errorf("%d partitions offline, want only the RF 1 one of node %d", c.Offline, victim)
		}
		return nil
	})
	t.Logf("ISRs of %s shrunk %v later; counts: %v", orders, took.Round(time.Millisecond), s.Counts())
	refused(s)
	if c := s.Counts(); c.Offline != 1 || c.UnderReplicated == 0 {
		t.Errorf("Counts = %v, want the RF 1 partition of node %d offline and others under-replicated", c, victim)
	}
	if p, _ := s.Partition(single, hostedBy(s, single, victim)[0]); p.Online() {
		t.Errorf("%s partition on the killed node is online: %+v", single, p)
	} else {
		t.Logf("%s-%d, RF 1 on the killed node: leader %d, ISR %v", single, p.Partition, p.Leader, p.ISR)
	}

	// Back: caught up within the wait, and the refusal clears.
	start = time.Now()
	if err := r.c.StartNode(ctx, victim); err != nil {
		t.Fatal(err)
	}
	ready := time.Since(start)
	s, err = health.Until(ctx, r.cl, func(s health.Snapshot) health.Verdict { return health.CaughtUp(s, victim) }, 2*time.Minute)
	if err != nil {
		t.Fatalf("node %d not caught up: %v", victim, err)
	}
	t.Logf("node %d started in %v, caught up %v after its start", victim, ready.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if v := rf1.CanRestart(s, candidate); !v.OK {
		t.Errorf("CanRestart(%d) after node %d caught up = %v, want allowed", candidate, victim, v)
	}
	if v := health.CanRestart(s, candidate); len(reasonsFor(v, orders)) != 0 || len(reasonsFor(v, single)) != 1 {
		t.Errorf("CanRestart(%d) after node %d caught up = %v, want only its %s partition", candidate, victim, v, single)
	}
}

// checkDown checks how a snapshot shows a broker that is down: fenced where
// Kafka says so (DescribeCluster v2), absent elsewhere.
func (r *realCluster) checkDown(t *testing.T, s health.Snapshot, id int32) {
	t.Helper()
	b, listed := s.Broker(id)
	want := "is not registered"
	if r.f.fencing {
		want = "is registered but fenced"
		if !s.FencingKnown || !listed || !b.Fenced {
			t.Errorf("%s: fencing known %v, node %d listed %v (%+v), want listed as fenced", r.f.name, s.FencingKnown, id, listed, b)
		}
		if c := s.Counts(); c.Brokers != 3 || c.Fenced != 1 {
			t.Errorf("Counts = %v, want 3 brokers, 1 fenced", c)
		}
	} else {
		if s.FencingKnown || listed {
			t.Errorf("%s: fencing known %v, node %d listed %v (%+v), want absent", r.f.name, s.FencingKnown, id, listed, b)
		}
		if c := s.Counts(); c.Brokers != 2 || c.Fenced != 0 {
			t.Errorf("Counts = %v, want 2 brokers", c)
		}
	}
	v := health.CaughtUp(s, id)
	if v.OK || v.Reasons[0].Rule != health.RuleNodeDown || !strings.Contains(v.Reasons[0].Message, want) {
		t.Errorf("CaughtUp(%d) = %v, want node-down: %q", id, v, want)
	}
}

// electPreferred restarts a broker gracefully (leadership moves away), waits
// until it caught up, and brings its leadership back with ElectPreferred.
func (r *realCluster) electPreferred(t *testing.T) {
	const node int32 = 1
	ctx := t.Context()
	r.settled(t)
	if err := r.c.StopNode(ctx, node); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.revive(t, node) })
	s, took := r.waitSnapshot(t, time.Minute, "stopped node seen down", func(s health.Snapshot) error {
		if s.Up(node) {
			return fmt.Errorf("node %d still up", node)
		}
		return nil
	})
	t.Logf("gracefully stopped node %d seen down %v after Stop returned", node, took.Round(time.Millisecond))
	r.checkDown(t, s, node)
	if err := r.c.StartNode(ctx, node); err != nil {
		t.Fatal(err)
	}
	s, err := health.Until(ctx, r.cl, func(s health.Snapshot) health.Verdict { return health.CaughtUp(s, node) }, 2*time.Minute)
	if err != nil {
		t.Fatalf("node %d not caught up: %v", node, err)
	}
	v := health.CaughtUp(s, node, health.LeadsPreferred())
	moved := v.Rules()[health.RuleNotPreferredLeader]
	if v.OK || moved == 0 || len(v.Reasons) != moved {
		t.Fatalf("CaughtUp(%d, LeadsPreferred) after a restart = %v, want only not-preferred-leader reasons", node, v)
	}
	t.Logf("after the restart node %d does not lead %d partitions it prefers: %v", node, moved, v)

	es, err := health.ElectPreferred(ctx, r.cl, s, node)
	if err != nil {
		t.Fatal(err)
	}
	if err := es.FirstErr(); err != nil || len(es) != moved {
		t.Errorf("elections %+v (first error %v), want %d successes", es, err, moved)
	}
	s, err = health.Until(ctx, r.cl, func(s health.Snapshot) health.Verdict {
		return health.CaughtUp(s, node, health.LeadsPreferred())
	}, time.Minute)
	if err != nil {
		t.Fatalf("leadership not back on node %d: %v", node, err)
	}
	if es, err := health.ElectPreferred(ctx, r.cl, s, node); es != nil || err != nil {
		t.Errorf("ElectPreferred with nothing to move = %v, %v; want nil, nil", es, err)
	}
	// Only node 1's partitions were elected: others may sit on another
	// leader since earlier subtests (ZooKeeper mode does not rebalance), so
	// count just the partitions node 1 prefers.
	off := 0
	s.EachPartition(func(tp health.Topic, p health.Partition) {
		if p.PreferredLeader() == node && p.Leader != node {
			off++
		}
	})
	if off != 0 {
		t.Errorf("%d partitions that prefer node %d are led by another node (%v)", off, node, s.Counts())
	}
}

// pause stops a broker with SIGSTOP, which holds its connections open but
// answers nothing, and checks that the canary blames it within its timeout,
// and recovers once it is resumed.
func (r *realCluster) pause(t *testing.T) {
	r.settled(t)
	can := r.newCanary(t)
	probeUntil(t, can, time.Minute, "canary before the pause", allWithin)
	n := r.c.Node(victim)
	if err := n.Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.revive(t, victim) })
	paused := time.Now()

	start := time.Now()
	rs, err := can.Probe(t.Context())
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Probe with node %d paused: %v", victim, err)
	}
	t.Logf("probe right after the pause took %v: %v", took.Round(time.Millisecond), roundTrips(rs))
	i := slices.IndexFunc(rs, func(res health.ProbeResult) bool { return res.Broker == victim })
	if i < 0 || rs[i].Err == nil || rs[i].RoundTrip > canaryTimeout+time.Second {
		t.Errorf("paused node %d: %+v, want a failure within %v", victim, rs, canaryTimeout)
	}
	v := rs.Within(canaryTimeout)
	if v.OK || !errors.Is(v.Err(), health.ErrCanaryFailed) || !slices.ContainsFunc(v.Reasons, func(r health.Reason) bool {
		return r.Rule == health.RuleCanaryFailed && slices.Equal(r.Nodes, []int32{victim})
	}) {
		t.Errorf("Within = %v, want node %d failing", v, victim)
	}
	// Its metadata read may wait for two hedges (a second each) before the
	// round trips, which the timeout bounds; without hedging, a read the
	// client sends to the paused broker waits 10s. (3s of slack for a busy
	// machine.)
	if took > canaryTimeout+2*hedge.Delay+3*time.Second {
		t.Errorf("Probe took %v with one broker paused, want at most its timeout %v and two hedges", took, canaryTimeout)
	}

	// The other brokers recover once Kafka drops the paused one from the
	// ISRs; the paused one keeps failing.
	rs, _ = probeUntil(t, can, time.Minute, "others recovered", func(rs health.ProbeResults) error {
		var errs []error
		for _, res := range rs {
			if (res.Err == nil) == (res.Broker == victim) {
				errs = append(errs, fmt.Errorf("broker %d: %v", res.Broker, res.Err))
			}
		}
		return errors.Join(errs...)
	})
	t.Logf("others pass again %v after the pause: %v", time.Since(paused).Round(time.Millisecond), roundTrips(rs))
	for range 3 {
		start := time.Now()
		s, err := health.Take(t.Context(), r.cl)
		if err != nil {
			t.Errorf("Take with node %d paused: %v", victim, err)
			continue
		}
		took := time.Since(start)
		t.Logf("Take with node %d paused: %v, node up: %v", victim, took.Round(time.Millisecond), s.Up(victim))
		// One hedge when the first read goes to the paused node, and
		// slack for a busy machine; unhedged, that read alone waits 10s.
		if limit := hedge.Delay + 4*time.Second; took > limit {
			t.Errorf("Take took %v with node %d paused, want at most %v", took, victim, limit)
		}
	}

	if err := n.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	rs, took = probeUntil(t, can, 2*time.Minute, "canary after the resume", allWithin)
	t.Logf("canary passes %v after the resume: %v", took.Round(time.Millisecond), roundTrips(rs))
	if _, err := health.Until(t.Context(), r.cl, func(s health.Snapshot) health.Verdict { return health.CaughtUp(s, victim) }, 2*time.Minute); err != nil {
		t.Errorf("node %d not caught up after the resume: %v", victim, err)
	}
	t.Logf("node %d caught up %v after the resume", victim, time.Since(resumed).Round(time.Millisecond))
}

// takeTiming measures Take over a cluster with 1,000 partitions in one topic,
// then with 100 more topics of 10 partitions.
func (r *realCluster) takeTiming(t *testing.T) {
	ctx := t.Context()
	start := time.Now()
	if err := r.c.CreateTopic(ctx, "bulk", 1000, 3, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("1,000 partitions RF 3 created in %v", time.Since(start).Round(time.Millisecond))
	r.timeTake(t, "1 topic of 1,000 partitions")

	start = time.Now()
	adm := kadm.NewClient(r.cl)
	var names []string
	for i := range 100 {
		names = append(names, fmt.Sprintf("many-%03d", i))
	}
	// A ZooKeeper broker answers REQUEST_TIMED_OUT when the new partitions'
	// leaders do not reach its metadata within the request's timeout (a busy
	// machine); the topics are created all the same, and waited for below.
	adm.SetTimeoutMillis(60_000)
	resps, err := adm.CreateTopics(ctx, 10, 3, nil, names...)
	if err != nil {
		t.Fatal(err)
	}
	for _, resp := range resps {
		if resp.Err != nil && !errors.Is(resp.Err, kerr.RequestTimedOut) {
			t.Fatalf("create %s: %v", resp.Topic, resp.Err)
		}
	}
	r.waitSnapshot(t, 3*time.Minute, "100 topics ready", func(s health.Snapshot) error {
		n := 0
		for _, name := range names {
			tp, ok := s.Topic(name)
			if !ok || len(tp.Partitions) != 10 {
				return fmt.Errorf("%s not fully there", name)
			}
			n += len(tp.Partitions)
		}
		if c := s.Counts(); c.UnderReplicated > 0 || c.Offline > 0 {
			return fmt.Errorf("not settled: %v", c)
		}
		return nil
	})
	t.Logf("100 topics of 10 partitions RF 3 created in %v", time.Since(start).Round(time.Millisecond))
	r.timeTake(t, "1 topic of 1,000 partitions and 100 topics of 10")
}

// timeTake takes snapshots several times and logs the median, minimum and
// maximum.
func (r *realCluster) timeTake(t *testing.T, what string) {
	t.Helper()
	const runs = 11
	var ds []time.Duration
	var s health.Snapshot
	for range runs {
		start := time.Now()
		var err error
		s, err = health.Take(t.Context(), r.cl)
		ds = append(ds, time.Since(start))
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(ds)
	c := s.Counts()
	start := time.Now()
	v := health.CanRestart(s, 1)
	verdict := time.Since(start)
	t.Logf("Take, %s (%d topics, %d partitions, %d replicas), %d runs: median %v, min %v, max %v; CanRestart(1) %v (%d checked, OK %v)",
		what, c.Topics, c.Partitions, c.Replicas, runs, ds[runs/2].Round(100*time.Microsecond), ds[0].Round(100*time.Microsecond),
		ds[runs-1].Round(100*time.Microsecond), verdict.Round(time.Microsecond), v.Checked, v.OK)
	if c.Partitions < 1000 {
		t.Errorf("snapshot has %d partitions", c.Partitions)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
