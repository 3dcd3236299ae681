package upgrade

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/health"
	"github.com/kupgrade/kupgrade/node"
	"github.com/kupgrade/kupgrade/reassign"
)

// Step kinds of node-replacement (blue/green) plans.
const (
	// StepProvision starts a new broker on the target release to replace
	// Step.Node (in its rack), through the Orchestrator's [node.Provisioner].
	StepProvision StepKind = "provision"
	// StepMove moves every replica off the replaced brokers onto their
	// replacements, in throttled batches (package reassign).
	StepMove StepKind = "move-partitions"
	// StepRetire retires broker Step.Node once it holds no replica, and
	// unregisters it from a KRaft cluster.
	StepRetire StepKind = "retire"
)

// NewReplacePlan plans a node-replacement (blue/green) upgrade: no broker
// restarts in place. In KRaft mode, controllers that do not run the target
// roll first, in place as in [NewPlan] (controllers before brokers; the
// active one last). Then the brokers are replaced in waves of at most
// [ReplaceWaves] (default [DefaultWaveSize]) brokers: each broker of a wave
// gets a new broker on the target release beside it (in its rack), the
// wave's partitions move from its old brokers to the new ones in throttled
// batches (after a disk check, see [ReplaceDiskRatio]), leadership moves to
// the new brokers, and each old broker is retired (and, in KRaft,
// unregistered) once it holds no replica. Then features are finalized as in
// a rolling upgrade.
//
// ZooKeeper mode: the new brokers start with the pins the rolling plan's
// first roll sets (inter.broker.protocol.version at the old level), so that
// they speak the old brokers' protocol while both run; once every old broker
// is retired, the rolling plan's later rolls (raising the pins) restart the
// new brokers ([StepRestartReplacement]), one at a time.
//
// The Orchestrator must implement [node.Provisioner]. Combined nodes are
// refused: a combined node's controller is a quorum voter, and replacing a
// voter is a quorum change (KIP-853) that this plan does not make; roll
// them in place with [NewPlan]. Routes of more than one hop are refused:
// use [NewPlan] (with Target.Via for stops on the way), or replace to the
// first stop first.
func NewReplacePlan(state compat.State, target Target, opts ...PlanOption) (Plan, error) {
	var cfg planConfig
	for _, o := range opts {
		o.applyPlan(&cfg)
	}
	wave := cfg.waveSize
	switch {
	case cfg.waveSet && wave < 1:
		return Plan{}, fmt.Errorf("upgrade: ReplaceWaves(%d) must be 1 or more", wave)
	case wave == 0:
		wave = DefaultWaveSize
	}
	if state.Mode != compat.ModeKRaft && state.Mode != compat.ModeZooKeeper {
		return Plan{}, fmt.Errorf("%w: node replacement needs a KRaft or ZooKeeper cluster (this one is %v, half migrated); finish the migration first", ErrUnsupportedPlan, state.Mode)
	}
	if len(target.Via) > 0 {
		return Plan{}, fmt.Errorf("%w: node replacement goes straight to the target; Via is for NewPlan", ErrUnsupportedPlan)
	}
	for _, n := range state.Nodes {
		if n.IsBroker() && n.IsController() {
			return Plan{}, fmt.Errorf("%w: node %d is a combined broker and controller, which cannot be replaced (its controller is a quorum voter: replacing it is a quorum change this plan does not make); upgrade in place with NewPlan", ErrUnsupportedPlan, n.ID)
		}
		if !n.Release.IsZero() && target.Version.Less(n.Release) {
			return Plan{}, fmt.Errorf("%w: node %d runs %v, newer than the target %v: node replacement only upgrades; downgrade in place with NewPlan", ErrUnsupportedPlan, n.ID, n.Release, target.Version)
		}
	}
	p, err := NewPlan(state, target, opts...)
	if err != nil {
		return Plan{}, err
	}
	for _, s := range p.Steps {
		if s.Phase != "" {
			return Plan{}, fmt.Errorf("%w: the route to %v needs work node replacement does not do (ZooKeeper to KRaft migration: plan it with NewPlan, then replace brokers once the cluster runs in KRaft mode)", ErrUnsupportedPlan, p.Target)
		}
		if s.Kind == StepManual {
			return Plan{}, fmt.Errorf("%w: the route to %v needs work node replacement does not do (%s)", ErrUnsupportedPlan, p.Target, s.Reason)
		}
	}
	if hops := p.Steps[len(p.Steps)-1].Hop; hops != 1 {
		first := p.Target
		if len(p.Via) > 0 {
			first = p.Via[0]
		}
		return Plan{}, fmt.Errorf("%w: the route to %v has %d hops; node replacement handles one (replace to %v first)", ErrUnsupportedPlan, p.Target, hops, first)
	}
	var steps, later []Step
	var brokers []int32
	for _, n := range state.Nodes {
		if n.IsBroker() {
			brokers = append(brokers, n.ID)
		}
	}
	// The new brokers start as the first broker roll onto the target
	// leaves the old ones (pins included); later broker rolls restart them.
	provisionChange := node.Change{Version: p.Target.String()}
	binaryRoll := 0
	for _, s := range p.Steps {
		if s.Kind == StepFinalize || s.Kind == StepBake {
			break
		}
		if s.Kind != StepRestart || !slices.Contains(s.Roles, node.RoleBroker) {
			steps = append(steps, s)
			continue
		}
		if binaryRoll == 0 && s.Change.Version == p.Target.String() {
			binaryRoll = s.Roll
			provisionChange.Set = maps.Clone(s.Change.Set)
		}
		if s.Roll == binaryRoll {
			continue // brokers are replaced, not restarted
		}
		later = append(later, Step{Kind: StepRestartReplacement, Hop: s.Hop, Node: s.Node, Roles: s.Roles, Change: s.Change,
			Reversible: s.Reversible, Why: s.Why, Hold: s.Hold,
			Reason: fmt.Sprintf("restart the broker that replaced broker %d: %s", s.Node, s.Reason)})
	}
	unregister := ""
	if p.Mode == compat.ModeKRaft {
		unregister = ", and unregister it"
	}
	waves := (len(brokers) + wave - 1) / wave
	for w := range waves {
		ids := brokers[w*wave : min(len(brokers), (w+1)*wave)]
		of := ""
		if waves > 1 {
			of = fmt.Sprintf(" (wave %d of %d)", w+1, waves)
		}
		for _, id := range ids {
			steps = append(steps, Step{Kind: StepProvision, Hop: 1, Node: id, Roles: []node.Role{node.RoleBroker}, Change: provisionChange,
				Reversible: true, Why: "a new broker can be retired again", Reason: fmt.Sprintf("start a broker on %v to replace broker %d, in its rack%s", p.Target, id, of)})
		}
		steps = append(steps,
			Step{Kind: StepMove, Hop: 1, Node: -1, Reversible: true, Why: "partitions can be moved back",
				Reason: fmt.Sprintf("move every replica from brokers %v to their replacements, throttled, in batches%s", ids, of)},
			Step{Kind: StepElectLeaders, Hop: 1, Node: -1, Reversible: true, Why: "leadership can move again at any time",
				Reason: "move leadership to the preferred (new) replicas" + of})
		for _, id := range ids {
			steps = append(steps, Step{Kind: StepRetire, Hop: 1, Node: id, Roles: []node.Role{node.RoleBroker}, Reversible: false,
				Why: "a retired broker's data is gone; its replacement stays", Hold: true,
				Reason: fmt.Sprintf("retire broker %d once it holds no replica%s%s", id, unregister, of)})
		}
	}
	steps = append(steps, later...)
	for _, s := range p.Steps {
		if s.Kind == StepFinalize || s.Kind == StepBake {
			steps = append(steps, s)
		}
	}
	p.Steps = steps
	p.Notes = append(p.Notes, "node replacement: the Orchestrator provisions the new brokers and retires the old ones")
	if waves > 1 {
		p.Notes = append(p.Notes, fmt.Sprintf("node replacement in %d waves of at most %d brokers", waves, wave))
	}
	p.ID = planID(p)
	return p, nil
}

