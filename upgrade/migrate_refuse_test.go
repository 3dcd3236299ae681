package upgrade

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kupgrade/kupgrade/compat"
)

// TestMigrationRefusals: a migration of brokers with generated ids is
// refused naming each broker; JBOD brokers are refused below
// inter.broker.protocol.version 3.7-IV2 at the migration, and planned when
// the bridge raises the pin first.
func TestMigrationRefusals(t *testing.T) {
	to := Target{Version: compat.MustParseRelease("4.1.2")}
	zk := func(mod func(ns []compat.NodeState)) compat.State {
		st := compat.State{Mode: compat.ModeZooKeeper, Finalized: compat.FeatureLevels{}, Nodes: nodes("1:b:3.9.2:3.9", "2:b:3.9.2:3.9", "3:b:3.9.2:3.9")}
		for i := range st.Nodes {
			st.Nodes[i].BrokerID = compat.Static(strconv.Itoa(int(st.Nodes[i].ID)))
			st.Nodes[i].ReservedBrokerMaxID = 1000
		}
		mod(st.Nodes)
		return st
	}
	for _, tt := range []struct {
		name  string
		state compat.State
		want  []string // reasons, "" for a plan
	}{
		{"static ids", zk(func([]compat.NodeState) {}), nil},
		{"generated id: broker.id not static", zk(func(ns []compat.NodeState) { ns[1].BrokerID = compat.Default() }),
			[]string{"broker 2: broker.id is not set in server.properties (source default)"}},
		{"generated id: above reserved.broker.max.id", zk(func(ns []compat.NodeState) { ns[2].ID = 1001; ns[2].BrokerID = compat.ConfigValue{} }),
			[]string{"broker 1001: its id is above reserved.broker.max.id 1000"}},
		{"JBOD on 3.9 pinned 3.6-IV2: the bridge raises the pin first", zk(func(ns []compat.NodeState) {
			ns[0].LogDirs = 2
			for i := range ns {
				ns[i].IBPV = compat.Static("3.6-IV2")
			}
		}), nil},
		{"JBOD with the default pin of 3.9", zk(func(ns []compat.NodeState) { ns[0].LogDirs, ns[0].IBPV = 3, compat.Default() }), nil},
		{"unknown facts refuse nothing", zk(func(ns []compat.NodeState) {
			for i := range ns {
				ns[i].BrokerID, ns[i].ReservedBrokerMaxID, ns[i].LogDirs = compat.ConfigValue{}, 0, 0
			}
		}), nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewPlan(tt.state, to, MigrationControllers(3000))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("NewPlan: %v", err)
				}
				return
			}
			var mr *MigrationRefusal
			if !errors.As(err, &mr) || !errors.Is(err, ErrNotMigratable) || !errors.Is(err, ErrUnsupportedPlan) {
				t.Fatalf("NewPlan: err %v, want a *MigrationRefusal (ErrNotMigratable, ErrUnsupportedPlan)", err)
			}
			if len(mr.Reasons) != len(tt.want) {
				t.Fatalf("reasons %q, want %d", mr.Reasons, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(mr.Reasons[i], w) {
					t.Errorf("reason %q does not say %q", mr.Reasons[i], w)
				}
			}
		})
	}
}

// TestJBODRefusal: the pin a JBOD broker has at the migration decides.
func TestJBODRefusal(t *testing.T) {
	rel := compat.MustParseRelease("3.9.2")
	for _, tt := range []struct {
		ibpv    compat.ConfigValue
		release compat.Release
		refused string
	}{
		{compat.Static("3.6-IV2"), rel, "inter.broker.protocol.version 3.6-IV2 at the migration: JBOD brokers migrate only from 3.7-IV2"},
		{compat.Static("3.7-IV1"), rel, "only from 3.7-IV2"},
		{compat.Static("3.7-IV2"), rel, ""},
		{compat.Static("3.9-IV0"), rel, ""},
		{compat.Default(), rel, ""},
		{compat.Default(), compat.MustParseRelease("3.6.2"), "on 3.6.2, which cannot migrate JBOD brokers"},
	} {
		got := jbodRefusal(compat.NodeState{ID: 1, Release: tt.release, LogDirs: 2, IBPV: tt.ibpv})
		if tt.refused == "" && got != "" || tt.refused != "" && !strings.Contains(got, tt.refused) {
			t.Errorf("IBPV %v on %v: %q, want %q", tt.ibpv, tt.release, got, tt.refused)
		}
	}
	// A migration already under way (brokers in migration mode) with a JBOD
	// broker pinned below 3.7-IV2 is refused.
	st := compat.State{Mode: compat.ModeMigrating, Finalized: compat.FeatureLevels{}, Nodes: nodes("1:b:3.9.2:3.6-IV2", "2:b:3.9.2:3.6-IV2", "3:b:3.9.2:3.6-IV2")}
	for i := range st.Nodes {
		st.Nodes[i].Migration, st.Nodes[i].Mode = true, compat.ModeZooKeeper
	}
	st.Nodes[1].LogDirs = 2
	route, err := compat.Route(st, compat.MustParseRelease("4.1.2"))
	if err != nil {
		t.Fatalf("no route for a migrating cluster pinned at 3.6-IV2: %v", err)
	}
	if !slices.ContainsFunc(route.Hops, func(h compat.Hop) bool { return h.Kind == compat.Migration }) {
		t.Fatalf("the route of a migrating cluster has no migration hop: %v", route)
	}
	if err := migratable(st, route); !errors.Is(err, ErrNotMigratable) || !strings.Contains(err.Error(), "broker 2 uses 2 log directories") {
		t.Errorf("migratable: %v, want broker 2's JBOD refused", err)
	}
}
