package compat

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/kupgrade/kupgrade/node"
)

// A RouteOption configures [Route].
type RouteOption interface{ apply(*routeConfig) }

type routeOptionFunc func(*routeConfig)

func (f routeOptionFunc) apply(c *routeConfig) { f(c) }

type routeConfig struct {
	allowUnlisted bool
	mvOnly        bool
	migrate       bool
}

// AllowUnlistedPatch lets Route accept node and target releases that this
// package does not list, if their line is known (for example a 4.4.1 released
// after this package). By default such releases are refused with
// [ErrUnknownRelease], because every fact here was checked per release.
func AllowUnlistedPatch() RouteOption {
	return routeOptionFunc(func(c *routeConfig) { c.allowUnlisted = true })
}

// FinalizeMetadataVersionOnly makes KRaft hops finalize only
// metadata.version. By default a hop also raises the features that the
// target release turns on for new clusters (as `kafka-features upgrade
// --release-version` does, minus kraft.version); with this option they
// become optional steps.
func FinalizeMetadataVersionOnly() RouteOption {
	return routeOptionFunc(func(c *routeConfig) { c.mvOnly = true })
}

// MigrateToKRaft asks Route to migrate a ZooKeeper cluster to KRaft even when
// the target is 3.9.x, which still supports ZooKeeper. The migration always
// runs on 3.9 here, the last bridge release. Targets of 4.0 and later
// migrate without this option, since they have no ZooKeeper mode.
func MigrateToKRaft() RouteOption {
	return routeOptionFunc(func(c *routeConfig) { c.migrate = true })
}

// A HopKind says what kind of change a [Hop] makes.
type HopKind int

const (
	// ZooKeeperUpgrade is a rolling upgrade in ZooKeeper mode: new binaries
	// with inter.broker.protocol.version pinned, then a roll that raises it.
	ZooKeeperUpgrade HopKind = iota
	// Migration moves a ZooKeeper cluster to KRaft on one bridge release.
	Migration
	// KRaftUpgrade is a rolling upgrade in KRaft mode: controllers, then
	// brokers, then metadata.version and features are finalized. A hop
	// without rolls only finalizes.
	KRaftUpgrade
	// Rollback returns nodes to an older release, after downgrading any
	// feature levels the older release does not support.
	Rollback
)

var hopKindNames = [...]string{"zookeeper-upgrade", "migration", "kraft-upgrade", "rollback"}

// String returns "zookeeper-upgrade", "migration", "kraft-upgrade" or "rollback".
func (k HopKind) String() string {
	if k < 0 || int(k) >= len(hopKindNames) {
		return "HopKind(" + strconv.Itoa(int(k)) + ")"
	}
	return hopKindNames[k]
}

