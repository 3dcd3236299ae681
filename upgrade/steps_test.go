package upgrade

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/health"
	"github.com/kupgrade/kupgrade/node"
)

// bakeRun runs a 3.9.2 → 4.1.2 plan with a bake of d on the fake cluster,
// calling during (if not nil) when the bake starts, and returns the run's
// events, how long the bake step lasted and the run's error.
func bakeRun(t *testing.T, f *fakeCluster, d time.Duration, during func()) (*eventLog, time.Duration, error) {
	t.Helper()
	plan := kraftPlan(t, f, "4.1.2", BakeTime(d))
	var log eventLog
	var began, ended time.Time
	hook := func(e Event) {
		log.add(e)
		if e.StepKind != StepBake {
			return
		}
		switch e.Kind {
		case EventStepStarted:
			began = time.Now()
			if during != nil {
				during()
			}
		case EventStepDone, EventStepFailed:
			ended = time.Now()
		}
	}
	err := mustRunner(t, nil, f, withOps(f), PassHolds(), OnEvent(hook)).Run(t.Context(), plan)
	if began.IsZero() || ended.IsZero() {
		t.Fatalf("the bake step did not run to an end (run: %v)", err)
	}
	return &log, ended.Sub(began), err
}

// TestBakeLastsItsDuration proves a healthy bake watches the cluster for
// its whole duration, with events, and then lets the finalize step run.
func TestBakeLastsItsDuration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeCluster(compat.ModeKRaft, "3.9.2", 3, 3)
		f.levels["metadata.version"] = 21
		log, took, err := bakeRun(t, f, 10*time.Minute, nil)
		if err != nil {
			t.Fatal(err)
		}
		// The last pause of the watch may end a poll interval (2s at most)
		// early; nothing else may shorten or stretch it.
		if took < 10*time.Minute-2*time.Second || took > 10*time.Minute+time.Second {
			t.Errorf("bake took %v, want 10m", took)
		}
		var waiting int
		for _, e := range log.ev {
			if e.StepKind == StepBake && e.Kind == EventWaiting {
				waiting++
			}
		}
		if waiting < 2 {
			t.Errorf("%d waiting events during the bake, want one when it starts watching and one when it is over", waiting)
		}
		if f.levels["metadata.version"] != 27 {
			t.Errorf("metadata.version %d after the bake, want 27", f.levels["metadata.version"])
		}
	})
}

// TestBakeFailsWhenNodeDies proves a bake fails at once, naming the node,
// when a broker dies in the middle of it, and that finalize does not run.
func TestBakeFailsWhenNodeDies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeCluster(compat.ModeKRaft, "3.9.2", 3, 3)
		f.levels["metadata.version"] = 21
		kill := func() {
			time.AfterFunc(time.Minute, func() {
				f.mu.Lock()
				f.down[5] = true
				f.mu.Unlock()
			})
		}
		_, took, err := bakeRun(t, f, 10*time.Minute, kill)
		se, ok := errors.AsType[*StepError](err)
		if !ok || se.Step.Kind != StepBake || !errors.Is(err, health.ErrUnsafe) || !strings.Contains(err.Error(), "broker 5 is not registered or is fenced") {
			t.Fatalf("Run = %v, want the bake step to fail naming broker 5", err)
		}
		if took < time.Minute || took > time.Minute+3*time.Second {
			t.Errorf("bake failed after %v, want within a poll interval of broker 5's death at 1m", took)
		}
		if f.levels["metadata.version"] != 21 {
			t.Errorf("metadata.version %d: finalize ran after a failed bake", f.levels["metadata.version"])
		}
	})
}

// TestBakeFailsWhenUnresponsive proves the bake runs the liveness probe: a
// broker that hangs (Kafka still counts it in) fails it.
func TestBakeFailsWhenUnresponsive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeCluster(compat.ModeKRaft, "3.9.2", 3, 3)
		f.levels["metadata.version"] = 21
		ops := &hungOps{fakeCluster: f, hung: map[int32]bool{}}
		plan := kraftPlan(t, f, "4.1.2", BakeTime(10*time.Minute))
		start := time.Now()
		var began time.Time
		hook := func(e Event) {
			if e.StepKind == StepBake && e.Kind == EventStepStarted {
				began = time.Now()
				time.AfterFunc(30*time.Second, func() { ops.setHung(6, true) })
			}
		}
		err := mustRunner(t, nil, f, withOps(ops), PassHolds(), OnEvent(hook)).Run(t.Context(), plan)
		if se, ok := errors.AsType[*StepError](err); !ok || se.Step.Kind != StepBake || !strings.Contains(err.Error(), "broker 6 did not answer") {
			t.Fatalf("Run = %v, want the bake to fail naming unresponsive broker 6", err)
		}
		if took := time.Since(began); began.IsZero() || took > 33*time.Second {
			t.Errorf("bake failed %v after it began (run %v), want within a poll interval of the hang at 30s", took, time.Since(start))
		}
	})
}

// provisioningFake is the fake cluster with a Provisioner that is never
// called: tests resume plans whose provision and retire steps are done.
type provisioningFake struct{ *fakeCluster }

func (p provisioningFake) Provision(ctx context.Context, spec node.Spec) (node.Node, error) {
	return node.Node{}, errors.New("not in this test")
}

func (p provisioningFake) Retire(ctx context.Context, id int32) error {
	return errors.New("not in this test")
}

// TestBakeAfterRetire proves a bake does not count a broker that an earlier
// step retired (a node-replacement plan bakes after retiring the old
// brokers), and does watch the brokers that were up when it began.
func TestBakeAfterRetire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeCluster(compat.ModeKRaft, "4.1.2", 3, 3)
		f.levels["metadata.version"] = 27
		st := f.state()
		st.Nodes = append(st.Nodes, compat.NodeState{ID: 9, Roles: []node.Role{node.RoleBroker}, Release: compat.MustParseRelease("4.1.2")})
		p := Plan{Version: PlanVersion, Mode: compat.ModeKRaft, Target: compat.MustParseRelease("4.1.2"), Nodes: st.Nodes, Steps: []Step{
			{Kind: StepPreflight, Node: -1, Reversible: true},
			{Kind: StepRetire, Hop: 1, Node: 9, Roles: []node.Role{node.RoleBroker}, Hold: true},
			{Kind: StepBake, Hop: 1, Node: -1, Duration: time.Minute, Reversible: true},
		}}
		Reseal(&p)
		j := &MemoryJournal{}
		j.Save(t.Context(), Record{PlanID: p.ID, Steps: []StepRecord{{State: StepDone}, {State: StepDone}, {}}})
		if err := mustRunner(t, nil, provisioningFake{f}, withOps(f), WithJournal(j)).Run(t.Context(), p); err != nil {
			t.Fatalf("bake after broker 9 was retired: %v", err)
		}
		// Without the retire step, the missing broker 9 fails the bake.
		p.Steps = slices.Delete(p.Steps, 1, 2)
		Reseal(&p)
		j = &MemoryJournal{} // the preflight (which would miss node 9 too) done
		j.Save(t.Context(), Record{PlanID: p.ID, Steps: []StepRecord{{State: StepDone}, {}}})
		err := mustRunner(t, nil, f, withOps(f), WithJournal(j)).Run(t.Context(), p)
		if !errors.Is(err, health.ErrUnsafe) || !strings.Contains(err.Error(), "broker 9 is not registered") {
			t.Errorf("bake with broker 9 missing = %v, want it to fail naming broker 9", err)
		}
	})
}
