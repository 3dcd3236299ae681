package compat

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Feature names, as ApiVersions, UpdateFeatures and kafka-features use them.
const (
	FeatureMetadataVersion               = "metadata.version"
	FeatureKRaftVersion                  = "kraft.version"
	FeatureGroupVersion                  = "group.version"
	FeatureTransactionVersion            = "transaction.version"
	FeatureEligibleLeaderReplicasVersion = "eligible.leader.replicas.version"
	FeatureShareVersion                  = "share.version"
	FeatureStreamsVersion                = "streams.version"
)

// A FeatureLevel is one level of a KRaft feature other than metadata.version.
type FeatureLevel struct {
	Feature string `json:"feature"`
	Level   int16  `json:"level"`
	// Bootstrap is the feature level's bootstrapMetadataVersion: clusters
	// formatted (or finalized with --release-version) at this
	// metadata.version or newer get this level by default. Zero for level 0.
	Bootstrap MetadataVersion `json:"bootstrap"`
	// Requires lists the feature levels this level depends on
	// (Feature.validateVersion refuses it otherwise).
	Requires FeatureLevels `json:"requires,omitempty"`
	// Note says what the level enables, and anything an operator should know
	// before finalizing it.
	Note string `json:"note"`
}

// A Feature is a KRaft feature flag other than metadata.version, with every
// level this package knows. Levels[i].Level is i.
type Feature struct {
	Name   string         `json:"name"`
	Levels []FeatureLevel `json:"levels"`
	// Downgradable reports whether the controller accepts downgrades of this
	// feature. Only kraft.version refuses them.
	Downgradable bool `json:"downgradable"`
}

// Level returns the feature's level l, and false if it is unknown.
func (f Feature) Level(l int16) (FeatureLevel, bool) {
	if l < 0 || int(l) >= len(f.Levels) {
		return FeatureLevel{}, false
	}
	return f.Levels[l], true
}

// featureTable is the catalogue, from the *Version.java enums of 4.2.1 plus
// ShareVersion.SV_2 of 4.4 (PR #21994), checked against the published
// kafka-server-common jars of 3.9.2 … 4.4.0: SV_2 declares no dependencies,
// and 4.3 has no SV_2 at all, not even as an unstable level.
var featureTable = []Feature{
	{Name: FeatureKRaftVersion, Downgradable: false, Levels: []FeatureLevel{
		{Level: 0, Note: "static controller quorum (controller.quorum.voters)"},
		{Level: 1, Bootstrap: mvNamed("3.9-IV0"), Note: "dynamic controller quorum (KIP-853); upgrading a static quorum needs 4.1+ and cannot be undone"},
	}},
	{Name: FeatureTransactionVersion, Downgradable: true, Levels: []FeatureLevel{
		{Level: 0, Note: "original transaction protocol"},
		{Level: 1, Bootstrap: mvNamed("4.0-IV2"), Note: "flexible transaction state records (KIP-890)"},
		{Level: 2, Bootstrap: mvNamed("4.0-IV2"), Note: "epoch bump per transaction (KIP-890 part 2); downgrades are safe"},
	}},
	{Name: FeatureGroupVersion, Downgradable: true, Levels: []FeatureLevel{
		{Level: 0, Note: "classic group protocol only"},
		{Level: 1, Bootstrap: mvNamed("4.0-IV0"), Note: "consumer rebalance protocol (KIP-848); once consumer groups use it, the software can only be downgraded to 3.4.1 or newer"},
	}},
	{Name: FeatureEligibleLeaderReplicasVersion, Downgradable: true, Levels: []FeatureLevel{
		{Level: 0, Note: "ELR off"},
		{Level: 1, Bootstrap: mvNamed("4.1-IV0"), Requires: FeatureLevels{FeatureMetadataVersion: 23},
			Note: "eligible leader replicas (KIP-966); removes the broker-level min.insync.replicas and makes the cluster-level one mandatory; downgrades are safe"},
	}},
	{Name: FeatureShareVersion, Downgradable: true, Levels: []FeatureLevel{
		{Level: 0, Note: "share groups off"},
		{Level: 1, Bootstrap: mvNamed("4.2-IV0"), Note: "share groups (KIP-932); a preview in 4.1"},
		{Level: 2, Bootstrap: mvNamed("4.4-IV0"), Note: "dead-letter queues for share groups (KIP-1191)"},
	}},
	{Name: FeatureStreamsVersion, Downgradable: true, Levels: []FeatureLevel{
		{Level: 0, Note: "streams groups off"},
		{Level: 1, Bootstrap: mvNamed("4.2-IV1"), Note: "streams rebalance protocol (KIP-1071)"},
	}},
}

