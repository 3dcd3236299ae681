package upgrade

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/node"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// nodes builds node states: spec is "id:roles:release[:ibpv]" with roles
// "b", "c" or "bc".
func nodes(specs ...string) []compat.NodeState {
	var out []compat.NodeState
	for _, s := range specs {
		f := strings.Split(s, ":")
		var id int32
		for _, c := range f[0] {
			id = id*10 + int32(c-'0')
		}
		n := compat.NodeState{ID: id, Release: compat.MustParseRelease(f[2])}
		if strings.Contains(f[1], "b") {
			n.Roles = append(n.Roles, node.RoleBroker)
		}
		if strings.Contains(f[1], "c") {
			n.Roles = append(n.Roles, node.RoleController)
		}
		if len(f) > 3 {
			n.IBPV = compat.Static(f[3])
		} else {
			n.IBPV = compat.Default()
		}
		n.LMFV = compat.Default()
		out = append(out, n)
	}
	return out
}

func TestPlanGolden(t *testing.T) {
	for _, tt := range []struct {
		name   string
		state  compat.State
		target Target
		opts   []PlanOption
	}{
		{"zk-3.6-to-3.9", compat.State{Mode: compat.ModeZooKeeper, Finalized: compat.FeatureLevels{},
			Nodes: nodes("1:b:3.6.2", "2:b:3.6.2", "3:b:3.6.2")}, Target{Version: compat.MustParseRelease("3.9.2")}, nil},
		{"zk-2.8-to-3.9", compat.State{Mode: compat.ModeZooKeeper, Finalized: compat.FeatureLevels{},
			Nodes: nodes("1:b:2.8.2:2.8-IV1", "2:b:2.8.2:2.8-IV1", "3:b:2.8.2:2.8-IV1")}, Target{Version: compat.MustParseRelease("3.9.2")}, nil},
		{"zk-3.6-to-4.1-needs-migration", compat.State{Mode: compat.ModeZooKeeper, Finalized: compat.FeatureLevels{},
			Nodes: nodes("1:b:3.6.2", "2:b:3.6.2", "3:b:3.6.2")}, Target{Version: compat.MustParseRelease("4.1.2")}, nil},
		{"kraft-3.7-to-4.1", compat.State{Mode: compat.ModeKRaft, Finalized: compat.FeatureLevels{"metadata.version": 19},
			Nodes: nodes("1:c:3.7.2", "2:c:3.7.2", "3:c:3.7.2", "4:b:3.7.2", "5:b:3.7.2", "6:b:3.7.2")}, Target{Version: compat.MustParseRelease("4.1.2")}, nil},
		{"kraft-3.8-via-3.9-to-4.1-bake-elect", compat.State{Mode: compat.ModeKRaft, Finalized: compat.FeatureLevels{"metadata.version": 20},
			Nodes: nodes("1:c:3.8.1", "2:c:3.8.1", "3:c:3.8.1", "4:b:3.8.1", "5:b:3.8.1", "6:b:3.8.1")},
			Target{Version: compat.MustParseRelease("4.1.2"), Via: []compat.Release{compat.MustParseRelease("3.9.2")}}, []PlanOption{BakeTime(10 * 60e9), ElectPreferredLeaders(), FinalizeLater()}},
		{"kraft-3.3-to-4.1", compat.State{Mode: compat.ModeKRaft, Finalized: compat.FeatureLevels{"metadata.version": 7},
			Nodes: nodes("1:bc:3.3.2", "2:bc:3.3.2", "3:bc:3.3.2")}, Target{Version: compat.MustParseRelease("4.1.2")}, nil},
		{"kraft-combined-4.1-release-defaults-and-kraft-version", compat.State{Mode: compat.ModeKRaft, Finalized: compat.FeatureLevels{"metadata.version": 21, "kraft.version": 0},
			Nodes: nodes("1:bc:3.9.2", "2:bc:3.9.2", "3:bc:3.9.2")},
			Target{Version: compat.MustParseRelease("4.1.2"), Features: compat.FeatureLevels{"kraft.version": 1}}, []PlanOption{FinalizeReleaseDefaults()}},
		{"kraft-mixed-half-finished", compat.State{Mode: compat.ModeKRaft, Finalized: compat.FeatureLevels{"metadata.version": 21},
			Nodes: nodes("1:c:4.1.2", "2:c:4.1.2", "3:c:3.9.2", "4:b:3.9.2", "5:b:3.9.2", "6:b:3.9.2")}, Target{Version: compat.MustParseRelease("4.1.2")}, nil},
		{"zk-mixed-half-finished", compat.State{Mode: compat.ModeZooKeeper, Finalized: compat.FeatureLevels{},
			Nodes: nodes("1:b:3.9.2:3.6-IV2", "2:b:3.6.2", "3:b:3.6.2")}, Target{Version: compat.MustParseRelease("3.9.2")}, nil},
		{"kraft-downgrade-4.1-to-4.0-bake", compat.State{Mode: compat.ModeKRaft, Finalized: compat.FeatureLevels{"metadata.version": 27, "share.version": 1},
			Nodes: nodes("1:c:4.1.2", "2:c:4.1.2", "3:c:4.1.2", "4:b:4.1.2", "5:b:4.1.2", "6:b:4.1.2")}, Target{Version: compat.MustParseRelease("4.0.2")}, []PlanOption{BakeTime(10 * 60e9)}},
		{"refused-downgrade-past-ibpv", compat.State{Mode: compat.ModeZooKeeper, Finalized: compat.FeatureLevels{},
			Nodes: nodes("1:b:3.9.2:3.9", "2:b:3.9.2:3.9", "3:b:3.9.2:3.9")}, Target{Version: compat.MustParseRelease("3.6.2")}, nil},
		{"refused-unknown-target", compat.State{Mode: compat.ModeKRaft, Finalized: compat.FeatureLevels{"metadata.version": 21},
			Nodes: nodes("1:bc:3.9.2")}, Target{Version: compat.MustParseRelease("9.1.0")}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := NewPlan(tt.state, tt.target, tt.opts...)
			var got string
			if err != nil {
				got = "error: " + err.Error() + "\n"
			} else {
				js, jerr := json.MarshalIndent(plan, "", "  ")
				if jerr != nil {
					t.Fatal(jerr)
				}
				got = plan.String() + "\n" + string(js) + "\n"
				var back Plan
				if err := json.Unmarshal(js, &back); err != nil {
					t.Fatalf("plan does not unmarshal: %v", err)
				}
				if diff := cmp.Diff(plan, back); diff != "" {
					t.Errorf("JSON round trip (-want +got):\n%s", diff)
				}
			}
			path := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("plan differs from %s (-want +got):\n%s", path, diff)
			}
		})
	}
}

