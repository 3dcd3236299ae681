package upgrade

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/health"
	"github.com/kupgrade/kupgrade/internal/kfaketest"
	"github.com/kupgrade/kupgrade/node"
	"github.com/kupgrade/kupgrade/reassign"
)

// Each test here runs the same plan with and without one option of the
// Runner or of NewPlan and asserts the difference the option makes, so that
// it fails if the option does nothing (issue 12.9). They run on the fake
// cluster of fake_test.go, in synctest's fake time, or against kfake for the
// partition mover's plumbing: claims about Kafka itself are proven elsewhere,
// against real Kafka.

// kraft402 returns a KRaft fake on 4.0.2 (3 controllers, 3 brokers) at
// metadata.version 4.0-IV3: its route to 4.1.2 has a reversible finalize
// step, which no plan holds unless asked.
func kraft402() *fakeCluster {
	f := newFakeCluster(compat.ModeKRaft, "4.0.2", 3, 3)
	f.levels["metadata.version"] = 25
	return f
}

// failedAfter returns how long after the run started step i failed, from
// the events.
func (l *eventLog) failedAfter(t *testing.T, start time.Time) time.Duration {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.ev {
		if e.Kind == EventStepFailed {
			return e.Time.Sub(start)
		}
	}
	t.Fatal("no step-failed event")
	return 0
}

func TestOptionStepTimeout(t *testing.T) {
	// Every node takes 5m to catch up after its restart: within the
	// default CatchUpTimeout (10m) and StepTimeout (30m), beyond a
	// StepTimeout of 2m.
	run := func(t *testing.T, opts ...RunnerOption) (*fakeCluster, *eventLog, time.Time, error) {
		f := kraft402()
		f.catchUp = 5 * time.Minute
		plan := kraftPlan(t, f, "4.1.2")
		log := &eventLog{}
		start := time.Now()
		err := mustRunner(t, nil, f, append([]RunnerOption{withOps(f), OnEvent(log.add)}, opts...)...).Run(t.Context(), plan)
		return f, log, start, err
	}
	t.Run("without", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f, _, start, err := run(t)
			if err != nil {
				t.Fatalf("Run = %v, want every 5m step to finish under the default StepTimeout", err)
			}
			if n := len(f.restartOrder()); n != 6 {
				t.Errorf("%d restarts, want 6", n)
			}
			if took := time.Since(start); took < 30*time.Minute {
				t.Errorf("run took %v, want at least 6 × 5m of catching up", took)
			}
		})
	})
	t.Run("with", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f, log, start, err := run(t, StepTimeout(2*time.Minute))
			se, ok := errors.AsType[*StepError](err)
			if !ok || se.Step.Kind != StepRestart || se.Step.Node != 1 {
				t.Fatalf("Run = %v, want a StepError on the first restart (node 1)", err)
			}
			if !strings.Contains(err.Error(), "did not finish within 2m0s") {
				t.Errorf("error %q does not name the step timeout", err)
			}
			// The timeout counts from the step's start (the preflight before
			// it takes no fake time); the last poll pause is at most 2s.
			if took := log.failedAfter(t, start); took < 2*time.Minute || took > 2*time.Minute+3*time.Second {
				t.Errorf("step failed %v after the start, want 2m (+ one poll)", took)
			}
			if diff := cmp.Diff([]int32{1}, f.restartOrder()); diff != "" {
				t.Errorf("restarts (-want +got):\n%s", diff)
			}
		})
	})
}

// slowOrchestrator restarts node slow only after took (or returns the
// context's cause when it ends first), as an Orchestrator whose restart
// hangs would; the others at once.
type slowOrchestrator struct {
	*fakeCluster
	slow int32
	took time.Duration
}

