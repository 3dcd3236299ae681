package upgrade_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/health"
	"github.com/kupgrade/kupgrade/kafkatest"
	"github.com/kupgrade/kupgrade/kraft"
	"github.com/kupgrade/kupgrade/node"
	"github.com/kupgrade/kupgrade/upgrade"
)

// recorder keeps a run's events and measures each restart (stop → caught up).
type recorder struct {
	t       *testing.T
	mu      sync.Mutex
	events  []upgrade.Event
	started map[int]time.Time
	took    map[int]time.Duration // per step: restarting → caught up
	onEvent func(upgrade.Event)
}

func newRecorder(t *testing.T) *recorder {
	return &recorder{t: t, started: map[int]time.Time{}, took: map[int]time.Duration{}}
}

func (r *recorder) add(e upgrade.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	switch e.Kind {
	case upgrade.EventRestarting:
		r.started[e.Step] = e.Time
	case upgrade.EventCaughtUp:
		if s, ok := r.started[e.Step]; ok {
			r.took[e.Step] = e.Time.Sub(s)
		}
	}
	cb := r.onEvent
	r.mu.Unlock()
	r.t.Logf("event: %v", e)
	if cb != nil {
		cb(e)
	}
}

// restartOrder returns the nodes in the order the Runner restarted them.
func (r *recorder) restartOrder() []int32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int32
	for _, e := range r.events {
		if e.Kind == upgrade.EventRestarting {
			out = append(out, e.Node)
		}
	}
	return out
}

func (r *recorder) sumRestarts() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var sum time.Duration
	for _, d := range r.took {
		sum += d
	}
	return sum
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// withTraffic creates the test topic (RF 3, min.insync.replicas 2, six
// partitions) and starts 500 records/s of traffic with a consumer group.
func withTraffic(t *testing.T, c *kafkatest.Cluster) *kafkatest.Traffic {
	t.Helper()
	if err := c.CreateTopic(t.Context(), "orders", 6, 3, map[string]string{"min.insync.replicas": "2"}); err != nil {
		t.Fatal(err)
	}
	tr := c.Traffic(t, "orders", kafkatest.Rate(500))
	// Warm up (the producer's first metadata and id), then ~5 s of baseline.
	if err := tr.WaitAcknowledged(t.Context(), 500); err != nil {
		t.Fatal(err)
	}
	baseline[tr] = time.Now()
	if err := tr.WaitAcknowledged(t.Context(), 3000); err != nil {
		t.Fatal(err)
	}
	return tr
}

// baseline records when each traffic's baseline window began (tests run one
// at a time in this package, but the map keeps them apart anyway).
var baseline = map[*kafkatest.Traffic]time.Time{}

// finishTraffic stops traffic and requires zero loss and zero failures; it
// logs latency before and during the upgrade.
func finishTraffic(t *testing.T, tr *kafkatest.Traffic, upgradeStart, upgradeEnd time.Time) kafkatest.TrafficReport {
	t.Helper()
	if err := tr.WaitAcknowledged(t.Context(), tr.Progress().Acknowledged+1000); err != nil {
		t.Fatal(err)
	}
	rep, err := tr.Stop(context.Background())
	if err != nil {
		t.Fatalf("traffic: %v", err)
	}
	t.Logf("traffic: %v", rep)
	t.Logf("produce latency before the upgrade: %v; during: %v", tr.Latency(baseline[tr], upgradeStart), tr.Latency(upgradeStart, upgradeEnd))
	if err := rep.Err(); err != nil {
		t.Error(err)
	}
	if rep.Failed > 0 {
		t.Errorf("%d produce requests failed: %v", rep.Failed, rep.Errors)
	}
	if rep.Consumed == 0 {
		t.Error("the consumer group read nothing")
	}
	return rep
}

func inspect(t *testing.T, c *kafkatest.Cluster) upgrade.Inspection {
	t.Helper()
	in, err := upgrade.Inspect(t.Context(), c.Client(t), upgrade.InspectWith(c), upgrade.InspectControllers(c.ControllerAddrs()...))
	if err != nil {
		t.Fatalf("inspect: %v\n%v", err, in)
	}
	t.Logf("inspection:\n%v", in)
	return in
}

