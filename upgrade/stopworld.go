package upgrade

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/health"
	"github.com/kupgrade/kupgrade/node"
)

// StepStopWorld stops every node of Step.Nodes, applies Step.Change to each
// and starts them again: an outage, which the plan's maker accepted
// ([AcceptDowntime]). No health gate holds it back (the preflight has
// checked the cluster); after it, the Runner waits until every broker of the
// cluster is registered, unfenced and answering, every KRaft controller has
// caught up with the quorum, and no partition is offline or below min ISR.
// The time from the first stop to that moment is the step's outage
// ([StepRecord.Outage], and the [EventCaughtUp] event's Elapsed).
//
// With an Orchestrator that implements [node.Stopper], every node is down
// before any starts: brokers are stopped (concurrently), then controllers,
// then every node gets its change and controllers start, then brokers. An
// Orchestrator without it gets concurrent Restart calls for every node
// (which its contract allows): a quick node may then be up again before a
// slow one is down, so the change must be one that nodes of the old and the
// new kind can survive side by side for a moment, which every route's roll
// is (its hops are those of a rolling plan).
const StepStopWorld StepKind = "stop-the-world"

// ErrDowntimeNotAccepted reports a stop-the-world plan asked for without
// [AcceptDowntime].
var ErrDowntimeNotAccepted = errors.New("upgrade: stop-the-world needs AcceptDowntime")

// A DowntimeError is what [NewStopTheWorldPlan] returns without
// [AcceptDowntime]: it names the nodes that would all be down at once and
// how many outages the plan would cause.
type DowntimeError struct {
	Nodes   []int32
	Outages int
}

// Error names the outage and the option that accepts it.
func (e *DowntimeError) Error() string {
	return fmt.Sprintf("upgrade: a stop-the-world plan takes nodes %v down together (%d outages): clients cannot produce or consume meanwhile; pass AcceptDowntime() to accept that, or plan a rolling upgrade with NewPlan", e.Nodes, e.Outages)
}

// Unwrap returns [ErrDowntimeNotAccepted].
func (e *DowntimeError) Unwrap() error { return ErrDowntimeNotAccepted }

// AcceptDowntime declares that the caller accepts the outage of a
// stop-the-world plan ([NewStopTheWorldPlan]), which refuses to plan without
// it. Other planners ignore it.
func AcceptDowntime() PlanOption {
	return planOptionFunc(func(c *planConfig) { c.acceptDowntime = true })
}

// An OutageWindow is an outage as a stop-the-world step measured it: From
// is when the first node was told to stop, To when every broker answered
// again and every partition had its ISR at min.insync.replicas or more.
type OutageWindow struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Duration is how long the outage lasted.
func (w OutageWindow) Duration() time.Duration { return w.To.Sub(w.From) }