func (o *slowOrchestrator) Restart(ctx context.Context, id int32, ch node.Change) error {
	if id == o.slow {
		select {
		case <-time.After(o.took):
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	return o.fakeCluster.Restart(ctx, id, ch)
}

func TestOptionRestartTimeout(t *testing.T) {
	// Broker 4's Restart takes 5m: within the default RestartTimeout
	// (10m), beyond a RestartTimeout of 1m.
	run := func(t *testing.T, opts ...RunnerOption) (*fakeCluster, *eventLog, error) {
		f := kraft402()
		orch := &slowOrchestrator{fakeCluster: f, slow: 4, took: 5 * time.Minute}
		plan := kraftPlan(t, f, "4.1.2")
		log := &eventLog{}
		err := mustRunner(t, nil, orch, append([]RunnerOption{withOps(f), OnEvent(log.add)}, opts...)...).Run(t.Context(), plan)
		return f, log, err
	}
	restartOf4 := func(t *testing.T, log *eventLog) (began, ended Event) {
		t.Helper()
		log.mu.Lock()
		defer log.mu.Unlock()
		for _, e := range log.ev {
			switch {
			case e.Node == 4 && e.Kind == EventRestarting:
				began = e
			case e.Node == 4 && (e.Kind == EventRestarted || e.Kind == EventStepFailed):
				ended = e
			}
		}
		if began.Kind == "" || ended.Kind == "" {
			t.Fatalf("no restart of node 4 in the events: %v", log.ev)
		}
		return began, ended
	}
	t.Run("without", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f, log, err := run(t)
			if err != nil {
				t.Fatalf("Run = %v, want a 5m restart to finish under the default RestartTimeout", err)
			}
			began, ended := restartOf4(t, log)
			if ended.Kind != EventRestarted || ended.Time.Sub(began.Time) != 5*time.Minute {
				t.Errorf("node 4: %v after %v, want restarted after 5m", ended.Kind, ended.Time.Sub(began.Time))
			}
			if n := len(f.restartOrder()); n != 6 {
				t.Errorf("%d restarts, want 6", n)
			}
		})
	})
	t.Run("with", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f, log, err := run(t, RestartTimeout(time.Minute))
			se, ok := errors.AsType[*StepError](err)
			if !ok || se.Step.Node != 4 || !strings.Contains(err.Error(), "the Orchestrator did not restart node 4 within 1m0s") {
				t.Fatalf("Run = %v, want node 4's step to fail naming the restart timeout", err)
			}
			began, ended := restartOf4(t, log)
			if ended.Kind != EventStepFailed || ended.Time.Sub(began.Time) != time.Minute {
				t.Errorf("node 4: %v after %v, want failed after 1m", ended.Kind, ended.Time.Sub(began.Time))
			}
			if slices.Contains(f.restartOrder(), 4) || slices.Contains(f.restartOrder(), 5) {
				t.Errorf("restarts %v: node 4's restart was cut off, and nothing after it may run", f.restartOrder())
			}
		})
	})
	// RestartTimeout also bounds the wait for a restart that an earlier
	// run journaled (see settle): here it never took effect.
	settle := func(t *testing.T, opts ...RunnerOption) (*StepError, time.Duration) {
		f := kraft402()
		plan := kraftPlan(t, f, "4.1.2")
		rec := Record{PlanID: plan.ID, Steps: make([]StepRecord, len(plan.Steps))}
		i := -1
		for k, s := range plan.Steps {
			if s.Kind == StepRestart && s.Node == 4 {
				i = k
				break
			}
			rec.Steps[k].State = StepDone
			if s.Kind == StepRestart {
				f.nodes[s.Node].version = "4.1.2"
			}
		}
		rec.Steps[i] = StepRecord{State: StepStarted, Restarted: true}
		j := &MemoryJournal{}
		j.Save(t.Context(), rec)
		start := time.Now()
		err := mustRunner(t, nil, f, append([]RunnerOption{withOps(f), WithJournal(j)}, opts...)...).Run(t.Context(), plan)
		se, ok := errors.AsType[*StepError](err)
		if !ok || se.Step.Node != 4 || !strings.Contains(err.Error(), "the restart the last run began has not finished") {
			t.Fatalf("Run = %v, want node 4's settling wait to give up", err)
		}
		if n := len(f.restartOrder()); n != 0 {
			t.Errorf("%d restarts while settling, want none", n)
		}
		return se, time.Since(start)
	}
	t.Run("settle without", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			if _, took := settle(t); took < 10*time.Minute || took > 10*time.Minute+3*time.Second {
				t.Errorf("settling gave up after %v, want the default 10m", took)
			}
		})
	})
	t.Run("settle with", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			if _, took := settle(t, RestartTimeout(time.Minute)); took < time.Minute || took > time.Minute+3*time.Second {
				t.Errorf("settling gave up after %v, want 1m", took)
			}
		})
	})
}

