package upgrade

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/kraft"
	"github.com/kupgrade/kupgrade/node"
)

// StepKind says what a [Step] does.
type StepKind string

// The kinds of step a [Plan] holds.
const (
	// StepPreflight checks, before anything changes, that the cluster is
	// what the plan was made for (nodes, releases) and healthy.
	StepPreflight StepKind = "preflight"
	// StepRestart restarts one node with a [node.Change], gated by health (and,
	// for controllers, the quorum) before, and waiting for the node to
	// catch up after.
	StepRestart StepKind = "restart"
	// StepFinalize raises (or safely lowers) KRaft feature levels with
	// UpdateFeatures once every node runs a release that supports them.
	StepFinalize StepKind = "finalize"
	// StepBake waits Step.Duration, watching health the whole time: in an
	// upgrade with every node on the hop's release, before the hop's
	// finalize steps ([BakeTime]); in a downgrade or a rollback between
	// lowering feature levels and the first restart onto an older release
	// (at least [SnapshotWait]). It fails at once, naming what it saw, when
	// a partition goes offline or under min ISR, a broker goes down or stops
	// answering the liveness probe, a controller falls behind the quorum, or
	// the canary (if set) fails: the cluster must stay healthy for the whole
	// duration.
	StepBake StepKind = "bake"
	// StepElectLeaders moves leadership back to preferred replicas.
	StepElectLeaders StepKind = "elect-leaders"
	// StepManual is work kupgrade does not automate (the ZooKeeper to KRaft
	// migration). A Runner refuses a plan that has one.
	StepManual StepKind = "manual"
)

// A Step is one action of a [Plan].
type Step struct {
	Kind StepKind `json:"kind"`
	// Hop numbers the route hop the step belongs to, from 1 as in the plan
	// table and notes; 0 for none (the preflight).
	Hop int `json:"hop,omitempty"`
	// Roll groups the restarts of one rolling restart: within a roll the
	// Runner may reorder steps (the active controller, or the ZooKeeper
	// controller broker, goes last, re-checked at each step). 0 for other
	// kinds.
	Roll int `json:"roll,omitempty"`
	// Node is the node a restart concerns, -1 for other kinds.
	Node int32 `json:"node"`
	// Nodes are the nodes a stop-the-world step stops and starts together
	// (see [StepStopWorld]), in plan order.
	Nodes []int32 `json:"nodes,omitempty"`
	// Roles are the node's roles.
	Roles []node.Role `json:"roles,omitempty"`
	// Change is what a restart changes.
	Change node.Change `json:"change,omitzero"`
	// Features are the levels a finalize step sets.
	Features compat.FeatureLevels `json:"features,omitempty"`
	// Downgrade marks a finalize step that safely lowers levels.
	Downgrade bool `json:"downgrade,omitempty"`
	// Duration is how long a bake step lasts.
	Duration time.Duration `json:"duration,omitempty"`
	// Reversible reports whether the step can be undone, and Why says why
	// (or why not).
	Reversible bool   `json:"reversible"`
	Why        string `json:"why,omitempty"`
	// Hold makes the Runner stop before the step unless it was told to go
	// on ([PassHolds]): every irreversible step is held, and finalize steps
	// are held when the plan was made with [FinalizeLater].
	Hold bool `json:"hold,omitempty"`
	// Reason explains the step to a human.
	Reason string `json:"reason,omitempty"`
	// Phase is the migration phase of a step in a plan that migrates from
	// ZooKeeper to KRaft, empty in other plans.
	Phase Phase `json:"phase,omitempty"`
}

// String describes the step on one line.
func (s Step) String() string {
	switch s.Kind {
	case StepRestart:
		return fmt.Sprintf("restart node %d (%s): %v", s.Node, rolesString(s.Roles), s.Change)
	case StepFinalize:
		verb := "finalize"
		if s.Downgrade {
			verb = "downgrade"
		}
		return verb + " " + featuresString(s.Features)
	case StepBake:
		return fmt.Sprintf("bake %v", s.Duration)
	case StepProvisionController:
		return fmt.Sprintf("provision controller %d: %v", s.Node, s.Change)
	case StepRetireController:
		return fmt.Sprintf("retire controller %d", s.Node)
	case StepAwaitMigration:
		return "await the metadata migration"
	case StepClearMigration:
		return "clear the migration znodes"
	default:
		if s.Reason != "" {
			return string(s.Kind) + ": " + s.Reason
		}
		return string(s.Kind)
	}
}

