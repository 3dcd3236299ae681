package compat

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
)

// A MetadataVersion is one constant of Kafka's MetadataVersion enum: an
// inter.broker.protocol.version (IBPV) in ZooKeeper mode and, from 3.0-IV1 on,
// a KRaft metadata.version feature level.
//
// Values come from this package's tables (see [MetadataVersions],
// [ParseMetadataVersion], [LookupMetadataVersion]); they compare by Kafka's
// declaration order, not by name. A production level never changes meaning
// once released. An unstable one (Unstable is true) is described as the
// reading release defines it, and may mean something else in the release that
// makes it production.
type MetadataVersion struct {
	// Level is the metadata.version feature level: 1 for 3.0-IV1, 7 for
	// 3.3-IV3, 29 for 4.2-IV1; -1 for the ZooKeeper-only versions before
	// 3.0-IV1.
	Level int16 `json:"level"`
	// Name is the version string, such as "3.6-IV2" or "0.8.2".
	Name string `json:"name"`
	// DidMetadataChange is true when this level changed the metadata format;
	// Kafka refuses safe downgrades across it.
	DidMetadataChange bool `json:"didMetadataChange"`
	// Unstable is true when the reading release treats the level as not
	// production (above its LATEST_PRODUCTION).
	Unstable bool `json:"unstable,omitempty"`
	// Note says in a few words what the level introduced.
	Note string `json:"note,omitempty"`
}

// IsZero reports whether mv is the zero MetadataVersion (unknown).
func (mv MetadataVersion) IsZero() bool { return mv.Name == "" }

// String returns the version string, such as "3.6-IV2".
func (mv MetadataVersion) String() string {
	if mv.Name == "" {
		return "unknown"
	}
	return mv.Name
}

// Line returns the release line part of the name ("3.6" for "3.6-IV2",
// "0.10.0" for "0.10.0-IV1"); Kafka calls it the short version.
func (mv MetadataVersion) Line() string {
	name, _, _ := strings.Cut(mv.Name, "-")
	return name
}

// IsKRaft reports whether mv is a KRaft feature level (3.0-IV1 or newer).
func (mv MetadataVersion) IsKRaft() bool { return mv.Level > 0 }

// ordinal returns mv's position in Kafka's declaration order.
func (mv MetadataVersion) ordinal() int {
	if mv.Level > 0 {
		return mvIndex["3.0-IV1"] + int(mv.Level) - 1
	}
	if i, ok := mvIndex[mv.Name]; ok {
		return i
	}
	return -1
}

// Compare returns -1, 0 or +1 as mv is older than, equal to or newer than o,
// in Kafka's declaration order.
func (mv MetadataVersion) Compare(o MetadataVersion) int {
	return cmp.Compare(mv.ordinal(), o.ordinal())
}

// Less reports whether mv is older than o.
func (mv MetadataVersion) Less(o MetadataVersion) bool { return mv.Compare(o) < 0 }

// AtLeast reports whether mv is o or newer.
func (mv MetadataVersion) AtLeast(o MetadataVersion) bool { return mv.Compare(o) >= 0 }

// RecordVersion returns the highest record (message) format mv supports:
// 0 before 0.10.0-IV0, 1 before 0.11.0-IV0, 2 from then on.
func (mv MetadataVersion) RecordVersion() int {
	switch {
	case mv.Less(mvNamed("0.10.0-IV0")):
		return 0
	case mv.Less(mvNamed("0.11.0-IV0")):
		return 1
	default:
		return 2
	}
}

func rowMV(r mvRow) MetadataVersion {
	return MetadataVersion{Level: r.level, Name: r.name, DidMetadataChange: r.dmc, Note: r.note}
}

// mvNamed returns the production MetadataVersion with the given name; it
// panics on a name missing from the table (a bug in this package).
func mvNamed(name string) MetadataVersion {
	i, ok := mvIndex[name]
	if !ok {
		panic("compat: no MetadataVersion " + name)
	}
	return rowMV(mvTable[i])
}

// mvLevel returns the production MetadataVersion with a KRaft level.
func mvLevel(level int16) (MetadataVersion, bool) {
	if level < 1 {
		return MetadataVersion{}, false
	}
	i := mvIndex["3.0-IV1"] + int(level) - 1
	if i >= len(mvTable) {
		return MetadataVersion{}, false
	}
	return rowMV(mvTable[i]), true
}