func TestOptionGateOptions(t *testing.T) {
	// Broker 7 is not in the plan (the Orchestrator manages it, the plan
	// leaves it alone); it holds the fourth replica of orders-6 and dies
	// once the preflight has passed: orders-6 stays under-replicated but
	// above min ISR whichever planned broker restarts, which the default
	// gate allows and MaxUnderReplicated(0) refuses.
	run := func(t *testing.T, opts ...RunnerOption) (*fakeCluster, *eventLog, error) {
		f := kraft402()
		plan := kraftPlan(t, f, "4.1.2")
		f.nodes[7] = &fakeNode{id: 7, roles: []node.Role{node.RoleBroker}, version: "4.0.2", config: map[string]string{}}
		f.parts = append(f.parts, fakePartition{topic: "orders", p: 6, replicas: []int32{4, 5, 6, 7}, minISR: 2})
		log := &eventLog{}
		hook := func(e Event) {
			log.add(e)
			if e.Kind == EventStepDone && e.StepKind == StepPreflight {
				f.mu.Lock()
				f.down[7] = true
				f.mu.Unlock()
			}
		}
		err := mustRunner(t, nil, f, append([]RunnerOption{withOps(f), OnEvent(hook), GateTimeout(time.Minute)}, opts...)...).Run(t.Context(), plan)
		return f, log, err
	}
	t.Run("without", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f, _, err := run(t)
			if err != nil {
				t.Fatalf("Run = %v, want the default gate to allow restarts beside an under-replicated partition", err)
			}
			if diff := cmp.Diff([]int32{1, 2, 3, 4, 5, 6}, f.restartOrder()); diff != "" {
				t.Errorf("restarts (-want +got):\n%s", diff)
			}
		})
	})
	t.Run("with", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f, log, err := run(t, GateOptions(health.MaxUnderReplicated(0)))
			se, ok := errors.AsType[*StepError](err)
			if !ok || se.Step.Node != 4 || !errors.Is(err, health.ErrUnsafe) || !strings.Contains(err.Error(), "1 partitions under-replicated, more than the 0 allowed") {
				t.Fatalf("Run = %v, want broker 4's gate to refuse on the cluster-wide limit", err)
			}
			var rules []health.Rule
			for _, e := range log.ev {
				if e.Kind == EventGateBlocked {
					for _, r := range e.Reasons {
						rules = append(rules, r.Rule)
					}
				}
			}
			if diff := cmp.Diff([]health.Rule{health.RuleClusterUnderReplicated}, slices.Compact(rules)); diff != "" {
				t.Errorf("gate-blocked reasons (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]int32{1, 2, 3}, f.restartOrder()); diff != "" {
				t.Errorf("restarts (-want +got): only the controllers, which the broker gate does not judge:\n%s", diff)
			}
		})
	})
}

// stickyLeaders makes the fake cluster's leadership behave as Kafka's does:
// a partition keeps its leader while that leader is in the ISR, moves to
// another ISR member when it leaves, and goes back to the preferred replica
// only on a preferred leader election (electPreferred), which it records.
type stickyLeaders struct {
	*fakeCluster
	mu      sync.Mutex
	lead    map[int32]int32 // partition of orders → leader
	elected []int32         // nodes electPreferred was asked for
}

