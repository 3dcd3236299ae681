package upgrade

import (
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/node"
)

// A Phase names the stage of a ZooKeeper to KRaft migration that a step of a
// [Plan] belongs to. Only plans that migrate set it ([Step.Phase]); the plan
// table then shows it, and marks the point of no return.
type Phase string

// The phases of a migration, in order (after Apache Kafka's "ZooKeeper to
// KRaft Migration" steps; Strimzi names them ZooKeeper, KRaftMigration,
// KRaftDualWriting, KRaftPostMigration, PreKRaft and KRaft).
const (
	// PhaseBridge takes the ZooKeeper-mode brokers to the bridge release
	// (3.9) and raises inter.broker.protocol.version above the 3.4 that the
	// migration needs (3.7-IV2 with JBOD).
	PhaseBridge Phase = "1-bridge"
	// PhaseControllers provisions the KRaft controller quorum, in migration
	// mode, through the Orchestrator's [node.Provisioner].
	PhaseControllers Phase = "2-controllers"
	// PhaseMigration restarts the brokers in migration mode and waits until
	// the controller has copied the metadata from ZooKeeper; from then on
	// it writes to both (dual-write).
	PhaseMigration Phase = "3-migration"
	// PhaseKRaftBrokers restarts the brokers as KRaft brokers, the
	// controllers still writing to ZooKeeper; and then restarts the
	// controllers without ZooKeeper, which finalizes the migration: the
	// point of no return.
	PhaseKRaftBrokers Phase = "4-kraft"
	// PhaseTarget is the KRaft upgrade from the bridge to the target
	// release, metadata.version finalized at the end.
	PhaseTarget Phase = "5-target"
)

// Step kinds of a ZooKeeper to KRaft migration.
const (
	// StepProvisionController starts KRaft controller Step.Node, in
	// migration mode, through the Orchestrator's [node.Provisioner]: same
	// cluster id as the ZooKeeper cluster, the node id Step.Node, the
	// zookeeper.connect the brokers use, storage formatted at the bridge
	// release's metadata.version.
	StepProvisionController StepKind = "provision-controller"
	// StepAwaitMigration waits, bounded, until the KRaft controller has
	// copied the metadata from ZooKeeper (see [Runner] and
	// DefaultMigrationSignal).
	StepAwaitMigration StepKind = "await-migration"
)

// DefaultMigrationControllers are the node ids a migration plan gives the
// KRaft controllers it provisions, unless [MigrationControllers] says
// otherwise: three controllers (a quorum that survives one failure), with the
// id of Apache Kafka's migration example (3000) and the next two.
var DefaultMigrationControllers = []int32{3000, 3001, 3002}

// MigrationControllers sets the node ids of the KRaft controllers that a
// ZooKeeper to KRaft migration provisions, one controller per id, overriding
// [DefaultMigrationControllers]. Each must be non-negative and differ from
// every broker id: [NewPlan] refuses the plan otherwise. An odd number is
// usual (2N+1 controllers survive N failures).
func MigrationControllers(ids ...int32) PlanOption {
	return planOptionFunc(func(c *planConfig) { c.migrationControllers = slices.Clone(ids) })
}

// migrationControllers returns the controller ids of a migration plan, or an
// error saying why they cannot be used with state's brokers.
func (c planConfig) controllersFor(state compat.State) ([]int32, error) {
	ids := c.migrationControllers
	if ids == nil {
		ids = DefaultMigrationControllers
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w: MigrationControllers() names no controller; a migration needs at least one", ErrUnsupportedPlan)
	}
	seen := map[int32]bool{}
	for _, id := range ids {
		if id < 0 {
			return nil, fmt.Errorf("%w: MigrationControllers: node id %d is negative", ErrUnsupportedPlan, id)
		}
		if seen[id] {
			return nil, fmt.Errorf("%w: MigrationControllers: node id %d is named twice", ErrUnsupportedPlan, id)
		}
		seen[id] = true
		for _, n := range state.Nodes {
			if n.ID == id {
				return nil, fmt.Errorf("%w: MigrationControllers: node id %d is broker %d's broker.id; KRaft controller ids must differ from every broker id", ErrUnsupportedPlan, id, n.ID)
			}
		}
	}
	return slices.Clone(ids), nil
}

// migrationRoles adds the roles of the controllers a migration will
// provision to roles, so that the KRaft hops after it can roll them.
func migrationRoles(state compat.State, roles map[int32][]node.Role, cfg planConfig) error {
	if state.Mode != compat.ModeZooKeeper {
		return nil
	}
	ids, err := cfg.controllersFor(state)
	if err != nil {
		return err
	}
	for _, id := range ids {
		roles[id] = []node.Role{node.RoleController}
	}
	return nil
}

// rollNodes returns the nodes a roll action restarts: its Nodes, or, for a
// controller roll that names none (controllers a migration provisions, whose
// ids the route does not know), the plan's migration controllers.
func rollNodes(s compat.Action, roles map[int32][]node.Role, cfg planConfig) []int32 {
	if len(s.Nodes) > 0 || s.Role != node.RoleController {
		return s.Nodes
	}
	ids := cfg.migrationControllers
	if ids == nil {
		ids = DefaultMigrationControllers
	}
	var out []int32
	for _, id := range ids {
		if slices.Equal(roles[id], []node.Role{node.RoleController}) {
			out = append(out, id)
		}
	}
	return out
}

