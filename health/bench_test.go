package health_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/health"
	"github.com/kupgrade/kupgrade/internal/benchratio"
	"github.com/kupgrade/kupgrade/node"
)

const (
	benchBrokers    = 1000
	benchTopics     = 1000
	benchPartitions = 1000 // per topic: 1,000,000 in all
)

// synthetic builds a healthy cluster of benchBrokers brokers and
// benchTopics×benchPartitions partitions with replication factor 3 and
// min.insync.replicas 2, every broker hosting 3,000 replicas spread over many
// neighbours. With atMin, each ISR is only the first two replicas, so every
// partition is at min.insync.replicas.
func synthetic(atMin bool) health.Snapshot {
	s := health.Snapshot{Controller: 0}
	for b := range benchBrokers {
		s.Brokers = append(s.Brokers, health.Broker{Node: node.Node{ID: int32(b)}})
	}
	arena := make([]int32, 0, 3*benchTopics*benchPartitions)
	s.Topics = make([]health.Topic, benchTopics)
	for t := range benchTopics {
		parts := make([]health.Partition, benchPartitions)
		for p := range benchPartitions {
			g := t*benchPartitions + p
			r0 := int32(g % benchBrokers)
			r1 := (r0 + 1 + int32(t%499)) % benchBrokers
			r2 := (r0 + 501 + int32(t%498)) % benchBrokers
			arena = append(arena, r0, r1, r2)
			reps := arena[len(arena)-3 : len(arena) : len(arena)]
			isr := reps
			if atMin {
				isr = reps[:2:2]
			}
			parts[p] = health.Partition{Partition: int32(p), Leader: r0, Replicas: reps, ISR: isr}
		}
		s.Topics[t] = health.Topic{Name: fmt.Sprintf("topic-%04d", t), MinISR: 2, MinISRSource: compat.SourceTopic, Partitions: parts}
	}
	return s.Indexed()
}

var (
	healthyOnce, atMinOnce sync.Once
	healthy, atMin         health.Snapshot
)

func healthySnapshot() health.Snapshot {
	healthyOnce.Do(func() { healthy = health.Built(synthetic(false)) })
	return healthy
}

func atMinSnapshot() health.Snapshot {
	atMinOnce.Do(func() { atMin = health.Built(synthetic(true)) })
	return atMin
}

// verdictCases are the verdicts the benchmarks ask for.
var verdictCases = []struct {
	name  string
	snap  func() health.Snapshot
	nodes []int32
	ok    bool
}{
	{"healthy/1node", healthySnapshot, []int32{7}, true},
	// Three nodes share some partitions in this placement, and
	// losing two of three replicas breaks min.insync.replicas 2.
	{"healthy/3nodes", healthySnapshot, []int32{7, 300, 812}, false},
	{"healthy/3nodes-neighbours", healthySnapshot, []int32{7, 8, 9}, false},
	{"atmin/1node-blocked", atMinSnapshot, []int32{7}, false},
}

// BenchmarkSnapshotVerdict is CanRestart over 1,000,000 partitions on 1,000
// brokers, with the snapshot's index already built (a snapshot builds it on
// its third lookup; see BenchmarkSnapshotIndex for that cost, and
// BenchmarkFreshVerdict for the lookups before).
func BenchmarkSnapshotVerdict(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 1,000,000-partition snapshot")
	}
	for _, bc := range verdictCases {
		b.Run(bc.name, func(b *testing.B) {
			s := bc.snap()
			v := health.CanRestart(s, bc.nodes...)
			if v.OK != bc.ok {
				b.Fatalf("OK = %v, want %v: %v", v.OK, bc.ok, v)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				v = health.CanRestart(s, bc.nodes...)
			}
			b.ReportMetric(float64(v.Checked), "partitions/op")
			b.ReportMetric(float64(len(v.Reasons)), "reasons/op")
		})
	}
}

// bareScan is the baseline of BenchmarkFreshVerdict's "x-bare": the least a
// verdict on a snapshot nothing is known about must do, one scan over every
// partition's replicas checking whether one of nodes holds it, and for
// those, over its ISR counting the members that stay. It returns the
// partitions held and the members counted, so that the scan is not
// optimised away.
func bareScan(s health.Snapshot, nodes []int32) (held, stay int) {
	for ti := range s.Topics {
		t := &s.Topics[ti]
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			hit := false
			for _, r := range p.Replicas {
				if slices.Contains(nodes, r) {
					hit = true
					break
				}
			}
			if !hit {
				continue
			}
			held++
			for _, r := range p.ISR {
				if !slices.Contains(nodes, r) {
					stay++
				}
			}
		}
	}
	return held, stay
}

// BenchmarkFreshVerdict is CanRestart on a snapshot seen for the first time,
// as every poll of the Runner's gate is (each takes a new snapshot):
// 1,000,000 partitions on 1,000 brokers, the index attached ([Take]'s
// snapshots have one) but not built. "x-bare" is the verdict's CPU time ÷
// [bareScan]'s, measured alternately in the same run (median of
// per-iteration ratios; "x-bare-wall" the same by wall time). The
// "limits" cases use a gate with cluster-wide limits, which need the
// snapshot's counts; the "literal" case a snapshot without an index.
func BenchmarkFreshVerdict(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 1,000,000-partition snapshot")
	}
	limits, err := health.NewGate(health.MaxOffline(0), health.MaxUnderMinISR(0))
	if err != nil {
		b.Fatal(err)
	}
	defaultGate := new(health.Gate) // the zero Gate: CanRestart's rules
	type fresh struct {
		name  string
		gate  *health.Gate
		fresh func(health.Snapshot) health.Snapshot
	}
	indexed := func(s health.Snapshot) health.Snapshot { return s.Indexed() }
	literal := func(s health.Snapshot) health.Snapshot {
		return health.Snapshot{Controller: s.Controller, Brokers: s.Brokers, Topics: s.Topics}
	}
	for _, f := range []fresh{{"default", defaultGate, indexed}, {"limits", limits, indexed}, {"literal", defaultGate, literal}} {
		for _, bc := range verdictCases {
			b.Run(f.name+"/"+bc.name, func(b *testing.B) {
				s := bc.snap()
				v := f.gate.CanRestart(f.fresh(s), bc.nodes...)
				if v.OK != bc.ok {
					b.Fatalf("OK = %v, want %v: %v", v.OK, bc.ok, v)
				}
				var held int
				b.ReportAllocs()
				b.ResetTimer()
				benchratio.Loop(b,
					func() { held, _ = bareScan(s, bc.nodes) },
					func() { v = f.gate.CanRestart(f.fresh(s), bc.nodes...) })
				if held != v.Checked {
					b.Fatalf("bare scan found %d partitions, the verdict checked %d", held, v.Checked)
				}
				b.ReportMetric(float64(v.Checked), "partitions/op")
				b.ReportMetric(float64(len(v.Reasons)), "reasons/op")
			})
		}
	}
}

// BenchmarkSnapshotIndex is the one-off cost of indexing 1,000,000
// partitions (paid by the third lookup on a snapshot).
func BenchmarkSnapshotIndex(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 1,000,000-partition snapshot")
	}
	s := healthySnapshot()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		_ = health.Built(s).Counts()
	}
}
