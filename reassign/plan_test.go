package reassign

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kupgrade/kupgrade/node"
)

func TestPlanExact(t *testing.T) {
	tests := []struct {
		name    string
		asg     []string
		brokers string
		ch      BrokerChange
		want    Moves
	}{
		{
			name:    "replace: partner takes each replica in its slot",
			asg:     []string{"orders-0 1,2,3", "orders-1 2,4,1", "orders-2 3,4,1"},
			brokers: "1 2 3 4 5",
			ch:      BrokerChange{Replace: []Replacement{{Old: 3, New: 5}}},
			want:    mvs("orders-0 1,2,3>1,2,5", "orders-2 3,4,1>5,4,1"),
		},
		{
			name:    "replace: staying current leader is put first",
			asg:     []string{"orders-0 1,2,3 L=3"},
			brokers: "1 2 3 4",
			ch:      BrokerChange{Replace: []Replacement{{Old: 1, New: 4}}},
			want:    mvs("orders-0 1,2,3>3,4,2"),
		},
		{
			name:    "replace: leaving leader's replacement is first, to lead after the copy",
			asg:     []string{"orders-0 1,2,3 L=1"},
			brokers: "1 2 3 4",
			ch:      BrokerChange{Replace: []Replacement{{Old: 1, New: 4}}},
			want:    mvs("orders-0 1,2,3>4,2,3"),
		},
		{
			name:    "replace: leader unknown keeps slot order",
			asg:     []string{"orders-0 1,2,3 L=-1"},
			brokers: "1 2 3 4",
			ch:      BrokerChange{Replace: []Replacement{{Old: 2, New: 4}}},
			want:    mvs("orders-0 1,2,3>1,4,3"),
		},
		{
			name:    "replace: partner already holds the partition, least loaded broker instead",
			asg:     []string{"orders-0 1,3,5", "orders-1 2,4,6", "orders-2 4,6,1"},
			brokers: "1 2 3 4 5 6",
			ch:      BrokerChange{Replace: []Replacement{{Old: 3, New: 5}}},
			want:    mvs("orders-0 1,3,5>1,2,5"),
		},
		{
			name:    "replace: partner in a clashing rack, old broker's rack instead",
			asg:     []string{"orders-0 1,2,3"},
			brokers: "1:a 2:b 3:c 4:c 5:a 6:d",
			ch:      BrokerChange{Replace: []Replacement{{Old: 3, New: 5}}},
			want:    mvs("orders-0 1,2,3>1,2,4"),
		},
		{
			name:    "replace: partner kept when no broker avoids a rack clash",
			asg:     []string{"a-0 1,2,3", "b-0 4,5"},
			brokers: "1:x 2:y 3:x 4:x 5:y 6:x",
			ch:      BrokerChange{Replace: []Replacement{{Old: 3, New: 4}}},
			want:    mvs("a-0 1,2,3>1,2,4"), // not 6, though 6 holds less
		},
		{
			name:    "replace: partner in the same rack",
			asg:     []string{"orders-0 1,2,3", "orders-1 3,1,2"},
			brokers: "1:a 2:b 3:c 4:c 5:c",
			ch:      BrokerChange{Replace: []Replacement{{Old: 3, New: 5}}},
			want:    mvs("orders-0 1,2,3>1,2,5", "orders-1 3,1,2>5,1,2"),
		},
		{
			name:    "decommission: replicas spread, leaders to the fewest leaders",
			asg:     []string{"a-0 1,2", "a-1 1,3", "a-2 1,4", "a-3 2,1", "b-0 3,1", "b-1 4,1"},
			brokers: "1 2 3 4",
			ch:      BrokerChange{Remove: []int32{1}},
			// Leader slots first, by leader count, then followers by replica
			// count: every remaining broker ends with 4 replicas, 2 leaders.
			want: mvs("a-0 1,2>3,2", "a-1 1,3>4,3", "a-2 1,4>2,4", "a-3 2,1>2,3", "b-0 3,1>3,4", "b-1 4,1>4,2"),
		},
		{
			name:    "decommission: racks stay distinct",
			asg:     []string{"a-0 1,2,3", "a-1 2,3,1"},
			brokers: "1:x 2:y 3:z 4:x 5:y 6:z",
			ch:      BrokerChange{Remove: []int32{1}},
			want:    mvs("a-0 1,2,3>4,2,3", "a-1 2,3,1>2,3,4"),
		},
		{
			name:    "decommission: a broker gone from metadata",
			asg:     []string{"a-0 1,9", "a-1 2,3"},
			brokers: "1 2 3",
			ch:      BrokerChange{Remove: []int32{9}},
			want:    mvs("a-0 1,9>1,3"), // 3 leads nothing; 2 leads a-1
		},
		{
			name:    "decommission: unavoidable rack clash is allowed",
			asg:     []string{"a-0 1,2,3"},
			brokers: "1:x 2:y 3:z 4:x",
			ch:      BrokerChange{Remove: []int32{3}},
			want:    mvs("a-0 1,2,3>1,2,4"),
		},
		{
			name:    "add: only onto the new broker, just enough",
			asg:     []string{"a-0 1,2", "a-1 2,3", "a-2 3,1", "a-3 1,3", "a-4 2,1", "a-5 3,2"},
			brokers: "1 2 3 4",
			ch:      BrokerChange{Add: []int32{4}},
			// 12 replicas, 6 leaders over 4 brokers: 4 gets 1 leader and 3 replicas.
			want: mvs("a-0 1,2>4,2", "a-1 2,3>2,4", "a-5 3,2>3,4"),
		},
		{
			name:    "add: racks limit who can give",
			asg:     []string{"a-0 1,2", "a-1 2,1", "a-2 1,2", "a-3 2,1"},
			brokers: "1:x 2:y 3:x",
			ch:      BrokerChange{Add: []int32{3}},
			want:    mvs("a-0 1,2>3,2", "a-1 2,1>2,3"),
		},
		{
			name:    "large broker ids",
			asg:     []string{"a-0 2000000001,5,2000000003", "a-1 5,2000000003,2000000001"},
			brokers: "5:x 2000000001:y 2000000003:z 2000000004:y",
			ch:      BrokerChange{Replace: []Replacement{{Old: 2000000001, New: 2000000004}}},
			want:    mvs("a-0 2000000001,5,2000000003>2000000004,5,2000000003", "a-1 5,2000000003,2000000001>5,2000000003,2000000004"),
		},
		{
			name:    "no change, no moves",
			asg:     []string{"a-0 1,2"},
			brokers: "1 2",
			want:    Moves{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, bs := asg(t, tt.asg...), brokerList(tt.brokers)
			p, err := PlanMoves(a, bs, tt.ch)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, p.Moves); diff != "" {
				t.Errorf("moves (-want +got):\n%s", diff)
			}
			checkPlan(t, a, bs, tt.ch, p)
		})
	}
}