// ReplaceThrottle sets the replication throttle of partition moves in
// node-replacement plans, in bytes per second, overriding the default of
// 100 MiB/s.
func ReplaceThrottle(bytesPerSecond int64) RunnerOption {
	return optionFunc(func(c *config) { c.moveThrottle = bytesPerSecond })
}

// ReassignOptions passes options to the partition mover of node-replacement
// plans (see package reassign: batching, budgets, progress). The Runner sets
// the throttle ([ReplaceThrottle]), its logger and a poll interval of 1s;
// options given here come after, so they override those. A
// [reassign.OnProgress] given here is called as well as the Runner's own,
// which turns progress into [EventWaiting] events.
func ReassignOptions(opts ...reassign.ExecutorOption) RunnerOption {
	return optionFunc(func(c *config) { c.moveOpts = append(c.moveOpts, opts...) })
}

// provisioner returns the Orchestrator's Provisioner, or an error if a plan
// needs one and it has none.
func (r *Runner) provisioner(plan Plan) (node.Provisioner, error) {
	p, ok := r.orch.(node.Provisioner)
	for i, s := range plan.Steps {
		if (s.Kind == StepProvision || s.Kind == StepRetire) && !ok {
			return nil, fmt.Errorf("%w: step %d (%s) needs an Orchestrator that implements node.Provisioner, and %T does not", ErrUnsupportedPlan, i+1, s.Kind, r.orch)
		}
	}
	return p, nil
}

