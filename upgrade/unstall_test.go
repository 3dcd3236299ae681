package upgrade

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/health"
)

// stallSnap is a snapshot of topic t's partitions, given as
// {leader, replicas..., -1, isr...}.
func stallSnap(parts ...[]int32) health.Snapshot {
	t := health.Topic{Name: "t", MinISR: 2}
	for i, p := range parts {
		sep := slices.Index(p[1:], -1) + 1
		t.Partitions = append(t.Partitions, health.Partition{Partition: int32(i), Leader: p[0], Replicas: p[1:sep], ISR: p[sep+1:]})
	}
	return health.Snapshot{Brokers: []health.Broker{{}, {}, {}}, Topics: []health.Topic{t}}.Indexed()
}

func TestStallWatchDue(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 5, 0, 0, 0, time.UTC)
	// Node 3 restarted; leader 2 keeps it out of partition 0's ISR.
	out := stallSnap([]int32{2, 2, 3, 1, -1, 2, 1})
	tp := topicPart{"t", 0}
	move := leaderMove{Topic: "t", Partition: 0, From: 2, To: 1, Replicas: []int32{2, 3, 1}}
	// Checks 30s apart, from t0: the replica's end and the watermark at each.
	// The first check only marks; caught up counts from the second.
	for _, tc := range []struct {
		name     string
		snap     health.Snapshot
		end, hw  []int64
		wantAt   int // the check that moves the partition; -1: none
		wantMove leaderMove
	}{
		{"caught up, not taken back", out, []int64{100, 200, 300, 400, 500}, []int64{100, 200, 300, 400, 500}, 3, move},
		{"behind the watermark by less than a check", out, []int64{90, 190, 290, 390, 490}, []int64{100, 200, 300, 400, 500}, 3, move},
		{"served nothing", out, []int64{50, 50, 50, 50, 50}, []int64{100, 200, 300, 400, 500}, 2, move},
		{"catching up slowly", out, []int64{10, 20, 30, 40, 50}, []int64{1000, 1100, 1200, 1300, 1400}, -1, leaderMove{}},
		{"served nothing for a while, then catching up", out, []int64{50, 50, 150, 250, 350}, []int64{100, 200, 300, 400, 500}, -1, leaderMove{}},
		{"no other in-sync replica to lead", stallSnap([]int32{2, 2, 3, 1, -1, 2}), []int64{100, 200, 300, 400, 500}, []int64{100, 200, 300, 400, 500}, -1, leaderMove{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newStallWatch(3, time.Minute)
			at := -1
			var got leaderMove
			for i := range tc.end {
				moves := w.due(tc.snap, map[topicPart]replicaProgress{tp: {End: tc.end[i], Watermark: tc.hw[i]}}, t0.Add(time.Duration(i)*30*time.Second))
				if len(moves) > 0 && at >= 0 {
					t.Errorf("check %d moved %v again", i, moves)
				}
				if len(moves) > 0 && at < 0 {
					at, got = i, moves[0]
				}
			}
			if at != tc.wantAt {
				t.Errorf("moved at check %d, want %d", at, tc.wantAt)
			}
			if diff := cmp.Diff(tc.wantMove, got); diff != "" {
				t.Errorf("move (-want +got):\n%s", diff)
			}
		})
	}

	// Only partitions on the node, led by another broker, with the node out
	// of the ISR are watched.
	mixed := stallSnap(
		[]int32{1, 1, 2, 3, -1, 1, 2, 3}, // in the ISR
		[]int32{2, 2, 3, 1, -1, 2, 1},    // out: watched
		[]int32{3, 3, 2, 1, -1, 3, 2, 1}, // the node leads
		[]int32{-1, 2, 3, 1, -1},         // no leader
		[]int32{1, 1, 2, 4, -1, 1, 2},    // not on the node
		[]int32{1, 3, 1, 2, -1, 1, 2},    // out: watched
	)
	w := newStallWatch(3, time.Minute)
	if diff := cmp.Diff([]topicPart{{"t", 1}, {"t", 5}}, w.watched(mixed), cmp.AllowUnexported(topicPart{})); diff != "" {
		t.Errorf("watched (-want +got):\n%s", diff)
	}
	caught := map[topicPart]replicaProgress{{"t", 1}: {100, 100}, {"t", 5}: {100, 100}}
	for i := range 4 {
		w.due(mixed, caught, t0.Add(time.Duration(i)*30*time.Second))
	}
	if got := w.watched(mixed); len(got) != 0 {
		t.Errorf("watched after the moves = %v, want none", got)
	}
	if got := stringsOf(w.unelected(mixed)); !slices.Equal(got, []string{"t-1: 2 → 1", "t-5: 1 → 2"}) {
		t.Errorf("unelected = %v, want both moves", got)
	}
	if got := (leaderMove{To: 1, Replicas: []int32{2, 3, 1}}).Order(); !slices.Equal(got, []int32{1, 2, 3}) {
		t.Errorf("Order = %v, want [1 2 3]", got)
	}
	// Partition 1 is led by 1 now, partition 5 not yet.
	moved := stallSnap(
		[]int32{1, 1, 2, 3, -1, 1, 2, 3},
		[]int32{1, 1, 2, 3, -1, 2, 1},
		[]int32{3, 3, 2, 1, -1, 3, 2, 1},
		[]int32{-1, 2, 3, 1, -1},
		[]int32{1, 1, 2, 4, -1, 1, 2},
		[]int32{1, 2, 3, 1, -1, 1, 2},
	)
	if got := stringsOf(w.unelected(moved)); !slices.Equal(got, []string{"t-5: 1 → 2"}) {
		t.Errorf("unelected = %v, want t-5 only", got)
	}
	wantRestore := []replicaOrder{{"t", 1, []int32{2, 3, 1}}, {"t", 5, []int32{3, 1, 2}}}
	if diff := cmp.Diff(wantRestore, w.restores()); diff != "" {
		t.Errorf("restores (-want +got):\n%s", diff)
	}
}

