package upgrade

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/node"
)

func TestStopTheWorldPlan(t *testing.T) {
	kr := compat.State{Mode: compat.ModeKRaft, Finalized: compat.FeatureLevels{"metadata.version": 25},
		Nodes: nodes("1:c:4.0.2", "2:c:4.0.2", "3:c:4.0.2", "4:b:4.0.2", "5:b:4.0.2", "6:b:4.0.2")}
	to := Target{Version: compat.MustParseRelease("4.1.2")}
	_, err := NewStopTheWorldPlan(kr, to)
	de, ok := errors.AsType[*DowntimeError](err)
	if !ok || !errors.Is(err, ErrDowntimeNotAccepted) {
		t.Fatalf("without AcceptDowntime: %v, want a *DowntimeError", err)
	}
	if diff := cmp.Diff(DowntimeError{Nodes: []int32{1, 2, 3, 4, 5, 6}, Outages: 1}, *de); diff != "" {
		t.Errorf("DowntimeError (-want +got):\n%s", diff)
	}
	p, err := NewStopTheWorldPlan(kr, to, AcceptDowntime())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"preflight -1", "stop-the-world -1", "finalize -1"}, stepList(p)); diff != "" {
		t.Errorf("KRaft stop-the-world (-want +got):\n%s", diff)
	}
	rolling, _ := NewPlan(kr, to)
	if s := p.Steps[1]; !slices.Equal(s.Nodes, []int32{1, 2, 3, 4, 5, 6}) || s.Change.Version != "4.1.2" {
		t.Errorf("stop-the-world step %+v, want nodes 1-6 onto 4.1.2", s)
	}
	if diff := cmp.Diff(rolling.Steps[len(rolling.Steps)-1], p.Steps[2]); diff != "" {
		t.Errorf("the finalize step differs from the rolling plan's (-rolling +stop-the-world):\n%s", diff)
	}
	if err := p.Verify(); err != nil {
		t.Error(err)
	}
	// ZooKeeper: one outage with the pin, one raising it, as the rolls.
	zk := compat.State{Mode: compat.ModeZooKeeper, Finalized: compat.FeatureLevels{}, Nodes: nodes("1:b:3.6.2", "2:b:3.6.2", "3:b:3.6.2")}
	p, err = NewStopTheWorldPlan(zk, Target{Version: compat.MustParseRelease("3.9.2")}, AcceptDowntime())
	if err != nil {
		t.Fatal(err)
	}
	rolling, _ = NewPlan(zk, Target{Version: compat.MustParseRelease("3.9.2")})
	var want, got []node.Change
	for _, s := range rolling.Steps {
		if s.Kind == StepRestart && (len(want) == 0 || !sameChange(want[len(want)-1], s.Change)) {
			want = append(want, s.Change)
		}
	}
	for _, s := range p.Steps {
		if s.Kind == StepRestart {
			t.Errorf("a stop-the-world plan restarts one node: %v", s)
		}
		if s.Kind == StepStopWorld {
			got = append(got, s.Change)
			if !slices.Equal(s.Nodes, []int32{1, 2, 3}) {
				t.Errorf("%v stops %v, want every broker", s, s.Nodes)
			}
		}
	}
	if len(want) < 2 {
		t.Fatalf("the rolling ZooKeeper plan has %d rolls, want 2 or more", len(want))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stop-the-world changes differ from the rolls' (-rolls +stop-the-world):\n%s", diff)
	}
	// An edited plan with a node it does not list is refused.
	p.Steps[1].Nodes = append(p.Steps[1].Nodes, 9)
	Reseal(&p)
	if err := p.Verify(); err == nil {
		t.Error("a stop-the-world step of an unplanned node 9 verified")
	}
}

// stopperFake is the fake cluster with a node.Stopper that logs its calls.
type stopperFake struct {
	*fakeCluster
	mu    sync.Mutex
	calls []string
}

func (s *stopperFake) StopNode(ctx context.Context, id int32) error {
	time.Sleep(time.Duration(id) * 100 * time.Millisecond) // nodes stop at different paces
	s.fakeCluster.mu.Lock()
	s.fakeCluster.down[id] = true
	s.fakeCluster.mu.Unlock()
	s.mu.Lock()
	s.calls = append(s.calls, "stop "+string(rune('0'+id)))
	s.mu.Unlock()
	return nil
}

func (s *stopperFake) StartStopped(ctx context.Context, id int32, ch node.Change) error {
	s.mu.Lock()
	s.calls = append(s.calls, "start "+string(rune('0'+id)))
	s.mu.Unlock()
	return s.fakeCluster.Restart(ctx, id, ch)
}

