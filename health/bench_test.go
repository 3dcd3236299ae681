package health_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/health"
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
	healthyOnce.Do(func() { healthy = synthetic(false); healthy.Counts() /* build the index */ })
	return healthy
}

func atMinSnapshot() health.Snapshot {
	atMinOnce.Do(func() { atMin = synthetic(true); atMin.Counts() })
	return atMin
}

// BenchmarkSnapshotVerdict is CanRestart over 1,000,000 partitions on 1,000
// brokers, with the snapshot's index already built (Take's snapshots build it
// on first use; see BenchmarkSnapshotIndex for that cost).
func BenchmarkSnapshotVerdict(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 1,000,000-partition snapshot")
	}
	for _, bc := range []struct {
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
	} {
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

// BenchmarkSnapshotIndex is the one-off cost of indexing 1,000,000
// partitions (paid by the first verdict on a snapshot).
func BenchmarkSnapshotIndex(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 1,000,000-partition snapshot")
	}
	s := healthySnapshot()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		_ = s.Indexed().Counts()
	}
}
