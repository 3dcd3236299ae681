package upgrade

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

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

// TestRunnerRefusesMigrationWithoutProvisioner: a Runner whose Orchestrator
// cannot provision controllers refuses the plan before touching a node.
func TestRunnerRefusesMigrationWithoutProvisioner(t *testing.T) {
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

// migFake is a fake cluster that can migrate: it provisions controllers and
// reports the migration done 2s after the last broker entered migration
// mode, once a controller runs.
type migFake struct {
	*fakeCluster
	specs     []node.Spec
	enteredAt time.Time // when the last broker restarted in migration mode
	reads     int       // migrationState calls
	doneSeen  bool      // migrationState reported done
	cleared   int       // clearMigration calls
	retired   []int32
	// notServing is how many controllerServing calls answer "not yet";
	// servedAfter is how many restarts there had been at the first "yes".
	notServing  int
	servedAfter int
	// dualWriteLag is how many dualWriteBehind calls report ZooKeeper
	// behind; dualWriteChecks counts the calls.
	dualWriteLag, dualWriteChecks int
	// reseeds counts reseedPartitions calls; reseededAfter is how many
	// restarts there had been at the last.
	reseeds, reseededAfter int
}

func newMigFake() *migFake {
	f := newFakeCluster(compat.ModeZooKeeper, "3.9.2", 0, 3)
	for _, n := range f.nodes {
		n.config["inter.broker.protocol.version"] = "3.9"
	}
	m := &migFake{fakeCluster: f}
	f.onRestart = func(id int32) {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, n := range f.nodes {
			if slices.Contains(n.roles, node.RoleBroker) && n.config["zookeeper.metadata.migration.enable"] != "true" && n.config["process.roles"] == "" {
				return
			}
		}
		if m.enteredAt.IsZero() {
			m.enteredAt = time.Now()
		}
	}
	return m
}

func (m *migFake) Provision(ctx context.Context, spec node.Spec) (node.Node, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.specs = append(m.specs, spec)
	m.nodes[spec.NodeID] = &fakeNode{id: spec.NodeID, roles: spec.Roles, version: spec.Version, config: maps.Clone(spec.Config)}
	if m.leader < 0 {
		m.leader = spec.NodeID
	}
	return node.Node{ID: spec.NodeID, Roles: spec.Roles, Version: spec.Version}, nil
}

func (m *migFake) clusterID(ctx context.Context) (string, error) { return "zk-cluster-id", nil }

func (m *migFake) zooKeeperConnect(ctx context.Context) (string, error) {
	return "127.0.0.1:2181/kt", nil
}

func (m *migFake) migrationState(ctx context.Context, connect string) (migrationState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	if len(m.specs) == 0 || m.enteredAt.IsZero() {
		return migrationState{Offset: -1, Controller: -1}, nil
	}
	if time.Since(m.enteredAt) < 2*time.Second {
		return migrationState{Started: true, Offset: -1, Controller: m.specs[0].NodeID}, nil
	}
	m.doneSeen = true
	return migrationState{Started: true, Offset: 42, Controller: m.specs[0].NodeID}, nil
}

func (m *migFake) clearMigration(ctx context.Context, connect string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cleared++
	m.enteredAt = time.Time{}
	return "", nil
}

func (m *migFake) dualWriteBehind(ctx context.Context, connect string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dualWriteChecks++
	if m.dualWriteLag > 0 {
		m.dualWriteLag--
		return []string{"orders-0: ZooKeeper has leader 1 epoch 3 ISR [1 2 3], the brokers leader 2 epoch 4 ISR [1 2 3]"}, nil
	}
	return nil, nil
}

func (m *migFake) reseedPartitions(ctx context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reseeds++
	m.reseededAfter = len(m.restarts)
	return 16, nil
}

func (m *migFake) reassignmentsPending(ctx context.Context) ([]string, error) { return nil, nil }

func (m *migFake) controllerServing(ctx context.Context, id int32) (bool, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.notServing > 0 {
		m.notServing--
		return false, "still taking over", nil
	}
	if m.servedAfter < 0 {
		m.servedAfter = len(m.restarts)
	}
	return true, "", nil
}

func (m *migFake) zooKeeperController(ctx context.Context, connect string) (int32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cleared == 0 {
		return -1, nil
	}
	return 1, nil
}

func (m *migFake) Retire(ctx context.Context, id int32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !slices.Contains(m.nodes[id].roles, node.RoleController) {
		return fmt.Errorf("node %d is not a controller", id)
	}
	delete(m.nodes, id)
	m.retired = append(m.retired, id)
	return nil
}

// TestRunnerMigrates runs a whole migration plan on the fake: controllers
// provisioned with the cluster's id, the brokers' zookeeper.connect and the
// bridge's metadata.version; the await step holds the KRaft roll until the
// migration is done; both controller rolls happen; metadata.version is
// finalized at the end.
func TestRunnerMigrates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMigFake()
		plan, err := NewPlan(m.state(), Target{Version: compat.MustParseRelease("4.1.2")}, MigrationControllers(3000))
		if err != nil {
			t.Fatal(err)
		}
		var log eventLog
		krafted := -1 // m.reads when the first broker restarted as a KRaft broker
		m.fakeCluster.onRestart = chain(m.fakeCluster.onRestart, func(id int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			if krafted < 0 && m.nodes[id].config["process.roles"] == "broker" {
				krafted = m.reads
				if !m.doneSeen {
					t.Errorf("broker %d restarted as a KRaft broker before the migration was reported done", id)
				}
			}
		})
		r := mustRunner(t, nil, m, withOps(m), OnEvent(log.add), PassHolds())
		if err := r.Run(t.Context(), plan); err != nil {
			t.Fatal(err)
		}
		want := []node.Spec{{Version: "3.9.2", Roles: []node.Role{node.RoleController}, NodeID: 3000, ClusterID: "zk-cluster-id", MetadataVersion: "3.9-IV0", Quorum: []int32{3000},
			Config: map[string]string{"process.roles": "controller", "zookeeper.metadata.migration.enable": "true", "zookeeper.connect": "127.0.0.1:2181/kt"}}}
		if diff := cmp.Diff(want, m.specs); diff != "" {
			t.Errorf("provisioned (-want +got):\n%s", diff)
		}
		if got := m.restartOrder(); !slices.Equal(got, []int32{1, 2, 3, 1, 2, 3, 3000, 3000, 1, 2, 3}) {
			t.Errorf("restart order %v", got)
		}
		c := m.nodes[3000]
		if c.version != "4.1.2" || c.config["zookeeper.connect"] != "" || c.config["zookeeper.metadata.migration.enable"] != "" {
			t.Errorf("controller after the run: %s %v", c.version, c.config)
		}
		for _, id := range []int32{1, 2, 3} {
			n := m.nodes[id]
			if n.version != "4.1.2" || n.config["process.roles"] != "broker" || n.config["node.id"] != strconv.Itoa(int(id)) || n.config["broker.id"] != "" || n.config["inter.broker.protocol.version"] != "" {
				t.Errorf("broker %d after the run: %s %v", id, n.version, n.config)
			}
		}
		if m.levels["metadata.version"] != 27 {
			t.Errorf("finalized %v, want metadata.version 27", m.levels)
		}
	})
}