func TestRollingUpgradeZooKeeper(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.ZooKeeper("3.6.2"), kafkatest.Brokers(3))
	tr := withTraffic(t, c)
	in := inspect(t, c)
	if in.State.Mode != compat.ModeZooKeeper {
		t.Fatalf("mode %v", in.State.Mode)
	}
	plan, err := upgrade.NewPlan(in.State, upgrade.Target{Version: compat.MustParseRelease("3.9.2")})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("plan:\n%v", plan)
	if n := len(plan.Restarts()); n != 6 {
		t.Fatalf("%d restarts planned, want two rolls of three", n)
	}
	rec := newRecorder(t)
	cl := c.Client(t)
	var mu sync.Mutex
	var controllerAtRestart []int32 // the ZooKeeper controller broker when each restart began
	rec.onEvent = func(e upgrade.Event) {
		if e.Kind == upgrade.EventRestarting {
			meta, err := kmsg.NewPtrMetadataRequest().RequestWith(context.Background(), cl)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				controllerAtRestart = append(controllerAtRestart, -2)
				return
			}
			controllerAtRestart = append(controllerAtRestart, meta.ControllerID)
		}
	}
	start := time.Now()
	err = mustRunner(t, cl, c, upgrade.PassHolds(), upgrade.OnEvent(rec.add), upgrade.WithLogger(testLogger(t))).Run(t.Context(), plan)
	end := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	total, sum := end.Sub(start), rec.sumRestarts()
	t.Logf("upgrade took %v; restarts (stop → caught up) sum %v, per node %v; Runner overhead ratio %.2f",
		total.Round(time.Millisecond), sum.Round(time.Millisecond), rec.took, float64(total)/float64(sum))
	finishTraffic(t, tr, start, end)

	after := inspect(t, c)
	for _, n := range after.Nodes {
		if n.Release.String() != "3.9.2" || n.IBPV.Value != "3.9-IV0" || n.IBPV.Source != compat.SourceStatic {
			t.Errorf("node %d after the upgrade: release %q, IBPV %+v; want 3.9.2 with a static IBPV 3.9-IV0", n.ID, n.Release, n.IBPV)
		}
		if n.Line != "v3.9" {
			t.Errorf("node %d ApiVersions say %q, want v3.9", n.ID, n.Line)
		}
	}
	if after.MidUpgrade {
		t.Errorf("still mid-upgrade: %v", after.MidUpgradeWhy)
	}
	// The ZooKeeper controller broker is rolled last in each roll.
	order := rec.restartOrder()
	if len(order) != 6 {
		t.Fatalf("restart order %v", order)
	}
	t.Logf("restart order %v; controller at each restart %v", order, controllerAtRestart)
	for i, ctrl := range controllerAtRestart {
		if i%3 < 2 && ctrl == order[i] {
			t.Errorf("broker %d restarted while it was the controller, before the other brokers of its roll (order %v, controllers %v)", order[i], order, controllerAtRestart)
		}
	}
}