func (s *stickyLeaders) snapshot(ctx context.Context) (health.Snapshot, error) {
	snap, err := s.fakeCluster.snapshot(ctx)
	if err != nil {
		return snap, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var topics []health.Topic
	for _, t := range snap.Topics {
		t.Partitions = slices.Clone(t.Partitions)
		for i := range t.Partitions {
			p := &t.Partitions[i]
			cur, ok := s.lead[p.Partition]
			if !ok {
				cur = p.Replicas[0]
			}
			if !slices.Contains(p.ISR, cur) {
				cur = -1
				if len(p.ISR) > 0 {
					cur = p.ISR[len(p.ISR)-1]
				}
			}
			s.lead[p.Partition], p.Leader = cur, cur
		}
		topics = append(topics, t)
	}
	snap.Topics = topics
	return snap.Indexed(), nil
}

func (s *stickyLeaders) electPreferred(ctx context.Context, snap health.Snapshot, id int32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.elected = append(s.elected, id)
	for _, t := range snap.Topics {
		for _, p := range t.Partitions {
			if p.Replicas[0] == id && slices.Contains(p.ISR, id) {
				s.lead[p.Partition] = id
			}
		}
	}
	return nil
}

// notPreferred returns the partitions not led by their preferred replica.
func (s *stickyLeaders) notPreferred(t *testing.T) []int32 {
	t.Helper()
	snap, err := s.snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []int32
	for _, p := range snap.Topics[0].Partitions {
		if p.Leader != p.Replicas[0] {
			out = append(out, p.Partition)
		}
	}
	return out
}

func TestOptionLeadersBack(t *testing.T) {
	run := func(t *testing.T, opts ...RunnerOption) (*stickyLeaders, *eventLog) {
		f := kraft402()
		ops := &stickyLeaders{fakeCluster: f, lead: map[int32]int32{}}
		plan := kraftPlan(t, f, "4.1.2")
		log := &eventLog{}
		if err := mustRunner(t, nil, f, append([]RunnerOption{withOps(ops), OnEvent(log.add)}, opts...)...).Run(t.Context(), plan); err != nil {
			t.Fatal(err)
		}
		if n := len(f.restartOrder()); n != 6 {
			t.Errorf("%d restarts, want 6", n)
		}
		return ops, log
	}
	t.Run("without", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ops, _ := run(t)
			if len(ops.elected) != 0 {
				t.Errorf("preferred leader elections asked for nodes %v, want none", ops.elected)
			}
			if got := ops.notPreferred(t); len(got) == 0 {
				t.Error("every partition is led by its preferred replica after the roll: the fake does not move leadership, so this test proves nothing")
			}
		})
	})
	t.Run("with", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ops, log := run(t, LeadersBack())
			// Each broker, once back in every ISR, leads none of its
			// preferred partitions (they moved while it was away): one
			// election each, asked for after the restart.
			if diff := cmp.Diff([]int32{4, 5, 6}, ops.elected); diff != "" {
				t.Errorf("preferred leader elections (-want +got):\n%s", diff)
			}
			if got := ops.notPreferred(t); len(got) != 0 {
				t.Errorf("partitions %v not led by their preferred replica after the roll", got)
			}
			var waited []string
			for _, e := range log.ev {
				for _, r := range e.Reasons {
					if r.Rule == health.RuleNotPreferredLeader {
						waited = append(waited, r.Message)
					}
				}
			}
			if len(waited) == 0 {
				t.Error("no wait for leadership in the events: the catch-up did not check it")
			}
		})
	})
}