// featuresString renders levels for people: "metadata.version=4.1-IV1 (27)".
func featuresString(levels compat.FeatureLevels) string {
	var parts []string
	for _, f := range levels.Names() {
		parts = append(parts, f+"="+kraft.LevelName(f, levels[f]))
	}
	return strings.Join(parts, " ")
}

func rolesString(roles []node.Role) string {
	if len(roles) == 0 {
		return "broker"
	}
	parts := make([]string, len(roles))
	for i, r := range roles {
		parts[i] = string(r)
	}
	slices.Sort(parts)
	return strings.Join(parts, "+")
}

// PlanVersion is the version of the [Plan] JSON schema this package writes
// and reads.
const PlanVersion = 1

// A Plan is a typed, ordered list of steps that takes a cluster to a target
// release. Print it for a dry run; marshal it to JSON to keep or review it;
// hand it to [Runner.Run] to carry it out.
//
// Its JSON form is one object with camelCase keys:
//
//	{
//	  "version": 1,                 // PlanVersion; Run refuses other versions
//	  "id": "2f1c0a9e77b3",         // hash of the content; journals are tied to it
//	  "mode": "kraft",              // compat.Mode: "zookeeper", "kraft" or "migrating"
//	  "target": "4.1.2",            // the release every node runs at the end
//	  "via": ["3.9.2"],             // releases the route stops at on the way, if any
//	  "nodes": [ {compat.NodeState} ],  // the nodes as they were when planned
//	  "finalized": {"metadata.version": 25},  // KRaft feature levels finalized when planned
//	  "steps": [ {Step} ],          // kind, hop (from 1), roll, node (-1 for none), roles, change, …
//	  "notes": ["…"]
//	}
//
// The route ([compat.Route]) is the input of planning and is not kept: each
// step records its hop number and why it is there.
type Plan struct {
	// Version is the schema version, [PlanVersion].
	Version int `json:"version"`
	// ID identifies the plan's content (a hash of mode, nodes, finalized
	// levels, target and steps); journals are tied to it.
	ID     string         `json:"id"`
	Mode   compat.Mode    `json:"mode"`
	Target compat.Release `json:"target"`
	// Via are the releases the route stops at before Target, in order.
	Via []compat.Release `json:"via,omitempty"`
	// Nodes are the nodes as they were when the plan was made (releases and
	// pins, so that a rollback can restore them).
	Nodes []compat.NodeState `json:"nodes"`
	// Finalized are the KRaft feature levels finalized when the plan was
	// made (compat.State.Finalized), so that a rollback can restore them
	// after the plan's finalize steps ran; a feature not listed was not
	// finalized (level 0). Empty in ZooKeeper mode.
	Finalized compat.FeatureLevels `json:"finalized,omitempty"`
	Steps     []Step               `json:"steps"`
	// Notes are remarks for the operator: preconditions kupgrade cannot
	// observe, a half-finished upgrade being continued, decisions left open.
	Notes []string `json:"notes,omitempty"`
}

// Target is what a plan aims for.
type Target struct {
	// Version is the Kafka release every node runs at the end (4.1.2).
	Version compat.Release `json:"version"`
	// Via lists releases to stop at on the way, each a full upgrade with its
	// own rolls and finalize steps (3.9.2 to go 3.8 → 3.9 → 4.1 even where
	// Kafka would allow 3.8 → 4.1 directly). Releases the route needs anyway
	// are added without being listed.
	Via []compat.Release `json:"via,omitempty"`
	// Features are extra feature levels to finalize at the end, beyond what
	// the route finalizes (metadata.version and the features the target
	// release turns on for new clusters). kraft.version is finalized only
	// when named here: a static to dynamic quorum change is irreversible.
	Features compat.FeatureLevels `json:"features,omitempty"`
}