// TestRollingUpgradeKRaft takes 3 controllers and 3 brokers from 3.8.1
// through 3.9.2 to 4.4.0, the newest release compat knows, under traffic:
// two hops, each finalized, with zero acknowledged records lost.
func TestRollingUpgradeKRaft(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.KRaft("3.8.1"), kafkatest.Controllers(3), kafkatest.Brokers(3))
	tr := withTraffic(t, c)
	in := inspect(t, c)
	if in.State.Mode != compat.ModeKRaft || in.State.Finalized[compat.FeatureMetadataVersion] != 20 {
		t.Fatalf("mode %v, finalized %v; want KRaft at 3.8-IV0 (20)", in.State.Mode, in.State.Finalized)
	}
	plan, err := upgrade.NewPlan(in.State, upgrade.Target{Version: compat.MustParseRelease("4.4.0"), Via: []compat.Release{compat.MustParseRelease("3.9.2")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("plan:\n%v", plan)
	rec := newRecorder(t)
	cl := c.Client(t)
	var mu sync.Mutex
	var activeAtRestart []int32 // the active controller when each controller restarted
	var finalizedAfter []int16
	rec.onEvent = func(e upgrade.Event) {
		switch {
		case e.Kind == upgrade.EventRestarting && c.Node(e.Node).IsController():
			q, err := kraft.DescribeQuorum(context.Background(), cl)
			mu.Lock()
			if err == nil {
				activeAtRestart = append(activeAtRestart, q.LeaderID)
			} else {
				activeAtRestart = append(activeAtRestart, -2)
			}
			mu.Unlock()
		case e.Kind == upgrade.EventStepDone && e.StepKind == upgrade.StepFinalize:
			fs, err := kraft.DescribeFeatures(context.Background(), cl, kraft.ControllerAddrs(c.ControllerAddrs()...))
			if err != nil {
				t.Errorf("features after finalize: %v", err)
				return
			}
			lvl, agreed, _ := fs.Finalized(compat.FeatureMetadataVersion)
			if !agreed {
				t.Errorf("nodes disagree on metadata.version after the finalize step: %v", fs)
			}
			mu.Lock()
			finalizedAfter = append(finalizedAfter, lvl)
			mu.Unlock()
		}
	}
	start := time.Now()
	err = mustRunner(t, cl, c, upgrade.PassHolds(), upgrade.OnEvent(rec.add), upgrade.KRaftControllers(c.ControllerAddrs()...),
		upgrade.WithLogger(testLogger(t))).Run(t.Context(), plan)
	end := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	total, sum := end.Sub(start), rec.sumRestarts()
	t.Logf("upgrade took %v; restarts (stop → caught up) sum %v, per step %v; Runner overhead ratio %.2f",
		total.Round(time.Millisecond), sum.Round(time.Millisecond), rec.took, float64(total)/float64(sum))
	finishTraffic(t, tr, start, end)

	// Controllers before brokers in each hop, and the active controller last.
	order := rec.restartOrder()
	if len(order) != 12 {
		t.Fatalf("restart order %v, want 12 restarts (two hops of six)", order)
	}
	for hop := range 2 {
		roll := order[hop*6 : hop*6+6]
		for i, id := range roll {
			if isCtrl := c.Node(id).IsController(); isCtrl != (i < 3) {
				t.Errorf("hop %d restart order %v: controllers must come first", hop+1, roll)
				break
			}
		}
	}
	for i, leader := range activeAtRestart {
		ctrl := order[(i/3)*6+i%3]
		if i%3 < 2 && leader == ctrl {
			t.Errorf("controller %d restarted while it was the active controller, before the other controllers of its roll (%v)", ctrl, order)
		}
	}
	// Finalized metadata.version after each hop is what compat says.
	want := []int16{}
	for _, r := range []string{"3.9.2", "4.4.0"} {
		mv, err := compat.LatestProduction(compat.MustParseRelease(r))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, mv.Level)
	}
	if !slices.Equal(finalizedAfter, want) {
		t.Errorf("metadata.version after each hop = %v, want %v (compat's latest production of 3.9 and 4.4)", finalizedAfter, want)
	}
	after := inspect(t, c)
	for _, n := range after.Nodes {
		if n.Release.String() != "4.4.0" {
			t.Errorf("node %d runs %q after the upgrade", n.ID, n.Release)
		}
	}
}

func TestResumeAfterCrash(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.KRaft("3.9.2"), kafkatest.Combined(3))
	tr := withTraffic(t, c)
	in := inspect(t, c)
	plan, err := upgrade.NewPlan(in.State, upgrade.Target{Version: compat.MustParseRelease("4.1.2")})
	if err != nil {
		t.Fatal(err)
	}
	journal := upgrade.NewFileJournal(filepath.Join(t.TempDir(), "journal.json"))
	cl := c.Client(t)
	ctx, cancel := context.WithCancel(t.Context())
	rec := newRecorder(t)
	rec.onEvent = func(e upgrade.Event) {
		if e.Kind == upgrade.EventRestarted && len(rec.restartOrder()) == 2 {
			cancel() // the Runner "crashes" while its second node catches up
		}
	}
	start := time.Now()
	err = mustRunner(t, cl, c, upgrade.WithJournal(journal), upgrade.OnEvent(rec.add), upgrade.PassHolds()).Run(ctx, plan)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("first run = %v, want it cancelled", err)
	}
	saved, err := journal.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("journal after the crash: %+v", saved.Steps)
	rec2 := newRecorder(t)
	if err := mustRunner(t, cl, c, upgrade.WithJournal(journal), upgrade.OnEvent(rec2.add), upgrade.PassHolds()).Run(t.Context(), plan); err != nil {
		t.Fatal(err)
	}
	end := time.Now()
	for _, n := range c.All() {
		if got := n.Starts(); got != 2 { // the initial start and one restart
			t.Errorf("node %d started %d times, want 2: restarted %d times for one planned restart", n.ID(), got, got-1)
		}
		if n.Release() != "4.1.2" {
			t.Errorf("node %d runs %s", n.ID(), n.Release())
		}
	}
	// Running the finished plan once more does nothing.
	if err := mustRunner(t, cl, c, upgrade.WithJournal(journal), upgrade.PassHolds()).Run(t.Context(), plan); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.All() {
		if n.Starts() != 2 {
			t.Errorf("re-running a finished plan restarted node %d", n.ID())
		}
	}
	finishTraffic(t, tr, start, end)
}