// addMigrationHop appends the typed steps of a Migration hop (numbered hop)
// and returns the last roll number: the controllers provisioned one by one,
// the brokers rolled into migration mode, a wait until the metadata is
// copied, the brokers rolled to KRaft (node.id set to their broker.id), and
// the controllers restarted without ZooKeeper, which cannot be undone and is
// held.
func (p *Plan) addMigrationHop(hop int, h compat.Hop, roles map[int32][]node.Role, roll int, cfg planConfig) (int, error) {
	for _, pre := range h.Preconditions {
		p.Notes = append(p.Notes, fmt.Sprintf("hop %d (%v → %v): before it, %s", hop, h.From, h.To, pre))
	}
	controllers := rollNodes(compat.Action{Role: node.RoleController}, roles, cfg)
	if len(controllers) == 0 {
		return roll, fmt.Errorf("%w: the migration on %v has no controller ids to provision (see MigrationControllers)", ErrUnsupportedPlan, h.To)
	}
	for _, s := range h.Actions {
		if s.Optional {
			p.Notes = append(p.Notes, fmt.Sprintf("hop %d: not planned (an explicit decision): %v — %s", hop, s, s.Reason))
			continue
		}
		switch {
		case s.Kind == compat.ProvisionControllers:
			for _, id := range controllers {
				p.Steps = append(p.Steps, Step{Kind: StepProvisionController, Hop: hop, Node: id, Roles: []node.Role{node.RoleController}, Phase: PhaseControllers,
					Change:     node.Change{Version: s.Release.String(), Set: maps.Clone(s.Set)},
					Reversible: true, Why: "until the brokers join the quorum, stopping the controllers undoes it", Reason: s.Reason})
			}
		case s.Kind == compat.RollConfig && s.Role == node.RoleBroker && s.Set["zookeeper.metadata.migration.enable"] == "true":
			roll++
			for _, id := range s.Nodes {
				p.Steps = append(p.Steps, Step{Kind: StepRestart, Hop: hop, Roll: roll, Node: id, Roles: roles[id], Phase: PhaseMigration,
					Change:     node.Change{Set: maps.Clone(s.Set), Unset: slices.Clone(s.Unset)},
					Reversible: true, Why: "the broker can be restarted without the migration settings (NewRollbackPlan)", Reason: s.Reason})
			}
			p.Steps = append(p.Steps, Step{Kind: StepAwaitMigration, Hop: hop, Node: -1, Phase: PhaseMigration, Reversible: true, Why: "waits only",
				Reason: "wait until the KRaft controller has copied the metadata from ZooKeeper (the /migration znode records a KRaft metadata offset); from then on it writes to both"})
		case s.Kind == compat.RollConfig && s.Role == node.RoleBroker:
			roll++
			for _, id := range s.Nodes {
				ch := node.Change{Set: maps.Clone(s.Set), Unset: slices.Clone(s.Unset)}
				ch.Set["node.id"] = strconv.Itoa(int(id))
				p.Steps = append(p.Steps, Step{Kind: StepRestart, Hop: hop, Roll: roll, Node: id, Roles: roles[id], Phase: PhaseKRaftBrokers, Change: ch,
					Reversible: true, Why: "while the controllers still write to ZooKeeper, the broker can go back to ZooKeeper mode (NewRollbackPlan)", Reason: s.Reason})
			}
		case s.Kind == compat.RollConfig && s.Role == node.RoleController:
			roll++
			for _, id := range controllers {
				p.Steps = append(p.Steps, Step{Kind: StepRestart, Hop: hop, Roll: roll, Node: id, Roles: roles[id], Phase: PhaseKRaftBrokers,
					Change:     node.Change{Set: maps.Clone(s.Set), Unset: slices.Clone(s.Unset)},
					Reversible: false, Hold: true,
					Why:    "the controllers stop writing to ZooKeeper: the cluster can never return to ZooKeeper mode",
					Reason: s.Reason})
			}
		default:
			return roll, fmt.Errorf("%w: migration action %v is not one kupgrade runs", ErrUnsupportedPlan, s)
		}
	}
	return roll, nil
}

// setPhases gives every step of a plan that migrates its [Phase]: the hops
// before the migration are the bridge, those after it the target.
func (p *Plan) setPhases(migrationHop int) {
	if migrationHop == 0 {
		return
	}
	for i := range p.Steps {
		s := &p.Steps[i]
		switch {
		case s.Hop == 0 || s.Phase != "":
		case s.Hop < migrationHop:
			s.Phase = PhaseBridge
		case s.Hop > migrationHop:
			s.Phase = PhaseTarget
		}
	}
}

// PointOfNoReturn returns the index of the first step of the plan that ends
// a ZooKeeper to KRaft migration (the controllers restarted without
// ZooKeeper), or -1 if the plan has none. Before it, [NewRollbackPlan] can
// take the cluster back to ZooKeeper mode.
func (p Plan) PointOfNoReturn() int {
	for i, s := range p.Steps {
		if s.Phase == PhaseKRaftBrokers && s.Kind == StepRestart && slices.Contains(s.Roles, node.RoleController) {
			return i
		}
	}
	return -1
}

// checkMigration refuses, before any step, a plan with migration steps that
// this Runner cannot carry out.
func (r *Runner) checkMigration(plan Plan) error {
	for i, s := range plan.Steps {
		if s.Kind == StepProvisionController || s.Kind == StepAwaitMigration {
			return fmt.Errorf("%w: step %d (%s) is part of a ZooKeeper to KRaft migration, which this Runner does not carry out yet; plan to 3.9 (the bridge), migrate by hand, then plan again", ErrUnsupportedPlan, i+1, s.Kind)
		}
	}
	return nil
}
