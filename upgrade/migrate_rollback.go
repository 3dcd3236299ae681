package upgrade

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/health"
	"github.com/kupgrade/kupgrade/node"
)

// Step kinds of reverting a ZooKeeper to KRaft migration.
const (
	// StepRetireController stops KRaft controller Step.Node for good
	// through the Orchestrator's [node.Provisioner] (Retire), reverting a
	// migration.
	StepRetireController StepKind = "retire-controller"
	// StepClearMigration deletes the /controller and /migration znodes
	// from the brokers' ZooKeeper, as Apache Kafka's revert steps say
	// ("rmr /controller", "rmr /migration"), then waits, bounded, until a
	// ZooKeeper-mode broker is the controller again.
	StepClearMigration StepKind = "clear-migration"
)

// migrationRollback plans the revert of a migration that plan (with journal
// rec) started, back to ZooKeeper mode on the bridge release, as Apache
// Kafka's "Reverting to ZooKeeper mode During the Migration" describes. ok is
// false when no migration step has run (the ordinary rollback applies).
//
// The steps, each only for what the run did: brokers that run as KRaft
// brokers restart as ZooKeeper brokers still in migration mode (broker.id
// back, node.id and process.roles removed, inter.broker.protocol.version as
// it was); the controllers are retired; the /controller and /migration
// znodes are deleted, so that a broker becomes the controller again and the
// migration can be tried anew; the brokers restart without the migration
// settings.
func migrationRollback(plan Plan, rec Record) (rb Plan, ok bool, err error) {
	ran := func(i int) bool { return rec.Steps[i].State != StepPending }
	first := -1
	for i, s := range plan.Steps {
		if s.Kind == StepProvisionController && ran(i) {
			first = i
			break
		}
	}
	if first < 0 {
		return Plan{}, false, nil
	}
	if nr := plan.PointOfNoReturn(); nr >= 0 {
		for i := nr; i < len(plan.Steps); i++ {
			if ran(i) {
				return Plan{}, true, &IrreversibleError{Index: i, Step: plan.Steps[i]}
			}
		}
	}
	bridge := compat.Release{}
	ibpv := map[int32]string{} // the static inter.broker.protocol.version each broker had in migration mode
	for _, n := range plan.Nodes {
		if n.IBPV.Source == compat.SourceStatic {
			ibpv[n.ID] = n.IBPV.Value
		}
	}
	var kraft, migrating, controllers []int32
	aclBack := map[int32]bool{}
	for i, s := range plan.Steps {
		switch {
		case s.Kind == StepProvisionController:
			bridge, _ = compat.ParseRelease(s.Change.Version)
			if ran(i) {
				controllers = append(controllers, s.Node)
			}
		case s.Kind != StepRestart:
		case s.Phase == PhaseBridge || s.Phase == "":
			if v, ok := s.Change.Set["inter.broker.protocol.version"]; ok {
				ibpv[s.Node] = v
			}
		case s.Phase == PhaseMigration && ran(i):
			migrating = append(migrating, s.Node)
		case s.Phase == PhaseKRaftBrokers && slices.Contains(s.Roles, node.RoleBroker) && ran(i):
			kraft = append(kraft, s.Node)
			if s.Change.Set["authorizer.class.name"] == StandardAuthorizer {
				aclBack[s.Node] = true // the KRaft roll replaced AclAuthorizer
			}
		}
	}
	rb = Plan{Version: PlanVersion, Mode: compat.ModeZooKeeper, Target: bridge}
	for _, n := range plan.Nodes {
		n.Release = bridge // the migration ran on the bridge: every broker runs it
		if v, ok := ibpv[n.ID]; ok {
			n.IBPV = compat.Static(v)
		}
		rb.Nodes = append(rb.Nodes, n)
	}
	rb.Steps = append(rb.Steps, Step{Kind: StepPreflight, Node: -1, Reversible: true, Why: "reads only",
		Reason: "check the cluster before reverting the migration"})
	roles := map[int32][]node.Role{}
	for _, n := range plan.Nodes {
		roles[n.ID] = n.Roles
	}
	for _, id := range kraft {
		ch := node.Change{Set: map[string]string{"zookeeper.metadata.migration.enable": "true", "broker.id": strconv.Itoa(int(id))}, Unset: []string{"node.id", "process.roles"}}
		if v, ok := ibpv[id]; ok {
			ch.Set["inter.broker.protocol.version"] = v
		}
		if aclBack[id] {
			ch.Set["authorizer.class.name"] = AclAuthorizer
		}
		rb.Steps = append(rb.Steps, Step{Kind: StepRestart, Hop: 1, Roll: 1, Node: id, Roles: roles[id], Phase: PhaseKRaftBrokers, Change: ch,
			Reversible: true, Why: "the broker can go to KRaft again while the migration runs",
			Reason: "restart the KRaft broker as a ZooKeeper-mode broker, still in migration mode (Apache's revert: the first of two rolls); the Orchestrator restores zookeeper.connect"})
	}
	for _, id := range controllers {
		rb.Steps = append(rb.Steps, Step{Kind: StepRetireController, Hop: 1, Node: id, Roles: []node.Role{node.RoleController}, Phase: PhaseControllers,
			Reversible: true, Why: "a new quorum can be provisioned for another attempt",
			Reason: fmt.Sprintf("deprovision KRaft controller %d", id)})
	}
	rb.Steps = append(rb.Steps, Step{Kind: StepClearMigration, Hop: 1, Node: -1, Phase: PhaseControllers, Reversible: true, Why: "ZooKeeper keeps the cluster's metadata; a new migration writes them again",
		Reason: "delete the /controller and /migration znodes, so that a ZooKeeper-mode broker becomes the controller again and the migration can be attempted anew; wait until one is"})
	touched := slices.Sorted(slices.Values(append(slices.Clone(migrating), kraft...)))
	touched = slices.Compact(touched)
	for _, id := range touched {
		rb.Steps = append(rb.Steps, Step{Kind: StepRestart, Hop: 1, Roll: 2, Node: id, Roles: roles[id], Phase: PhaseMigration,
			Change:     node.Change{Unset: []string{"controller.listener.names", "controller.quorum.voters", "zookeeper.metadata.migration.enable"}},
			Reversible: true, Why: "the broker can enter migration mode again",
			Reason: "restart the broker without the migration settings: a plain ZooKeeper-mode broker again"})
	}
	rb.Notes = append(rb.Notes, fmt.Sprintf("revert of the ZooKeeper to KRaft migration of plan %s, back to ZooKeeper mode on %v", plan.ID, bridge))
	rb.ID = planID(rb)
	return rb, true, nil
}