func init() {
	for i := range featureTable {
		for j := range featureTable[i].Levels {
			featureTable[i].Levels[j].Feature = featureTable[i].Name
		}
	}
}

// Features returns the catalogue of KRaft features other than
// metadata.version, with every level this package knows, in a fixed order.
func Features() []Feature {
	out := make([]Feature, len(featureTable))
	for i, f := range featureTable {
		out[i] = f.clone()
	}
	return out
}

// clone returns a deep copy, so callers cannot change the catalogue.
func (f Feature) clone() Feature {
	f.Levels = slices.Clone(f.Levels)
	for i := range f.Levels {
		f.Levels[i].Requires = maps.Clone(f.Levels[i].Requires)
	}
	return f
}

// LookupFeature returns the catalogue entry for a feature name, and false for
// metadata.version (see [MetadataVersions]) and unknown names.
func LookupFeature(name string) (Feature, bool) {
	for _, f := range featureTable {
		if f.Name == name {
			return f.clone(), true
		}
	}
	return Feature{}, false
}

// FeatureLevels maps feature names to levels, like ApiVersions'
// FinalizedFeatures. Kafka omits features finalized at level 0; this
// package includes them where it knows them, and [FeatureLevels.NonZero]
// drops them for comparison with what a broker reports.
type FeatureLevels map[string]int16

// Level returns the level of a feature, 0 if absent.
func (fl FeatureLevels) Level(name string) int16 { return fl[name] }

// Names returns the feature names, metadata.version first and the rest
// sorted.
func (fl FeatureLevels) Names() []string {
	names := slices.Collect(maps.Keys(fl))
	slices.SortFunc(names, func(a, b string) int {
		switch {
		case a == b:
			return 0
		case a == FeatureMetadataVersion:
			return -1
		case b == FeatureMetadataVersion:
			return 1
		}
		return strings.Compare(a, b)
	})
	return names
}

// NonZero returns the levels above 0: what ApiVersions lists as finalized.
func (fl FeatureLevels) NonZero() FeatureLevels {
	out := FeatureLevels{}
	for k, v := range fl {
		if v > 0 {
			out[k] = v
		}
	}
	return out
}

// String returns "metadata.version=27 group.version=1 …" in [FeatureLevels.Names] order.
func (fl FeatureLevels) String() string {
	var b strings.Builder
	for i, n := range fl.Names() {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(n)
		b.WriteByte('=')
		b.WriteString(strconv.Itoa(int(fl[n])))
	}
	return b.String()
}

// A LevelRange is an inclusive range of feature levels, as in ApiVersions'
// SupportedFeatures.
type LevelRange struct {
	Min int16 `json:"min"`
	Max int16 `json:"max"`
}

// featureLine returns the facts of a release line that has KRaft feature
// versioning (3.3+).
func featureLine(rel Release) (*lineFacts, error) {
	l, err := knownOrLine(rel, true)
	if err != nil {
		return nil, err
	}
	if l.minMV == 0 {
		return nil, &FeatureError{Feature: FeatureMetadataVersion, Reason: rel.Short() + " has no KRaft feature versioning (it starts with 3.3)", Err: ErrNoFeatureVersioning}
	}
	return l, nil
}

// ProductionMaxLevel returns the highest production level of a feature in
// rel (its LATEST_PRODUCTION; for metadata.version, [LatestProduction]). A
// feature rel does not register has 0. Unknown feature names wrap
// [ErrUnknownFeature]; releases before 3.3 wrap [ErrNoFeatureVersioning].
func ProductionMaxLevel(feature string, rel Release) (int16, error) {
	l, err := featureLine(rel)
	if err != nil {
		return 0, err
	}
	if feature == FeatureMetadataVersion {
		return mvNamed(l.latest).Level, nil
	}
	if _, ok := LookupFeature(feature); !ok {
		return 0, &FeatureError{Feature: feature, Reason: "not a feature compat knows", Err: ErrUnknownFeature}
	}
	return l.features[feature], nil
}

