package compat

import (
	"fmt"
	"strings"
)

// ParseMetadataVersion reads s the way the release reader's
// MetadataVersion.fromVersionString does: as an inter.broker.protocol.version
// or log.message.format.version value, or as kafka-features/kafka-storage
// --metadata and --release-version arguments. The rules differ by release:
//
//   - 3.x and older: s is split on "."; the first three segments are kept if
//     s starts with "0.", else the first two, and the rest is ignored. So
//     "1.0.1" is 1.0-IV0 and "0.10.0.0-IV0" is 0.10.0-IV1 (the "-IV0" went
//     with the fourth segment).
//   - A short form ("2.8") means the newest version of that line; from 3.7 on
//     only production versions count, so 3.9 reads "4.0" as an error while
//     "4.0-IV0" is its unstable ELR version.
//   - 4.x: always two segments, and nothing below 3.3-IV3 exists.
//   - 4.2 and later refuse non-production versions (unless
//     unstable.feature.versions.enable is set, which this package does not
//     model).
//
// Unstable versions that reader accepts are returned with Unstable set and
// with reader's meaning. Errors are *[MetadataVersionError]s quoting s,
// wrapping [ErrInvalidMetadataVersion] (or [ErrUnknownRelease] for a reader
// this package does not know).
func ParseMetadataVersion(s string, reader Release) (MetadataVersion, error) {
	l, err := knownOrLine(reader, true)
	if err != nil {
		return MetadataVersion{}, &MetadataVersionError{Input: s, Reader: reader, Reason: err.(*ReleaseError).Reason, Err: ErrUnknownRelease}
	}
	segments := 2
	if l.parse <= parseProductionShort && strings.HasPrefix(s, "0.") {
		segments = 3
	}
	key := s
	if parts := javaSplitDot(s); len(parts) > segments {
		key = strings.Join(parts[:segments], ".")
	}
	mv, ok := l.lookupVersionString(key)
	if !ok {
		return MetadataVersion{}, l.parseError(s, reader, "is not a version "+reader.Short()+" knows")
	}
	if mv.Unstable && l.parse == parseRejectUnstable {
		return MetadataVersion{}, l.parseError(s, reader, fmt.Sprintf("%v is not production in %v (it needs unstable.feature.versions.enable=true)", mv, reader.Short()))
	}
	return mv, nil
}

// MustParseMetadataVersion is like [ParseMetadataVersion] but panics on error.
func MustParseMetadataVersion(s string, reader Release) MetadataVersion {
	mv, err := ParseMetadataVersion(s, reader)
	if err != nil {
		panic(err)
	}
	return mv
}

func (l *lineFacts) parseError(s string, reader Release, why string) error {
	var sup string
	defs := l.definedBy()
	lo, hi := defs[0], mvNamed(l.latest)
	if l.parse != parseRejectUnstable && len(l.unstable) > 0 {
		hi = defs[len(defs)-1]
	}
	sup = fmt.Sprintf("; %v accepts %v to %v", reader.Short(), lo, hi)
	return &MetadataVersionError{Input: s, Reader: reader, Reason: why + sup, Err: ErrInvalidMetadataVersion}
}

// lookupVersionString resolves a full name ("3.6-IV2") or a short form
// ("3.6") against the line's enum.
func (l *lineFacts) lookupVersionString(key string) (MetadataVersion, bool) {
	defs := l.definedBy()
	for _, mv := range defs {
		if mv.Name == key {
			return mv, true
		}
	}
	// Short form: the newest constant of the line; from 3.7 on, the newest
	// production constant.
	var found MetadataVersion
	for _, mv := range defs {
		if mv.Line() != key {
			continue
		}
		if mv.Unstable && l.parse != parseLegacy {
			continue
		}
		found = mv
	}
	return found, !found.IsZero()
}

// javaSplitDot splits s on "." the way Java's String.split does: trailing
// empty strings are dropped (so "3.6." has two parts, and "..." none).
func javaSplitDot(s string) []string {
	if s == "" {
		return []string{""}
	}
	parts := strings.Split(s, ".")
	for len(parts) > 0 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	return parts
}
