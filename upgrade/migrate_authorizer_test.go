package upgrade

import (
	"slices"
	"testing"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/node"
)

// TestMigrationAuthorizer: brokers on AclAuthorizer get StandardAuthorizer
// in their KRaft roll and the provisioned controllers get it too; a
// revert before the point of no return puts AclAuthorizer back on the
// brokers it changed; a cluster without an authorizer gets none.
func TestMigrationAuthorizer(t *testing.T) {
	to := Target{Version: compat.MustParseRelease("4.1.2")}
	state := func(authorizer string) compat.State {
		st := compat.State{Mode: compat.ModeZooKeeper, Finalized: compat.FeatureLevels{}, Nodes: nodes("1:b:3.9.2:3.9", "2:b:3.9.2:3.9", "3:b:3.9.2:3.9")}
		for i := range st.Nodes {
			st.Nodes[i].Authorizer = authorizer
		}
		return st
	}
	authorizers := func(p Plan) (controllers, kraftBrokers map[int32]string) {
		controllers, kraftBrokers = map[int32]string{}, map[int32]string{}
		for _, s := range p.Steps {
			switch {
			case s.Kind == StepProvisionController:
				controllers[s.Node] = s.Change.Set["authorizer.class.name"]
			case s.Kind == StepRestart && s.Phase == PhaseKRaftBrokers && !slices.Contains(s.Roles, node.RoleController):
				kraftBrokers[s.Node] = s.Change.Set["authorizer.class.name"]
			}
		}
		return controllers, kraftBrokers
	}
	plan, err := NewPlan(state(AclAuthorizer), to, MigrationControllers(3000, 3001, 3002))
	if err != nil {
		t.Fatal(err)
	}
	c, b := authorizers(plan)
	for _, id := range []int32{3000, 3001, 3002} {
		if c[id] != StandardAuthorizer {
			t.Errorf("controller %d provisioned with authorizer.class.name %q, want %s", id, c[id], StandardAuthorizer)
		}
	}
	for _, id := range []int32{1, 2, 3} {
		if b[id] != StandardAuthorizer {
			t.Errorf("broker %d's KRaft roll sets authorizer.class.name %q, want %s", id, b[id], StandardAuthorizer)
		}
	}
	if len(c) != 3 || len(b) != 3 {
		t.Errorf("%d provisions and %d KRaft broker restarts, want 3 and 3:\n%v", len(c), len(b), plan)
	}

	// Revert after every broker runs in KRaft mode: AclAuthorizer again.
	rec := Record{PlanID: plan.ID, Steps: make([]StepRecord, len(plan.Steps))}
	for i := range plan.PointOfNoReturn() {
		rec.Steps[i].State = StepDone
	}
	rb, err := NewRollbackPlan(plan, rec)
	if err != nil {
		t.Fatal(err)
	}
	back := map[int32]string{}
	for _, s := range rb.Steps {
		if s.Kind == StepRestart && s.Roll == 1 {
			back[s.Node] = s.Change.Set["authorizer.class.name"]
		}
	}
	for _, id := range []int32{1, 2, 3} {
		if back[id] != AclAuthorizer {
			t.Errorf("the revert restarts broker %d with authorizer.class.name %q, want %s\n%v", id, back[id], AclAuthorizer, rb)
		}
	}

	// No authorizer, or a custom one: nothing set.
	for _, a := range []string{"", "com.example.MyAuthorizer"} {
		plan, err := NewPlan(state(a), to, MigrationControllers(3000))
		if err != nil {
			t.Fatal(err)
		}
		c, b := authorizers(plan)
		for id, v := range c {
			if v != "" {
				t.Errorf("authorizer %q: controller %d gets %q", a, id, v)
			}
		}
		for id, v := range b {
			if v != "" {
				t.Errorf("authorizer %q: broker %d gets %q", a, id, v)
			}
		}
	}
}
