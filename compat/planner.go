package compat

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/kupgrade/kupgrade/node"
)

// The planner behind Route: one method per kind of hop, each advancing the
// sim so that the next hop starts from the state the previous one leaves.

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
	for _, s := range h.Actions {
		required = required || !s.Optional
	}
	if required {
		p.plan.Hops = append(p.plan.Hops, h)
		return
	}
	for _, s := range h.Actions {
		p.note("optional decision on %v: %v (%s)", h.To, s, s.Reason)
	}
}

// stop returns the release to use as an intermediate stop on a line: its
// newest listed patch, or a newer patch of it that a node already runs (with
// AllowUnlistedPatch), so that no node is rolled down.
func (c *sim) stop(line Release) Release {
	r := latestPatch(line)
	for _, n := range c.nodes {
		if n.release.Line() == line.Line() && r.Less(n.release) {
			r = n.release
		}
	}
	return r
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
	// Route has refused MigrateToKRaft for targets other than 3.9 and 4.x.
	toKRaft := t.AtLeast(v(4, 0)) || p.cfg.migrate
	zkTarget := t
	if t.AtLeast(v(4, 0)) {
		zkTarget = c.stop(v(3, 9))
	}
	oldest, newest := c.releaseRange()
	// KIP-902: 3.6 and later ship the ZooKeeper 3.8 client. If a node already
	// runs 3.6 or later, the ensemble evidently works with it, and no node
	// is rolled down to 3.5.
	if oldest.Less(v(2, 4)) && zkTarget.AtLeast(v(3, 6)) && newest.Less(v(3, 6)) {
		mid := c.stop(v(3, 5))
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
	h := Hop{Kind: ZooKeeperUpgrade, Mode: ModeZooKeeper, From: oldest, To: to, Reason: reason}
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
		st := Action{Kind: RollBinaries, Role: node.RoleBroker, Nodes: roll, Release: to, Set: map[string]string{}, Reversible: true}
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
		h.Actions = append(h.Actions, st)
	}
	if pin.Less(target) {
		// After the binary roll every restarted broker is pinned; the others
		// keep what they have, which may already be the target (a raise
		// that was under way).
		raise := c.ids(func(n simNode) bool {
			mv, _ := n.effectiveIBPV()
			return slices.Contains(roll, n.id) || mv != target
		})
		st := Action{Kind: RollConfig, Role: node.RoleBroker, Nodes: raise, Set: map[string]string{"inter.broker.protocol.version": target.Name},
			Reason: fmt.Sprintf("once every broker runs %v and behaves, raise inter.broker.protocol.version to %v and restart the brokers one at a time; once they use it the cluster cannot be downgraded to an older release", to, target)}
		if pin.Less(mvNamed("2.1-IV0")) && !target.Less(mvNamed("2.1-IV0")) {
			st.Reason += " (in particular not to one before 2.1, whose offset schemas change)"
		}
		if adv.Clear {
			st.Unset = []string{"log.message.format.version"}
			st.Reason += "; remove log.message.format.version, which " + target.Name + " ignores (KIP-724): the message format becomes v2 whatever it says"
		}
		h.Actions = append(h.Actions, st)
		if adv.ThirdRoll {
			third := Action{Kind: RollConfig, Role: node.RoleBroker, Nodes: c.ids(func(simNode) bool { return true }), Optional: true,
				Reason: "the message format stays pinned; once (most) consumers are 0.11.0 or newer, move it to the new format with one more roll (older consumers then need down-conversion)"}
			if adv.ThirdRollValue != "" {
				third.Set = map[string]string{"log.message.format.version": adv.ThirdRollValue}
			} else {
				third.Unset = []string{"log.message.format.version"}
			}
			h.Actions = append(h.Actions, third)
		}
	}
	h.Done = c.ids(func(n simNode) bool { return !slices.Contains(roll, n.id) && n.release == to })
	if len(h.Actions) == 0 {
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
	h := Hop{Kind: Migration, Mode: ModeMigrating, From: bridge, To: bridge, Preconditions: migrationPreconditions,
		Reason: fmt.Sprintf("move the metadata from ZooKeeper to a KRaft controller quorum on %v; every step can be reverted until the last one", bridge)}
	brokers := c.ids(func(simNode) bool { return true })
	h.Actions = append(h.Actions,
		provisionStep(bridge, mv),
		enterMigrationStep(brokers),
		brokersToKRaftStep(brokers, c.anyLMFVSet()),
		finalizeMigrationStep(nil),
	)
	p.add(h)
	for i := range c.nodes {
		n := &c.nodes[i]
		n.mode, n.ibpv, n.lmfv, n.migration = ModeKRaft, Default(), Default(), false
	}
	c.mode = ModeKRaft
	c.ghost = bridge
	c.finalized = FeatureLevels{FeatureMetadataVersion: mv.Level}
	return nil
}

func (c *sim) anyLMFVSet() bool {
	return len(c.ids(func(n simNode) bool { return n.lmfvSet() })) > 0
}

func provisionStep(bridge Release, mv MetadataVersion) Action {
	return Action{Kind: ProvisionControllers, Role: node.RoleController, Release: bridge, Reversible: true,
		Set: map[string]string{"process.roles": "controller", "zookeeper.metadata.migration.enable": "true"},
		Requires: []string{"node.id (distinct from every broker.id)", "controller.quorum.bootstrap.servers (or controller.quorum.voters)",
			"controller.listener.names and listeners", "zookeeper.connect", "kafka-storage format with the ZooKeeper cluster's id and --release-version " + mv.Name},
		Reason: fmt.Sprintf("start a KRaft controller quorum on %v in migration mode, formatted at metadata.version %v; until the brokers join it, removing it undoes the step", bridge, mv)}
}

func enterMigrationStep(brokers []int32) Action {
	return Action{Kind: RollConfig, Role: node.RoleBroker, Nodes: brokers, Reversible: true,
		Set:      map[string]string{"zookeeper.metadata.migration.enable": "true"},
		Requires: []string{"controller.quorum.bootstrap.servers (or controller.quorum.voters)", "controller.listener.names", "listener.security.protocol.map entry for the controller listener"},
		Reason:   "restart the brokers in migration mode, keeping inter.broker.protocol.version; after the last one the controller copies the metadata from ZooKeeper (\"Completed migration of metadata from Zookeeper to KRaft\") and writes to both; reverting follows Apache's migration revert steps"}
}

func brokersToKRaftStep(brokers []int32, lmfv bool) Action {
	st := Action{Kind: RollConfig, Role: node.RoleBroker, Nodes: brokers, Reversible: true,
		Set:      map[string]string{"process.roles": "broker"},
		Unset:    []string{"broker.id", "zookeeper.connect", "zookeeper.metadata.migration.enable", "inter.broker.protocol.version", "control.plane.listener.name"},
		Requires: []string{"node.id equal to the broker's broker.id", "controller.quorum.bootstrap.servers (or controller.quorum.voters)", "StandardAuthorizer instead of AclAuthorizer, if ACLs are used"},
		Reason:   "restart the brokers as KRaft brokers; while the controllers still write to ZooKeeper this can be reverted with Apache's migration revert steps"}
	if lmfv {
		st.Unset = append(st.Unset, "log.message.format.version")
	}
	return st
}

func finalizeMigrationStep(controllers []int32) Action {
	return Action{Kind: RollConfig, Role: node.RoleController, Nodes: controllers, Reversible: false,
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
	h := Hop{Kind: Migration, Mode: ModeMigrating, From: bridge, To: bridge, Preconditions: migrationPreconditions,
		Reason: fmt.Sprintf("finish the ZooKeeper to KRaft migration under way on %v", bridge)}
	controllers := c.ids(func(n simNode) bool { return n.controller && n.mode == ModeKRaft })
	if len(controllers) == 0 {
		h.Actions = append(h.Actions, provisionStep(bridge, mv))
		c.ghost = bridge
	}
	if enter := c.ids(func(n simNode) bool { return n.broker && !n.controller && n.mode == ModeZooKeeper && !n.migration }); len(enter) > 0 {
		h.Actions = append(h.Actions, enterMigrationStep(enter))
	}
	if zk := c.ids(func(n simNode) bool { return n.broker && !n.controller && n.mode == ModeZooKeeper }); len(zk) > 0 {
		h.Actions = append(h.Actions, brokersToKRaftStep(zk, c.anyLMFVSet()))
	}
	h.Done = c.ids(func(n simNode) bool { return n.mode == ModeKRaft && !n.migration })
	if fin := c.ids(func(n simNode) bool { return n.controller && n.migration }); len(fin) > 0 || len(controllers) == 0 {
		h.Actions = append(h.Actions, finalizeMigrationStep(fin))
	}
	p.add(h)
	for i := range c.nodes {
		n := &c.nodes[i]
		n.mode, n.migration = ModeKRaft, false
		n.ibpv, n.lmfv = Default(), Default()
	}
	c.mode = ModeKRaft
	if c.finalized.Level(FeatureMetadataVersion) == 0 {
		c.finalized = FeatureLevels{FeatureMetadataVersion: mv.Level}
	}
	if p.target == bridge {
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
	if _, newest := c.releaseRange(); newest.AtLeast(v(4, 0)) {
		if oldest.Less(v(3, 3)) {
			return incomplete("node(s) run %v while others run %v, before 3.3: 4.x cannot run next to them", newest, oldest)
		}
		mv, err := c.metadataVersion()
		if err != nil {
			return err
		}
		if mv.Less(min4xMV) {
			return incomplete("node(s) run %v while metadata.version is %v, which 4.x refuses to load", newest, mv)
		}
	}
	if t.AtLeast(v(4, 0)) {
		if oldest.Less(v(3, 3)) {
			mid := c.stop(v(3, 9))
			if err := p.kraftHop(c, mid, fmt.Sprintf("KRaft clusters older than 3.3 (a preview) go to 3.9 before 4.x, as the 4.0 upgrade notes advise; %v also finalizes metadata.version %v, above the 3.3-IV3 that 4.x needs", mid, lp(mid))); err != nil {
				return err
			}
		} else {
			mv, err := c.metadataVersion()
			if err != nil {
				return err
			}
			if mv.Less(min4xMV) {
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
	h := Hop{Kind: KRaftUpgrade, Mode: ModeKRaft, From: oldest, To: newest, Reason: reason}
	h.Actions = append(h.Actions, finalizeMVStep(cur, to))
	p.add(h)
	c.finalized[FeatureMetadataVersion] = to.Level
}

func finalizeMVStep(cur, to MetadataVersion) Action {
	st := Action{Kind: UpdateFeatures, Features: FeatureLevels{FeatureMetadataVersion: to.Level}}
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
	h := Hop{Kind: KRaftUpgrade, Mode: ModeKRaft, From: oldest, To: to, Reason: reason}
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
	roll := func(role node.Role, ids []int32, why string) {
		h.Actions = append(h.Actions, Action{Kind: RollBinaries, Role: role, Nodes: ids, Release: to, Set: maps.Clone(set), Unset: slices.Clone(unset), Reversible: true, Reason: why})
	}
	keep := fmt.Sprintf("metadata.version stays %v until finalized, so old and new nodes interoperate and a rollback to %v remains possible", cur, oldest)
	if !c.ghost.IsZero() && c.ghost != to {
		roll(node.RoleController, nil, fmt.Sprintf("upgrade the controllers one at a time to %v, the active controller last; %s", to, keep))
	}
	if ids := c.ids(func(n simNode) bool { return n.controller && n.release != to }); len(ids) > 0 {
		roll(node.RoleController, ids, fmt.Sprintf("upgrade the controllers (and combined nodes) one at a time to %v, the active controller last; %s", to, keep))
	}
	if ids := c.ids(func(n simNode) bool { return !n.controller && n.release != to }); len(ids) > 0 {
		roll(node.RoleBroker, ids, fmt.Sprintf("then upgrade the brokers one at a time to %v; %s", to, keep))
	}
	h.Done = c.ids(func(n simNode) bool { return n.release == to })
	if len(h.Actions) == 0 {
		h.Done = nil
	}

	target := lp(to)
	if cur.Less(target) {
		st := finalizeMVStep(cur, target)
		if oldest.Less(v(3, 3)) {
			st.Reason += "; from then on inter.broker.protocol.version is ignored and can be removed"
		}
		h.Actions = append(h.Actions, st)
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
		st := Action{Kind: UpdateFeatures, Features: on, Reversible: true, Optional: p.cfg.mvOnly,
			Reason: fmt.Sprintf("finalize the features %v enables on new clusters (what --release-version %v sets, without kraft.version); they can be safely downgraded: %s", to.Short(), to.Short(), strings.Join(notes, "; "))}
		h.Actions = append(h.Actions, st)
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
				h.Actions = append(h.Actions, Action{Kind: UpdateFeatures, Features: FeatureLevels{f.Name: maxLevel}, Reversible: true, Optional: true,
					Reason: fmt.Sprintf("%s=%d is production in %v but not on by default: %s", f.Name, maxLevel, to.Short(), fl.Note)})
			}
		}
		if to.AtLeast(v(4, 1)) && c.finalized.Level(FeatureKRaftVersion) < 1 {
			h.Actions = append(h.Actions, Action{Kind: UpdateFeatures, Features: FeatureLevels{FeatureKRaftVersion: 1}, Optional: true, Reversible: false,
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
	_, newest := c.releaseRange()
	h := Hop{Kind: Rollback, Mode: c.mode, From: newest, To: t,
		Reason: fmt.Sprintf("roll the nodes back to %v", t)}
	if p.cfg.migrate && c.mode == ModeZooKeeper {
		return &RouteError{Err: ErrUnsupportedRoute, Reason: fmt.Sprintf("MigrateToKRaft with a target (%v) older than node releases (%v)", t, newest),
			Suggestion: "plan the rollback first, then the migration"}
	}
	var err error
	switch c.mode {
	case ModeMigrating:
		return &RouteError{Err: ErrUnsupportedRoute, Reason: "a ZooKeeper to KRaft migration is under way",
			Suggestion: "revert the migration with Apache's migration revert steps, or finish it first"}
	case ModeZooKeeper:
		h.Actions, err = p.rollbackZooKeeper(c)
	case ModeKRaft:
		h.Actions, err = p.rollbackKRaft(c)
	}
	if err != nil {
		return err
	}
	h.Done = c.ids(func(n simNode) bool { return n.release == t })
	p.add(h)
	return nil
}

// rollbackZooKeeper returns the actions of a ZooKeeper-mode rollback to
// p.target: one roll back, keeping the pins the cluster speaks.
func (p *planner) rollbackZooKeeper(c *sim) ([]Action, error) {
	t := p.target
	oldest, newest := c.releaseRange()
	tlp := lp(t)
	var acts []Action
	if oldest.Less(v(2, 4)) && t.AtLeast(v(3, 6)) {
		return nil, &RouteError{Err: ErrUnsupportedRoute, Reason: fmt.Sprintf("nodes on %v cannot move straight to %v (KIP-902)", oldest, t),
			Suggestion: "roll every node back to " + oldest.String() + " first"}
	}
	pin, hi, err := c.clusterIBPV()
	if err != nil {
		return nil, err
	}
	if tlp.Less(hi) {
		return nil, &RouteError{Err: ErrDowngradePastIBPV,
			Reason:     fmt.Sprintf("inter.broker.protocol.version %v is in use, and %v knows only up to %v; once brokers use a raised protocol Kafka cannot be downgraded", hi, t, tlp),
			Suggestion: fmt.Sprintf("roll forward: finish the upgrade to %v", newest)}
	}
	for _, n := range c.nodes {
		if !n.lmfvSet() {
			continue
		}
		if _, err := ParseMetadataVersion(n.lmfv.Value, t); err != nil {
			return nil, &RouteError{Err: ErrDowngradePastIBPV, Reason: fmt.Sprintf("node %d sets log.message.format.version %s, which %v does not know", n.id, n.lmfv.Value, t),
				Suggestion: fmt.Sprintf("roll forward: finish the upgrade to %v", newest)}
		}
	}
	adv, err := c.adviseLMFV(pin, t)
	if err != nil {
		return nil, err
	}
	ids := c.needsRoll(t, pin, tlp, adv)
	st := Action{Kind: RollBinaries, Role: node.RoleBroker, Nodes: ids, Release: t, Reversible: true,
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
	acts = append(acts, st)
	return acts, nil
}

// rollbackKRaft returns the actions of a KRaft rollback to p.target:
// features the target does not support go down first (ELR depends on
// metadata.version, so it goes before it), then metadata.version, then the
// brokers and the controllers roll back.
func (p *planner) rollbackKRaft(c *sim) ([]Action, error) {
	t := p.target
	oldest, _ := c.releaseRange()
	tlp := lp(t)
	var acts []Action
	if err := c.checkControllers(); err != nil {
		return nil, err
	}
	if t.Less(v(3, 3)) {
		return nil, &RouteError{Err: ErrUnsupportedRoute, Reason: fmt.Sprintf("target %v: KRaft before 3.3 was a preview", t), Suggestion: "stay on 3.3 or newer"}
	}
	if oldest.Less(v(3, 3)) && t.AtLeast(v(4, 0)) {
		return nil, &RouteError{Err: ErrUnsupportedRoute, Reason: fmt.Sprintf("nodes on %v cannot move straight to %v", oldest, t), Suggestion: "roll every node back to " + oldest.String() + " first"}
	}
	cur, err := c.metadataVersion()
	if err != nil {
		return nil, err
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
			return nil, &RouteError{Err: ErrUnknownFeature, Reason: fmt.Sprintf("finalized feature %s=%d: %v", name, level, err),
				Suggestion: "disable the feature by hand if it is safe, then plan again"}
		}
		if level <= maxLevel {
			continue
		}
		if name == FeatureKRaftVersion {
			return nil, &RouteError{Err: ErrFeatureUpdateRefused,
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
			return nil, &RouteError{Err: ErrDowngradePastMetadataChange, Reason: reason, Suggestion: sugg}
		}
	}
	if len(down) > 0 {
		acts = append(acts, Action{Kind: UpdateFeatures, Features: down, Downgrade: true, Reversible: true,
			Reason: fmt.Sprintf("safely downgrade the features %v does not support: %s", t, strings.Join(notes, "; "))})
	}
	if tlp.Less(cur) {
		acts = append(acts, Action{Kind: UpdateFeatures, Features: FeatureLevels{FeatureMetadataVersion: tlp.Level}, Downgrade: true, Reversible: true,
			Reason: fmt.Sprintf("safely downgrade metadata.version from %v to %v, the newest %v supports; no level in between changed the metadata format", cur, tlp, t)})
	}
	if ids := c.ids(func(n simNode) bool { return !n.controller && n.release != t }); len(ids) > 0 {
		acts = append(acts, Action{Kind: RollBinaries, Role: node.RoleBroker, Nodes: ids, Release: t, Reversible: true,
			Reason: fmt.Sprintf("roll the brokers one at a time back to %v", t)})
	}
	if ids := c.ids(func(n simNode) bool { return n.controller && n.release != t }); len(ids) > 0 {
		acts = append(acts, Action{Kind: RollBinaries, Role: node.RoleController, Nodes: ids, Release: t, Reversible: true,
			Reason: fmt.Sprintf("then roll the controllers one at a time back to %v, the active controller last", t)})
	}
	return acts, nil
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
