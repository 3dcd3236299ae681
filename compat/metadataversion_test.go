package compat

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func rel(s string) Release { return MustParseRelease(s) }

func TestMetadataVersionTable(t *testing.T) {
	all := MetadataVersions()
	if all[0].Name != "0.8.0" || all[len(all)-1].Name != "4.4-IV2" {
		t.Fatalf("table runs %v…%v, want 0.8.0…4.4-IV2", all[0], all[len(all)-1])
	}
	seen := map[string]bool{}
	var level int16
	for i, mv := range all {
		if seen[mv.Name] {
			t.Errorf("duplicate %v", mv)
		}
		seen[mv.Name] = true
		if i > 0 && !all[i-1].Less(mv) {
			t.Errorf("%v is not after %v", mv, all[i-1])
		}
		switch {
		case mv.Name == "3.0-IV1":
			level = 1
		case level > 0:
			level++
		}
		want := level
		if level == 0 {
			want = -1
		}
		if mv.Level != want {
			t.Errorf("%v has level %d, want %d (levels are contiguous from 3.0-IV1)", mv, mv.Level, want)
		}
		if mv.Note == "" {
			t.Errorf("%v has no note", mv)
		}
	}
	// didMetadataChange of every KRaft level, from the sources listed in tables.go.
	changed := []int16{1, 3, 5, 6, 7, 8, 11, 13, 14, 15, 17, 23, 30, 32, 33}
	for _, mv := range all {
		if mv.Level < 1 {
			continue
		}
		want := false
		for _, c := range changed {
			want = want || c == mv.Level
		}
		if mv.DidMetadataChange != want {
			t.Errorf("%v (level %d) DidMetadataChange = %v, want %v", mv, mv.Level, mv.DidMetadataChange, want)
		}
	}
}

func TestLatestProduction(t *testing.T) {
	tests := []struct {
		rel   string
		name  string
		level int16
	}{
		{"0.8.0", "0.8.0", -1},
		{"0.8.2.2", "0.8.2", -1},
		{"0.10.0.1", "0.10.0-IV1", -1},
		{"0.10.1.1", "0.10.1-IV2", -1},
		{"0.11.0.3", "0.11.0-IV2", -1},
		{"1.0.2", "1.0-IV0", -1},
		{"2.0.1", "2.0-IV1", -1},
		{"2.1.1", "2.1-IV2", -1},
		{"2.4.1", "2.4-IV1", -1},
		{"2.7.2", "2.7-IV2", -1},
		{"2.8.2", "2.8-IV1", -1},
		{"3.0.2", "3.0-IV1", 1},
		{"3.1.2", "3.1-IV0", 2},
		{"3.2.3", "3.2-IV0", 3},
		{"3.3.2", "3.3-IV3", 7},
		{"3.4.1", "3.4-IV0", 8},
		{"3.5.2", "3.5-IV2", 11},
		{"3.6.2", "3.6-IV2", 14},
		{"3.7.2", "3.7-IV4", 19},
		{"3.8.1", "3.8-IV0", 20},
		{"3.9.0", "3.9-IV0", 21},
		{"3.9.2", "3.9-IV0", 21},
		{"4.0.2", "4.0-IV3", 25},
		{"4.1.2", "4.1-IV1", 27},
		{"4.2.0", "4.2-IV1", 29},
		{"4.2.1", "4.2-IV1", 29},
		{"4.3.0", "4.3-IV0", 30},
		{"4.3.1", "4.3-IV0", 30},
		{"4.4.0", "4.4-IV2", 33},
		{"4.4.7", "4.4-IV2", 33}, // unlisted patches of known lines are fine here
	}
	for _, tt := range tests {
		mv, err := LatestProduction(rel(tt.rel))
		if err != nil {
			t.Errorf("LatestProduction(%v): %v", tt.rel, err)
			continue
		}
		if mv.Name != tt.name || mv.Level != tt.level || mv.Unstable {
			t.Errorf("LatestProduction(%v) = %v (level %d, unstable %v), want %v (level %d)", tt.rel, mv, mv.Level, mv.Unstable, tt.name, tt.level)
		}
	}
	for _, bad := range []string{"4.5.0", "0.7.2", "5.0"} {
		if _, err := LatestProduction(rel(bad)); !errors.Is(err, ErrUnknownRelease) {
			t.Errorf("LatestProduction(%v) = %v, want ErrUnknownRelease", bad, err)
		}
	}
}

