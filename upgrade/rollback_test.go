package upgrade

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kupgrade/kupgrade/compat"
)

// stepsOf renders steps as "kind node features/version" for comparisons.
func stepsOf(p Plan) []string {
	var out []string
	for _, s := range p.Steps {
		switch s.Kind {
		case StepRestart:
			out = append(out, fmt.Sprintf("restart %d %s", s.Node, s.Change.Version))
		case StepFinalize:
			verb := "finalize"
			if s.Downgrade {
				verb = "downgrade"
			}
			out = append(out, verb+" "+s.Features.String())
		default:
			out = append(out, string(s.Kind))
		}
	}
	return out
}

// ran returns a journal record of p in which steps [0, n) are done and
// step n has the state at (pending for none).
func ran(p Plan, n int, at StepState) Record {
	rec := Record{PlanID: p.ID, Steps: make([]StepRecord, len(p.Steps))}
	for i := range n {
		rec.Steps[i] = StepRecord{State: StepDone, Restarted: p.Steps[i].Kind == StepRestart}
	}
	if n < len(p.Steps) {
		rec.Steps[n].State = at
		rec.Steps[n].Restarted = at != StepPending && p.Steps[n].Kind == StepRestart
	}
	return rec
}

var kraft40 = compat.State{Mode: compat.ModeKRaft, Finalized: compat.FeatureLevels{"metadata.version": 25, "group.version": 1, "transaction.version": 2},
	Nodes: nodes("1:c:4.0.2", "2:c:4.0.2", "3:c:4.0.2", "4:b:4.0.2", "5:b:4.0.2", "6:b:4.0.2")}

