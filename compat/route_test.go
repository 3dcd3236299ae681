package compat

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kupgrade/kupgrade/node"
)

var update = flag.Bool("update", false, "rewrite testdata/route/*.golden")

// Helpers that build states in a few words.

func zkNode(id int32, release string, ibpv, lmfv ConfigValue) NodeState {
	return NodeState{ID: id, Release: rel(release), IBPV: ibpv, LMFV: lmfv}
}

func ctrl(id int32, release string) NodeState {
	return NodeState{ID: id, Roles: []node.Role{node.RoleController}, Release: rel(release)}
}

func broker(id int32, release string) NodeState {
	return NodeState{ID: id, Roles: []node.Role{node.RoleBroker}, Release: rel(release)}
}

func combined(id int32, release string) NodeState {
	return NodeState{ID: id, Roles: []node.Role{node.RoleBroker, node.RoleController}, Release: rel(release)}
}

func kraftState(finalized FeatureLevels, nodes ...NodeState) State {
	return State{Mode: ModeKRaft, Nodes: nodes, Finalized: finalized}
}

// kraft39 is a 3.9.1 KRaft cluster with a static quorum, finalized at 3.9-IV0.
func kraft39() State {
	return kraftState(FeatureLevels{"metadata.version": 21},
		ctrl(1, "3.9.1"), ctrl(2, "3.9.1"), ctrl(3, "3.9.1"), broker(4, "3.9.1"), broker(5, "3.9.1"), broker(6, "3.9.1"))
}

type routeCase struct {
	name   string
	state  State
	target string
	opts   []RouteOption
	// Structured expectations; the golden file holds the full text.
	hops    []string // "kind from→to"
	wantErr error
}

