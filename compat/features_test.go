package compat

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSupportedFeatures is what a node advertises in ApiVersions v4 with
// unstable features off: the table a real-broker cross-check compares.
func TestSupportedFeatures(t *testing.T) {
	mv := func(lo, hi int16) LevelRange { return LevelRange{lo, hi} }
	upTo := func(hi int16) LevelRange { return LevelRange{0, hi} }
	tests := []struct {
		rel  string
		want map[string]LevelRange
	}{
		{"3.3.2", map[string]LevelRange{"metadata.version": mv(1, 7)}},
		{"3.6.2", map[string]LevelRange{"metadata.version": mv(1, 14)}},
		{"3.8.1", map[string]LevelRange{"metadata.version": mv(1, 20)}},
		{"3.9.1", map[string]LevelRange{"metadata.version": mv(1, 21), "kraft.version": upTo(1)}},
		{"4.0.0", map[string]LevelRange{"metadata.version": mv(7, 25), "kraft.version": upTo(1),
			"transaction.version": upTo(2), "group.version": upTo(1), "eligible.leader.replicas.version": upTo(1)}},
		{"4.1.1", map[string]LevelRange{"metadata.version": mv(7, 27), "kraft.version": upTo(1),
			"transaction.version": upTo(2), "group.version": upTo(1), "eligible.leader.replicas.version": upTo(1), "share.version": upTo(1)}},
		{"4.2.1", map[string]LevelRange{"metadata.version": mv(7, 29), "kraft.version": upTo(1),
			"transaction.version": upTo(2), "group.version": upTo(1), "eligible.leader.replicas.version": upTo(1), "share.version": upTo(1), "streams.version": upTo(1)}},
		{"4.3.1", map[string]LevelRange{"metadata.version": mv(7, 30), "kraft.version": upTo(1),
			"transaction.version": upTo(2), "group.version": upTo(1), "eligible.leader.replicas.version": upTo(1), "share.version": upTo(1), "streams.version": upTo(1)}},
		{"4.4.0", map[string]LevelRange{"metadata.version": mv(7, 33), "kraft.version": upTo(1),
			"transaction.version": upTo(2), "group.version": upTo(1), "eligible.leader.replicas.version": upTo(1), "share.version": upTo(2), "streams.version": upTo(1)}},
	}
	for _, tt := range tests {
		got, err := SupportedFeatures(rel(tt.rel))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("SupportedFeatures(%v) (-want +got):\n%s", tt.rel, diff)
		}
	}
	if _, err := SupportedFeatures(rel("3.2.3")); !errors.Is(err, ErrNoFeatureVersioning) {
		t.Errorf("SupportedFeatures(3.2.3) = %v", err)
	}
}