// upTo41 plans 4.0.2 → 4.1.2 with share.version 1 (absent before) finalized too.
func upTo41(t *testing.T) Plan {
	t.Helper()
	p, err := NewPlan(kraft40, Target{Version: compat.MustParseRelease("4.1.2"), Features: compat.FeatureLevels{"share.version": 1}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(kraft40.Finalized, p.Finalized); diff != "" {
		t.Errorf("Plan.Finalized (-want +got):\n%s", diff)
	}
	return p
}

// TestRollbackAfterFinalize proves that a rollback undoes the finalize
// steps that ran (done or in flight) first, down to the levels finalized
// when the plan was made, a feature absent then going to 0, and then rolls
// brokers before controllers.
func TestRollbackAfterFinalize(t *testing.T) {
	p := upTo41(t)
	wantUp := []string{"preflight", "restart 1 4.1.2", "restart 2 4.1.2", "restart 3 4.1.2", "restart 4 4.1.2", "restart 5 4.1.2", "restart 6 4.1.2",
		"finalize metadata.version=27", "finalize share.version=1"}
	if diff := cmp.Diff(wantUp, stepsOf(p)); diff != "" {
		t.Fatalf("upgrade plan (-want +got):\n%s\n%v", diff, p)
	}
	back := []string{"restart 4 4.0.2", "restart 5 4.0.2", "restart 6 4.0.2", "restart 1 4.0.2", "restart 2 4.0.2", "restart 3 4.0.2"}
	for _, tt := range []struct {
		name string
		rec  Record
		want []string
	}{
		{"finished", ran(p, len(p.Steps), StepPending),
			append([]string{"preflight", "downgrade share.version=0", "downgrade metadata.version=25", "bake"}, back...)},
		{"metadata.version in flight", ran(p, 7, StepStarted),
			append([]string{"preflight", "downgrade metadata.version=25", "bake"}, back...)},
		{"metadata.version failed", ran(p, 7, StepFailed),
			append([]string{"preflight", "downgrade metadata.version=25", "bake"}, back...)},
		{"before finalizing", ran(p, 7, StepPending), append([]string{"preflight"}, back...)},
		{"mid-roll", ran(p, 3, StepStarted), []string{"preflight", "restart 1 4.0.2", "restart 2 4.0.2", "restart 3 4.0.2"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rb, err := NewRollbackPlan(p, tt.rec)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, stepsOf(rb)); diff != "" {
				t.Errorf("rollback plan (-want +got):\n%s\n%v", diff, rb)
			}
			for _, s := range rb.Steps {
				if s.Kind == StepFinalize && (!s.Downgrade || !s.Reversible || s.Hold) {
					t.Errorf("%v: want a reversible safe downgrade, not held", s)
				}
			}
			if i := slices.IndexFunc(rb.Steps, func(s Step) bool { return s.Kind == StepBake }); i >= 0 && rb.Steps[i].Duration != SnapshotWait(0) {
				t.Errorf("rollback bake %v, want SnapshotWait(1h) = %v", rb.Steps[i].Duration, SnapshotWait(0))
			}
			short, err := NewRollbackPlan(p, tt.rec, MetadataSnapshotInterval(2*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range short.Steps {
				if s.Kind == StepBake && s.Duration != 7200*time.Millisecond {
					t.Errorf("rollback bake with a 2s snapshot interval: %v, want 7.2s", s.Duration)
				}
			}
			if rb.Target.String() != "4.0.2" {
				t.Errorf("rollback target %v, want 4.0.2", rb.Target)
			}
			if err := rb.Verify(); err != nil {
				t.Errorf("Verify = %v", err)
			}
		})
	}
}

// TestRollbackOfDowngrade proves that rolling back a KRaft downgrade goes
// up: controllers before brokers, and the feature levels raised again last.
func TestRollbackOfDowngrade(t *testing.T) {
	st := compat.State{Mode: compat.ModeKRaft, Finalized: compat.FeatureLevels{"metadata.version": 27},
		Nodes: nodes("1:c:4.1.2", "2:c:4.1.2", "3:c:4.1.2", "4:b:4.1.2", "5:b:4.1.2", "6:b:4.1.2")}
	p, err := NewPlan(st, Target{Version: compat.MustParseRelease("4.0.2")})
	if err != nil {
		t.Fatal(err)
	}
	// Every broker went back to 4.0.2 (after the downgrade and its bake);
	// controller 1 was in flight.
	rb, err := NewRollbackPlan(p, ran(p, 6, StepStarted))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"preflight", "restart 1 4.1.2", "restart 4 4.1.2", "restart 5 4.1.2", "restart 6 4.1.2", "finalize metadata.version=27"}
	if diff := cmp.Diff(want, stepsOf(rb)); diff != "" {
		t.Errorf("rollback of a downgrade (-want +got):\n%s\n%v", diff, rb)
	}
	if err := rb.Verify(); err != nil {
		t.Errorf("Verify = %v", err)
	}
}

// TestRollbackRefusals proves the typed refusals: a composed downgrade that
// would cross a metadata change, and a plan that does not record the levels
// it started from.
func TestRollbackRefusals(t *testing.T) {
	p := upTo41(t)
	done := ran(p, len(p.Steps), StepPending)

	crossing := p
	crossing.Finalized = compat.FeatureLevels{"metadata.version": 14} // 3.6-IV2: 3.7-IV2 and 4.0-IV1 changed the format since
	_, err := NewRollbackPlan(crossing, done)
	ie, ok := errors.AsType[*IrreversibleError](err)
	_, isDowngrade := errors.AsType[*compat.DowngradeError](err)
	if !ok || !isDowngrade || !errors.Is(err, ErrIrreversible) || !errors.Is(err, compat.ErrDowngradePastMetadataChange) || ie.Step.Kind != StepFinalize {
		t.Errorf("rollback across a metadata change = %v, want an *IrreversibleError naming a finalize step and wrapping a *compat.DowngradeError", err)
	}

	old := p
	old.Finalized = nil // made before Plan.Finalized existed
	if _, err := NewRollbackPlan(old, done); err == nil || !strings.Contains(err.Error(), "does not record the level finalized before it") {
		t.Errorf("rollback of a plan without Finalized = %v, want a refusal saying so", err)
	}
	// Before any finalize step ran, such a plan still rolls back.
	if _, err := NewRollbackPlan(old, ran(old, 3, StepDone)); err != nil {
		t.Errorf("rollback mid-roll of a plan without Finalized = %v", err)
	}
}

// TestRunRollbackDowngradesFirst runs a rollback after finalize on the fake
// cluster: the levels go back before the first node restarts.
func TestRunRollbackDowngradesFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeCluster(compat.ModeKRaft, "4.0.2", 3, 3)
		f.levels = compat.FeatureLevels{"metadata.version": 25}
		p, err := NewPlan(f.state(), Target{Version: compat.MustParseRelease("4.1.2"), Features: compat.FeatureLevels{"share.version": 1}})
		if err != nil {
			t.Fatal(err)
		}
		j := &MemoryJournal{}
		if err := mustRunner(t, nil, f, withOps(f), WithJournal(j), PassHolds()).Run(t.Context(), p); err != nil {
			t.Fatal(err)
		}
		rec, err := j.Load(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		rb, err := NewRollbackPlan(p, rec)
		if err != nil {
			t.Fatal(err)
		}
		var atFirstRestart compat.FeatureLevels
		before := len(f.restartOrder())
		f.onRestart = func(int32) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.restarts) == before+1 {
				atFirstRestart = maps.Clone(f.levels)
			}
		}
		if err := mustRunner(t, nil, f, withOps(f)).Run(t.Context(), rb); err != nil {
			t.Fatal(err)
		}
		want := compat.FeatureLevels{"metadata.version": 25, "share.version": 0}
		if diff := cmp.Diff(want, atFirstRestart); diff != "" {
			t.Errorf("levels when the rollback's first node restarted (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]int32{4, 5, 6}, f.restartOrder()[before:before+3]); diff != "" {
			t.Errorf("rollback restarts brokers first (-want +got):\n%s", diff)
		}
		for id, n := range f.nodes {
			if n.version != "4.0.2" {
				t.Errorf("node %d runs %s after the rollback", id, n.version)
			}
		}
	})
}