func chain(fs ...func(int32)) func(int32) {
	return func(id int32) {
		for _, f := range fs {
			if f != nil {
				f(id)
			}
		}
	}
}

// TestRunnerMigrationResumes: a run stopped after the migration's wait is
// continued with its journal; nothing is provisioned twice and no broker is
// restarted again for a roll it finished.
func TestRunnerMigrationResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMigFake()
		plan, err := NewPlan(m.state(), Target{Version: compat.MustParseRelease("4.1.2")}, MigrationControllers(3000))
		if err != nil {
			t.Fatal(err)
		}
		j := &MemoryJournal{}
		ctx, cancel := context.WithCancel(t.Context())
		stopAt := slices.IndexFunc(plan.Steps, func(s Step) bool { return s.Kind == StepAwaitMigration })
		r := mustRunner(t, nil, m, withOps(m), WithJournal(j), PassHolds(), OnEvent(func(e Event) {
			if e.Kind == EventStepDone && e.Step == stopAt {
				cancel()
			}
		}))
		if err := r.Run(ctx, plan); err == nil {
			t.Fatal("the first run did not stop")
		}
		if got := m.restartOrder(); !slices.Equal(got, []int32{1, 2, 3}) {
			t.Fatalf("first run restarted %v, want the migration-mode roll [1 2 3]", got)
		}
		if err := mustRunner(t, nil, m, withOps(m), WithJournal(j), PassHolds()).Run(t.Context(), plan); err != nil {
			t.Fatal(err)
		}
		if len(m.specs) != 1 {
			t.Errorf("provisioned %d times, want once", len(m.specs))
		}
		if got := m.restartOrder(); !slices.Equal(got, []int32{1, 2, 3, 1, 2, 3, 3000, 3000, 1, 2, 3}) {
			t.Errorf("restart order %v", got)
		}
	})
}