// checkPlan checks every rule a plan must follow, whatever the input.
func checkPlan(t *testing.T, a *Assignment, bs []node.Node, ch BrokerChange, p MovePlan) {
	t.Helper()
	retired, added, known := map[int32]bool{}, map[int32]bool{}, map[int32]bool{}
	rack := map[int32]string{}
	for _, r := range ch.Replace {
		retired[r.Old] = true
	}
	for _, id := range ch.Remove {
		retired[id] = true
	}
	for _, id := range ch.Add {
		added[id] = true
	}
	racks := map[string]bool{}
	for _, b := range bs {
		known[b.ID] = true
		rack[b.ID] = b.Rack
		if b.Rack != "" && !retired[b.ID] {
			racks[b.Rack] = true
		}
	}
	type tp struct {
		t string
		p int32
	}
	cur := map[tp]PartitionAssignment{}
	for i := range a.Len() {
		pt := a.At(i)
		cur[tp{pt.Topic, pt.Partition}] = pt
	}
	distinctRacks := func(rs []int32) bool {
		seen := map[string]bool{}
		for _, b := range rs {
			if r := rack[b]; r != "" && !retired[b] {
				if seen[r] {
					return false
				}
				seen[r] = true
			}
		}
		return true
	}
	moved := map[tp]bool{}
	after := map[tp][]int32{}
	for k, m := range p.Moves {
		key := tp{m.Topic, m.Partition}
		if k > 0 && compareMoves(&p.Moves[k-1], &p.Moves[k]) >= 0 {
			t.Errorf("moves not sorted or not unique at %v", m)
		}
		moved[key] = true
		pt, ok := cur[key]
		if !ok {
			t.Fatalf("move %v of a partition not in the assignment", m)
		}
		if !slices.Equal(m.From, pt.Replicas) {
			t.Errorf("move %v: From is not the current replicas %v", m, pt.Replicas)
		}
		if len(m.To) != len(m.From) {
			t.Errorf("move %v changes the replication factor", m)
		}
		if slices.Equal(m.From, m.To) {
			t.Errorf("move %v changes nothing", m)
		}
		if m.Bytes != pt.Bytes {
			t.Errorf("move %v: Bytes %d, want %d", m, m.Bytes, pt.Bytes)
		}
		for i, b := range m.To {
			if slices.Contains(m.To[:i], b) {
				t.Errorf("move %v: broker %d twice", m, b)
			}
			if retired[b] {
				t.Errorf("move %v: retired broker %d in To", m, b)
			}
		}
		for _, b := range m.Adding() {
			if !known[b] {
				t.Errorf("move %v adds unknown broker %d", m, b)
			}
			if len(retired) == 0 && !added[b] {
				t.Errorf("move %v (add only) adds broker %d, which was not added", m, b)
			}
		}
		if pt.Leader >= 0 && slices.Contains(m.To, pt.Leader) && m.To[0] != pt.Leader {
			t.Errorf("move %v: current leader %d stays but is not first", m, pt.Leader)
		}
		if len(racks) >= len(m.To) && distinctRacks(m.From) && !distinctRacks(m.To) {
			t.Errorf("move %v puts two replicas in one rack though %d racks remain", m, len(racks))
		}
		after[key] = m.To
	}
	for key, pt := range cur {
		hasRetired := slices.ContainsFunc(pt.Replicas, func(b int32) bool { return retired[b] })
		if hasRetired && !moved[key] {
			t.Errorf("%s-%d has a retired replica but does not move", key.t, key.p)
		}
		if !hasRetired && moved[key] && len(added) == 0 {
			t.Errorf("%s-%d moves though no replica is retired (not minimal)", key.t, key.p)
		}
	}
	// The reported loads match a recount.
	rep0, lead0, rep1, lead1 := map[int32]int{}, map[int32]int{}, map[int32]int{}, map[int32]int{}
	for key, pt := range cur {
		to, ok := after[key]
		if !ok {
			to = pt.Replicas
		}
		lead0[pt.Replicas[0]]++
		lead1[to[0]]++
		for _, b := range pt.Replicas {
			rep0[b]++
		}
		for _, b := range to {
			rep1[b]++
		}
	}
	for _, l := range p.Brokers {
		got := [4]int{l.Replicas, l.Leaders, l.ReplicasAfter, l.LeadersAfter}
		want := [4]int{rep0[l.ID], lead0[l.ID], rep1[l.ID], lead1[l.ID]}
		if got != want || l.Retired != retired[l.ID] || l.Rack != rack[l.ID] {
			t.Errorf("load of broker %d = %+v, recount gives %v retired=%v", l.ID, l, want, retired[l.ID])
		}
	}
}