func TestOptionFinalizeLater(t *testing.T) {
	f := kraft402()
	without := kraftPlan(t, f, "4.1.2")
	with := kraftPlan(t, f, "4.1.2", FinalizeLater())
	var holds []string
	for _, p := range []Plan{without, with} {
		h := ""
		for _, s := range p.Steps {
			if s.Hold {
				h += string(s.Kind) + " "
			}
		}
		holds = append(holds, h)
	}
	if diff := cmp.Diff([]string{"", "finalize "}, holds); diff != "" {
		t.Errorf("held steps without and with FinalizeLater (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(without.Steps, with.Steps, cmpopts.IgnoreFields(Step{}, "Hold")); diff != "" {
		t.Errorf("FinalizeLater changed more than holds (-without +with):\n%s", diff)
	}
	if without.ID == with.ID {
		t.Error("both plans have the same ID: a journal of one would resume the other")
	}
	t.Run("run without", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := kraft402()
			if err := mustRunner(t, nil, f, withOps(f)).Run(t.Context(), kraftPlan(t, f, "4.1.2")); err != nil {
				t.Fatalf("Run = %v, want a plan without holds to finish without PassHolds", err)
			}
			if diff := cmp.Diff([]compat.FeatureLevels{{"metadata.version": 27}}, f.updates); diff != "" {
				t.Errorf("feature updates (-want +got):\n%s", diff)
			}
		})
	})
	t.Run("run with", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := kraft402()
			plan := kraftPlan(t, f, "4.1.2", FinalizeLater())
			j := &MemoryJournal{}
			err := mustRunner(t, nil, f, withOps(f), WithJournal(j)).Run(t.Context(), plan)
			he, ok := errors.AsType[*HeldError](err)
			if !ok || he.Step.Kind != StepFinalize || he.Index != len(plan.Steps)-1 || !strings.Contains(err.Error(), "held by the plan") {
				t.Fatalf("Run = %v, want a HeldError before the (reversible) finalize step", err)
			}
			if n := len(f.restartOrder()); n != 6 || len(f.updates) != 0 {
				t.Errorf("%d restarts and feature updates %v before the hold, want 6 and none", n, f.updates)
			}
			if err := mustRunner(t, nil, f, withOps(f), WithJournal(j), PassHolds()).Run(t.Context(), plan); err != nil {
				t.Fatal(err)
			}
			if n := len(f.restartOrder()); n != 6 || f.levels["metadata.version"] != 27 {
				t.Errorf("after PassHolds: %d restarts, metadata.version %d; want 6 and 27", n, f.levels["metadata.version"])
			}
		})
	})
}

func TestOptionFinalizeReleaseDefaults(t *testing.T) {
	// What 4.1 turns on for new clusters (kafka-features upgrade
	// --release-version 4.1), minus kraft.version.
	defaults41 := compat.FeatureLevels{"eligible.leader.replicas.version": 1, "group.version": 1, "transaction.version": 2}
	finalized := func(p Plan) compat.FeatureLevels {
		out := compat.FeatureLevels{}
		for _, s := range p.Steps {
			if s.Kind == StepFinalize {
				maps.Copy(out, s.Features)
			}
		}
		return out
	}
	for _, tt := range []struct {
		name string
		from string
		mv   int16
		opts []PlanOption
		want compat.FeatureLevels
	}{
		{"without 4.0.2", "4.0.2", 25, nil, compat.FeatureLevels{"metadata.version": 27}},
		{"with 4.0.2", "4.0.2", 25, []PlanOption{FinalizeReleaseDefaults()}, with(compat.FeatureLevels{"metadata.version": 27}, defaults41)},
		{"without 3.9.2", "3.9.2", 21, nil, compat.FeatureLevels{"metadata.version": 27}},
		{"with 3.9.2", "3.9.2", 21, []PlanOption{FinalizeReleaseDefaults()}, with(compat.FeatureLevels{"metadata.version": 27}, defaults41)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeCluster(compat.ModeKRaft, tt.from, 3, 3)
				f.levels["metadata.version"] = tt.mv
				plan := kraftPlan(t, f, "4.1.2", tt.opts...)
				if diff := cmp.Diff(tt.want, finalized(plan)); diff != "" {
					t.Errorf("planned feature levels (-want +got):\n%s", diff)
				}
				if err := mustRunner(t, nil, f, withOps(f), PassHolds()).Run(t.Context(), plan); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, f.levels); diff != "" {
					t.Errorf("finalized in the cluster after the run (-want +got):\n%s", diff)
				}
			})
		})
	}
}