// TestDefaultFeatureLevels is what a fresh `kafka-storage format` of each
// release finalizes.
func TestDefaultFeatureLevels(t *testing.T) {
	tests := []struct {
		rel    string
		quorum QuorumKind
		want   FeatureLevels
	}{
		{"3.3.2", StaticQuorum, FeatureLevels{"metadata.version": 7}},
		{"3.5.2", StaticQuorum, FeatureLevels{"metadata.version": 11}},
		{"3.7.2", StaticQuorum, FeatureLevels{"metadata.version": 19}},
		{"3.9.1", StaticQuorum, FeatureLevels{"metadata.version": 21, "kraft.version": 0, "transaction.version": 0}},
		{"3.9.1", DynamicQuorum, FeatureLevels{"metadata.version": 21, "kraft.version": 1, "transaction.version": 0}},
		{"4.0.0", StaticQuorum, FeatureLevels{"metadata.version": 25, "kraft.version": 0, "transaction.version": 2, "group.version": 1, "eligible.leader.replicas.version": 0}},
		{"4.1.1", DynamicQuorum, FeatureLevels{"metadata.version": 27, "kraft.version": 1, "transaction.version": 2, "group.version": 1, "eligible.leader.replicas.version": 1, "share.version": 0, "streams.version": 0}},
		{"4.2.1", StaticQuorum, FeatureLevels{"metadata.version": 29, "kraft.version": 0, "transaction.version": 2, "group.version": 1, "eligible.leader.replicas.version": 1, "share.version": 1, "streams.version": 1}},
		{"4.3.0", DynamicQuorum, FeatureLevels{"metadata.version": 30, "kraft.version": 1, "transaction.version": 2, "group.version": 1, "eligible.leader.replicas.version": 1, "share.version": 1, "streams.version": 1}},
		// franz-go kversion V4_4_0: metadata.version=33, share.version=2.
		{"4.4.0", DynamicQuorum, FeatureLevels{"metadata.version": 33, "kraft.version": 1, "transaction.version": 2, "group.version": 1, "eligible.leader.replicas.version": 1, "share.version": 2, "streams.version": 1}},
	}
	for _, tt := range tests {
		got, err := DefaultFeatureLevels(rel(tt.rel), tt.quorum)
		if err != nil {
			t.Fatalf("DefaultFeatureLevels(%v, %v): %v", tt.rel, tt.quorum, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("DefaultFeatureLevels(%v, %v) (-want +got):\n%s", tt.rel, tt.quorum, diff)
		}
	}
	if _, err := DefaultFeatureLevels(rel("3.8.1"), DynamicQuorum); !errors.Is(err, ErrUnknownFeature) {
		t.Errorf("dynamic quorum on 3.8: %v", err)
	}
	nz := FeatureLevels{"metadata.version": 21, "kraft.version": 0}.NonZero()
	if diff := cmp.Diff(FeatureLevels{"metadata.version": 21}, nz); diff != "" {
		t.Errorf("NonZero (-want +got):\n%s", diff)
	}
}

// TestReleaseVersionLevels is what `kafka-features upgrade --release-version`
// sends.
func TestReleaseVersionLevels(t *testing.T) {
	tests := []struct {
		mv, reader string
		want       FeatureLevels
		wantErr    error
	}{
		// FeatureCommand help text: "3.9-IV0 will set metadata.version=21 and kraft.version=1".
		{"3.9-IV0", "4.1.1", FeatureLevels{"metadata.version": 21, "kraft.version": 1, "transaction.version": 0, "group.version": 0, "eligible.leader.replicas.version": 0, "share.version": 0, "streams.version": 0}, nil},
		{"4.0", "4.2.1", FeatureLevels{"metadata.version": 25, "kraft.version": 1, "transaction.version": 2, "group.version": 1, "eligible.leader.replicas.version": 0, "share.version": 0, "streams.version": 0}, nil},
		{"4.1", "4.2.1", FeatureLevels{"metadata.version": 27, "kraft.version": 1, "transaction.version": 2, "group.version": 1, "eligible.leader.replicas.version": 1, "share.version": 0, "streams.version": 0}, nil},
		{"4.2-IV0", "4.2.1", FeatureLevels{"metadata.version": 28, "kraft.version": 1, "transaction.version": 2, "group.version": 1, "eligible.leader.replicas.version": 1, "share.version": 1, "streams.version": 0}, nil},
		{"4.4-IV0", "4.4.0", FeatureLevels{"metadata.version": 31, "kraft.version": 1, "transaction.version": 2, "group.version": 1, "eligible.leader.replicas.version": 1, "share.version": 2, "streams.version": 1}, nil},
		{"4.3", "4.4.0", FeatureLevels{"metadata.version": 30, "kraft.version": 1, "transaction.version": 2, "group.version": 1, "eligible.leader.replicas.version": 1, "share.version": 1, "streams.version": 1}, nil},
		{"3.3-IV0", "3.9.1", FeatureLevels{"metadata.version": 4, "kraft.version": 0, "transaction.version": 0}, nil},
		{"3.2", "3.9.1", nil, ErrUnknownMetadataVersion}, // below 3.3-IV0
	}
	for _, tt := range tests {
		mv := MustParseMetadataVersion(tt.mv, rel(tt.reader))
		got, err := ReleaseVersionLevels(mv, rel(tt.reader))
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("ReleaseVersionLevels(%v, %v) error %v, want %v", tt.mv, tt.reader, err, tt.wantErr)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ReleaseVersionLevels(%v, %v) (-want +got):\n%s", tt.mv, tt.reader, diff)
		}
	}
	unstable := MustParseMetadataVersion("4.0-IV0", rel("3.9.1"))
	if _, err := ReleaseVersionLevels(unstable, rel("3.9.1")); !errors.Is(err, ErrUnstableMetadataVersion) {
		t.Errorf("unstable --release-version: %v", err)
	}
}

