package upgrade

import (
	"context"
	"errors"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/health"
	"github.com/kupgrade/kupgrade/node"
)

// eventLog collects events.
type eventLog struct {
	mu sync.Mutex
	ev []Event
}

func (l *eventLog) add(e Event) { l.mu.Lock(); l.ev = append(l.ev, e); l.mu.Unlock() }

func (l *eventLog) kinds(kind EventKind) []int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []int32
	for _, e := range l.ev {
		if e.Kind == kind {
			out = append(out, e.Node)
		}
	}
	return out
}

func kraftPlan(t *testing.T, f *fakeCluster, target string, opts ...PlanOption) Plan {
	t.Helper()
	p, err := NewPlan(f.state(), Target{Version: compat.MustParseRelease(target)}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunnerRollsControllersFirstActiveLast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeCluster(compat.ModeKRaft, "3.9.2", 3, 3)
		f.levels["metadata.version"] = 21
		f.leader = 1
		plan := kraftPlan(t, f, "4.1.2")
		var log eventLog
		r := mustRunner(t, nil, f, withOps(f), OnEvent(log.add), PassHolds())
		if err := r.Run(t.Context(), plan); err != nil {
			t.Fatal(err)
		}
		// Node 1 leads the quorum, so it goes last among the controllers;
		// when it restarts, leadership moves to 2 (already done).
		if diff := cmp.Diff([]int32{2, 3, 1, 4, 5, 6}, f.restartOrder()); diff != "" {
			t.Errorf("restart order (-want +got):\n%s", diff)
		}
		if got := f.levels["metadata.version"]; got != 27 {
			t.Errorf("metadata.version = %d, want 27 (4.1-IV1)", got)
		}
		if got := log.kinds(EventCaughtUp); len(got) != 6 {
			t.Errorf("caught-up events for %v, want all six nodes", got)
		}
		if n := len(log.kinds(EventRunDone)); n != 1 {
			t.Errorf("%d run-done events", n)
		}
	})
}

func TestRunnerHoldsIrreversibleSteps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeCluster(compat.ModeKRaft, "3.9.2", 3, 3)
		f.levels["metadata.version"] = 21
		plan := kraftPlan(t, f, "4.1.2")
		j := &MemoryJournal{}
		err := mustRunner(t, nil, f, withOps(f), WithJournal(j)).Run(t.Context(), plan)
		he, ok := errors.AsType[*HeldError](err)
		if !ok || !errors.Is(err, ErrHeld) || he.Step.Kind != StepFinalize {
			t.Fatalf("Run = %v, want a HeldError before the finalize step", err)
		}
		if !strings.Contains(err.Error(), "cannot be undone") {
			t.Errorf("error %q does not say why it holds", err)
		}
		if got := len(f.restartOrder()); got != 6 {
			t.Errorf("%d restarts before the hold, want 6", got)
		}
		if f.levels["metadata.version"] != 21 {
			t.Error("metadata.version moved without PassHolds")
		}
		// Going on with PassHolds finishes the plan without restarting again.
		if err := mustRunner(t, nil, f, withOps(f), WithJournal(j), PassHolds()).Run(t.Context(), plan); err != nil {
			t.Fatal(err)
		}
		if got := len(f.restartOrder()); got != 6 || f.levels["metadata.version"] != 27 {
			t.Errorf("after PassHolds: %d restarts, metadata.version %d", got, f.levels["metadata.version"])
		}
	})
}

func TestRunnerResumesAfterCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeCluster(compat.ModeKRaft, "3.9.2", 3, 3)
		f.levels["metadata.version"] = 21
		f.leader = 3
		plan := kraftPlan(t, f, "4.1.2")
		j := NewFileJournal(filepath.Join(t.TempDir(), "journal.json"))
		ctx, cancel := context.WithCancel(t.Context())
		f.onRestart = func(id int32) {
			if len(f.restartOrder()) == 4 { // cancel while the 4th restart is in flight
				cancel()
			}
		}
		err := mustRunner(t, nil, f, withOps(f), WithJournal(j), PassHolds()).Run(ctx, plan)
		if err == nil || !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want a cancelled run", err)
		}
		rec, _ := j.Load(context.Background())
		inFlight := 0
		for _, s := range rec.Steps {
			if s.State == StepStarted {
				inFlight++
			}
		}
		if inFlight != 1 {
			t.Errorf("journal has %d steps in flight, want 1: %+v", inFlight, rec.Steps)
		}
		f.onRestart = nil
		var log eventLog
		if err := mustRunner(t, nil, f, withOps(f), WithJournal(j), PassHolds(), OnEvent(log.add)).Run(t.Context(), plan); err != nil {
			t.Fatal(err)
		}
		for id, n := range f.restartCounts() {
			if n != 1 {
				t.Errorf("node %d restarted %d times, want once", id, n)
			}
		}
		if len(f.restartCounts()) != 6 {
			t.Errorf("restarted %v, want all six nodes", f.restartCounts())
		}
		// A finished plan run again does nothing.
		before := len(f.restartOrder())
		if err := mustRunner(t, nil, f, withOps(f), WithJournal(j), PassHolds()).Run(t.Context(), plan); err != nil || len(f.restartOrder()) != before {
			t.Errorf("re-run of a finished plan: err %v, restarts %d → %d", err, before, len(f.restartOrder()))
		}
	})
}