// rackSpread returns the widest max-min of replica and leader counts after
// the plan among the remaining brokers of one rack: balance within what
// racks allow.
func rackSpread(p MovePlan) (replicas, leaders int) {
	byRack := map[string][]BrokerLoad{}
	for _, l := range p.Brokers {
		byRack[l.Rack] = append(byRack[l.Rack], l)
	}
	for _, ls := range byRack {
		r, l := spread(MovePlan{Brokers: ls})
		replicas, leaders = max(replicas, r), max(leaders, l)
	}
	return replicas, leaders
}

func TestPlanRulesAtScale(t *testing.T) {
	tests := []struct {
		name          string
		n, racks      int
		ch            BrokerChange
		newBrokers    int  // brokers n+1.. in the racks of 1.., added to the list
		balanceWithin bool // replicas and leaders within ±1 per rack
	}{
		{name: "replace one, no racks", n: 12, ch: BrokerChange{Replace: []Replacement{{Old: 2, New: 13}}}, newBrokers: 1, balanceWithin: true},
		{name: "replace three, racks", n: 24, racks: 3, ch: BrokerChange{Replace: []Replacement{{Old: 1, New: 25}, {Old: 2, New: 26}, {Old: 3, New: 27}}}, newBrokers: 3, balanceWithin: true},
		{name: "replace across racks", n: 24, racks: 3, ch: BrokerChange{Replace: []Replacement{{Old: 1, New: 26}}}, newBrokers: 3},
		{name: "replace, 2 racks (RF 3: clashes unavoidable)", n: 24, racks: 2, ch: BrokerChange{Replace: []Replacement{{Old: 1, New: 25}, {Old: 2, New: 26}}}, newBrokers: 2, balanceWithin: true},
		{name: "decommission one, no racks", n: 12, ch: BrokerChange{Remove: []int32{5}}, balanceWithin: true},
		{name: "decommission three, no racks", n: 30, ch: BrokerChange{Remove: []int32{1, 4, 5}}, balanceWithin: true},
		{name: "decommission six, 3 racks", n: 60, racks: 3, ch: BrokerChange{Remove: []int32{1, 2, 3, 4, 5, 6}}, balanceWithin: true},
		{name: "decommission, 4 racks (RF 3)", n: 24, racks: 4, ch: BrokerChange{Remove: []int32{1, 4, 5}}},
		{name: "add one, no racks", n: 12, ch: BrokerChange{Add: []int32{13}}, newBrokers: 1, balanceWithin: true},
		{name: "add five, 3 racks", n: 30, racks: 3, ch: BrokerChange{Add: []int32{31, 32, 33, 34, 35}}, newBrokers: 5, balanceWithin: true},
		{name: "add three, 4 racks", n: 24, racks: 4, ch: BrokerChange{Add: []int32{25, 26, 27}}, newBrokers: 3, balanceWithin: true},
		{name: "replace and add", n: 24, racks: 3, ch: BrokerChange{Replace: []Replacement{{Old: 7, New: 25}}, Add: []int32{26, 27}}, newBrokers: 3, balanceWithin: true},
		{name: "decommission and add", n: 24, ch: BrokerChange{Remove: []int32{7, 8}, Add: []int32{25}}, newBrokers: 1, balanceWithin: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, bs := gen(tt.n, tt.racks, tt.n*40, 3)
			for j := range tt.newBrokers {
				bs = append(bs, node.Node{ID: int32(tt.n + 1 + j), Rack: bs[j].Rack})
			}
			p, err := PlanMoves(a, bs, tt.ch)
			if err != nil {
				t.Fatal(err)
			}
			checkPlan(t, a, bs, tt.ch, p)
			if r, l := rackSpread(p); tt.balanceWithin && (r > 1 || l > 1) {
				t.Errorf("per-rack spread after the plan: replicas %d, leaders %d; want ≤ 1\n%v", r, l, p)
			}
			// Deterministic, whatever order partitions were added in.
			p2, err := PlanMoves(shuffled(a, 7), bs, tt.ch)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(p, p2); diff != "" {
				t.Errorf("plan depends on input order (-sorted +shuffled):\n%s", diff)
			}
		})
	}
}

