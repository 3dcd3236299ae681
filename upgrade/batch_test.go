package upgrade

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/health"
	"github.com/kupgrade/kupgrade/node"
)

// rackedParts returns one partition per triple of brokers drawn one from
// each rack: any two brokers of different racks share a partition.
func rackedParts(racks [][]int32, minISR int32) []fakePartition {
	var out []fakePartition
	p := int32(0)
	for _, a := range racks[0] {
		for _, b := range racks[1] {
			for _, c := range racks[2] {
				out = append(out, fakePartition{topic: "orders", p: p, replicas: []int32{a, b, c}, minISR: minISR})
				p++
			}
		}
	}
	return out
}

// batchSnap builds a snapshot: brokers with racks (down ones left out),
// partitions whose ISR is their replicas but for down and lagging brokers.
func batchSnap(racks map[int32]string, parts []fakePartition, down []int32, lagging map[int32][]int32) health.Snapshot {
	var s health.Snapshot
	for _, id := range slices.Sorted(maps.Keys(racks)) {
		if !slices.Contains(down, id) {
			s.Brokers = append(s.Brokers, health.Broker{Node: node.Node{ID: id, Rack: racks[id]}})
		}
	}
	byTopic := map[string]*health.Topic{}
	for _, p := range parts {
		t := byTopic[p.topic]
		if t == nil {
			t = &health.Topic{Name: p.topic, MinISR: p.minISR}
			byTopic[p.topic] = t
		}
		hp := health.Partition{Partition: p.p, Replicas: p.replicas, Leader: -1}
		for _, r := range p.replicas {
			if !slices.Contains(down, r) && !slices.Contains(lagging[p.p], r) {
				hp.ISR = append(hp.ISR, r)
			}
		}
		if len(hp.ISR) > 0 {
			hp.Leader = hp.ISR[0]
		}
		t.Partitions = append(t.Partitions, hp)
	}
	for _, name := range slices.Sorted(maps.Keys(byTopic)) {
		s.Topics = append(s.Topics, *byTopic[name])
	}
	return s
}

