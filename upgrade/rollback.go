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
	// Err, when set, says why steps that are each reversible cannot be
	// undone together: the safe downgrade back to the levels finalized
	// before the plan (a *[compat.DowngradeError], or the
	// *[compat.MetadataVersionError] of a level compat cannot judge).
	// Step is then the last finalize step that ran.
	Err error
}

// Error names the step that has run and why it cannot be undone.
func (e *IrreversibleError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("upgrade: cannot roll back: step %d (%v) has run, and the levels finalized since the plan was made cannot be safely downgraded: %v", e.Index+1, e.Step, e.Err)
	}
	return fmt.Sprintf("upgrade: cannot roll back: step %d (%v) has run, and %s", e.Index+1, e.Step, e.Step.Why)
}

// Unwrap returns [ErrIrreversible] and, when set, Err.
func (e *IrreversibleError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrIrreversible}
	}
	return []error{ErrIrreversible, e.Err}
}

// NewRollbackPlan plans how to undo an interrupted (or finished) run of
// plan, whose journal record is rec. It is pure.
//
// Every node that a restart step may have changed (started, failed or
// finished) is restarted on the release it ran when plan was made, with the
// static config keys the plan changed restored (inter.broker.protocol.version
// and log.message.format.version to their old values, other keys removed).
//
// Every feature level that a finalize step may have changed (any state but
// pending: a step in flight may have applied its levels, and the Runner's
// finalize leaves levels already in place alone) goes back to the level
// finalized when plan was made ([Plan.Finalized]; a feature not listed there
// goes to 0, disabled). Levels to lower go first, in safe-downgrade finalize
// steps ([Step.Downgrade]) right after the preflight, since the old releases
// cannot run the new levels: the other features first, then
// metadata.version. Then, before the first restart, a bake of
// [SnapshotWait] (sized by the [MetadataSnapshotInterval] among opts; no other
// option applies): the old releases cannot start until every node has
// written a metadata snapshot at the lowered levels. Levels to raise again (a
// downgrade plan rolled back) go last, once the nodes run their newer
// releases again.
//
// Rolling back an upgrade, brokers roll back first, then controllers; rolling
// back a downgrade (plan.Target older than the nodes were), controllers
// first, then brokers.
//
// NewRollbackPlan refuses with an *[IrreversibleError] naming the step once
// an irreversible step has started (raising inter.broker.protocol.version,
// finalizing across a metadata change, a kraft.version upgrade), and, with
// the [compat.DowngradeError] in its Err, when the finalize steps that ran
// together cannot be safely downgraded ([compat.CanDowngrade]). It refuses
// with an error naming what is missing a plan that does not record the
// release of a node to roll back, or (a plan made before [Plan.Finalized]
// existed) the metadata.version to go back to.
func NewRollbackPlan(plan Plan, rec Record, opts ...PlanOption) (Plan, error) {
	var cfg planConfig
	for _, o := range opts {
		o.applyPlan(&cfg)
	}
	if cfg.snapshotInterval < 0 {
		return Plan{}, fmt.Errorf("upgrade: MetadataSnapshotInterval(%v) is negative", cfg.snapshotInterval)
	}
	if rec.PlanID != plan.ID || len(rec.Steps) != len(plan.Steps) {
		return Plan{}, fmt.Errorf("%w: the journal is of plan %s, not %s", ErrJournalMismatch, rec.PlanID, plan.ID)
	}
	if rb, ok, err := migrationRollback(plan, rec); ok { // migrate_rollback.go
		return rb, err
	}
	touched := map[int32]map[string]bool{} // node -> config keys the plan changed
	ran := compat.FeatureLevels{}          // levels finalize steps that ran may have set
	lastFinalize := -1
	for i, st := range plan.Steps {
		state := rec.Steps[i].State
		if state == StepPending {
			continue
		}
		if !st.Reversible {
			return Plan{}, &IrreversibleError{Index: i, Step: st}
		}
		if st.Kind == StepFinalize {
			maps.Copy(ran, st.Features)
			lastFinalize = i
			continue
		}
		if st.Kind != StepRestart && st.Kind != StepStopWorld || state == StepSkipped && !rec.Steps[i].Restarted {
			continue
		}
		ids := []int32{st.Node}
		if st.Kind == StepStopWorld { // rolled back one node at a time
			ids = st.Nodes
		}
		for _, id := range ids {
			if touched[id] == nil {
				touched[id] = map[string]bool{}
			}
			for k := range st.Change.Set {
				touched[id][k] = true
			}
			for _, k := range st.Change.Unset {
				touched[id][k] = true
			}
		}
	}
	lower, raise, err := undoLevels(plan, ran)
	if ie, ok := err.(*IrreversibleError); ok {
		ie.Index, ie.Step = lastFinalize, plan.Steps[lastFinalize]
		return Plan{}, ie
	} else if err != nil {
		return Plan{}, err
	}
	// A downgrade plan (its target older than some node was) is rolled back
	// upwards: controllers before brokers.
	upward := slices.ContainsFunc(plan.Nodes, func(n compat.NodeState) bool { return plan.Target.Less(n.Release) })

	// The nodes a run touched may run either release now: the rollback's
	// preflight must not insist on one.
	rb := Plan{Version: PlanVersion, Mode: plan.Mode}
	for _, n := range plan.Nodes {
		if _, ok := touched[n.ID]; ok {
			n.Release = compat.Release{}
		}
		rb.Nodes = append(rb.Nodes, n)
	}
	if len(plan.Finalized)+len(ran) > 0 {
		rb.Finalized = maps.Clone(plan.Finalized)
		if rb.Finalized == nil {
			rb.Finalized = compat.FeatureLevels{}
		}
		maps.Copy(rb.Finalized, ran) // a finalize step in flight counted as done
	}
	rb.Steps = append(rb.Steps, Step{Kind: StepPreflight, Node: -1, Reversible: true, Why: "reads only",
		Reason: "check the cluster before rolling back"})
	for _, levels := range splitLevels(lower, true) {
		rb.Steps = append(rb.Steps, Step{Kind: StepFinalize, Hop: 1, Node: -1, Features: levels, Downgrade: true,
			Reversible: true, Why: "no metadata change in the way: the levels can be raised again",
			Reason: fmt.Sprintf("safely downgrade %s back to the levels finalized before plan %s, which the old releases can run", featuresString(levels), plan.ID)})
	}
	lowered := len(lower) > 0
	order := []bool{false, true} // controllers? brokers first
	if upward {
		order = []bool{true, false}
	}
	for roll, controllers := range order {
		for _, n := range plan.Nodes { // the plan's nodes: with the release to go back to
			keys, ok := touched[n.ID]
			if !ok || slices.Contains(n.Roles, node.RoleController) != controllers {
				continue
			}
			if n.Release.IsZero() {
				return Plan{}, fmt.Errorf("upgrade: cannot roll back node %d: the plan does not record its old release", n.ID)
			}
			if lowered { // before the first restart onto an older release
				rb.Steps = append(rb.Steps, snapshotBake(1, cfg))
				lowered = false
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
			rb.Steps = append(rb.Steps, Step{Kind: StepRestart, Hop: 1, Roll: roll + 1, Node: n.ID, Roles: n.Roles, Change: ch,
				Reversible: true, Why: "the node can be upgraded again", Reason: fmt.Sprintf("roll node %d back to %v", n.ID, n.Release)})
		}
	}
	for _, levels := range splitLevels(raise, false) {
		rb.Steps = append(rb.Steps, Step{Kind: StepFinalize, Hop: 1, Node: -1, Features: levels,
			Reversible: true, Why: "no metadata change in the way: a safe downgrade can undo it",
			Reason: fmt.Sprintf("finalize %s again, as before plan %s, now that every node runs its release again", featuresString(levels), plan.ID)})
	}
	for _, n := range plan.Nodes { // every node ends on its old release
		if n.Release.IsZero() {
			continue
		}
		if rb.Target.IsZero() || upward && rb.Target.Less(n.Release) || !upward && n.Release.Less(rb.Target) {
			rb.Target = n.Release
		}
	}
	rb.Notes = append(rb.Notes, fmt.Sprintf("rollback of plan %s", plan.ID))
	rb.ID = planID(rb)
	return rb, nil
}

// undoLevels returns the levels that take the features finalize steps set
// (ran) back to plan.Finalized: those to lower and those to raise. Lowering
// metadata.version must be a safe downgrade ([compat.CanDowngrade]); an
// *[IrreversibleError] (Index and Step left for the caller) says why not.
func undoLevels(plan Plan, ran compat.FeatureLevels) (lower, raise compat.FeatureLevels, err error) {
	lower, raise = compat.FeatureLevels{}, compat.FeatureLevels{}
	for _, f := range ran.Names() {
		old, known := plan.Finalized[f]
		if !known && f == compat.FeatureMetadataVersion {
			return nil, nil, fmt.Errorf("upgrade: cannot roll back plan %s: its finalize steps set metadata.version, but the plan does not record the level finalized before it (made by an older kupgrade?): downgrade metadata.version by hand, then plan again", plan.ID)
		}
		switch {
		case old < ran[f]:
			lower[f] = old
		case old > ran[f]:
			raise[f] = old
		}
	}
	if to, ok := lower[compat.FeatureMetadataVersion]; ok {
		reader := plan.Target
		for _, n := range plan.Nodes {
			if reader.Less(n.Release) {
				reader = n.Release
			}
		}
		fromMV, err := compat.LookupMetadataVersion(ran[compat.FeatureMetadataVersion], reader)
		if err == nil {
			var toMV compat.MetadataVersion
			if toMV, err = compat.LookupMetadataVersion(to, reader); err == nil {
				err = compat.CanDowngrade(fromMV, toMV)
			}
		}
		if err != nil {
			return nil, nil, &IrreversibleError{Err: err}
		}
	}
	if _, ok := lower[compat.FeatureKRaftVersion]; ok {
		return nil, nil, &IrreversibleError{Err: errors.New("kraft.version cannot be downgraded")}
	}
	return lower, raise, nil
}

// splitLevels returns levels as finalize steps: metadata.version on its own,
// after the other features when lowering (they may depend on it, as
// eligible.leader.replicas.version does) and before them when raising.
func splitLevels(levels compat.FeatureLevels, lowering bool) []compat.FeatureLevels {
	mv, hasMV := levels[compat.FeatureMetadataVersion]
	others := maps.Clone(levels)
	delete(others, compat.FeatureMetadataVersion)
	var out []compat.FeatureLevels
	if len(others) > 0 {
		out = append(out, others)
	}
	if hasMV {
		one := compat.FeatureLevels{compat.FeatureMetadataVersion: mv}
		if lowering {
			out = append(out, one)
		} else {
			out = append([]compat.FeatureLevels{one}, out...)
		}
	}
	return out
}
