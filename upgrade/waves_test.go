package upgrade

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/internal/kfaketest"
	"github.com/kupgrade/kupgrade/node"
	"github.com/kupgrade/kupgrade/reassign"
)

func stepList(p Plan) []string {
	var out []string
	for _, s := range p.Steps {
		out = append(out, fmt.Sprintf("%s %d", s.Kind, s.Node))
	}
	return out
}

func TestReplacePlanWaves(t *testing.T) {
	kr := compat.State{Mode: compat.ModeKRaft, Finalized: compat.FeatureLevels{"metadata.version": 21},
		Nodes: nodes("1:c:3.9.2", "2:b:3.9.2", "3:b:3.9.2", "4:b:3.9.2", "5:b:3.9.2", "6:b:3.9.2")}
	to := Target{Version: compat.MustParseRelease("4.1.2")}
	p, err := NewReplacePlan(kr, to, ReplaceWaves(2))
	if err != nil {
		t.Fatal(err)
	}
	wave := func(ids ...int32) []string {
		var out []string
		for _, id := range ids {
			out = append(out, fmt.Sprintf("provision %d", id))
		}
		out = append(out, "move-partitions -1", "elect-leaders -1")
		for _, id := range ids {
			out = append(out, fmt.Sprintf("retire %d", id))
		}
		return out
	}
	want := slices.Concat([]string{"preflight -1", "restart 1"}, wave(2, 3), wave(4, 5), wave(6), []string{"finalize -1"})
	if diff := cmp.Diff(want, stepList(p)); diff != "" {
		t.Errorf("waves of 2 (-want +got):\n%s", diff)
	}
	if err := p.Verify(); err != nil {
		t.Error(err)
	}
	// By default, waves of DefaultWaveSize (6): seven brokers make two.
	seven := kr
	seven.Nodes = append(nodes("1:c:3.9.2"), nodes("2:b:3.9.2", "3:b:3.9.2", "4:b:3.9.2", "5:b:3.9.2", "6:b:3.9.2", "7:b:3.9.2", "8:b:3.9.2")...)
	p, err = NewReplacePlan(seven, to)
	if err != nil {
		t.Fatal(err)
	}
	want = slices.Concat([]string{"preflight -1", "restart 1"}, wave(2, 3, 4, 5, 6, 7), wave(8), []string{"finalize -1"})
	if diff := cmp.Diff(want, stepList(p)); diff != "" {
		t.Errorf("default waves (-want +got):\n%s", diff)
	}
	for _, n := range []int{0, -1} {
		if _, err := NewReplacePlan(kr, to, ReplaceWaves(n)); err == nil || !strings.Contains(err.Error(), "ReplaceWaves") {
			t.Errorf("ReplaceWaves(%d): %v, want a refusal naming the option", n, err)
		}
	}

	// ZooKeeper: the new brokers start pinned at the old protocol, and
	// restart once the old ones are gone to raise it; no unregistering.
	zk := compat.State{Mode: compat.ModeZooKeeper, Finalized: compat.FeatureLevels{}, Nodes: nodes("1:b:3.8.1", "2:b:3.8.1", "3:b:3.8.1")}
	p, err = NewReplacePlan(zk, Target{Version: compat.MustParseRelease("3.9.2")})
	if err != nil {
		t.Fatal(err)
	}
	want = slices.Concat([]string{"preflight -1"}, wave(1, 2, 3), []string{"restart-replacement 1", "restart-replacement 2", "restart-replacement 3"})
	if diff := cmp.Diff(want, stepList(p)); diff != "" {
		t.Errorf("ZooKeeper replacement (-want +got):\n%s", diff)
	}
	for _, s := range p.Steps {
		switch s.Kind {
		case StepProvision:
			if diff := cmp.Diff(node.Change{Version: "3.9.2", Set: map[string]string{"inter.broker.protocol.version": "3.8-IV0"}}, s.Change); diff != "" {
				t.Errorf("%v: change (-want +got):\n%s", s, diff)
			}
		case StepRestartReplacement:
			if diff := cmp.Diff(node.Change{Set: map[string]string{"inter.broker.protocol.version": "3.9-IV0"}}, s.Change); diff != "" || !s.Hold || s.Reversible {
				t.Errorf("%v: change (-want +got):\n%s (raising the pin must be held and irreversible)", s, diff)
			}
		case StepRetire:
			if strings.Contains(s.Reason, "unregister") {
				t.Errorf("%v: ZooKeeper brokers are not unregistered", s)
			}
		}
	}
	if err := p.Verify(); err != nil {
		t.Error(err)
	}
}

// retireFake is the fake cluster with a Provisioner that records retires.
type retireFake struct {
	*fakeCluster
	mu      sync.Mutex
	retired []int32
}

func (p *retireFake) Provision(ctx context.Context, spec node.Spec) (node.Node, error) {
	return node.Node{}, errors.New("not in this test")
}