func TestPlanReplaceWithPartnersMovesLoadOneForOne(t *testing.T) {
	a, bs := gen(30, 3, 30*40, 3)
	var ch BrokerChange
	for old := int32(1); old <= 6; old++ {
		bs = append(bs, node.Node{ID: 100 + old, Rack: bs[old-1].Rack})
		ch.Replace = append(ch.Replace, Replacement{Old: old, New: 100 + old})
	}
	p, err := PlanMoves(a, bs, ch)
	if err != nil {
		t.Fatal(err)
	}
	checkPlan(t, a, bs, ch, p)
	load := map[int32]BrokerLoad{}
	for _, l := range p.Brokers {
		load[l.ID] = l
	}
	for _, r := range ch.Replace {
		o, n := load[r.Old], load[r.New]
		if n.ReplicasAfter != o.Replicas || n.LeadersAfter != o.Leaders {
			t.Errorf("broker %d got %d replicas %d leaders, want broker %d's %d and %d", r.New, n.ReplicasAfter, n.LeadersAfter, r.Old, o.Replicas, o.Leaders)
		}
	}
	for _, l := range p.Brokers {
		if l.ID <= 30 && !l.Retired && (l.ReplicasAfter != l.Replicas || l.LeadersAfter != l.Leaders) {
			t.Errorf("broker %d load changed: %+v", l.ID, l)
		}
	}
}

