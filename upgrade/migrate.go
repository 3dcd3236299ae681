package upgrade

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/health"
	"github.com/kupgrade/kupgrade/internal/poll"
	"github.com/kupgrade/kupgrade/kraft"
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
	// StepAwaitMigration waits, bounded by [CatchUpTimeout], until the
	// KRaft controller has copied the metadata from ZooKeeper.
	//
	// The signal is the /migration znode in the brokers' ZooKeeper (under
	// their zookeeper.connect chroot, which the Runner reads from a broker's
	// static config): the controller records there the KRaft metadata
	// offset of the copied metadata, and the copy is complete once that
	// offset is above 0 — the test Kafka's own code and integration tests
	// use (ZkMigrationLeadershipState.initialZkMigrationComplete). It works
	// wherever the Runner can reach ZooKeeper (as its ZooKeeper probe
	// already must, see [NoZooKeeperProbe]) with a few bytes of ZooKeeper's
	// protocol and no new dependency. The alternatives do not say the copy
	// is complete: ApiVersions' ZkMigrationReady only says that every
	// controller runs with the migration enabled; the controller the
	// brokers report in metadata is not reliable while a KRaft controller
	// drives ZooKeeper-mode brokers; the controller's ZkMigrationState
	// metric needs JMX; its log line ("Completed migration of metadata from
	// Zookeeper to KRaft") is not reachable through Kafka's protocol.
	// TestMigrateZooKeeperToKRaft checks the znode against that log line.
	StepAwaitMigration StepKind = "await-migration"
)