func TestSupportedMetadataVersions(t *testing.T) {
	tests := []struct {
		rel      string
		min, max string
	}{
		{"3.3.1", "3.0-IV1", "3.3-IV3"},
		{"3.5.2", "3.0-IV1", "3.5-IV2"},
		{"3.7.1", "3.0-IV1", "3.7-IV4"},
		{"3.9.1", "3.0-IV1", "3.9-IV0"}, // kafka-features describe on 3.9: SupportedMinVersion 3.0-IV1
		{"4.0.0", "3.3-IV3", "4.0-IV3"},
		{"4.1.1", "3.3-IV3", "4.1-IV1"},
		{"4.2.1", "3.3-IV3", "4.2-IV1"},
		{"4.3.1", "3.3-IV3", "4.3-IV0"},
		{"4.4.0", "3.3-IV3", "4.4-IV2"},
	}
	for _, tt := range tests {
		r, err := SupportedMetadataVersions(rel(tt.rel))
		if err != nil {
			t.Errorf("SupportedMetadataVersions(%v): %v", tt.rel, err)
			continue
		}
		if r.Min.Name != tt.min || r.Max.Name != tt.max {
			t.Errorf("SupportedMetadataVersions(%v) = %v, want %v…%v", tt.rel, r, tt.min, tt.max)
		}
		if !r.Contains(r.Min) || !r.Contains(r.Max) || r.Contains(mvNamed("3.0-IV0")) {
			t.Errorf("%v.Contains is wrong", r)
		}
	}
	for _, old := range []string{"3.2.3", "2.8.2", "0.8.0"} {
		if _, err := SupportedMetadataVersions(rel(old)); !errors.Is(err, ErrNoFeatureVersioning) {
			t.Errorf("SupportedMetadataVersions(%v) = %v, want ErrNoFeatureVersioning", old, err)
		}
	}
}

func TestUnstableMetadataVersions(t *testing.T) {
	type u struct {
		Name  string
		Level int16
		DMC   bool
	}
	tests := []struct {
		rel  string
		want []u
	}{
		{"3.6.2", nil},
		{"3.7.0", []u{{"3.8-IV0", 20, true}}},
		{"3.8.1", []u{{"3.9-IV0", 21, true}}},
		{"3.9.1", []u{{"4.0-IV0", 22, true}, {"4.0-IV1", 23, false}}}, // meanings swapped in 4.0
		{"4.0.1", []u{{"4.1-IV0", 26, false}}},
		{"4.1.1", []u{{"4.2-IV0", 28, false}, {"4.2-IV1", 29, false}}},
		{"4.2.1", []u{{"4.3-IV0", 30, false}}}, // 4.3 made it true
		{"4.3.1", []u{{"4.4-IV0", 31, false}}}, // 4.4 kept it false
		{"4.4.0", []u{{"4.5-IV0", 34, false}}},
	}
	for _, tt := range tests {
		got, err := UnstableMetadataVersions(rel(tt.rel))
		if err != nil {
			t.Fatal(err)
		}
		var gotU []u
		for _, mv := range got {
			if !mv.Unstable {
				t.Errorf("%v from %v not marked unstable", mv, tt.rel)
			}
			gotU = append(gotU, u{mv.Name, mv.Level, mv.DidMetadataChange})
		}
		if diff := cmp.Diff(tt.want, gotU); diff != "" {
			t.Errorf("UnstableMetadataVersions(%v) (-want +got):\n%s", tt.rel, diff)
		}
	}
}