// retireController stops controller st.Node for good.
func (u *run) retireController(ctx context.Context, i int, st Step) (string, error) {
	nodes, err := u.r.orch.Nodes(ctx)
	if err != nil {
		return "", fmt.Errorf("the Orchestrator cannot list its nodes: %w", err)
	}
	if !slices.ContainsFunc(nodes, func(n node.Node) bool { return n.ID == st.Node }) {
		return fmt.Sprintf("controller %d is already gone", st.Node), nil
	}
	u.emit(Event{Kind: EventRestarting, Step: i, Message: fmt.Sprintf("retiring KRaft controller %d", st.Node)})
	rctx, cancel := context.WithTimeoutCause(ctx, u.r.cfg.restartTimeout,
		fmt.Errorf("the Orchestrator did not retire controller %d within %v", st.Node, u.r.cfg.restartTimeout))
	defer cancel()
	if err := u.r.orch.(node.Provisioner).Retire(rctx, st.Node); err != nil {
		return "", fmt.Errorf("retire controller %d: %w", st.Node, err)
	}
	return "", nil
}

// clearMigration deletes the migration's znodes and waits until a broker
// of the plan is the ZooKeeper controller.
func (u *run) clearMigration(ctx context.Context, i int) error {
	mops := u.r.cfg.ops.(migrationOps)
	connect, err := mops.zooKeeperConnect(ctx)
	if err != nil {
		return fmt.Errorf("read the brokers' zookeeper.connect: %w", err)
	}
	if connect == "" {
		return errors.New("the brokers name no zookeeper.connect: they do not run in ZooKeeper mode")
	}
	if err := mops.clearMigration(ctx, connect); err != nil {
		return err
	}
	brokers := map[int32]bool{}
	for _, n := range u.plan.Nodes {
		brokers[n.ID] = true
	}
	return u.waitFor(ctx, i, EventWaiting, u.r.cfg.catchUpTimeout, "no ZooKeeper-mode broker became the controller", func(ctx context.Context) (health.Verdict, error) {
		id, err := mops.zooKeeperController(ctx, connect)
		if err != nil {
			return health.Verdict{}, err
		}
		v := health.Verdict{Kind: health.Kind("zookeeper-controller"), OK: brokers[id]}
		if !v.OK {
			v.Reasons = []health.Reason{{Rule: "no-zookeeper-controller", Partition: -1, Leader: -1, Message: fmt.Sprintf("the /controller znode names %d, not a broker", id)}}
		}
		return v, nil
	})
}

func (o *liveOps) clearMigration(ctx context.Context, connect string) error {
	root := zkChroot(connect)
	var errs []error
	for _, srv := range zkServers(connect) {
		err := zkDelete(ctx, srv, o.zkTimeout(), root+"/controller", root+"/migration")
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", srv, err))
	}
	return fmt.Errorf("delete the migration's znodes: %w", errors.Join(errs...))
}

// zooKeeperController returns the broker id the /controller znode names, -1
// if there is none (or a KRaft controller holds it).
func (o *liveOps) zooKeeperController(ctx context.Context, connect string) (int32, error) {
	path := zkChroot(connect) + "/controller"
	var errs []error
	for _, srv := range zkServers(connect) {
		data, err := zkGetData(ctx, srv, path, o.zkTimeout())
		if errors.Is(err, errNoNode) {
			return -1, nil
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", srv, err))
			continue
		}
		var z struct {
			BrokerID   *int32 `json:"brokerid"`
			KRaftEpoch *int32 `json:"kraftControllerEpoch"`
		}
		if err := json.Unmarshal(data, &z); err != nil || z.BrokerID == nil {
			return -1, fmt.Errorf("the /controller znode is not the JSON Kafka writes: %.200q", data)
		}
		if z.KRaftEpoch != nil && *z.KRaftEpoch >= 0 {
			return -1, nil
		}
		return *z.BrokerID, nil
	}
	return -1, fmt.Errorf("read %s from ZooKeeper: %w", path, errors.Join(errs...))
}

func (o *liveOps) zkTimeout() time.Duration {
	if o.zk != nil && o.zk.timeout > 0 {
		return o.zk.timeout
	}
	return DefaultBrokerProbeTimeout
}