// TestRunnerMovesStalledLeader: in a ZooKeeper-mode roll, broker 3 takes no
// restarted broker back into the ISRs it leads (until it restarts itself).
// The Runner moves those partitions' leadership to in-sync replicas after
// stallAfter, each broker catches up, the replicas' order is restored, and
// the rolls finish (the second without a move: broker 3's restart healed
// it); without the move the first catch-up times out.
func TestRunnerMovesStalledLeader(t *testing.T) {
	fake := func() *fakeCluster {
		f := newFakeCluster(compat.ModeZooKeeper, "3.8.1", 0, 3)
		f.stuck = 3
		return f
	}
	t.Run("with", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := fake()
			plan := kraftPlan(t, f, "3.9.2", FinalizeLater())
			orig := map[int32][]int32{}
			for _, p := range f.parts {
				orig[p.p] = slices.Clone(p.replicas)
			}
			var log eventLog
			start := time.Now()
			if err := mustRunner(t, nil, f, withOps(f), OnEvent(log.add), StallAfter(time.Minute), PassHolds()).Run(t.Context(), plan); err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took < 2*time.Minute {
				t.Errorf("run took %v, want two catch-ups of over a minute (brokers 1 and 2, before 3 restarts)", took)
			}
			if diff := cmp.Diff([]int32{1, 2, 3, 1, 2, 3}, f.restartOrder()); diff != "" { // binaries, then inter.broker.protocol.version
				t.Errorf("restarts (-want +got):\n%s", diff)
			}
			// Broker 3 leads partitions 2 and 5 ({3, 1, 2}). Broker 1's
			// catch-up moves them to 2, broker 2's (3 leads again while 2
			// is down) to 1; each time their order is restored after.
			want := [][]replicaOrder{
				{{"orders", 2, []int32{2, 3, 1}}, {"orders", 5, []int32{2, 3, 1}}},
				{{"orders", 2, []int32{3, 1, 2}}, {"orders", 5, []int32{3, 1, 2}}},
				{{"orders", 2, []int32{1, 3, 2}}, {"orders", 5, []int32{1, 3, 2}}},
				{{"orders", 2, []int32{3, 1, 2}}, {"orders", 5, []int32{3, 1, 2}}},
			}
			if diff := cmp.Diff(want, f.reorders, cmp.AllowUnexported(replicaOrder{})); diff != "" {
				t.Errorf("reassignments (-want +got):\n%s", diff)
			}
			if len(f.elections) != 2 {
				t.Errorf("elections %v, want one per move", f.elections)
			}
			for _, p := range f.parts {
				if !slices.Equal(p.replicas, orig[p.p]) {
					t.Errorf("orders-%d: replicas %v after the run, want %v", p.p, p.replicas, orig[p.p])
				}
			}
			var msgs []string
			for _, e := range log.ev {
				if e.Kind == EventLeadersMoved {
					msgs = append(msgs, e.Message)
				}
			}
			if len(msgs) != 4 || !strings.Contains(msgs[0], "node 1: leader 3 did not take it back into the ISR of 2 partitions for 1m0s") || !strings.Contains(msgs[0], "orders-2: 3 → 2, orders-5: 3 → 2") {
				t.Errorf("leaders-moved events:\n%s", strings.Join(msgs, "\n"))
			}
		})
	})
	t.Run("without", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := fake()
			plan := kraftPlan(t, f, "3.9.2", FinalizeLater())
			err := mustRunner(t, nil, f, withOps(f), StallAfter(0), CatchUpTimeout(3*time.Minute)).Run(t.Context(), plan)
			se, ok := errors.AsType[*StepError](err)
			if !ok || se.Step.Node != 1 || !strings.Contains(err.Error(), "orders-2: node 1 is not in ISR") {
				t.Fatalf("Run = %v, want broker 1's catch-up to time out on orders-2", err)
			}
			if len(f.reorders)+len(f.elections) != 0 {
				t.Errorf("reassignments %v, elections %v: want none", f.reorders, f.elections)
			}
		})
	})
	t.Run("KRaft", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeCluster(compat.ModeKRaft, "3.9.2", 3, 3)
			f.levels["metadata.version"] = 21
			f.stuck = 6
			plan := kraftPlan(t, f, "4.0.2", FinalizeLater())
			err := mustRunner(t, nil, f, withOps(f), CatchUpTimeout(3*time.Minute)).Run(t.Context(), plan)
			if err == nil || len(f.reorders) != 0 {
				t.Errorf("Run = %v with reassignments %v: want no leader moved in KRaft mode (the watch is for ZooKeeper controllers)", err, f.reorders)
			}
		})
	})
}