// provision starts the replacement of st.Node and waits until it is up.
func (u *run) provision(ctx context.Context, i int, st Step, sr *StepRecord) (string, error) {
	prov := u.r.orch.(node.Provisioner)
	nodes, err := u.r.orch.Nodes(ctx)
	if err != nil {
		return "", fmt.Errorf("the Orchestrator cannot list its nodes: %w", err)
	}
	if sr.Provisioned == nil {
		// A run that stopped during Provision may have started a node it
		// did not record: adopt a node on the target that no step owns.
		if id, ok := u.unclaimed(nodes, st.Change.Version); ok && sr.Restarted {
			sr.Provisioned = &id
		}
	}
	if sr.Provisioned == nil {
		rack := ""
		for _, n := range nodes {
			if n.ID == st.Node {
				rack = n.Rack
			}
		}
		sr.Restarted = true // "the Orchestrator was asked": a resumed run looks for the node
		if err := u.save(ctx); err != nil {
			return "", err
		}
		u.emit(Event{Kind: EventRestarting, Step: i, Message: fmt.Sprintf("provisioning a broker on %s to replace broker %d", st.Change.Version, st.Node)})
		n, err := prov.Provision(ctx, node.Spec{Version: st.Change.Version, Roles: []node.Role{node.RoleBroker}, Rack: rack, Config: maps.Clone(st.Change.Set)})
		if err != nil {
			return "", fmt.Errorf("provisioning a replacement for broker %d: %w", st.Node, err)
		}
		sr.Provisioned = &n.ID
		if err := u.save(ctx); err != nil {
			return "", err
		}
	}
	id := *sr.Provisioned
	err = u.waitFor(ctx, i, EventWaiting, u.r.cfg.catchUpTimeout, fmt.Sprintf("new broker %d is not up", id),
		func(ctx context.Context) (health.Verdict, error) {
			snap, err := u.r.cfg.ops.snapshot(ctx)
			if err != nil {
				return health.Verdict{}, err
			}
			return health.CaughtUp(snap, id), nil
		})
	if err != nil {
		return "", err
	}
	u.emit(Event{Kind: EventCaughtUp, Step: i, Message: fmt.Sprintf("broker %d (replacing %d) is up", id, st.Node)})
	return "", nil
}

// unclaimed finds a node on release that is neither planned nor provisioned
// by another step.
func (u *run) unclaimed(nodes []node.Node, release string) (int32, bool) {
	for _, n := range nodes {
		if n.Version != release || slices.ContainsFunc(u.plan.Nodes, func(p compat.NodeState) bool { return p.ID == n.ID }) {
			continue
		}
		claimed := false
		for _, s := range u.rec.Steps {
			if s.Provisioned != nil && *s.Provisioned == n.ID {
				claimed = true
			}
		}
		if !claimed {
			return n.ID, true
		}
	}
	return 0, false
}

// pairs returns the old → new broker pairs of move step i's wave from the
// provision steps' records: the provision steps between the move step
// before i (if any) and i.
func (u *run) pairs(i int) ([]reassign.Replacement, error) {
	var out []reassign.Replacement
	for j, s := range u.plan.Steps[:i] {
		if s.Kind == StepMove {
			out = out[:0] // an earlier wave's
		}
		if s.Kind != StepProvision {
			continue
		}
		p := u.rec.Steps[j].Provisioned
		if p == nil {
			return nil, fmt.Errorf("step %d did not record the broker it provisioned", j+1)
		}
		out = append(out, reassign.Replacement{Old: s.Node, New: *p})
	}
	return out, nil
}

// journalStore keeps the partition mover's state in the run's journal, so
// that its moves and throttle ledger survive a crash with the rest.
type journalStore struct {
	u   *run
	key string
}

func (s journalStore) Load(ctx context.Context) ([]byte, error) {
	b, ok := s.u.rec.Data[s.key]
	if !ok {
		return nil, reassign.ErrNoState
	}
	return b, nil
}

func (s journalStore) Save(ctx context.Context, b []byte) error {
	if s.u.rec.Data == nil {
		s.u.rec.Data = map[string]json.RawMessage{}
	}
	s.u.rec.Data[s.key] = json.RawMessage(b)
	return s.u.save(ctx)
}

