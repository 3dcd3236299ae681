package upgrade

import (
	"errors"
	"strings"
	"testing"

	"github.com/kupgrade/kupgrade/compat"
)

// TestMigrationRefusedByOtherStrategies: a route that migrates (from
// ZooKeeper mode, or a migration under way) is refused by
// NewStopTheWorldPlan, downtime accepted or not, and by NewReplacePlan,
// each saying why; the same ZooKeeper cluster's upgrade within 3.9 is not.
func TestMigrationRefusedByOtherStrategies(t *testing.T) {
	to := Target{Version: compat.MustParseRelease("4.1.2")}
	zk := compat.State{Mode: compat.ModeZooKeeper, Finalized: compat.FeatureLevels{}, Nodes: nodes("1:b:3.8.1:3.8", "2:b:3.8.1:3.8", "3:b:3.8.1:3.8")}
	migrating := compat.State{Mode: compat.ModeMigrating, Finalized: compat.FeatureLevels{}, Nodes: nodes("1:b:3.9.2:3.9", "2:b:3.9.2:3.9", "3:b:3.9.2:3.9")}
	for i := range migrating.Nodes {
		migrating.Nodes[i].Mode, migrating.Nodes[i].Migration = compat.ModeZooKeeper, true
	}
	for _, tt := range []struct {
		name  string
		state compat.State
	}{{"zookeeper", zk}, {"migrating", migrating}} {
		for _, opts := range [][]PlanOption{nil, {AcceptDowntime()}} {
			_, err := NewStopTheWorldPlan(tt.state, to, opts...)
			if !errors.Is(err, ErrUnsupportedPlan) || !strings.Contains(err.Error(), "migrates from ZooKeeper to KRaft, which stop-the-world does not do") {
				t.Errorf("%s: NewStopTheWorldPlan (%d options): %v, want ErrUnsupportedPlan saying the migration is not stop-the-world's", tt.name, len(opts), err)
			}
			var de *DowntimeError
			if errors.As(err, &de) {
				t.Errorf("%s: refused as a downtime question (%v), not as a migration", tt.name, err)
			}
		}
		if _, err := NewReplacePlan(tt.state, to); !errors.Is(err, ErrUnsupportedPlan) || !strings.Contains(err.Error(), "migration") {
			t.Errorf("%s: NewReplacePlan: %v, want ErrUnsupportedPlan naming the migration", tt.name, err)
		}
	}
	// Within ZooKeeper mode stop-the-world still plans.
	if _, err := NewStopTheWorldPlan(zk, Target{Version: compat.MustParseRelease("3.9.2")}, AcceptDowntime()); err != nil {
		t.Errorf("NewStopTheWorldPlan 3.8.1 → 3.9.2 (ZooKeeper): %v", err)
	}
}