func (p *retireFake) Retire(ctx context.Context, id int32) error {
	p.mu.Lock()
	p.retired = append(p.retired, id)
	p.mu.Unlock()
	p.fakeCluster.mu.Lock()
	delete(p.fakeCluster.nodes, id)
	p.fakeCluster.mu.Unlock()
	return nil
}

// TestRetireRefusesHeldReplica: a retire step refuses while its broker
// holds a replica, naming the partitions, and never asks the Orchestrator;
// once the replicas are gone it retires the broker.
func TestRetireRefusesHeldReplica(t *testing.T) {
	f := newFakeCluster(compat.ModeKRaft, "4.1.2", 3, 4) // brokers 4-7; orders on 4, 5, 6
	p := Plan{Version: PlanVersion, Mode: compat.ModeKRaft, Target: compat.MustParseRelease("4.1.2"), Nodes: f.state().Nodes, Steps: []Step{
		{Kind: StepPreflight, Node: -1, Reversible: true},
		{Kind: StepRetire, Hop: 1, Node: 4, Roles: []node.Role{node.RoleBroker}, Hold: true},
	}}
	Reseal(&p)
	o := &retireFake{fakeCluster: f}
	j := &MemoryJournal{}
	err := mustRunner(t, nil, o, withOps(f), PassHolds(), WithJournal(j)).Run(t.Context(), p)
	se, ok := errors.AsType[*StepError](err)
	if !ok || se.Index != 1 || !strings.Contains(err.Error(), "broker 4 still holds replicas of [orders-0 orders-2 orders-3 orders-4]") ||
		!strings.Contains(err.Error(), "refusing to retire it") {
		t.Fatalf("Run = %v, want the retire step to refuse, naming broker 4's partitions", err)
	}
	if len(o.retired) != 0 {
		t.Errorf("the Orchestrator was asked to retire %v", o.retired)
	}
	// Move broker 4's replicas to broker 7: the retry retires it.
	f.mu.Lock()
	for i := range f.parts {
		for k, r := range f.parts[i].replicas {
			if r == 4 {
				f.parts[i].replicas = slices.Clone(f.parts[i].replicas)
				f.parts[i].replicas[k] = 7
			}
		}
	}
	f.mu.Unlock()
	if err := mustRunner(t, nil, o, withOps(f), PassHolds(), WithJournal(j)).Run(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.retired, []int32{4}) {
		t.Errorf("retired %v, want [4]", o.retired)
	}
}