func TestReplacePlan(t *testing.T) {
	kr := compat.State{Mode: compat.ModeKRaft, Finalized: compat.FeatureLevels{"metadata.version": 21},
		Nodes: nodes("1:c:3.9.2", "2:c:3.9.2", "3:c:3.9.2", "4:b:3.9.2", "5:b:3.9.2", "6:b:3.9.2")}
	p, err := NewReplacePlan(kr, Target{Version: compat.MustParseRelease("4.1.2")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range p.Steps {
		got = append(got, fmt.Sprintf("%s %d", s.Kind, s.Node))
	}
	want := []string{"preflight -1", "restart 1", "restart 2", "restart 3", "provision 4", "provision 5", "provision 6",
		"move-partitions -1", "elect-leaders -1", "retire 4", "retire 5", "retire 6", "finalize -1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("replace plan steps (-want +got):\n%s\n%v", diff, p)
	}
	for _, s := range p.Steps {
		if s.Kind == StepRetire && (s.Reversible || !s.Hold) {
			t.Errorf("%v: retiring a broker must be irreversible and held", s)
		}
	}
	for _, tt := range []struct {
		name  string
		state compat.State
		want  string
	}{
		{"zookeeper to 4.1", compat.State{Mode: compat.ModeZooKeeper, Finalized: compat.FeatureLevels{}, Nodes: nodes("1:b:3.6.2")}, "needs work node replacement does not do (ZooKeeper to KRaft migration"},
		{"combined", compat.State{Mode: compat.ModeKRaft, Finalized: compat.FeatureLevels{"metadata.version": 21}, Nodes: nodes("1:bc:3.9.2")}, "combined broker and controller"},
		{"downgrade", compat.State{Mode: compat.ModeKRaft, Finalized: compat.FeatureLevels{"metadata.version": 28},
			Nodes: nodes("1:c:4.2.2", "2:b:4.2.2", "3:b:4.2.2", "4:b:4.2.2")}, "only upgrades"},
	} {
		if _, err := NewReplacePlan(tt.state, Target{Version: compat.MustParseRelease("4.1.2")}); !errors.Is(err, ErrUnsupportedPlan) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: NewReplacePlan = %v, want ErrUnsupportedPlan saying %q", tt.name, err, tt.want)
		}
	}
	// A Runner whose Orchestrator cannot provision refuses the plan before any step.
	f := newFakeCluster(compat.ModeKRaft, "3.9.2", 3, 3)
	err = mustRunner(t, nil, restartOnly{f}, withOps(f)).Run(t.Context(), p)
	if !errors.Is(err, ErrUnsupportedPlan) || !strings.Contains(err.Error(), "Provisioner") || len(f.restartOrder()) != 0 {
		t.Errorf("Run without a Provisioner = %v (restarts %v), want a refusal before the first step", err, f.restartOrder())
	}
}

// restartOnly hides every capability of an Orchestrator but the required ones.
type restartOnly struct{ o node.Orchestrator }

func (r restartOnly) Nodes(ctx context.Context) ([]node.Node, error) { return r.o.Nodes(ctx) }
func (r restartOnly) Restart(ctx context.Context, id int32, ch node.Change) error {
	return r.o.Restart(ctx, id, ch)
}

func TestPlanRules(t *testing.T) {
	zk := compat.State{Mode: compat.ModeZooKeeper, Finalized: compat.FeatureLevels{}, Nodes: nodes("1:b:3.6.2", "2:b:3.6.2", "3:b:3.6.2")}
	p, err := NewPlan(zk, Target{Version: compat.MustParseRelease("3.9.2")})
	if err != nil {
		t.Fatal(err)
	}
	var rolls []int
	for _, s := range p.Restarts() {
		if len(rolls) == 0 || rolls[len(rolls)-1] != s.Roll {
			rolls = append(rolls, s.Roll)
		}
	}
	if len(rolls) != 2 || len(p.Restarts()) != 6 {
		t.Errorf("ZooKeeper 3.6 → 3.9: %d restarts in rolls %v, want two rolls of three", len(p.Restarts()), rolls)
	}
	first, second := p.Restarts()[0], p.Restarts()[3]
	if first.Change.Version != "3.9.2" || first.Change.Set["inter.broker.protocol.version"] != "3.6-IV2" || !first.Reversible {
		t.Errorf("first roll %v: want 3.9.2 with IBPV pinned to 3.6-IV2, reversible", first)
	}
	if second.Change.Version != "" || second.Change.Set["inter.broker.protocol.version"] != "3.9-IV0" || second.Reversible || !second.Hold {
		t.Errorf("second roll %v: want the IBPV raised to 3.9-IV0, irreversible and held", second)
	}
	if p.Reversible() {
		t.Error("a plan that raises the IBPV is reversible?")
	}
	// The same state and target always give the same plan (and ID).
	q, _ := NewPlan(zk, Target{Version: compat.MustParseRelease("3.9.2")})
	if p.ID != q.ID || len(p.ID) != 12 {
		t.Errorf("plan IDs %q and %q", p.ID, q.ID)
	}
	if _, err := NewPlan(zk, Target{}); err == nil {
		t.Error("NewPlan accepted a target without a release")
	}
	if _, err := NewPlan(zk, Target{Version: compat.MustParseRelease("3.9.2"), Via: []compat.Release{compat.MustParseRelease("4.0.0")}}); !errors.Is(err, ErrUnsupportedPlan) {
		t.Errorf("Via above the target: %v, want ErrUnsupportedPlan", err)
	}
	kr := compat.State{Mode: compat.ModeKRaft, Finalized: compat.FeatureLevels{"metadata.version": 21}, Nodes: nodes("1:bc:3.9.2")}
	if _, err := NewPlan(kr, Target{Version: compat.MustParseRelease("4.1.2"), Features: compat.FeatureLevels{"no.such.feature": 3}}); !errors.Is(err, ErrUnsupportedPlan) {
		t.Errorf("unknown target feature: %v, want ErrUnsupportedPlan", err)
	}
	var re *compat.RouteError
	_, err = NewPlan(compat.State{Mode: compat.ModeZooKeeper, Nodes: nodes("1:b:3.9.2:3.9", "2:b:3.9.2:3.9")}, Target{Version: compat.MustParseRelease("3.6.2")})
	if !errors.As(err, &re) {
		t.Errorf("downgrade past a raised IBPV: %v, want a *compat.RouteError", err)
	}
}

func TestRollback(t *testing.T) {
	zk := compat.State{Mode: compat.ModeZooKeeper, Finalized: compat.FeatureLevels{}, Nodes: nodes("1:b:3.6.2", "2:b:3.6.2", "3:b:3.6.2")}
	p, err := NewPlan(zk, Target{Version: compat.MustParseRelease("3.9.2")})
	if err != nil {
		t.Fatal(err)
	}
	rec := Record{PlanID: p.ID, Steps: make([]StepRecord, len(p.Steps))}
	rec.Steps[0].State = StepDone
	rec.Steps[1] = StepRecord{State: StepDone, Restarted: true}
	rec.Steps[2] = StepRecord{State: StepFailed, Restarted: true}
	rb, err := NewRollbackPlan(p, rec)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range rb.Restarts() {
		got = append(got, s.String())
	}
	want := []string{
		"restart node 1 (broker): version=3.6.2 unset[inter.broker.protocol.version]",
		"restart node 2 (broker): version=3.6.2 unset[inter.broker.protocol.version]",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rollback restarts (-want +got):\n%s", diff)
	}
	// After the first step of the irreversible IBPV raise, no rollback.
	for i := 1; i <= 3; i++ {
		rec.Steps[i] = StepRecord{State: StepDone, Restarted: true}
	}
	rec.Steps[4] = StepRecord{State: StepStarted}
	_, err = NewRollbackPlan(p, rec)
	ie, ok := errors.AsType[*IrreversibleError](err)
	if !ok || ie.Index != 4 || !errors.Is(err, ErrIrreversible) || !strings.Contains(err.Error(), "inter.broker.protocol.version") {
		t.Errorf("Rollback after the IBPV raise started = %v, want an IrreversibleError naming step 5", err)
	}
}
