package upgrade

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/node"
)

// TestMigrationPlanGolden: the plans of ZooKeeper clusters to 4.x, printed
// and as JSON.
func TestMigrationPlanGolden(t *testing.T) {
	for _, tt := range []struct {
		name   string
		state  compat.State
		target Target
		opts   []PlanOption
	}{
		{"migrate-zk-3.7-to-4.4", compat.State{Mode: compat.ModeZooKeeper, Finalized: compat.FeatureLevels{},
			Nodes: nodes("1:b:3.7.2", "2:b:3.7.2", "3:b:3.7.2")}, Target{Version: compat.MustParseRelease("4.4.0")}, []PlanOption{MigrationControllers(3000)}},
		{"migrate-zk-2.8-to-4.1", compat.State{Mode: compat.ModeZooKeeper, Finalized: compat.FeatureLevels{},
			Nodes: nodes("1:b:2.8.2:2.8-IV1", "2:b:2.8.2:2.8-IV1", "3:b:2.8.2:2.8-IV1")}, Target{Version: compat.MustParseRelease("4.1.2")}, nil},
		{"refused-migration-controller-id-is-a-broker", compat.State{Mode: compat.ModeZooKeeper, Finalized: compat.FeatureLevels{},
			Nodes: nodes("1:b:3.9.2:3.9", "2:b:3.9.2:3.9", "3000:b:3.9.2:3.9")}, Target{Version: compat.MustParseRelease("4.1.2")}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := NewPlan(tt.state, tt.target, tt.opts...)
			var got string
			if err != nil {
				got = "error: " + err.Error() + "\n"
			} else {
				if err := plan.Verify(); err != nil {
					t.Errorf("Verify: %v", err)
				}
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

// TestMigrationPlanRolls: no roll of the route is dropped, roll numbers have
// no gap, every controller roll names the provisioned controllers, the phases
// come in order, and metadata.version is finalized only once every node,
// controllers included, runs the target.
func TestMigrationPlanRolls(t *testing.T) {
	for _, tt := range []struct {
		name        string
		from        []compat.NodeState
		to          string
		controllers []int32
	}{
		{"2.8 to 4.1", nodes("1:b:2.8.2:2.8-IV1", "2:b:2.8.2:2.8-IV1", "3:b:2.8.2:2.8-IV1"), "4.1.2", nil},
		{"3.7 to 4.4, one controller", nodes("1:b:3.7.2", "2:b:3.7.2", "3:b:3.7.2"), "4.4.0", []int32{9}},
		{"3.9 to 4.0", nodes("1:b:3.9.2:3.9", "2:b:3.9.2:3.9", "3:b:3.9.2:3.9"), "4.0.2", []int32{100, 101, 102}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var opts []PlanOption
			want := DefaultMigrationControllers
			if tt.controllers != nil {
				opts = append(opts, MigrationControllers(tt.controllers...))
				want = tt.controllers
			}
			state := compat.State{Mode: compat.ModeZooKeeper, Finalized: compat.FeatureLevels{}, Nodes: tt.from}
			target := compat.MustParseRelease(tt.to)
			plan, err := NewPlan(state, Target{Version: target}, opts...)
			if err != nil {
				t.Fatal(err)
			}
			route, err := compat.Route(state, target, compat.FinalizeMetadataVersionOnly())
			if err != nil {
				t.Fatal(err)
			}
			rollActions := 0
			for _, h := range route.Hops {
				for _, a := range h.Actions {
					if !a.Optional && (a.Kind == compat.RollBinaries || a.Kind == compat.RollConfig) {
						rollActions++
					}
				}
			}
			rolls := map[int][]int32{}
			var order []int
			for _, s := range plan.Steps {
				if s.Kind == StepRestart {
					if _, ok := rolls[s.Roll]; !ok {
						order = append(order, s.Roll)
					}
					rolls[s.Roll] = append(rolls[s.Roll], s.Node)
				}
			}
			if len(rolls) != rollActions {
				t.Errorf("plan has %d rolls, the route %d roll actions", len(rolls), rollActions)
			}
			for i, r := range order {
				if r != i+1 {
					t.Errorf("rolls numbered %v: want 1..%d without gaps", order, len(order))
					break
				}
			}
			var provisioned, controllerRolls []int32
			running := map[int32]string{}
			for _, n := range tt.from {
				running[n.ID] = n.Release.String()
			}
			lastPhase := Phase("")
			for i, s := range plan.Steps {
				if s.Phase < lastPhase {
					t.Errorf("step %d is in phase %s after phase %s", i+1, s.Phase, lastPhase)
				}
				if s.Phase != "" {
					lastPhase = s.Phase
				}
				switch s.Kind {
				case StepProvisionController:
					provisioned = append(provisioned, s.Node)
					running[s.Node] = s.Change.Version
				case StepRestart:
					if s.Change.Version != "" {
						running[s.Node] = s.Change.Version
					}
					if slices.Contains(s.Roles, node.RoleController) && !slices.Contains(controllerRolls, int32(s.Roll)) {
						controllerRolls = append(controllerRolls, int32(s.Roll))
						if got := rolls[s.Roll]; !slices.Equal(got, want) {
							t.Errorf("controller roll %d restarts %v, want %v", s.Roll, got, want)
						}
					}
				case StepFinalize:
					for id, r := range running {
						if r != tt.to {
							t.Errorf("step %d finalizes %v while node %d runs %s", i+1, s.Features, id, r)
						}
					}
				}
			}
			if !slices.Equal(provisioned, want) {
				t.Errorf("provisioned %v, want %v", provisioned, want)
			}
			if len(controllerRolls) != 2 {
				t.Errorf("controller rolls %v: want two (out of migration mode, then onto %s)", controllerRolls, tt.to)
			}
			nr := plan.PointOfNoReturn()
			if nr < 0 {
				t.Fatal("no point of no return")
			}
			if s := plan.Steps[nr]; !s.Hold || s.Reversible || s.Change.Set["zookeeper.metadata.migration.enable"] != "" || !slices.Contains(s.Change.Unset, "zookeeper.metadata.migration.enable") {
				t.Errorf("point of no return %v: want a held, irreversible controller restart out of migration mode", s)
			}
			for i, s := range plan.Steps[:nr] {
				if s.Phase >= PhaseMigration && !s.Reversible {
					t.Errorf("step %d (%v) before the point of no return is irreversible", i+1, s)
				}
			}
			if !strings.Contains(plan.String(), "(point of no return)") {
				t.Errorf("the plan table does not mark the point of no return:\n%s", plan)
			}
			if err := plan.Verify(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestMigrationControllersRefused(t *testing.T) {
	state := compat.State{Mode: compat.ModeZooKeeper, Finalized: compat.FeatureLevels{}, Nodes: nodes("1:b:3.9.2:3.9", "2:b:3.9.2:3.9", "3:b:3.9.2:3.9")}
	for _, tt := range []struct {
		ids  []int32
		want string
	}{
		{[]int32{}, "names no controller"},
		{[]int32{2}, "node id 2 is broker 2's broker.id"},
		{[]int32{5, 5}, "named twice"},
		{[]int32{-1}, "negative"},
	} {
		_, err := NewPlan(state, Target{Version: compat.MustParseRelease("4.1.2")}, MigrationControllers(tt.ids...))
		if !errors.Is(err, ErrUnsupportedPlan) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("MigrationControllers(%v): err %v, want ErrUnsupportedPlan saying %q", tt.ids, err, tt.want)
		}
	}
	// A KRaft cluster ignores the option.
	kstate := compat.State{Mode: compat.ModeKRaft, Finalized: compat.FeatureLevels{"metadata.version": 21}, Nodes: nodes("1:bc:3.9.2")}
	if _, err := NewPlan(kstate, Target{Version: compat.MustParseRelease("4.1.2")}, MigrationControllers(1)); err != nil {
		t.Errorf("KRaft plan with MigrationControllers: %v", err)
	}
}

// TestRunnerRefusesMigrationBeforeAnyStep: a Runner that cannot migrate
// refuses the plan before touching a node.
func TestRunnerRefusesMigrationBeforeAnyStep(t *testing.T) {
	f := newFakeCluster(compat.ModeZooKeeper, "3.9.2", 0, 3)
	plan, err := NewPlan(f.state(), Target{Version: compat.MustParseRelease("4.1.2")})
	if err != nil {
		t.Fatal(err)
	}
	err = mustRunner(t, nil, f, withOps(f), PassHolds()).Run(t.Context(), plan)
	if !errors.Is(err, ErrUnsupportedPlan) {
		t.Fatalf("Run = %v, want ErrUnsupportedPlan", err)
	}
	if got := f.restartOrder(); len(got) > 0 {
		t.Errorf("restarted %v before the refusal", got)
	}
}
