package compat

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/kupgrade/kupgrade/node"
)

// Run a target with, for example:
//
//	go test ./compat -run '^$' -fuzz '^FuzzParseRelease$' -fuzztime 60s
//
// Seed inputs live in the code (f.Add) and in testdata/fuzz/<target>.

func FuzzParseRelease(f *testing.F) {
	for _, s := range []string{"3.9.1", "4.1", "0.10.2.1", "0.8.2", "", "3..1", "03.1", "0.0.1", "999.999.999", "1000.0", "v3.9", "3.9.1-rc0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRelease(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidRelease) || !strings.Contains(err.Error(), strconv.Quote(s)) {
				t.Fatalf("ParseRelease(%q) error %v: want ErrInvalidRelease quoting the input", s, err)
			}
			return
		}
		if r.IsZero() {
			t.Fatalf("ParseRelease(%q) returned the zero (unknown) Release", s)
		}
		again, err := ParseRelease(r.String())
		if err != nil || again != r {
			t.Fatalf("ParseRelease(%q) = %v; String %q parses as %v, %v", s, r, r.String(), again, err)
		}
		b, _ := r.MarshalText()
		var back Release
		if err := back.UnmarshalText(b); err != nil || back != r {
			t.Fatalf("text round trip of %v: %v, %v", r, back, err)
		}
		if l := r.Line(); l.Line() != l || r.Less(l) {
			t.Fatalf("%v.Line() = %v is not a line at or below it", r, l)
		}
		_ = IsKnown(r)
		_, _ = LatestPatch(r)
	})
}

func FuzzParseMetadataVersion(f *testing.F) {
	for _, s := range []string{"0.10.0.0-IV0", "1.0.1", "4.0", "4.0-IV0", "3.6-IV2", "3.3", "0.10.0", "", ".", "...", "3.6.", "3.6-IV2.5", "4.3-IV0", "4.4"} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(60))
		f.Add(s, uint8(75))
	}
	readers := Releases()
	readers = append(readers, MustParseRelease("4.9.0")) // an unknown reader
	f.Fuzz(func(t *testing.T, s string, idx uint8) {
		reader := readers[int(idx)%len(readers)]
		mv, err := ParseMetadataVersion(s, reader)
		if err != nil {
			me, ok := errors.AsType[*MetadataVersionError](err)
			if !ok || me.Input != s || !strings.Contains(err.Error(), strconv.Quote(s)) {
				t.Fatalf("ParseMetadataVersion(%q, %v) error %v: want a *MetadataVersionError quoting the input", s, reader, err)
			}
			if !errors.Is(err, ErrInvalidMetadataVersion) && !errors.Is(err, ErrUnknownRelease) {
				t.Fatalf("error %v wraps no expected sentinel", err)
			}
			return
		}
		again, err := ParseMetadataVersion(mv.String(), reader)
		if err != nil || again != mv {
			t.Fatalf("ParseMetadataVersion(%q, %v) = %v; String parses as %v, %v", s, reader, mv, again, err)
		}
		lp, _ := LatestProduction(reader)
		if mv.Unstable != lp.Less(mv) {
			t.Fatalf("%v read by %v: Unstable %v but latest production is %v", mv, reader, mv.Unstable, lp)
		}
		if reader.AtLeast(v(4, 0)) && mv.Less(min4xMV) {
			t.Fatalf("%v read by %v is below 3.3-IV3", mv, reader)
		}
		if mv.IsKRaft() && !mv.Unstable {
			if _, err := LookupMetadataVersion(mv.Level, reader); err != nil && reader.AtLeast(v(3, 3)) && mv.Level >= 1 {
				l, _ := lineOf(reader)
				if mv.Level >= l.minMV {
					t.Fatalf("parsed %v but LookupMetadataVersion(%d, %v): %v", mv, mv.Level, reader, err)
				}
			}
		}
	})
}

// FuzzStateJSON feeds arbitrary JSON to the State decoder (the format
// upgrade.Inspect writes) and plans with whatever decodes.
func FuzzStateJSON(f *testing.F) {
	seed := func(s State) {
		b, err := json.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(0))
	}
	for _, c := range routeCases() {
		seed(c.state)
	}
	f.Add([]byte(`{"mode":"kraft","nodes":[{"id":1,"roles":["controller"],"release":"3.9.1"}],"finalized":{"metadata.version":21}}`), uint8(3))
	f.Add([]byte(`{"mode":"zookeeper","nodes":[{"id":1,"release":"0.8.0","ibpv":{"source":"default"},"lmfv":{"source":"default"}}],"finalized":null}`), uint8(1))
	targets := Releases()
	f.Fuzz(func(t *testing.T, data []byte, idx uint8) {
		var s State
		if err := json.Unmarshal(data, &s); err != nil {
			return
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("Marshal of a decoded State: %v", err)
		}
		var back State
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("Unmarshal of %s: %v", b, err)
		}
		if diff := cmp.Diff(s, back, cmpopts.EquateEmpty()); diff != "" || (s.Finalized == nil) != (back.Finalized == nil) {
			t.Fatalf("State JSON round trip (-first +second):\n%s", diff)
		}
		target := targets[int(idx)%len(targets)]
		plan, err := Route(s, target)
		checkRouteResult(t, s, target, plan, err)
	})
}

