package compat

import (
	"errors"
	"fmt"
	"maps"
	"slices"
)

// sim is the planner's model of a cluster: it starts as the observed State
// and is advanced hop by hop as Route plans them.
type sim struct {
	mode      Mode
	nodes     []simNode     // sorted by ID
	finalized FeatureLevels // KRaft finalized features; nil if unknown
	// ghost is the release of a controller quorum that a planned migration
	// provisions; its node IDs are not known. Zero if none.
	ghost Release
}

type simNode struct {
	id         int32
	controller bool
	broker     bool
	release    Release
	mode       Mode // resolved: ZooKeeper or KRaft
	migration  bool
	ibpv, lmfv ConfigValue
}

func (n simNode) ibpvSet() bool { return n.ibpv.Explicit() }

// lmfvSet reports an explicitly set log.message.format.version.
func (n simNode) lmfvSet() bool { return n.lmfv.Explicit() }

func newSim(s State) (*sim, error) {
	c := &sim{mode: s.Mode, finalized: maps.Clone(s.Finalized)}
	for _, n := range s.Nodes {
		mode := n.Mode
		if mode == ModeUnknown {
			mode = s.Mode
		}
		c.nodes = append(c.nodes, simNode{
			id: n.ID, controller: n.IsController(), broker: n.IsBroker(),
			release: n.Release, mode: mode, migration: n.Migration, ibpv: n.IBPV, lmfv: n.LMFV,
		})
	}
	slices.SortFunc(c.nodes, func(a, b simNode) int { return int(a.id) - int(b.id) })
	return c, nil
}

func (c *sim) releaseRange() (oldest, newest Release) {
	for _, n := range c.nodes {
		if oldest.IsZero() || n.release.Less(oldest) {
			oldest = n.release
		}
		if newest.IsZero() || newest.Less(n.release) {
			newest = n.release
		}
	}
	if !c.ghost.IsZero() {
		if c.ghost.Less(oldest) {
			oldest = c.ghost
		}
		if newest.Less(c.ghost) {
			newest = c.ghost
		}
	}
	return oldest, newest
}

// effectiveIBPV returns the inter.broker.protocol.version a node runs with.
func (n simNode) effectiveIBPV() (MetadataVersion, error) {
	if !n.ibpv.Known() {
		return MetadataVersion{}, incomplete("node %d: inter.broker.protocol.version unknown", n.id)
	}
	if n.ibpv.Value == "" {
		return LatestProduction(n.release)
	}
	mv, err := ParseMetadataVersion(n.ibpv.Value, n.release)
	if err != nil {
		return MetadataVersion{}, &RouteError{Reason: fmt.Sprintf("node %d: %v", n.id, err), Err: ErrInvalidMetadataVersion,
			Suggestion: "fix the node's inter.broker.protocol.version"}
	}
	if mv.Unstable {
		return MetadataVersion{}, &RouteError{Reason: fmt.Sprintf("node %d runs inter.broker.protocol.version %v, which is not production in %v", n.id, mv, n.release),
			Err: ErrUnstableMetadataVersion, Suggestion: "pin a production version first"}
	}
	return mv, nil
}

// effectiveLMFV returns the message format a ZooKeeper-mode node uses.
func (n simNode) effectiveLMFV() (MetadataVersion, error) {
	if n.release.Less(v0(10, 0)) {
		return n.effectiveIBPV() // no setting yet: the format follows the protocol (v0)
	}
	if !n.lmfv.Known() {
		return MetadataVersion{}, incomplete("node %d: log.message.format.version unknown", n.id)
	}
	if n.lmfv.Value == "" {
		return DefaultMessageFormat(n.release)
	}
	mv, err := ParseMetadataVersion(n.lmfv.Value, n.release)
	if err != nil {
		return MetadataVersion{}, &RouteError{Reason: fmt.Sprintf("node %d: %v", n.id, err), Err: ErrInvalidMessageFormat,
			Suggestion: "fix the node's log.message.format.version"}
	}
	return mv, nil
}

// clusterIBPV returns the lowest and highest effective IBPV of the nodes.
func (c *sim) clusterIBPV() (lo, hi MetadataVersion, err error) {
	for i, n := range c.nodes {
		mv, err := n.effectiveIBPV()
		if err != nil {
			return lo, hi, err
		}
		if i == 0 || mv.Less(lo) {
			lo = mv
		}
		if i == 0 || hi.Less(mv) {
			hi = mv
		}
	}
	return lo, hi, nil
}

// clusterLMFV returns the lowest effective message format of the nodes.
func (c *sim) clusterLMFV() (MetadataVersion, error) {
	var lo MetadataVersion
	for i, n := range c.nodes {
		mv, err := n.effectiveLMFV()
		if err != nil {
			return lo, err
		}
		if i == 0 || mv.Less(lo) {
			lo = mv
		}
	}
	return lo, nil
}