func TestPlanErrors(t *testing.T) {
	a := func() *Assignment { return asg(t, "a-0 1,2", "a-1 2,3") }
	tests := []struct {
		name    string
		a       *Assignment
		brokers string
		ch      BrokerChange
		want    error
		wantAs  any
	}{
		{"duplicate broker", a(), "1 2 2 3", BrokerChange{}, ErrInvalid, new(*BrokerError)},
		{"replace with itself", a(), "1 2 3", BrokerChange{Replace: []Replacement{{Old: 1, New: 1}}}, ErrInvalid, new(*BrokerError)},
		{"retired twice", a(), "1 2 3 4", BrokerChange{Replace: []Replacement{{Old: 1, New: 4}}, Remove: []int32{1}}, ErrInvalid, new(*BrokerError)},
		{"new broker not listed", a(), "1 2 3", BrokerChange{Replace: []Replacement{{Old: 1, New: 4}}}, ErrInvalid, new(*BrokerError)},
		{"new broker retired", a(), "1 2 3 4", BrokerChange{Replace: []Replacement{{Old: 1, New: 4}}, Remove: []int32{4}}, ErrInvalid, new(*BrokerError)},
		{"added broker not listed", a(), "1 2 3", BrokerChange{Add: []int32{7}}, ErrInvalid, new(*BrokerError)},
		{"added broker retired", a(), "1 2 3", BrokerChange{Remove: []int32{3}, Add: []int32{3}}, ErrInvalid, new(*BrokerError)},
		{"partition twice", asg(t, "a-1 1,2", "a-0 2,3", "a-1 1,3"), "1 2 3", BrokerChange{}, ErrInvalid, new(*PartitionError)},
		{"not enough brokers for RF", asg(t, "a-0 1,2,3"), "1 2 3", BrokerChange{Remove: []int32{3}}, ErrUnplaceable, new(*PartitionError)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := PlanMoves(tt.a, brokerList(tt.brokers), tt.ch)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !errors.As(err, tt.wantAs) {
				t.Errorf("err = %T, want %T", err, tt.wantAs)
			}
		})
	}
}