// FuzzRoute builds mostly valid cluster states from a few bytes, so that the
// planner (not the decoder) gets exercised, and checks that applying a plan
// and planning again leaves nothing to do.
func FuzzRoute(f *testing.F) {
	f.Add(uint8(0), []byte{40, 40, 40}, uint8(70), uint8(0), uint8(0))
	f.Add(uint8(1), []byte{66, 130, 66}, uint8(73), uint8(3), uint8(0))
	f.Add(uint8(0), []byte{5, 30, 60}, uint8(50), uint8(9), uint8(7))
	f.Add(uint8(1), []byte{57, 121}, uint8(75), uint8(200), uint8(1))
	f.Add(uint8(2), []byte{60, 60, 60}, uint8(74), uint8(1), uint8(2))
	f.Fuzz(func(t *testing.T, mode uint8, nodes []byte, target, level, flags uint8) {
		s, ok := genState(mode, nodes, level, flags)
		if !ok {
			return
		}
		all := Releases()
		tr := all[int(target)%len(all)]
		var opts []RouteOption
		if flags&0x40 != 0 {
			opts = append(opts, FinalizeMetadataVersionOnly())
		}
		if flags&0x80 != 0 {
			opts = append(opts, MigrateToKRaft())
		}
		plan, err := Route(s, tr, opts...)
		checkRouteResult(t, s, tr, plan, err)
		if err != nil {
			return
		}
		after := applyPlan(t, s, plan)
		again, err := Route(after, tr, opts...)
		if err != nil {
			t.Fatalf("after applying\n%v\nto %+v, Route: %v", plan, s, err)
		}
		rollback := slices.ContainsFunc(plan.Hops, func(h Hop) bool { return h.Kind == Rollback })
		for _, h := range again.Hops {
			for _, st := range h.Actions {
				if !rollback || st.Kind == RollBinaries || st.Kind == ProvisionControllers {
					t.Fatalf("after applying\n%v\nRoute still plans\n%v", plan, again)
				}
			}
		}
	})
}

// genState decodes fuzz bytes into a state: each node byte picks a release
// (low 7 bits) and, in KRaft mode, the controller role (high bit).
func genState(mode uint8, nodes []byte, level, flags uint8) (State, bool) {
	if len(nodes) == 0 || len(nodes) > 8 {
		return State{}, false
	}
	var pool []Release
	m := []Mode{ModeZooKeeper, ModeKRaft, ModeMigrating}[int(mode)%3]
	for _, r := range Releases() {
		l, _ := lineOf(r)
		if (m == ModeZooKeeper && l.zooKeeper) || (m == ModeKRaft && l.kraft > 0) || (m == ModeMigrating && l.zooKeeper && r.AtLeast(v(3, 4))) {
			pool = append(pool, r)
		}
	}
	s := State{Mode: m}
	for i, b := range nodes {
		r := pool[int(b&0x7f)%len(pool)]
		if m == ModeMigrating {
			r = pool[int(nodes[0]&0x7f)%len(pool)] // a migration runs on one release
		}
		n := NodeState{ID: int32(i + 1), Release: r, IBPV: Default(), LMFV: Default()}
		switch m {
		case ModeKRaft:
			n.Roles = []node.Role{node.RoleBroker}
			if b&0x80 != 0 || i == 0 {
				n.Roles = []node.Role{node.RoleController}
			}
		case ModeMigrating:
			n.Mode = ModeZooKeeper
			n.Migration = b&0x80 != 0
			if i == 0 {
				n.Roles, n.Mode, n.Migration = []node.Role{node.RoleController}, ModeKRaft, true
			} else if b&0x40 != 0 {
				n.Mode, n.Migration = ModeKRaft, false
			}
		}
		if flags&1 != 0 && m == ModeZooKeeper {
			// Pin the IBPV to a version at or below the node's default.
			lp, _ := LatestProduction(r)
			defs := slices.DeleteFunc(MetadataVersions(), func(mv MetadataVersion) bool { return lp.Less(mv) })
			n.IBPV = Static(defs[int(level)%len(defs)].Name)
		}
		if flags&2 != 0 && m == ModeZooKeeper && r.AtLeast(v0(10, 0)) {
			n.LMFV = Static(r.Short())
		}
		if m == ModeZooKeeper && r.AtLeast(v0(10, 0)) && flags&32 == 0 {
			// Keep the node's configuration one it can start with (the
			// planner refuses impossible ones, tested with flags&32).
			ibpv, _ := ParseMetadataVersion(n.IBPV.Value, r)
			if n.IBPV.Value == "" {
				ibpv, _ = LatestProduction(r)
			}
			lmfv, _ := DefaultMessageFormat(r)
			if n.LMFV.Value != "" {
				lmfv, _ = ParseMetadataVersion(n.LMFV.Value, r)
			}
			if CheckMessageFormat(ibpv, lmfv, r) != nil {
				n.LMFV = Static(ibpv.Name)
			}
		}
		s.Nodes = append(s.Nodes, n)
	}
	switch m {
	case ModeKRaft:
		s.Finalized = FeatureLevels{}
		if flags&4 == 0 {
			s.Finalized[FeatureMetadataVersion] = int16(level % 34)
		}
		if flags&8 != 0 {
			s.Finalized[FeatureKRaftVersion] = 1
		}
		if flags&16 != 0 {
			s.Finalized[FeatureGroupVersion] = 1
		}
	case ModeMigrating:
		lp, _ := LatestProduction(s.Nodes[0].Release)
		s.Finalized = FeatureLevels{FeatureMetadataVersion: lp.Level}
	}
	return s, true
}

