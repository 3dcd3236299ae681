package upgrade

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"

	"github.com/kupgrade/kupgrade/compat"
)

// roundTrip marshals p to JSON and back, as a plan kept in a file is.
func roundTrip(t *testing.T, p Plan) Plan {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back Plan
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	return back
}

// TestVerifyAcceptsMadePlans proves that every kind of plan kupgrade makes
// verifies, also after a JSON round trip (its ID is stable).
func TestVerifyAcceptsMadePlans(t *testing.T) {
	zk := compat.State{Mode: compat.ModeZooKeeper, Finalized: compat.FeatureLevels{}, Nodes: nodes("1:b:2.8.2:2.8-IV1", "2:b:2.8.2:2.8-IV1", "3:b:2.8.2:2.8-IV1")}
	kr := compat.State{Mode: compat.ModeKRaft, Finalized: compat.FeatureLevels{"metadata.version": 20},
		Nodes: nodes("1:c:3.8.1", "2:c:3.8.1", "3:c:3.8.1", "4:b:3.8.1", "5:b:3.8.1", "6:b:3.8.1")}
	var plans []Plan
	for _, mk := range []func() (Plan, error){
		func() (Plan, error) { return NewPlan(zk, Target{Version: compat.MustParseRelease("3.9.2")}) },
		func() (Plan, error) {
			return NewPlan(kr, Target{Version: compat.MustParseRelease("4.1.2"), Via: []compat.Release{compat.MustParseRelease("3.9.2")}}, BakeTime(10*60e9), ElectPreferredLeaders(), FinalizeLater())
		},
		func() (Plan, error) { return NewReplacePlan(kr, Target{Version: compat.MustParseRelease("3.9.2")}) },
	} {
		p, err := mk()
		if err != nil {
			t.Fatal(err)
		}
		plans = append(plans, p)
	}
	rec := Record{PlanID: plans[0].ID, Steps: make([]StepRecord, len(plans[0].Steps))}
	rec.Steps[1] = StepRecord{State: StepDone, Restarted: true}
	rb, err := NewRollbackPlan(plans[0], rec)
	if err != nil {
		t.Fatal(err)
	}
	plans = append(plans, rb)
	// A rollback after finalize: safe downgrades first (share.version to 0).
	up := upTo41(t)
	rb, err = NewRollbackPlan(up, ran(up, len(up.Steps), StepPending))
	if err != nil {
		t.Fatal(err)
	}
	plans = append(plans, rb)
	for _, p := range plans {
		if err := p.Verify(); err != nil {
			t.Errorf("plan %s: Verify = %v", p.ID, err)
		}
		back := roundTrip(t, p)
		if diff := cmp.Diff(p.ID, planID(back)); diff != "" {
			t.Errorf("plan ID after a JSON round trip (-want +got):\n%s", diff)
		}
		if err := back.Verify(); err != nil {
			t.Errorf("plan %s after a JSON round trip: Verify = %v", p.ID, err)
		}
	}
}

// TestVerifyRefusesEditedPlans proves that hand-edited and malformed plans
// are refused with a *PlanError naming each problem.
func TestVerifyRefusesEditedPlans(t *testing.T) {
	zk := compat.State{Mode: compat.ModeZooKeeper, Finalized: compat.FeatureLevels{}, Nodes: nodes("1:b:3.6.2", "2:b:3.6.2", "3:b:3.6.2")}
	base, err := NewPlan(zk, Target{Version: compat.MustParseRelease("3.9.2")})
	if err != nil {
		t.Fatal(err)
	}
	raise := -1 // the first step of the irreversible IBPV raise
	for i, s := range base.Steps {
		if s.Kind == StepRestart && s.Hold {
			raise = i
			break
		}
	}
	if raise < 0 {
		t.Fatal("the plan holds no IBPV raise")
	}
	for _, tt := range []struct {
		name   string
		edit   func(p *Plan)
		rehash bool // recompute the ID after the edit, as a careful forger would
		want   []string
	}{
		{"holds removed", func(p *Plan) {
			for i := range p.Steps {
				p.Steps[i].Hold = false
			}
		}, false, []string{"was changed after it was made"}},
		{"IBPV changed to 9.9-IV9", func(p *Plan) {
			for i := range p.Steps {
				if p.Steps[i].Change.Set["inter.broker.protocol.version"] != "" {
					p.Steps[i].Change.Set["inter.broker.protocol.version"] = "9.9-IV9"
				}
			}
		}, false, []string{"was changed after it was made", "inter.broker.protocol.version=9.9-IV9 on 3.9.2"}},
		{"IBPV changed to 9.9-IV9, ID recomputed", func(p *Plan) {
			p.Steps[raise].Change.Set["inter.broker.protocol.version"] = "9.9-IV9"
		}, true, []string{"inter.broker.protocol.version=9.9-IV9 on 3.9.2"}},
		{"no ID", func(p *Plan) { p.ID = "" }, false, []string{"no ID"}},
		{"node not in the plan", func(p *Plan) { p.Steps[raise].Node = 9 }, true, []string{"node 9 is not among the plan's nodes"}},
		{"set and unset", func(p *Plan) {
			p.Steps[raise].Change.Unset = []string{"inter.broker.protocol.version"}
		}, true, []string{`both sets and unsets "inter.broker.protocol.version"`}},
		{"malformed release", func(p *Plan) { p.Steps[1].Change.Version = "3.9.x" }, true, []string{`"3.9.x"`}},
		{"unknown release", func(p *Plan) { p.Steps[1].Change.Version = "9.9.9" }, true, []string{"9.9.9 is not a release kupgrade knows"}},
		{"unknown kind", func(p *Plan) { p.Steps[raise].Kind = "reboot-the-world" }, true, []string{"unknown step kind"}},
		{"no steps", func(p *Plan) { p.Steps = nil }, true, []string{"no steps"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := roundTrip(t, base) // a deep copy
			tt.edit(&p)
			if tt.rehash {
				p.ID = planID(p)
			}
			err := p.Verify()
			pe, ok := errors.AsType[*PlanError](err)
			if !ok || !errors.Is(err, ErrPlanInvalid) {
				t.Fatalf("Verify = %v, want a *PlanError", err)
			}
			if len(pe.Problems) < len(tt.want) {
				t.Errorf("problems %q, want at least %d", pe.Problems, len(tt.want))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Verify = %v, want it to say %q", err, w)
				}
			}
		})
	}
}