// A PlanOption configures [NewPlan].
type PlanOption interface{ applyPlan(*planConfig) }

type planOptionFunc func(*planConfig)

func (f planOptionFunc) applyPlan(c *planConfig) { f(c) }

type planConfig struct {
	finalizeLater    bool
	bake             time.Duration
	elect            bool
	releaseDefaults  bool
	snapshotInterval time.Duration // 0: DefaultMetadataSnapshotInterval
	// migrationControllers: MigrationControllers; nil for the default.
	migrationControllers []int32
	waveSize             int // ReplaceWaves; 0: DefaultWaveSize
	waveSet              bool
	acceptDowntime       bool // AcceptDowntime
}

// DefaultMetadataSnapshotInterval is Kafka's default
// metadata.log.max.snapshot.interval.ms, which plans assume unless told
// otherwise ([MetadataSnapshotInterval]).
const DefaultMetadataSnapshotInterval = time.Hour

// MetadataSnapshotInterval tells the planner the cluster's
// metadata.log.max.snapshot.interval.ms, overriding the default of 1h
// ([DefaultMetadataSnapshotInterval]). [NewPlan] and [NewRollbackPlan] use
// it to size the wait between lowering KRaft feature levels and the first
// restart onto an older release (see [SnapshotWait]).
func MetadataSnapshotInterval(d time.Duration) PlanOption {
	return planOptionFunc(func(c *planConfig) { c.snapshotInterval = d })
}

// SnapshotWait is how long a plan bakes between lowering KRaft feature
// levels (metadata.version) and restarting the first node onto an older
// release, for a cluster whose metadata.log.max.snapshot.interval.ms is
// interval (0 for Kafka's default): the interval, a tenth more and 5s.
//
// Why: every node replays the metadata log from its latest local snapshot
// when it starts, and the records written before the downgrade (the
// FeatureLevelRecord of the higher level, records in its format) are still
// in the log. An older release cannot replay them: a Kafka 4.0.2 node
// started on a log that 4.1.2 wrote at 4.1-IV1 and then downgraded to
// 4.0-IV3 stops at once ("Tried to apply FeatureLevelRecord …
// metadata.version … featureLevel=27, but this controller only supports
// versions 7-25"; observed). Only a snapshot written after the downgrade,
// at the lowered level, lets it start. Kafka (through 4.4) writes one on no
// such event: only once metadata.log.max.record.bytes.between.snapshots
// bytes or metadata.log.max.snapshot.interval.ms have passed since the
// node's last snapshot (or its start), the controller's no-op records
// (metadata.max.idle.interval.ms) keeping the log moving. No Kafka API tells
// whether a node has written it, so the plan waits for the interval, with a
// margin, watching health meanwhile.
func SnapshotWait(interval time.Duration) time.Duration {
	if interval <= 0 {
		interval = DefaultMetadataSnapshotInterval
	}
	return interval + interval/10 + 5*time.Second
}

// snapshotBake is the bake step that waits for metadata snapshots at the
// lowered levels before the first restart onto an older release (see
// [SnapshotWait]), lasting at least cfg's bake.
func snapshotBake(hop int, cfg planConfig) Step {
	return Step{Kind: StepBake, Hop: hop, Node: -1, Duration: max(SnapshotWait(cfg.snapshotInterval), cfg.bake), Reversible: true, Why: "waits only",
		Reason: fmt.Sprintf("let every node write a metadata snapshot at the lowered levels (metadata.log.max.snapshot.interval.ms %v, and a margin) before any restart onto the older release, which cannot replay the log records written at the higher levels",
			cmp.Or(cfg.snapshotInterval, DefaultMetadataSnapshotInterval))}
}

