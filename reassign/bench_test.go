package reassign

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"testing"
	"unsafe"

	"github.com/kupgrade/kupgrade/internal/benchratio"
	"github.com/kupgrade/kupgrade/node"
)

// bigCluster is the benchmark's cluster: 1,000,000 partitions with
// replication factor 3 on brokers 1..1000 in 10 racks, plus brokers
// 1001..1100 (empty) in the racks of 1..100.
func bigCluster(b *testing.B) (*Assignment, []node.Node) {
	b.Helper()
	a, bs := gen(1000, 10, 1_000_000, 3)
	for i := range int32(100) {
		bs = append(bs, node.Node{ID: 1001 + i, Rack: bs[i].Rack})
	}
	return a, bs
}

// replace100 replaces brokers 1..100 with 1001..1100.
func replace100() BrokerChange {
	var ch BrokerChange
	for i := range int32(100) {
		ch.Replace = append(ch.Replace, Replacement{Old: 1 + i, New: 1001 + i})
	}
	return ch
}

// barePass is the floor any replacement planner pays, the baseline of the
// "x-bare" ratios: one pass over the assignment in its compact form (no
// per-partition API call), reading every partition's replicas, mapping each
// through a table of partners (a retired broker's replicas go to its
// partner) and writing them to a freshly allocated output of the same size.
// No balance, no racks, no Move values: nothing a real plan could skip.
func barePass(a *Assignment, partner []int32) []int32 {
	out := make([]int32, len(a.reps))
	for _, pt := range a.parts {
		for k := pt.off; k < pt.off+pt.n; k++ {
			id := a.reps[k]
			if id >= 0 && int(id) < len(partner) && partner[id] >= 0 {
				id = partner[id]
			}
			out[k] = id
		}
	}
	return out
}

// partnerTable returns barePass's table for ch: id → the broker that takes
// its replicas, -1 for a broker that keeps them.
func partnerTable(ch BrokerChange) []int32 {
	t := make([]int32, 2048)
	for i := range t {
		t[i] = -1
	}
	for _, r := range ch.Replace {
		t[r.Old] = r.New
	}
	for _, id := range ch.Remove {
		t[id] = 0
	}
	return t
}

var sink []int32

// assignmentBytes is the heap an Assignment holds: the input size that
// "peak-heap/input" divides by. (Its topic index map and the first
// partition of each topic are left out: a few hundred kilobytes.)
func assignmentBytes(a *Assignment) uint64 {
	n := uintptr(cap(a.parts))*unsafe.Sizeof(part{}) + uintptr(cap(a.reps))*4 + uintptr(cap(a.bytes))*8 +
		uintptr(cap(a.runs))*unsafe.Sizeof(rfRun{}) + uintptr(cap(a.tally))*unsafe.Sizeof(brokerTally{}) + uintptr(cap(a.brokers.tab))*4
	for _, t := range a.topics {
		n += unsafe.Sizeof(t) + uintptr(len(t))
	}
	return uint64(n)
}

// peakExtra runs f once and returns the most heap it held live at once
// beyond what was live before it started (the input, fixtures): f's own peak
// working set, its result included.
//
// Method: after a full GC, the garbage collector is set to run whenever the
// heap grows by 1% (GOGC=1), and a goroutine reads the runtime/metrics
// counter /gc/heap/live:bytes (the bytes the last collection found live) as
// fast as it can while f runs, so that it sees every collection's figure;
// the result is the largest less the figure before f. Between two
// collections the heap grows by about 1% of itself, so the true peak is at
// most that much above the figure reported; a collection running while f
// drops a structure may count it live once more ("floating garbage"), so
// callers take the median of three runs. (The other candidate,
// /memory/classes/heap/objects:bytes, also counts dead objects not yet
// swept, which made it vary by 10% of the input from run to run.)
func peakExtra(f func()) uint64 {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	runtime.GC()
	runtime.GC()
	base := read()
	old := debug.SetGCPercent(1)
	defer debug.SetGCPercent(old)
	stop := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		m := read()
		for {
			select {
			case <-stop:
				peak <- max(m, read())
				return
			default:
			}
			m = max(m, read())
			runtime.Gosched()
		}
	}()
	f()
	close(stop)
	p := <-peak
	if p < base {
		return 0
	}
	return p - base
}

// medianPeak returns the median of three [peakExtra] runs of f, calling
// drop after each to release f's result.
func medianPeak(f, drop func()) uint64 {
	var ps []uint64
	for range 3 {
		ps = append(ps, peakExtra(f))
		drop()
	}
	slices.Sort(ps)
	return ps[1]
}

// retiredReplicas counts the replicas on brokers ch retires: the fewest
// replica changes that can carry it out.
func retiredReplicas(a *Assignment, ch BrokerChange) int {
	retired := map[int32]bool{}
	for _, r := range ch.Replace {
		retired[r.Old] = true
	}
	for _, id := range ch.Remove {
		retired[id] = true
	}
	n := 0
	for _, id := range a.reps {
		if retired[id] {
			n++
		}
	}
	return n
}

// replicaChanges counts the replicas the moves add (each also removes one).
func replicaChanges(ms Moves) int {
	n := 0
	for _, m := range ms {
		n += len(m.Adding())
	}
	return n
}

