package upgrade_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/kafkatest"
	"github.com/kupgrade/kupgrade/node"
	"github.com/kupgrade/kupgrade/upgrade"
)

// stopTimes is a kafkatest cluster whose node.Stopper calls are timed.
type stopTimes struct {
	*kafkatest.Cluster
	mu            sync.Mutex
	stops, starts map[int32]time.Time // when each StopNode returned, each StartStopped was called
}

func (s *stopTimes) StopNode(ctx context.Context, id int32) error {
	err := s.Cluster.StopNode(ctx, id)
	s.mu.Lock()
	s.stops[id] = time.Now()
	s.mu.Unlock()
	return err
}

func (s *stopTimes) StartStopped(ctx context.Context, id int32, ch node.Change) error {
	s.mu.Lock()
	s.starts[id] = time.Now()
	s.mu.Unlock()
	return s.Cluster.StartStopped(ctx, id, ch)
}

// TestStopTheWorldUpgrade upgrades a KRaft cluster (1 controller, 3
// brokers) from 3.9.2 to 4.0.2 by stopping every node at once, under
// traffic: produce requests may wait or fail during the outage, but no
// acknowledged record may be lost. The outage the Runner reports must
// cover the span in which every node was down (measured here, from the
// Orchestrator's side) and be shorter than the run.
func TestStopTheWorldUpgrade(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.KRaft("3.9.2"), kafkatest.Controllers(1), kafkatest.Brokers(3))
	in := inspect(t, c)
	target := upgrade.Target{Version: compat.MustParseRelease("4.0.2")}
	if _, err := upgrade.NewStopTheWorldPlan(in.State, target); !errors.Is(err, upgrade.ErrDowntimeNotAccepted) {
		t.Fatalf("NewStopTheWorldPlan without AcceptDowntime = %v, want ErrDowntimeNotAccepted", err)
	}
	plan, err := upgrade.NewStopTheWorldPlan(in.State, target, upgrade.AcceptDowntime())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("plan:\n%v", plan)
	var stw []upgrade.Step
	for _, s := range plan.Steps {
		if s.Kind == upgrade.StepStopWorld {
			stw = append(stw, s)
		}
	}
	if len(stw) != 1 || !slices.Equal(stw[0].Nodes, []int32{1, 2, 3, 4}) {
		t.Fatalf("stop-the-world steps %v, want one for nodes 1-4", stw)
	}
	tr := withTraffic(t, c)
	orch := &stopTimes{Cluster: c, stops: map[int32]time.Time{}, starts: map[int32]time.Time{}}
	j := &upgrade.MemoryJournal{}
	rec := newRecorder(t)
	start := time.Now()
	err = mustRunner(t, c.Client(t), orch, upgrade.PassHolds(), upgrade.OnEvent(rec.add), upgrade.WithJournal(j),
		upgrade.KRaftControllers(c.ControllerAddrs()...), upgrade.WithLogger(testLogger(t))).Run(t.Context(), plan)
	end := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	r, err := j.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var w *upgrade.OutageWindow
	for i, s := range plan.Steps {
		if s.Kind == upgrade.StepStopWorld {
			w = r.Steps[i].Outage
		}
	}
	if w == nil {
		t.Fatal("the journal reports no outage for the stop-the-world step")
	}
	// Every node was down at once: the last stop came before the first
	// start, and the reported window covers both.
	orch.mu.Lock()
	var lastStop, firstStart time.Time
	for _, at := range orch.stops {
		if at.After(lastStop) {
			lastStop = at
		}
	}
	for _, at := range orch.starts {
		if firstStart.IsZero() || at.Before(firstStart) {
			firstStart = at
		}
	}
	stopped, started := len(orch.stops), len(orch.starts)
	orch.mu.Unlock()
	run := end.Sub(start)
	t.Logf("outage %v (from %v to %v after the run began); every node down from %v to %v (%v); the run took %v",
		w.Duration().Round(time.Millisecond), w.From.Sub(start).Round(time.Millisecond), w.To.Sub(start).Round(time.Millisecond),
		lastStop.Sub(start).Round(time.Microsecond), firstStart.Sub(start).Round(time.Microsecond), firstStart.Sub(lastStop), run.Round(time.Millisecond))
	if stopped != 4 || started != 4 {
		t.Errorf("%d nodes stopped and %d started through node.Stopper, want 4 and 4", stopped, started)
	}
	if !lastStop.Before(firstStart) {
		t.Errorf("a node started (%v) before the last one stopped (%v): not a stop-the-world", firstStart, lastStop)
	}
	if w.Duration() <= 0 || w.Duration() >= run {
		t.Errorf("outage %v, want more than 0 and less than the run's %v", w.Duration(), run)
	}
	if w.From.After(lastStop) || w.To.Before(firstStart) {
		t.Errorf("the outage %v–%v does not cover the span every node was down (%v–%v)", w.From, w.To, lastStop, firstStart)
	}
	// Traffic: failures are allowed during the outage; loss is not.
	if err := tr.WaitAcknowledged(t.Context(), tr.Progress().Acknowledged+1000); err != nil {
		t.Fatal(err)
	}
	rep, err := tr.Stop(context.Background())
	if err != nil {
		t.Fatalf("traffic: %v", err)
	}
	t.Logf("traffic: %v", rep)
	t.Logf("produce latency during the run: %v", tr.Latency(start, end))
	if err := rep.Err(); err != nil {
		t.Error(err)
	}
	if lat := tr.Latency(w.From, w.To); lat.Count > 0 && lat.Max < time.Second {
		t.Errorf("records sent during the %v outage were acknowledged within %v: no outage seen by clients?", w.Duration(), lat.Max)
	}
	after := inspect(t, c)
	for _, n := range after.State.Nodes {
		if n.Release.String() != "4.0.2" {
			t.Errorf("node %d runs %v, want 4.0.2", n.ID, n.Release)
		}
	}
	for _, s := range plan.Steps {
		if s.Kind == upgrade.StepFinalize {
			for f, l := range s.Features {
				if after.State.Finalized[f] != l {
					t.Errorf("%s finalized at %d, want %d (the plan's finalize step)", f, after.State.Finalized[f], l)
				}
			}
		}
	}
}