func routeCases() []routeCase {
	zk3 := func(release string, ibpv, lmfv ConfigValue) State { return zkState(release, ibpv, lmfv, 1, 2, 3) }
	return []routeCase{
		{name: "zk-3.6-to-4.1", state: zk3("3.6.2", Default(), Default()), target: "4.1.2",
			hops: []string{"zookeeper-upgrade 3.6.2→3.9.2", "migration 3.9.2→3.9.2", "kraft-upgrade 3.9.2→4.1.2"}},
		{name: "zk-2.0-to-3.9-via-3.5", state: zk3("2.0.1", Default(), Default()), target: "3.9.2",
			hops: []string{"zookeeper-upgrade 2.0.1→3.5.2", "zookeeper-upgrade 3.5.2→3.9.2"}},
		{name: "zk-2.3-to-3.5-direct", state: zk3("2.3.1", Default(), Default()), target: "3.5.2",
			hops: []string{"zookeeper-upgrade 2.3.1→3.5.2"}},
		{name: "zk-0.10-to-2.8-message-format", state: zk3("0.10.2.1", Default(), Default()), target: "2.8.2",
			hops: []string{"zookeeper-upgrade 0.10.2.1→2.8.2"}},
		{name: "zk-lmfv-overridden-to-3.5", state: zk3("2.4.1", Static("2.4"), Static("2.1")), target: "3.5.2",
			hops: []string{"zookeeper-upgrade 2.4.1→3.5.2"}},
		{name: "zk-patch-upgrade", state: zk3("3.9.0", Default(), Default()), target: "3.9.2",
			hops: []string{"zookeeper-upgrade 3.9.0→3.9.2"}},
		{name: "zk-half-rolled", target: "3.9.2",
			state: State{Mode: ModeZooKeeper, Nodes: []NodeState{
				zkNode(1, "3.9.2", Static("3.6"), Default()), zkNode(2, "3.9.2", Static("3.6"), Default()), zkNode(3, "3.6.2", Default(), Default())}},
			hops: []string{"zookeeper-upgrade 3.6.2→3.9.2"}},
		{name: "zk-raise-in-progress", target: "4.0.2",
			state: State{Mode: ModeZooKeeper, Nodes: []NodeState{
				zkNode(1, "3.9.2", Static("3.9"), Default()), zkNode(2, "3.9.2", Static("3.6"), Default()), zkNode(3, "3.9.2", Static("3.6"), Default())}},
			hops: []string{"zookeeper-upgrade 3.9.2→3.9.2", "migration 3.9.2→3.9.2", "kraft-upgrade 3.9.2→4.0.2"}},
		{name: "zk-forgot-pin", target: "3.9.2",
			state: State{Mode: ModeZooKeeper, Nodes: []NodeState{
				zkNode(1, "3.9.2", Default(), Default()), zkNode(2, "3.6.2", Default(), Default()), zkNode(3, "3.6.2", Default(), Default())}},
			hops: []string{"zookeeper-upgrade 3.6.2→3.9.2"}},
		{name: "zk-rollback-before-raise", target: "3.6.2",
			state: State{Mode: ModeZooKeeper, Nodes: []NodeState{
				zkNode(1, "3.9.2", Static("3.6"), Default()), zkNode(2, "3.6.2", Default(), Default()), zkNode(3, "3.6.2", Default(), Default())}},
			hops: []string{"rollback 3.9.2→3.6.2"}},
		{name: "zk-rollback-after-raise", target: "3.6.2", state: zk3("3.9.2", Static("3.9"), Default()), wantErr: ErrDowngradePastIBPV},
		{name: "zk-migrate-on-3.9", state: zk3("3.9.1", Default(), Default()), target: "3.9.2", opts: []RouteOption{MigrateToKRaft()},
			hops: []string{"zookeeper-upgrade 3.9.1→3.9.2", "migration 3.9.2→3.9.2"}},
		{name: "zk-migrate-on-3.8-refused", state: zk3("3.7.2", Default(), Default()), target: "3.8.1", opts: []RouteOption{MigrateToKRaft()},
			wantErr: ErrUnsupportedRoute},
		{name: "zk-unknown-ibpv", target: "3.9.2", state: zk3("3.6.2", ConfigValue{}, Default()), wantErr: ErrIncompleteState},
		{name: "migrating-midway", target: "4.0.2",
			state: State{Mode: ModeMigrating, Finalized: FeatureLevels{"metadata.version": 21}, Nodes: []NodeState{
				{ID: 1, Release: rel("3.9.2"), Mode: ModeZooKeeper, Migration: true, IBPV: Static("3.9"), LMFV: Default()},
				{ID: 2, Release: rel("3.9.2"), Mode: ModeZooKeeper, IBPV: Static("3.9"), LMFV: Default()},
				{ID: 3, Release: rel("3.9.2"), Mode: ModeZooKeeper, IBPV: Static("3.9"), LMFV: Default()},
				{ID: 3000, Roles: []node.Role{node.RoleController}, Release: rel("3.9.2"), Mode: ModeKRaft, Migration: true},
				{ID: 3001, Roles: []node.Role{node.RoleController}, Release: rel("3.9.2"), Mode: ModeKRaft, Migration: true},
				{ID: 3002, Roles: []node.Role{node.RoleController}, Release: rel("3.9.2"), Mode: ModeKRaft, Migration: true},
			}},
			hops: []string{"migration 3.9.2→3.9.2", "kraft-upgrade 3.9.2→4.0.2"}},
		{name: "migrating-mixed-releases", target: "4.0.2",
			state: State{Mode: ModeMigrating, Nodes: []NodeState{
				{ID: 1, Release: rel("3.9.2"), Mode: ModeZooKeeper, IBPV: Static("3.9"), LMFV: Default()},
				{ID: 3000, Roles: []node.Role{node.RoleController}, Release: rel("3.9.1"), Mode: ModeKRaft, Migration: true}}},
			wantErr: ErrUnsupportedRoute},
		{name: "kraft-3.9-to-4.2", state: kraft39(), target: "4.2.1",
			hops: []string{"kraft-upgrade 3.9.1→4.2.1"}},
		{name: "kraft-3.9-to-4.4-mv-only", state: kraft39(), target: "4.4.0", opts: []RouteOption{FinalizeMetadataVersionOnly()},
			hops: []string{"kraft-upgrade 3.9.1→4.4.0"}},
		{name: "kraft-3.2-preview-to-4.1", target: "4.1.2",
			state: State{Mode: ModeKRaft, Nodes: []NodeState{
				{ID: 1, Roles: []node.Role{node.RoleController}, Release: rel("3.2.3"), IBPV: Default()},
				{ID: 2, Roles: []node.Role{node.RoleBroker}, Release: rel("3.2.3"), IBPV: Default()}}},
			hops: []string{"kraft-upgrade 3.2.3→3.9.2", "kraft-upgrade 3.9.2→4.1.2"}},
		{name: "kraft-3.3-IV0-to-4.0", target: "4.0.2",
			state: kraftState(FeatureLevels{"metadata.version": 4}, combined(1, "3.3.2"), combined(2, "3.3.2"), combined(3, "3.3.2")),
			hops:  []string{"kraft-upgrade 3.3.2→3.3.2", "kraft-upgrade 3.3.2→4.0.2"}},
		{name: "kraft-half-rolled", target: "4.2.1",
			state: kraftState(FeatureLevels{"metadata.version": 21},
				ctrl(1, "4.2.1"), ctrl(2, "4.2.1"), ctrl(3, "4.2.1"), broker(4, "4.2.1"), broker(5, "3.9.1"), broker(6, "3.9.1")),
			hops: []string{"kraft-upgrade 3.9.1→4.2.1"}},
		{name: "kraft-finalize-only", target: "4.1.2",
			state: kraftState(FeatureLevels{"metadata.version": 25, "group.version": 1, "transaction.version": 2, "kraft.version": 1},
				combined(1, "4.1.2"), combined(2, "4.1.2"), combined(3, "4.1.2")),
			hops: []string{"kraft-upgrade 4.1.2→4.1.2"}},
		{name: "kraft-nothing-to-do", target: "4.1.2",
			state: kraftState(FeatureLevels{"metadata.version": 27, "group.version": 1, "transaction.version": 2, "eligible.leader.replicas.version": 1, "kraft.version": 1, "share.version": 1},
				combined(1, "4.1.2")),
			hops: nil},
		{name: "kraft-rollback-4.1-to-4.0", target: "4.0.2",
			state: kraftState(FeatureLevels{"metadata.version": 27, "group.version": 1, "transaction.version": 2, "eligible.leader.replicas.version": 1, "share.version": 1},
				ctrl(1, "4.1.2"), broker(2, "4.1.2"), broker(3, "4.1.2")),
			hops: []string{"rollback 4.1.2→4.0.2"}},
		{name: "kraft-rollback-3.9-to-3.7", state: kraft39(), target: "3.7.2",
			hops: []string{"rollback 3.9.1→3.7.2"}},
		{name: "kraft-rollback-past-metadata-change", state: kraft39(), target: "3.6.2", wantErr: ErrDowngradePastMetadataChange},
		{name: "kraft-rollback-4.2-to-3.9", target: "3.9.2",
			state:   kraftState(FeatureLevels{"metadata.version": 29}, ctrl(1, "4.2.1"), broker(2, "4.2.1")),
			wantErr: ErrDowngradePastMetadataChange},
		{name: "kraft-rollback-dynamic-quorum", target: "3.8.1",
			state:   kraftState(FeatureLevels{"metadata.version": 20, "kraft.version": 1}, ctrl(1, "3.9.1"), broker(2, "3.9.1")),
			wantErr: ErrFeatureUpdateRefused},
		{name: "kraft-unstable-finalized", target: "4.3.1",
			state:   kraftState(FeatureLevels{"metadata.version": 30}, ctrl(1, "4.2.1"), broker(2, "4.2.1")),
			wantErr: ErrUnstableMetadataVersion},
		{name: "kraft-feature-above-release", target: "4.2.1",
			state:   kraftState(FeatureLevels{"metadata.version": 25, "share.version": 1}, ctrl(1, "4.0.2"), broker(2, "4.0.2")),
			wantErr: ErrIncompleteState},
		{name: "kraft-no-controllers", target: "4.2.1",
			state:   kraftState(FeatureLevels{"metadata.version": 21}, broker(4, "3.9.1")),
			wantErr: ErrIncompleteState},
		{name: "kraft-finalized-unknown", target: "4.2.1",
			state:   kraftState(nil, ctrl(1, "3.9.1"), broker(2, "3.9.1")),
			wantErr: ErrIncompleteState},
		{name: "kraft-2.8-early-access", target: "3.9.2",
			state:   kraftState(FeatureLevels{}, ctrl(1, "2.8.2"), broker(2, "2.8.2")),
			wantErr: ErrUnsupportedRoute},
		{name: "zk-mixed-2.0-and-3.7-no-stop-at-3.5", target: "3.9.2",
			state: State{Mode: ModeZooKeeper, Nodes: []NodeState{
				zkNode(1, "2.0.1", Default(), Default()), zkNode(2, "2.0.1", Default(), Default()), zkNode(3, "3.7.2", Static("2.0"), Default())}},
			hops: []string{"zookeeper-upgrade 2.0.1→3.9.2"}},
		{name: "zk-unlisted-3.9-patch-is-the-bridge", target: "4.0.2", opts: []RouteOption{AllowUnlistedPatch()},
			state: State{Mode: ModeZooKeeper, Nodes: []NodeState{
				zkNode(1, "3.9.2", Static("3.8"), Default()), zkNode(2, "3.9.9", Static("3.8"), Default())}},
			hops: []string{"zookeeper-upgrade 3.9.2→3.9.9", "migration 3.9.9→3.9.9", "kraft-upgrade 3.9.9→4.0.2"}},
		{name: "kraft-mixed-3.2-and-4.0", target: "4.1.2",
			state:   kraftState(FeatureLevels{}, ctrl(1, "3.2.3"), broker(2, "4.0.2")),
			wantErr: ErrIncompleteState},
		{name: "unknown-target-line", state: kraft39(), target: "4.5.0", wantErr: ErrUnknownRelease},
		{name: "unlisted-target-patch", state: kraft39(), target: "3.9.7", wantErr: ErrUnknownRelease},
		{name: "unlisted-target-patch-allowed", state: kraft39(), target: "4.4.1", opts: []RouteOption{AllowUnlistedPatch()},
			hops: []string{"kraft-upgrade 3.9.1→4.4.1"}},
	}
}