// Well-known versions. They are unexported so that no caller can change the
// package's rules; [SupportedMetadataVersions] and the functions' docs name
// them.
var (
	// minBootstrapMV is 3.3-IV0 (level 4), the lowest level 3.3–3.9 let
	// UpdateFeatures set (MINIMUM_BOOTSTRAP_VERSION).
	minBootstrapMV = mvNamed("3.3-IV0")
	// min4xMV is 3.3-IV3 (level 7), the lowest level 4.x understands
	// (MINIMUM_VERSION); 4.x brokers refuse to load a cluster below it.
	min4xMV = mvNamed("3.3-IV3")
	// messageFormatFixedMV is 3.0-IV1: from it on, log.message.format.version
	// is ignored and taken to be 3.0 (KIP-724).
	messageFormatFixedMV = mvNamed("3.0-IV1")
)

// MetadataVersions returns every production MetadataVersion this package
// knows, from 0.8.0 to the newest release's LATEST_PRODUCTION (4.4-IV2),
// oldest first, with the meanings they have in the releases that made them
// production.
func MetadataVersions() []MetadataVersion {
	out := make([]MetadataVersion, len(mvTable))
	for i, r := range mvTable {
		out[i] = rowMV(r)
	}
	return out
}

// LatestProduction returns the metadata.version a release uses by default:
// LATEST_PRODUCTION for 3.7 and later, the newest enum constant before that.
// It is what a fresh `kafka-storage format` of that release sets, and the
// default inter.broker.protocol.version of a ZooKeeper-mode broker.
//
// Any patch of a known line is accepted (patch releases never change it).
// For an unknown line the error wraps [ErrUnknownRelease].
func LatestProduction(rel Release) (MetadataVersion, error) {
	l, err := knownOrLine(rel, true)
	if err != nil {
		return MetadataVersion{}, err
	}
	return mvNamed(l.latest), nil
}

// A VersionRange is an inclusive range of metadata versions.
type VersionRange struct {
	Min MetadataVersion `json:"min"`
	Max MetadataVersion `json:"max"`
}

// Contains reports whether mv lies within r.
func (r VersionRange) Contains(mv MetadataVersion) bool {
	return mv.AtLeast(r.Min) && !r.Max.Less(mv)
}

// String returns "min…max", such as "3.3-IV3…4.2-IV1".
func (r VersionRange) String() string { return r.Min.String() + "…" + r.Max.String() }

// SupportedMetadataVersions returns the metadata.version range a KRaft node
// of rel advertises in ApiVersions (SupportedFeatures, with
// unstable.feature.versions.enable off): 3.0-IV1…LATEST_PRODUCTION on
// 3.3–3.9, 3.3-IV3…LATEST_PRODUCTION on 4.x. This is what
// `kafka-features describe` prints as SupportedMinVersion and
// SupportedMaxVersion.
//
// Note that 3.3–3.9 advertise levels 1–3 but refuse to finalize below
// 3.3-IV0 (see [FinalizableMetadataVersions]). Releases before 3.3 return
// an error wrapping [ErrNoFeatureVersioning].
func SupportedMetadataVersions(rel Release) (VersionRange, error) {
	l, err := knownOrLine(rel, true)
	if err != nil {
		return VersionRange{}, err
	}
	if l.minMV == 0 {
		return VersionRange{}, &MetadataVersionError{Input: "metadata.version", Reader: rel, Reason: "KRaft feature versioning starts with 3.3", Err: ErrNoFeatureVersioning}
	}
	lo, _ := mvLevel(l.minMV)
	return VersionRange{Min: lo, Max: mvNamed(l.latest)}, nil
}

// FinalizableMetadataVersions returns the metadata.version range that rel's
// controller accepts in UpdateFeatures and its kafka-storage format accepts
// for --release-version: 3.3-IV0…LATEST_PRODUCTION on 3.3–3.9 (narrower than
// what they advertise), 3.3-IV3…LATEST_PRODUCTION on 4.x. Releases before
// 3.3 return an error wrapping [ErrNoFeatureVersioning].
func FinalizableMetadataVersions(rel Release) (VersionRange, error) {
	l, err := knownOrLine(rel, true)
	if err != nil {
		return VersionRange{}, err
	}
	if l.minFinalize == 0 {
		return VersionRange{}, &MetadataVersionError{Input: "metadata.version", Reader: rel, Reason: "KRaft feature versioning starts with 3.3", Err: ErrNoFeatureVersioning}
	}
	lo, _ := mvLevel(l.minFinalize)
	return VersionRange{Min: lo, Max: mvNamed(l.latest)}, nil
}