// BenchmarkPlanAndBatch plans the replacement of 100 of 1,000 brokers
// holding 1,000,000 partitions (RF 3) and hands out the first batch. Besides
// ns/op (plan and batch only) it reports:
//
//   - x-bare: plan and batch time ÷ [barePass] time, measured alternately in
//     the same run (median of per-iteration ratios);
//   - peak-heap/input: (input + the most heap PlanMoves, NewBatcher and Next
//     held live at once beyond it) ÷ input, the input being the
//     Assignment's heap; see [peakExtra] for the method;
//   - changes/min: replica changes ÷ replicas on the retired brokers (1 is
//     minimal), and the replica and leader spreads after the plan (max -
//     min over remaining brokers);
//   - batch-share: NewBatcher and Next's part of the CPU time (median), so
//     that x-bare splits into the planner's and the batcher's;
//   - partitions-moved and replica-changes, the absolute figures.
func BenchmarkPlanAndBatch(b *testing.B) {
	a, bs := bigCluster(b)
	ch := replace100()
	partner := partnerTable(ch)
	var p MovePlan
	var first int
	var share []float64 // per run: the batcher's part of its CPU time
	run := func() {
		c0 := benchratio.CPUTime()
		var err error
		p, err = PlanMoves(a, bs, ch)
		if err != nil {
			b.Fatal(err)
		}
		c1 := benchratio.CPUTime()
		bt, err := NewBatcher(p.Moves)
		if err != nil {
			b.Fatal(err)
		}
		first = bt.Next().Len()
		c2 := benchratio.CPUTime()
		share = append(share, float64(c2-c1)/float64(max(c2-c0, 1)))
	}
	run()
	changes, minimum := replicaChanges(p.Moves), retiredReplicas(a, ch)
	rs, ls := spread(p)
	p = MovePlan{}
	extra := medianPeak(run, func() { p = MovePlan{} })
	in := assignmentBytes(a)
	share = nil
	b.ReportAllocs()
	b.ResetTimer()
	benchratio.Loop(b, func() { sink = barePass(a, partner) }, run)
	sink = nil
	b.ReportMetric(benchratio.Median(share), "batch-share")
	b.ReportMetric(float64(in+extra)/float64(in), "peak-heap/input")
	b.ReportMetric(float64(changes)/float64(minimum), "changes/min")
	b.ReportMetric(float64(rs), "replica-spread")
	b.ReportMetric(float64(ls), "leader-spread")
	b.ReportMetric(float64(len(p.Moves)), "partitions-moved")
	b.ReportMetric(float64(changes), "replica-changes")
	b.ReportMetric(float64(first), "first-batch")
}

// BenchmarkPlan covers the planner's other paths at the same scale:
// replacing 100 brokers (the plan alone, without the batcher),
// decommissioning 100 brokers (every replica placed by choice) and adding
// 100 (balancing onto them). x-bare and peak-heap/input are as in
// [BenchmarkPlanAndBatch].
func BenchmarkPlan(b *testing.B) {
	a, bs := bigCluster(b)
	var remove, add []int32
	for i := range int32(100) {
		remove = append(remove, 1+i*10+i%10) // every rack loses 10
		add = append(add, 1001+i)
	}
	for _, bc := range []struct {
		name string
		ch   BrokerChange
	}{
		{"replace100", replace100()},
		{"decommission100", BrokerChange{Remove: remove}},
		{"add100", BrokerChange{Add: add}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			partner := partnerTable(bc.ch)
			var p MovePlan
			run := func() {
				var err error
				if p, err = PlanMoves(a, bs, bc.ch); err != nil {
					b.Fatal(err)
				}
			}
			run()
			moves, changes := len(p.Moves), replicaChanges(p.Moves)
			rs, ls := spread(p)
			p = MovePlan{}
			extra := medianPeak(run, func() { p = MovePlan{} })
			in := assignmentBytes(a)
			b.ReportAllocs()
			b.ResetTimer()
			benchratio.Loop(b, func() { sink = barePass(a, partner) }, run)
			sink = nil
			b.ReportMetric(float64(in+extra)/float64(in), "peak-heap/input")
			if minimum := retiredReplicas(a, bc.ch); minimum > 0 {
				b.ReportMetric(float64(changes)/float64(minimum), "changes/min")
			}
			b.ReportMetric(float64(rs), "replica-spread")
			b.ReportMetric(float64(ls), "leader-spread")
			b.ReportMetric(float64(moves), "partitions-moved")
			b.ReportMetric(float64(changes), "replica-changes")
		})
	}
}

// BenchmarkBatcherDrain hands out every move of the 100-broker replacement,
// finishing each batch before asking for the next: the batcher's whole cost
// over an execution.
func BenchmarkBatcherDrain(b *testing.B) {
	a, bs := bigCluster(b)
	p, err := PlanMoves(a, bs, replace100())
	if err != nil {
		b.Fatal(err)
	}
	var batches int
	b.ReportAllocs()
	for b.Loop() {
		bt, err := NewBatcher(p.Moves)
		if err != nil {
			b.Fatal(err)
		}
		batches = 0
		for !bt.Done() {
			next := bt.Next()
			batches++
			if err := bt.Finished(next.Moves...); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(batches), "batches")
}