func TestRoute(t *testing.T) {
	for _, tt := range routeCases() {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := Route(tt.state, rel(tt.target), tt.opts...)
			golden(t, filepath.Join("testdata", "route", tt.name+".golden"), render(plan, err))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Route error = %v, want %v", err, tt.wantErr)
				}
				re, ok := errors.AsType[*RouteError](err)
				if !ok || re.Reason == "" || re.Suggestion == "" {
					t.Errorf("error %#v: want a *RouteError with a reason and a suggestion", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Route: %v", err)
			}
			var hops []string
			for _, h := range plan.Hops {
				hops = append(hops, fmt.Sprintf("%v %v→%v", h.Kind, h.From, h.To))
			}
			if diff := cmp.Diff(tt.hops, hops); diff != "" {
				t.Errorf("hops (-want +got):\n%s", diff)
			}
			checkPlanInvariants(t, tt.state, plan)
		})
	}
}

// checkPlanInvariants checks what must hold for every plan.
func checkPlanInvariants(t *testing.T, s State, plan RoutePlan) {
	t.Helper()
	if len(plan.Hops) > 0 && plan.Hops[len(plan.Hops)-1].To != plan.Target {
		t.Errorf("last hop ends on %v, not the target %v", plan.Hops[len(plan.Hops)-1].To, plan.Target)
	}
	for i, h := range plan.Hops {
		if h.Reason == "" || len(h.Actions) == 0 {
			t.Errorf("hop %d (%v) without reason or steps", i, h.Kind)
		}
		for j, st := range h.Actions {
			if st.Reason == "" {
				t.Errorf("hop %d step %d without a reason", i, j)
			}
			if st.Kind == UpdateFeatures && len(st.Features) == 0 {
				t.Errorf("hop %d step %d finalizes nothing", i, j)
			}
			if st.Features.Level(FeatureKRaftVersion) > 0 && !st.Optional {
				t.Errorf("hop %d step %d raises kraft.version implicitly", i, j)
			}
			if st.Kind == RollBinaries && st.Release != h.To {
				t.Errorf("hop %d step %d rolls to %v, not %v", i, j, st.Release, h.To)
			}
			for _, id := range st.Nodes {
				if _, ok := s.Node(id); !ok {
					t.Errorf("hop %d step %d names node %d, which is not in the state", i, j, id)
				}
			}
		}
	}
	b, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	var back RoutePlan
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(plan, back); diff != "" {
		t.Errorf("RoutePlan JSON round trip (-want +got):\n%s", diff)
	}
}

