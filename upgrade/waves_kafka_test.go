package upgrade_test

import (
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
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
	"github.com/kupgrade/kupgrade/reassign"
	"github.com/kupgrade/kupgrade/upgrade"
)

// fillTopic writes n records of size bytes (incompressible) to a new topic.
func fillTopic(t *testing.T, c *kafkatest.Cluster, cl *kgo.Client, topic string, partitions int32, rf int16, n, size int) {
	t.Helper()
	if err := c.CreateTopic(t.Context(), topic, partitions, rf, nil); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for i := range n {
		value := make([]byte, size)
		rand.Read(value)
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(strconv.Itoa(i)), Value: value})
	}
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// placement returns every partition's replicas, "topic-p" → replicas.
func placement(t *testing.T, cl *kgo.Client) map[string][]int32 {
	t.Helper()
	meta, err := kmsg.NewPtrMetadataRequest().RequestWith(t.Context(), cl)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]int32{}
	for _, tp := range meta.Topics {
		for _, p := range tp.Partitions {
			out[fmt.Sprintf("%s-%d", *tp.Topic, p.Partition)] = slices.Clone(p.Replicas)
		}
	}
	return out
}

// waveLog times the waves of a replacement run from its events: a wave
// runs from its first provision step's start to its last retire step's end.
type waveLog struct {
	mu       sync.Mutex
	plan     upgrade.Plan
	start    map[int]time.Time // wave → first provision started
	end      map[int]time.Time // wave → last retire done
	maxUp    int               // most brokers the cluster ran at once
	c        *kafkatest.Cluster
	waveOfAt func(step int) int
}

func newWaveLog(plan upgrade.Plan, c *kafkatest.Cluster) *waveLog {
	w := &waveLog{plan: plan, start: map[int]time.Time{}, end: map[int]time.Time{}, c: c}
	wave := map[int]int{}
	n := 1
	for i, s := range plan.Steps {
		wave[i] = n
		if s.Kind == upgrade.StepRetire && (i+1 == len(plan.Steps) || plan.Steps[i+1].Kind != upgrade.StepRetire) {
			n++
		}
	}
	w.waveOfAt = func(step int) int { return wave[step] }
	return w
}

func (w *waveLog) add(e upgrade.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case e.StepKind == upgrade.StepProvision && e.Kind == upgrade.EventStepStarted:
		if _, ok := w.start[w.waveOfAt(e.Step)]; !ok {
			w.start[w.waveOfAt(e.Step)] = e.Time
		}
	case e.StepKind == upgrade.StepProvision && e.Kind == upgrade.EventCaughtUp:
		w.maxUp = max(w.maxUp, len(w.c.Brokers()))
	case e.StepKind == upgrade.StepRetire && (e.Kind == upgrade.EventStepDone || e.Kind == upgrade.EventStepSkipped):
		w.end[w.waveOfAt(e.Step)] = e.Time
	}
}

func (w *waveLog) timings(t *testing.T, runStart time.Time) []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []time.Duration
	for _, k := range slices.Sorted(maps.Keys(w.start)) {
		d := w.end[k].Sub(w.start[k])
		t.Logf("wave %d: %v (from %v to %v after the run began)", k, d.Round(time.Millisecond),
			w.start[k].Sub(runStart).Round(time.Millisecond), w.end[k].Sub(runStart).Round(time.Millisecond))
		out = append(out, d)
	}
	return out
}

