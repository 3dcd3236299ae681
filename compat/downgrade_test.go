package compat

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSafeDowngradeFloor(t *testing.T) {
	tests := []struct {
		from, want string
	}{
		// Worked examples of the Kafka reference, section 3.4.
		{"4.2-IV1", "4.0-IV1"},
		{"3.9-IV0", "3.7-IV2"},
		{"3.7-IV4", "3.7-IV2"},
		{"3.6-IV0", "3.5-IV2"},
		// A level with didMetadataChange is its own floor.
		{"4.0-IV1", "4.0-IV1"},
		{"4.3-IV0", "4.3-IV0"},
		{"4.4-IV2", "4.4-IV2"},
		{"4.4-IV0", "4.3-IV0"},
		{"3.3-IV3", "3.3-IV3"},
		// Never below 3.3-IV0 (MINIMUM_BOOTSTRAP_VERSION).
		{"3.3-IV0", "3.3-IV0"},
		// No KRaft downgrade before 3.3, or for ZooKeeper-only versions.
		{"3.2-IV0", "3.2-IV0"},
		{"3.1-IV0", "3.1-IV0"},
		{"2.8-IV1", "2.8-IV1"},
	}
	for _, tt := range tests {
		got := SafeDowngradeFloor(mvNamed(tt.from))
		if got.Name != tt.want {
			t.Errorf("SafeDowngradeFloor(%v) = %v, want %v", tt.from, got, tt.want)
		}
	}
	unstable := MetadataVersion{Level: 34, Name: "4.5-IV0", Unstable: true}
	if got := SafeDowngradeFloor(unstable); got != unstable {
		t.Errorf("SafeDowngradeFloor(unstable) = %v", got)
	}
	future := MetadataVersion{Level: 40, Name: "5.0-IV0"}
	if got := SafeDowngradeFloor(future); got != future {
		t.Errorf("SafeDowngradeFloor(unknown level) = %v", got)
	}
}

func TestCanDowngrade(t *testing.T) {
	tests := []struct {
		from, to string
		wantErr  error
		blocker  string
		floor    string
	}{
		{"4.2-IV1", "4.0-IV1", nil, "", ""},
		{"4.2-IV1", "4.0-IV0", ErrDowngradePastMetadataChange, "4.0-IV1", "4.0-IV1"},
		{"4.2-IV1", "3.9-IV0", ErrDowngradePastMetadataChange, "4.0-IV1", "4.0-IV1"},
		{"3.9-IV0", "3.7-IV2", nil, "", ""},
		{"3.9-IV0", "3.7-IV1", ErrDowngradePastMetadataChange, "3.7-IV2", "3.7-IV2"},
		{"3.9-IV0", "3.6-IV2", ErrDowngradePastMetadataChange, "3.7-IV2", "3.7-IV2"},
		{"4.4-IV2", "4.4-IV1", ErrDowngradePastMetadataChange, "4.4-IV2", "4.4-IV2"},
		{"4.1-IV1", "4.0-IV3", nil, "", ""},
		{"3.3-IV0", "3.3-IV0", nil, "", ""},
		{"3.9-IV0", "4.0-IV0", ErrNotDowngrade, "", ""},
		{"3.3-IV0", "3.2-IV0", ErrUnknownMetadataVersion, "", ""}, // below 3.3-IV0
		{"2.8-IV1", "2.7-IV2", ErrUnknownMetadataVersion, "", ""}, // ZooKeeper-only
	}
	for _, tt := range tests {
		err := CanDowngrade(mvNamed(tt.from), mvNamed(tt.to))
		if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
			t.Errorf("CanDowngrade(%v, %v) = %v, want %v", tt.from, tt.to, err, tt.wantErr)
			continue
		}
		if tt.blocker == "" {
			continue
		}
		de, ok := errors.AsType[*DowngradeError](err)
		if !ok {
			t.Fatalf("error %T is not a *DowngradeError", err)
		}
		got := []string{de.Blocker.Name, de.Floor.Name, de.From.Name, de.To.Name}
		if diff := cmp.Diff([]string{tt.blocker, tt.floor, tt.from, tt.to}, got); diff != "" {
			t.Errorf("CanDowngrade(%v, %v) blocker/floor/from/to (-want +got):\n%s", tt.from, tt.to, diff)
		}
	}
	unstable := MetadataVersion{Level: 30, Name: "4.3-IV0", Unstable: true}
	if err := CanDowngrade(unstable, mvNamed("4.2-IV1")); !errors.Is(err, ErrUnstableMetadataVersion) {
		t.Errorf("CanDowngrade(unstable) = %v", err)
	}
}

// TestCanDowngradeAgreesWithFloor checks, for every pair of levels, that a
// downgrade is possible exactly down to the floor.
func TestCanDowngradeAgreesWithFloor(t *testing.T) {
	for _, from := range MetadataVersions() {
		if from.Level < minBootstrapMV.Level {
			continue
		}
		floor := SafeDowngradeFloor(from)
		for _, to := range MetadataVersions() {
			if to.Level < minBootstrapMV.Level || to.Level > from.Level {
				continue
			}
			err := CanDowngrade(from, to)
			if ok := to.Level >= floor.Level; ok != (err == nil) {
				t.Errorf("CanDowngrade(%v, %v) = %v but floor is %v", from, to, err, floor)
			}
		}
	}
}