// checkRouteResult checks what must hold for any Route result.
func checkRouteResult(t *testing.T, s State, target Release, plan RoutePlan, err error) {
	t.Helper()
	if err != nil {
		re, ok := errors.AsType[*RouteError](err)
		if !ok || re.Reason == "" || re.Err == nil {
			t.Fatalf("Route(%+v, %v) error %T %v: want a *RouteError with a reason and a sentinel", s, target, err, err)
		}
		return
	}
	if plan.Target != target {
		t.Fatalf("plan target %v, want %v", plan.Target, target)
	}
	if len(plan.Hops) == 0 && len(plan.Notes) == 0 {
		t.Fatalf("empty plan without a note")
	}
	checkPlanInvariants(t, s, plan)
	_ = plan.String()
}

// applyPlan carries out a plan's required steps on a state, the way a runner
// and an orchestrator would.
func applyPlan(t *testing.T, s State, plan RoutePlan) State {
	t.Helper()
	out := State{Mode: s.Mode, Finalized: maps.Clone(s.Finalized)}
	for _, n := range s.Nodes {
		n.Roles = slices.Clone(n.Roles)
		out.Nodes = append(out.Nodes, n)
	}
	targets := func(st Action) []*NodeState {
		var ns []*NodeState
		for i := range out.Nodes {
			n := &out.Nodes[i]
			switch {
			case len(st.Nodes) > 0:
				if slices.Contains(st.Nodes, n.ID) {
					ns = append(ns, n)
				}
			case st.Role == node.RoleController && n.IsController():
				ns = append(ns, n)
			case st.Role == node.RoleBroker && !n.IsController():
				ns = append(ns, n)
			}
		}
		return ns
	}
	for _, h := range plan.Hops {
		for _, st := range h.Actions {
			if st.Optional {
				continue
			}
			switch st.Kind {
			case RollBinaries, RollConfig:
				for _, n := range targets(st) {
					if st.Kind == RollBinaries {
						n.Release = st.Release
					}
					applyConfig(n, st)
				}
			case ProvisionControllers:
				out.Mode = ModeMigrating
				for i := range out.Nodes {
					out.Nodes[i].Mode = ModeZooKeeper
				}
				for id := int32(9000); id < 9003; id++ {
					out.Nodes = append(out.Nodes, NodeState{ID: id, Roles: []node.Role{node.RoleController}, Release: st.Release, Mode: ModeKRaft, Migration: true})
				}
				lp, _ := LatestProduction(st.Release)
				out.Finalized = FeatureLevels{FeatureMetadataVersion: lp.Level}
			case UpdateFeatures:
				if out.Finalized == nil {
					out.Finalized = FeatureLevels{}
				}
				maps.Copy(out.Finalized, st.Features)
			}
		}
	}
	if out.Mode == ModeMigrating && !slices.ContainsFunc(out.Nodes, func(n NodeState) bool { return n.Mode == ModeZooKeeper || n.Migration }) {
		out.Mode = ModeKRaft
		for i := range out.Nodes {
			out.Nodes[i].Mode = ModeUnknown
		}
	}
	if err := out.Validate(); err != nil {
		t.Fatalf("applying\n%v\ngives an invalid state: %v", plan, err)
	}
	return out
}

func applyConfig(n *NodeState, st Action) {
	for k, val := range st.Set {
		switch k {
		case "inter.broker.protocol.version":
			n.IBPV = Static(val)
		case "log.message.format.version":
			n.LMFV = Static(val)
		case "zookeeper.metadata.migration.enable":
			n.Migration = true
		case "process.roles":
			n.Mode = ModeKRaft
			n.Roles = []node.Role{node.RoleBroker}
		}
	}
	for _, k := range st.Unset {
		switch k {
		case "inter.broker.protocol.version":
			n.IBPV = Default()
		case "log.message.format.version":
			n.LMFV = Default()
		case "zookeeper.metadata.migration.enable":
			n.Migration = false
		}
	}
}