// assertReplaced checks that no replica is left on old brokers, every
// partition keeps its RF, and replicas of a partition are in distinct
// racks (where racks are set).
func assertReplaced(t *testing.T, c *kafkatest.Cluster, cl *kgo.Client, old []int32, rf int) {
	t.Helper()
	for _, id := range old {
		if c.Node(id) != nil {
			t.Errorf("broker %d is still in the cluster", id)
		}
	}
	meta, err := kmsg.NewPtrMetadataRequest().RequestWith(t.Context(), cl)
	if err != nil {
		t.Fatal(err)
	}
	racks := map[int32]string{}
	for _, b := range meta.Brokers {
		if slices.Contains(old, b.NodeID) {
			t.Errorf("old broker %d is still in the metadata", b.NodeID)
		}
		if b.Rack != nil {
			racks[b.NodeID] = *b.Rack
		}
	}
	for _, tp := range meta.Topics {
		for _, p := range tp.Partitions {
			seen := map[string]bool{}
			for _, r := range p.Replicas {
				if slices.Contains(old, r) {
					t.Errorf("%s-%d still has a replica on old broker %d: %v", *tp.Topic, p.Partition, r, p.Replicas)
				}
				if rk := racks[r]; rk != "" && seen[rk] {
					t.Errorf("%s-%d has two replicas in rack %q: %v", *tp.Topic, p.Partition, rk, p.Replicas)
				}
				seen[racks[r]] = true
			}
			if *tp.Topic != "__consumer_offsets" && len(p.Replicas) != rf {
				t.Errorf("%s-%d has RF %d, want %d", *tp.Topic, p.Partition, len(p.Replicas), rf)
			}
		}
	}
}

// TestReplaceInWaves replaces the three brokers of a KRaft cluster (3.9.2
// → 4.0.2, racks a, b, c) in waves of two, under traffic with zero loss:
// the first wave provisions two new brokers and retires two old ones, the
// second one; the cluster never runs more than five brokers.
func TestReplaceInWaves(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.KRaft("3.9.2"), kafkatest.Controllers(1), kafkatest.Brokers(3), kafkatest.Racks("a", "b", "c"))
	cl := c.Client(t)
	fillTopic(t, c, cl, "bulk", 3, 3, 48, 64<<10) // 3 MiB
	tr := withTraffic(t, c)
	in := inspect(t, c)
	target := upgrade.Target{Version: compat.MustParseRelease("4.0.2")}
	if _, err := upgrade.NewReplacePlan(in.State, target, upgrade.ReplaceWaves(0)); err == nil {
		t.Error("ReplaceWaves(0) was accepted")
	}
	plan, err := upgrade.NewReplacePlan(in.State, target, upgrade.ReplaceWaves(2))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("plan:\n%v", plan)
	var kinds []string
	for _, s := range plan.Steps {
		if s.Kind != upgrade.StepPreflight && s.Kind != upgrade.StepFinalize && s.Kind != upgrade.StepRestart {
			kinds = append(kinds, fmt.Sprintf("%s %d", s.Kind, s.Node))
		}
	}
	want := []string{"provision 2", "provision 3", "move-partitions -1", "elect-leaders -1", "retire 2", "retire 3",
		"provision 4", "move-partitions -1", "elect-leaders -1", "retire 4"}
	if !slices.Equal(kinds, want) {
		t.Fatalf("replacement steps %v, want %v", kinds, want)
	}
	waves := newWaveLog(plan, c)
	rec := newRecorder(t)
	rec.onEvent = waves.add
	start := time.Now()
	err = mustRunner(t, cl, c, upgrade.PassHolds(), upgrade.OnEvent(rec.add),
		upgrade.KRaftControllers(c.ControllerAddrs()...), upgrade.WithLogger(testLogger(t))).Run(t.Context(), plan)
	end := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("upgrade took %v", end.Sub(start).Round(time.Millisecond))
	if ts := waves.timings(t, start); len(ts) != 2 {
		t.Errorf("%d waves timed, want 2", len(ts))
	}
	waves.mu.Lock()
	if waves.maxUp != 5 {
		t.Errorf("at most %d brokers ran at once, want 5 (3 old + a wave of 2)", waves.maxUp)
	}
	waves.mu.Unlock()
	finishTraffic(t, tr, start, end)
	assertReplaced(t, c, cl, []int32{2, 3, 4}, 3)
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
	if !slices.Equal(registered, []int32{5, 6, 7}) {
		t.Errorf("registered brokers %v, want the new 5, 6, 7 only", registered)
	}
	for _, n := range c.All() {
		if n.Release() != "4.0.2" {
			t.Errorf("node %d runs %s", n.ID(), n.Release())
		}
	}
}