func TestProductionMaxAndDefaultLevel(t *testing.T) {
	tests := []struct {
		feature  string
		rel      string
		mv       string // for DefaultFeatureLevel; the release's latest if empty
		max, def int16
	}{
		{"metadata.version", "4.2.1", "", 29, 29},
		{"kraft.version", "3.8.1", "", 0, 0},
		{"kraft.version", "3.9.1", "", 1, 1},
		{"transaction.version", "3.9.1", "", 0, 0},
		{"transaction.version", "4.0.0", "", 2, 2},
		{"transaction.version", "4.0.0", "4.0-IV1", 2, 0},
		{"group.version", "4.0.0", "4.0-IV0", 1, 1},
		{"group.version", "4.0.0", "3.9", 1, 0},
		{"eligible.leader.replicas.version", "4.0.2", "", 1, 0}, // production but not default in 4.0
		{"eligible.leader.replicas.version", "4.1.0", "", 1, 1},
		{"share.version", "4.1.1", "", 1, 0}, // preview in 4.1
		{"share.version", "4.2.0", "", 1, 1},
		{"share.version", "4.3.1", "", 1, 1},
		{"share.version", "4.4.0", "", 2, 2},
		{"share.version", "4.4.0", "4.3-IV0", 2, 1},
		{"streams.version", "4.1.1", "", 0, 0},
		{"streams.version", "4.2.1", "", 1, 1},
		{"streams.version", "4.2.1", "4.2-IV0", 1, 0},
	}
	for _, tt := range tests {
		r := rel(tt.rel)
		got, err := ProductionMaxLevel(tt.feature, r)
		if err != nil || got != tt.max {
			t.Errorf("ProductionMaxLevel(%s, %v) = %d, %v; want %d", tt.feature, r, got, err, tt.max)
		}
		mv, _ := LatestProduction(r)
		if tt.mv != "" {
			mv = MustParseMetadataVersion(tt.mv, r)
		}
		def, err := DefaultFeatureLevel(tt.feature, mv, r)
		if err != nil || def != tt.def {
			t.Errorf("DefaultFeatureLevel(%s, %v, %v) = %d, %v; want %d", tt.feature, mv, r, def, err, tt.def)
		}
	}
	if _, err := ProductionMaxLevel("nope.version", rel("4.2.1")); !errors.Is(err, ErrUnknownFeature) {
		t.Errorf("unknown feature: %v", err)
	}
	if _, err := DefaultFeatureLevel("nope.version", mvNamed("4.2-IV1"), rel("4.2.1")); !errors.Is(err, ErrUnknownFeature) {
		t.Errorf("unknown feature: %v", err)
	}
	if _, err := ProductionMaxLevel("group.version", rel("3.2.3")); !errors.Is(err, ErrNoFeatureVersioning) {
		t.Errorf("pre-3.3: %v", err)
	}
}