// TestRestartReplacement: a restart-replacement step restarts the broker
// that replaced its node (from the provision step's record), not the old
// one.
func TestRestartReplacement(t *testing.T) {
	f := newFakeCluster(compat.ModeZooKeeper, "3.9.2", 0, 3) // brokers 1-3
	plan := f.state()
	f.nodes[4] = &fakeNode{id: 4, roles: []node.Role{node.RoleBroker}, version: "3.9.2", config: map[string]string{"inter.broker.protocol.version": "3.8-IV0"}}
	p := Plan{Version: PlanVersion, Mode: compat.ModeZooKeeper, Target: compat.MustParseRelease("3.9.2"), Nodes: plan.Nodes, Steps: []Step{
		{Kind: StepPreflight, Node: -1, Reversible: true},
		{Kind: StepProvision, Hop: 1, Node: 1, Roles: []node.Role{node.RoleBroker}, Change: node.Change{Version: "3.9.2"}},
		{Kind: StepRestartReplacement, Hop: 1, Node: 1, Roles: []node.Role{node.RoleBroker}, Change: node.Change{Set: map[string]string{"inter.broker.protocol.version": "3.9-IV0"}}},
	}}
	Reseal(&p)
	four := int32(4)
	j := &MemoryJournal{}
	j.Save(t.Context(), Record{PlanID: p.ID, Steps: []StepRecord{{State: StepDone}, {State: StepDone, Restarted: true, Provisioned: &four}, {}}})
	if err := mustRunner(t, nil, provisioningFake{f}, withOps(f), WithJournal(j)).Run(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	if got := f.restartOrder(); !slices.Equal(got, []int32{4}) {
		t.Errorf("restarted %v, want [4] (the replacement of broker 1)", got)
	}
	if v := f.nodes[4].config["inter.broker.protocol.version"]; v != "3.9-IV0" {
		t.Errorf("broker 4 has inter.broker.protocol.version=%s, want 3.9-IV0", v)
	}
	// Without the provision record, the step fails naming what is missing.
	j = &MemoryJournal{}
	j.Save(t.Context(), Record{PlanID: p.ID, Steps: []StepRecord{{State: StepDone}, {State: StepDone}, {}}})
	err := mustRunner(t, nil, provisioningFake{f}, withOps(f), WithJournal(j)).Run(t.Context(), p)
	if err == nil || !strings.Contains(err.Error(), "did not record the broker it provisioned in place of broker 1") {
		t.Errorf("Run without the provision record = %v", err)
	}
}

// replacedPair returns a broker of a kfake cluster that holds a replica of
// orders-0 and one that does not, as the old and new broker of a
// replacement: kfake places replicas at random, and a replacement of a
// broker that holds none has nothing to move.
func replacedPair(t *testing.T, cl *kgo.Client) (old, new int32) {
	t.Helper()
	meta, err := kmsg.NewPtrMetadataRequest().RequestWith(t.Context(), cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range meta.Topics {
		if tp.Topic == nil || *tp.Topic != "orders" {
			continue
		}
		for _, p := range tp.Partitions {
			if p.Partition != 0 {
				continue
			}
			for _, b := range meta.Brokers {
				if !slices.Contains(p.Replicas, b.NodeID) {
					return p.Replicas[0], b.NodeID
				}
			}
		}
	}
	t.Fatalf("no broker outside orders-0's replicas in %v", meta)
	return 0, 0
}

// diskOps scripts the destinations' disks.
type diskOps struct {
	*fakeCluster
	space map[int32]reassign.DiskSpace
	asked []int32
}

func (d *diskOps) diskSpace(ctx context.Context, brokers []int32) (map[int32]reassign.DiskSpace, error) {
	d.asked = append(d.asked, brokers...)
	return d.space, nil
}

// TestReplaceDiskCheck runs the move step of a replacement (broker 0 by
// broker 3) on kfake, whose brokers report no disk sizes (as Kafka before
// 3.3 does), then with scripted disks: the move step refuses before any
// move (the mover journals nothing) when a destination is unknown or would
// be too full, naming the broker; SkipDiskCheck and room let it go on.
func TestReplaceDiskCheck(t *testing.T) {
	// move runs the move step until the mover journals its run (then
	// stops it: kfake moves nothing) or it fails.
	move := func(t *testing.T, ops clusterOps, opts ...RunnerOption) (started bool, err error) {
		_, cl := kfaketest.New(t, kfake.NumBrokers(4), kfake.SeedTopics(3, "orders"))
		old, replacement := replacedPair(t, cl)
		plan := Plan{Version: PlanVersion, Mode: compat.ModeKRaft, Steps: []Step{
			{Kind: StepProvision, Hop: 1, Node: old, Roles: []node.Role{node.RoleBroker}},
			{Kind: StepMove, Hop: 1, Node: -1},
		}}
		rec := Record{PlanID: "move", Steps: []StepRecord{{State: StepDone, Restarted: true, Provisioned: &replacement}, {State: StepStarted}}}
		ctx, stop := context.WithCancelCause(t.Context())
		defer stop(nil)
		j := &savesOf{onSave: func(r Record) {
			if _, ok := r.Data["reassign/1"]; ok {
				started = true
				stop(errors.New("test: the mover has journaled its run"))
			}
		}}
		r := mustRunner(t, cl, kraft402(), append([]RunnerOption{withOps(ops), WithJournal(j)}, opts...)...)
		u := &run{r: r, plan: plan, rec: rec, start: time.Now()}
		deadline, cancel := context.WithTimeoutCause(ctx, 20*time.Second, errors.New("test: the move step neither failed nor moved within 20s"))
		defer cancel()
		_, err = u.move(deadline, 1, plan.Steps[1])
		return started, err
	}
	f := kraft402()
	started, err := move(t, f)
	if de, ok := errors.AsType[*reassign.DiskError](err); !ok || !de.Unknown || started || !strings.Contains(err.Error(), "SkipDiskCheck") {
		t.Errorf("kfake's unknown disks: move = %v (mover started %v), want an unknown-disk refusal before any move, naming SkipDiskCheck", err, started)
	}
	if started, _ := move(t, f, SkipDiskCheck()); !started {
		t.Error("with SkipDiskCheck the mover did not start")
	}
	full := &diskOps{fakeCluster: f, space: map[int32]reassign.DiskSpace{}}
	for b := range int32(4) {
		full.space[b] = reassign.DiskSpace{Broker: b, Total: 1000, Usable: 100, Dirs: 1} // 90% used
	}
	started, err = move(t, full)
	de, ok := errors.AsType[*reassign.DiskError](err)
	if !ok || de.Unknown || started || de.Used != 900 || de.Total != 1000 || !strings.Contains(err.Error(), "nothing was moved") {
		t.Errorf("90%% full destinations: move = %v (mover started %v), want a full-disk refusal before any move", err, started)
	}
	if ok && !slices.Contains(full.asked, de.Broker) {
		t.Errorf("refusal names broker %d, which was not asked (asked %v)", de.Broker, full.asked)
	}
	// The same disks pass at a ratio of 0.95.
	if started, err := move(t, full, ReplaceDiskRatio(0.95)); !started {
		t.Errorf("90%% full destinations at ReplaceDiskRatio(0.95): the mover did not start (%v)", err)
	}
	for _, r := range []float64{0, -1, 1.5} {
		if _, err := NewRunner(nil, f, withOps(f), ReplaceDiskRatio(r)); err == nil || !strings.Contains(err.Error(), "ReplaceDiskRatio") {
			t.Errorf("ReplaceDiskRatio(%v): %v, want a refusal naming the option", r, err)
		}
	}
}