// FinalizeLater holds every finalize step (see [Step.Hold]): the Runner rolls
// every node, then stops until the caller runs the plan again with
// [PassHolds], so the new binaries can bake before metadata.version moves.
// In a downgrade the finalize steps (safe downgrades) come before the rolls,
// so the Runner stops before it changes anything.
func FinalizeLater() PlanOption {
	return planOptionFunc(func(c *planConfig) { c.finalizeLater = true })
}

// BakeTime adds a bake step of d after each hop's rolls, before the finalize
// steps that follow them: the Runner watches health for d (see [StepBake])
// before going on, so that the new binaries prove themselves before
// metadata.version moves. In a downgrade the feature levels go down first,
// before the rolls, and nothing after the rolls waits on the old binaries:
// there the bake goes between the feature downgrades and the first roll,
// where a downgrade plan bakes anyway, for at least [SnapshotWait] (so d
// matters only if longer).
func BakeTime(d time.Duration) PlanOption { return planOptionFunc(func(c *planConfig) { c.bake = d }) }

// ElectPreferredLeaders adds a step after each roll that moves leadership
// back to preferred replicas.
func ElectPreferredLeaders() PlanOption {
	return planOptionFunc(func(c *planConfig) { c.elect = true })
}

// FinalizeReleaseDefaults also finalizes the features each target release
// turns on for new clusters (group.version, transaction.version, …), as
// `kafka-features upgrade --release-version` does, minus kraft.version. By
// default a plan finalizes only metadata.version, and other features only
// where [Target.Features] names them.
func FinalizeReleaseDefaults() PlanOption {
	return planOptionFunc(func(c *planConfig) { c.releaseDefaults = true })
}

// ErrUnsupportedPlan reports a target that needs work kupgrade cannot plan.
var ErrUnsupportedPlan = errors.New("upgrade: cannot plan")

// NewPlan plans how to take the cluster in state to target. It is pure: the
// route comes from [compat.Route] (which explains impossible requests with a
// *compat.RouteError), and each roll becomes one restart step per node.
//
// ZooKeeper mode: a roll onto the new binaries with
// inter.broker.protocol.version (and log.message.format.version where it
// applies) pinned to the old value, then a roll raising the pin, then (only
// where the message format was pinned) a third roll. KRaft: controllers
// first, then brokers, then finalize steps; combined nodes roll with the
// controllers. A KRaft downgrade (a target older than the nodes) goes the
// other way, as the route says: the safe feature downgrades first
// (metadata.version to the newest level the target supports), then a bake of
// at least [SnapshotWait] (the older release needs a metadata snapshot at
// the lowered levels to start), then the brokers, then the controllers.
// Within a roll the Runner puts the active
// controller (or the ZooKeeper controller broker) last.
//
// The plan records the levels finalized in state ([Plan.Finalized]), for
// [NewRollbackPlan].
func NewPlan(state compat.State, target Target, opts ...PlanOption) (Plan, error) {
	var cfg planConfig
	for _, o := range opts {
		o.applyPlan(&cfg)
	}
	if cfg.bake < 0 {
		return Plan{}, fmt.Errorf("upgrade: BakeTime(%v) is negative", cfg.bake)
	}
	if cfg.snapshotInterval < 0 {
		return Plan{}, fmt.Errorf("upgrade: MetadataSnapshotInterval(%v) is negative", cfg.snapshotInterval)
	}
	to := target.Version
	if to.IsZero() {
		return Plan{}, fmt.Errorf("%w: the target has no release", ErrUnsupportedPlan)
	}
	var legs []compat.Release
	for _, r := range target.Via {
		if len(legs) > 0 && !legs[len(legs)-1].Less(r) || !r.Less(to) {
			return Plan{}, fmt.Errorf("%w: Via %v must ascend and stay below the target %v", ErrUnsupportedPlan, target.Via, to)
		}
		legs = append(legs, r)
	}
	legs = append(legs, to)
	var ropts []compat.RouteOption
	if !cfg.releaseDefaults {
		ropts = append(ropts, compat.FinalizeMetadataVersionOnly())
	}
	p := Plan{Version: PlanVersion, Mode: state.Mode, Target: to}
	if len(state.Finalized) > 0 {
		p.Finalized = maps.Clone(state.Finalized)
	}
	roles := map[int32][]node.Role{}
	for _, n := range state.Nodes {
		r := nodeRoles(n)
		roles[n.ID] = r
		p.Nodes = append(p.Nodes, compat.NodeState{ID: n.ID, Roles: r, Release: n.Release, IBPV: n.IBPV, LMFV: n.LMFV})
	}
	if err := migrationRoles(state, roles, cfg); err != nil {
		return Plan{}, err
	}
	p.Steps = append(p.Steps, Step{Kind: StepPreflight, Node: -1, Reversible: true, Why: "reads only",
		Reason: "check that the nodes and releases are those planned for and that no partition is offline or under min ISR"})
	roll, hop, migrationHop := 0, 0, 0
	cur := state
	for _, leg := range legs {
		route, err := compat.Route(cur, leg, ropts...)
		if err != nil {
			return Plan{}, err
		}
		p.Notes = append(p.Notes, route.Notes...)
		for _, h := range route.Hops {
			hop++
			if h.Kind == compat.Migration {
				if err := migratable(cur, route); err != nil {
					return Plan{}, err
				}
				if roll, err = p.addMigrationHop(hop, h, roles, roll, cfg, cur); err != nil {
					return Plan{}, err
				}
				migrationHop = hop
			} else {
				roll = p.addHop(hop, h, roles, roll, target, cfg)
			}
			if h.To != to && !slices.Contains(p.Via, h.To) {
				p.Via = append(p.Via, h.To)
			}
		}
		cur = stateAfter(cur, route)
	}
	if extra := unplannedFeatures(p.Steps, target.Features); len(extra) > 0 {
		return Plan{}, fmt.Errorf("%w: Target.Features %v: no hop of the route to %v offers these levels", ErrUnsupportedPlan, extra, to)
	}
	p.setPhases(migrationHop)
	p.ID = planID(p)
	return p, nil
}