func TestCheckFeatureUpdate(t *testing.T) {
	fin := func(mv int16, kv ...any) FeatureLevels {
		f := FeatureLevels{"metadata.version": mv}
		for i := 0; i < len(kv); i += 2 {
			f[kv[i].(string)] = int16(kv[i+1].(int))
		}
		return f
	}
	tests := []struct {
		name      string
		feature   string
		from, to  int16
		finalized FeatureLevels
		reader    string
		wantErr   error
	}{
		{"upgrade MV", "metadata.version", 21, 27, fin(21), "4.1.1", nil},
		{"MV to unstable", "metadata.version", 27, 28, fin(27), "4.1.1", ErrUnstableMetadataVersion},
		{"MV safe downgrade", "metadata.version", 29, 24, fin(29), "4.2.1", nil},
		{"MV downgrade past 4.0-IV1", "metadata.version", 29, 22, fin(29), "4.2.1", ErrDowngradePastMetadataChange},
		{"ELR needs 4.0-IV1", "eligible.leader.replicas.version", 0, 1, fin(22), "4.0.0", ErrFeatureDependency},
		{"ELR at 4.0-IV1", "eligible.leader.replicas.version", 0, 1, fin(23), "4.0.0", nil},
		{"ELR off again", "eligible.leader.replicas.version", 1, 0, fin(25), "4.0.0", nil},
		{"share.version 2 not in 4.3", "share.version", 1, 2, fin(30), "4.3.1", ErrUnknownFeature},
		{"share.version 2 in 4.4", "share.version", 1, 2, fin(33), "4.4.0", nil},
		{"streams not production in 4.1", "streams.version", 0, 1, fin(27), "4.1.1", ErrUnknownFeature},
		{"kraft.version in 4.0", "kraft.version", 0, 1, fin(25), "4.0.0", ErrFeatureUpdateRefused},
		{"kraft.version in 4.1", "kraft.version", 0, 1, fin(27), "4.1.1", nil},
		{"kraft.version downgrade", "kraft.version", 1, 0, fin(27), "4.2.1", ErrFeatureUpdateRefused},
		{"unknown feature", "nope.version", 0, 1, fin(27), "4.2.1", ErrUnknownFeature},
		{"pre-3.3", "metadata.version", 3, 7, fin(3), "3.2.3", ErrNoFeatureVersioning},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckFeatureUpdate(tt.feature, tt.from, tt.to, tt.finalized, rel(tt.reader))
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("CheckFeatureUpdate = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestFeatureCatalogue(t *testing.T) {
	names := []string{}
	for _, f := range Features() {
		names = append(names, f.Name)
		for i, l := range f.Levels {
			if int(l.Level) != i || l.Feature != f.Name || l.Note == "" {
				t.Errorf("%s level %d malformed: %+v", f.Name, i, l)
			}
			if i > 0 && l.Bootstrap.IsZero() {
				t.Errorf("%s=%d has no bootstrap version", f.Name, i)
			}
		}
	}
	want := []string{"kraft.version", "transaction.version", "group.version", "eligible.leader.replicas.version", "share.version", "streams.version"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("Features() (-want +got):\n%s", diff)
	}
	if _, ok := LookupFeature("metadata.version"); ok {
		t.Errorf("metadata.version is not in the catalogue")
	}
	f, _ := LookupFeature("eligible.leader.replicas.version")
	l, _ := f.Level(1)
	if diff := cmp.Diff(FeatureLevels{"metadata.version": 23}, l.Requires); diff != "" {
		t.Errorf("ELR dependency (-want +got):\n%s", diff)
	}
	if _, ok := f.Level(2); ok {
		t.Errorf("ELR has no level 2")
	}
	// The catalogue is a copy.
	f.Levels[0].Note = "changed"
	if g, _ := LookupFeature("eligible.leader.replicas.version"); g.Levels[0].Note == "changed" {
		t.Errorf("LookupFeature returned shared storage")
	}
	fl := FeatureLevels{"share.version": 1, "metadata.version": 29, "group.version": 1}
	if got, want := fl.String(), "metadata.version=29 group.version=1 share.version=1"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