func TestRestartBatch(t *testing.T) {
	threeRacks := map[int32]string{4: "a", 5: "a", 6: "b", 7: "b", 8: "c", 9: "c"}
	noRacks := map[int32]string{4: "", 5: "", 6: "", 7: "", 8: "", 9: ""}
	racked := rackedParts([][]int32{{4, 5}, {6, 7}, {8, 9}}, 2)
	brokers := []int32{4, 5, 6, 7, 8, 9}
	var ring []fakePartition // RF 3 on a ring: i shares partitions with i±1 and i±2
	for p := range int32(6) {
		ring = append(ring, fakePartition{topic: "orders", p: p, replicas: []int32{brokers[p], brokers[(p+1)%6], brokers[(p+2)%6]}, minISR: 2})
	}
	for _, tc := range []struct {
		name    string
		racks   map[int32]string
		parts   []fakePartition
		down    []int32
		lagging map[int32][]int32 // partition → replicas out of ISR
		cands   []int32
		max     int
		want    []int32
	}{
		{name: "racks, cap 6: a rack", racks: threeRacks, parts: racked, cands: brokers, max: 6, want: []int32{4, 5}},
		{name: "racks, cap 0 is serial", racks: threeRacks, parts: racked, cands: brokers, max: 0, want: []int32{4}},
		{name: "racks, cap 1 is serial", racks: threeRacks, parts: racked, cands: brokers, max: 1, want: []int32{4}},
		{name: "racks, the rest of a roll", racks: threeRacks, parts: racked, cands: []int32{6, 7, 8, 9}, max: 6, want: []int32{6, 7}},
		{name: "racks, min ISR 1: two racks", racks: threeRacks, parts: rackedParts([][]int32{{4, 5}, {6, 7}, {8, 9}}, 1), cands: brokers, max: 6, want: []int32{4, 5, 6, 7}},
		{name: "racks, min ISR 1, cap 3", racks: threeRacks, parts: rackedParts([][]int32{{4, 5}, {6, 7}, {8, 9}}, 1), cands: brokers, max: 3, want: []int32{4, 5, 6}},
		{name: "racks, min ISR 3 (= RF): any", racks: threeRacks, parts: rackedParts([][]int32{{4, 5}, {6, 7}, {8, 9}}, 3), cands: brokers, max: 6, want: []int32{4, 5, 6, 7}},
		// Broker 6 is down: partitions it holds are at min ISR, so rack
		// a cannot go, but rack b (6 itself and 7) can.
		{name: "racks, a broker down", racks: threeRacks, parts: racked, down: []int32{6}, cands: brokers, max: 6, want: []int32{6, 7}},
		// orders-0 (4, 6, 8) has only 4 in ISR: 4 would take it offline,
		// 6 and 8 hold a replica of a partition below min ISR.
		{name: "racks, a partition under min ISR", racks: threeRacks, parts: racked, lagging: map[int32][]int32{0: {6, 8}}, cands: brokers, max: 6, want: []int32{5}},
		{name: "racks, nothing may restart", racks: threeRacks, parts: racked, lagging: map[int32][]int32{0: {6}}, cands: []int32{4, 8}, max: 6, want: []int32{}},
		{name: "no racks, ring: disjoint pairs", racks: noRacks, parts: ring, cands: brokers, max: 6, want: []int32{4, 7}},
		{name: "no racks, ring, the rest", racks: noRacks, parts: ring, cands: []int32{5, 6, 8, 9}, max: 6, want: []int32{5, 8}},
		{name: "no racks, ring, cap 2", racks: noRacks, parts: ring, cands: brokers, max: 2, want: []int32{4, 7}},
		// Two racks, RF 3: some partitions have two replicas in one rack.
		{name: "two racks, RF 3: per-partition check wins", racks: map[int32]string{4: "a", 5: "b", 6: "a", 7: "b", 8: "a", 9: "b"}, parts: ring, cands: brokers, max: 6, want: []int32{4, 7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := batchSnap(tc.racks, tc.parts, tc.down, tc.lagging)
			got := restartBatch(&health.Gate{}, snap, tc.cands, tc.max)
			if diff := cmp.Diff(tc.want, got, cmpEmpty); diff != "" {
				t.Errorf("batch (-want +got):\n%s", diff)
			}
			if len(got) > 0 {
				if v := health.CanRestart(snap, got...); !v.OK {
					t.Errorf("batch %v is not safe: %v", got, v)
				}
			}
		})
	}
}

// cmpEmpty makes nil and empty slices equal.
var cmpEmpty = cmp.Transformer("empty", func(s []int32) []int32 {
	if len(s) == 0 {
		return nil
	}
	return s
})

// slowOrch is a fakeCluster whose restarts take a while, and which records
// how many ran at once and whether any partition fell below min ISR while
// restarts were under way.
type slowOrch struct {
	*fakeCluster
	took     time.Duration
	mu       sync.Mutex
	inflight []int32
	maxAtt   int         // most restarts at once
	together [][]int32   // the nodes restarting at once, at each restart's start
	breaches []string    // partitions below min ISR seen during a restart
	onStart  func(int32) // called at a restart's start
}