// NewStopTheWorldPlan plans the upgrade of [NewPlan] (the same route, hops,
// pins and finalize steps) for users who accept an outage: instead of
// restarting nodes one at a time, each roll stops every node at once,
// changes it and starts it again ([StepStopWorld]); consecutive rolls of a
// hop with the same change (KRaft controllers, then brokers, onto one
// release) make one stop-the-world step. A ZooKeeper upgrade thus has an
// outage for the new binaries (inter.broker.protocol.version pinned) and
// another for raising the pin; finalize steps come after, as in NewPlan.
//
// Without [AcceptDowntime] it returns a *[DowntimeError] (wrapping
// [ErrDowntimeNotAccepted]) and no plan. A route that migrates from
// ZooKeeper to KRaft, or finishes a migration under way, is refused with
// [ErrUnsupportedPlan], downtime accepted or not.
func NewStopTheWorldPlan(state compat.State, target Target, opts ...PlanOption) (Plan, error) {
	var cfg planConfig
	for _, o := range opts {
		o.applyPlan(&cfg)
	}
	refuse := func(to compat.Release) error {
		return fmt.Errorf("%w: the route to %v migrates from ZooKeeper to KRaft, which stop-the-world does not do (each migration phase waits on the brokers and the controllers in turn, and its revert needs the rolls one at a time): plan it with NewPlan, then use NewStopTheWorldPlan once the cluster runs in KRaft mode", ErrUnsupportedPlan, to)
	}
	if state.Mode == compat.ModeMigrating {
		return Plan{}, refuse(target.Version)
	}
	p, err := NewPlan(state, target, opts...)
	if err != nil {
		return Plan{}, err
	}
	if p.migrates() {
		return Plan{}, refuse(p.Target)
	}
	var steps []Step
	var all []int32
	outages := 0
	for _, s := range p.Steps {
		if s.Kind != StepRestart {
			steps = append(steps, s)
			continue
		}
		if !slices.Contains(all, s.Node) {
			all = append(all, s.Node)
		}
		if n := len(steps); n > 0 && steps[n-1].Kind == StepStopWorld && steps[n-1].Hop == s.Hop && sameChange(steps[n-1].Change, s.Change) {
			last := &steps[n-1]
			last.Nodes = append(last.Nodes, s.Node)
			last.Reversible = last.Reversible && s.Reversible
			last.Hold = last.Hold || s.Hold
			if !s.Reversible {
				last.Why = s.Why
			}
			continue
		}
		outages++
		steps = append(steps, Step{Kind: StepStopWorld, Hop: s.Hop, Node: -1, Nodes: []int32{s.Node}, Change: s.Change,
			Reversible: s.Reversible, Why: s.Why, Hold: s.Hold})
	}
	for k := range steps {
		if s := &steps[k]; s.Kind == StepStopWorld {
			s.Reason = fmt.Sprintf("stop nodes %v together, apply %v, start them again: an outage until every broker answers and every partition has min.insync.replicas in sync", s.Nodes, s.Change)
		}
	}
	if !cfg.acceptDowntime {
		slices.Sort(all)
		return Plan{}, &DowntimeError{Nodes: all, Outages: outages}
	}
	p.Steps = steps
	if outages > 0 {
		p.Notes = append(p.Notes, fmt.Sprintf("stop-the-world: %d outages, each from the first stop until every broker answers and every partition has min.insync.replicas in sync again (downtime accepted)", outages))
	}
	p.ID = planID(p)
	return p, nil
}

func sameChange(a, b node.Change) bool {
	return a.Version == b.Version && maps.Equal(a.Set, b.Set) && slices.Equal(a.Unset, b.Unset)
}

// stopWorld runs a stop-the-world step: every node of st.Nodes whose change
// is not in effect is stopped, changed and started; then the Runner waits
// for the whole cluster to be healthy, and records the outage.
func (u *run) stopWorld(ctx context.Context, i int, st Step, sr *StepRecord) (string, error) {
	roles := map[int32][]node.Role{}
	for _, n := range u.plan.Nodes {
		roles[n.ID] = n.Roles
	}
	// A node whose change is in effect is left alone, unless it is not
	// running (a run stopped between its stop and its start).
	live, hasLive := u.r.orch.(node.Liveness)
	var todo []int32
	for _, id := range st.Nodes {
		one := st
		one.Kind, one.Node, one.Roles = StepRestart, id, roles[id]
		ok, _ := u.inEffect(ctx, one)
		if ok && hasLive {
			if alive, err := live.Alive(ctx, id); err == nil && !alive {
				ok = false
			}
		}
		if !ok {
			todo = append(todo, id)
		}
	}
	if len(todo) == 0 {
		if err := u.worldUp(ctx, i, st, roles); err != nil {
			return "", err
		}
		return fmt.Sprintf("nodes %v already have %v", st.Nodes, st.Change), nil
	}
	sr.Restarted = true
	if err := u.save(ctx); err != nil {
		return "", err
	}
	from := u.r.cfg.now()
	u.emit(Event{Kind: EventRestarting, Step: i, Message: fmt.Sprintf("stopping nodes %v together (outage begins), then starting them with %v", todo, st.Change)})
	rctx, cancel := context.WithTimeoutCause(ctx, u.r.cfg.restartTimeout,
		fmt.Errorf("the Orchestrator did not stop and start nodes %v within %v", todo, u.r.cfg.restartTimeout))
	err := u.stopStart(rctx, todo, st.Change, roles)
	cancel()
	if err != nil {
		return "", err
	}
	u.emit(Event{Kind: EventRestarted, Step: i, Elapsed: u.r.cfg.now().Sub(from), Message: fmt.Sprintf("nodes %v started", todo)})
	if err := u.worldUp(ctx, i, st, roles); err != nil {
		return "", err
	}
	w := OutageWindow{From: from, To: u.r.cfg.now()}
	sr.Outage = &w
	u.emit(Event{Kind: EventCaughtUp, Step: i, Elapsed: w.Duration(),
		Message: fmt.Sprintf("outage over after %v: every broker answers and every partition has min.insync.replicas in sync", w.Duration().Round(time.Millisecond))})
	return "", nil
}