func TestNodeFailsToStart(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.KRaft("3.9.2"), kafkatest.Combined(3))
	tr := withTraffic(t, c)
	in := inspect(t, c)
	plan, err := upgrade.NewPlan(in.State, upgrade.Target{Version: compat.MustParseRelease("4.1.2")})
	if err != nil {
		t.Fatal(err)
	}
	// Break the second restart: a config Kafka refuses at start.
	restarts := 0
	for i := range plan.Steps {
		if plan.Steps[i].Kind == upgrade.StepRestart {
			if restarts++; restarts == 2 {
				plan.Steps[i].Change.Set = map[string]string{"num.io.threads": "not-a-number"}
			}
		}
	}
	upgrade.Reseal(&plan) // Run refuses an edited plan whose ID no longer matches
	journal := &upgrade.MemoryJournal{}
	cl := c.Client(t)
	stopISR := watchISR(t, c)
	events := newRecorder(t)
	start := time.Now()
	err = mustRunner(t, cl, c, upgrade.WithJournal(journal), upgrade.PassHolds(), upgrade.WithLogger(testLogger(t)), upgrade.OnEvent(events.add)).Run(t.Context(), plan)
	se, ok := errors.AsType[*upgrade.StepError](err)
	if !ok {
		t.Fatalf("Run = %v, want a StepError", err)
	}
	t.Logf("run halted after %v: %v", time.Since(start).Round(time.Millisecond), err)
	bad := se.Step.Node
	// The run stops at the node that failed: no other node restarted after.
	if order := events.restartOrder(); len(order) == 0 || order[len(order)-1] != bad {
		t.Errorf("restarts %v, want the failed node %d last", order, bad)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("node %d", bad)) || !strings.Contains(err.Error(), "num.io.threads") {
		t.Errorf("error %q does not name node %d and the bad setting", err, bad)
	}
	rec, _ := journal.Load(t.Context())
	if rec.Steps[se.Index].State != upgrade.StepFailed {
		t.Errorf("journal: step %d is %q, want failed", se.Index, rec.Steps[se.Index].State)
	}
	// Roll back what the run changed: the nodes go back to 3.9.2 without the bad setting.
	rb, err := upgrade.NewRollbackPlan(plan, rec)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rollback plan:\n%v", rb)
	if err := mustRunner(t, cl, c, upgrade.PassHolds(), upgrade.WithLogger(testLogger(t))).Run(t.Context(), rb); err != nil {
		t.Fatal(err)
	}
	end := time.Now()
	for _, n := range c.All() {
		if n.Release() != "3.9.2" || n.Status() != kafkatest.Running || n.Config()["num.io.threads"] == "not-a-number" {
			t.Errorf("node %d after rollback: %s, %v, num.io.threads=%q", n.ID(), n.Release(), n.Status(), n.Config()["num.io.threads"])
		}
	}
	stopISR()
	finishTraffic(t, tr, start, end)
}

