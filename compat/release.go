package compat

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// A Release is an Apache Kafka software release, such as 3.9.1 or 0.10.2.1.
//
// Releases from 1.0 on have three numbers; their line is Major.Minor ("3.9").
// Releases before 1.0 had four numbers and their line had three ("0.10.2" is
// the line of 0.10.2.1); for those, Patch is the third number of the line and
// Fix is the fourth. Fix is always 0 from 1.0 on.
//
// The zero Release means "unknown". A Release is comparable with ==, and
// marshals to and from its String form in JSON.
type Release struct {
	Major, Minor, Patch, Fix int
}

// ParseRelease parses a Kafka release: "3.9.1", "4.1" (its .0 patch),
// "0.10.2.1" or "0.8.2" (its .0 fix). Numbers are decimal without signs or
// leading zeros. Releases before 1.0 need three or four numbers (there is no
// "0.10" release line); later ones need two or three.
//
// ParseRelease checks syntax only; [IsKnown] says whether this package has
// facts about the release. A malformed input returns a *[ReleaseError] that
// quotes it and wraps [ErrInvalidRelease].
func ParseRelease(s string) (Release, error) {
	bad := func(reason string) (Release, error) {
		return Release{}, &ReleaseError{Input: s, Reason: reason, Err: ErrInvalidRelease}
	}
	if s == "" {
		return bad("empty")
	}
	parts := strings.Split(s, ".")
	nums := make([]int, len(parts))
	for i, p := range parts {
		if p == "" {
			return bad("empty number")
		}
		if len(p) > 1 && p[0] == '0' {
			return bad("leading zero in " + strconv.Quote(p))
		}
		for _, c := range []byte(p) {
			if c < '0' || c > '9' {
				return bad("want dot-separated decimal numbers, such as 3.9.1")
			}
		}
		if len(p) > 3 {
			return bad("number " + p + " is too large")
		}
		n, _ := strconv.Atoi(p) // cannot fail: 1 to 3 digits
		nums[i] = n
	}
	if nums[0] == 0 {
		if len(nums) < 3 || len(nums) > 4 {
			return bad("releases before 1.0 have three or four numbers, such as 0.10.2.1")
		}
		if nums[1] == 0 {
			return bad("there is no 0.0 release line")
		}
		r := Release{Minor: nums[1], Patch: nums[2]}
		if len(nums) == 4 {
			r.Fix = nums[3]
		}
		return r, nil
	}
	if len(nums) < 2 || len(nums) > 3 {
		return bad("want major.minor or major.minor.patch, such as 3.9.1")
	}
	r := Release{Major: nums[0], Minor: nums[1]}
	if len(nums) == 3 {
		r.Patch = nums[2]
	}
	return r, nil
}

// MustParseRelease is like [ParseRelease] but panics on error. It is meant
// for constants in programs and tests.
func MustParseRelease(s string) Release {
	r, err := ParseRelease(s)
	if err != nil {
		panic(err)
	}
	return r
}

// String returns the release's canonical form: "3.9.1", "4.1.0", "0.10.2.1".
// A pre-1.0 release whose Fix is 0 prints with three numbers ("0.8.2"), the
// way Kafka named 0.8.0 and 0.8.1. The zero Release prints as "unknown".
func (r Release) String() string {
	if r.IsZero() {
		return "unknown"
	}
	var b []byte
	b = strconv.AppendInt(b, int64(r.Major), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(r.Minor), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(r.Patch), 10)
	if r.Major == 0 && r.Fix != 0 {
		b = append(b, '.')
		b = strconv.AppendInt(b, int64(r.Fix), 10)
	}
	return string(b)
}

// IsZero reports whether r is the zero Release, which means "unknown".
func (r Release) IsZero() bool { return r == Release{} }

// Compare returns -1, 0 or +1 as r is older than, equal to, or newer than o.
func (r Release) Compare(o Release) int {
	if c := cmp.Compare(r.Major, o.Major); c != 0 {
		return c
	}
	if c := cmp.Compare(r.Minor, o.Minor); c != 0 {
		return c
	}
	if c := cmp.Compare(r.Patch, o.Patch); c != 0 {
		return c
	}
	return cmp.Compare(r.Fix, o.Fix)
}

