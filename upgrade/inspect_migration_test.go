package upgrade

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kupgrade/kupgrade/compat"
)

func TestMigrationStatusPhases(t *testing.T) {
	brokers := func(migration ...bool) []NodeInfo {
		var ns []NodeInfo
		for i, m := range migration {
			ns = append(ns, NodeInfo{NodeState: compat.NodeState{ID: int32(i + 1), Migration: m}})
		}
		return ns
	}
	allZK := map[int32]bool{1: true, 2: true, 3: true}
	copied := &migrationState{Started: true, Offset: 42, Controller: 3000}
	pending := &migrationState{Started: true, Offset: -1, Controller: 3000}
	for _, tc := range []struct {
		name        string
		nodes       []NodeInfo
		zk          map[int32]bool
		controllers []int32
		zn          *migrationState
		znErr       error
		want        MigrationPhase
		why         string
	}{
		{"plain ZooKeeper", brokers(false, false, false), allZK, nil, nil, nil, MigrationPhaseZooKeeper, ""},
		{"controllers provisioned", brokers(false, false, false), allZK, []int32{3000}, &migrationState{Offset: -1, Controller: -1}, nil, MigrationPhaseControllers, "controllers [3000]"},
		{"brokers entering migration mode", brokers(true, false, false), allZK, []int32{3000}, pending, nil, MigrationPhaseNotComplete, "[2 3] still without the migration flag"},
		{"copy pending", brokers(true, true, true), allZK, []int32{3000}, pending, nil, MigrationPhaseNotComplete, "no KRaft metadata offset"},
		{"znode unreadable", brokers(true, true, true), allZK, []int32{3000}, nil, errors.New("connection refused"), MigrationPhaseNotComplete, "connection refused"},
		{"dual-write", brokers(true, true, true), allZK, []int32{3000}, copied, nil, MigrationPhaseDualWrite, "offset 42 by controller 3000"},
		{"brokers moving to KRaft", brokers(false, true, true), map[int32]bool{1: false, 2: true, 3: true}, []int32{3000}, copied, nil, MigrationPhaseKRaftBrokers, "brokers [1] in KRaft mode, [2 3] in ZooKeeper mode"},
		{"KRaft", brokers(false, false, false), map[int32]bool{1: false, 2: false, 3: false}, []int32{3000}, nil, nil, MigrationPhaseKRaft, "every broker"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := migrationStatus(tc.nodes, tc.zk, tc.controllers, tc.zn, tc.znErr)
			if m.Phase != tc.want {
				t.Errorf("phase %q, want %q (%s)", m.Phase, tc.want, m.Why)
			}
			if !strings.Contains(m.Why, tc.why) {
				t.Errorf("why %q does not say %q", m.Why, tc.why)
			}
			if tc.zn != nil && (!m.ZNodeRead || m.ZNodeOffset != tc.zn.Offset) {
				t.Errorf("znode read %v offset %d, want the znode's offset %d", m.ZNodeRead, m.ZNodeOffset, tc.zn.Offset)
			}
		})
	}
}

func TestInspectionStringShowsMigration(t *testing.T) {
	ns := []NodeInfo{{NodeState: compat.NodeState{ID: 1, Migration: true}}}
	m := migrationStatus(ns, map[int32]bool{1: true}, []int32{3000}, &migrationState{Started: true, Offset: 7, Controller: 3000}, nil)
	in := Inspection{State: compat.State{Mode: compat.ModeMigrating}, Controller: -1, Nodes: ns, Migration: &m}
	got := in.String()
	if want := "migration: dual-write (/migration records KRaft metadata offset 7 by controller 3000; brokers [1] in migration mode)\n"; !strings.Contains(got, want) {
		t.Errorf("table lacks the migration line:\n%s", cmp.Diff(want, got))
	}
	plain := migrationStatus(ns[:0], nil, nil, nil, nil)
	in = Inspection{State: compat.State{Mode: compat.ModeZooKeeper}, Controller: -1, Migration: &plain}
	if strings.Contains(in.String(), "migration:") {
		t.Errorf("a plain ZooKeeper cluster's table names a migration:\n%s", in.String())
	}
}
