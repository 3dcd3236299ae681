package kupgrade_test

import (
	"fmt"
	"log"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/node"
	"github.com/kupgrade/kupgrade/upgrade"
)

// The planning half of kupgrade needs no cluster: given what a cluster runs
// (normally from upgrade.Inspect), it says what an upgrade involves. A KRaft
// cluster of three controllers and three brokers on 3.9.2, to 4.1.2:
// controllers first, then brokers, then metadata.version, which cannot be
// undone and so is held until the caller allows it.
func Example() {
	state := compat.State{Mode: compat.ModeKRaft, Finalized: compat.FeatureLevels{compat.FeatureMetadataVersion: 21}}
	for id := int32(1); id <= 6; id++ {
		role := node.RoleController
		if id > 3 {
			role = node.RoleBroker
		}
		state.Nodes = append(state.Nodes, compat.NodeState{ID: id, Roles: []node.Role{role}, Release: compat.MustParseRelease("3.9.2")})
	}
	plan, err := upgrade.NewPlan(state, upgrade.Target{Version: compat.MustParseRelease("4.1.2")})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range plan.Steps[1:] {
		fmt.Printf("%v (hold %v)\n", s, s.Hold)
	}
	// Output:
	// restart node 1 (controller): version=4.1.2 (hold false)
	// restart node 2 (controller): version=4.1.2 (hold false)
	// restart node 3 (controller): version=4.1.2 (hold false)
	// restart node 4 (broker): version=4.1.2 (hold false)
	// restart node 5 (broker): version=4.1.2 (hold false)
	// restart node 6 (broker): version=4.1.2 (hold false)
	// finalize metadata.version=4.1-IV1 (27) (hold true)
}
