package upgrade

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/health"
	"github.com/kupgrade/kupgrade/internal/poll"
	"github.com/kupgrade/kupgrade/kraft"
	"github.com/kupgrade/kupgrade/node"
)

// clusterOps is what a Runner observes and changes in the cluster, besides
// restarting nodes. liveOps does it through a client; tests script it.
type clusterOps interface {
	// snapshot takes a fresh health snapshot.
	snapshot(ctx context.Context) (health.Snapshot, error)
	// activeController returns the KRaft quorum leader.
	activeController(ctx context.Context) (int32, error)
	// canRestartController judges the quorum without controller id.
	canRestartController(ctx context.Context, id int32) (health.Verdict, error)
	// controllerCaughtUp judges whether controller id is back in the quorum.
	controllerCaughtUp(ctx context.Context, id int32) (health.Verdict, error)
	// brokerConfig returns the static value of keys on broker id (a key
	// not set statically has the zero ConfigValue with SourceDefault).
	brokerConfig(ctx context.Context, id int32, keys []string) (map[string]compat.ConfigValue, error)
	// finalizedEverywhere returns the finalized level of each feature,
	// or an error naming a node that does not report levels yet.
	finalizedEverywhere(ctx context.Context, levels compat.FeatureLevels) (health.Verdict, error)
	// finalized returns the cluster's finalized features.
	finalized(ctx context.Context) (compat.FeatureLevels, error)
	// updateFeatures finalizes levels (a safe downgrade if downgrade).
	updateFeatures(ctx context.Context, levels compat.FeatureLevels, downgrade bool) error
	// electPreferred moves leadership of node's preferred partitions back.
	electPreferred(ctx context.Context, snap health.Snapshot, node int32) error
	// electAll runs a preferred leader election for every partition.
	electAll(ctx context.Context) error
	// unregister removes a retired broker's KRaft registration.
	unregister(ctx context.Context, id int32) error
	// reorderReplicas reassigns partitions to the replicas they have, in
	// the order given (see [stallWatch]).
	reorderReplicas(ctx context.Context, orders []replicaOrder) error
	// electPreferredOf runs a preferred leader election for the
	// partitions named.
	electPreferredOf(ctx context.Context, tps []topicPart) error
	// replicaProgress reads where broker id's replicas of the partitions
	// end, and their leaders' high watermarks; a partition it cannot read
	// is left out.
	replicaProgress(ctx context.Context, id int32, tps []topicPart) (map[topicPart]replicaProgress, error)
}