// MarshalText implements [encoding.TextMarshaler].
func (k HopKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText implements [encoding.TextUnmarshaler].
func (k *HopKind) UnmarshalText(b []byte) error {
	i := slices.Index(hopKindNames[:], string(b))
	if i < 0 {
		return fmt.Errorf("compat: invalid hop kind %q", b)
	}
	*k = HopKind(i)
	return nil
}

// An ActionKind says what an [Action] does.
type ActionKind int

const (
	// RollBinaries restarts nodes one at a time on Action.Release, with
	// Action.Set and Action.Unset applied to their static configuration.
	RollBinaries ActionKind = iota
	// RollConfig restarts nodes one at a time on the same binary with
	// Action.Set and Action.Unset applied.
	RollConfig
	// UpdateFeatures finalizes Action.Features with UpdateFeatures (an
	// upgrade, or a safe downgrade when Action.Downgrade is set). No restart.
	UpdateFeatures
	// ProvisionControllers starts a new KRaft controller quorum on
	// Action.Release for a ZooKeeper to KRaft migration.
	ProvisionControllers
)

var actionKindNames = [...]string{"roll-binaries", "roll-config", "update-features", "provision-controllers"}

// String returns "roll-binaries", "roll-config", "update-features" or
// "provision-controllers".
func (k ActionKind) String() string {
	if k < 0 || int(k) >= len(actionKindNames) {
		return "ActionKind(" + strconv.Itoa(int(k)) + ")"
	}
	return actionKindNames[k]
}

// MarshalText implements [encoding.TextMarshaler].
func (k ActionKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText implements [encoding.TextUnmarshaler].
func (k *ActionKind) UnmarshalText(b []byte) error {
	i := slices.Index(actionKindNames[:], string(b))
	if i < 0 {
		return fmt.Errorf("compat: invalid action kind %q", b)
	}
	*k = ActionKind(i)
	return nil
}

// An Action is one thing a [Hop] does: roll nodes, finalize features,
// provision controllers. Planning (upgrade.NewPlan) turns each roll into one
// step per node.
type Action struct {
	Kind ActionKind `json:"kind"`
	// Role says which nodes a roll or provision action concerns: brokers
	// (broker-only nodes) or controllers (including combined nodes).
	Role node.Role `json:"role,omitempty"`
	// Nodes lists the node IDs to restart, ascending; the runner picks the
	// order (for example the active controller last). Empty with a Role
	// means every node of that role, such as controllers that a migration
	// provisions and whose IDs this package does not know.
	Nodes []int32 `json:"nodes,omitempty"`
	// Release is the software to run (RollBinaries, ProvisionControllers).
	Release Release `json:"release,omitzero"`
	// Set and Unset are static configuration changes to make on restart.
	Set   map[string]string `json:"set,omitempty"`
	Unset []string          `json:"unset,omitempty"`
	// Requires names settings this package cannot fill in because they
	// depend on the infrastructure (listeners, quorum addresses, IDs).
	Requires []string `json:"requires,omitempty"`
	// Features are the levels to finalize (UpdateFeatures).
	Features FeatureLevels `json:"features,omitempty"`
	// Downgrade marks an UpdateFeatures action as a safe downgrade.
	Downgrade bool `json:"downgrade,omitempty"`
	// Reversible reports whether the action can be undone: rolls can be
	// rolled back; raising inter.broker.protocol.version, finalizing a
	// metadata.version across a metadata change, finalizing a migration and
	// upgrading kraft.version cannot.
	Reversible bool `json:"reversible"`
	// Optional marks a decision for the operator: the route is complete
	// without it, and it must never be taken implicitly.
	Optional bool `json:"optional,omitempty"`
	// Reason explains the action to a human.
	Reason string `json:"reason"`
}

// String describes the action in one line, without its reason.
func (s Action) String() string {
	var b strings.Builder
	if s.Optional {
		b.WriteString("optional: ")
	}
	who := func() {
		switch s.Role {
		case node.RoleController:
			b.WriteString(" controllers")
		default:
			b.WriteString(" brokers")
		}
		if len(s.Nodes) > 0 {
			b.WriteByte(' ')
			b.WriteString(joinIDs(s.Nodes))
		}
	}
	switch s.Kind {
	case RollBinaries:
		b.WriteString("roll")
		who()
		b.WriteString(" to " + s.Release.String())
	case RollConfig:
		b.WriteString("restart")
		who()
	case ProvisionControllers:
		b.WriteString("provision controllers on " + s.Release.String())
	case UpdateFeatures:
		if s.Downgrade {
			b.WriteString("downgrade ")
		} else {
			b.WriteString("finalize ")
		}
		b.WriteString(s.Features.String())
		if l := s.Features.Level(FeatureMetadataVersion); l > 0 {
			if mv, ok := mvLevel(l); ok {
				b.WriteString(" (" + mv.Name + ")")
			}
		}
	}
	if len(s.Set) > 0 {
		keys := slices.Sorted(maps.Keys(s.Set))
		b.WriteString(" set")
		for _, k := range keys {
			b.WriteString(" " + k + "=" + node.RedactValue(k, s.Set[k]))
		}
	}
	if len(s.Unset) > 0 {
		b.WriteString(" unset " + strings.Join(s.Unset, " "))
	}
	if s.Reversible {
		b.WriteString(" [reversible]")
	} else {
		b.WriteString(" [irreversible]")
	}
	return b.String()
}

func joinIDs(ids []int32) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.Itoa(int(id))
	}
	return strings.Join(parts, ",")
}