// addHop appends the steps of hop h (numbered hop, from 1) and returns the
// last roll number.
func (p *Plan) addHop(hop int, h compat.Hop, roles map[int32][]node.Role, roll int, target Target, cfg planConfig) int {
	for _, pre := range h.Preconditions {
		p.Notes = append(p.Notes, fmt.Sprintf("hop %d (%v → %v): before it, %s", hop, h.From, h.To, pre))
	}
	var finals []Step
	lowered := false // feature levels lowered, no restart since
	for _, s := range h.Actions {
		if s.Optional {
			if extra := wanted(s.Features, target.Features); len(extra) > 0 && s.Kind == compat.UpdateFeatures {
				finals = append(finals, finalizeStep(hop, s, extra, cfg))
				continue
			}
			p.Notes = append(p.Notes, fmt.Sprintf("hop %d: not planned (an explicit decision): %v — %s", hop, s, s.Reason))
			continue
		}
		switch s.Kind {
		case compat.RollBinaries, compat.RollConfig:
			if lowered {
				p.Steps = append(p.Steps, snapshotBake(hop, cfg))
				lowered = false
			}
			roll++
			ch := node.Change{Set: maps.Clone(s.Set), Unset: slices.Clone(s.Unset)}
			if s.Kind == compat.RollBinaries {
				ch.Version = s.Release.String()
			}
			for _, id := range rollNodes(s, roles, cfg) {
				p.Steps = append(p.Steps, Step{Kind: StepRestart, Hop: hop, Roll: roll, Node: id, Roles: roles[id],
					Change: ch, Reversible: s.Reversible, Why: reversibleWhy(s), Hold: !s.Reversible, Reason: s.Reason})
			}
			if cfg.elect && s.Role != node.RoleController {
				p.Steps = append(p.Steps, Step{Kind: StepElectLeaders, Hop: hop, Node: -1, Reversible: true,
					Why: "leadership can move again at any time", Reason: "move leadership back to preferred replicas after the roll"})
			}
		case compat.UpdateFeatures:
			if s.Downgrade {
				// Where the route puts it: before the rolls onto releases
				// that cannot run the higher levels.
				p.Steps = append(p.Steps, finalizeStep(hop, s, s.Features, cfg))
				lowered = true
				continue
			}
			finals = append(finals, finalizeStep(hop, s, s.Features, cfg))
		case compat.ProvisionControllers:
			p.Steps = append(p.Steps, Step{Kind: StepManual, Hop: hop, Node: -1, Reversible: s.Reversible, Why: reversibleWhy(s), Hold: true,
				Reason: "ZooKeeper to KRaft migration on " + h.To.String() + ": " + s.String() + " — " + s.Reason})
		}
	}
	if cfg.bake > 0 && len(finals) > 0 {
		p.Steps = append(p.Steps, Step{Kind: StepBake, Hop: hop, Node: -1, Duration: cfg.bake, Reversible: true,
			Why: "waits only", Reason: "let the new binaries run before finalizing"})
	}
	p.Steps = append(p.Steps, finals...)
	return roll
}