// metadataVersion returns the KRaft cluster's metadata.version: the
// finalized level, checked to be production on every node, or, for a
// cluster from before 3.3, the lowest inter.broker.protocol.version.
func (c *sim) metadataVersion() (MetadataVersion, error) {
	if err := c.checkFinalized(); err != nil {
		return MetadataVersion{}, err
	}
	if level := c.finalized.Level(FeatureMetadataVersion); level > 0 {
		var mv MetadataVersion
		for _, n := range c.nodes {
			if n.release.Less(v(3, 3)) {
				// Before 3.3 the metadata version is the static IBPV, at
				// most the release's own.
				if lp, _ := LatestProduction(n.release); lp.Level < level {
					return MetadataVersion{}, &RouteError{Err: ErrIncompleteState,
						Reason:     fmt.Sprintf("finalized metadata.version level %d, but node %d runs %v, which knows versions up to %v (level %d)", level, n.id, n.release, lp, lp.Level),
						Suggestion: "inspect the cluster again"}
				}
				continue
			}
			got, err := LookupMetadataVersion(level, n.release)
			if err != nil {
				why := err.Error()
				if me, ok := err.(*MetadataVersionError); ok {
					why = me.Reason
				}
				return MetadataVersion{}, &RouteError{Err: errSentinel(err),
					Reason:     fmt.Sprintf("finalized metadata.version level %d, but node %d runs %v: %s", level, n.id, n.release, why),
					Suggestion: "kupgrade plans only with production metadata versions; a cluster formatted with unstable features has to be handled by hand"}
			}
			mv = got
		}
		if mv.IsZero() {
			mv, _ = mvLevel(level)
		}
		return mv, nil
	}
	if c.finalized == nil && c.anyAtLeast33() {
		return MetadataVersion{}, incomplete("finalized features (metadata.version) unknown")
	}
	// Before 3.3, or a cluster upgraded from before 3.3 and not yet
	// finalized: the static inter.broker.protocol.version of the pre-3.3
	// nodes is the version.
	var lo MetadataVersion
	for _, n := range c.nodes {
		if n.release.AtLeast(v(3, 3)) && c.anyBelow33() {
			continue
		}
		mv, err := n.effectiveIBPV()
		if err != nil {
			return MetadataVersion{}, err
		}
		if lo.IsZero() || mv.Less(lo) {
			lo = mv
		}
	}
	if !lo.IsKRaft() {
		return MetadataVersion{}, incomplete("KRaft cluster without metadata.version, and inter.broker.protocol.version %v is not a KRaft version", lo)
	}
	return lo, nil
}

func (c *sim) anyBelow33() bool {
	for _, n := range c.nodes {
		if n.release.Less(v(3, 3)) {
			return true
		}
	}
	return false
}

func (c *sim) anyAtLeast33() bool {
	for _, n := range c.nodes {
		if n.release.AtLeast(v(3, 3)) {
			return true
		}
	}
	return false
}

// errSentinel returns the sentinel an error of this package wraps.
func errSentinel(err error) error {
	for _, s := range []error{ErrUnstableMetadataVersion, ErrUnknownMetadataVersion, ErrNoFeatureVersioning, ErrInvalidMetadataVersion, ErrUnknownRelease} {
		if errors.Is(err, s) {
			return s
		}
	}
	return ErrIncompleteState
}

func (c *sim) ids(pred func(simNode) bool) []int32 {
	var out []int32
	for _, n := range c.nodes {
		if pred(n) {
			out = append(out, n.id)
		}
	}
	return out
}

// checkControllers makes sure a KRaft cluster's controllers are known: KRaft
// routes roll them first.
func (c *sim) checkControllers() error {
	if !c.ghost.IsZero() || len(c.ids(func(n simNode) bool { return n.controller })) > 0 {
		return nil
	}
	return incomplete("no node with the controller role: KRaft routes roll the controllers too, so the state must list them")
}

// checkFinalized makes sure every node supports the finalized levels of the
// features this package knows (Kafka refuses to register a node that does
// not, so a mismatch means the state is wrong or unstable features are on).
func (c *sim) checkFinalized() error {
	for _, n := range c.nodes {
		for _, name := range c.finalized.Names() {
			if name == FeatureMetadataVersion {
				continue
			}
			if _, ok := LookupFeature(name); !ok {
				continue
			}
			var maxLevel int16 // releases before 3.3 have no features at all
			if n.release.AtLeast(v(3, 3)) {
				maxLevel, _ = ProductionMaxLevel(name, n.release)
			}
			if level := c.finalized[name]; level > maxLevel {
				return &RouteError{Err: ErrIncompleteState,
					Reason:     fmt.Sprintf("finalized %s=%d, but node %d runs %v, whose highest production level is %d", name, level, n.id, n.release, maxLevel),
					Suggestion: "kupgrade plans only with production feature levels; check the state, or handle clusters running unstable features by hand"}
			}
		}
	}
	return nil
}

// checkMessageFormats makes sure every ZooKeeper-mode node's
// inter.broker.protocol.version and log.message.format.version are a
// combination its release starts with; anything else means the state is
// wrong.
func (c *sim) checkMessageFormats() error {
	for _, n := range c.nodes {
		if n.release.Less(v0(10, 0)) {
			continue
		}
		ibpv, err := n.effectiveIBPV()
		if err != nil {
			return err
		}
		if MessageFormatIgnored(ibpv) {
			continue
		}
		lmfv, err := n.effectiveLMFV()
		if err != nil {
			return err
		}
		if err := CheckMessageFormat(ibpv, lmfv, n.release); err != nil {
			return &RouteError{Err: ErrIncompleteState,
				Reason:     fmt.Sprintf("node %d (%v) could not be running with inter.broker.protocol.version %v and log.message.format.version %v: %s", n.id, n.release, ibpv, lmfv, err.(*MessageFormatError).Reason),
				Suggestion: "inspect the node's configuration again"}
		}
	}
	return nil
}