// TestRunRefusesEditedPlan proves Run refuses an edited plan before it
// touches a node or writes the journal.
func TestRunRefusesEditedPlan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeCluster(compat.ModeKRaft, "3.9.2", 3, 3)
		f.levels["metadata.version"] = 21
		plan := kraftPlan(t, f, "4.1.2")
		for i := range plan.Steps {
			plan.Steps[i].Hold = false
		}
		j := &MemoryJournal{}
		err := mustRunner(t, nil, f, withOps(f), WithJournal(j)).Run(t.Context(), plan)
		if !errors.Is(err, ErrPlanInvalid) {
			t.Fatalf("Run = %v, want ErrPlanInvalid", err)
		}
		if got := f.restartOrder(); len(got) != 0 {
			t.Errorf("restarted %v, want nothing", got)
		}
		if _, err := j.Load(t.Context()); !errors.Is(err, ErrNoRecord) {
			t.Errorf("journal Load = %v, want nothing written", err)
		}
	})
}

// TestRunnerRefusesConcurrentRun proves a Runner refuses a second Run while
// one runs, and two Runners refuse to share a journal, whether they share
// the MemoryJournal or two FileJournals name one file: each node is
// restarted once.
func TestRunnerRefusesConcurrentRun(t *testing.T) {
	for _, tt := range []struct {
		name     string
		journals func(t *testing.T) (Journal, Journal)
		same     bool // one Runner runs twice
	}{
		{"one Runner twice", func(t *testing.T) (Journal, Journal) { j := &MemoryJournal{}; return j, j }, true},
		{"two Runners, one MemoryJournal", func(t *testing.T) (Journal, Journal) { j := &MemoryJournal{}; return j, j }, false},
		{"two Runners, two FileJournals on one file", func(t *testing.T) (Journal, Journal) {
			path := filepath.Join(t.TempDir(), "journal.json")
			return NewFileJournal(path), NewFileJournal(path)
		}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeCluster(compat.ModeKRaft, "3.9.2", 3, 3)
				f.levels["metadata.version"] = 21
				plan := kraftPlan(t, f, "4.1.2")
				j1, j2 := tt.journals(t)
				r1 := mustRunner(t, nil, f, withOps(f), WithJournal(j1), PassHolds())
				r2 := r1
				if !tt.same {
					r2 = mustRunner(t, nil, f, withOps(f), WithJournal(j2), PassHolds())
				}
				first := make(chan error, 1)
				go func() { first <- r1.Run(t.Context(), plan) }()
				synctest.Wait() // the first run waits for a node to catch up
				err := r2.Run(t.Context(), plan)
				want := ErrJournalLocked
				if tt.same {
					want = ErrRunning
				}
				if !errors.Is(err, want) {
					t.Errorf("second Run = %v, want %v", err, want)
				}
				if err := <-first; err != nil {
					t.Fatalf("first Run = %v", err)
				}
				for id, n := range f.restartCounts() {
					if n != 1 {
						t.Errorf("node %d restarted %d times", id, n)
					}
				}
				// Once the first run has returned, the journal is free again.
				if err := r2.Run(t.Context(), plan); err != nil {
					t.Errorf("Run after the first returned = %v", err)
				}
			})
		})
	}
}

// TestFileJournalLockAcrossProcesses proves that a FileJournal held by
// another process is refused with an error naming that process, and is
// free again once that process is gone (killed: the lock dies with it).
func TestFileJournalLockAcrossProcesses(t *testing.T) {
	if path := os.Getenv("KUPGRADE_TEST_HOLD_JOURNAL"); path != "" {
		// The child: take the lock, say so, hold it until killed.
		if _, err := NewFileJournal(path).Lock(t.Context()); err != nil {
			t.Fatal(err)
		}
		os.Stdout.WriteString("locked\n")
		select {}
	}
	path := filepath.Join(t.TempDir(), "journal.json")
	child := exec.Command(os.Args[0], "-test.run=^TestFileJournalLockAcrossProcesses$")
	child.Env = append(os.Environ(), "KUPGRADE_TEST_HOLD_JOURNAL="+path)
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	buf := make([]byte, 64)
	n, _ := out.Read(buf) // returns once the child has locked (or died)
	if !strings.Contains(string(buf[:n]), "locked") {
		t.Fatalf("child said %q", buf[:n])
	}
	_, err = NewFileJournal(path).Lock(t.Context())
	le, ok := errors.AsType[*JournalLockedError](err)
	if !ok || !errors.Is(err, ErrJournalLocked) {
		t.Fatalf("Lock = %v, want a *JournalLockedError", err)
	}
	if want := "pid " + strconv.Itoa(child.Process.Pid) + " on host"; !strings.HasPrefix(le.Holder, want) {
		t.Errorf("Holder = %q, want it to start with %q", le.Holder, want)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the journal", err)
	}
	child.Process.Kill()
	child.Wait()
	unlock, err := NewFileJournal(path).Lock(t.Context())
	if err != nil {
		t.Fatalf("Lock after the holder died = %v", err)
	}
	unlock()
}