// SupportedFeatures returns what a KRaft node of rel advertises in
// ApiVersions v4 SupportedFeatures with unstable.feature.versions.enable off:
// metadata.version from [SupportedMetadataVersions], and every other
// production feature whose latest production level is above 0, from 0 to
// that level. (ApiVersions before v4 omits features whose minimum is 0.)
func SupportedFeatures(rel Release) (map[string]LevelRange, error) {
	l, err := featureLine(rel)
	if err != nil {
		return nil, err
	}
	out := map[string]LevelRange{FeatureMetadataVersion: {Min: l.minMV, Max: mvNamed(l.latest).Level}}
	for name, maxLevel := range l.features {
		if maxLevel > 0 {
			out[name] = LevelRange{Min: 0, Max: maxLevel}
		}
	}
	return out, nil
}

// DefaultFeatureLevel returns the level of a feature that rel's tools pick
// for a cluster at metadata.version mv (Feature.defaultLevel): the highest
// production level whose bootstrap version is at or below mv. mv must be a
// production version of rel.
func DefaultFeatureLevel(feature string, mv MetadataVersion, rel Release) (int16, error) {
	l, err := featureLine(rel)
	if err != nil {
		return 0, err
	}
	if err := l.checkProductionMV(mv, rel); err != nil {
		return 0, err
	}
	if feature == FeatureMetadataVersion {
		return mv.Level, nil
	}
	f, ok := LookupFeature(feature)
	if !ok {
		return 0, &FeatureError{Feature: feature, Reason: "not a feature compat knows", Err: ErrUnknownFeature}
	}
	return defaultLevel(f, mv, l.features[feature]), nil
}

func defaultLevel(f Feature, mv MetadataVersion, prodMax int16) int16 {
	var level int16
	for _, fl := range f.Levels {
		if fl.Level <= prodMax && !mv.Less(fl.Bootstrap) {
			level = fl.Level
		}
	}
	return level
}

func (l *lineFacts) checkProductionMV(mv MetadataVersion, rel Release) error {
	latest := mvNamed(l.latest)
	switch {
	case mv.Unstable || mv.Level > latest.Level:
		return &MetadataVersionError{Input: mv.Name, Reader: rel, Err: ErrUnstableMetadataVersion,
			Reason: fmt.Sprintf("above %v's latest production version %v", rel.Short(), latest)}
	case mv.Level < l.minFinalize:
		lo, _ := mvLevel(l.minFinalize)
		return &MetadataVersionError{Input: mv.Name, Reader: rel, Err: ErrUnknownMetadataVersion,
			Reason: fmt.Sprintf("%v sets metadata.version %v (level %d) or newer only", rel.Short(), lo, lo.Level)}
	}
	return nil
}

// ReleaseVersionLevels returns what `kafka-features upgrade --release-version
// mv` (4.x) or `kafka-storage format --release-version mv` sends when run
// with release reader's tools: metadata.version at mv's level plus every
// feature reader registers as production at its default level for mv. Level-0
// entries are included; the upgrade command does not send them.
//
// Note that from 3.9 on this includes kraft.version=1: on a 4.1+ cluster
// with a static quorum, --release-version therefore converts the quorum to a
// dynamic one, irreversibly. [Route] never finalizes kraft.version implicitly
// for that reason.
func ReleaseVersionLevels(mv MetadataVersion, reader Release) (FeatureLevels, error) {
	l, err := featureLine(reader)
	if err != nil {
		return nil, err
	}
	if err := l.checkProductionMV(mv, reader); err != nil {
		return nil, err
	}
	out := FeatureLevels{FeatureMetadataVersion: mv.Level}
	for _, f := range featureTable {
		prodMax, ok := l.features[f.Name]
		if !ok {
			continue
		}
		out[f.Name] = defaultLevel(f, mv, prodMax)
	}
	return out, nil
}

// A QuorumKind says how a KRaft controller quorum is configured.
type QuorumKind int

const (
	// StaticQuorum is a controller quorum fixed by controller.quorum.voters
	// (kraft.version 0). Every KRaft release supports it.
	StaticQuorum QuorumKind = iota
	// DynamicQuorum is a quorum formatted with --standalone or
	// --initial-controllers and configured with
	// controller.quorum.bootstrap.servers (kraft.version 1, KIP-853; 3.9+).
	DynamicQuorum
)

// String returns "static" or "dynamic".
func (q QuorumKind) String() string {
	if q == DynamicQuorum {
		return "dynamic"
	}
	return "static"
}