// TestMigrationRollbackPlan: a run held before the point of no return (the
// brokers are KRaft brokers, the controllers dual-write) is reverted to
// ZooKeeper mode on the fake, as Apache's revert steps say: KRaft brokers
// back to ZooKeeper brokers in migration mode, the controller retired, the
// znodes cleared, a broker the ZooKeeper controller again, then the brokers
// without the migration settings. After the point of no return the revert
// is refused.
func TestMigrationRollbackPlan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMigFake()
		plan, err := NewPlan(m.state(), Target{Version: compat.MustParseRelease("4.1.2")}, MigrationControllers(3000))
		if err != nil {
			t.Fatal(err)
		}
		j := &MemoryJournal{}
		err = mustRunner(t, nil, m, withOps(m), WithJournal(j)).Run(t.Context(), plan)
		if he, ok := errors.AsType[*HeldError](err); !ok || he.Index != plan.PointOfNoReturn() {
			t.Fatalf("Run = %v, want held at the point of no return (step %d)", err, plan.PointOfNoReturn()+1)
		}
		rec, err := j.Load(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		rb, err := NewRollbackPlan(plan, rec)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("rollback:\n%v", rb)
		var kinds []string
		for _, s := range rb.Steps {
			kinds = append(kinds, fmt.Sprintf("%s %d", s.Kind, s.Node))
		}
		want := []string{"preflight -1", "restart 1", "restart 2", "restart 3", "retire-controller 3000", "clear-migration -1", "restart 1", "restart 2", "restart 3"}
		if diff := cmp.Diff(want, kinds); diff != "" {
			t.Errorf("rollback steps (-want +got):\n%s", diff)
		}
		before := len(m.restartOrder())
		m.mu.Lock()
		m.notServing, m.servedAfter = 3, -1 // the new ZooKeeper controller takes a while to take over
		m.dualWriteLag = 2                  // and ZooKeeper lags the KRaft controller at first
		m.mu.Unlock()
		if err := mustRunner(t, nil, m, withOps(m)).Run(t.Context(), rb); err != nil {
			t.Fatal(err)
		}
		if m.reseeds != 1 || m.reseededAfter != before+3 {
			t.Errorf("partitions reseeded %d times, after %d restarts; want once, between the two rolls", m.reseeds, m.reseededAfter-before)
		}
		if m.dualWriteLag != 0 || m.dualWriteChecks != 3 {
			t.Errorf("dual-write checked %d times (%d lagging answers left), want the retirement to wait through 2 lagging answers", m.dualWriteChecks, m.dualWriteLag)
		}
		if m.notServing != 0 || m.servedAfter != before+3 {
			t.Errorf("the controller was seen serving after %d restarts (%d \"not yet\" answers left), want after the first roll's 3 and before the second roll", m.servedAfter-before, m.notServing)
		}
		if got := m.restartOrder()[before:]; !slices.Equal(got, []int32{1, 2, 3, 1, 2, 3}) {
			t.Errorf("rollback restarted %v, want two rolls of 1 2 3", got)
		}
		if !slices.Equal(m.retired, []int32{3000}) || m.cleared != 1 {
			t.Errorf("retired %v, cleared %d times; want [3000] and once", m.retired, m.cleared)
		}
		for _, id := range []int32{1, 2, 3} {
			n := m.nodes[id]
			if n.version != "3.9.2" || n.config["broker.id"] != strconv.Itoa(int(id)) || n.config["inter.broker.protocol.version"] != "3.9" {
				t.Errorf("broker %d after the revert: %s %v", id, n.version, n.config)
			}
			for _, k := range []string{"process.roles", "node.id", "zookeeper.metadata.migration.enable"} {
				if v, ok := n.config[k]; ok {
					t.Errorf("broker %d still has %s=%s", id, k, v)
				}
			}
		}
		// Past the point of no return: refused.
		rec.Steps[plan.PointOfNoReturn()].State = StepDone
		if _, err := NewRollbackPlan(plan, rec); !errors.Is(err, ErrIrreversible) {
			t.Errorf("rollback after the point of no return: %v, want ErrIrreversible", err)
		}
	})
}