// move moves every replica from the replaced brokers to their replacements.
func (u *run) move(ctx context.Context, i int, st Step) (string, error) {
	pairs, err := u.pairs(i)
	if err != nil {
		return "", err
	}
	cl := u.r.cl
	if cl == nil {
		return "", errors.New("moving partitions needs a client")
	}
	store := journalStore{u: u, key: "reassign/" + strconv.Itoa(i)}
	opts := append([]reassign.ExecutorOption{reassign.Throttle(u.r.cfg.moveThrottle), reassign.ExecutorLogger(u.r.cfg.logger), reassign.CheckInterval(time.Second),
		reassign.OnProgress(func(p reassign.Progress) {
			u.emit(Event{Kind: EventWaiting, Step: i, Message: fmt.Sprintf("moves %d/%d done, %d in flight, %d of %d bytes copied, ETA %v",
				p.Done(), p.Moves, p.InFlight, p.BytesMoved, p.Bytes, p.ETA.Round(time.Second))})
		})}, u.r.cfg.moveOpts...)
	ex, err := reassign.NewExecutor(cl, store, opts...)
	if err != nil {
		return "", err
	}
	var res reassign.MoveResults
	if _, lerr := store.Load(ctx); lerr == nil {
		res, err = ex.Resume(ctx) // a crashed run: adopt its moves
	} else {
		// Every partition with its size (the largest of its replicas,
		// from DescribeLogDirs) and every broker with its rack.
		a, brokers, lerr := reassign.LoadAssignment(ctx, cl)
		if lerr != nil {
			return "", lerr
		}
		plan, perr := reassign.PlanMoves(a, brokers, reassign.BrokerChange{Replace: pairs})
		if perr != nil {
			return "", perr
		}
		if len(plan.Moves) == 0 {
			return "no replica on the replaced brokers", nil
		}
		if err := u.diskCheck(ctx, i, plan.Moves); err != nil {
			return "", err
		}
		u.emit(Event{Kind: EventWaiting, Step: i, Message: fmt.Sprintf("moving %d partitions off brokers %v", len(plan.Moves), oldIDs(pairs))})
		res, err = ex.Run(ctx, plan.Moves)
	}
	if err != nil {
		return "", err
	}
	if err := res.FirstErr(); err != nil {
		return "", fmt.Errorf("partition moves failed: %w", err)
	}
	return "", nil
}

func oldIDs(pairs []reassign.Replacement) []int32 {
	var out []int32
	for _, p := range pairs {
		out = append(out, p.Old)
	}
	return out
}

// retire retires st.Node once no partition has a replica on it.
func (u *run) retire(ctx context.Context, i int, st Step) (string, error) {
	snap, err := u.r.cfg.ops.snapshot(ctx)
	if err != nil {
		return "", err
	}
	var held []string
	snap.EachPartitionOn(st.Node, func(t health.Topic, p health.Partition) {
		held = append(held, fmt.Sprintf("%s-%d", t.Name, p.Partition))
	})
	if len(held) > 0 {
		if len(held) > 5 {
			held = append(held[:5], fmt.Sprintf("and %d more", len(held)-5))
		}
		return "", fmt.Errorf("broker %d still holds replicas of %v: refusing to retire it (that would lose data)", st.Node, held)
	}
	if _, ok := snap.Broker(st.Node); ok || u.stillKnown(ctx, st.Node) {
		if err := u.r.orch.(node.Provisioner).Retire(ctx, st.Node); err != nil {
			return "", fmt.Errorf("retiring broker %d: %w", st.Node, err)
		}
	}
	if u.plan.Mode == compat.ModeKRaft {
		if err := u.r.cfg.ops.unregister(ctx, st.Node); err != nil {
			return "", fmt.Errorf("unregistering broker %d: %w", st.Node, err)
		}
	}
	return "", nil
}

// stillKnown reports whether the Orchestrator still manages node id.
func (u *run) stillKnown(ctx context.Context, id int32) bool {
	nodes, err := u.r.orch.Nodes(ctx)
	if err != nil {
		return true // cannot tell: retiring twice is harmless, not retiring is not
	}
	return slices.ContainsFunc(nodes, func(n node.Node) bool { return n.ID == id })
}

// unregister removes a retired broker's registration from a KRaft cluster.
func (o *liveOps) unregister(ctx context.Context, id int32) error {
	req := kmsg.NewPtrUnregisterBrokerRequest()
	req.BrokerID = id
	resp, err := req.RequestWith(ctx, o.cl)
	if err != nil {
		return err
	}
	err = kerr.ErrorForCode(resp.ErrorCode)
	if errors.Is(err, kerr.BrokerIDNotRegistered) {
		return nil // already gone
	}
	if err != nil && resp.ErrorMessage != nil {
		return fmt.Errorf("%w: %s", err, *resp.ErrorMessage)
	}
	return err
}
