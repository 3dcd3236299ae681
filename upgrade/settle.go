package upgrade

import (
	"context"
	"fmt"
	"slices"

	"github.com/kupgrade/kupgrade/health"
	"github.com/kupgrade/kupgrade/node"
)

// RuleNotSettled is the rule of a wait's reason while the restart that an
// earlier run began has not finished (see [Runner.Run]).
const RuleNotSettled health.Rule = "restart-not-settled"

// settle waits until the restart an earlier run began on st.Node is over,
// before the step is judged again. That run journaled the restart, asked the
// Orchestrator for it and stopped (it was killed, or its context ended): the
// restart may still be under way, the node stopping or starting, and judging
// the step now (is the change in effect? is the node down, so that
// restarting it costs nothing?) could restart it a second time in the middle
// of the first.
//
// So it waits, bounded by [RestartTimeout], until the node is back (a
// broker in every ISR of its partitions, a controller caught up with the
// quorum) and, where that can be checked, the change is in effect (the
// Orchestrator reports the new release; a broker reports the new static
// config). A restart that the last run journaled but never asked for (it
// stopped in between) leaves a node that is back but without the change:
// where the change can be checked, that too ends in the wait running out,
// and the step fails, naming the node; as after any failed step, the next
// run retries it from scratch, then without a restart in flight.
func (u *run) settle(ctx context.Context, i int, st Step) error {
	verify := u.verifiable(ctx, st)
	what := fmt.Sprintf("node %d: the restart the last run began has not finished", st.Node)
	if verify {
		what += " (its change is not in effect, or the node is not back)"
	}
	u.emit(Event{Kind: EventWaiting, Step: i, Message: fmt.Sprintf("node %d: the last run stopped during its restart; waiting for that restart to finish before judging the step again", st.Node)})
	stall := u.stallWatch(st)
	err := u.waitFor(ctx, i, EventWaiting, u.r.cfg.restartTimeout, what, func(ctx context.Context) (health.Verdict, error) {
		v := health.Verdict{Kind: health.KindCaughtUp, Nodes: []int32{st.Node}}
		if verify {
			if ok, _ := u.inEffect(ctx, st); !ok {
				v.Reasons = append(v.Reasons, health.Reason{Rule: RuleNotSettled, Partition: -1, Leader: -1, Nodes: []int32{st.Node},
					Message: fmt.Sprintf("node %d: %v is not in effect yet", st.Node, st.Change)})
			}
		}
		ops := u.r.cfg.ops
		if slices.Contains(st.Roles, node.RoleController) { // KRaft, or a migration's controllers
			cv, err := ops.controllerCaughtUp(ctx, st.Node)
			if err != nil {
				return health.Verdict{}, err
			}
			v.Reasons = append(v.Reasons, cv.Reasons...)
		}
		if slices.Contains(st.Roles, node.RoleBroker) || len(st.Roles) == 0 {
			snap, err := ops.snapshot(ctx)
			if err != nil {
				return health.Verdict{}, err
			}
			cv := health.CaughtUp(snap, st.Node)
			if !cv.OK && stall != nil {
				if err := u.moveStalled(ctx, i, stall, snap); err != nil {
					return health.Verdict{}, err
				}
			}
			v.Reasons = append(v.Reasons, cv.Reasons...)
		}
		v.OK = len(v.Reasons) == 0
		return v, nil
	})
	if err != nil || stall == nil {
		return err
	}
	return u.restoreOrder(ctx, i, stall)
}

// verifiable reports whether [run.inEffect] can tell that st's change took
// effect: the Orchestrator reports the node's release (for a change of
// release), and the node is a broker (for a change of config).
func (u *run) verifiable(ctx context.Context, st Step) bool {
	ch := st.Change
	if ch.IsZero() {
		return false
	}
	if len(ch.Set)+len(ch.Unset) > 0 && !slices.Contains(st.Roles, node.RoleBroker) {
		return false
	}
	if ch.Version == "" {
		return true
	}
	nodes, err := u.r.orch.Nodes(ctx)
	if err != nil {
		return false
	}
	i := slices.IndexFunc(nodes, func(n node.Node) bool { return n.ID == st.Node })
	return i >= 0 && nodes[i].Version != ""
}