// TestReplaceBrokersZooKeeper replaces the three brokers of a ZooKeeper
// cluster (3.8.1 → 3.9.2) under traffic with zero loss: the new brokers
// start with inter.broker.protocol.version pinned at 3.8, and once the old
// ones are retired they restart one at a time to raise it.
func TestReplaceBrokersZooKeeper(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.ZooKeeper("3.8.1"), kafkatest.Brokers(3))
	cl := c.Client(t)
	tr := withTraffic(t, c)
	in := inspect(t, c)
	plan, err := upgrade.NewReplacePlan(in.State, upgrade.Target{Version: compat.MustParseRelease("3.9.2")})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("plan:\n%v", plan)
	var pinned, raised int
	for _, s := range plan.Steps {
		switch {
		case s.Kind == upgrade.StepProvision && s.Change.Set["inter.broker.protocol.version"] == "3.8-IV0":
			pinned++
		case s.Kind == upgrade.StepRestartReplacement && s.Change.Set["inter.broker.protocol.version"] == "3.9-IV0":
			raised++
		}
	}
	if pinned != 3 || raised != 3 {
		t.Fatalf("%d provision steps pin inter.broker.protocol.version=3.8-IV0 and %d restarts raise it to 3.9-IV0, want 3 and 3", pinned, raised)
	}
	rec := newRecorder(t)
	start := time.Now()
	err = mustRunner(t, cl, c, upgrade.PassHolds(), upgrade.OnEvent(rec.add), upgrade.WithLogger(testLogger(t))).Run(t.Context(), plan)
	end := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("upgrade took %v", end.Sub(start).Round(time.Millisecond))
	finishTraffic(t, tr, start, end)
	assertReplaced(t, c, cl, []int32{1, 2, 3}, 3)
	after := inspect(t, c)
	if len(after.State.Nodes) != 3 {
		t.Errorf("%d brokers after the replacement, want 3", len(after.State.Nodes))
	}
	for _, n := range after.State.Nodes {
		if n.Release.String() != "3.9.2" || n.IBPV.Value != "3.9-IV0" {
			t.Errorf("broker %d runs %v with inter.broker.protocol.version %v, want 3.9.2 with the pin raised to 3.9-IV0", n.ID, n.Release, n.IBPV)
		}
	}
}