// DefaultFeatureLevels returns the finalized feature levels of a fresh
// cluster of release rel formatted without --release-version (kafka-storage
// format with its defaults): metadata.version at [LatestProduction](rel) and
// every production feature at its default level for it. kraft.version is 1
// for a [DynamicQuorum] and 0 for a [StaticQuorum] (the formatter writes 1
// only with --standalone or --initial-controllers); a DynamicQuorum before
// 3.9 is an error wrapping [ErrUnknownFeature].
//
// Level-0 entries are included; see [FeatureLevels.NonZero].
func DefaultFeatureLevels(rel Release, quorum QuorumKind) (FeatureLevels, error) {
	lp, err := LatestProduction(rel)
	if err != nil {
		return nil, err
	}
	levels, err := ReleaseVersionLevels(lp, rel)
	if err != nil {
		return nil, err
	}
	if _, ok := levels[FeatureKRaftVersion]; ok {
		if quorum == StaticQuorum {
			levels[FeatureKRaftVersion] = 0
		}
	} else if quorum == DynamicQuorum {
		return nil, &FeatureError{Feature: FeatureKRaftVersion, Level: 1, Reason: "dynamic controller quorums need 3.9 or newer", Err: ErrUnknownFeature}
	}
	return levels, nil
}

// CheckFeatureUpdate reports whether the controller of release reader would
// accept changing a feature from level from to level to, given the other
// finalized levels (which must include metadata.version). It checks what
// FeatureControlManager checks: the level is production in reader, its
// dependencies hold, metadata.version downgrades do not cross a metadata
// change ([CanDowngrade]), and kraft.version is never downgraded and only
// upgraded from 4.1 on. It does not check that every node supports the
// level; [Route] plans rolls so that they do.
//
// One refusal is stricter than Kafka: the controllers of 3.9 and 4.0
// accept a kraft.version upgrade, but only record the level and leave the
// quorum static (4.1 made the upgrade work, KAFKA-16538). This function
// refuses it for them, with [ErrFeatureUpdateRefused].
func CheckFeatureUpdate(feature string, from, to int16, finalized FeatureLevels, reader Release) error {
	l, err := featureLine(reader)
	if err != nil {
		return err
	}
	if feature == FeatureMetadataVersion {
		target, err := LookupMetadataVersion(to, reader)
		if err != nil {
			return err
		}
		if err := l.checkProductionMV(target, reader); err != nil {
			return err
		}
		if to < from {
			cur, err := LookupMetadataVersion(from, reader)
			if err != nil {
				return err
			}
			return CanDowngrade(cur, target)
		}
		return nil
	}
	f, ok := LookupFeature(feature)
	if !ok {
		return &FeatureError{Feature: feature, Level: to, Reason: "not a feature compat knows", Err: ErrUnknownFeature}
	}
	prodMax := l.features[feature]
	if to > prodMax {
		return &FeatureError{Feature: feature, Level: to, Err: ErrUnknownFeature,
			Reason: fmt.Sprintf("%v's highest production level of %s is %d", reader.Short(), feature, prodMax)}
	}
	if feature == FeatureKRaftVersion && to != from {
		switch {
		case to < from:
			return &FeatureError{Feature: feature, Level: to, Reason: "kraft.version cannot be downgraded", Err: ErrFeatureUpdateRefused}
		case reader.Less(v(4, 1)):
			return &FeatureError{Feature: feature, Level: to, Reason: "kraft.version is chosen when formatting; upgrading a static quorum needs 4.1 or newer (KAFKA-16538): 3.9 and 4.0 accept the update but leave the quorum static", Err: ErrFeatureUpdateRefused}
		}
	}
	if to == 0 {
		return nil
	}
	fl, _ := f.Level(to)
	if l.line.Major >= 4 && finalized.Level(FeatureMetadataVersion) < min4xMV.Level {
		return &FeatureError{Feature: feature, Level: to, Reason: "needs metadata.version 3.3-IV3 or newer", Err: ErrFeatureDependency}
	}
	for _, dep := range fl.Requires.Names() {
		if have := finalized.Level(dep); have < fl.Requires[dep] {
			return &FeatureError{Feature: feature, Level: to, Err: ErrFeatureDependency,
				Reason: fmt.Sprintf("needs %s %d or newer, finalized is %d", dep, fl.Requires[dep], have)}
		}
	}
	return nil
}
