package upgrade

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/health"
	"github.com/kupgrade/kupgrade/node"
)

// fakeCluster is a scripted cluster for Runner tests: nodes with releases and
// static config, partitions whose ISR drops a node while it restarts and
// takes it back catchUp after its restart, and a quorum leader.
type fakeCluster struct {
	mu         sync.Mutex
	mode       compat.Mode
	nodes      map[int32]*fakeNode
	parts      []fakePartition
	leader     int32 // active controller (KRaft) or controller broker (ZooKeeper)
	catchUp    time.Duration
	levels     compat.FeatureLevels
	restarts   []int32        // node ids in restart order
	failNode   int32          // Restart of this node fails
	dieNode    int32          // this node's process dies right after its restart
	unnoticed  map[int32]bool // dead processes Kafka's metadata does not show yet
	down       map[int32]bool
	updates    []compat.FeatureLevels
	onRestart  func(id int32) // called after each restart (outside the lock)
	snapErrors int
	racks      map[int32]string // broker.rack by node (none if nil)
	// stuck is a broker (0: none) that, while it leads, takes no restarted
	// broker back into its ISRs, until it restarts itself (a leader whose
	// AlterPartition thread died); leaders are the elected replicas.
	stuck     int32
	leaders   map[topicPart]int32          // elected by electPreferredOf
	joined    map[topicPart]map[int32]bool // in the ISR since the replica's last restart
	reorders  [][]replicaOrder             // reorderReplicas calls
	elections [][]topicPart                // electPreferredOf calls
}

type fakeNode struct {
	id        int32
	roles     []node.Role
	version   string
	config    map[string]string
	restarted time.Time
}

type fakePartition struct {
	topic    string
	p        int32
	replicas []int32
	minISR   int32
	// preferred is the order leaders are picked in, the replicas' first
	// order: a reassignment that reorders replicas moves no leader.
	preferred []int32
}

func newFakeCluster(mode compat.Mode, release string, controllers, brokers int) *fakeCluster {
	f := &fakeCluster{mode: mode, nodes: map[int32]*fakeNode{}, catchUp: 3 * time.Second, levels: compat.FeatureLevels{}, down: map[int32]bool{}, leader: -1}
	id := int32(1)
	for range controllers {
		f.nodes[id] = &fakeNode{id: id, roles: []node.Role{node.RoleController}, version: release, config: map[string]string{}}
		id++
	}
	var bs []int32
	for range brokers {
		f.nodes[id] = &fakeNode{id: id, roles: []node.Role{node.RoleBroker}, version: release, config: map[string]string{}}
		bs = append(bs, id)
		id++
	}
	for p := range int32(6) {
		reps := []int32{bs[int(p)%len(bs)], bs[(int(p)+1)%len(bs)], bs[(int(p)+2)%len(bs)]}
		f.parts = append(f.parts, fakePartition{topic: "orders", p: p, replicas: reps, minISR: 2})
	}
	return f
}

// state returns the compat state of the fake, as Inspect would.
func (f *fakeCluster) state() compat.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := compat.State{Mode: f.mode, Finalized: maps.Clone(f.levels)}
	for _, id := range slices.Sorted(maps.Keys(f.nodes)) {
		n := f.nodes[id]
		ns := compat.NodeState{ID: id, Release: compat.MustParseRelease(n.version)}
		for _, r := range n.roles {
			ns.Roles = append(ns.Roles, node.Role(r))
		}
		if f.mode == compat.ModeZooKeeper {
			ns.IBPV, ns.LMFV = compat.Default(), compat.Default()
			if v, ok := n.config["inter.broker.protocol.version"]; ok {
				ns.IBPV = compat.Static(v)
			}
		}
		s.Nodes = append(s.Nodes, ns)
	}
	return s
}

func (f *fakeCluster) up(id int32, now time.Time) bool {
	n := f.nodes[id]
	return !f.down[id] && (n.restarted.IsZero() || now.Sub(n.restarted) >= f.catchUp)
}

// Orchestrator

func (f *fakeCluster) Nodes(ctx context.Context) ([]node.Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []node.Node
	for _, id := range slices.Sorted(maps.Keys(f.nodes)) {
		n := f.nodes[id]
		out = append(out, node.Node{ID: id, Roles: slices.Clone(n.roles), Host: "127.0.0.1", Port: 9000 + int(id), Version: n.version})
	}
	return out, nil
}