// The authorizers a migration switches between: ZooKeeper mode's, which
// keeps ACLs in ZooKeeper, and KRaft mode's, which keeps them in the
// metadata log (the migration copies them).
const (
	// AclAuthorizer is ZooKeeper mode's authorizer.class.name.
	AclAuthorizer = "kafka.security.authorizer.AclAuthorizer"
	// StandardAuthorizer is KRaft mode's authorizer.class.name.
	StandardAuthorizer = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
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
// held. Brokers of cur (the state before the hop) that use ZooKeeper's
// AclAuthorizer get KRaft's StandardAuthorizer in their KRaft roll, and the
// controllers it from the start, as Apache's migration guide requires (the
// ACLs are migrated with the metadata).
func (p *Plan) addMigrationHop(hop int, h compat.Hop, roles map[int32][]node.Role, roll int, cfg planConfig, cur compat.State) (int, error) {
	acl := map[int32]bool{}
	for _, n := range cur.Nodes {
		if n.Authorizer == AclAuthorizer {
			acl[n.ID] = true
		}
	}
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
				ch := node.Change{Version: s.Release.String(), Set: maps.Clone(s.Set)}
				if len(acl) > 0 {
					ch.Set["authorizer.class.name"] = StandardAuthorizer
				}
				p.Steps = append(p.Steps, Step{Kind: StepProvisionController, Hop: hop, Node: id, Roles: []node.Role{node.RoleController}, Phase: PhaseControllers,
					Change:     ch,
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
				if acl[id] {
					ch.Set["authorizer.class.name"] = StandardAuthorizer
				}
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

// migrationOps is what a Runner reads to carry out a migration; liveOps
// does it through the client and the brokers' ZooKeeper, tests script it.
type migrationOps interface {
	// clusterID returns the cluster's id, as the brokers report it.
	clusterID(ctx context.Context) (string, error)
	// zooKeeperConnect returns the brokers' zookeeper.connect.
	zooKeeperConnect(ctx context.Context) (string, error)
	// migrationState reads the migration's progress from ZooKeeper.
	migrationState(ctx context.Context, connect string) (migrationState, error)
	// clearMigration deletes the /controller and /migration znodes, first
	// raising /controller_epoch above the KRaft controller's epoch if
	// needed; it returns what it found and did.
	clearMigration(ctx context.Context, connect string) (string, error)
	// zooKeeperController returns the broker that the /controller znode
	// names, -1 for none (or a KRaft controller).
	zooKeeperController(ctx context.Context, connect string) (int32, error)
	// controllerServing reports whether broker id, elected ZooKeeper
	// controller, has finished taking over (and if not, why not).
	controllerServing(ctx context.Context, id int32) (bool, string, error)
	// dualWriteBehind lists the partitions whose state in ZooKeeper is not
	// yet what the brokers hold (none once the dual-write caught up).
	dualWriteBehind(ctx context.Context, connect string) ([]string, error)
	// reseedPartitions reassigns every partition to its own replicas and
	// returns how many; reassignmentsPending lists those in progress.
	reseedPartitions(ctx context.Context) (int, error)
	reassignmentsPending(ctx context.Context) ([]string, error)
}

// migrationState is what the /migration znode says.
type migrationState struct {
	// Started: the znode exists (a KRaft controller has claimed the
	// migration).
	Started bool
	// Offset is the KRaft metadata offset the migration recorded
	// (kraft_metadata_offset), -1 until the metadata has been copied.
	Offset int64
	// Controller is the KRaft controller that recorded it.
	Controller int32
}

// Done reports whether the metadata has been copied: Kafka's own test of
// it (ZkMigrationLeadershipState.initialZkMigrationComplete) is a KRaft
// metadata offset above 0.
func (m migrationState) Done() bool { return m.Offset > 0 }

// checkMigration refuses, before any step, a plan with migration steps that
// this Runner cannot carry out: its Orchestrator must provision the
// controllers.
func (r *Runner) checkMigration(plan Plan) error {
	for i, s := range plan.Steps {
		if s.Kind != StepProvisionController && s.Kind != StepRetireController && s.Kind != StepClearMigration {
			continue
		}
		if _, ok := r.orch.(node.Provisioner); !ok {
			return fmt.Errorf("%w: step %d (%s) needs an Orchestrator that implements node.Provisioner, and %T does not", ErrUnsupportedPlan, i+1, s.Kind, r.orch)
		}
		if _, ok := r.cfg.ops.(migrationOps); !ok {
			return fmt.Errorf("%w: step %d (%s): this Runner cannot read the migration's state", ErrUnsupportedPlan, i+1, s.Kind)
		}
	}
	return nil
}

// provisionController starts the KRaft controller st.Node in migration
// mode. A controller the Orchestrator already lists (an interrupted run
// started it) is not started again.
func (u *run) provisionController(ctx context.Context, i int, st Step, sr *StepRecord) (string, error) {
	nodes, err := u.r.orch.Nodes(ctx)
	if err != nil {
		return "", fmt.Errorf("the Orchestrator cannot list its nodes: %w", err)
	}
	if slices.ContainsFunc(nodes, func(n node.Node) bool { return n.ID == st.Node }) {
		if sr.Provisioned == nil {
			id := st.Node
			sr.Provisioned = &id
		}
		u.learnControllers(ctx)
		return fmt.Sprintf("controller %d already runs", st.Node), nil
	}
	mops := u.r.cfg.ops.(migrationOps) // checkMigration made sure
	clusterID, err := mops.clusterID(ctx)
	if err != nil {
		return "", fmt.Errorf("read the cluster id: %w", err)
	}
	connect, err := mops.zooKeeperConnect(ctx)
	if err != nil {
		return "", fmt.Errorf("read the brokers' zookeeper.connect: %w", err)
	}
	if connect == "" {
		return "", errors.New("the brokers name no zookeeper.connect: they do not run in ZooKeeper mode")
	}
	rel, err := compat.ParseRelease(st.Change.Version)
	if err != nil {
		return "", err
	}
	mv, err := compat.LatestProduction(rel)
	if err != nil {
		return "", err
	}
	cfg := maps.Clone(st.Change.Set)
	if cfg == nil {
		cfg = map[string]string{}
	}
	cfg["zookeeper.connect"] = connect
	sr.Restarted = true // "the Orchestrator was asked": a resumed run looks for the node
	if err := u.save(ctx); err != nil {
		return "", err
	}
	u.emit(Event{Kind: EventRestarting, Step: i, Message: fmt.Sprintf("provisioning KRaft controller %d on %v in migration mode (cluster %s, metadata.version %v)", st.Node, rel, clusterID, mv)})
	began := u.r.cfg.now()
	rctx, cancel := context.WithTimeoutCause(ctx, u.r.cfg.restartTimeout,
		fmt.Errorf("the Orchestrator did not provision controller %d within %v", st.Node, u.r.cfg.restartTimeout))
	n, err := u.r.orch.(node.Provisioner).Provision(rctx, node.Spec{Version: rel.String(), Roles: []node.Role{node.RoleController},
		NodeID: st.Node, ClusterID: clusterID, MetadataVersion: mv.Name, Config: cfg, Quorum: u.plan.migrationQuorum()})
	cancel()
	if err != nil {
		return "", fmt.Errorf("provisioning controller %d: %w", st.Node, err)
	}
	if n.ID != st.Node {
		return "", fmt.Errorf("the Orchestrator provisioned node %d, not controller %d as asked", n.ID, st.Node)
	}
	sr.Provisioned = &n.ID
	if err := u.save(ctx); err != nil {
		return "", err
	}
	u.emit(Event{Kind: EventRestarted, Step: i, Elapsed: u.r.cfg.now().Sub(began), Message: fmt.Sprintf("controller %d provisioned", st.Node)})
	u.learnControllers(ctx)
	return "", nil
}

// learnControllers points the run's quorum and feature reads at the KRaft
// controllers the Orchestrator lists (a migration provisions them, so the
// caller could not name them with [KRaftControllers]), unless the caller did
// name some. Through the brokers these reads are unreliable while brokers
// change mode: a broker just started in KRaft mode advertises DescribeQuorum
// only once it knows the controller's versions, and a client keeps the
// first ApiVersions answer for the connection's life (observed: a gate
// refused for minutes with "broker is too old"). So quorum reads go to the
// controllers through a client of their own, made with the caller's client
// options (TLS, SASL) and closed, and the Runner's own reads restored, when
// Run returns ([run.endMigration]).
func (u *run) learnControllers(ctx context.Context) {
	if len(u.r.cfg.controllers) > 0 {
		return
	}
	lo, ok := u.r.cfg.ops.(*liveOps)
	if qo, isQ := u.r.cfg.ops.(*quorumViaControllers); isQ {
		lo, ok = qo.liveOps, true
	}
	if !ok || lo.cl == nil {
		return
	}
	nodes, err := u.r.orch.Nodes(ctx)
	if err != nil {
		return // the reads go through the brokers meanwhile
	}
	var addrs []string
	for _, n := range nodes {
		if n.HasRole(node.RoleController) && !n.HasRole(node.RoleBroker) && n.Host != "" && n.Port > 0 {
			addrs = append(addrs, net.JoinHostPort(n.Host, strconv.Itoa(n.Port)))
		}
	}
	if len(addrs) == 0 || slices.Equal(addrs, lo.controllers) {
		return
	}
	ccl, err := kgo.NewClient(append(lo.cl.Opts(), kgo.SeedBrokers(addrs...))...)
	if err != nil {
		u.r.cfg.logger.Warn("cannot make a client for the controllers; quorum reads go through the brokers", "err", err)
		return
	}
	if u.restore == nil {
		orig, origAddrs := u.r.cfg.ops, lo.controllers
		u.restore = func() { u.r.cfg.ops, lo.controllers = orig, origAddrs }
	}
	if qo, isQ := u.r.cfg.ops.(*quorumViaControllers); isQ {
		qo.ccl.Close()
	}
	lo.controllers = addrs
	u.r.cfg.ops = &quorumViaControllers{liveOps: lo, ccl: ccl}
}

// endMigration closes what learnControllers opened and restores the
// Runner's reads.
func (u *run) endMigration() {
	if qo, ok := u.r.cfg.ops.(*quorumViaControllers); ok {
		qo.ccl.Close()
	}
	if u.restore != nil {
		u.restore()
		u.restore = nil
	}
}

// quorumViaControllers reads the quorum from the controllers, through ccl,
// and everything else as liveOps does.
type quorumViaControllers struct {
	*liveOps
	ccl *kgo.Client
}

func (o *quorumViaControllers) activeController(ctx context.Context) (int32, error) {
	q, err := kraft.DescribeQuorum(ctx, o.ccl)
	if err != nil {
		return -1, err
	}
	if id, ok := q.ActiveController(); ok {
		return id, nil
	}
	return -1, fmt.Errorf("the controller quorum has no leader (epoch %d)", q.LeaderEpoch)
}

func (o *quorumViaControllers) canRestartController(ctx context.Context, id int32) (health.Verdict, error) {
	q, err := kraft.DescribeQuorum(ctx, o.ccl)
	if err != nil {
		return health.Verdict{}, err
	}
	return kraft.CanRestartController(q, id, o.fetchTimeout(ctx)).Verdict, nil
}

func (o *quorumViaControllers) controllerCaughtUp(ctx context.Context, id int32) (health.Verdict, error) {
	q, err := kraft.DescribeQuorum(ctx, o.ccl)
	if err != nil {
		return health.Verdict{}, err
	}
	return voterCaughtUp(q, id, o.fetchTimeout(ctx)), nil
}

// migrationQuorum returns the ids of the controllers the plan provisions.
func (p Plan) migrationQuorum() []int32 {
	var ids []int32
	for _, s := range p.Steps {
		if s.Kind == StepProvisionController {
			ids = append(ids, s.Node)
		}
	}
	return ids
}

// migrates reports whether the plan provisions controllers for a migration.
func (p Plan) migrates() bool {
	return slices.ContainsFunc(p.Steps, func(s Step) bool { return s.Kind == StepProvisionController })
}

// awaitMigration waits until the KRaft controller has copied the metadata
// from ZooKeeper, as the /migration znode records it.
func (u *run) awaitMigration(ctx context.Context, i int) error {
	mops := u.r.cfg.ops.(migrationOps)
	var connect string
	began := u.r.cfg.now()
	var last migrationState
	err := u.waitFor(ctx, i, EventWaiting, u.r.cfg.catchUpTimeout, "the metadata migration has not completed", func(ctx context.Context) (health.Verdict, error) {
		if connect == "" {
			c, err := mops.zooKeeperConnect(ctx)
			if err != nil {
				return health.Verdict{}, fmt.Errorf("read the brokers' zookeeper.connect: %w", err)
			}
			if c == "" {
				return health.Verdict{}, poll.Permanent(errors.New("the brokers name no zookeeper.connect, so the migration's state cannot be read"))
			}
			connect = c
		}
		m, err := mops.migrationState(ctx, connect)
		if err != nil {
			return health.Verdict{}, err
		}
		last = m
		v := health.Verdict{Kind: health.Kind("migrated"), Nodes: []int32{}, OK: m.Done()}
		switch {
		case !m.Started:
			v.Reasons = []health.Reason{{Rule: "migration-not-started", Partition: -1, Leader: -1, Message: "no KRaft controller has claimed the migration yet (no /migration znode): waiting for the quorum and for every broker to register in migration mode"}}
		case !m.Done():
			v.Reasons = []health.Reason{{Rule: "migration-copying", Partition: -1, Leader: -1, Nodes: []int32{m.Controller},
				Message: fmt.Sprintf("KRaft controller %d is copying the metadata from ZooKeeper (no KRaft metadata offset recorded yet)", m.Controller)}}
		}
		return v, nil
	})
	if err != nil {
		return err
	}
	u.emit(Event{Kind: EventCaughtUp, Step: i, Elapsed: u.r.cfg.now().Sub(began),
		Message: fmt.Sprintf("metadata migrated to KRaft by controller %d (KRaft metadata offset %d); the controllers now write to ZooKeeper and KRaft", last.Controller, last.Offset)})
	return nil
}

// The live implementation of migrationOps.

func (o *liveOps) clusterID(ctx context.Context) (string, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{}
	resp, err := req.RequestWith(ctx, o.cl)
	if err != nil {
		return "", err
	}
	if resp.ClusterID == nil || *resp.ClusterID == "" {
		return "", errors.New("the brokers report no cluster id")
	}
	return *resp.ClusterID, nil
}

func (o *liveOps) zooKeeperConnect(ctx context.Context) (string, error) {
	connect, err := zkConnect(ctx, o.cl)
	if err != nil || o.zk == nil {
		return connect, err
	}
	return zkConnectFor(connect, o.zk.connect), nil
}

func (o *liveOps) migrationState(ctx context.Context, connect string) (migrationState, error) {
	timeout := o.zkTimeout()
	path := zkChroot(connect) + "/migration"
	var errs []error
	for _, srv := range zkServers(connect) {
		data, err := zkGetData(ctx, srv, path, timeout)
		if errors.Is(err, errNoNode) {
			return migrationState{Offset: -1, Controller: -1}, nil
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", srv, err))
			continue
		}
		return parseMigrationZNode(data)
	}
	return migrationState{}, fmt.Errorf("read %s from ZooKeeper: %w", path, errors.Join(errs...))
}

// parseMigrationZNode reads the /migration znode's JSON, as Kafka writes it
// (MigrationZNode: version, kraft_controller_id, kraft_controller_epoch,
// kraft_metadata_offset, kraft_metadata_epoch).
func parseMigrationZNode(data []byte) (migrationState, error) {
	var z struct {
		Offset     *int64 `json:"kraft_metadata_offset"`
		Controller *int32 `json:"kraft_controller_id"`
	}
	if err := json.Unmarshal(data, &z); err != nil {
		return migrationState{}, fmt.Errorf("the /migration znode is not the JSON Kafka writes: %w", err)
	}
	if z.Offset == nil {
		return migrationState{}, fmt.Errorf("the /migration znode has no kraft_metadata_offset: %.200q", data)
	}
	m := migrationState{Started: true, Offset: *z.Offset, Controller: -1}
	if z.Controller != nil {
		m.Controller = *z.Controller
	}
	return m, nil
}
