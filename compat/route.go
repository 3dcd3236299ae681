package compat

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
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

// A StepKind says what a [Step] does.
type StepKind int

const (
	// RollBinaries restarts nodes one at a time on Step.Release, with
	// Step.Set and Step.Unset applied to their static configuration.
	RollBinaries StepKind = iota
	// RollConfig restarts nodes one at a time on the same binary with
	// Step.Set and Step.Unset applied.
	RollConfig
	// UpdateFeatures finalizes Step.Features with UpdateFeatures (an
	// upgrade, or a safe downgrade when Step.Downgrade is set). No restart.
	UpdateFeatures
	// ProvisionControllers starts a new KRaft controller quorum on
	// Step.Release for a ZooKeeper to KRaft migration.
	ProvisionControllers
)

var stepKindNames = [...]string{"roll-binaries", "roll-config", "update-features", "provision-controllers"}

// String returns "roll-binaries", "roll-config", "update-features" or
// "provision-controllers".
func (k StepKind) String() string {
	if k < 0 || int(k) >= len(stepKindNames) {
		return "StepKind(" + strconv.Itoa(int(k)) + ")"
	}
	return stepKindNames[k]
}

// MarshalText implements [encoding.TextMarshaler].
func (k StepKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText implements [encoding.TextUnmarshaler].
func (k *StepKind) UnmarshalText(b []byte) error {
	i := slices.Index(stepKindNames[:], string(b))
	if i < 0 {
		return fmt.Errorf("compat: invalid step kind %q", b)
	}
	*k = StepKind(i)
	return nil
}

// A Step is one action of a [Hop].
type Step struct {
	Kind StepKind `json:"kind"`
	// Role says which nodes a roll or provision step concerns: brokers
	// (broker-only nodes) or controllers (including combined nodes).
	Role Role `json:"role,omitempty"`
	// Nodes lists the node IDs to restart, ascending; the runner picks the
	// order (for example the active controller last). Empty with a Role
	// means every node of that role, such as controllers that a migration
	// provisions and whose IDs this package does not know.
	Nodes []int32 `json:"nodes,omitempty"`
	// Release is the software to run (RollBinaries, ProvisionControllers).
	Release Release `json:"release,omitempty"`
	// Set and Unset are static configuration changes to make on restart.
	Set   map[string]string `json:"set,omitempty"`
	Unset []string          `json:"unset,omitempty"`
	// Requires names settings this package cannot fill in because they
	// depend on the infrastructure (listeners, quorum addresses, IDs).
	Requires []string `json:"requires,omitempty"`
	// Features are the levels to finalize (UpdateFeatures).
	Features FeatureLevels `json:"features,omitempty"`
	// Downgrade marks an UpdateFeatures step as a safe downgrade.
	Downgrade bool `json:"downgrade,omitempty"`
	// Reversible reports whether the step can be undone: rolls can be
	// rolled back; raising inter.broker.protocol.version, finalizing a
	// metadata.version across a metadata change, finalizing a migration and
	// upgrading kraft.version cannot.
	Reversible bool `json:"reversible"`
	// Optional marks a decision for the operator: the route is complete
	// without it, and it must never be taken implicitly.
	Optional bool `json:"optional,omitempty"`
	// Reason explains the step to a human.
	Reason string `json:"reason"`
}

// String describes the step in one line, without its reason.
func (s Step) String() string {
	var b strings.Builder
	if s.Optional {
		b.WriteString("optional: ")
	}
	who := func() {
		switch s.Role {
		case RoleController:
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
			b.WriteString(" " + k + "=" + s.Set[k])
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
	Steps         []Step   `json:"steps"`
}

// Pins returns the settings that the hop holds fixed while new binaries roll
// out (the Set of its RollBinaries steps), such as
// inter.broker.protocol.version in ZooKeeper mode.
func (h Hop) Pins() map[string]string {
	out := map[string]string{}
	for _, s := range h.Steps {
		if s.Kind == RollBinaries {
			maps.Copy(out, s.Set)
		}
	}
	return out
}

// Raises returns the settings that the hop raises once every node runs To
// (the Set of its required RollConfig steps).
func (h Hop) Raises() map[string]string {
	out := map[string]string{}
	for _, s := range h.Steps {
		if s.Kind == RollConfig && !s.Optional && h.Kind != Migration {
			maps.Copy(out, s.Set)
		}
	}
	return out
}

// Finalizes returns the feature levels the hop finalizes (its required,
// upgrading UpdateFeatures steps).
func (h Hop) Finalizes() FeatureLevels {
	out := FeatureLevels{}
	for _, s := range h.Steps {
		if s.Kind == UpdateFeatures && !s.Optional && !s.Downgrade {
			maps.Copy(out, s.Features)
		}
	}
	return out
}

// Reversible reports whether every required step of the hop is reversible.
func (h Hop) Reversible() bool {
	for _, s := range h.Steps {
		if !s.Optional && !s.Reversible {
			return false
		}
	}
	return true
}

// Decisions returns the hop's optional steps: choices such as upgrading
// kraft.version that the route never takes implicitly.
func (h Hop) Decisions() []Step {
	var out []Step
	for _, s := range h.Steps {
		if s.Optional {
			out = append(out, s)
		}
	}
	return out
}

// String describes the hop and its steps on several lines.
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
	for i, s := range h.Steps {
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

// Reversible reports whether every required step of every hop is reversible.
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
// steps that say what to pin during a roll, what to raise after it, which
// features to finalize, and whether each step can be undone.
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
	if cfg.migrate && s.Mode == ZooKeeper && target.Less(v(4, 0)) && target.Line() != v(3, 9) {
		return RoutePlan{}, &RouteError{Err: ErrUnsupportedRoute,
			Reason:     fmt.Sprintf("MigrateToKRaft with target %v: kupgrade migrates on 3.9, the last bridge release", target),
			Suggestion: "target " + latestPatch(v(3, 9)).String() + " (or any 4.x release)"}
	}
	if s.Mode == ZooKeeper {
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
	case c.mode == ZooKeeper:
		err = p.zooKeeper(c)
	case c.mode == Migrating:
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

type planner struct {
	cfg    routeConfig
	target Release
	plan   RoutePlan
}

func (p *planner) note(format string, args ...any) {
	p.plan.Notes = append(p.plan.Notes, fmt.Sprintf(format, args...))
}

// add appends a hop with at least one required step. A hop that would hold
// only optional steps (the cluster is done, but choices remain) becomes notes.
func (p *planner) add(h Hop) {
	required := false
	for _, s := range h.Steps {
		required = required || !s.Optional
	}
	if required {
		p.plan.Hops = append(p.plan.Hops, h)
		return
	}
	for _, s := range h.Steps {
		p.note("optional decision on %v: %v (%s)", h.To, s, s.Reason)
	}
}

func latestPatch(line Release) Release {
	r, _ := LatestPatch(line)
	return r
}

func lp(r Release) MetadataVersion {
	mv, err := LatestProduction(r)
	if err != nil {
		panic(err) // releases reaching the planner were validated
	}
	return mv
}

// zooKeeper plans a ZooKeeper-mode cluster's route.
func (p *planner) zooKeeper(c *sim) error {
	t := p.target
	toKRaft := t.AtLeast(v(4, 0)) || p.cfg.migrate
	zkTarget := t
	if toKRaft {
		switch {
		case t.AtLeast(v(4, 0)):
			zkTarget = latestPatch(v(3, 9))
		}
	}
	oldest, _ := c.releaseRange()
	if oldest.Less(v(2, 4)) && zkTarget.AtLeast(v(3, 6)) {
		mid := latestPatch(v(3, 5))
		if err := p.zooKeeperHop(c, mid, fmt.Sprintf("clusters older than 2.4 must reach a release from 2.4 to 3.5 before 3.6 or later, which use the ZooKeeper 3.8 client (KIP-902); %v is the newest such release", mid)); err != nil {
			return err
		}
	}
	reason := fmt.Sprintf("rolling upgrade to %v in ZooKeeper mode", zkTarget)
	if zkTarget != t {
		reason = fmt.Sprintf("4.x has no ZooKeeper mode: upgrade to %v, the last bridge release, whose inter.broker.protocol.version %v is above the 3.4 that the migration needs", zkTarget, lp(zkTarget))
	}
	if err := p.zooKeeperHop(c, zkTarget, reason); err != nil {
		return err
	}
	if !toKRaft {
		return nil
	}
	if err := p.migration(c); err != nil {
		return err
	}
	if t != zkTarget {
		return p.kraftHop(c, t, fmt.Sprintf("rolling upgrade to %v in KRaft mode, now that the cluster runs KRaft", t))
	}
	return nil
}

// zooKeeperHop plans one ZooKeeper-mode rolling upgrade to release to and
// advances c.
func (p *planner) zooKeeperHop(c *sim, to Release, reason string) error {
	pin, hi, err := c.clusterIBPV()
	if err != nil {
		return err
	}
	target := lp(to)
	adv, err := c.adviseLMFV(pin, to)
	if err != nil {
		return err
	}
	oldest, _ := c.releaseRange()
	h := Hop{Kind: ZooKeeperUpgrade, Mode: ZooKeeper, From: oldest, To: to, Reason: reason}
	if to.AtLeast(v(3, 9)) && oldest.Less(v(3, 9)) {
		h.Preconditions = append(h.Preconditions, "the ZooKeeper ensemble runs 3.8.3 or newer (3.9 upgrade notes)")
	}
	allOnTo := len(c.ids(func(n simNode) bool { return n.release != to })) == 0
	raising := allOnTo && pin.Less(target) && hi == target // the raise roll was under way

	var roll []int32
	if !raising {
		roll = c.needsRoll(to, pin, target, adv)
	}
	if len(roll) > 0 {
		st := Step{Kind: RollBinaries, Role: RoleBroker, Nodes: roll, Release: to, Set: map[string]string{}, Reversible: true}
		if pin.Less(target) {
			st.Set["inter.broker.protocol.version"] = pin.Name
			st.Reason = fmt.Sprintf("upgrade the brokers one at a time to %v with inter.broker.protocol.version pinned to %v, the protocol the cluster speaks now, so old and new brokers keep talking; until the protocol is raised the brokers can still be rolled back to %v", to, pin, oldest)
		} else {
			st.Reason = fmt.Sprintf("upgrade the brokers one at a time to %v; the cluster already speaks %v, so nothing needs pinning", to, pin)
		}
		if repin := c.ids(func(n simNode) bool { return slices.Contains(roll, n.id) && n.release == to }); len(repin) > 0 {
			st.Reason += fmt.Sprintf("; node(s) %s already run %v without these settings and are restarted with them", joinIDs(repin), to)
		}
		if adv.Pin != "" {
			st.Set["log.message.format.version"] = adv.Pin
			st.Reason += "; " + adv.Reason
		} else if adv.Clear && !pin.Less(target) {
			st.Unset = append(st.Unset, "log.message.format.version")
			st.Reason += "; " + adv.Reason
		}
		if len(st.Set) == 0 {
			st.Set = nil
		}
		h.Steps = append(h.Steps, st)
	}
	if pin.Less(target) {
		// After the binary roll every restarted broker is pinned; the others
		// keep what they have, which may already be the target (a raise
		// that was under way).
		raise := c.ids(func(n simNode) bool {
			mv, _ := n.effectiveIBPV()
			return slices.Contains(roll, n.id) || mv != target
		})
		st := Step{Kind: RollConfig, Role: RoleBroker, Nodes: raise, Set: map[string]string{"inter.broker.protocol.version": target.Name},
			Reason: fmt.Sprintf("once every broker runs %v and behaves, raise inter.broker.protocol.version to %v and restart the brokers one at a time; once they use it the cluster cannot be downgraded to an older release", to, target)}
		if pin.Less(mvNamed("2.1-IV0")) && !target.Less(mvNamed("2.1-IV0")) {
			st.Reason += " (in particular not to one before 2.1, whose offset schemas change)"
		}
		if adv.Clear {
			st.Unset = []string{"log.message.format.version"}
			st.Reason += "; remove log.message.format.version, which " + target.Name + " ignores (KIP-724): the message format becomes v2 whatever it says"
		}
		h.Steps = append(h.Steps, st)
		if adv.ThirdRoll {
			third := Step{Kind: RollConfig, Role: RoleBroker, Nodes: c.ids(func(simNode) bool { return true }), Optional: true,
				Reason: "the message format stays pinned; once (most) consumers are 0.11.0 or newer, move it to the new format with one more roll (older consumers then need down-conversion)"}
			if adv.ThirdRollValue != "" {
				third.Set = map[string]string{"log.message.format.version": adv.ThirdRollValue}
			} else {
				third.Unset = []string{"log.message.format.version"}
			}
			h.Steps = append(h.Steps, third)
		}
	}
	h.Done = c.ids(func(n simNode) bool { return !slices.Contains(roll, n.id) && n.release == to })
	if len(h.Steps) == 0 {
		h.Done = nil
	}
	p.add(h)
	// Advance the model.
	for i := range c.nodes {
		n := &c.nodes[i]
		n.release = to
		if pin.Less(target) {
			n.ibpv = Static(target.Name)
		}
		switch {
		case adv.Clear:
			n.lmfv = Default()
		case adv.Pin != "":
			n.lmfv = Static(adv.Pin)
		}
	}
	return nil
}

// needsRoll returns the nodes a ZooKeeper-mode roll to release to must
// restart: those on another release, and those whose settings differ from
// the pins (inter.broker.protocol.version at pin unless it is already the
// target, and the message format advice).
func (c *sim) needsRoll(to Release, pin, target MetadataVersion, adv MessageFormatAdvice) []int32 {
	return c.ids(func(n simNode) bool {
		if n.release != to {
			return true
		}
		if mv, _ := n.effectiveIBPV(); pin.Less(target) && mv != pin {
			return true
		}
		return adv.Pin != "" && n.lmfv.Value != adv.Pin
	})
}

var migrationPreconditions = []string{
	"every broker has an explicit, non-negative broker.id (broker.id generation is incompatible with the migration)",
	"the KRaft controllers get node ids that no broker uses, and the ZooKeeper cluster's cluster id",
	"no inter.broker.protocol.version or metadata.version change while migrating: Kafka does not support it",
}

// migration plans a ZooKeeper to KRaft migration from a ZooKeeper cluster
// whose nodes all run one bridge release, and advances c to KRaft.
func (p *planner) migration(c *sim) error {
	bridge, _ := c.releaseRange()
	mv := lp(bridge)
	h := Hop{Kind: Migration, Mode: Migrating, From: bridge, To: bridge, Preconditions: migrationPreconditions,
		Reason: fmt.Sprintf("move the metadata from ZooKeeper to a KRaft controller quorum on %v; every step can be reverted until the last one", bridge)}
	brokers := c.ids(func(simNode) bool { return true })
	h.Steps = append(h.Steps,
		provisionStep(bridge, mv),
		enterMigrationStep(brokers),
		brokersToKRaftStep(brokers, c.anyLMFVSet()),
		finalizeMigrationStep(nil),
	)
	p.add(h)
	for i := range c.nodes {
		n := &c.nodes[i]
		n.mode, n.ibpv, n.lmfv, n.migration = KRaft, Default(), Default(), false
	}
	c.mode = KRaft
	c.ghost = bridge
	c.finalized = FeatureLevels{FeatureMetadataVersion: mv.Level}
	return nil
}

func (c *sim) anyLMFVSet() bool {
	return len(c.ids(func(n simNode) bool { return n.lmfvSet() })) > 0
}

func provisionStep(bridge Release, mv MetadataVersion) Step {
	return Step{Kind: ProvisionControllers, Role: RoleController, Release: bridge, Reversible: true,
		Set: map[string]string{"process.roles": "controller", "zookeeper.metadata.migration.enable": "true"},
		Requires: []string{"node.id (distinct from every broker.id)", "controller.quorum.bootstrap.servers (or controller.quorum.voters)",
			"controller.listener.names and listeners", "zookeeper.connect", "kafka-storage format with the ZooKeeper cluster's id and --release-version " + mv.Name},
		Reason: fmt.Sprintf("start a KRaft controller quorum on %v in migration mode, formatted at metadata.version %v; until the brokers join it, removing it undoes the step", bridge, mv)}
}

func enterMigrationStep(brokers []int32) Step {
	return Step{Kind: RollConfig, Role: RoleBroker, Nodes: brokers, Reversible: true,
		Set:      map[string]string{"zookeeper.metadata.migration.enable": "true"},
		Requires: []string{"controller.quorum.bootstrap.servers (or controller.quorum.voters)", "controller.listener.names", "listener.security.protocol.map entry for the controller listener"},
		Reason:   "restart the brokers in migration mode, keeping inter.broker.protocol.version; after the last one the controller copies the metadata from ZooKeeper (\"Completed migration of metadata from Zookeeper to KRaft\") and writes to both; reverting follows Apache's migration revert steps"}
}

func brokersToKRaftStep(brokers []int32, lmfv bool) Step {
	st := Step{Kind: RollConfig, Role: RoleBroker, Nodes: brokers, Reversible: true,
		Set:      map[string]string{"process.roles": "broker"},
		Unset:    []string{"broker.id", "zookeeper.connect", "zookeeper.metadata.migration.enable", "inter.broker.protocol.version", "control.plane.listener.name"},
		Requires: []string{"node.id equal to the broker's broker.id", "controller.quorum.bootstrap.servers (or controller.quorum.voters)", "StandardAuthorizer instead of AclAuthorizer, if ACLs are used"},
		Reason:   "restart the brokers as KRaft brokers; while the controllers still write to ZooKeeper this can be reverted with Apache's migration revert steps"}
	if lmfv {
		st.Unset = append(st.Unset, "log.message.format.version")
	}
	return st
}

func finalizeMigrationStep(controllers []int32) Step {
	return Step{Kind: RollConfig, Role: RoleController, Nodes: controllers, Reversible: false,
		Unset:  []string{"zookeeper.metadata.migration.enable", "zookeeper.connect"},
		Reason: "finalize the migration: restart the controllers without ZooKeeper; after this the cluster cannot return to ZooKeeper mode, and ZooKeeper can be decommissioned"}
}

// migrating plans the rest of a migration that is under way, then the KRaft
// route to the target.
func (p *planner) migrating(c *sim) error {
	oldest, newest := c.releaseRange()
	if oldest != newest {
		return &RouteError{Err: ErrUnsupportedRoute,
			Reason:     fmt.Sprintf("a migration is under way with nodes on %v and %v; Kafka migrates on a single release", oldest, newest),
			Suggestion: "put every node back on one release (the one the migration started on) before continuing"}
	}
	if oldest.Less(v(3, 4)) {
		return incomplete("migrating cluster on %v, which has no migration support (3.4+)", oldest)
	}
	bridge := oldest
	mv := lp(bridge)
	h := Hop{Kind: Migration, Mode: Migrating, From: bridge, To: bridge, Preconditions: migrationPreconditions,
		Reason: fmt.Sprintf("finish the ZooKeeper to KRaft migration under way on %v", bridge)}
	controllers := c.ids(func(n simNode) bool { return n.controller && n.mode == KRaft })
	if len(controllers) == 0 {
		h.Steps = append(h.Steps, provisionStep(bridge, mv))
		c.ghost = bridge
	}
	if enter := c.ids(func(n simNode) bool { return n.broker && !n.controller && n.mode == ZooKeeper && !n.migration }); len(enter) > 0 {
		h.Steps = append(h.Steps, enterMigrationStep(enter))
	}
	if zk := c.ids(func(n simNode) bool { return n.broker && !n.controller && n.mode == ZooKeeper }); len(zk) > 0 {
		h.Steps = append(h.Steps, brokersToKRaftStep(zk, c.anyLMFVSet()))
	}
	h.Done = c.ids(func(n simNode) bool { return n.mode == KRaft && !n.migration })
	if fin := c.ids(func(n simNode) bool { return n.controller && n.migration }); len(fin) > 0 || len(controllers) == 0 {
		h.Steps = append(h.Steps, finalizeMigrationStep(fin))
	}
	p.add(h)
	for i := range c.nodes {
		n := &c.nodes[i]
		n.mode, n.migration = KRaft, false
		n.ibpv, n.lmfv = Default(), Default()
	}
	c.mode = KRaft
	if c.finalized.Level(FeatureMetadataVersion) == 0 {
		c.finalized = FeatureLevels{FeatureMetadataVersion: mv.Level}
	}
	if p.target.Line() == bridge.Line() && p.target == bridge {
		return nil
	}
	return p.kraft(c)
}

// kraft plans a KRaft cluster's route, adding prerequisite hops for 4.x.
func (p *planner) kraft(c *sim) error {
	t := p.target
	if err := c.checkControllers(); err != nil {
		return err
	}
	oldest, _ := c.releaseRange()
	if oldest.Line() == v(2, 8) {
		return &RouteError{Err: ErrUnsupportedRoute, Reason: "KRaft in 2.8 was early access, without an upgrade path",
			Suggestion: "build a new cluster on a current release and move the data (for example with MirrorMaker 2)"}
	}
	if t.Less(v(3, 3)) {
		return &RouteError{Err: ErrUnsupportedRoute, Reason: fmt.Sprintf("target %v: KRaft before 3.3 was a preview", t),
			Suggestion: "target 3.3 or newer; " + latestPatch(v(3, 9)).String() + " is the usual stop before 4.x"}
	}
	if t.AtLeast(v(4, 0)) {
		if oldest.Less(v(3, 3)) {
			mid := latestPatch(v(3, 9))
			if err := p.kraftHop(c, mid, fmt.Sprintf("KRaft clusters older than 3.3 (a preview) go to 3.9 before 4.x, as the 4.0 upgrade notes advise; %v also finalizes metadata.version %v, above the 3.3-IV3 that 4.x needs", mid, lp(mid))); err != nil {
				return err
			}
		} else {
			mv, err := c.metadataVersion()
			if err != nil {
				return err
			}
			if mv.Less(Minimum4xMetadataVersion) {
				p.finalizeOnlyHop(c, fmt.Sprintf("4.x brokers refuse to load metadata.version %v; finalize before rolling any 4.x binary", mv))
			}
		}
	}
	return p.kraftHop(c, t, fmt.Sprintf("rolling upgrade to %v in KRaft mode", t))
}

// finalizeOnlyHop raises metadata.version to what the oldest node supports.
func (p *planner) finalizeOnlyHop(c *sim, reason string) {
	oldest, newest := c.releaseRange()
	cur, _ := c.metadataVersion()
	to := lp(oldest)
	h := Hop{Kind: KRaftUpgrade, Mode: KRaft, From: oldest, To: newest, Reason: reason}
	h.Steps = append(h.Steps, finalizeMVStep(cur, to))
	p.add(h)
	c.finalized[FeatureMetadataVersion] = to.Level
}

func finalizeMVStep(cur, to MetadataVersion) Step {
	st := Step{Kind: UpdateFeatures, Features: FeatureLevels{FeatureMetadataVersion: to.Level}}
	if err := CanDowngrade(to, cur); err == nil {
		st.Reversible = true
		st.Reason = fmt.Sprintf("finalize metadata.version %v (level %d); no level from %v up to it changed the metadata format, so a safe downgrade back stays possible", to, to.Level, cur)
	} else if de, ok := err.(*DowngradeError); ok {
		st.Reason = fmt.Sprintf("finalize metadata.version %v (level %d) once every node runs the new release; %v changed the metadata format, so this cannot be undone (the lowest level reachable afterwards is %v)", to, to.Level, de.Blocker, de.Floor)
	} else {
		st.Reason = fmt.Sprintf("finalize metadata.version %v (level %d); it cannot be undone", to, to.Level)
	}
	return st
}

// kraftHop plans one KRaft rolling upgrade to release to and advances c.
func (p *planner) kraftHop(c *sim, to Release, reason string) error {
	cur, err := c.metadataVersion()
	if err != nil {
		return err
	}
	oldest, _ := c.releaseRange()
	final := to == p.target
	h := Hop{Kind: KRaftUpgrade, Mode: KRaft, From: oldest, To: to, Reason: reason}
	if oldest.Less(v(4, 0)) && to.AtLeast(v(4, 0)) {
		h.Preconditions = append(h.Preconditions,
			"clients (including Streams and Connect) run 2.1 or newer: 4.0 removed older protocol versions (KIP-896; see CheckClient)",
			"brokers and controllers run on Java 17 or newer")
	}
	var unset []string
	if to.AtLeast(v(4, 0)) {
		if len(c.ids(func(n simNode) bool { return n.ibpvSet() })) > 0 {
			unset = append(unset, "inter.broker.protocol.version")
		}
		if c.anyLMFVSet() {
			unset = append(unset, "log.message.format.version")
		}
	}
	var set map[string]string
	if oldest.Less(v(3, 3)) {
		// The first 3.3+ start of a pre-3.3 KRaft cluster reads the static
		// inter.broker.protocol.version as its metadata.version: keep it.
		set = map[string]string{"inter.broker.protocol.version": cur.Name}
	}
	roll := func(role Role, ids []int32, why string) {
		h.Steps = append(h.Steps, Step{Kind: RollBinaries, Role: role, Nodes: ids, Release: to, Set: maps.Clone(set), Unset: slices.Clone(unset), Reversible: true, Reason: why})
	}
	keep := fmt.Sprintf("metadata.version stays %v until finalized, so old and new nodes interoperate and a rollback to %v remains possible", cur, oldest)
	if !c.ghost.IsZero() && c.ghost != to {
		roll(RoleController, nil, fmt.Sprintf("upgrade the controllers one at a time to %v, the active controller last; %s", to, keep))
	}
	if ids := c.ids(func(n simNode) bool { return n.controller && n.release != to }); len(ids) > 0 {
		roll(RoleController, ids, fmt.Sprintf("upgrade the controllers (and combined nodes) one at a time to %v, the active controller last; %s", to, keep))
	}
	if ids := c.ids(func(n simNode) bool { return !n.controller && n.release != to }); len(ids) > 0 {
		roll(RoleBroker, ids, fmt.Sprintf("then upgrade the brokers one at a time to %v; %s", to, keep))
	}
	h.Done = c.ids(func(n simNode) bool { return n.release == to })
	if len(h.Steps) == 0 {
		h.Done = nil
	}

	target := lp(to)
	if cur.Less(target) {
		st := finalizeMVStep(cur, target)
		if oldest.Less(v(3, 3)) {
			st.Reason += "; from then on inter.broker.protocol.version is ignored and can be removed"
		}
		h.Steps = append(h.Steps, st)
	}
	// The features the target release turns on for new clusters.
	defaults, err := ReleaseVersionLevels(target, to)
	if err != nil {
		return err
	}
	on := FeatureLevels{}
	var notes []string
	for _, f := range featureTable {
		want, ok := defaults[f.Name]
		if !ok || f.Name == FeatureKRaftVersion || want <= c.finalized.Level(f.Name) {
			continue
		}
		on[f.Name] = want
		fl, _ := f.Level(want)
		notes = append(notes, f.Name+"="+strconv.Itoa(int(want))+": "+fl.Note)
	}
	if len(on) > 0 {
		st := Step{Kind: UpdateFeatures, Features: on, Reversible: true, Optional: p.cfg.mvOnly,
			Reason: fmt.Sprintf("finalize the features %v enables on new clusters (what --release-version %v sets, without kraft.version); they can be safely downgraded: %s", to.Short(), to.Short(), strings.Join(notes, "; "))}
		h.Steps = append(h.Steps, st)
	}
	if final {
		for _, f := range featureTable {
			if f.Name == FeatureKRaftVersion {
				continue
			}
			maxLevel, _ := ProductionMaxLevel(f.Name, to)
			have := max(c.finalized.Level(f.Name), defaults[f.Name])
			if maxLevel > have {
				fl, _ := f.Level(maxLevel)
				h.Steps = append(h.Steps, Step{Kind: UpdateFeatures, Features: FeatureLevels{f.Name: maxLevel}, Reversible: true, Optional: true,
					Reason: fmt.Sprintf("%s=%d is production in %v but not on by default: %s", f.Name, maxLevel, to.Short(), fl.Note)})
			}
		}
		if to.AtLeast(v(4, 1)) && c.finalized.Level(FeatureKRaftVersion) < 1 {
			h.Steps = append(h.Steps, Step{Kind: UpdateFeatures, Features: FeatureLevels{FeatureKRaftVersion: 1}, Optional: true, Reversible: false,
				Requires: []string{"afterwards, replace controller.quorum.voters with controller.quorum.bootstrap.servers on every node"},
				Reason:   "a separate decision: upgrade the controller quorum from static to dynamic membership (kraft.version 1, KIP-853, supported from 4.1); it cannot be undone, and --release-version would do it silently"})
		}
	}
	p.add(h)
	for i := range c.nodes {
		n := &c.nodes[i]
		n.release = to
		if to.AtLeast(v(4, 0)) {
			n.ibpv, n.lmfv = Default(), Default()
		}
	}
	if !c.ghost.IsZero() {
		c.ghost = to
	}
	if c.finalized == nil {
		c.finalized = FeatureLevels{}
	}
	c.finalized[FeatureMetadataVersion] = target.Level
	if !p.cfg.mvOnly {
		maps.Copy(c.finalized, on)
	}
	return nil
}

// rollback plans a return to an older release, if nothing irreversible is
// in the way.
func (p *planner) rollback(c *sim) error {
	t := p.target
	oldest, newest := c.releaseRange()
	tlp := lp(t)
	h := Hop{Kind: Rollback, Mode: c.mode, From: newest, To: t,
		Reason: fmt.Sprintf("roll the nodes back to %v", t)}
	if p.cfg.migrate && c.mode == ZooKeeper {
		return &RouteError{Err: ErrUnsupportedRoute, Reason: fmt.Sprintf("MigrateToKRaft with a target (%v) older than node releases (%v)", t, newest),
			Suggestion: "plan the rollback first, then the migration"}
	}
	switch c.mode {
	case Migrating:
		return &RouteError{Err: ErrUnsupportedRoute, Reason: "a ZooKeeper to KRaft migration is under way",
			Suggestion: "revert the migration with Apache's migration revert steps, or finish it first"}
	case ZooKeeper:
		if oldest.Less(v(2, 4)) && t.AtLeast(v(3, 6)) {
			return &RouteError{Err: ErrUnsupportedRoute, Reason: fmt.Sprintf("nodes on %v cannot move straight to %v (KIP-902)", oldest, t),
				Suggestion: "roll every node back to " + oldest.String() + " first"}
		}
		pin, hi, err := c.clusterIBPV()
		if err != nil {
			return err
		}
		if tlp.Less(hi) {
			return &RouteError{Err: ErrDowngradePastIBPV,
				Reason:     fmt.Sprintf("inter.broker.protocol.version %v is in use, and %v knows only up to %v; once brokers use a raised protocol Kafka cannot be downgraded", hi, t, tlp),
				Suggestion: fmt.Sprintf("roll forward: finish the upgrade to %v", newest)}
		}
		for _, n := range c.nodes {
			if !n.lmfvSet() {
				continue
			}
			if _, err := ParseMetadataVersion(n.lmfv.Value, t); err != nil {
				return &RouteError{Err: ErrDowngradePastIBPV, Reason: fmt.Sprintf("node %d sets log.message.format.version %s, which %v does not know", n.id, n.lmfv.Value, t),
					Suggestion: fmt.Sprintf("roll forward: finish the upgrade to %v", newest)}
			}
		}
		adv, err := c.adviseLMFV(pin, t)
		if err != nil {
			return err
		}
		ids := c.needsRoll(t, pin, tlp, adv)
		st := Step{Kind: RollBinaries, Role: RoleBroker, Nodes: ids, Release: t, Reversible: true,
			Reason: fmt.Sprintf("roll the brokers one at a time back to %v", t)}
		if pin.Less(tlp) {
			st.Set = map[string]string{"inter.broker.protocol.version": pin.Name}
			st.Reason += fmt.Sprintf(", keeping inter.broker.protocol.version pinned to %v", pin)
		}
		if adv.Pin != "" {
			if st.Set == nil {
				st.Set = map[string]string{}
			}
			st.Set["log.message.format.version"] = adv.Pin
			st.Reason += "; " + adv.Reason
		}
		h.Steps = append(h.Steps, st)
	case KRaft:
		if err := c.checkControllers(); err != nil {
			return err
		}
		if t.Less(v(3, 3)) {
			return &RouteError{Err: ErrUnsupportedRoute, Reason: fmt.Sprintf("target %v: KRaft before 3.3 was a preview", t), Suggestion: "stay on 3.3 or newer"}
		}
		if oldest.Less(v(3, 3)) && t.AtLeast(v(4, 0)) {
			return &RouteError{Err: ErrUnsupportedRoute, Reason: fmt.Sprintf("nodes on %v cannot move straight to %v", oldest, t), Suggestion: "roll every node back to " + oldest.String() + " first"}
		}
		cur, err := c.metadataVersion()
		if err != nil {
			return err
		}
		// Features first: ELR depends on metadata.version, so it goes down before it.
		down := FeatureLevels{}
		var notes []string
		for _, name := range c.finalized.Names() {
			if name == FeatureMetadataVersion {
				continue
			}
			level := c.finalized[name]
			maxLevel, err := ProductionMaxLevel(name, t)
			if err != nil {
				return &RouteError{Err: ErrUnknownFeature, Reason: fmt.Sprintf("finalized feature %s=%d: %v", name, level, err),
					Suggestion: "disable the feature by hand if it is safe, then plan again"}
			}
			if level <= maxLevel {
				continue
			}
			if name == FeatureKRaftVersion {
				return &RouteError{Err: ErrFeatureUpdateRefused,
					Reason:     fmt.Sprintf("kraft.version %d (a dynamic controller quorum) cannot be downgraded, and %v supports only up to %d", level, t, maxLevel),
					Suggestion: "roll back no further than " + latestPatch(v(3, 9)).String()}
			}
			down[name] = maxLevel
			if fl, ok := LookupFeature(name); ok {
				if l, ok := fl.Level(level); ok {
					notes = append(notes, fmt.Sprintf("%s %d→%d (%s)", name, level, maxLevel, l.Note))
				}
			}
		}
		if tlp.Less(cur) {
			if err := CanDowngrade(cur, tlp); err != nil {
				de, _ := err.(*DowngradeError)
				sugg := "roll forward instead"
				if de != nil {
					if l, ok := oldestLineReaching(de.Floor); ok {
						sugg = fmt.Sprintf("the oldest release this cluster can return to is %v (its latest production metadata.version is at or above the floor %v); otherwise roll forward", latestPatch(l), de.Floor)
					}
				}
				reason := fmt.Sprintf("%v supports metadata.version up to %v, but the cluster has finalized %v", t, tlp, cur)
				if de != nil {
					reason += fmt.Sprintf(", and %v (level %d) in between changed the metadata format: Kafka refuses to downgrade across it, and no release implements the unsafe downgrade", de.Blocker, de.Blocker.Level)
				}
				return &RouteError{Err: ErrDowngradePastMetadataChange, Reason: reason, Suggestion: sugg}
			}
		}
		if len(down) > 0 {
			h.Steps = append(h.Steps, Step{Kind: UpdateFeatures, Features: down, Downgrade: true, Reversible: true,
				Reason: fmt.Sprintf("safely downgrade the features %v does not support: %s", t, strings.Join(notes, "; "))})
		}
		if tlp.Less(cur) {
			h.Steps = append(h.Steps, Step{Kind: UpdateFeatures, Features: FeatureLevels{FeatureMetadataVersion: tlp.Level}, Downgrade: true, Reversible: true,
				Reason: fmt.Sprintf("safely downgrade metadata.version from %v to %v, the newest %v supports; no level in between changed the metadata format", cur, tlp, t)})
		}
		if ids := c.ids(func(n simNode) bool { return !n.controller && n.release != t }); len(ids) > 0 {
			h.Steps = append(h.Steps, Step{Kind: RollBinaries, Role: RoleBroker, Nodes: ids, Release: t, Reversible: true,
				Reason: fmt.Sprintf("roll the brokers one at a time back to %v", t)})
		}
		if ids := c.ids(func(n simNode) bool { return n.controller && n.release != t }); len(ids) > 0 {
			h.Steps = append(h.Steps, Step{Kind: RollBinaries, Role: RoleController, Nodes: ids, Release: t, Reversible: true,
				Reason: fmt.Sprintf("then roll the controllers one at a time back to %v, the active controller last", t)})
		}
	}
	h.Done = c.ids(func(n simNode) bool { return n.release == t })
	p.add(h)
	return nil
}

// oldestLineReaching returns the oldest KRaft line whose latest production
// metadata.version is at least floor.
func oldestLineReaching(floor MetadataVersion) (Release, bool) {
	for _, l := range lines {
		if l.minMV == 0 {
			continue
		}
		if !mvNamed(l.latest).Less(floor) {
			return l.line, true
		}
	}
	return Release{}, false
}