func TestAssignmentAdd(t *testing.T) {
	tests := []struct {
		name string
		p    PartitionAssignment
		ok   bool
	}{
		{"ok", PartitionAssignment{Topic: "a", Partition: 0, Replicas: []int32{1, 2}, Leader: 1}, true},
		{"no replicas", PartitionAssignment{Topic: "a", Partition: 0}, false},
		{"negative partition", PartitionAssignment{Topic: "a", Partition: -1, Replicas: []int32{1}}, false},
		{"broker twice", PartitionAssignment{Topic: "a", Partition: 0, Replicas: []int32{1, 2, 1}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a Assignment
			err := a.Add(tt.p)
			if (err == nil) != tt.ok {
				t.Fatalf("Add = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
			if tt.ok {
				if diff := cmp.Diff(tt.p, a.At(0)); diff != "" {
					t.Errorf("At(0) (-added +got):\n%s", diff)
				}
			}
		})
	}
}

// TestPlanStalePools checks that pools which stop fixing their heaps while
// nobody consults them, and reorder them when consulted, give the plans that
// pools kept in order at every change give.
func TestPlanStalePools(t *testing.T) {
	// Long runs of partitions whose retired replica goes to its partner (4)
	// without consulting the pool, each run ended by one whose removed
	// replica (7) goes where the pool says. The partner starts the least
	// loaded, at the root of the pool's heap, and ends up above 5, so a pool
	// read out of order would pick it.
	lines := []string{}
	for k := range 100 {
		lines = append(lines, fmt.Sprintf("a-%d 5,2,3", k))
	}
	for k := range 200 {
		reps := "1,2,3"
		if k%50 == 49 {
			reps = "2,3,7"
		}
		lines = append(lines, fmt.Sprintf("b-%d %s", k, reps))
	}
	runs := asg(t, lines...)
	for _, tt := range []struct {
		a  *Assignment
		bs []node.Node
		ch BrokerChange
	}{
		{runs, brokerList("1 2 3 4 5 7"), BrokerChange{Replace: []Replacement{{Old: 1, New: 4}}, Remove: []int32{7}}},
	} {
		lazy, err := PlanMoves(tt.a, tt.bs, tt.ch)
		if err != nil {
			t.Fatal(err)
		}
		staleAfter = 1 << 30
		eager, err := PlanMoves(tt.a, tt.bs, tt.ch)
		staleAfter = 1
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(eager, lazy); diff != "" {
			t.Errorf("%+v: plans differ (-eager +lazy):\n%s", tt.ch, diff)
		}
		// The greedy placements alone, before refine could repair a wrong
		// choice.
		greedy := func() []int32 {
			p, err := newPlanner(tt.a, tt.bs, tt.ch)
			if err != nil {
				t.Fatal(err)
			}
			pl := p.newPool(p.target)
			p.pools = append(p.pools, pl)
			for _, kind := range []int{byLeaders, byReplicas} {
				if err := p.evacuatePass(pl, kind); err != nil {
					t.Fatal(err)
				}
			}
			return p.rep
		}
		lazyRep := greedy()
		staleAfter = 1 << 30
		eagerRep := greedy()
		staleAfter = 1
		if diff := cmp.Diff(eagerRep, lazyRep); diff != "" {
			t.Errorf("%+v: greedy placements differ (-eager +lazy):\n%s", tt.ch, diff)
		}
	}
	for _, tt := range []struct {
		n, racks int
		ch       BrokerChange
	}{
		{60, 3, BrokerChange{Replace: []Replacement{{Old: 1, New: 61}, {Old: 2, New: 62}}, Remove: []int32{7}}},
		{60, 3, BrokerChange{Remove: []int32{4, 5, 6}, Add: []int32{61, 62}}},
	} {
		a, bs := gen(tt.n, tt.racks, tt.n*40, 3)
		bs = append(bs, node.Node{ID: int32(tt.n + 1), Rack: bs[0].Rack}, node.Node{ID: int32(tt.n + 2), Rack: bs[1].Rack})
		lazy, err := PlanMoves(a, bs, tt.ch)
		if err != nil {
			t.Fatal(err)
		}
		staleAfter = 1 << 30
		eager, err := PlanMoves(a, bs, tt.ch)
		staleAfter = 1
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(eager, lazy); diff != "" {
			t.Errorf("%+v: plans differ (-eager +lazy):\n%s", tt.ch, diff)
		}
	}
}

// TestPlanLargeBrokerIDs checks that broker ids too large for the planner's
// table (kept in a map instead) plan the same as small ones: planning with
// every id x replaced by big(x), which keeps their order, gives the plan
// with the same replacement. The retired broker 40 is missing from the
// broker list, as a dead broker may be.
func TestPlanLargeBrokerIDs(t *testing.T) {
	big := func(x int32) int32 { return x*1_000_000 + 7 }
	bigs := func(xs []int32) []int32 {
		out := make([]int32, len(xs))
		for i, x := range xs {
			out[i] = big(x)
		}
		return out
	}
	a, bs := gen(30, 3, 30*40, 3)
	if err := a.Add(PartitionAssignment{Topic: "z", Partition: 0, Replicas: []int32{40, 2, 3}, Leader: 40}); err != nil {
		t.Fatal(err)
	}
	bs = append(bs, node.Node{ID: 31, Rack: bs[0].Rack}, node.Node{ID: 32, Rack: bs[1].Rack})
	var aBig Assignment
	for i := range a.Len() {
		p := a.At(i)
		p.Replicas = bigs(p.Replicas)
		p.Leader = big(p.Leader)
		if err := aBig.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	bsBig := slices.Clone(bs)
	for i := range bsBig {
		bsBig[i].ID = big(bsBig[i].ID)
	}
	for _, ch := range []BrokerChange{
		{Replace: []Replacement{{Old: 1, New: 31}}, Remove: []int32{40}},
		{Remove: []int32{4, 40}, Add: []int32{31, 32}},
	} {
		small, err := PlanMoves(a, bs, ch)
		if err != nil {
			t.Fatal(err)
		}
		var chBig BrokerChange
		for _, r := range ch.Replace {
			chBig.Replace = append(chBig.Replace, Replacement{Old: big(r.Old), New: big(r.New)})
		}
		chBig.Remove, chBig.Add = bigs(ch.Remove), bigs(ch.Add)
		got, err := PlanMoves(&aBig, bsBig, chBig)
		if err != nil {
			t.Fatal(err)
		}
		want := small
		want.Moves = slices.Clone(small.Moves)
		for i, m := range want.Moves {
			m.From, m.To = bigs(m.From), bigs(m.To)
			want.Moves[i] = m
		}
		want.Brokers = slices.Clone(small.Brokers)
		for i := range want.Brokers {
			want.Brokers[i].ID = big(want.Brokers[i].ID)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%+v: plan with large ids (-small ids mapped +large ids):\n%s", ch, diff)
		}
	}
}