func (f *fakeCluster) Restart(ctx context.Context, id int32, ch node.Change) error {
	f.mu.Lock()
	n := f.nodes[id]
	if n == nil {
		f.mu.Unlock()
		return fmt.Errorf("no node %d", id)
	}
	f.restarts = append(f.restarts, id)
	if id == f.failNode {
		f.down[id] = true
		f.mu.Unlock()
		return fmt.Errorf("node %d exited during start: invalid config", id)
	}
	if ch.Version != "" {
		n.version = ch.Version
	}
	maps.Copy(n.config, ch.Set)
	for _, k := range ch.Unset {
		delete(n.config, k)
	}
	n.restarted = time.Now()
	if id == f.stuck {
		f.stuck = 0 // its restart heals it
	}
	maps.DeleteFunc(f.leaders, func(_ topicPart, l int32) bool { return l == id }) // leadership moves away
	for _, j := range f.joined {
		delete(j, id) // out of every ISR
	}
	delete(f.down, id) // a restart starts a dead node again
	if id == f.dieNode {
		f.down[id] = true
	}
	if f.leader == id { // leadership moves away from a restarting controller
		for _, o := range slices.Sorted(maps.Keys(f.nodes)) {
			if o != id && slices.Contains(f.nodes[o].roles, node.RoleController) == slices.Contains(n.roles, node.RoleController) {
				f.leader = o
				break
			}
		}
	}
	cb := f.onRestart
	f.mu.Unlock()
	if cb != nil {
		cb(id)
	}
	return nil
}

// Alive implements Liveness.
func (f *fakeCluster) Alive(ctx context.Context, id int32) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !(f.dieNode == id && f.down[id]) && !f.unnoticed[id], nil
}

// clusterOps

func (f *fakeCluster) snapshot(ctx context.Context) (health.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.snapErrors > 0 {
		f.snapErrors--
		return health.Snapshot{}, errors.New("metadata: connection refused")
	}
	now := time.Now()
	s := health.Snapshot{Controller: f.leader}
	for _, id := range slices.Sorted(maps.Keys(f.nodes)) {
		if slices.Contains(f.nodes[id].roles, node.RoleBroker) && !f.down[id] {
			s.Brokers = append(s.Brokers, health.Broker{Node: node.Node{ID: id, Rack: f.racks[id]}})
		}
	}
	t := health.Topic{Name: "orders", MinISR: 2}
	for _, p := range f.parts {
		hp := health.Partition{Partition: p.p, Replicas: slices.Clone(p.replicas), Leader: -1}
		order := p.preferred
		if order == nil {
			order = p.replicas
		}
		for _, r := range order {
			if f.up(r, now) && hp.Leader < 0 {
				hp.Leader = r
			}
		}
		if l, ok := f.leaders[topicPart{p.topic, p.p}]; ok && f.up(l, now) {
			hp.Leader = l
		}
		key := topicPart{p.topic, p.p}
		for _, r := range p.replicas {
			// A stuck leader keeps a replica out that left the ISR with its
			// restart and has not come back.
			if !f.up(r, now) || hp.Leader == f.stuck && r != f.stuck && !f.nodes[r].restarted.IsZero() && !f.joined[key][r] {
				continue
			}
			hp.ISR = append(hp.ISR, r)
			if f.joined == nil {
				f.joined = map[topicPart]map[int32]bool{}
			}
			if f.joined[key] == nil {
				f.joined[key] = map[int32]bool{}
			}
			f.joined[key][r] = true
		}
		t.Partitions = append(t.Partitions, hp)
	}
	s.Topics = []health.Topic{t}
	return s.Indexed(), nil
}

func (f *fakeCluster) activeController(ctx context.Context) (int32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leader, nil
}

func (f *fakeCluster) canRestartController(ctx context.Context, id int32) (health.Verdict, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	v := health.Verdict{Kind: health.KindCanRestart, Nodes: []int32{id}, OK: true}
	for oid, n := range f.nodes {
		if oid != id && slices.Contains(n.roles, node.RoleController) && !f.up(oid, now) {
			v.OK = false
			v.Reasons = append(v.Reasons, health.Reason{Partition: -1, Leader: -1, Nodes: []int32{oid}, Message: fmt.Sprintf("voter %d is not caught up", oid)})
		}
	}
	return v, nil
}