func TestLookupMetadataVersion(t *testing.T) {
	tests := []struct {
		level   int16
		reader  string
		want    string // name, or "" for an error
		wantErr error
	}{
		{21, "3.9.1", "3.9-IV0", nil},
		{1, "3.9.1", "3.0-IV1", nil},
		{7, "4.0.0", "3.3-IV3", nil},
		{6, "4.0.0", "", ErrUnknownMetadataVersion}, // below 4.x's minimum
		{22, "3.9.1", "", ErrUnstableMetadataVersion},
		{24, "3.9.1", "", ErrUnknownMetadataVersion}, // not defined in 3.9 at all
		{30, "4.2.1", "", ErrUnstableMetadataVersion},
		{30, "4.3.0", "4.3-IV0", nil},
		{33, "4.4.0", "4.4-IV2", nil},
		{34, "4.4.0", "", ErrUnstableMetadataVersion},
		{35, "4.4.0", "", ErrUnknownMetadataVersion},
		{0, "4.4.0", "", ErrUnknownMetadataVersion},
		{-1, "3.9.1", "", ErrUnknownMetadataVersion},
		{3, "3.2.3", "", ErrNoFeatureVersioning},
		{3, "4.5.0", "", ErrUnknownRelease},
	}
	for _, tt := range tests {
		got, err := LookupMetadataVersion(tt.level, rel(tt.reader))
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("LookupMetadataVersion(%d, %v) = %v, %v; want %v", tt.level, tt.reader, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got.Name != tt.want {
			t.Errorf("LookupMetadataVersion(%d, %v) = %v, %v; want %v", tt.level, tt.reader, got, err, tt.want)
		}
	}
	// An unstable level is reported with the reader's own definition, never guessed.
	_, err := LookupMetadataVersion(22, rel("3.9.1"))
	me, ok := errors.AsType[*MetadataVersionError](err)
	if !ok {
		t.Fatalf("error %T, want *MetadataVersionError", err)
	}
	want := MetadataVersion{Level: 22, Name: "4.0-IV0", DidMetadataChange: true, Unstable: true, Note: me.Unstable.Note}
	if diff := cmp.Diff(want, me.Unstable); diff != "" {
		t.Errorf("unstable definition (-want +got):\n%s", diff)
	}
	if !strings.Contains(err.Error(), "meaning can change") {
		t.Errorf("error %q does not say why it is not guessed", err)
	}
}

func TestMetadataVersionMethods(t *testing.T) {
	mv := mvNamed("0.10.0-IV1")
	if mv.Line() != "0.10.0" || mv.IsKRaft() || mv.RecordVersion() != 1 {
		t.Errorf("%v: Line %q IsKRaft %v RecordVersion %d", mv, mv.Line(), mv.IsKRaft(), mv.RecordVersion())
	}
	tests := []struct {
		name string
		rv   int
	}{{"0.8.0", 0}, {"0.9.0", 0}, {"0.10.0-IV0", 1}, {"0.10.2-IV0", 1}, {"0.11.0-IV0", 2}, {"2.8-IV1", 2}, {"4.4-IV2", 2}}
	for _, tt := range tests {
		if got := mvNamed(tt.name).RecordVersion(); got != tt.rv {
			t.Errorf("%v.RecordVersion() = %d, want %d", tt.name, got, tt.rv)
		}
	}
	if !mvNamed("2.8-IV1").Less(mvNamed("3.0-IV0")) || !mvNamed("3.0-IV0").Less(mvNamed("3.0-IV1")) {
		t.Errorf("declaration order broken around 3.0")
	}
	unstable := MetadataVersion{Level: 34, Name: "4.5-IV0", Unstable: true}
	if !mvNamed("4.4-IV2").Less(unstable) {
		t.Errorf("4.4-IV2 should order before level 34")
	}
	if (MetadataVersion{}).String() != "unknown" || !(MetadataVersion{}).IsZero() {
		t.Errorf("zero MetadataVersion")
	}
}

func TestFinalizableMetadataVersions(t *testing.T) {
	tests := []struct{ rel, min, max string }{
		{"3.3.2", "3.3-IV0", "3.3-IV3"},
		{"3.9.1", "3.3-IV0", "3.9-IV0"},
		{"4.0.0", "3.3-IV3", "4.0-IV3"},
		{"4.4.0", "3.3-IV3", "4.4-IV2"},
	}
	for _, tt := range tests {
		r, err := FinalizableMetadataVersions(rel(tt.rel))
		if err != nil || r.Min.Name != tt.min || r.Max.Name != tt.max {
			t.Errorf("FinalizableMetadataVersions(%v) = %v, %v; want %v…%v", tt.rel, r, err, tt.min, tt.max)
		}
	}
	if _, err := FinalizableMetadataVersions(rel("3.1.0")); !errors.Is(err, ErrNoFeatureVersioning) {
		t.Errorf("3.1: %v", err)
	}
	if _, err := FinalizableMetadataVersions(rel("5.1.0")); !errors.Is(err, ErrUnknownRelease) {
		t.Errorf("5.1: %v", err)
	}
}
