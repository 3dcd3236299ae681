package health_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/kupgrade/kupgrade/health"
)

func TestCounts(t *testing.T) {
	t.Parallel()
	s := snap(t,
		"brokers=1,2,3,4 fenced=4",
		"orders-0 r=1,2,3 isr=1,2,3 min=2",       // healthy
		"orders-1 r=2,3,1 isr=3,1 min=2",         // under-replicated, at min, not on preferred leader
		"orders-2 r=3,1,2 isr=3 min=2",           // under-replicated, under min
		"orders-3 r=1,2,3 isr=1 leader=-1 min=2", // offline (not counted under min)
		"logs-0 r=4 isr=4",                       // at min (1), RF 1
		// Kafka caps min.insync.replicas at the replica count: an RF 1
		// partition with min 2 takes acks=all writes, so it is at min, and
		// RF 2 with min 3 and a full ISR is at min, not under.
		"single-0 r=1 isr=1 min=2",
		"pair-0 r=1,2 isr=1,2 min=3",
		"pair-1 r=1,2 isr=1 min=3", // under-replicated, under min (2)
	)
	want := health.Counts{Brokers: 4, Fenced: 1, Topics: 4, Partitions: 8, Replicas: 18,
		Offline: 1, UnderReplicated: 4, UnderMinISR: 2, AtMinISR: 4, NotPreferredLeader: 1}
	for _, s := range []health.Snapshot{s, s.Indexed()} {
		if diff := cmp.Diff(want, s.Counts()); diff != "" {
			t.Errorf("Counts (-want +got):\n%s", diff)
		}
	}
}

func TestSnapshotLookups(t *testing.T) {
	t.Parallel()
	s := snap(t, "brokers=1,2,3 fenced=3", "orders-0 r=1,2,3 isr=1,2,3", "orders-1 r=2,3,1 isr=2,3,1", "logs-0 r=3 isr=3")
	for _, s := range []health.Snapshot{s, s.Indexed()} {
		if p, ok := s.Partition("orders", 1); !ok || p.Leader != 2 {
			t.Errorf("Partition(orders, 1) = %v, %v", p, ok)
		}
		if _, ok := s.Partition("orders", 2); ok {
			t.Error("Partition(orders, 2) found")
		}
		if _, ok := s.Topic("nope"); ok {
			t.Error("Topic(nope) found")
		}
		if !s.Up(1) || s.Up(3) || s.Up(9) {
			t.Errorf("Up(1), Up(3), Up(9) = %v, %v, %v; want true, false, false", s.Up(1), s.Up(3), s.Up(9))
		}
		var on []string
		s.EachPartitionOn(3, func(t health.Topic, p health.Partition) { on = append(on, tp(t.Name, p.Partition)) })
		if want := []string{"logs-0", "orders-0", "orders-1"}; !slices.Equal(on, want) {
			t.Errorf("EachPartitionOn(3) = %v, want %v", on, want)
		}
		n := 0
		s.EachPartition(func(health.Topic, health.Partition) { n++ })
		if n != 3 {
			t.Errorf("EachPartition visited %d, want 3", n)
		}
	}
	if !(health.Snapshot{}).Up(42) {
		t.Error("a snapshot without brokers should assume every node up")
	}
}

func tp(topic string, p int32) string { return fmt.Sprintf("%s-%d", topic, p) }

// TestIndexFollowsTopics checks that a copy with new Topics does not use the
// index built for the original.
func TestIndexFollowsTopics(t *testing.T) {
	t.Parallel()
	s := snap(t, "orders-0 r=1,2,3 isr=1,2,3 min=2").Indexed()
	if v := health.CanRestart(s, 1); !v.OK {
		t.Fatalf("healthy: %v", v)
	}
	worse := s
	worse.Topics = snap(t, "orders-0 r=1,2,3 isr=1,2 min=2").Topics
	if v := health.CanRestart(worse, 1); v.OK {
		t.Errorf("the copy with an ISR of 2 was judged by the original's index: %v", v)
	}
	if v := health.CanRestart(s, 1); !v.OK {
		t.Errorf("the original changed: %v", v)
	}
}

func TestSnapshotJSON(t *testing.T) {
	t.Parallel()
	s := snap(t, "brokers=1,2,3 fenced=3", "orders-0 r=1,2,3 isr=1,2 min=2 offline=3", "secret-0 r=2,1 isr=2 unknown")
	s.Topics[0].ID = health.TopicID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back health.Snapshot
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s, back, cmpopts.IgnoreUnexported(health.Snapshot{}), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("JSON round trip (-want +got):\n%s\n%s", diff, b)
	}
	// The decoded snapshot is indexed and judges the same.
	if diff := cmp.Diff(health.CanRestart(s, 2), health.CanRestart(back, 2), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("verdict after JSON round trip (-want +got):\n%s", diff)
	}
	var id health.TopicID
	if err := id.UnmarshalText([]byte("AQIDBAUGBwgJCgsMDQ4PEA")); err != nil || id != s.Topics[0].ID {
		t.Errorf("UnmarshalText = %v, %v", id, err)
	}
	if err := id.UnmarshalText([]byte("short")); err == nil {
		t.Error("UnmarshalText(short) succeeded")
	}
}

// TestLookupsAcrossIndexBuild checks that a snapshot judges the same before
// its index is built (the first lookups scan), while it is built and after,
// also when readers race to build it.
func TestLookupsAcrossIndexBuild(t *testing.T) {
	t.Parallel()
	plain := snap(t, "brokers=1,2,3,4 fenced=4",
		"orders-0 r=1,2,3 isr=1,2 min=2", "orders-1 r=2,3,4 isr=2,3 min=2", "orders-2 r=3,1,2 isr=3,1,2 min=2",
		"audit-0 r=1,4 isr=1 min=1")
	want := map[int32]health.Verdict{}
	for _, n := range []int32{1, 2, 3, 4} {
		want[n] = health.CanRestart(plain, n)
	}
	wantCounts := plain.Counts()
	s := plain.Indexed()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 3 {
				for _, n := range []int32{1, 2, 3, 4} {
					if diff := cmp.Diff(want[n], health.CanRestart(s, n)); diff != "" {
						t.Errorf("CanRestart(%d) (-plain +indexed):\n%s", n, diff)
					}
				}
				if diff := cmp.Diff(wantCounts, s.Counts()); diff != "" {
					t.Errorf("Counts (-plain +indexed):\n%s", diff)
				}
			}
		})
	}
	wg.Wait()
}
