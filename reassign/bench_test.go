package reassign

import (
	"testing"

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

// BenchmarkPlanAndBatch plans the replacement of 100 of 1,000 brokers
// holding 1,000,000 partitions (RF 3) and hands out the first batch.
func BenchmarkPlanAndBatch(b *testing.B) {
	a, bs := bigCluster(b)
	var ch BrokerChange
	for i := range int32(100) {
		ch.Replace = append(ch.Replace, Replacement{Old: 1 + i, New: 1001 + i})
	}
	var moves, first int
	b.ReportAllocs()
	for b.Loop() {
		p, err := PlanMoves(a, bs, ch)
		if err != nil {
			b.Fatal(err)
		}
		bt, err := NewBatcher(p.Moves)
		if err != nil {
			b.Fatal(err)
		}
		moves, first = len(p.Moves), bt.Next().Len()
	}
	b.ReportMetric(float64(moves), "moves")
	b.ReportMetric(float64(first), "first-batch")
}

// BenchmarkPlan covers the planner's other paths at the same scale:
// decommissioning 100 brokers (every replica placed by choice) and adding
// 100 (balancing onto them).
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
		{"decommission100", BrokerChange{Remove: remove}},
		{"add100", BrokerChange{Add: add}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var moves int
			b.ReportAllocs()
			for b.Loop() {
				p, err := PlanMoves(a, bs, bc.ch)
				if err != nil {
					b.Fatal(err)
				}
				moves = len(p.Moves)
			}
			b.ReportMetric(float64(moves), "moves")
		})
	}
}

// BenchmarkBatcherDrain hands out every move of the 100-broker replacement,
// finishing each batch before asking for the next: the batcher's whole cost
// over an execution.
func BenchmarkBatcherDrain(b *testing.B) {
	a, bs := bigCluster(b)
	var ch BrokerChange
	for i := range int32(100) {
		ch.Replace = append(ch.Replace, Replacement{Old: 1 + i, New: 1001 + i})
	}
	p, err := PlanMoves(a, bs, ch)
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
