package upgrade

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

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
	// ZooKeeper-mode broker is the controller again. Before the delete it
	// raises /controller_epoch to the KRaft controller's epoch if that is
	// higher, so that the ZooKeeper controller elected next can change the
	// partition states the KRaft controller wrote (KAFKA-20488). Once the
	// new controller serves, every partition is reassigned to its own
	// replicas, which makes the controller bump each partition's leader
	// epoch: the leaders then hold partition epochs the ZooKeeper controller
	// recognizes (see the package doc).
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
	if err := u.awaitDualWrite(ctx, i); err != nil {
		return "", err
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

// revertZooKeeper returns the ZooKeeper a revert works on: the brokers'
// zookeeper.connect (or ZooKeeperConnect's), which they must have, being
// ZooKeeper-mode brokers again by then.
func revertZooKeeper(ctx context.Context, mops migrationOps) (string, error) {
	connect, err := mops.zooKeeperConnect(ctx)
	if err != nil {
		return "", fmt.Errorf("read the brokers' zookeeper.connect: %w", err)
	}
	if connect == "" {
		return "", errors.New("the brokers name no zookeeper.connect: they do not run in ZooKeeper mode")
	}
	return connect, nil
}

// clearMigration deletes the migration's znodes and waits until a broker
// of the plan is the ZooKeeper controller.
func (u *run) clearMigration(ctx context.Context, i int) error {
	mops := u.r.cfg.ops.(migrationOps)
	connect, err := revertZooKeeper(ctx, mops)
	if err != nil {
		return err
	}
	note, err := mops.clearMigration(ctx, connect)
	if err != nil {
		return err
	}
	if note != "" {
		u.emit(Event{Kind: EventWaiting, Step: i, Message: "znodes deleted; " + note})
	}
	brokers := map[int32]bool{}
	for _, n := range u.plan.Nodes {
		brokers[n.ID] = true
	}
	err = u.waitFor(ctx, i, EventWaiting, u.r.cfg.catchUpTimeout, "no ZooKeeper-mode broker became the controller and finished taking over", func(ctx context.Context) (health.Verdict, error) {
		id, err := mops.zooKeeperController(ctx, connect)
		if err != nil {
			return health.Verdict{}, err
		}
		v := health.Verdict{Kind: health.Kind("zookeeper-controller"), OK: brokers[id]}
		if !v.OK {
			v.Reasons = []health.Reason{{Rule: "no-zookeeper-controller", Partition: -1, Leader: -1, Message: fmt.Sprintf("the /controller znode names %d, not a broker", id)}}
			return v, nil
		}
		// Elected is not yet in charge: the new controller first loads the
		// cluster's state from ZooKeeper and tells the brokers; the reseed
		// that follows, and the next step's controlled shutdown, must reach
		// a controller that has finished taking over.
		if ok, why, err := mops.controllerServing(ctx, id); err != nil {
			return health.Verdict{}, err
		} else if !ok {
			v.OK = false
			v.Reasons = []health.Reason{{Rule: "zookeeper-controller-taking-over", Partition: -1, Leader: -1, Nodes: []int32{id},
				Message: fmt.Sprintf("broker %d is the ZooKeeper controller but not serving yet: %s", id, why)}}
		}
		return v, nil
	})
	if err != nil {
		return err
	}
	return u.reseedPartitions(ctx, i)
}

// quietElection picks the partition for controllerServing's election: the
// first one led by its preferred replica (so that nothing moves), else the
// first one; ok is false without partitions.
func quietElection(meta *kmsg.MetadataResponse) (topic string, partition int32, ok bool) {
	for _, preferredOnly := range []bool{true, false} {
		for _, t := range meta.Topics {
			for _, p := range t.Partitions {
				if t.Topic != nil && len(p.Replicas) > 0 && (!preferredOnly || p.Leader == p.Replicas[0]) {
					return *t.Topic, p.Partition, true
				}
			}
		}
	}
	return "", -1, false
}

// controllerServing asks broker id, the ZooKeeper controller, for a
// preferred-leader election of one partition that already has its
// preferred leader (so nothing moves; a partition led otherwise if there is
// none), and reports whether it answered as the controller. A ZooKeeper
// controller handles ElectLeaders in its event queue, after the failover
// that made it the controller: an answer means it has loaded the cluster's
// state and sent the brokers theirs. A cluster without partitions needs no
// such proof.
func (o *liveOps) controllerServing(ctx context.Context, id int32) (bool, string, error) {
	meta, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, o.cl)
	if err != nil {
		return false, "", fmt.Errorf("metadata: %w", err)
	}
	topic, partition, ok := quietElection(meta)
	if !ok {
		return true, "", nil
	}
	req := kmsg.NewPtrElectLeadersRequest()
	req.ElectionType = 0 // preferred
	req.TimeoutMillis = 5000
	rt := kmsg.NewElectLeadersRequestTopic()
	rt.Topic, rt.Partitions = topic, []int32{partition}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, o.cl.Broker(int(id)))
	if err != nil {
		return false, fmt.Sprintf("ElectLeaders: %v", err), nil
	}
	if e := kerr.ErrorForCode(resp.ErrorCode); e != nil {
		if errors.Is(e, kerr.ClusterAuthorizationFailed) {
			return false, "", fmt.Errorf("ElectLeaders (to see the new controller serve): %w", e)
		}
		return false, fmt.Sprintf("ElectLeaders: %v", e), nil
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if e := kerr.ErrorForCode(p.ErrorCode); e != nil && !errors.Is(e, kerr.ElectionNotNeeded) {
				return false, fmt.Sprintf("ElectLeaders %s-%d: %v", t.Topic, p.Partition, e), nil
			}
		}
	}
	return true, "", nil
}