// waitFor polls check until it approves, emitting a waiting event whenever
// the reasons change, and gives up after timeout with the last reason.
func (u *run) waitFor(ctx context.Context, i int, kind EventKind, timeout time.Duration, what string, check func(ctx context.Context) (health.Verdict, error)) error {
	p := u.r.cfg.poll
	p.Timeout = timeout
	var last string
	err := poll.Wait(ctx, func(ctx context.Context) error {
		v, err := check(ctx)
		if aerr := accessError("", err); aerr != nil { // what is added below
			return poll.Permanent(aerr) // waiting does not fix credentials or ACLs
		}
		if err != nil {
			if msg := err.Error(); msg != last {
				last = msg
				u.emit(Event{Kind: EventWaiting, Step: i, Message: what + ": " + msg})
			}
			return err
		}
		if v.OK {
			return nil
		}
		if msg := v.String(); msg != last {
			last = msg
			u.emit(Event{Kind: kind, Step: i, Reasons: v.Reasons, Message: what})
		}
		return v.Err()
	}, p)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// preflight checks the nodes against the plan and the cluster's health.
func (u *run) preflight(ctx context.Context, i int) error {
	nodes, err := u.r.orch.Nodes(ctx)
	if err != nil {
		return fmt.Errorf("the Orchestrator cannot list its nodes: %w", err)
	}
	have := map[int32]node.Node{}
	for _, n := range nodes {
		have[n.ID] = n
	}
	var problems []string
	for _, pn := range u.plan.Nodes {
		n, ok := have[pn.ID]
		if !ok {
			problems = append(problems, fmt.Sprintf("node %d is in the plan but the Orchestrator does not manage it", pn.ID))
			continue
		}
		if n.Version != "" && !pn.Release.IsZero() && n.Version != pn.Release.String() && !u.touched(pn.ID) {
			problems = append(problems, fmt.Sprintf("node %d runs %s, but the plan was made for %v: inspect and plan again", pn.ID, n.Version, pn.Release))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	gate, err := health.NewGate(append(slices.Clone(u.r.cfg.gateOpts), health.MaxOffline(0), health.MaxUnderMinISR(0))...)
	if err != nil {
		return err
	}
	return u.waitFor(ctx, i, EventGateBlocked, u.r.cfg.gateTimeout, "cluster not healthy enough to start", func(ctx context.Context) (health.Verdict, error) {
		snap, err := u.r.cfg.ops.snapshot(ctx)
		if err != nil {
			return health.Verdict{}, err
		}
		v := gate.CanRestart(snap)
		rs, err := u.unresponsive(ctx, v.Reasons, -1)
		if err != nil {
			return health.Verdict{}, err
		}
		v.Reasons, v.OK = rs, v.OK && len(rs) == len(v.Reasons)
		return v, nil
	})
}

// touched reports whether an earlier run may have restarted node id.
func (u *run) touched(id int32) bool {
	for j, s := range u.plan.Steps {
		if s.Node == id && u.rec.Steps[j].State != StepPending {
			return true
		}
	}
	return false
}

// inEffect reports whether the change of a restart step is already in
// effect on its node, so the restart can be skipped, and says how it knows.
// Anything it cannot verify counts as not in effect.
func (u *run) inEffect(ctx context.Context, st Step) (bool, string) {
	ch := st.Change
	if ch.Version == "" && len(ch.Set) == 0 && len(ch.Unset) == 0 {
		return false, ""
	}
	var proof []string
	if ch.Version != "" {
		nodes, err := u.r.orch.Nodes(ctx)
		if err != nil {
			return false, ""
		}
		i := slices.IndexFunc(nodes, func(n node.Node) bool { return n.ID == st.Node })
		if i < 0 || nodes[i].Version != ch.Version {
			return false, ""
		}
		proof = append(proof, "runs "+ch.Version)
	}
	if len(ch.Set)+len(ch.Unset) > 0 {
		if !slices.Contains(st.Roles, node.RoleBroker) {
			return false, "" // a controller's static config cannot be read back here
		}
		keys := append(slices.Sorted(maps.Keys(ch.Set)), ch.Unset...)
		cfg, err := u.r.cfg.ops.brokerConfig(ctx, st.Node, keys)
		if err != nil {
			return false, ""
		}
		for k, v := range ch.Set {
			if c := cfg[k]; c.Source != compat.SourceStatic || c.Value != v {
				return false, ""
			}
		}
		for _, k := range ch.Unset {
			if c := cfg[k]; k == "broker.id" && ch.Set["node.id"] != "" && c.Value == ch.Set["node.id"] {
				continue // a KRaft broker reports its node.id as a static broker.id
			}
			if c := cfg[k]; !c.Known() || c.Source == compat.SourceStatic {
				return false, ""
			}
		}
		proof = append(proof, "has its config")
	}
	return true, strings.Join(proof, " and ")
}

// restart runs one restart step: gate, restart, catch up.
func (u *run) restart(ctx context.Context, i int, st Step, sr *StepRecord, resumed bool) (string, error) {
	if resumed && sr.Restarted {
		if err := u.settle(ctx, i, st); err != nil {
			return "", err
		}
	}
	restartNeeded := true
	if ok, proof := u.inEffect(ctx, st); ok {
		restartNeeded = false
		if !resumed || !sr.Restarted {
			// Nothing to do but make sure the node is healthy.
			if err := u.catchUp(ctx, i, st); err != nil {
				return "", err
			}
			return fmt.Sprintf("node %d already %s", st.Node, proof), nil
		}
		u.emit(Event{Kind: EventWaiting, Step: i, Message: fmt.Sprintf("node %d %s: restart of the last run took effect; waiting for it to catch up", st.Node, proof)})
	}
	if restartNeeded {
		if err := u.gateRestart(ctx, i, st); err != nil {
			return "", err
		}
		sr.Restarted = true
		if err := u.save(ctx); err != nil {
			return "", err
		}
		u.emit(Event{Kind: EventRestarting, Step: i, Message: fmt.Sprintf("restarting node %d: %v", st.Node, st.Change)})
		began := u.r.cfg.now()
		rctx, cancel := context.WithTimeoutCause(ctx, u.r.cfg.restartTimeout,
			fmt.Errorf("the Orchestrator did not restart node %d within %v", st.Node, u.r.cfg.restartTimeout))
		err := u.r.orch.Restart(rctx, st.Node, st.Change)
		cancel()
		if err != nil {
			return "", fmt.Errorf("node %d did not restart: %w", st.Node, err)
		}
		u.emit(Event{Kind: EventRestarted, Step: i, Elapsed: u.r.cfg.now().Sub(began), Message: fmt.Sprintf("node %d restarted", st.Node)})
	}
	return "", u.catchUp(ctx, i, st)
}

// gateRestart waits until restarting st.Node is safe.
func (u *run) gateRestart(ctx context.Context, i int, st Step) error {
	ops := u.r.cfg.ops
	err := u.waitFor(ctx, i, EventGateBlocked, u.r.cfg.gateTimeout, fmt.Sprintf("restarting node %d is not safe", st.Node),
		func(ctx context.Context) (health.Verdict, error) {
			var reasons []health.Reason
			if slices.Contains(st.Roles, node.RoleBroker) || len(st.Roles) == 0 {
				snap, err := ops.snapshot(ctx)
				if err != nil {
					return health.Verdict{}, err
				}
				v := u.r.gate.CanRestart(u.withDead(ctx, snap), st.Node)
				reasons = append(reasons, v.Reasons...)
			}
			if slices.Contains(st.Roles, node.RoleController) { // KRaft, or a migration's controllers
				v, err := ops.canRestartController(ctx, st.Node)
				if err != nil {
					return health.Verdict{}, err
				}
				reasons = append(reasons, v.Reasons...)
			}
			reasons, perr := u.unresponsive(ctx, reasons, st.Node)
			if perr != nil {
				return health.Verdict{}, perr
			}
			reasons, err := u.canary(ctx, reasons, st.Node)
			if err != nil {
				return health.Verdict{}, err
			}
			return health.Verdict{Kind: health.KindCanRestart, Nodes: []int32{st.Node}, OK: len(reasons) == 0, Reasons: reasons}, nil
		})
	if err != nil {
		return err
	}
	u.emit(Event{Kind: EventGatePassed, Step: i, Message: fmt.Sprintf("restarting node %d is safe", st.Node)})
	return nil
}

// canary completes a gate's reasons: when they are none and a [CanaryGate]
// is set, it probes and returns why the canary does not pass (brokers that
// failed or were slower than allowed), leaving out except (the node about to
// restart; -1 for none). Other reasons are returned as they are: no probe
// while the gate is shut anyway.
func (u *run) canary(ctx context.Context, reasons []health.Reason, except int32) ([]health.Reason, error) {
	if u.r.cfg.canary == nil || len(reasons) > 0 {
		return reasons, nil
	}
	rs, err := u.r.cfg.canary.Probe(ctx)
	if err != nil {
		return nil, fmt.Errorf("canary: %w", err)
	}
	return slices.DeleteFunc(rs.Within(u.r.cfg.canaryWithin).Reasons, func(r health.Reason) bool {
		return except >= 0 && slices.Equal(r.Nodes, []int32{except})
	}), nil
}

// withDead marks as fenced, in a copy of snap, the brokers that the
// Orchestrator's [node.Liveness] says are not alive: Kafka takes seconds to notice
// a dead broker (its session must time out), and until then its metadata
// still counts it in the ISR. Without Liveness, snap is returned as it is.
func (u *run) withDead(ctx context.Context, snap health.Snapshot) health.Snapshot {
	live, ok := u.r.orch.(node.Liveness)
	if !ok {
		return snap
	}
	var brokers []health.Broker
	changed := false
	for _, b := range snap.Brokers {
		if !b.Fenced {
			if alive, err := live.Alive(ctx, b.ID); err == nil && !alive {
				b.Fenced = true
				changed = true
			}
		}
		brokers = append(brokers, b)
	}
	if !changed {
		return snap
	}
	out := snap
	out.Brokers = brokers
	out.FencingKnown = true
	out.Topics = slices.Clone(snap.Topics) // a new Topics slice makes the verdicts index the copy anew
	return out.Indexed()
}

// catchUp waits until the node is back: a broker in every ISR, a controller
// caught up with the quorum leader.
func (u *run) catchUp(ctx context.Context, i int, st Step) error {
	ops := u.r.cfg.ops
	began := u.r.cfg.now()
	var opts []health.CatchUpOption
	if u.r.cfg.leadersBack {
		opts = append(opts, health.LeadsPreferred())
	}
	elected := false
	stall := u.stallWatch(st)
	err := u.waitFor(ctx, i, EventWaiting, u.r.cfg.catchUpTimeout, fmt.Sprintf("node %d has not caught up", st.Node),
		func(ctx context.Context) (health.Verdict, error) {
			if live, ok := u.r.orch.(node.Liveness); ok {
				if alive, err := live.Alive(ctx, st.Node); err == nil && !alive {
					return health.Verdict{}, poll.Permanent(fmt.Errorf("node %d's process is not running (the Orchestrator says so)", st.Node))
				}
			}
			var reasons []health.Reason
			if slices.Contains(st.Roles, node.RoleController) { // KRaft, or a migration's controllers
				v, err := ops.controllerCaughtUp(ctx, st.Node)
				if err != nil {
					return health.Verdict{}, err
				}
				reasons = append(reasons, v.Reasons...)
			}
			if slices.Contains(st.Roles, node.RoleBroker) || len(st.Roles) == 0 {
				snap, err := ops.snapshot(ctx)
				if err != nil {
					return health.Verdict{}, err
				}
				v := health.CaughtUp(snap, st.Node, opts...)
				if !v.OK && stall != nil {
					if err := u.moveStalled(ctx, i, stall, snap); err != nil {
						return health.Verdict{}, err
					}
				}
				if !v.OK && u.r.cfg.leadersBack && !elected && onlyLeadership(v) {
					elected = true
					if err := ops.electPreferred(ctx, snap, st.Node); err != nil {
						return health.Verdict{}, err
					}
				}
				reasons = append(reasons, v.Reasons...)
			}
			reasons, err := u.canary(ctx, reasons, -1)
			if err != nil {
				return health.Verdict{}, err
			}
			return health.Verdict{Kind: health.KindCaughtUp, Nodes: []int32{st.Node}, OK: len(reasons) == 0, Reasons: reasons}, nil
		})
	if err != nil {
		return err
	}
	u.emit(Event{Kind: EventCaughtUp, Step: i, Elapsed: u.r.cfg.now().Sub(began), Message: fmt.Sprintf("node %d caught up", st.Node)})
	if stall != nil {
		return u.restoreOrder(ctx, i, stall)
	}
	return nil
}

// onlyLeadership reports whether the only thing missing is leadership.
func onlyLeadership(v health.Verdict) bool {
	for _, r := range v.Reasons {
		if r.Rule != health.RuleNotPreferredLeader {
			return false
		}
	}
	return len(v.Reasons) > 0
}

// finalize raises feature levels, then waits until every node reports them.
func (u *run) finalize(ctx context.Context, i int, st Step) (string, error) {
	ops := u.r.cfg.ops
	cur, err := ops.finalized(ctx)
	if err != nil {
		return "", fmt.Errorf("read finalized features: %w", err)
	}
	todo := compat.FeatureLevels{}
	for f, l := range st.Features {
		if cur[f] != l {
			todo[f] = l
		}
	}
	if len(todo) > 0 && st.Downgrade {
		if err := u.checkSnapshotWait(ctx, i); err != nil {
			return "", err
		}
	}
	if len(todo) > 0 {
		// A node that cannot be asked yet (starting, or just retired and
		// still listed as an observer) makes the pre-check refuse: wait for
		// it, bounded; any other refusal is final.
		err := u.waitFor(ctx, i, EventWaiting, u.r.cfg.catchUpTimeout, "cannot finalize yet", func(ctx context.Context) (health.Verdict, error) {
			err := ops.updateFeatures(ctx, todo, st.Downgrade)
			if err == nil {
				return health.Verdict{OK: true}, nil
			}
			if errors.Is(err, kraft.ErrUnverified) {
				return health.Verdict{}, err
			}
			return health.Verdict{}, poll.Permanent(err)
		})
		if err != nil {
			return "", err
		}
	}
	err = u.waitFor(ctx, i, EventWaiting, u.r.cfg.catchUpTimeout, "finalized levels not yet on every node",
		func(ctx context.Context) (health.Verdict, error) { return ops.finalizedEverywhere(ctx, st.Features) })
	if err != nil {
		return "", err
	}
	if len(todo) == 0 {
		return "already finalized: " + st.Features.String(), nil
	}
	return "", nil
}

// errBaking is what a bake's health check returns while all is well: the
// wait goes on until the bake's duration has passed.
var errBaking = errors.New("baking: the cluster is healthy")

// bake watches the cluster's health for st.Duration, polling as every wait
// does (the run's poll policy), and fails at once, naming what it saw, when
// the cluster turns unhealthy (see [StepBake]). A bake whose checks could not
// read the cluster when its time ran out fails too: it must have seen the
// cluster healthy to the end.
func (u *run) bake(ctx context.Context, i int, st Step) error {
	gate, err := health.NewGate(append(slices.Clone(u.r.cfg.gateOpts), health.MaxOffline(0), health.MaxUnderMinISR(0))...)
	if err != nil {
		return err
	}
	began := u.r.cfg.now()
	p := u.r.cfg.poll
	p.Timeout = st.Duration
	var last string
	note := func(msg string, reasons []health.Reason) {
		if msg != last {
			last = msg
			u.emit(Event{Kind: EventWaiting, Step: i, Reasons: reasons, Message: msg})
		}
	}
	// The nodes to watch: the plan's, but for brokers an earlier step
	// retired, and any other broker up at the first check (one a step
	// provisioned).
	watch := map[int32][]node.Role{}
	for _, n := range u.plan.Nodes {
		watch[n.ID] = n.Roles
	}
	for _, s := range u.plan.Steps[:i] {
		if s.Kind == StepRetire {
			delete(watch, s.Node)
		}
	}
	first := true
	err = poll.Wait(ctx, func(ctx context.Context) error {
		reasons, err := u.unhealthy(ctx, gate, watch, first)
		if err == nil {
			first = false
		}
		elapsed := u.r.cfg.now().Sub(began).Round(time.Millisecond)
		switch {
		case err != nil && ctx.Err() != nil: // the time is up during this check
			return err
		case err != nil:
			note(fmt.Sprintf("baking %v: cannot read the cluster's health: %v", st.Duration, err), nil)
			return err
		case len(reasons) > 0:
			v := health.Verdict{Kind: health.Kind("bake"), Reasons: reasons}
			return poll.Permanent(fmt.Errorf("the cluster turned unhealthy after %v of the %v bake: %w", elapsed, st.Duration, v.Err()))
		}
		note(fmt.Sprintf("baking %v: the cluster is healthy; watching it until the time is up", st.Duration), nil)
		return errBaking
	}, p)
	we, ok := errors.AsType[*poll.WaitError](err)
	switch {
	case err == nil: // the condition never approves
		return errors.New("bake: the health watch ended early")
	case !ok: // a permanent error: unhealthy
		return err
	case ctx.Err() != nil:
		return context.Cause(ctx)
	case errors.Is(we.Last, errBaking):
		u.emit(Event{Kind: EventWaiting, Step: i, Elapsed: u.r.cfg.now().Sub(began), Message: fmt.Sprintf("baked %v: the cluster stayed healthy (%d checks)", st.Duration, we.Checks)})
		return nil
	}
	return fmt.Errorf("bake: the cluster's health could not be read at the end of the %v bake: %w", st.Duration, we.Last)
}

// unhealthy returns why the cluster is not healthy now, for a bake: the
// cluster-wide limits of gate (no partition offline or under min ISR, and
// the [GateOptions]' limits), every node of watch (id → roles) alive
// ([node.Liveness]), each broker among them registered and unfenced, each
// KRaft controller among them caught up with the quorum, every broker
// answering the liveness probe, and the canary ([CanaryGate]) passing. On
// the first check, brokers up but not in watch join it.
func (u *run) unhealthy(ctx context.Context, gate *health.Gate, watch map[int32][]node.Role, first bool) ([]health.Reason, error) {
	ops := u.r.cfg.ops
	snap, err := ops.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	snap = u.withDead(ctx, snap)
	if first {
		for _, b := range snap.Brokers {
			if _, ok := watch[b.ID]; !ok && !b.Fenced {
				watch[b.ID] = []node.Role{node.RoleBroker}
			}
		}
	}
	reasons := gate.CanRestart(snap).Reasons
	live, hasLive := u.r.orch.(node.Liveness)
	for _, id := range slices.Sorted(maps.Keys(watch)) {
		roles := watch[id]
		if hasLive {
			if alive, err := live.Alive(ctx, id); err == nil && !alive {
				reasons = append(reasons, health.Reason{Rule: health.RuleNodeDown, Partition: -1, Leader: -1, Nodes: []int32{id},
					Message: fmt.Sprintf("node %d's process is not running (the Orchestrator says so)", id)})
				continue
			}
		}
		if slices.Contains(roles, node.RoleBroker) && !snap.Up(id) {
			reasons = append(reasons, health.Reason{Rule: health.RuleNodeDown, Partition: -1, Leader: -1, Nodes: []int32{id},
				Message: fmt.Sprintf("broker %d is not registered or is fenced", id)})
		}
		if slices.Contains(roles, node.RoleController) { // KRaft, or a migration's controllers
			v, err := ops.controllerCaughtUp(ctx, id)
			if err != nil {
				return nil, err
			}
			reasons = append(reasons, v.Reasons...)
		}
	}
	if reasons, err = u.unresponsive(ctx, reasons, -1); err != nil {
		return nil, err
	}
	return u.canary(ctx, reasons, -1)
}

// snapshotIntervalKey is the broker config that bounds how long a node goes
// without writing a metadata snapshot (see [SnapshotWait]).
const snapshotIntervalKey = "metadata.log.max.snapshot.interval.ms"

// checkSnapshotWait runs before the downgrade finalize step i lowers any
// level: the bake step that follows it, before the first restart, must last
// at least [SnapshotWait] of every broker's configured snapshot interval, or
// a node restarted onto the older release may find no snapshot it can
// start from. A plan made for a shorter interval than a broker has is
// refused here, while nothing has changed yet. Controllers are not asked
// (brokers answer DescribeConfigs for themselves only); they are taken to
// share the brokers' value.
func (u *run) checkSnapshotWait(ctx context.Context, i int) error {
	var bake *Step
	for j := i + 1; j < len(u.plan.Steps) && u.plan.Steps[j].Kind != StepRestart; j++ {
		if u.plan.Steps[j].Kind == StepBake {
			bake = &u.plan.Steps[j]
			break
		}
	}
	if bake == nil {
		return nil
	}
	for _, n := range u.plan.Nodes {
		if !slices.Contains(n.Roles, node.RoleBroker) && len(n.Roles) > 0 {
			continue
		}
		cfg, err := u.r.cfg.ops.brokerConfig(ctx, n.ID, []string{snapshotIntervalKey})
		if err != nil {
			return fmt.Errorf("read %s of broker %d before lowering feature levels: %w", snapshotIntervalKey, n.ID, err)
		}
		v := cfg[snapshotIntervalKey].Value
		if v == "" {
			continue // Kafka's default, DefaultMetadataSnapshotInterval
		}
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("broker %d has %s=%q, not a number of milliseconds", n.ID, snapshotIntervalKey, v)
		}
		interval := time.Duration(ms) * time.Millisecond
		if interval == 0 {
			return fmt.Errorf("broker %d has %s=0 (time-based snapshots off): the older release may find no metadata snapshot at the lowered levels; "+
				"set an interval, or plan with MetadataSnapshotInterval for the bytes-based trigger's pace", n.ID, snapshotIntervalKey)
		}
		if need := SnapshotWait(interval); need > bake.Duration {
			return fmt.Errorf("broker %d has %s=%d (%v): the plan bakes %v before the first restart, less than the %v it needs; "+
				"nothing was lowered: plan again with MetadataSnapshotInterval(%v)", n.ID, snapshotIntervalKey, ms, interval, bake.Duration, need, interval)
		}
	}
	return nil
}