// stateAfter is the state of the cluster once route's required steps are
// done: every node on the target, pins as the rolls left them, features as
// finalized.
func stateAfter(s compat.State, route compat.RoutePlan) compat.State {
	out := s
	out.Nodes = slices.Clone(s.Nodes)
	out.Finalized = maps.Clone(s.Finalized)
	for _, h := range route.Hops {
		for _, st := range h.Actions {
			if st.Optional {
				continue
			}
			for i := range out.Nodes {
				n := &out.Nodes[i]
				if (st.Kind == compat.RollBinaries || st.Kind == compat.RollConfig) && slices.Contains(st.Nodes, n.ID) {
					if st.Kind == compat.RollBinaries {
						n.Release = st.Release
					}
					for k, v := range st.Set {
						switch k {
						case "inter.broker.protocol.version":
							n.IBPV = compat.Static(v)
						case "log.message.format.version":
							n.LMFV = compat.Static(v)
						}
					}
					for _, k := range st.Unset {
						switch k {
						case "inter.broker.protocol.version":
							n.IBPV = compat.Default()
						case "log.message.format.version":
							n.LMFV = compat.Default()
						}
					}
				}
			}
			if st.Kind == compat.UpdateFeatures && !st.Downgrade {
				if out.Finalized == nil {
					out.Finalized = compat.FeatureLevels{}
				}
				maps.Copy(out.Finalized, st.Features)
			}
		}
		if h.Kind == compat.Migration {
			out.Mode = compat.ModeKRaft
		}
	}
	return out
}

func nodeRoles(n compat.NodeState) []node.Role {
	var out []node.Role
	if n.IsBroker() {
		out = append(out, node.RoleBroker)
	}
	if n.IsController() {
		out = append(out, node.RoleController)
	}
	return out
}

func reversibleWhy(s compat.Action) string {
	if s.Reversible {
		switch s.Kind {
		case compat.RollBinaries:
			return "the node can be rolled back to its old release while pins are in place"
		case compat.UpdateFeatures:
			return "no metadata change in the way: a safe downgrade can undo it"
		}
		return "can be rolled back"
	}
	switch s.Kind {
	case compat.RollConfig:
		return "raising inter.broker.protocol.version lets brokers use the new protocol; older releases cannot read what they write"
	case compat.UpdateFeatures:
		return "crosses a metadata change: Kafka refuses to downgrade it"
	}
	return "cannot be undone"
}

func finalizeStep(hop int, s compat.Action, levels compat.FeatureLevels, cfg planConfig) Step {
	st := Step{Kind: StepFinalize, Hop: hop, Node: -1, Features: maps.Clone(levels), Downgrade: s.Downgrade,
		Reversible: s.Reversible, Why: reversibleWhy(s), Reason: s.Reason}
	st.Hold = !st.Reversible || cfg.finalizeLater
	return st
}

// wanted returns the levels of offered that the target asks for.
func wanted(offered, asked compat.FeatureLevels) compat.FeatureLevels {
	out := compat.FeatureLevels{}
	for f, l := range offered {
		if a, ok := asked[f]; ok && a == l {
			out[f] = l
		}
	}
	return out
}