// TestGateBlocks kills broker 4 right after its upgrade: the Runner must
// refuse to restart broker 5, which shares partitions with 4 that now sit
// at min ISR, report those partitions, and go on once 4 is back. A canary
// gate must hold restarts while brokers do not serve in time, and pass
// through the whole upgrade otherwise.
func TestGateBlocks(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.KRaft("3.9.2"), kafkatest.Controllers(3), kafkatest.Brokers(3))
	tr := withTraffic(t, c)
	in := inspect(t, c)
	plan, err := upgrade.NewPlan(in.State, upgrade.Target{Version: compat.MustParseRelease("4.1.2")})
	if err != nil {
		t.Fatal(err)
	}
	// A canary gate no broker can pass (a round trip within 1ns) holds the
	// first restart until the gate gives up, naming the brokers.
	can, err := health.NewCanary(c.Client(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := can.Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	err = mustRunner(t, c.Client(t), c, upgrade.CanaryGate(can, time.Nanosecond), upgrade.GateTimeout(5*time.Second), upgrade.PassHolds()).Run(t.Context(), plan)
	if _, ok := errors.AsType[*upgrade.StepError](err); !ok || !strings.Contains(err.Error(), "round trip took") {
		t.Fatalf("Run with an impossible canary = %v, want a StepError naming slow round trips", err)
	}
	t.Logf("impossible canary: %v", err)
	for _, n := range c.All() {
		if n.Release() != "3.9.2" {
			t.Fatalf("node %d restarted onto %s although the canary gate never passed", n.ID(), n.Release())
		}
	}

	// The real run: with a canary every broker must pass before and after
	// each restart.
	rec := newRecorder(t)
	blocked := make(chan upgrade.Event, 1)
	killed := make(chan error, 1)
	rec.onEvent = func(e upgrade.Event) {
		switch {
		case e.Kind == upgrade.EventStepDone && e.Node == 4:
			killed <- c.Node(4).Kill()
		case e.Kind == upgrade.EventGateBlocked && e.Node == 5 && minISRReason(e) >= 0:
			// Only broker 5's: earlier gates (the quorum's, right after a
			// controller restart) may block for a moment too; and only once
			// Kafka has noticed: before, the liveness probe blocks it, as
			// broker 4 does not answer.
			select {
			case blocked <- e:
			default:
			}
		}
	}
	start := time.Now()
	done := make(chan error, 1)
	var wg sync.WaitGroup
	// t.Context() ends before cleanups run: this one waits for the Runner
	// to stop, so that it never logs after the test has failed and ended.
	t.Cleanup(wg.Wait)
	wg.Go(func() {
		done <- mustRunner(t, c.Client(t), c, upgrade.CanaryGate(can, 5*time.Second), upgrade.PassHolds(), upgrade.OnEvent(rec.add)).Run(t.Context(), plan)
	})
	var e upgrade.Event
	select {
	case e = <-blocked:
	case err := <-done:
		t.Fatalf("run ended without being blocked: %v", err)
	case <-time.After(10 * time.Minute):
		t.Fatal("no gate-blocked event within 10m")
	}
	if err := <-killed; err != nil {
		t.Fatal(err)
	}
	if e.Node != 5 || minISRReason(e) < 0 {
		t.Fatalf("blocked event %v: want broker 5 blocked by named partitions at min ISR", e)
	}
	t.Logf("blocked as expected: %v", e)
	if slices.Contains(rec.restartOrder(), 5) {
		t.Fatal("broker 5 restarted while broker 4 was dead")
	}
	if err := c.StartNode(t.Context(), 4); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	end := time.Now()
	finishTraffic(t, tr, start, end)
	for _, n := range c.All() {
		if n.Release() != "4.1.2" {
			t.Errorf("node %d runs %s", n.ID(), n.Release())
		}
	}
}

// sharedVolumeDiskRatio is the disk check's ratio in these tests: see mustRunner.
const sharedVolumeDiskRatio = 0.99

// mustRunner returns upgrade.NewRunner's Runner, failing the test on an error.
func mustRunner(t testing.TB, cl *kgo.Client, orch node.Orchestrator, opts ...upgrade.RunnerOption) *upgrade.Runner {
	t.Helper()
	// Every node of a kafkatest cluster shares the machine's one volume, so
	// Kafka reports the whole machine's disk for each broker; the default 0.85
	// would make the replacement tests depend on how full the CI machine is.
	// A test's own ReplaceDiskRatio comes later and wins.
	opts = append([]upgrade.RunnerOption{upgrade.ReplaceDiskRatio(sharedVolumeDiskRatio)}, opts...)
	r, err := upgrade.NewRunner(cl, orch, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