func (o *slowOrch) Restart(ctx context.Context, id int32, ch node.Change) error {
	o.mu.Lock()
	o.inflight = append(o.inflight, id)
	o.maxAtt = max(o.maxAtt, len(o.inflight))
	o.together = append(o.together, slices.Sorted(slices.Values(o.inflight)))
	cb := o.onStart
	o.mu.Unlock()
	if cb != nil {
		cb(id)
	}
	defer func() {
		o.mu.Lock()
		o.inflight = slices.DeleteFunc(o.inflight, func(n int32) bool { return n == id })
		o.mu.Unlock()
	}()
	select {
	case <-time.After(o.took):
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	err := o.fakeCluster.Restart(ctx, id, ch)
	o.check()
	return err
}

// check records partitions below min ISR in the fake's snapshot.
func (o *slowOrch) check() {
	snap, _ := o.fakeCluster.snapshot(context.Background())
	for _, tp := range snap.Topics {
		for _, p := range tp.Partitions {
			if int32(len(p.ISR)) < tp.MinISR {
				o.mu.Lock()
				o.breaches = append(o.breaches, fmt.Sprintf("%s-%d ISR %v", tp.Name, p.Partition, p.ISR))
				o.mu.Unlock()
			}
		}
	}
}

// rackedFake is a KRaft fake with three controllers (1, 2, 3) and six
// brokers, two per rack, with one partition per cross-rack triple.
func rackedFake() *fakeCluster {
	f := newFakeCluster(compat.ModeKRaft, "3.9.2", 3, 6)
	f.levels["metadata.version"] = 21
	f.leader = 1
	f.racks = map[int32]string{4: "a", 5: "a", 6: "b", 7: "b", 8: "c", 9: "c"}
	f.parts = rackedParts([][]int32{{4, 5}, {6, 7}, {8, 9}}, 2)
	return f
}

func TestRunnerBatchesRestarts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		max     int
		batches map[int][]int32 // batch → brokers (0: serial)
		maxAtt  int
	}{
		{name: "serial by default", max: 0, batches: map[int][]int32{0: {4, 5, 6, 7, 8, 9}}, maxAtt: 1},
		{name: "cap 1", max: 1, batches: map[int][]int32{0: {4, 5, 6, 7, 8, 9}}, maxAtt: 1},
		{name: "a rack at a time", max: 6, batches: map[int][]int32{1: {4, 5}, 2: {6, 7}, 3: {8, 9}}, maxAtt: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := rackedFake()
				o := &slowOrch{fakeCluster: f, took: 2 * time.Second}
				plan := kraftPlan(t, f, "4.1.2")
				var log eventLog
				start := time.Now()
				if err := mustRunner(t, nil, o, withOps(f), OnEvent(log.add), PassHolds(), BatchRestarts(tc.max)).Run(t.Context(), plan); err != nil {
					t.Fatal(err)
				}
				took := time.Since(start)
				batches := map[int][]int32{}
				ctrlBatched := false
				for _, e := range log.ev {
					if e.Kind != EventRestarting {
						continue
					}
					if e.Node <= 3 {
						ctrlBatched = ctrlBatched || e.Batch != 0
						continue
					}
					batches[e.Batch] = append(batches[e.Batch], e.Node)
				}
				if diff := cmp.Diff(tc.batches, batches); diff != "" {
					t.Errorf("brokers by batch (-want +got):\n%s", diff)
				}
				if ctrlBatched {
					t.Error("a controller restarted in a batch")
				}
				if o.maxAtt != tc.maxAtt {
					t.Errorf("at most %d restarts at once, want %d (%v)", o.maxAtt, tc.maxAtt, o.together)
				}
				for _, at := range o.together {
					if len(at) > 1 && (at[0] <= 3 || f.racks[at[0]] != f.racks[at[len(at)-1]]) {
						t.Errorf("nodes %v restarted at once: want only brokers of one rack", at)
					}
				}
				if len(o.breaches) > 0 {
					t.Errorf("partitions below min ISR during restarts: %v", o.breaches)
				}
				if diff := cmp.Diff(map[int32]int{1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1, 7: 1, 8: 1, 9: 1}, f.restartCounts()); diff != "" {
					t.Errorf("restarts per node (-want +got):\n%s", diff)
				}
				// Each restart unit: 2 s restart, 3 s catch-up, up to 2 s of
				// polling: 3 controllers, then 6 brokers or 3 batches.
				units := 9
				if tc.max > 1 {
					units = 6
				}
				if took < time.Duration(units)*5*time.Second || took > time.Duration(units)*7*time.Second {
					t.Errorf("run took %v, want %d restarts of 5 to 7 s", took, units)
				}
				t.Logf("run took %v (fake time)", took)
			})
		})
	}
}