// TestReplaceRefusesFullDisk makes the new broker's disk look full (a
// ratio below what its volume already holds) and proves the run stops at
// the move step, before any move, with a *reassign.DiskError naming the
// new broker and its bytes; nothing moved. Then a retire step of the old
// broker, which still holds every replica, refuses too.
func TestReplaceRefusesFullDisk(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.KRaft("3.9.2"), kafkatest.Controllers(1), kafkatest.Brokers(1))
	cl := c.Client(t)
	fillTopic(t, c, cl, "bulk", 2, 1, 32, 64<<10) // 2 MiB on broker 2
	before := placement(t, cl)
	space, err := reassign.ReadDiskSpace(t.Context(), cl, 2)
	if err != nil {
		t.Fatal(err)
	}
	d := space[2]
	if !d.Known() {
		t.Fatalf("broker 2 reports no disk size: %+v", d)
	}
	used := float64(d.Total-d.Usable) / float64(d.Total)
	ratio := used / 2 // the volume is already twice as full as allowed
	t.Logf("broker 2's volume: %d of %d bytes used (%.1f%%); allowing %.1f%%", d.Total-d.Usable, d.Total, 100*used, 100*ratio)
	in := inspect(t, c)
	plan, err := upgrade.NewReplacePlan(in.State, upgrade.Target{Version: compat.MustParseRelease("4.0.2")})
	if err != nil {
		t.Fatal(err)
	}
	j := &upgrade.MemoryJournal{}
	rec := newRecorder(t)
	err = mustRunner(t, cl, c, upgrade.PassHolds(), upgrade.OnEvent(rec.add), upgrade.WithJournal(j), upgrade.ReplaceDiskRatio(ratio),
		upgrade.KRaftControllers(c.ControllerAddrs()...), upgrade.WithLogger(testLogger(t))).Run(t.Context(), plan)
	se, ok := errors.AsType[*upgrade.StepError](err)
	de, isDisk := errors.AsType[*reassign.DiskError](err)
	if !ok || se.Step.Kind != upgrade.StepMove || !isDisk {
		t.Fatalf("Run = %v, want the move step to fail with a *reassign.DiskError", err)
	}
	t.Logf("refused: %v", err)
	if de.Broker != 3 || de.Unknown {
		t.Errorf("the refusal names broker %d (unknown %v), want new broker 3", de.Broker, de.Unknown)
	}
	// The new broker is on the same volume: its total is the one measured
	// (the usable bytes move with whatever else runs on the machine).
	if de.Total != d.Total || de.Incoming < 2<<20 || de.Ratio != ratio {
		t.Errorf("refusal: total %d, incoming %d, ratio %v; want total %d, at least the 2 MiB of bulk incoming, ratio %v", de.Total, de.Incoming, de.Ratio, d.Total, ratio)
	}
	for _, s := range []string{"broker 3", strconv.FormatInt(de.Incoming, 10) + " bytes", strconv.FormatInt(de.Total, 10) + " bytes", "nothing was moved"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("the refusal %q does not say %q", err, s)
		}
	}
	// Nothing moved: the same placement, no reassignment, no mover state.
	if after := placement(t, cl); !maps.EqualFunc(before, after, slices.Equal) {
		t.Errorf("placement changed: before %v, after %v", before, after)
	}
	ongoing, err := kadm.NewClient(cl).ListPartitionReassignments(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ongoing) != 0 {
		t.Errorf("reassignments in progress: %v", ongoing)
	}
	r, err := j.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for k := range r.Data {
		if strings.HasPrefix(k, "reassign/") {
			t.Errorf("the journal holds mover state %s: a move was started", k)
		}
	}

	// Broker 2 still holds every replica: a plan that goes straight to
	// its retire step is refused there, and broker 2 keeps running. (The
	// plan of the cluster as it is now: its controller was rolled.)
	now, err := upgrade.NewReplacePlan(inspect(t, c).State, upgrade.Target{Version: compat.MustParseRelease("4.0.2")})
	if err != nil {
		t.Fatal(err)
	}
	retire := upgrade.Plan{Version: now.Version, Mode: now.Mode, Target: now.Target, Nodes: now.Nodes, Finalized: now.Finalized}
	for _, s := range now.Steps {
		if s.Kind == upgrade.StepPreflight || s.Kind == upgrade.StepRetire && s.Node == 2 {
			retire.Steps = append(retire.Steps, s)
		}
	}
	upgrade.Reseal(&retire)
	err = mustRunner(t, cl, c, upgrade.PassHolds(), upgrade.OnEvent(rec.add),
		upgrade.KRaftControllers(c.ControllerAddrs()...), upgrade.WithLogger(testLogger(t))).Run(t.Context(), retire)
	if se, ok := errors.AsType[*upgrade.StepError](err); !ok || se.Step.Kind != upgrade.StepRetire || !strings.Contains(err.Error(), "broker 2 still holds replicas of [") || !strings.Contains(err.Error(), "bulk-") {
		t.Errorf("retiring broker 2 while it holds bulk = %v, want the retire step to refuse naming bulk's partitions", err)
	}
	if alive, err := c.Alive(t.Context(), 2); err != nil || !alive {
		t.Errorf("broker 2 after the refused retire: alive %v (%v), want running", alive, err)
	}
	if after := placement(t, cl); !maps.EqualFunc(before, after, slices.Equal) {
		t.Errorf("placement changed: before %v, after %v", before, after)
	}
}