// unplannedFeatures returns the target's feature levels that no finalize
// step sets.
func unplannedFeatures(steps []Step, asked compat.FeatureLevels) compat.FeatureLevels {
	out := compat.FeatureLevels{}
	for f, l := range asked {
		found := false
		for _, s := range steps {
			if s.Kind == StepFinalize && s.Features[f] == l {
				found = true
			}
		}
		if !found {
			out[f] = l
		}
	}
	return out
}

func planID(p Plan) string {
	p.ID = ""
	p.Notes = nil
	b, _ := json.Marshal(p)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// Restarts returns the restart steps, in plan order.
func (p Plan) Restarts() []Step {
	var out []Step
	for _, s := range p.Steps {
		if s.Kind == StepRestart {
			out = append(out, s)
		}
	}
	return out
}

// Reversible reports whether every step of the plan can be undone.
func (p Plan) Reversible() bool {
	for _, s := range p.Steps {
		if !s.Reversible {
			return false
		}
	}
	return true
}

// String renders the plan as a table: the dry run.
func (p Plan) String() string {
	var b strings.Builder
	from := map[string]bool{}
	var froms []string
	for _, n := range p.Nodes {
		if s := n.Release.String(); !from[s] {
			from[s] = true
			froms = append(froms, s)
		}
	}
	slices.Sort(froms)
	fmt.Fprintf(&b, "plan %s: %v cluster %s → %v, %d steps", p.ID, p.Mode, strings.Join(froms, "+"), p.Target, len(p.Steps))
	if len(p.Via) > 0 {
		parts := make([]string, len(p.Via))
		for i, r := range p.Via {
			parts[i] = r.String()
		}
		fmt.Fprintf(&b, " via %s", strings.Join(parts, ", "))
	}
	b.WriteString("\n")
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	noReturn := p.PointOfNoReturn()
	phased := slices.ContainsFunc(p.Steps, func(s Step) bool { return s.Phase != "" })
	if phased {
		fmt.Fprintln(w, "#\tHOP\tPHASE\tSTEP\tNODE\tCHANGE\tREVERSIBLE\tHOLD")
	} else {
		fmt.Fprintln(w, "#\tHOP\tSTEP\tNODE\tCHANGE\tREVERSIBLE\tHOLD")
	}
	for i, s := range p.Steps {
		hop, node, change := "-", "-", "-"
		if s.Hop > 0 {
			hop = fmt.Sprint(s.Hop)
		}
		if phased {
			hop += "\t" + cmp.Or(string(s.Phase), "-")
		}
		if s.Node >= 0 {
			node = fmt.Sprintf("%d %s", s.Node, rolesString(s.Roles))
		}
		if len(s.Nodes) > 0 {
			node = fmt.Sprint(s.Nodes)
		}
		switch s.Kind {
		case StepRestart, StepStopWorld, StepRestartReplacement, StepProvision:
			change = s.Change.String()
		case StepFinalize:
			change = featuresString(s.Features)
			if s.Downgrade {
				change = "downgrade " + change
			}
		case StepBake:
			change = s.Duration.String()
		case StepManual:
			change = "not automated"
		case StepProvisionController:
			change = s.Change.String()
		case StepAwaitMigration:
			change = "metadata copied from ZooKeeper"
		}
		rev := "yes"
		if !s.Reversible {
			rev = "NO"
		}
		hold := ""
		if s.Hold {
			hold = "hold"
		}
		if i == noReturn {
			hold += " (point of no return)"
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", i+1, hop, s.Kind, node, change, rev, hold)
	}
	w.Flush()
	if noReturn >= 0 {
		fmt.Fprintf(&b, "point of no return: step %d; before it the migration can be reverted to ZooKeeper mode (NewRollbackPlan), after it not\n", noReturn+1)
	}
	for _, n := range p.Notes {
		b.WriteString("note: " + n + "\n")
	}
	return b.String()
}