// killAfter returns an event hook that marks node id dead once its own
// step is done, and brings it back after back (never if zero).
func killAfter(f *fakeCluster, id int32, back time.Duration, log *eventLog) func(Event) {
	return func(e Event) {
		if log != nil {
			log.add(e)
		}
		if e.Kind != EventStepDone || e.Node != id {
			return
		}
		f.mu.Lock()
		f.down[id] = true
		f.mu.Unlock()
		if back > 0 {
			go func() {
				time.Sleep(back)
				f.mu.Lock()
				delete(f.down, id)
				f.mu.Unlock()
			}()
		}
	}
}

func TestRunnerGateBlocksThenProceeds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeCluster(compat.ModeKRaft, "3.9.2", 3, 3)
		f.levels["metadata.version"] = 21
		plan := kraftPlan(t, f, "4.1.2")
		// Broker 4 dies right after its upgrade: every partition it shares
		// with 5 sits at min ISR 2 until it is back, a minute later.
		var log eventLog
		start := time.Now()
		if err := mustRunner(t, nil, f, withOps(f), OnEvent(killAfter(f, 4, time.Minute, &log)), PassHolds()).Run(t.Context(), plan); err != nil {
			t.Fatal(err)
		}
		var blocked []Event
		for _, e := range log.ev {
			if e.Kind == EventGateBlocked {
				blocked = append(blocked, e)
			}
		}
		if len(blocked) == 0 || blocked[0].Node != 5 || len(blocked[0].Reasons) == 0 || !strings.Contains(blocked[0].Reasons[0].Message, "orders-") {
			t.Fatalf("want a gate-blocked event for node 5 naming a partition, got %v", blocked)
		}
		if took := time.Since(start); took < time.Minute {
			t.Errorf("run took %v: it cannot have waited for broker 4", took)
		}
		if diff := cmp.Diff([]int32{1, 2, 3, 4, 5, 6}, f.restartOrder()); diff != "" {
			t.Errorf("restart order (-want +got):\n%s", diff)
		}
	})
}

func TestRunnerRestartsDownNodesFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeCluster(compat.ModeKRaft, "3.9.2", 3, 3)
		f.levels["metadata.version"] = 21
		plan := kraftPlan(t, f, "4.1.2")
		f.down[6] = true // dead before the run: restarting it first costs nothing
		if err := mustRunner(t, nil, f, withOps(f), PassHolds()).Run(t.Context(), plan); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int32{1, 2, 3, 6, 4, 5}, f.restartOrder()); diff != "" {
			t.Errorf("restart order (-want +got):\n%s", diff)
		}
	})
}

func TestRunnerGateTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeCluster(compat.ModeKRaft, "3.9.2", 3, 3)
		f.levels["metadata.version"] = 21
		plan := kraftPlan(t, f, "4.1.2")
		j := &MemoryJournal{}
		err := mustRunner(t, nil, f, withOps(f), WithJournal(j), GateTimeout(2*time.Minute), PassHolds(), OnEvent(killAfter(f, 4, 0, nil))).Run(t.Context(), plan)
		se, ok := errors.AsType[*StepError](err)
		if !ok || !errors.Is(err, health.ErrTimeout) || !errors.Is(err, health.ErrUnsafe) {
			t.Fatalf("Run = %v, want a StepError timing out on the health gate", err)
		}
		if se.Step.Kind != StepRestart || se.Step.Node != 5 || !strings.Contains(err.Error(), "orders-") {
			t.Errorf("failed at %v: %v; want broker 5's restart, blocked by partitions it shares with dead broker 4", se.Step, err)
		}
		rec, _ := j.Load(context.Background())
		if rec.Steps[se.Index].State != StepFailed || rec.Steps[se.Index].Err == "" {
			t.Errorf("journal step %d = %+v, want failed with the error", se.Index, rec.Steps[se.Index])
		}
	})
}

func TestRunnerNodeFailsToStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeCluster(compat.ModeKRaft, "3.9.2", 3, 3)
		f.levels["metadata.version"] = 21
		plan := kraftPlan(t, f, "4.1.2")
		f.failNode = 5
		j := &MemoryJournal{}
		err := mustRunner(t, nil, f, withOps(f), WithJournal(j), PassHolds()).Run(t.Context(), plan)
		se, ok := errors.AsType[*StepError](err)
		if !ok || se.Step.Node != 5 || !strings.Contains(err.Error(), "node 5 did not restart") || !strings.Contains(err.Error(), "invalid config") {
			t.Fatalf("Run = %v, want a StepError naming node 5 and the cause", err)
		}
		if slices.Contains(f.restartOrder(), 6) {
			t.Error("node 6 restarted after node 5 failed")
		}
		rec, _ := j.Load(context.Background())
		if rec.Steps[se.Index].State != StepFailed {
			t.Errorf("journal: %+v", rec.Steps[se.Index])
		}
	})
}

func TestRunnerRefusesOtherPlansJournal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeCluster(compat.ModeKRaft, "3.9.2", 3, 3)
		f.levels["metadata.version"] = 21
		j := &MemoryJournal{}
		j.Save(t.Context(), Record{PlanID: "other", Steps: make([]StepRecord, 3)})
		err := mustRunner(t, nil, f, withOps(f), WithJournal(j)).Run(t.Context(), kraftPlan(t, f, "4.1.2"))
		if !errors.Is(err, ErrJournalMismatch) {
			t.Fatalf("Run = %v, want ErrJournalMismatch", err)
		}
		if len(f.restartOrder()) != 0 {
			t.Error("restarted nodes despite the mismatch")
		}
	})
}

func TestRunnerSkipsChangesInEffect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeCluster(compat.ModeKRaft, "3.9.2", 3, 3)
		f.levels["metadata.version"] = 21
		plan := kraftPlan(t, f, "4.1.2")
		f.onRestart = func(id int32) {
			if id == 1 {
				f.nodes[2].version = "4.1.2" // someone upgrades node 2 by hand during the run
			}
		}
		var log eventLog
		if err := mustRunner(t, nil, f, withOps(f), PassHolds(), OnEvent(log.add)).Run(t.Context(), plan); err != nil {
			t.Fatal(err)
		}
		if f.restartCounts()[2] != 0 {
			t.Errorf("node 2 restarted although it already ran 4.1.2")
		}
		if got := log.kinds(EventStepSkipped); !slices.Contains(got, 2) {
			t.Errorf("no skipped event for node 2: %v", got)
		}
	})
}

func TestFileJournalRoundTrip(t *testing.T) {
	j := NewFileJournal(filepath.Join(t.TempDir(), "j.json"))
	if _, err := j.Load(t.Context()); !errors.Is(err, ErrNoRecord) {
		t.Fatalf("Load of a new journal = %v, want ErrNoRecord", err)
	}
	want := Record{PlanID: "abc", Steps: []StepRecord{{State: StepDone, Started: time.Unix(100, 0).UTC(), Finished: time.Unix(200, 0).UTC()}, {State: StepStarted, Restarted: true}, {}}, Updated: time.Unix(300, 0).UTC()}
	if err := j.Save(t.Context(), want); err != nil {
		t.Fatal(err)
	}
	got, err := j.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	files, _ := filepath.Glob(filepath.Join(filepath.Dir(j.Path()), "*"))
	if len(files) != 1 {
		t.Errorf("files beside the journal: %v (temporary files left behind?)", files)
	}
}

func TestRunnerFailsFastWhenNodeDies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeCluster(compat.ModeKRaft, "3.9.2", 3, 3)
		f.levels["metadata.version"] = 21
		plan := kraftPlan(t, f, "4.1.2")
		f.dieNode = 5
		start := time.Now()
		err := mustRunner(t, nil, f, withOps(f), PassHolds(), CatchUpTimeout(10*time.Minute)).Run(t.Context(), plan)
		se, ok := errors.AsType[*StepError](err)
		if !ok || se.Step.Node != 5 || !strings.Contains(err.Error(), "node 5's process is not running") {
			t.Fatalf("Run = %v, want node 5's step to fail because its process died", err)
		}
		if took := time.Since(start); took > time.Minute {
			t.Errorf("took %v to notice: the Liveness capability should stop the wait at once", took)
		}
	})
}