func (f *fakeCluster) controllerCaughtUp(ctx context.Context, id int32) (health.Verdict, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.up(id, time.Now()) {
		return health.Verdict{OK: true}, nil
	}
	return health.Verdict{Reasons: []health.Reason{{Partition: -1, Leader: -1, Nodes: []int32{id}, Message: fmt.Sprintf("controller %d is not caught up", id)}}}, nil
}

func (f *fakeCluster) brokerConfig(ctx context.Context, id int32, keys []string) (map[string]compat.ConfigValue, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]compat.ConfigValue{}
	for _, k := range keys {
		if v, ok := f.nodes[id].config[k]; ok {
			out[k] = compat.Static(v)
		} else {
			out[k] = compat.Default()
		}
	}
	return out, nil
}

func (f *fakeCluster) finalized(ctx context.Context) (compat.FeatureLevels, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.levels), nil
}

func (f *fakeCluster) finalizedEverywhere(ctx context.Context, levels compat.FeatureLevels) (health.Verdict, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, l := range levels {
		if f.levels[k] != l {
			return health.Verdict{Reasons: []health.Reason{{Partition: -1, Leader: -1, Message: fmt.Sprintf("%s is %d, not %d", k, f.levels[k], l)}}}, nil
		}
	}
	return health.Verdict{OK: true}, nil
}

func (f *fakeCluster) updateFeatures(ctx context.Context, levels compat.FeatureLevels, downgrade bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates = append(f.updates, maps.Clone(levels))
	maps.Copy(f.levels, levels)
	return nil
}

func (f *fakeCluster) electPreferred(ctx context.Context, snap health.Snapshot, node int32) error {
	return nil
}

func (f *fakeCluster) electAll(ctx context.Context) error { return nil }

func (f *fakeCluster) reorderReplicas(ctx context.Context, orders []replicaOrder) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reorders = append(f.reorders, slices.Clone(orders))
	for _, o := range orders {
		i := slices.IndexFunc(f.parts, func(p fakePartition) bool { return p.topic == o.Topic && p.p == o.Partition })
		if i < 0 {
			return fmt.Errorf("%s-%d: unknown partition", o.Topic, o.Partition)
		}
		p := &f.parts[i]
		if !slices.Equal(slices.Sorted(slices.Values(o.Replicas)), slices.Sorted(slices.Values(p.replicas))) {
			return fmt.Errorf("%s-%d: %v are not its replicas %v", o.Topic, o.Partition, o.Replicas, p.replicas)
		}
		if p.preferred == nil {
			p.preferred = p.replicas
		}
		p.replicas = slices.Clone(o.Replicas)
	}
	return nil
}

// replicaProgress reports every replica caught up: the fake's restarted
// brokers are behind only in their ISR membership.
func (f *fakeCluster) replicaProgress(ctx context.Context, id int32, tps []topicPart) (map[topicPart]replicaProgress, error) {
	out := map[topicPart]replicaProgress{}
	for _, tp := range tps {
		out[tp] = replicaProgress{End: 100, Watermark: 100}
	}
	return out, nil
}

func (f *fakeCluster) electPreferredOf(ctx context.Context, tps []topicPart) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.elections = append(f.elections, slices.Clone(tps))
	if f.leaders == nil {
		f.leaders = map[topicPart]int32{}
	}
	for _, tp := range tps {
		for _, p := range f.parts {
			if p.topic == tp.topic && p.p == tp.partition && f.up(p.replicas[0], time.Now()) {
				f.leaders[tp] = p.replicas[0]
			}
		}
	}
	return nil
}

func (f *fakeCluster) unregister(ctx context.Context, id int32) error { return nil }

func (f *fakeCluster) restartCounts() map[int32]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[int32]int{}
	for _, id := range f.restarts {
		out[id]++
	}
	return out
}

func (f *fakeCluster) restartOrder() []int32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.restarts)
}

// withOps makes a Runner use scripted cluster operations.
func withOps(o clusterOps) RunnerOption { return optionFunc(func(c *config) { c.ops = o }) }

// mustRunner returns NewRunner's Runner, failing the test on an error.
func mustRunner(t testing.TB, cl *kgo.Client, orch node.Orchestrator, opts ...RunnerOption) *Runner {
	t.Helper()
	r, err := NewRunner(cl, orch, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
