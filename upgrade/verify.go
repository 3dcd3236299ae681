package upgrade

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/node"
)

// ErrPlanInvalid reports a plan that [Runner.Run] refuses before its first
// step, see [Plan.Verify].
var ErrPlanInvalid = errors.New("upgrade: plan refused")

// A PlanError says why a plan was refused before any node was touched.
type PlanError struct {
	// ID is the plan's ID, and Want the ID its content hashes to (empty if
	// the plan has no ID).
	ID, Want string
	// Problems lists what is wrong, one entry per problem.
	Problems []string
}

// Error names the plan and its problems.
func (e *PlanError) Error() string {
	id := e.ID
	if id == "" {
		id = "without an ID"
	}
	return fmt.Sprintf("upgrade: plan %s refused: %s", id, strings.Join(e.Problems, "; "))
}

// Unwrap returns [ErrPlanInvalid].
func (e *PlanError) Unwrap() error { return ErrPlanInvalid }

// Verify reports, as a *[PlanError], a plan that must not run: one without
// an ID; one whose content does not hash to its ID (it was changed after
// [NewPlan] made it, say by editing its JSON: holds removed, a pin
// changed); or one with a malformed step: a kind the Runner does not know, a
// restart of a node the plan does not list, a [node.Change] that does not
// validate, a release or an inter.broker.protocol.version or
// log.message.format.version that the release the node will run does not
// know. It is pure; [Runner.Run] calls it before anything else.
func (p Plan) Verify() error {
	var problems []string
	want := ""
	if p.ID == "" {
		problems = append(problems, "it has no ID (plans come from NewPlan, NewReplacePlan or NewRollbackPlan)")
	} else if want = planID(p); want != p.ID {
		problems = append(problems, fmt.Sprintf("its content hashes to %s, not to its ID: it was changed after it was made (edited by hand?); make a new plan", want))
	}
	if len(p.Steps) == 0 {
		problems = append(problems, "it has no steps")
	}
	planned := map[int32]compat.NodeState{}
	release := map[int32]compat.Release{} // what each node runs, step by step
	for _, n := range p.Nodes {
		planned[n.ID] = n
		release[n.ID] = n.Release
	}
	for i, s := range p.Steps {
		bad := func(format string, args ...any) {
			problems = append(problems, fmt.Sprintf("step %d (%s): ", i+1, s.Kind)+fmt.Sprintf(format, args...))
		}
		switch s.Kind {
		case StepPreflight, StepFinalize, StepBake, StepElectLeaders, StepManual, StepMove, StepAwaitMigration, StepRetireController, StepClearMigration:
		case StepProvisionController: // from here on the plan restarts it
			planned[s.Node] = compat.NodeState{ID: s.Node, Roles: s.Roles}
		case StepStopWorld:
			for _, id := range s.Nodes {
				if _, ok := planned[id]; !ok {
					bad("node %d is not among the plan's nodes", id)
				}
			}
			if len(s.Nodes) == 0 {
				bad("it stops no node")
			}
			if err := s.Change.Validate(); err != nil {
				bad("%v", err)
			}
			continue
		case StepRestart, StepRetire, StepProvision, StepRestartReplacement:
			if _, ok := planned[s.Node]; !ok {
				bad("node %d is not among the plan's nodes", s.Node)
				continue
			}
		default:
			bad("unknown step kind")
			continue
		}
		if s.Kind != StepRestart && s.Kind != StepProvision && s.Kind != StepProvisionController {
			continue
		}
		if s.Kind == StepRestart && len(s.Roles) > 0 && !sameRoles(s.Roles, planned[s.Node].Roles) {
			bad("node %d has roles %v in the plan's nodes, not %v", s.Node, planned[s.Node].Roles, s.Roles)
		}
		if err := s.Change.Validate(); err != nil {
			bad("%v", err)
		}
		reader := release[s.Node]
		if s.Change.Version != "" {
			r, err := compat.ParseRelease(s.Change.Version)
			if err != nil {
				bad("%v", err)
				continue
			}
			if !compat.IsKnown(r) {
				bad("%v is not a release kupgrade knows", r)
				continue
			}
			reader = r
			if s.Kind == StepRestart {
				release[s.Node] = r
			}
		}
		if reader.IsZero() || !compat.IsKnown(reader) {
			continue
		}
		for _, k := range []string{"inter.broker.protocol.version", "log.message.format.version"} {
			v, ok := s.Change.Set[k]
			if !ok {
				continue
			}
			parse := compat.ParseMetadataVersion
			if k == "log.message.format.version" {
				parse = compat.ParseMessageFormat
			}
			if _, err := parse(v, reader); err != nil {
				bad("%s=%s on %v: %v", k, v, reader, err)
			}
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return &PlanError{ID: p.ID, Want: want, Problems: problems}
}

func sameRoles(a, b []node.Role) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
