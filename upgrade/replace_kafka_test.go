package upgrade_test

import (
	"crypto/rand"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/kafkatest"
	"github.com/kupgrade/kupgrade/upgrade"
)

// TestReplaceBrokers upgrades a KRaft cluster from 3.9.2 to 4.1.2 by node
// replacement: controllers roll in place, three new 4.1.2 brokers join, the
// partitions move to them under a throttle, and the three old brokers are
// retired and unregistered, all under traffic with zero loss.
func TestReplaceBrokers(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.KRaft("3.9.2"), kafkatest.Controllers(3), kafkatest.Brokers(3), kafkatest.Racks("a", "b", "c"))
	cl := c.Client(t)
	// Some data worth moving: 12 MiB in a bulk topic, plus the traffic topic.
	if err := c.CreateTopic(t.Context(), "bulk", 3, 3, nil); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for i := range 192 {
		value := make([]byte, 64<<10)
		rand.Read(value) // incompressible: the bytes on disk are the bytes to move
		recs = append(recs, &kgo.Record{Topic: "bulk", Key: []byte(strconv.Itoa(i)), Value: value})
	}
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	tr := withTraffic(t, c)
	in := inspect(t, c)
	plan, err := upgrade.NewReplacePlan(in.State, upgrade.Target{Version: compat.MustParseRelease("4.1.2")})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("plan:\n%v", plan)
	const throttle = 4 << 20
	rec := newRecorder(t)
	var mu sync.Mutex
	var moved, total int64
	var moveStart, moveEnd time.Time
	rec.onEvent = func(e upgrade.Event) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case e.StepKind == upgrade.StepMove && e.Kind == upgrade.EventStepStarted:
			moveStart = e.Time
		case e.StepKind == upgrade.StepMove && e.Kind == upgrade.EventStepDone:
			moveEnd = e.Time
		case e.Kind == upgrade.EventWaiting && strings.HasPrefix(e.Message, "moves "):
			var done, all, inflight int
			var b, bt int64
			if _, err := fmt.Sscanf(e.Message, "moves %d/%d done, %d in flight, %d of %d bytes copied", &done, &all, &inflight, &b, &bt); err == nil {
				moved, total = b, bt
			}
		}
	}
	start := time.Now()
	err = mustRunner(t, cl, c, upgrade.PassHolds(), upgrade.OnEvent(rec.add), upgrade.ReplaceThrottle(throttle),
		upgrade.KRaftControllers(c.ControllerAddrs()...), upgrade.WithLogger(testLogger(t))).Run(t.Context(), plan)
	end := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	took := moveEnd.Sub(moveStart)
	ideal := time.Duration(float64(total) / float64(throttle) * float64(time.Second))
	t.Logf("upgrade took %v; partition moves: %d of %d bytes copied under a throttle of %d B/s in %v (bytes ÷ throttle = %v, ratio %.2f)",
		end.Sub(start).Round(time.Millisecond), moved, total, throttle, took.Round(time.Millisecond), ideal.Round(time.Millisecond), float64(took)/float64(ideal))
	if total < 30<<20 {
		t.Errorf("only %d bytes to move: the bulk topic's 12 MiB on three new brokers should make at least 30 MiB", total)
	}
	// The throttle is honoured. Kafka's throttle is per broker (every
	// broker a move involves gets leader. and follower.replication.
	// throttled.rate), so a sound bound comes from one broker: each new
	// broker had to fetch at least its own copy of the bulk topic (which
	// did not change during the move), and its follower throttle lets it
	// fetch at most throttle bytes a second, so the move cannot finish
	// sooner than its bytes ÷ throttle. Kafka measures the rate over a
	// window of samples (replication.quota.window.num × .size.seconds), so
	// the first seconds may run ahead of the rate: 0.8 of that time is
	// allowed. (bytes ÷ throttle over all brokers is not a bound: with
	// three destinations the rates may add up.)
	var maxDest int64
	var destOf int32
	for _, id := range []int32{7, 8, 9} {
		dirs, err := kadm.NewClient(cl).DescribeBrokerLogDirs(t.Context(), id, kadm.TopicsSet{"bulk": {0: {}, 1: {}, 2: {}}})
		if err != nil {
			t.Fatalf("log dirs of broker %d: %v", id, err)
		}
		if n := dirs.Size(); n > maxDest {
			maxDest, destOf = n, id
		}
	}
	floor := time.Duration(float64(maxDest) / float64(throttle) * float64(time.Second))
	t.Logf("throttle: broker %d fetched at least %d bytes of bulk: %v at the throttle; the moves took %.2f of it (aggregate %.2f MiB/s, throttle %.2f MiB/s per broker)",
		destOf, maxDest, floor.Round(time.Millisecond), float64(took)/float64(floor), float64(moved)/took.Seconds()/(1<<20), float64(throttle)/(1<<20))
	if maxDest < 12<<20 {
		t.Errorf("broker %d holds %d bytes of bulk, want its 12 MiB copy", destOf, maxDest)
	}
	if float64(took) < 0.8*float64(floor) {
		t.Errorf("the moves took %v, under 0.8 × the %v that broker %d's %d bytes need at %d B/s: the throttle was not honoured",
			took.Round(time.Millisecond), floor.Round(time.Millisecond), destOf, maxDest, throttle)
	}
	mu.Unlock()
	finishTraffic(t, tr, start, end)

	// Old brokers are gone: retired, unregistered, holding nothing.
	for _, id := range []int32{4, 5, 6} {
		if c.Node(id) != nil {
			t.Errorf("broker %d is still in the cluster", id)
		}
	}
	dc := kmsg.NewPtrDescribeClusterRequest()
	dc.IncludeFencedBrokers = true
	resp, err := dc.RequestWith(t.Context(), cl)
	if err != nil {
		t.Fatal(err)
	}
	var registered []int32
	for _, b := range resp.Brokers {
		registered = append(registered, b.NodeID)
	}
	slices.Sort(registered)
	if !slices.Equal(registered, []int32{7, 8, 9}) {
		t.Errorf("registered brokers %v, want the new 7, 8, 9 only", registered)
	}
	meta, err := kmsg.NewPtrMetadataRequest().RequestWith(t.Context(), cl)
	if err != nil {
		t.Fatal(err)
	}
	racks := map[int32]string{}
	for _, b := range meta.Brokers {
		if b.Rack != nil {
			racks[b.NodeID] = *b.Rack
		}
	}
	for _, tp := range meta.Topics {
		for _, p := range tp.Partitions {
			seen := map[string]bool{}
			for _, r := range p.Replicas {
				if r < 7 {
					t.Errorf("%s-%d still has a replica on old broker %d: %v", *tp.Topic, p.Partition, r, p.Replicas)
				}
				if seen[racks[r]] {
					t.Errorf("%s-%d has two replicas in rack %q: %v", *tp.Topic, p.Partition, racks[r], p.Replicas)
				}
				seen[racks[r]] = true
			}
			if len(p.Replicas) != 3 {
				t.Errorf("%s-%d has RF %d, want 3", *tp.Topic, p.Partition, len(p.Replicas))
			}
		}
	}
	// No throttle config of ours left anywhere.
	adm := kadm.NewClient(cl)
	bcs, err := adm.DescribeBrokerConfigs(t.Context(), 7, 8, 9)
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range bcs {
		for _, cf := range rc.Configs {
			if strings.Contains(cf.Key, "replication.throttled") && cf.Source == kmsg.ConfigSourceDynamicBrokerConfig {
				t.Errorf("broker %s keeps %s=%s", rc.Name, cf.Key, cf.MaybeValue())
			}
		}
	}
	tcs, err := adm.DescribeTopicConfigs(t.Context(), "orders", "bulk")
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range tcs {
		for _, cf := range rc.Configs {
			if strings.Contains(cf.Key, "replication.throttled") && cf.Source == kmsg.ConfigSourceDynamicTopicConfig {
				t.Errorf("topic %s keeps %s=%s", rc.Name, cf.Key, cf.MaybeValue())
			}
		}
	}
	for _, n := range c.All() {
		if n.Release() != "4.1.2" {
			t.Errorf("node %d runs %s", n.ID(), n.Release())
		}
	}
}