// lagOps is a fakeCluster whose snapshots show some replicas out of ISR.
type lagOps struct {
	*fakeCluster
	lagging map[int32][]int32 // orders partition → replicas out of its ISR
}

func (o *lagOps) snapshot(ctx context.Context) (health.Snapshot, error) {
	s, err := o.fakeCluster.snapshot(ctx)
	if err != nil {
		return s, err
	}
	s.Topics = slices.Clone(s.Topics)
	for ti := range s.Topics {
		t := &s.Topics[ti]
		t.Partitions = slices.Clone(t.Partitions)
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			p.ISR = slices.DeleteFunc(slices.Clone(p.ISR), func(r int32) bool { return slices.Contains(o.lagging[p.Partition], r) })
		}
	}
	return s.Indexed(), nil
}

// TestRunnerBatchGateShrinks: the cluster changed since the batch was picked
// (broker 6 dropped out of orders-4's ISR, whose replicas are 5, 6, 8):
// the gate's fresh snapshot no longer allows 4 and 5 together, and the
// batch shrinks to 4 alone, saying why.
func TestRunnerBatchGateShrinks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := rackedFake()
		ops := &lagOps{fakeCluster: f, lagging: map[int32][]int32{4: {6}}}
		plan := kraftPlan(t, f, "4.1.2")
		var log eventLog
		r := mustRunner(t, nil, f, withOps(ops), OnEvent(log.add), BatchRestarts(6))
		u := &run{r: r, plan: plan, rec: Record{PlanID: plan.ID, Steps: make([]StepRecord, len(plan.Steps))}}
		stepOf := map[int32]int{}
		for i, s := range plan.Steps {
			if s.Kind == StepRestart && s.Node >= 4 && s.Node <= 5 {
				stepOf[s.Node] = i
			}
		}
		steps, err := u.gateBatch(t.Context(), stepOf[4], 1, []int32{4, 5}, stepOf)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int{stepOf[4]}, steps); diff != "" {
			t.Errorf("steps after the gate (-want +got):\n%s", diff)
		}
		var shrunk []Event
		for _, e := range log.ev {
			if e.Kind == EventWaiting && e.Batch == 1 {
				shrunk = append(shrunk, e)
			}
		}
		if len(shrunk) != 1 || len(shrunk[0].Reasons) == 0 || shrunk[0].Reasons[0].Partition != 4 {
			t.Errorf("want one event of batch 1 saying it shrank because of orders-4, got %v", shrunk)
		}
		// With the lag gone, the gate lets both go.
		ops.lagging = nil
		if steps, err = u.gateBatch(t.Context(), stepOf[4], 1, []int32{4, 5}, stepOf); err != nil || len(steps) != 2 {
			t.Errorf("gate without lag: steps %v, err %v; want both", steps, err)
		}
	})
}

// TestRunnerBatchResumesAfterCrash: the run stops (its context cancelled)
// once both brokers of the first batch have restarted, before they caught
// up. The next run with the same journal settles each of them (no second
// restart), then batches the rest: every node restarted exactly once.
func TestRunnerBatchResumesAfterCrash(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := rackedFake()
		o := &slowOrch{fakeCluster: f, took: time.Second}
		plan := kraftPlan(t, f, "4.1.2")
		j := &MemoryJournal{}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		brokers := 0
		f.onRestart = func(id int32) {
			if id >= 4 {
				brokers++
				if brokers == 2 {
					cancel()
				}
			}
		}
		err := mustRunner(t, nil, o, withOps(f), WithJournal(j), PassHolds(), BatchRestarts(6)).Run(ctx, plan)
		if err == nil || ctx.Err() == nil {
			t.Fatalf("first run: %v; want it stopped by its context", err)
		}
		rec, _ := j.Load(t.Context())
		var inFlight []int32
		for i, s := range rec.Steps {
			if s.State == StepStarted && s.Restarted && s.Batch == 1 {
				inFlight = append(inFlight, plan.Steps[i].Node)
			}
		}
		if diff := cmp.Diff([]int32{4, 5}, inFlight); diff != "" {
			t.Fatalf("steps journaled in flight in batch 1 (-want +got):\n%s", diff)
		}
		f.onRestart = nil
		var log eventLog
		if err := mustRunner(t, nil, o, withOps(f), WithJournal(j), PassHolds(), OnEvent(log.add), BatchRestarts(6)).Run(t.Context(), plan); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[int32]int{1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1, 7: 1, 8: 1, 9: 1}, f.restartCounts()); diff != "" {
			t.Errorf("restarts per node (-want +got):\n%s", diff)
		}
		batches := map[int][]int32{}
		for _, e := range log.ev {
			if e.Kind == EventRestarting {
				batches[e.Batch] = append(batches[e.Batch], e.Node)
			}
		}
		// The resumed run's batches are numbered after the journal's.
		if diff := cmp.Diff(map[int][]int32{2: {6, 7}, 3: {8, 9}}, batches); diff != "" {
			t.Errorf("second run's restarts by batch (-want +got):\n%s", diff)
		}
		if len(o.breaches) > 0 {
			t.Errorf("partitions below min ISR during restarts: %v", o.breaches)
		}
	})
}

