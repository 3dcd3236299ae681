package upgrade

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/node"
)

// remoteOrchestrator restarts nodes of a fake cluster as an orchestrator in
// another process would (systemd over SSH, a Kubernetes operator): a
// restart, once asked for, goes on to its end (the node down for took, then
// up with the change) even if the Runner that asked dies meanwhile.
type remoteOrchestrator struct {
	*fakeCluster
	took    time.Duration
	mu      sync.Mutex
	asked   map[int32]int
	onAsk   func(id int32)
	pending sync.WaitGroup
}

func (o *remoteOrchestrator) Restart(ctx context.Context, id int32, ch node.Change) error {
	o.mu.Lock()
	o.asked[id]++
	cb := o.onAsk
	o.mu.Unlock()
	o.fakeCluster.mu.Lock()
	o.fakeCluster.down[id] = true // stopping
	o.fakeCluster.mu.Unlock()
	done := make(chan error, 1)
	o.pending.Go(func() {
		time.Sleep(o.took)
		done <- o.fakeCluster.Restart(context.WithoutCancel(ctx), id, ch)
	})
	if cb != nil {
		cb(id)
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (o *remoteOrchestrator) askedCounts() map[int32]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[int32]int{}
	for id, n := range o.asked {
		out[id] = n
	}
	return out
}

// TestRerunAfterCrashDoesNotRestartTwice reproduces issue 12.2 with a fake:
// the Runner dies the moment its restart of node 4 reaches the Orchestrator,
// and a new Runner on the same journal starts at once, while that restart
// is still under way. The new run must wait for it to finish and not ask
// for node 4's restart again.
func TestRerunAfterCrashDoesNotRestartTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeCluster(compat.ModeKRaft, "3.9.2", 3, 3)
		f.levels["metadata.version"] = 21
		orch := &remoteOrchestrator{fakeCluster: f, took: 20 * time.Second, asked: map[int32]int{}}
		plan := kraftPlan(t, f, "4.1.2")
		j := &MemoryJournal{}
		ctx, kill := context.WithCancel(t.Context())
		orch.onAsk = func(id int32) {
			if id == 4 {
				kill() // the Runner "dies" as the restart reaches the Orchestrator
			}
		}
		err := mustRunner(t, nil, orch, withOps(f), WithJournal(j), PassHolds()).Run(ctx, plan)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("first run = %v, want it stopped", err)
		}
		orch.mu.Lock()
		orch.onAsk = nil
		orch.mu.Unlock()
		var log eventLog
		if err := mustRunner(t, nil, orch, withOps(f), WithJournal(j), PassHolds(), OnEvent(log.add)).Run(t.Context(), plan); err != nil {
			t.Fatal(err)
		}
		orch.pending.Wait()
		want := map[int32]int{1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1}
		if diff := cmp.Diff(want, orch.askedCounts()); diff != "" {
			t.Errorf("restarts asked for, per node (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(want, f.restartCounts()); diff != "" {
			t.Errorf("restarts done, per node (-want +got):\n%s", diff)
		}
	})
}

// TestRerunAfterCrashBeforeRestart covers the other side: the last run
// journaled the restart of node 4 but stopped before asking for it. The
// node is back but without its change; the settling wait runs out and the
// step fails, naming the node; the next run restarts it.
func TestRerunAfterCrashBeforeRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeCluster(compat.ModeKRaft, "3.9.2", 3, 3)
		f.levels["metadata.version"] = 21
		plan := kraftPlan(t, f, "4.1.2")
		j := &MemoryJournal{}
		if err := mustRunner(t, nil, f, withOps(f), WithJournal(j), PassHolds()).Run(t.Context(), plan); err != nil {
			t.Fatal(err)
		}
		// Rewrite history: node 4's step was journaled as restarting, and
		// its node still runs the old release.
		rec, _ := j.Load(t.Context())
		i := -1
		for k, s := range plan.Steps {
			if s.Kind == StepRestart && s.Node == 4 {
				i = k
			}
		}
		for k := i; k < len(rec.Steps); k++ {
			rec.Steps[k] = StepRecord{}
		}
		rec.Steps[i] = StepRecord{State: StepStarted, Restarted: true}
		j.Save(t.Context(), rec)
		f.mu.Lock()
		f.nodes[4].version = "3.9.2"
		f.mu.Unlock()
		before := f.restartCounts()[4]
		err := mustRunner(t, nil, f, withOps(f), WithJournal(j), PassHolds(), RestartTimeout(time.Minute)).Run(t.Context(), plan)
		se, ok := errors.AsType[*StepError](err)
		if !ok || se.Step.Node != 4 {
			t.Fatalf("Run = %v, want node 4's step to fail", err)
		}
		t.Logf("settling gave up: %v", err)
		if f.restartCounts()[4] != before {
			t.Error("node 4 was restarted while an earlier restart might still be under way")
		}
		if err := mustRunner(t, nil, f, withOps(f), WithJournal(j), PassHolds()).Run(t.Context(), plan); err != nil {
			t.Fatal(err)
		}
		if got := f.restartCounts()[4]; got != before+1 {
			t.Errorf("node 4 restarted %d times on the retry, want once", got-before)
		}
	})
}