// TestKRaftDowngradePlan proves that a KRaft downgrade plan lowers the
// feature levels before any restart (metadata.version to the newest level
// the target supports, after the features it does not support at all),
// then bakes for at least SnapshotWait (the old release needs a metadata
// snapshot at the lowered levels), then rolls brokers, then controllers.
func TestKRaftDowngradePlan(t *testing.T) {
	st := compat.State{Mode: compat.ModeKRaft, Finalized: compat.FeatureLevels{"metadata.version": 27, "share.version": 1},
		Nodes: nodes("1:c:4.1.2", "2:c:4.1.2", "3:c:4.1.2", "4:b:4.1.2", "5:b:4.1.2", "6:b:4.1.2")}
	for _, tt := range []struct {
		opts []PlanOption
		bake time.Duration
	}{
		{nil, time.Hour + 6*time.Minute + 5*time.Second},
		{[]PlanOption{BakeTime(2 * time.Hour)}, 2 * time.Hour},
		{[]PlanOption{MetadataSnapshotInterval(2 * time.Second)}, 7200 * time.Millisecond},
		{[]PlanOption{MetadataSnapshotInterval(2 * time.Second), BakeTime(time.Minute)}, time.Minute},
	} {
		opts := tt.opts
		p, err := NewPlan(st, Target{Version: compat.MustParseRelease("4.0.2")}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"preflight", "downgrade share.version=0", "downgrade metadata.version=25", "bake",
			"restart 4 4.0.2", "restart 5 4.0.2", "restart 6 4.0.2", "restart 1 4.0.2", "restart 2 4.0.2", "restart 3 4.0.2"}
		if diff := cmp.Diff(want, stepsOf(p)); diff != "" {
			t.Errorf("downgrade plan with %d options (-want +got):\n%s\n%v", len(opts), diff, p)
		}
		for _, s := range p.Steps {
			if s.Kind == StepFinalize && (!s.Reversible || s.Hold) {
				t.Errorf("%v: a safe downgrade is reversible and not held", s)
			}
			if s.Kind == StepBake && s.Duration != tt.bake {
				t.Errorf("with %d options: bake %v, want %v", len(opts), s.Duration, tt.bake)
			}
		}
	}
}

// TestDowngradeChecksSnapshotInterval proves that a downgrade plan made for a
// shorter metadata.log.max.snapshot.interval.ms than a broker has is refused
// before any level is lowered or any node restarted, and that one made for
// the broker's interval runs.
func TestDowngradeChecksSnapshotInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeCluster(compat.ModeKRaft, "4.1.2", 3, 3)
		f.levels = compat.FeatureLevels{"metadata.version": 27}
		f.nodes[5].config[snapshotIntervalKey] = "7200000" // 2h
		down := Target{Version: compat.MustParseRelease("4.0.2")}
		p, err := NewPlan(f.state(), down) // planned for Kafka's default, 1h
		if err != nil {
			t.Fatal(err)
		}
		err = mustRunner(t, nil, f, withOps(f)).Run(t.Context(), p)
		if err == nil || !strings.Contains(err.Error(), "broker 5 has metadata.log.max.snapshot.interval.ms=7200000") ||
			!strings.Contains(err.Error(), "MetadataSnapshotInterval(2h0m0s)") {
			t.Fatalf("Run = %v, want a refusal naming broker 5's interval and the option", err)
		}
		if len(f.updates) != 0 || len(f.restartOrder()) != 0 {
			t.Fatalf("after the refusal: feature updates %v, restarts %v; want none", f.updates, f.restartOrder())
		}
		p, err = NewPlan(f.state(), down, MetadataSnapshotInterval(2*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if err := mustRunner(t, nil, f, withOps(f)).Run(t.Context(), p); err != nil {
			t.Fatalf("Run planned for 2h = %v", err)
		}
		if got := f.levels["metadata.version"]; got != 25 {
			t.Errorf("metadata.version = %d after the downgrade, want 25", got)
		}
	})
}