// brokerConfig reports, as a KRaft broker does, its node.id as a static
// broker.id.
func (m *migFake) brokerConfig(ctx context.Context, id int32, keys []string) (map[string]compat.ConfigValue, error) {
	out, err := m.fakeCluster.brokerConfig(ctx, id, keys)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.nodes[id].config["node.id"]; ok {
		if _, asked := out["broker.id"]; asked {
			out["broker.id"] = compat.Static(v)
		}
	}
	return out, nil
}

// frozenJournal stops saving once frozen, as a SIGKILL leaves a journal.
type frozenJournal struct {
	MemoryJournal
	frozen bool
}

func (j *frozenJournal) Save(ctx context.Context, r Record) error {
	if j.frozen {
		return nil
	}
	return j.MemoryJournal.Save(ctx, r)
}

// TestRunnerMigrationResumesMidKRaftRoll: the Runner dies after a broker
// was restarted into KRaft mode, before it caught up; the next run sees the
// change in effect (a KRaft broker reports its node.id as broker.id, which
// must not count as broker.id still set) and does not restart it again.
func TestRunnerMigrationResumesMidKRaftRoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMigFake()
		plan, err := NewPlan(m.state(), Target{Version: compat.MustParseRelease("4.1.2")}, MigrationControllers(3000))
		if err != nil {
			t.Fatal(err)
		}
		killAt := slices.IndexFunc(plan.Steps, func(s Step) bool { return s.Phase == PhaseKRaftBrokers && s.Node == 1 })
		j := &frozenJournal{}
		ctx, cancel := context.WithCancel(t.Context())
		r := mustRunner(t, nil, m, withOps(m), WithJournal(j), PassHolds(), CatchUpTimeout(time.Hour), OnEvent(func(e Event) {
			if e.Kind == EventRestarted && e.Step == killAt {
				j.frozen = true
				cancel()
			}
		}))
		if err := r.Run(ctx, plan); err == nil {
			t.Fatal("the first run did not stop")
		}
		j.frozen = false
		began := time.Now()
		if err := mustRunner(t, nil, m, withOps(m), WithJournal(j), PassHolds()).Run(t.Context(), plan); err != nil {
			t.Fatal(err)
		}
		if got := m.restartCounts()[1]; got != 3 {
			t.Errorf("broker 1 restarted %d times, want 3 (migration mode, KRaft, 4.1.2): the resumed step must not restart it again", got)
		}
		if d := time.Since(began); d > 5*time.Minute {
			t.Errorf("the second run took %v (fake time): it waited for a change it could not see", d)
		}
	})
}