// stopStart stops and starts ids with ch: with a [node.Stopper], brokers
// down, then controllers, then controllers up, then brokers; else
// concurrent Restarts.
func (u *run) stopStart(ctx context.Context, ids []int32, ch node.Change, roles map[int32][]node.Role) error {
	each := func(ids []int32, fn func(id int32) error) error {
		errs := make([]error, len(ids))
		var wg sync.WaitGroup
		for k, id := range ids {
			wg.Go(func() { errs[k] = fn(id) })
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	st, ok := u.r.orch.(node.Stopper)
	if !ok {
		return each(ids, func(id int32) error {
			if err := u.r.orch.Restart(ctx, id, ch); err != nil {
				return fmt.Errorf("node %d did not restart: %w", id, err)
			}
			return nil
		})
	}
	var brokers, controllers []int32
	for _, id := range ids {
		if slices.Contains(roles[id], node.RoleController) {
			controllers = append(controllers, id)
		} else {
			brokers = append(brokers, id)
		}
	}
	stop := func(id int32) error {
		if err := st.StopNode(ctx, id); err != nil {
			return fmt.Errorf("node %d did not stop: %w", id, err)
		}
		return nil
	}
	start := func(id int32) error {
		if err := st.StartStopped(ctx, id, ch); err != nil {
			return fmt.Errorf("node %d did not start: %w", id, err)
		}
		return nil
	}
	for _, fn := range []func() error{
		func() error { return each(brokers, stop) },
		func() error { return each(controllers, stop) },
		func() error { return each(controllers, start) },
		func() error { return each(brokers, start) },
	} {
		if err := fn(); err != nil {
			return err
		}
	}
	return nil
}

// worldUp waits until every broker of the plan is up and answering, every
// KRaft controller has caught up, and no partition is offline or below
// min ISR.
func (u *run) worldUp(ctx context.Context, i int, st Step, roles map[int32][]node.Role) error {
	ops := u.r.cfg.ops
	gate, err := health.NewGate(append(slices.Clone(u.r.cfg.gateOpts), health.MaxOffline(0), health.MaxUnderMinISR(0))...)
	if err != nil {
		return err
	}
	ids := slices.Sorted(maps.Keys(roles))
	return u.waitFor(ctx, i, EventWaiting, u.r.cfg.catchUpTimeout, "the cluster is not back", func(ctx context.Context) (health.Verdict, error) {
		snap, err := ops.snapshot(ctx)
		if err != nil {
			return health.Verdict{}, err
		}
		snap = u.withDead(ctx, snap)
		var reasons []health.Reason
		for _, id := range ids {
			if slices.Contains(roles[id], node.RoleBroker) && !snap.Up(id) {
				reasons = append(reasons, health.Reason{Rule: health.RuleNodeDown, Partition: -1, Leader: -1, Nodes: []int32{id},
					Message: fmt.Sprintf("broker %d is not registered or is fenced", id)})
			}
			if u.plan.Mode == compat.ModeKRaft && slices.Contains(roles[id], node.RoleController) {
				v, err := ops.controllerCaughtUp(ctx, id)
				if err != nil {
					return health.Verdict{}, err
				}
				reasons = append(reasons, v.Reasons...)
			}
		}
		reasons = append(reasons, gate.CanRestart(snap).Reasons...)
		reasons, err = u.unresponsive(ctx, reasons, -1)
		if err != nil {
			return health.Verdict{}, err
		}
		reasons, err = u.canary(ctx, reasons, -1)
		if err != nil {
			return health.Verdict{}, err
		}
		return health.Verdict{Kind: health.KindCaughtUp, Nodes: st.Nodes, OK: len(reasons) == 0, Reasons: reasons}, nil
	})
}