func (o *liveOps) clearMigration(ctx context.Context, connect string) (string, error) {
	root := zkChroot(connect)
	var errs []error
	for _, srv := range zkServers(connect) {
		var note string
		err := zkSession(ctx, srv, o.zkTimeout(), func(z *zkConn) error {
			var err error
			if note, err = raiseControllerEpoch(z, root); err != nil {
				return err
			}
			for _, p := range []string{root + "/controller", root + "/migration"} {
				if err := z.delete(p); err != nil && !errors.Is(err, errNoNode) {
					return err
				}
			}
			return nil
		})
		if err == nil {
			return note, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", srv, err))
	}
	return "", fmt.Errorf("delete the migration's znodes: %w", errors.Join(errs...))
}

// raiseControllerEpoch makes sure that the ZooKeeper controller elected
// once /controller is gone gets an epoch above the KRaft controller's.
// In dual-write the KRaft controller writes the partition states in
// ZooKeeper with its own (KRaft) epoch, and a ZooKeeper controller refuses
// to change a partition state written by a higher epoch than its own: with
// a KRaft epoch at or above the /controller_epoch, the reverted cluster
// could not elect leaders, and the partitions of a broker that stops
// would go offline (KAFKA-20488; Apache Kafka's revert steps check the
// two epochs for this reason). So while the KRaft controller's
// registration still holds /controller (no ZooKeeper-mode broker can be
// elected), /controller_epoch is raised to the KRaft epoch if it is lower,
// conditionally on its version. It returns what it found and did.
func raiseControllerEpoch(z *zkConn, root string) (string, error) {
	data, err := z.get(root + "/controller")
	if errors.Is(err, errNoNode) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var reg struct {
		KRaftEpoch *int32 `json:"kraftControllerEpoch"`
	}
	if err := json.Unmarshal(data, &reg); err != nil {
		return "", fmt.Errorf("the /controller znode is not the JSON Kafka writes: %.200q", data)
	}
	if reg.KRaftEpoch == nil || *reg.KRaftEpoch < 0 {
		return "", nil // a ZooKeeper-mode controller holds it
	}
	kraft := int(*reg.KRaftEpoch)
	raw, version, err := z.getVersioned(root + "/controller_epoch")
	if err != nil {
		return "", err
	}
	zk, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return "", fmt.Errorf("the /controller_epoch znode is not a number: %.50q", raw)
	}
	if zk >= kraft {
		return fmt.Sprintf("ZooKeeper controller epoch %d, KRaft controller epoch %d: the next ZooKeeper controller's epoch is above every partition state's", zk, kraft), nil
	}
	if err := z.set(root+"/controller_epoch", []byte(strconv.Itoa(kraft)), version); err != nil {
		return "", fmt.Errorf("raise /controller_epoch from %d to the KRaft controller's epoch %d: %w", zk, kraft, err)
	}
	return fmt.Sprintf("raised /controller_epoch from %d to the KRaft controller epoch %d, so that the next ZooKeeper controller can change the partition states the KRaft controller wrote (KAFKA-20488)", zk, kraft), nil
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
