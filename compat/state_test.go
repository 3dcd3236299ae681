package compat

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kupgrade/kupgrade/node"
)

func TestStateJSON(t *testing.T) {
	in := State{
		Mode: ModeMigrating,
		Nodes: []NodeState{
			{ID: 1, Release: rel("3.9.2"), Mode: ModeZooKeeper, Migration: true, IBPV: Static("3.9"), LMFV: Default()},
			{ID: 3000, Roles: []node.Role{node.RoleController}, Release: rel("3.9.2"), Mode: ModeKRaft, Migration: true,
				SupportedFeatures: map[string]LevelRange{"metadata.version": {1, 21}}},
		},
		Finalized: FeatureLevels{"metadata.version": 21},
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"mode":"migrating"`, `"release":"3.9.2"`, `"ibpv":{"value":"3.9","source":"static"}`, `"roles":["controller"]`, `"finalized":{"metadata.version":21}`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s lacks %s", b, want)
		}
	}
	var out State
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	// Unknown finalized features stay distinguishable from none.
	var unknown, none State
	if err := json.Unmarshal([]byte(`{"mode":"kraft","finalized":null}`), &unknown); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(`{"mode":"kraft","finalized":{}}`), &none); err != nil {
		t.Fatal(err)
	}
	if unknown.Finalized != nil || none.Finalized == nil {
		t.Errorf("null and {} finalized are not distinguished: %v %v", unknown.Finalized, none.Finalized)
	}
	if err := json.Unmarshal([]byte(`{"mode":"raft"}`), &out); err == nil {
		t.Errorf("bad mode accepted")
	}
}

func TestStateValidate(t *testing.T) {
	kraft := func(nodes ...NodeState) State {
		return State{Mode: ModeKRaft, Nodes: nodes, Finalized: FeatureLevels{}}
	}
	tests := []struct {
		name    string
		state   State
		wantErr error
		wantIn  string
	}{
		{"ok", zkState("3.5.2", Default(), Default(), 1, 2), nil, ""},
		{"no mode", State{Nodes: []NodeState{{ID: 1, Release: rel("3.9.1")}}}, ErrIncompleteState, "mode"},
		{"no nodes", State{Mode: ModeKRaft}, ErrIncompleteState, "no nodes"},
		{"duplicate", kraft(NodeState{ID: 1, Release: rel("3.9.1")}, NodeState{ID: 1, Release: rel("3.9.1")}), ErrIncompleteState, "twice"},
		{"unknown release", kraft(NodeState{ID: 7}), ErrIncompleteState, "node 7: release unknown"},
		{"future release", kraft(NodeState{ID: 7, Release: rel("4.7.0")}), ErrUnknownRelease, "4.7.0"},
		{"ZooKeeper 4.x", zkState("4.0.0", Default(), Default(), 1), ErrIncompleteState, "ZooKeeper mode"},
		{"ZooKeeper controller", State{Mode: ModeZooKeeper, Nodes: []NodeState{{ID: 1, Roles: []node.Role{node.RoleController}, Release: rel("3.9.1")}}}, ErrIncompleteState, "controller role"},
		{"KRaft 2.7", kraft(NodeState{ID: 1, Release: rel("2.7.0")}), ErrIncompleteState, "KRaft mode"},
		{"mixed modes outside a migration", kraft(NodeState{ID: 1, Release: rel("3.9.1"), Mode: ModeZooKeeper}), ErrIncompleteState, "zookeeper mode in a kraft cluster"},
		{"migrating node without its mode", State{Mode: ModeMigrating, Nodes: []NodeState{{ID: 1, Release: rel("3.9.1")}}}, ErrIncompleteState, "own Mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.state.Validate()
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Validate() = %v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("error %q does not mention %q", err, tt.wantIn)
			}
		})
	}
}

func TestStateHelpers(t *testing.T) {
	s := State{Mode: ModeKRaft, Nodes: []NodeState{
		{ID: 1, Roles: []node.Role{node.RoleController, node.RoleBroker}, Release: rel("3.9.1")},
		{ID: 2, Release: rel("4.1.0")},
		{ID: 3},
	}}
	lo, hi := s.ReleaseRange()
	if lo != rel("3.9.1") || hi != rel("4.1.0") || !s.Mixed() {
		t.Errorf("ReleaseRange = %v, %v; Mixed %v", lo, hi, s.Mixed())
	}
	n, ok := s.Node(1)
	if !ok || !n.IsController() || !n.IsBroker() {
		t.Errorf("Node(1) = %+v", n)
	}
	if n, _ := s.Node(2); n.IsController() || !n.IsBroker() {
		t.Errorf("a node without roles is a broker")
	}
	if _, ok := s.Node(9); ok {
		t.Errorf("Node(9) found")
	}
	for _, m := range []Mode{ModeUnknown, ModeZooKeeper, ModeKRaft, ModeMigrating} {
		b, err := m.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Mode
		if err := back.UnmarshalText(b); err != nil || back != m {
			t.Errorf("Mode %v round trip = %v, %v", m, back, err)
		}
	}
	if Mode(9).String() != "unknown" {
		t.Errorf("Mode(9).String()")
	}
	if _, err := Mode(9).MarshalText(); err == nil {
		t.Errorf("Mode(9) marshalled")
	}
	if !Static("x").Explicit() || Default().Explicit() || (ConfigValue{}).Known() {
		t.Errorf("ConfigValue helpers")
	}
}
