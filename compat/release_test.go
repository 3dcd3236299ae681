package compat

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseRelease(t *testing.T) {
	tests := []struct {
		in      string
		want    Release
		wantStr string
	}{
		{"3.9.1", Release{Major: 3, Minor: 9, Patch: 1}, "3.9.1"},
		{"4.1", Release{Major: 4, Minor: 1}, "4.1.0"},
		{"2.8.2", Release{Major: 2, Minor: 8, Patch: 2}, "2.8.2"},
		{"4.4.0", Release{Major: 4, Minor: 4}, "4.4.0"},
		{"10.0.0", Release{Major: 10}, "10.0.0"}, // well-formed, not known
		{"0.10.2.1", Release{Minor: 10, Patch: 2, Fix: 1}, "0.10.2.1"},
		{"0.8.2", Release{Minor: 8, Patch: 2}, "0.8.2"},
		{"0.8.2.0", Release{Minor: 8, Patch: 2}, "0.8.2"},
		{"0.11.0.3", Release{Minor: 11, Fix: 3}, "0.11.0.3"},
		{"999.999.999", Release{Major: 999, Minor: 999, Patch: 999}, "999.999.999"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRelease(tt.in)
			if err != nil {
				t.Fatalf("ParseRelease(%q) error: %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseRelease(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
			if s := got.String(); s != tt.wantStr {
				t.Errorf("String() = %q, want %q", s, tt.wantStr)
			}
		})
	}
}

func TestParseReleaseErrors(t *testing.T) {
	tests := []struct {
		in, wantIn string // wantIn: substring of the reason
	}{
		{"", "empty"},
		{"3", "major.minor"},
		{"3.9.1.2", "major.minor"},
		{"3..1", "empty number"},
		{"3.9.", "empty number"},
		{".3.9", "empty number"},
		{"v3.9.1", "decimal"},
		{"3.9.1-rc0", "decimal"},
		{"3.9.x", "decimal"},
		{"-3.9", "decimal"},
		{"+3.9", "decimal"},
		{"3.09", "leading zero"},
		{"03.9", "leading zero"},
		{"1000.0", "too large"},
		{"0.10", "three or four"},
		{"0.10.2.1.0", "three or four"},
		{"0.0.1", "no 0.0"},
		{"0", "three or four"},
		{" 3.9", "decimal"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseRelease(tt.in)
			if err == nil {
				t.Fatalf("ParseRelease(%q) succeeded, want error", tt.in)
			}
			if !errors.Is(err, ErrInvalidRelease) {
				t.Errorf("error %v does not wrap ErrInvalidRelease", err)
			}
			re, ok := errors.AsType[*ReleaseError](err)
			if !ok {
				t.Fatalf("error %T is not a *ReleaseError", err)
			}
			if re.Input != tt.in || !strings.Contains(err.Error(), `"`+tt.in+`"`) {
				t.Errorf("error %q does not quote the input %q", err, tt.in)
			}
			if !strings.Contains(re.Reason, tt.wantIn) {
				t.Errorf("reason %q does not mention %q", re.Reason, tt.wantIn)
			}
		})
	}
}

func TestReleaseCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"3.9.1", "3.9.1", 0},
		{"3.9.0", "3.9.1", -1},
		{"4.0.0", "3.9.2", 1},
		{"3.10.0", "3.9.0", 1}, // numeric, not lexicographic
		{"0.10.2.1", "0.10.2.0", 1},
		{"0.11.0.3", "1.0.0", -1},
		{"4.1", "4.1.0", 0},
		{"2.8.2", "3.0.0", -1},
	}
	for _, tt := range tests {
		a, b := MustParseRelease(tt.a), MustParseRelease(tt.b)
		if got := a.Compare(b); got != tt.want {
			t.Errorf("%v.Compare(%v) = %d, want %d", a, b, got, tt.want)
		}
		if got := b.Compare(a); got != -tt.want {
			t.Errorf("%v.Compare(%v) = %d, want %d", b, a, got, -tt.want)
		}
		if got := a.Less(b); got != (tt.want < 0) {
			t.Errorf("%v.Less(%v) = %v", a, b, got)
		}
		if got := a.AtLeast(b); got != (tt.want >= 0) {
			t.Errorf("%v.AtLeast(%v) = %v", a, b, got)
		}
	}
}