func TestRunnerGateSeesDeadNodesBeforeKafka(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeCluster(compat.ModeKRaft, "3.9.2", 3, 3)
		f.levels["metadata.version"] = 21
		plan := kraftPlan(t, f, "4.1.2")
		// Broker 4's process dies after its upgrade, but Kafka's metadata
		// still lists it in every ISR: only the Orchestrator knows.
		hook := func(e Event) {
			if e.Kind == EventStepDone && e.Node == 4 {
				f.mu.Lock()
				f.unnoticed = map[int32]bool{4: true}
				f.mu.Unlock()
			}
		}
		err := mustRunner(t, nil, f, withOps(f), PassHolds(), OnEvent(hook), GateTimeout(time.Minute)).Run(t.Context(), plan)
		se, ok := errors.AsType[*StepError](err)
		if !ok || se.Step.Node != 5 || !errors.Is(err, health.ErrUnsafe) {
			t.Fatalf("Run = %v, want broker 5's gate to refuse while broker 4 is dead", err)
		}
		if slices.Contains(f.restartOrder(), 5) {
			t.Errorf("broker 5 restarted while broker 4 was dead: %v", f.restartOrder())
		}
	})
}

// fakeProber answers canary probes for the fake cluster's brokers: a broker
// that is down fails, and slow is slower than any gate until slowUntil.
type fakeProber struct {
	f         *fakeCluster
	slow      int32
	slowUntil time.Time
	probes    int
}

func (p *fakeProber) Probe(ctx context.Context) (health.ProbeResults, error) {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	p.probes++
	var rs health.ProbeResults
	for _, id := range slices.Sorted(maps.Keys(p.f.nodes)) {
		if !slices.Contains(p.f.nodes[id].roles, node.RoleBroker) {
			continue
		}
		r := health.ProbeResult{Broker: id, Topic: "canary", RoundTrip: 5 * time.Millisecond}
		switch {
		case p.f.down[id]:
			r.Err = errors.New("connection refused")
		case id == p.slow && time.Now().Before(p.slowUntil):
			r.RoundTrip = 5 * time.Second
		}
		rs = append(rs, r)
	}
	return rs, nil
}

func TestRunnerCanaryGate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeCluster(compat.ModeKRaft, "3.9.2", 3, 3)
		f.levels["metadata.version"] = 21
		plan := kraftPlan(t, f, "4.1.2")
		// Broker 6 serves slowly for two minutes: no broker restarts
		// meanwhile, though Kafka's metadata finds nothing wrong.
		start := time.Now()
		p := &fakeProber{f: f, slow: 6, slowUntil: start.Add(2 * time.Minute)}
		var log eventLog
		if err := mustRunner(t, nil, f, withOps(f), CanaryGate(p, time.Second), OnEvent(log.add), PassHolds()).Run(t.Context(), plan); err != nil {
			t.Fatal(err)
		}
		var blocked []Event
		for _, e := range log.ev {
			if e.Kind == EventGateBlocked {
				blocked = append(blocked, e)
			}
		}
		if len(blocked) == 0 {
			t.Fatal("no gate blocked by the slow broker")
		}
		for _, e := range blocked {
			if len(e.Reasons) != 1 || e.Reasons[0].Rule != health.RuleCanarySlow || !slices.Equal(e.Reasons[0].Nodes, []int32{6}) {
				t.Errorf("blocked %v, want only broker 6's slow round trip", e)
			}
		}
		if took := time.Since(start); took < 2*time.Minute {
			t.Errorf("run took %v: it cannot have waited for broker 6", took)
		}
		if diff := cmp.Diff([]int32{1, 2, 3, 4, 5, 6}, f.restartOrder()); diff != "" {
			t.Errorf("restart order (-want +got):\n%s", diff)
		}
		if p.probes < 12 {
			t.Errorf("%d probes, want at least one before and one after each of 6 restarts", p.probes)
		}
		if _, err := NewRunner(nil, f, CanaryGate(p, 0)); err == nil || !strings.Contains(err.Error(), "CanaryGate") {
			t.Errorf("CanaryGate(p, 0): %v, want an error naming the option", err)
		}
	})
}