// TestRunnerBatchesZooKeeperControllerLast: in ZooKeeper mode the
// controller broker restarts alone, last in each roll (two rolls: binaries,
// then inter.broker.protocol.version), while the others batch a rack at a
// time.
func TestRunnerBatchesZooKeeperControllerLast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeCluster(compat.ModeZooKeeper, "3.8.1", 0, 6)
		f.leader = 1
		f.racks = map[int32]string{1: "a", 2: "a", 3: "b", 4: "b", 5: "c", 6: "c"}
		f.parts = rackedParts([][]int32{{1, 2}, {3, 4}, {5, 6}}, 2)
		plan := kraftPlan(t, f, "3.9.2")
		o := &slowOrch{fakeCluster: f, took: time.Second}
		var log eventLog
		if err := mustRunner(t, nil, o, withOps(f), OnEvent(log.add), PassHolds(), BatchRestarts(6)).Run(t.Context(), plan); err != nil {
			t.Fatal(err)
		}
		type restart struct {
			roll  int
			node  int32
			batch int
		}
		var got []restart
		for _, e := range log.ev {
			if e.Kind == EventRestarting {
				got = append(got, restart{plan.Steps[e.Step].Roll, e.Node, e.Batch})
			}
		}
		rolls := map[int][]restart{}
		for _, r := range got {
			rolls[r.roll] = append(rolls[r.roll], r)
		}
		if len(rolls) == 0 {
			t.Fatalf("no restarts: %v", got)
		}
		// The fake moves the controller to broker 2 when 1 restarts.
		controller := map[int]int32{1: 1, 2: 2}
		for roll, rs := range rolls {
			last := rs[len(rs)-1]
			if last.node != controller[roll] || last.batch != 0 {
				t.Errorf("roll %d restarts %v: want controller broker %d last and alone", roll, rs, controller[roll])
			}
			batched := 0
			for _, r := range rs {
				if r.batch != 0 {
					batched++
				}
			}
			if batched != 4 {
				t.Errorf("roll %d restarts %v: want 3, 4, 5, 6 in batches (rack b, rack c) and the controller's rack mate alone", roll, rs)
			}
		}
		if len(o.breaches) > 0 {
			t.Errorf("partitions below min ISR during restarts: %v", o.breaches)
		}
	})
}

func TestBatchRestartsOption(t *testing.T) {
	f := rackedFake()
	_, err := NewRunner(nil, f, withOps(f), BatchRestarts(-1))
	if err == nil || !strings.Contains(err.Error(), "BatchRestarts(-1)") {
		t.Errorf("BatchRestarts(-1): err %v, want one naming the option", err)
	}
	for _, n := range []int{0, 1, 6} {
		if _, err := NewRunner(nil, f, withOps(f), BatchRestarts(n)); err != nil {
			t.Errorf("BatchRestarts(%d): %v", n, err)
		}
	}
}