func TestReleaseLineAndShort(t *testing.T) {
	tests := []struct {
		in, line, short string
	}{
		{"3.9.1", "3.9.0", "3.9"},
		{"4.1", "4.1.0", "4.1"},
		{"0.10.2.1", "0.10.2", "0.10.2"},
		{"0.8.0", "0.8.0", "0.8.0"},
		{"2.8.2", "2.8.0", "2.8"},
	}
	for _, tt := range tests {
		r := MustParseRelease(tt.in)
		if got := r.Line().String(); got != tt.line {
			t.Errorf("%v.Line() = %v, want %v", r, got, tt.line)
		}
		if got := r.Short(); got != tt.short {
			t.Errorf("%v.Short() = %v, want %v", r, got, tt.short)
		}
	}
}

func TestReleaseJSON(t *testing.T) {
	type doc struct {
		R Release `json:"r"`
		U Release `json:"u"`
	}
	in := doc{R: MustParseRelease("0.10.2.1")}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"r":"0.10.2.1","u":""}`; string(b) != want {
		t.Errorf("Marshal = %s, want %s", b, want)
	}
	var out doc
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if err := json.Unmarshal([]byte(`{"r":"3.x"}`), &out); !errors.Is(err, ErrInvalidRelease) {
		t.Errorf("Unmarshal of a bad release = %v, want ErrInvalidRelease", err)
	}
	if s := (Release{}).String(); s != "unknown" {
		t.Errorf("zero Release String = %q", s)
	}
}

func TestKnownReleases(t *testing.T) {
	all := Releases()
	if !slices.IsSortedFunc(all, Release.Compare) {
		t.Errorf("Releases() not sorted")
	}
	// The releases Maven served from 3.3.0 on when the catalogue was last
	// updated (December 2026; `go run ./examples/resolve -check` lists newer ones).
	maven := "3.3.0 3.3.1 3.3.2 3.4.0 3.4.1 3.5.0 3.5.1 3.5.2 3.6.0 3.6.1 3.6.2 3.7.0 3.7.1 3.7.2 3.8.0 3.8.1 " +
		"3.9.0 3.9.1 3.9.2 4.0.0 4.0.1 4.0.2 4.1.0 4.1.1 4.1.2 4.2.0 4.2.1 4.2.2 4.3.0 4.3.1 4.3.2 4.4.0"
	var got []string
	for _, r := range all {
		if r.AtLeast(v(3, 3)) {
			got = append(got, r.String())
		}
	}
	if diff := cmp.Diff(strings.Fields(maven), got); diff != "" {
		t.Errorf("releases from 3.3 (-maven +got):\n%s", diff)
	}
	if n := Newest(); n != MustParseRelease("4.4.0") {
		t.Errorf("Newest() = %v", n)
	}
	tests := []struct {
		in     string
		known  bool
		latest string // "" if the line is unknown
	}{
		{"3.9.1", true, "3.9.2"},
		{"3.9.7", false, "3.9.2"},
		{"4.4.0", true, "4.4.0"},
		{"4.5.0", false, ""},
		{"0.8.1.1", true, "0.8.1.1"},
		{"0.10.2.2", true, "0.10.2.2"},
		{"0.7.2", false, ""},
		{"3.5", true, "3.5.2"},
	}
	for _, tt := range tests {
		r := MustParseRelease(tt.in)
		if got := IsKnown(r); got != tt.known {
			t.Errorf("IsKnown(%v) = %v, want %v", r, got, tt.known)
		}
		lp, ok := LatestPatch(r)
		if ok != (tt.latest != "") || (ok && lp.String() != tt.latest) {
			t.Errorf("LatestPatch(%v) = %v, %v; want %q", r, lp, ok, tt.latest)
		}
	}
}
