package reassign

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kupgrade/kupgrade/node"
)

// names returns "topic-p" of each move, for compact comparisons.
func names(ms Moves) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Topic+"-"+itoa(m.Partition))
	}
	return out
}

func itoa(n int32) string { return string(rune('0'+n/10)) + string(rune('0'+n%10)) }

func newBatcher(t *testing.T, ms Moves, opts ...BatchOption) *Batcher {
	t.Helper()
	b, err := NewBatcher(ms, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBatcherRules(t *testing.T) {
	// Broker 1 sends three replicas away and receives three.
	hub := mvs("a-0 1,2>3,2", "a-1 1,4>5,4", "a-2 1,6>7,6", "a-3 2,3>2,1", "a-4 4,5>4,1", "a-5 6,7>6,1")
	// Two brokers drain to three each.
	drain := mvs("a-0 1>3", "a-1 1>4", "a-2 1>5", "a-3 2>6", "a-4 2>7", "a-5 2>8")
	tests := []struct {
		name   string
		moves  Moves
		opts   []BatchOption
		finish []int // moves (by index) to finish after the first batch
		want   [][]string
	}{
		{
			name:  "incoming and outgoing share a broker's slots",
			moves: hub, opts: []BatchOption{SlotsPerBroker(5)},
			finish: []int{0},
			want:   [][]string{{"a-00", "a-01", "a-02", "a-03", "a-04"}, {"a-05"}},
		},
		{
			name:  "one slot per broker",
			moves: hub, opts: []BatchOption{SlotsPerBroker(1)},
			finish: []int{0},
			want:   [][]string{{"a-00"}, {"a-01"}},
		},
		{
			name:  "per-broker override",
			moves: hub, opts: []BatchOption{SlotsPerBroker(1), BrokerSlots(1, 3), BrokerSlots(3, 2)},
			want: [][]string{{"a-00", "a-01", "a-02"}},
		},
		{
			name:  "cluster cap",
			moves: drain, opts: []BatchOption{MaxInFlight(3)},
			finish: []int{0, 3},
			want:   [][]string{{"a-00", "a-03", "a-01"}, {"a-02", "a-04"}}, // best first
		},
		{
			name:  "rounds spread the first moves over brokers",
			moves: drain, opts: []BatchOption{MaxInFlight(2)},
			want: [][]string{{"a-00", "a-03"}},
		},
		{
			name:  "no slots: a broker held at 0 blocks its moves",
			moves: drain, opts: []BatchOption{BrokerSlots(1, 0)},
			want: [][]string{{"a-03", "a-04", "a-05"}},
		},
		{
			name:   "moves of one partition one after the other",
			moves:  mvs("a-0 1,2>3,2", "a-0 3,2>3,4", "a-1 5>6"),
			finish: []int{0},
			want:   [][]string{{"a-00", "a-01"}, {"a-00"}},
		},
		{
			name:  "replica order changes need no slot",
			moves: mvs("a-0 1,2>2,1", "a-1 1,3>4,3"), opts: []BatchOption{SlotsPerBroker(1), MaxInFlight(5)},
			want: [][]string{{"a-00", "a-01"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBatcher(t, tt.moves, tt.opts...)
			var got [][]string
			got = append(got, names(b.Next().Moves))
			for _, i := range tt.finish {
				if err := b.Finished(tt.moves[i]); err != nil {
					t.Fatal(err)
				}
			}
			if len(tt.finish) > 0 {
				got = append(got, names(b.Next().Moves))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("batches (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBatcherOrder(t *testing.T) {
	// Disjoint moves, so that only the order decides.
	ms := mvs("a-0 1>2 B=30", "a-1 3>4 B=10", "a-2 5>6 B=20", "a-3 7>8 B=10", "a-4 9>10 B=40")
	risk := func(m *Move) int {
		switch m.Partition {
		case 2:
			return 2 // at min.insync.replicas with an offline replica
		case 4:
			return 1
		case 0:
			return -1 // under-replicated: postponed
		}
		return 0
	}
	tests := []struct {
		name   string
		orders []Order
		want   []string
	}{
		{"given order", nil, []string{"a-00", "a-01", "a-02", "a-03", "a-04"}},
		{"small first, ties in given order", []Order{SmallFirst}, []string{"a-01", "a-03", "a-02", "a-00", "a-04"}},
		{"large first", []Order{LargeFirst}, []string{"a-04", "a-00", "a-02", "a-01", "a-03"}},
		{"at risk first", []Order{AtRiskFirst(risk)}, []string{"a-02", "a-04", "a-01", "a-03", "a-00"}},
		{"at risk, then large", []Order{AtRiskFirst(risk), LargeFirst}, []string{"a-02", "a-04", "a-01", "a-03", "a-00"}},
		{"small, then at risk", []Order{SmallFirst, AtRiskFirst(risk)}, []string{"a-01", "a-03", "a-02", "a-00", "a-04"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBatcher(t, ms, OrderBy(tt.orders...), MaxInFlight(1))
			var got []string
			for !b.Done() {
				batch := b.Next()
				if batch.Len() != 1 {
					t.Fatalf("batch of %d, want 1", batch.Len())
				}
				got = append(got, names(batch.Moves)...)
				if err := b.Finished(batch.Moves...); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("submission order (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBatcherLifecycle(t *testing.T) {
	ms := mvs("a-0 1>2", "a-1 1>3", "a-2 1>4", "b-0 5>6")
	b := newBatcher(t, ms, SlotsPerBroker(2))
	step := func(want ...string) {
		t.Helper()
		if diff := cmp.Diff(want, names(b.Next().Moves)); diff != "" {
			t.Fatalf("Next (-want +got):\n%s", diff)
		}
	}
	counts := func(want BatchCounts) {
		t.Helper()
		if got := b.Counts(); got != want {
			t.Fatalf("Counts = %+v, want %+v", got, want)
		}
	}
	step("a-00", "b-00", "a-01")
	step() // nothing changed, nothing to do
	counts(BatchCounts{Pending: 1, InFlight: 3})
	if diff := cmp.Diff(names(Moves{ms[0], ms[1], ms[3]}), names(b.InFlight())); diff != "" {
		t.Errorf("InFlight (-want +got):\n%s", diff)
	}

	// A cancelled move frees its slot and is not handed out again.
	if err := b.Cancelled(ms[0]); err != nil {
		t.Fatal(err)
	}
	step("a-02")
	// A requeued move goes back to pending, and comes out once a slot frees.
	if err := b.Requeue(ms[0]); err != nil {
		t.Fatal(err)
	}
	step()
	counts(BatchCounts{Pending: 1, InFlight: 3})
	if err := b.Finished(ms[1], ms[3]); err != nil {
		t.Fatal(err)
	}
	step("a-00")
	counts(BatchCounts{InFlight: 2, Finished: 2})
	if err := b.Finished(ms[0], ms[2]); err != nil {
		t.Fatal(err)
	}
	counts(BatchCounts{Finished: 4})
	if !b.Done() {
		t.Error("Done = false after every move finished")
	}

	// Unknown moves are reported; the known ones are applied.
	err := b.Finished(mv("zz-9 1>2"), ms[0])
	if !errors.Is(err, ErrUnknownMove) {
		t.Errorf("Finished(unknown) = %v, want ErrUnknownMove", err)
	}
}

func TestBatcherRequeueReorder(t *testing.T) {
	// A change of replica order uses no slot; requeued, it comes out again.
	ms := mvs("a-0 1,2>2,1", "a-1 3,4>4,3")
	b := newBatcher(t, ms, MaxInFlight(1))
	if diff := cmp.Diff([]string{"a-00"}, names(b.Next().Moves)); diff != "" {
		t.Fatalf("Next (-want +got):\n%s", diff)
	}
	if err := b.Finished(ms[0]); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a-01"}, names(b.Next().Moves)); diff != "" {
		t.Fatalf("Next (-want +got):\n%s", diff)
	}
	if err := b.Requeue(ms[1]); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a-01"}, names(b.Next().Moves)); diff != "" {
		t.Fatalf("Next after Requeue (-want +got):\n%s", diff)
	}
	if got := MoveInFlight.String(); got != "in flight" {
		t.Errorf("MoveInFlight.String() = %q", got)
	}
}

func TestBatcherLargeBrokerIDs(t *testing.T) {
	ms := mvs("a-0 2000000001>2000000002", "a-1 2000000001>2000000003", "a-2 7>2000000002")
	b := newBatcher(t, ms, SlotsPerBroker(1), BrokerSlots(2000000001, 2))
	if diff := cmp.Diff([]string{"a-00", "a-01"}, names(b.Next().Moves)); diff != "" {
		t.Fatalf("Next (-want +got):\n%s", diff)
	}
}

func TestBatcherAdoptAfterRestart(t *testing.T) {
	ms := mvs("a-0 1>2", "a-1 1>3", "a-2 1>4", "a-3 1>5")
	b := newBatcher(t, ms, SlotsPerBroker(2))
	// A restarted executor finds three moves running and one done.
	if err := b.Adopt(ms[0], ms[1], ms[2]); err != nil {
		t.Fatal(err)
	}
	if err := b.Finished(ms[3]); err != nil {
		t.Fatal(err)
	}
	if got := b.Next(); got.Len() != 0 {
		t.Errorf("Next = %v with broker 1 over its slots, want nothing", got.Moves)
	}
	if err := b.Finished(ms[0]); err != nil {
		t.Fatal(err)
	}
	if got := b.Next(); got.Len() != 0 {
		t.Errorf("Next = %v, want nothing: nothing pending", got.Moves)
	}
	if got, want := b.Counts(), (BatchCounts{InFlight: 2, Finished: 2}); got != want {
		t.Errorf("Counts = %+v, want %+v", got, want)
	}
}

func TestBatcherOptionErrors(t *testing.T) {
	for _, opt := range []BatchOption{SlotsPerBroker(0), MaxInFlight(0), BrokerSlots(1, -1)} {
		if _, err := NewBatcher(nil, opt); !errors.Is(err, ErrInvalid) {
			t.Errorf("NewBatcher(%v) = %v, want ErrInvalid", opt, err)
		}
	}
	if _, err := NewBatcher(Moves{{Topic: "a"}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("NewBatcher(move without To) = %v, want ErrInvalid", err)
	}
}

// TestBatcherDrain runs whole plans through a batcher with moves finishing
// in random order, and checks the rules at every step: slots, the cap, one
// move per partition, and that Next leaves nothing startable behind.
func TestBatcherDrain(t *testing.T) {
	a, bs := gen(30, 3, 30*40, 3)
	bs = append(bs, node.Node{ID: 31, Rack: bs[0].Rack}, node.Node{ID: 32, Rack: bs[1].Rack})
	for _, tt := range []struct {
		name string
		ch   BrokerChange
		opts []BatchOption
	}{
		{"replace", BrokerChange{Replace: []Replacement{{Old: 1, New: 31}, {Old: 2, New: 32}}}, nil},
		{"decommission, cap", BrokerChange{Remove: []int32{1, 2, 3, 4}}, []BatchOption{MaxInFlight(17), OrderBy(LargeFirst)}},
		{"add, 2 slots", BrokerChange{Add: []int32{31, 32}}, []BatchOption{SlotsPerBroker(2), BrokerSlots(31, 7)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := PlanMoves(a, bs, tt.ch)
			if err != nil {
				t.Fatal(err)
			}
			// Add a second move for some partitions, to exercise the
			// one-at-a-time rule.
			ms := slices.Clone(p.Moves)
			for i := 0; i < len(p.Moves); i += 5 {
				m := p.Moves[i]
				ms = append(ms, Move{Topic: m.Topic, Partition: m.Partition, From: m.To, To: slices.Concat(m.To[1:], m.To[:1])})
			}
			cfg := defaultBatchConfig()
			for _, o := range tt.opts {
				o.apply(&cfg)
			}
			b := newBatcher(t, ms, tt.opts...)
			rng := rand.New(rand.NewPCG(1, 2))
			var flying Moves
			submitted := map[string]int{}
			for steps := 0; !b.Done(); steps++ {
				if steps > 10*len(ms) {
					t.Fatalf("no progress: %+v", b.Counts())
				}
				batch := b.Next()
				flying = append(flying, batch.Moves...)
				for _, m := range batch.Moves {
					submitted[m.String()]++
				}
				checkInFlight(t, flying, cfg)
				checkMaximal(t, b, ms, flying, cfg)
				// Finish a random third of the moves in flight.
				rng.Shuffle(len(flying), func(i, j int) { flying[i], flying[j] = flying[j], flying[i] })
				k := (len(flying) + 2) / 3
				if err := b.Finished(flying[:k]...); err != nil {
					t.Fatal(err)
				}
				flying = slices.Clone(flying[k:])
			}
			if len(submitted) != len(ms) {
				t.Errorf("%d distinct moves submitted, want %d", len(submitted), len(ms))
			}
			for m, n := range submitted {
				if n != 1 {
					t.Errorf("%s submitted %d times", m, n)
				}
			}
		})
	}
}

func slotsOf(cfg batchConfig, b int32) int {
	if n, ok := cfg.brokerSlots[b]; ok {
		return n
	}
	return cfg.slots
}

func checkInFlight(t *testing.T, flying Moves, cfg batchConfig) {
	t.Helper()
	if len(flying) > cfg.maxInFlight {
		t.Fatalf("%d moves in flight, cap %d", len(flying), cfg.maxInFlight)
	}
	use := map[int32]int{}
	parts := map[string]bool{}
	for _, m := range flying {
		key := m.Topic + "-" + itoa(m.Partition)
		if parts[key] {
			t.Fatalf("two moves of %s in flight", key)
		}
		parts[key] = true
		for _, b := range slices.Concat(m.Adding(), m.Removing()) {
			use[b]++
		}
	}
	for b, n := range use {
		if n > slotsOf(cfg, b) {
			t.Fatalf("broker %d in %d moves, %d slots", b, n, slotsOf(cfg, b))
		}
	}
}

// checkMaximal checks that no pending move could start: Next took all it
// could.
func checkMaximal(t *testing.T, b *Batcher, ms Moves, flying Moves, cfg batchConfig) {
	t.Helper()
	if len(flying) >= cfg.maxInFlight {
		return
	}
	use := map[int32]int{}
	busy := map[string]bool{}
	for _, m := range flying {
		busy[m.Topic+"-"+itoa(m.Partition)] = true
		for _, x := range slices.Concat(m.Adding(), m.Removing()) {
			use[x]++
		}
	}
	for i, m := range ms {
		if b.state[i] != MovePending || busy[m.Topic+"-"+itoa(m.Partition)] {
			continue
		}
		fits := true
		for _, x := range slices.Concat(m.Adding(), m.Removing()) {
			if use[x] >= slotsOf(cfg, x) {
				fits = false
			}
		}
		if fits {
			t.Fatalf("pending move %v could start but Next left it", m)
		}
	}
}

// TestBatcherIndexes checks which tables NewBatcher builds: none for the
// order of moves or their partition groups when the moves come in topic,
// partition order, each partition once (a plan's moves); a group table
// when a partition has two moves; a sort key when the moves are out of
// order. The tables are the batcher's cost on a large plan.
func TestBatcherIndexes(t *testing.T) {
	for _, tt := range []struct {
		name         string
		ms           Moves
		key, groups  bool
		wantGroupsOf []int32
	}{
		{"plan order", mvs("a-0 1,2>1,3", "a-1 1,2>1,3", "b-0 2,1>2,4"), false, false, nil},
		{"two moves of a-1", mvs("a-0 1,2>1,3", "a-1 1,2>1,3", "a-1 1,3>3,1", "b-0 2,1>2,4"), false, true, []int32{0, 1, 1, 2}},
		{"out of order", mvs("b-0 2,1>2,4", "a-0 1,2>1,3", "a-1 1,2>1,3", "a-0 1,3>3,1"), true, true, []int32{2, 0, 1, 0}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := newBatcher(t, tt.ms)
			if got := b.key != nil; got != tt.key {
				t.Errorf("sort key built: %v, want %v", got, tt.key)
			}
			if got := b.group != nil; got != tt.groups {
				t.Errorf("group table built: %v, want %v", got, tt.groups)
			}
			var groups []int32
			for i := range tt.ms {
				groups = append(groups, b.groupOf(i))
			}
			want := tt.wantGroupsOf
			if want == nil {
				for i := range tt.ms {
					want = append(want, int32(i))
				}
			}
			if diff := cmp.Diff(want, groups); diff != "" {
				t.Errorf("groups (-want +got):\n%s", diff)
			}
		})
	}
}