// A Hop takes the whole cluster from one release (or mode) to the next one
// that Kafka supports reaching directly.
type Hop struct {
	Kind HopKind `json:"kind"`
	// Mode is the cluster's mode during the hop (Migrating for Migration).
	Mode Mode `json:"mode"`
	// From is the oldest release running when the hop starts; To is the
	// release every node runs when it ends.
	From Release `json:"from"`
	To   Release `json:"to"`
	// Reason says why the hop exists.
	Reason string `json:"reason"`
	// Done lists nodes that already ran To when the plan was made: the hop's
	// binary rolls skip them, so a half-finished upgrade is continued, not
	// restarted (config rolls may still restart them).
	Done []int32 `json:"done,omitempty"`
	// Preconditions are facts this package cannot observe that the
	// operator must make true before the hop.
	Preconditions []string `json:"preconditions,omitempty"`
	Actions       []Action `json:"actions"`
}

// Pins returns the settings that the hop holds fixed while new binaries roll
// out (the Set of its RollBinaries actions), such as
// inter.broker.protocol.version in ZooKeeper mode.
func (h Hop) Pins() map[string]string {
	out := map[string]string{}
	for _, s := range h.Actions {
		if s.Kind == RollBinaries {
			maps.Copy(out, s.Set)
		}
	}
	return out
}

// Raises returns the settings that the hop raises once every node runs To
// (the Set of its required RollConfig actions).
func (h Hop) Raises() map[string]string {
	out := map[string]string{}
	for _, s := range h.Actions {
		if s.Kind == RollConfig && !s.Optional && h.Kind != Migration {
			maps.Copy(out, s.Set)
		}
	}
	return out
}

// Finalizes returns the feature levels the hop finalizes (its required,
// upgrading UpdateFeatures actions).
func (h Hop) Finalizes() FeatureLevels {
	out := FeatureLevels{}
	for _, s := range h.Actions {
		if s.Kind == UpdateFeatures && !s.Optional && !s.Downgrade {
			maps.Copy(out, s.Features)
		}
	}
	return out
}

// Reversible reports whether every required action of the hop is reversible.
func (h Hop) Reversible() bool {
	for _, s := range h.Actions {
		if !s.Optional && !s.Reversible {
			return false
		}
	}
	return true
}

// Decisions returns the hop's optional actions: choices such as upgrading
// kraft.version that the route never takes implicitly.
func (h Hop) Decisions() []Action {
	var out []Action
	for _, s := range h.Actions {
		if s.Optional {
			out = append(out, s)
		}
	}
	return out
}

// String describes the hop and its actions on several lines.
func (h Hop) String() string {
	var b strings.Builder
	if h.From == h.To {
		fmt.Fprintf(&b, "%v on %v", h.Kind, h.To)
	} else {
		fmt.Fprintf(&b, "%v %v → %v", h.Kind, h.From, h.To)
	}
	if len(h.Done) > 0 {
		fmt.Fprintf(&b, " (already done: %s)", joinIDs(h.Done))
	}
	for _, p := range h.Preconditions {
		b.WriteString("\n   before: " + p)
	}
	for i, s := range h.Actions {
		fmt.Fprintf(&b, "\n   %c. %v", 'a'+rune(i%26), s)
	}
	return b.String()
}

// A RoutePlan is the ordered list of hops that takes a cluster to a target
// release. It is plain data and round-trips through JSON.
type RoutePlan struct {
	Target Release `json:"target"`
	Hops   []Hop   `json:"hops"`
	// Notes are cluster-wide remarks, such as a half-finished upgrade being
	// continued.
	Notes []string `json:"notes,omitempty"`
}

// Reversible reports whether every required action of every hop is reversible.
func (p RoutePlan) Reversible() bool {
	for _, h := range p.Hops {
		if !h.Reversible() {
			return false
		}
	}
	return true
}

// Releases returns the release each hop ends on, in order (duplicates
// removed): the intermediate releases and the target.
func (p RoutePlan) Releases() []Release {
	var out []Release
	for _, h := range p.Hops {
		if len(out) == 0 || out[len(out)-1] != h.To {
			out = append(out, h.To)
		}
	}
	return out
}

// String describes the plan on several lines: one per hop and step.
func (p RoutePlan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "route to %v: %d hop", p.Target, len(p.Hops))
	if len(p.Hops) != 1 {
		b.WriteByte('s')
	}
	for _, n := range p.Notes {
		b.WriteString("\nnote: " + n)
	}
	for i, h := range p.Hops {
		fmt.Fprintf(&b, "\n%d. %v", i+1, h)
	}
	return b.String()
}