// Less reports whether r is older than o.
func (r Release) Less(o Release) bool { return r.Compare(o) < 0 }

// Line returns the release line r belongs to, as a Release: 3.9.1 → 3.9.0,
// 0.10.2.1 → 0.10.2. Kafka's compatibility facts are per line.
func (r Release) Line() Release {
	if r.Major == 0 {
		return Release{Minor: r.Minor, Patch: r.Patch}
	}
	return Release{Major: r.Major, Minor: r.Minor}
}

// Short returns the name of r's line as Kafka writes it in
// inter.broker.protocol.version and --release-version: "3.9", "0.10.2".
func (r Release) Short() string {
	if r.Major == 0 {
		return "0." + strconv.Itoa(r.Minor) + "." + strconv.Itoa(r.Patch)
	}
	return strconv.Itoa(r.Major) + "." + strconv.Itoa(r.Minor)
}

// AtLeast reports whether r is o or newer.
func (r Release) AtLeast(o Release) bool { return r.Compare(o) >= 0 }

// MarshalText implements [encoding.TextMarshaler]. The zero Release
// marshals to an empty string.
func (r Release) MarshalText() ([]byte, error) {
	if r.IsZero() {
		return []byte{}, nil
	}
	return []byte(r.String()), nil
}

// UnmarshalText implements [encoding.TextUnmarshaler]. An empty string
// unmarshals to the zero Release ("unknown").
func (r *Release) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*r = Release{}
		return nil
	}
	p, err := ParseRelease(string(b))
	if err != nil {
		return err
	}
	*r = p
	return nil
}

// v is a terse constructor for the tables in this package.
func v(major, minor int) Release { return Release{Major: major, Minor: minor} }

// v0 constructs a pre-1.0 line such as 0.10.2.
func v0(minor, patch int) Release { return Release{Minor: minor, Patch: patch} }

// Releases returns every Apache Kafka release this package knows, oldest
// first. Releases from 3.3.0 on are the ones Maven Central serves
// (org.apache.kafka:kafka_2.13, checked up to 4.4.0); older ones follow the
// Apache release archive.
func Releases() []Release {
	var out []Release
	for _, l := range lines {
		for _, p := range l.patches {
			out = append(out, l.release(p))
		}
	}
	return out
}

// Newest returns the newest release this package knows (4.4.0).
func Newest() Release {
	l := lines[len(lines)-1]
	return l.release(l.patches[len(l.patches)-1])
}

// IsKnown reports whether r is a release this package lists.
func IsKnown(r Release) bool {
	l, ok := lineOf(r)
	if !ok {
		return false
	}
	return slices.Contains(l.patches, l.patchOf(r))
}

// LatestPatch returns the newest listed release of the line that r belongs
// to (LatestPatch(3.9.0) is 3.9.2), and false if the line is unknown.
func LatestPatch(r Release) (Release, bool) {
	l, ok := lineOf(r)
	if !ok {
		return Release{}, false
	}
	return l.release(l.patches[len(l.patches)-1]), true
}

// knownOrLine returns the facts of r's line, and an error unless r is a listed
// release (or, when unlisted is true, any patch of a known line).
func knownOrLine(r Release, unlisted bool) (*lineFacts, error) {
	if r.IsZero() {
		return nil, &ReleaseError{Input: "", Reason: "release is unknown (zero)", Err: ErrUnknownRelease}
	}
	l, ok := lineOf(r)
	if !ok {
		return nil, &ReleaseError{Input: r.String(), Reason: "compat knows release lines 0.8.0 to " + Newest().Short() + " only", Err: ErrUnknownRelease}
	}
	if !unlisted && !slices.Contains(l.patches, l.patchOf(r)) {
		newest, _ := LatestPatch(r)
		return nil, &ReleaseError{Input: r.String(), Reason: "not a release compat lists; the newest listed " + r.Short() + " release is " + newest.String(), Err: ErrUnknownRelease}
	}
	return l, nil
}