// render writes a plan, with every reason, or an error, for golden files.
func render(plan RoutePlan, err error) string {
	var b strings.Builder
	if err != nil {
		fmt.Fprintf(&b, "error: %v\n", err)
		if re, ok := errors.AsType[*RouteError](err); ok {
			fmt.Fprintf(&b, "reason: %s\nsuggestion: %s\n", re.Reason, re.Suggestion)
		}
		return b.String()
	}
	b.WriteString(plan.String())
	b.WriteString("\n\nreasons:\n")
	for i, h := range plan.Hops {
		fmt.Fprintf(&b, "%d. %s\n", i+1, h.Reason)
		for j, st := range h.Actions {
			fmt.Fprintf(&b, "   %c. %s\n", 'a'+rune(j), st.Reason)
			for _, r := range st.Requires {
				fmt.Fprintf(&b, "      requires: %s\n", r)
			}
		}
	}
	return b.String()
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

func TestRouteStructure(t *testing.T) {
	// 3.6 ZooKeeper → 4.1: what is pinned, raised, finalized, and decided.
	plan, err := Route(zkState("3.6.2", Default(), Default(), 1, 2, 3), rel("4.1.2"))
	if err != nil {
		t.Fatal(err)
	}
	zk, mig, kr := plan.Hops[0], plan.Hops[1], plan.Hops[2]
	if diff := cmp.Diff(map[string]string{"inter.broker.protocol.version": "3.6-IV2"}, zk.Pins()); diff != "" {
		t.Errorf("ZooKeeper hop pins (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"inter.broker.protocol.version": "3.9-IV0"}, zk.Raises()); diff != "" {
		t.Errorf("ZooKeeper hop raises (-want +got):\n%s", diff)
	}
	if zk.Reversible() || mig.Reversible() || kr.Reversible() || plan.Reversible() {
		t.Errorf("IBPV raise, migration finalization and metadata.version 4.1-IV1 are irreversible")
	}
	if len(mig.Raises()) != 0 {
		t.Errorf("migration hops raise nothing: %v", mig.Raises())
	}
	wantFinal := FeatureLevels{"metadata.version": 27, "group.version": 1, "transaction.version": 2, "eligible.leader.replicas.version": 1}
	if diff := cmp.Diff(wantFinal, kr.Finalizes()); diff != "" {
		t.Errorf("KRaft hop finalizes (-want +got):\n%s", diff)
	}
	var decided []string
	for _, d := range kr.Decisions() {
		decided = append(decided, d.Features.String())
	}
	if diff := cmp.Diff([]string{"share.version=1", "kraft.version=1"}, decided); diff != "" {
		t.Errorf("decisions (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Release{rel("3.9.2"), rel("4.1.2")}, plan.Releases()); diff != "" {
		t.Errorf("Releases (-want +got):\n%s", diff)
	}

	// A half-finished ZooKeeper upgrade restarts only what is left.
	half := State{Mode: ModeZooKeeper, Nodes: []NodeState{
		zkNode(1, "3.9.2", Static("3.6"), Default()), zkNode(2, "3.9.2", Static("3.6-IV2"), Default()), zkNode(3, "3.6.2", Default(), Default())}}
	plan, err = Route(half, rel("3.9.2"))
	if err != nil {
		t.Fatal(err)
	}
	h := plan.Hops[0]
	if diff := cmp.Diff([]int32{3}, h.Actions[0].Nodes); diff != "" {
		t.Errorf("binary roll nodes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int32{1, 2}, h.Done); diff != "" {
		t.Errorf("done nodes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int32{1, 2, 3}, h.Actions[1].Nodes); diff != "" {
		t.Errorf("raise nodes (-want +got):\n%s", diff)
	}

	// A raise under way continues with the brokers not yet raised.
	raising := State{Mode: ModeZooKeeper, Nodes: []NodeState{
		zkNode(1, "3.9.2", Static("3.9"), Default()), zkNode(2, "3.9.2", Static("3.6"), Default()), zkNode(3, "3.9.2", Static("3.6"), Default())}}
	plan, err = Route(raising, rel("3.9.2"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(plan.Hops[0].Actions); n != 1 || plan.Hops[0].Actions[0].Kind != RollConfig {
		t.Fatalf("want a single raise step, got %v", plan.Hops[0])
	}
	if diff := cmp.Diff([]int32{2, 3}, plan.Hops[0].Actions[0].Nodes); diff != "" {
		t.Errorf("raise nodes (-want +got):\n%s", diff)
	}

	// A KRaft rollback within the safe floor downgrades first, then rolls back brokers before controllers.
	plan, err = Route(kraft39(), rel("3.7.2"))
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, st := range plan.Hops[0].Actions {
		kinds = append(kinds, st.Kind.String()+" "+string(st.Role))
	}
	if diff := cmp.Diff([]string{"update-features ", "roll-binaries broker", "roll-binaries controller"}, kinds); diff != "" {
		t.Errorf("rollback steps (-want +got):\n%s", diff)
	}
	if !plan.Hops[0].Actions[0].Downgrade || plan.Hops[0].Actions[0].Features.Level("metadata.version") != 19 {
		t.Errorf("rollback first step = %v", plan.Hops[0].Actions[0])
	}
}

func TestRouteErrorsExplain(t *testing.T) {
	_, err := Route(kraft39(), rel("3.6.2"))
	re, ok := errors.AsType[*RouteError](err)
	if !ok {
		t.Fatalf("error %T", err)
	}
	for _, want := range []string{"3.7-IV2", "3.9-IV0"} {
		if !strings.Contains(re.Reason, want) {
			t.Errorf("reason %q does not mention %s", re.Reason, want)
		}
	}
	if !strings.Contains(re.Suggestion, "3.7.2") {
		t.Errorf("suggestion %q does not name 3.7.2, the oldest reachable release", re.Suggestion)
	}
	_, err = Route(kraft39(), rel("3.9.7"))
	if re, _ := errors.AsType[*RouteError](err); re == nil || !strings.Contains(re.Suggestion, "3.9.2") {
		t.Errorf("unlisted patch suggestion: %v", err)
	}
}

func TestKindsText(t *testing.T) {
	for k := ZooKeeperUpgrade; k <= Rollback; k++ {
		b, _ := k.MarshalText()
		var back HopKind
		if err := back.UnmarshalText(b); err != nil || back != k {
			t.Errorf("HopKind %v round trip: %v %v", k, back, err)
		}
	}
	for k := RollBinaries; k <= ProvisionControllers; k++ {
		b, _ := k.MarshalText()
		var back ActionKind
		if err := back.UnmarshalText(b); err != nil || back != k {
			t.Errorf("ActionKind %v round trip: %v %v", k, back, err)
		}
	}
	var hk HopKind
	var sk ActionKind
	if hk.UnmarshalText([]byte("x")) == nil || sk.UnmarshalText([]byte("x")) == nil {
		t.Errorf("bad kinds accepted")
	}
	if HopKind(9).String() != "HopKind(9)" || ActionKind(9).String() != "ActionKind(9)" {
		t.Errorf("out-of-range kinds")
	}
}