// UnstableMetadataVersions returns the levels above rel's
// LATEST_PRODUCTION that rel's source defines, as rel defines them (Unstable
// set). A node's broker listener advertises them in ApiVersions only with
// unstable.feature.versions.enable=true (unstable.metadata.versions.enable
// on 3.7). Its controller listener does not follow that setting: it
// advertises the production range unless unstable.api.versions.enable is
// set too, although the controller then accepts the unstable levels.
// The result is empty for lines without unstable versions (before 3.7) and
// nil with an error for unknown lines.
func UnstableMetadataVersions(rel Release) ([]MetadataVersion, error) {
	l, err := knownOrLine(rel, true)
	if err != nil {
		return nil, err
	}
	out := make([]MetadataVersion, 0, len(l.unstable))
	for _, u := range l.unstable {
		mv := rowMV(u)
		mv.Unstable = true
		out = append(out, mv)
	}
	return out, nil
}

// LookupMetadataVersion returns the production metadata.version with a KRaft
// feature level, as the release reader understands it, for example to name
// the level that ApiVersions reports as finalized.
//
// A level above reader's LATEST_PRODUCTION is never guessed: the error wraps
// [ErrUnstableMetadataVersion] if reader defines it as unstable (the
// *[MetadataVersionError] then carries reader's definition for display), and
// [ErrUnknownMetadataVersion] if reader does not define it at all. Levels
// below what reader supports also wrap [ErrUnknownMetadataVersion]; releases
// before 3.3 wrap [ErrNoFeatureVersioning].
func LookupMetadataVersion(level int16, reader Release) (MetadataVersion, error) {
	l, err := knownOrLine(reader, true)
	if err != nil {
		return MetadataVersion{}, err
	}
	in := "level " + strconv.Itoa(int(level))
	if l.minMV == 0 {
		return MetadataVersion{}, &MetadataVersionError{Input: in, Reader: reader, Reason: "KRaft feature versioning starts with 3.3", Err: ErrNoFeatureVersioning}
	}
	latest := mvNamed(l.latest)
	if level > latest.Level {
		for _, u := range l.unstable {
			if u.level == level {
				mv := rowMV(u)
				mv.Unstable = true
				return MetadataVersion{}, &MetadataVersionError{Input: in, Reader: reader, Unstable: mv, Err: ErrUnstableMetadataVersion,
					Reason: fmt.Sprintf("above %v's latest production version %v (level %d); %v defines it only as unstable %v, whose meaning can change", reader.Short(), latest, latest.Level, reader.Short(), u.name)}
			}
		}
		return MetadataVersion{}, &MetadataVersionError{Input: in, Reader: reader, Err: ErrUnknownMetadataVersion,
			Reason: fmt.Sprintf("%v defines levels up to %d at most; its latest production version is %v (level %d)", reader.Short(), l.maxDefined(), latest, latest.Level)}
	}
	if level < l.minMV {
		lo, _ := mvLevel(l.minMV)
		return MetadataVersion{}, &MetadataVersionError{Input: in, Reader: reader, Err: ErrUnknownMetadataVersion,
			Reason: fmt.Sprintf("%v supports metadata.version %v (level %d) and newer", reader.Short(), lo, lo.Level)}
	}
	mv, _ := mvLevel(level)
	return mv, nil
}

// maxDefined returns the highest level the line's source defines.
func (l *lineFacts) maxDefined() int16 {
	m := mvNamed(l.latest).Level
	for _, u := range l.unstable {
		m = max(m, u.level)
	}
	return m
}

// definedBy returns every constant the line's enum declares, in order, and
// whether each is production: pre-4.0 lines keep the ZooKeeper-era constants,
// 4.x lines start at 3.3-IV3.
func (l *lineFacts) definedBy() []MetadataVersion {
	last := mvIndex[l.latest]
	first := 0
	if l.line.Major >= 4 {
		first = mvIndex["3.3-IV3"]
	}
	out := make([]MetadataVersion, 0, last-first+1+len(l.unstable))
	for _, r := range mvTable[first : last+1] {
		out = append(out, rowMV(r))
	}
	for _, u := range l.unstable {
		mv := rowMV(u)
		mv.Unstable = true
		out = append(out, mv)
	}
	return out
}