// Route plans how to take the cluster described by s to release target. It
// is pure: it reads s and Kafka's rules and returns hops, each with ordered
// actions that say what to pin during a roll, what to raise after it, which
// features to finalize, and whether each action can be undone.
//
// The rules it applies:
//
//   - ZooKeeper clusters stay in ZooKeeper mode up to 3.9. Targets of 4.0 and
//     later go through the 3.9 bridge: a ZooKeeper rolling upgrade to 3.9
//     (which raises inter.broker.protocol.version to 3.9, above the 3.4
//     that the migration needs), the migration, then a KRaft upgrade.
//   - ZooKeeper clusters older than 2.4 first move to 3.5 before reaching
//     3.6 or later (KIP-902: 3.6 ships the ZooKeeper 3.8 client).
//   - KRaft clusters below metadata.version 3.3-IV3 finalize it before any
//     4.x binary (4.x refuses to load older metadata); KRaft clusters from
//     before 3.3 (a preview) go to 3.9 first, as the 4.0 notes advise.
//   - A half-finished upgrade (mixed releases, or a pin not yet raised) is
//     recognised and continued: nodes already done are not restarted.
//   - A target older than some node is a rollback. It is planned only if
//     nothing irreversible happened: a raised inter.broker.protocol.version
//     or a metadata.version that cannot be safely downgraded make Route
//     return a *[RouteError] explaining why and what to do instead.
//   - kraft.version is never raised implicitly (a static to dynamic quorum
//     change is irreversible): from 4.1 it is offered as an optional step.
//
// Errors are *[RouteError]s that unwrap to a sentinel such as
// [ErrUnknownRelease], [ErrDowngradePastMetadataChange],
// [ErrDowngradePastIBPV], [ErrUnsupportedRoute] or [ErrIncompleteState].
func Route(s State, target Release, opts ...RouteOption) (RoutePlan, error) {
	var cfg routeConfig
	for _, o := range opts {
		o.apply(&cfg)
	}
	if err := s.validate(cfg.allowUnlisted); err != nil {
		return RoutePlan{}, err
	}
	if _, err := knownOrLine(target, cfg.allowUnlisted); err != nil {
		re := err.(*ReleaseError)
		sugg := "target a release compat lists, such as " + Newest().String()
		if lp, ok := LatestPatch(target); ok {
			sugg = "target " + lp.String() + ", the newest " + target.Short() + " release compat lists, or pass AllowUnlistedPatch"
		}
		return RoutePlan{}, &RouteError{Reason: fmt.Sprintf("target %v: %s", target, re.Reason), Suggestion: sugg, Err: ErrUnknownRelease}
	}
	c, err := newSim(s)
	if err != nil {
		return RoutePlan{}, err
	}
	if cfg.migrate && s.Mode == ModeZooKeeper && target.Less(v(4, 0)) && target.Line() != v(3, 9) {
		return RoutePlan{}, &RouteError{Err: ErrUnsupportedRoute,
			Reason:     fmt.Sprintf("MigrateToKRaft with target %v: kupgrade migrates on 3.9, the last bridge release", target),
			Suggestion: "target " + latestPatch(v(3, 9)).String() + " (or any 4.x release)"}
	}
	if s.Mode == ModeZooKeeper {
		if err := c.checkMessageFormats(); err != nil {
			return RoutePlan{}, err
		}
	}
	p := &planner{cfg: cfg, target: target, plan: RoutePlan{Target: target}}
	oldest, newest := c.releaseRange()
	if oldest != newest {
		p.note("the nodes run %v to %v: an earlier upgrade or rollback is under way, and this route continues it", oldest, newest)
	}
	switch {
	case target.Less(newest):
		err = p.rollback(c)
	case c.mode == ModeZooKeeper:
		err = p.zooKeeper(c)
	case c.mode == ModeMigrating:
		err = p.migrating(c)
	default:
		err = p.kraft(c)
	}
	if err != nil {
		return RoutePlan{}, err
	}
	if len(p.plan.Hops) == 0 {
		p.note("nothing to do: every node runs %v and every required version is finalized", target)
	}
	return p.plan, nil
}