// TestRunnerStopTheWorld runs a stop-the-world plan on the fake cluster:
// with a node.Stopper, every node is down before any starts (brokers
// stopped first, controllers started first); without one, every node
// restarts concurrently. Either way the journal records the outage, from
// the first stop until the cluster is healthy again (the fake's nodes
// catch up 3s after their start), and the finalize step runs after.
func TestRunnerStopTheWorld(t *testing.T) {
	for _, withStopper := range []bool{true, false} {
		name := map[bool]string{true: "stopper", false: "concurrent restarts"}[withStopper]
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := kraft402()
				p, err := NewStopTheWorldPlan(f.state(), Target{Version: compat.MustParseRelease("4.1.2")}, AcceptDowntime())
				if err != nil {
					t.Fatal(err)
				}
				var orch node.Orchestrator = &slowOrch{fakeCluster: f, took: 2 * time.Second}
				sf := &stopperFake{fakeCluster: f}
				if withStopper {
					orch = sf
				}
				j := &MemoryJournal{}
				start := time.Now()
				if err := mustRunner(t, nil, orch, withOps(f), PassHolds(), WithJournal(j)).Run(t.Context(), p); err != nil {
					t.Fatal(err)
				}
				took := time.Since(start)
				r, _ := j.Load(t.Context())
				w := r.Steps[1].Outage
				if w == nil {
					t.Fatal("no outage recorded")
				}
				// (In synctest's time the other steps take no time.)
				if w.Duration() < f.catchUp || w.Duration() > took || w.From.Before(start) {
					t.Errorf("outage %v from %v, want at least the fake's catch-up of %v, within the run's %v from %v", w.Duration(), w.From, f.catchUp, took, start)
				}
				if len(f.updates) != 1 {
					t.Errorf("features updated %d times, want once, after the outage", len(f.updates))
				}
				for id, n := range f.restartCounts() {
					if n != 1 {
						t.Errorf("node %d restarted %d times", id, n)
					}
				}
				if len(f.restartCounts()) != 6 {
					t.Errorf("restarted %v, want every node once", f.restartCounts())
				}
				if !withStopper {
					if o := orch.(*slowOrch); o.maxAtt != 6 {
						t.Errorf("at most %d restarts at once, want all 6", o.maxAtt)
					}
					return
				}
				// Brokers 4-6 stop, then controllers 1-3; controllers
				// start, then brokers (any order within each).
				var phases [][]string
				for k, c := range sf.calls {
					if k%3 == 0 {
						phases = append(phases, nil)
					}
					phases[len(phases)-1] = append(phases[len(phases)-1], c)
				}
				for k := range phases {
					slices.Sort(phases[k])
				}
				want := [][]string{{"stop 4", "stop 5", "stop 6"}, {"stop 1", "stop 2", "stop 3"}, {"start 1", "start 2", "start 3"}, {"start 4", "start 5", "start 6"}}
				if diff := cmp.Diff(want, phases); diff != "" {
					t.Errorf("stop and start order (-want +got):\n%s\n%v", diff, sf.calls)
				}
			})
		})
	}
}

// TestRollbackStopTheWorld: a rollback of a stop-the-world run rolls every
// node of its stop-the-world step back, one at a time.
func TestRollbackStopTheWorld(t *testing.T) {
	kr := compat.State{Mode: compat.ModeKRaft, Finalized: compat.FeatureLevels{"metadata.version": 25},
		Nodes: nodes("1:c:4.0.2", "2:b:4.0.2", "3:b:4.0.2")}
	p, err := NewStopTheWorldPlan(kr, Target{Version: compat.MustParseRelease("4.1.2")}, AcceptDowntime())
	if err != nil {
		t.Fatal(err)
	}
	rec := Record{PlanID: p.ID, Steps: make([]StepRecord, len(p.Steps))}
	rec.Steps[0].State, rec.Steps[1].State, rec.Steps[1].Restarted = StepDone, StepDone, true
	rb, err := NewRollbackPlan(p, rec)
	if err != nil {
		t.Fatal(err)
	}
	var back []int32
	for _, s := range rb.Steps {
		if s.Kind == StepRestart && s.Change.Version == "4.0.2" {
			back = append(back, s.Node)
		}
	}
	slices.Sort(back)
	if !slices.Equal(back, []int32{1, 2, 3}) {
		t.Errorf("rollback restarts %v back onto 4.0.2, want every node:\n%v", back, rb)
	}
}