// with returns the union of a and b.
func with(a, b compat.FeatureLevels) compat.FeatureLevels {
	out := maps.Clone(a)
	maps.Copy(out, b)
	return out
}

// savesOf is a Journal that calls onSave with every record saved.
type savesOf struct {
	MemoryJournal
	onSave func(Record)
}

func (j *savesOf) Save(ctx context.Context, r Record) error {
	if err := j.MemoryJournal.Save(ctx, r); err != nil {
		return err
	}
	j.onSave(r)
	return nil
}

func TestOptionReassignOptions(t *testing.T) {
	// The move step of a replacement plan, on kfake (which takes
	// reassignments but moves nothing): broker 0 is replaced by broker 3.
	// What the partition mover journals when it begins its run (in the
	// Runner's journal) shows the options it was made with: the throttle
	// rate of ReplaceThrottle's default (100 MiB/s), or the one given
	// through ReassignOptions, which the Runner documents as coming last.
	moveRate := func(t *testing.T, opts ...RunnerOption) int64 {
		_, cl := kfaketest.New(t, kfake.NumBrokers(4), kfake.SeedTopics(3, "orders"))
		old, replacement := replacedPair(t, cl) // kfake places replicas at random
		plan := Plan{Version: PlanVersion, Mode: compat.ModeKRaft, Steps: []Step{
			{Kind: StepProvision, Hop: 1, Node: old, Roles: []node.Role{node.RoleBroker}},
			{Kind: StepMove, Hop: 1, Node: -1},
		}}
		rec := Record{PlanID: "move", Steps: []StepRecord{{State: StepDone, Restarted: true, Provisioned: &replacement}, {State: StepStarted}}}
		ctx, stop := context.WithCancelCause(t.Context())
		defer stop(nil)
		rate := int64(-1)
		j := &savesOf{onSave: func(r Record) {
			b, ok := r.Data["reassign/1"]
			if !ok || rate >= 0 {
				return
			}
			var st struct {
				Ledger struct {
					Rate int64 `json:"rate"`
				} `json:"ledger"`
			}
			if err := json.Unmarshal(b, &st); err != nil {
				t.Errorf("the mover's journal does not decode: %v", err)
			}
			rate = st.Ledger.Rate
			stop(errors.New("test: the mover has journaled its run"))
		}}
		f := kraft402()
		// kfake reports no disk sizes (as Kafka before 3.3): the disk
		// check would refuse the move (TestReplaceDiskCheck).
		r := mustRunner(t, cl, f, append([]RunnerOption{withOps(f), WithJournal(j), SkipDiskCheck()}, opts...)...)
		u := &run{r: r, plan: plan, rec: rec, start: time.Now()}
		deadline, cancel := context.WithTimeoutCause(ctx, 20*time.Second, errors.New("test: the mover journaled nothing within 20s"))
		defer cancel()
		_, err := u.move(deadline, 1, plan.Steps[1])
		if rate < 0 {
			t.Fatalf("move = %v, and the mover journaled no run", err)
		}
		return rate
	}
	if got := moveRate(t); got != 100<<20 {
		t.Errorf("without ReassignOptions: the mover throttles at %d B/s, want ReplaceThrottle's default %d", got, 100<<20)
	}
	if got := moveRate(t, ReassignOptions(reassign.Throttle(1<<20))); got != 1<<20 {
		t.Errorf("with ReassignOptions(Throttle(1 MiB/s)): the mover throttles at %d B/s, want %d", got, 1<<20)
	}
}