// TestRunnerRestoresOrderAfterCrash: a run stopped as it moved leaders
// leaves the orders to put back in its journal; the next run puts them back
// before anything else, settles the restart in flight (moving the stalled
// leader's partitions again, since the first run's moves did not happen),
// finishes the plan with every order as before, and the journal keeps no
// entry.
func TestRunnerRestoresOrderAfterCrash(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeCluster(compat.ModeZooKeeper, "3.8.1", 0, 3)
		f.stuck = 3
		orig := map[int32][]int32{}
		for _, p := range f.parts {
			orig[p.p] = slices.Clone(p.replicas)
		}
		plan := kraftPlan(t, f, "3.9.2", FinalizeLater())
		j := &MemoryJournal{}
		ctx, cancel := context.WithCancel(t.Context())
		stopAtMove := func(e Event) {
			if e.Kind == EventLeadersMoved {
				cancel()
			}
		}
		err := mustRunner(t, nil, f, withOps(f), WithJournal(j), OnEvent(stopAtMove), StallAfter(time.Minute), PassHolds()).Run(ctx, plan)
		if err == nil {
			t.Fatal("first run finished; want it stopped at the move")
		}
		rec, err := j.Load(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var left []string
		for k := range rec.Data {
			left = append(left, k)
		}
		if !slices.Equal(left, []string{"leader-moves/1"}) {
			t.Fatalf("journal keys %v after the stop, want the first restart's leader moves", left)
		}

		var log eventLog
		if err := mustRunner(t, nil, f, withOps(f), WithJournal(j), OnEvent(log.add), StallAfter(time.Minute), PassHolds()).Run(t.Context(), plan); err != nil {
			t.Fatal(err)
		}
		var first string
		for _, e := range log.ev {
			if e.Kind == EventLeadersMoved {
				first = e.Message
				break
			}
		}
		if !strings.Contains(first, "whose leadership the last run moved are in their order again") {
			t.Errorf("first leaders-moved event of the second run %q, want the left orders put back", first)
		}
		settled := false
		for _, e := range log.ev {
			if e.Kind == EventLeadersMoved && e.Step == 1 && strings.Contains(e.Message, "node 1: leader 3 did not take it back") {
				settled = true
			}
		}
		if !settled {
			t.Error("no leader moved while the resumed restart of node 1 settled")
		}
		for _, p := range f.parts {
			if !slices.Equal(p.replicas, orig[p.p]) {
				t.Errorf("orders-%d: replicas %v after the second run, want %v", p.p, p.replicas, orig[p.p])
			}
		}
		rec, err = j.Load(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.Data) != 0 {
			t.Errorf("journal data %v after the run, want none", rec.Data)
		}
	})
}
