package upgrade

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/node"
)

// ErrIrreversible reports a rollback asked for after an irreversible step.
var ErrIrreversible = errors.New("upgrade: cannot roll back past an irreversible step")

// An IrreversibleError names the irreversible step that makes a rollback
// impossible.
type IrreversibleError struct {
	Index int
	Step  Step
}

// Error names the step that has run and why it cannot be undone.
func (e *IrreversibleError) Error() string {
	return fmt.Sprintf("upgrade: cannot roll back: step %d (%v) has run, and %s", e.Index+1, e.Step, e.Step.Why)
}

// Unwrap returns [ErrIrreversible].
func (e *IrreversibleError) Unwrap() error { return ErrIrreversible }

// NewRollbackPlan plans how to undo the restarts of an interrupted (or finished)
// run of plan, whose journal record is rec: every node that a restart step
// may have changed (started, failed or finished) is restarted on the release
// it ran when plan was made, with the static config keys the plan changed
// restored (inter.broker.protocol.version and log.message.format.version to
// their old values, other keys removed). Brokers roll back first, then
// controllers. It is pure.
//
// Once an irreversible step has started (raising
// inter.broker.protocol.version, finalizing across a metadata change)
// NewRollbackPlan refuses with an *[IrreversibleError] naming it.
func NewRollbackPlan(plan Plan, rec Record) (Plan, error) {
	if rec.PlanID != plan.ID || len(rec.Steps) != len(plan.Steps) {
		return Plan{}, fmt.Errorf("%w: the journal is of plan %s, not %s", ErrJournalMismatch, rec.PlanID, plan.ID)
	}
	touched := map[int32]map[string]bool{} // node -> config keys the plan changed
	for i, st := range plan.Steps {
		state := rec.Steps[i].State
		if state == StepPending {
			continue
		}
		if !st.Reversible {
			return Plan{}, &IrreversibleError{Index: i, Step: st}
		}
		if st.Kind != StepRestart || state == StepSkipped && !rec.Steps[i].Restarted {
			continue
		}
		if touched[st.Node] == nil {
			touched[st.Node] = map[string]bool{}
		}
		for k := range st.Change.Set {
			touched[st.Node][k] = true
		}
		for _, k := range st.Change.Unset {
			touched[st.Node][k] = true
		}
	}
	// The nodes a run touched may run either release now: the rollback's
	// preflight must not insist on one.
	rb := Plan{Version: PlanVersion, Mode: plan.Mode}
	for _, n := range plan.Nodes {
		if _, ok := touched[n.ID]; ok {
			n.Release = compat.Release{}
		}
		rb.Nodes = append(rb.Nodes, n)
	}
	rb.Steps = append(rb.Steps, Step{Kind: StepPreflight, Node: -1, Reversible: true, Why: "reads only",
		Reason: "check the cluster before rolling back"})
	var oldest compat.Release
	for _, controllers := range []bool{false, true} {
		roll := 1
		if controllers {
			roll = 2
		}
		for _, n := range plan.Nodes { // the plan's nodes: with the release to go back to
			keys, ok := touched[n.ID]
			if !ok || slices.Contains(n.Roles, node.RoleController) != controllers {
				continue
			}
			if n.Release.IsZero() {
				return Plan{}, fmt.Errorf("upgrade: cannot roll back node %d: the plan does not record its old release", n.ID)
			}
			ch := node.Change{Version: n.Release.String(), Set: map[string]string{}}
			for _, k := range slices.Sorted(maps.Keys(keys)) {
				old := compat.ConfigValue{}
				switch k {
				case "inter.broker.protocol.version":
					old = n.IBPV
				case "log.message.format.version":
					old = n.LMFV
				}
				if old.Source == compat.SourceStatic {
					ch.Set[k] = old.Value
				} else {
					ch.Unset = append(ch.Unset, k)
				}
			}
			if len(ch.Set) == 0 {
				ch.Set = nil
			}
			rb.Steps = append(rb.Steps, Step{Kind: StepRestart, Hop: 1, Roll: roll, Node: n.ID, Roles: n.Roles, Change: ch,
				Reversible: true, Why: "the node can be upgraded again", Reason: fmt.Sprintf("roll node %d back to %v", n.ID, n.Release)})
			if oldest.IsZero() || n.Release.Less(oldest) {
				oldest = n.Release
			}
		}
	}
	rb.Target = oldest
	rb.Notes = append(rb.Notes, fmt.Sprintf("rollback of plan %s", plan.ID))
	rb.ID = planID(rb)
	return rb, nil
}
