package reassign

import (
	"cmp"
	"fmt"
	mathbits "math/bits"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/kupgrade/kupgrade/node"
)

// A Replacement retires broker Old and puts broker New in its place.
type Replacement struct {
	Old int32 `json:"old"`
	New int32 `json:"new"`
}

// A BrokerChange says which brokers leave the cluster and which join it. The zero
// BrokerChange moves nothing.
//
// Every broker in Replace (New) and Add must be in the broker list given to
// [PlanMoves], since the planner needs its rack. A retired broker (Old, or
// one in Remove) need not be: a dead broker may already be gone from the
// cluster's metadata.
type BrokerChange struct {
	// Replace retires each Old broker. Each replica on Old goes to New,
	// unless New already holds a replica of that partition or New's rack
	// would put two replicas of the partition in one rack while another
	// broker avoids it; then it goes where a retired replica without a
	// partner goes, preferring Old's rack.
	Replace []Replacement `json:"replace,omitempty"`
	// Remove retires brokers without a partner: their replicas spread over
	// the remaining brokers, least loaded first.
	Remove []int32 `json:"remove,omitempty"`
	// Add names brokers that joined empty (or nearly). After the retired
	// brokers are drained, replicas move onto these brokers, and only onto
	// them, from the most loaded brokers, until leader and replica counts
	// are within one of each other where that is possible.
	Add []int32 `json:"add,omitempty"`
}

// A BrokerLoad is one broker's share of the cluster before and after a plan.
// Leaders counts preferred leaders (first replicas), the leadership that
// preferred leader election converges to.
type BrokerLoad struct {
	ID                          int32
	Rack                        string
	Retired                     bool // the Change retires it (Replace Old or Remove)
	Replicas, Leaders           int  // before the plan
	ReplicasAfter, LeadersAfter int  // after every move completes
}

// A MovePlan is the result of [PlanMoves].
type MovePlan struct {
	// Moves are the partitions to move, in topic, partition order, each
	// once. Their From slices share memory with the Assignment, as
	// [Assignment.At]'s Replicas do: they must not be modified.
	Moves Moves
	// Brokers is the load of every broker in the broker list or holding a
	// replica, sorted by id.
	Brokers []BrokerLoad
}

// String renders a summary for a dry run: the number of moves and bytes, and
// the per-broker table of replica and leader counts before → after.
func (p MovePlan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d moves, %d bytes to copy\n", len(p.Moves), p.Moves.Bytes())
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "broker\track\treplicas\tleaders\t")
	for _, l := range p.Brokers {
		rack := l.Rack
		if rack == "" {
			rack = "-"
		}
		note := ""
		if l.Retired {
			note = "retired"
		}
		fmt.Fprintf(w, "%d\t%s\t%d→%d\t%d→%d\t%s\n", l.ID, rack, l.Replicas, l.ReplicasAfter, l.Leaders, l.LeadersAfter, note)
	}
	w.Flush()
	// tabwriter pads the last cells of rows without a note.
	var out strings.Builder
	for line := range strings.Lines(b.String()) {
		out.WriteString(strings.TrimRight(line, " \n"))
		out.WriteByte('\n')
	}
	return out.String()
}

// PlanMoves computes the partition moves that carry out ch on the assignment
// a of a cluster whose brokers are brokers. It does no I/O and is
// deterministic: the same input gives the same plan, whatever order the
// partitions were added in.
//
// The rules, in order of precedence:
//   - Replication factor is kept: each retired replica is replaced by one
//     replica on a remaining broker that does not hold the partition yet.
//   - Minimal: only partitions with a replica on a retired broker move for
//     Replace and Remove; for Add, only as many replicas move as it takes to
//     bring the added brokers within one of the others.
//   - Racks: when brokers have racks, no two replicas of a partition share a
//     rack if some choice avoids it. A replaced broker's replicas go to its
//     partner, else to its rack.
//   - Leadership: if the current leader stays, it is first in To, so the move
//     does not change who leads. If it leaves, the broker that takes its
//     place in the replica list is first in To. Kafka keeps the old leader
//     leading while data copies (it stays in the replica set until every
//     new replica is in sync), then elects the first in-sync replica of To:
//     leadership moves once, after the copy, to the broker chosen to inherit
//     the old leader's share of leaderships.
//   - Balance: replicas that will lead are placed first, each on the
//     allowed broker with the fewest leaders; then the others, each on the
//     allowed broker with the fewest replicas; ties go to the lowest id. A
//     repair sweep then moves new replicas off any broker two or more above
//     another allowed one, which changes destinations, never the number of
//     moves. For Add, see [BrokerChange].
//
// The errors are a [*BrokerError] for an unusable [BrokerChange] or broker list and
// a [*PartitionError] for a partition that was added twice or whose
// replication factor cannot be kept ([ErrUnplaceable]).
func PlanMoves(a *Assignment, brokers []node.Node, ch BrokerChange) (MovePlan, error) {
	p, err := newPlanner(a, brokers, ch)
	if err != nil {
		return MovePlan{}, err
	}
	if err := p.evacuate(); err != nil {
		return MovePlan{}, err
	}
	if p.nAdded > 0 {
		p.prepareBalance()
		p.balance(byLeaders)
		p.balance(byReplicas)
	}
	return MovePlan{Moves: p.moves(), Brokers: p.loads()}, nil
}

// Load kinds: which count a heap or a balancing pass orders brokers by.
const (
	byReplicas = 0 // replicas, then leaders, then id
	byLeaders  = 1 // leaders, then replicas, then id
)

// planner holds the working state of one PlanMoves call. Brokers are
// "dense" indexes 0..n-1: first the broker list sorted by id, then unknown
// brokers found in replica lists.
//
// The partitions the plan may change are its working set, numbered w. With
// brokers to add (full), every partition may move: w is the partition's
// index and rep parallels a.reps. Otherwise only the partitions with a
// replica on a retiring broker may: w numbers them in topic, partition
// order, and rep holds only theirs, so that the planner's memory grows with
// the change, not with the cluster. Then rep[woff[w]:woff[w+1]] (or
// rep[w*stride:(w+1)*stride] if every working partition has stride
// replicas) are w's working replicas (dense); out[w] is its move, whose To
// they are, and moves turns them into ids in place. A move's From is the
// partition's replicas in the Assignment, shared.
type planner struct {
	a   *Assignment
	seq sequence // partitions in topic, partition order

	ids       []int32  // dense → broker id
	rack      []int32  // dense → rack index, -1 if none
	racks     []string // rack index → name
	idx       brokerIndex
	nKnown    int
	retiring  []bool
	target    []bool // may receive replicas: known and not retiring
	added     []bool
	pair      []int32 // dense → its Replace partner, -1
	nRetiring int
	nTarget   int
	nAdded    int

	full    bool
	wpart   []int32  // not full: w → partition index
	stride  int      // not full: each working partition's number of replicas, if all have the same
	woff    []int32  // not full, stride 0: w → offset of its replicas in rep; one more at the end
	rotated []uint64 // not full: bit w: working partition w's leader was rotated to the front
	// Not full: bit w of visit[byLeaders] is set if evacuate's leaders pass
	// has something to do for w (count its rotation, or replace its first
	// replica), of visit[byReplicas] if w has a retiring replica past the
	// first. Nil when full: every partition is visited.
	visit    [2][]uint64
	rep      []int32 // working replicas, dense
	affected []int32 // full: working partitions with a retired replica, in topic, partition order
	out      Moves   // not full: the plan's moves, by working partition
	touched  []bool  // full: per working partition: rotated and possibly changed
	nrep     []int32
	nlead    []int32
	nrep0    []int32 // counts before the plan
	nlead0   []int32

	placed []placement
	pools  []*pool // structures to fix when counts change
	donors *iheap
	// list[listOff[d]:listOff[d+1]] are the partitions with a replica on d,
	// built for balancing only.
	listOff []int32
	list    []int32
}

func newPlanner(a *Assignment, brokers []node.Node, ch BrokerChange) (*planner, error) {
	if a == nil {
		a = new(Assignment)
	}
	seq, err := a.order()
	if err != nil {
		return nil, err
	}
	p := &planner{a: a, seq: seq}

	bs := slices.Clone(brokers)
	slices.SortFunc(bs, func(x, y node.Node) int { return int(x.ID) - int(y.ID) })
	rackNames := make([]string, 0, 8)
	for i, b := range bs {
		if i > 0 && bs[i-1].ID == b.ID {
			return nil, &BrokerError{Broker: b.ID, Reason: "is listed twice in the broker list"}
		}
		if b.ID < 0 {
			return nil, &BrokerError{Broker: b.ID, Reason: "has a negative id"}
		}
		if b.Rack != "" {
			rackNames = append(rackNames, b.Rack)
		}
	}
	slices.Sort(rackNames)
	p.racks = slices.Compact(rackNames)
	for _, b := range bs {
		r := int32(-1)
		if b.Rack != "" {
			i, _ := slices.BinarySearch(p.racks, b.Rack)
			r = int32(i)
		}
		p.addBroker(b.ID, r)
	}
	p.nKnown = len(p.ids)

	// The change. Retired brokers unknown to the broker list are added as
	// dense brokers without a rack.
	retire := func(id int32) error {
		d, ok := p.idx.get(id)
		if !ok {
			d = p.addBroker(id, -1)
		}
		if p.retiring[d] {
			return &BrokerError{Broker: id, Reason: "is retired twice by the change"}
		}
		p.retiring[d] = true
		p.nRetiring++
		return nil
	}
	for _, r := range ch.Replace {
		if r.Old == r.New {
			return nil, &BrokerError{Broker: r.Old, Reason: "replaces itself"}
		}
		if err := retire(r.Old); err != nil {
			return nil, err
		}
	}
	for _, id := range ch.Remove {
		if err := retire(id); err != nil {
			return nil, err
		}
	}
	known := func(id int32, role string) (int32, error) {
		d, ok := p.idx.get(id)
		if !ok || int(d) >= p.nKnown {
			return -1, &BrokerError{Broker: id, Reason: role + " is not in the broker list"}
		}
		if p.retiring[d] {
			return -1, &BrokerError{Broker: id, Reason: role + " is also retired by the change"}
		}
		return d, nil
	}
	for _, r := range ch.Replace {
		n, err := known(r.New, "(replacement)")
		if err != nil {
			return nil, err
		}
		o, _ := p.idx.get(r.Old)
		p.pair[o] = n
	}
	for _, id := range ch.Add {
		d, err := known(id, "(added)")
		if err != nil {
			return nil, err
		}
		if !p.added[d] {
			p.added[d] = true
			p.nAdded++
		}
	}

	p.count()
	for d := range p.ids {
		if d < p.nKnown && !p.retiring[d] {
			p.target[d] = true
			p.nTarget++
		}
	}
	p.nrep0 = slices.Clone(p.nrep)
	p.nlead0 = slices.Clone(p.nlead)
	if p.full {
		p.touched = make([]bool, p.works())
	}
	return p, nil
}

// count makes, in one pass over the replicas, the working set with its
// replicas in dense form. The pass reads the replicas alone, run by run of
// partitions with one replication factor (see [rfRun]), and a partition's
// header only if the plan may change it. It goes through the topics in
// name order, each topic's partitions as stored, unless the partitions need
// a permutation to be in topic, partition order: then it goes in storage
// order, and the partitions it finds with a retired replica are put in
// topic, partition order after. That is the order of the working set
// without brokers to add, and of affected with them.
func (p *planner) count() {
	a := p.a
	p.full = p.nAdded > 0
	if p.full {
		p.rep = make([]int32, len(a.reps))
	}
	hits, nreps := p.scan()
	switch {
	case len(hits) == 0:
	case p.seq.perm != nil:
		// Keep the permutation's entries that are hits.
		set := make([]uint64, (len(a.parts)+63)/64)
		for _, i := range hits {
			set[i/64] |= 1 << (i % 64)
		}
		hits = hits[:0]
		for _, i := range p.seq.perm {
			if set[i/64]&(1<<(i%64)) != 0 {
				hits = append(hits, i)
			}
		}
	}
	if p.full {
		p.affected = hits
	} else {
		p.working(hits, nreps)
	}
}

// scan is count's pass over the replicas: it takes the replica and leader
// counts from the Assignment's tally (adding the brokers it lists that are
// unknown: dense brokers without a rack), fills rep if full, and returns
// the partitions with a replica on a retiring broker and their number of
// replicas. They are in topic, partition order unless the sequence has a
// permutation; then in storage order.
func (p *planner) scan() ([]int32, int) {
	a := p.a
	for _, t := range a.tally {
		d := p.dense(t.id)
		p.nrep[d], p.nlead[d] = t.replicas, t.leaders
	}
	var hits []int32
	if len(p.ids) > 0 && len(a.parts) > 0 && !p.full {
		// Room for the partitions with a retired replica if the retiring
		// brokers hold their share, and an eighth more.
		hits = make([]int32, 0, len(a.parts)*p.nRetiring/len(p.ids)*len(a.reps)/len(a.parts)*9/8+16)
	}
	// Every broker in a replica list has a dense index now. ret tells, by
	// id, whether a broker retires (1) for the ids in the broker table;
	// other ids (large or negative) are looked up in the index.
	tab := p.idx.tab
	ret := make([]uint8, len(tab))
	for id, d := range tab {
		if d > 0 && p.retiring[d-1] {
			ret[id] = 1
		}
	}
	ps := partScan{p: p, ret: ret, hits: hits}
	if p.seq.perm != nil {
		ps.scan(0, int32(len(a.parts)))
	} else {
		for _, sp := range p.seq.spans {
			ps.scan(sp.lo, sp.hi)
		}
	}
	return ps.hits, ps.nreps
}

// A partScan is [planner.scan]'s pass: ret says by id whether a broker
// retires (ids beyond it are looked up), and hits collects the partitions
// with a retiring replica, which have nreps replicas in all.
type partScan struct {
	p     *planner
	ret   []uint8
	hits  []int32
	nreps int
}

// scan goes through the partitions lo..hi-1, in storage order, run by run.
func (ps *partScan) scan(lo, hi int32) {
	p, a := ps.p, ps.p.a
	ret, full, rep := ps.ret, p.full, p.rep
	k, _ := slices.BinarySearchFunc(a.runs, lo, func(r rfRun, i int32) int { return cmp.Compare(r.first, i) })
	if k == len(a.runs) || a.runs[k].first > lo {
		k-- // the run that starts before lo
	}
	for i := lo; i < hi; k++ {
		r := a.runs[k]
		end := hi
		if k+1 < len(a.runs) {
			end = min(end, a.runs[k+1].first)
		}
		n := int(r.rf)
		off := int(r.off) + int(i-r.first)*n
		for ; i < end; i++ {
			if n == 3 && !full {
				// The usual replication factor, unrolled, up to a
				// partition with an id beyond ret.
				if i, off = ps.scan3(i, end, off); i == end {
					break
				}
			}
			src := a.reps[off : off+n : off+n]
			var or uint8
			for _, id := range src {
				if uint32(id) < uint32(len(ret)) {
					or |= ret[id]
				} else if d, ok := p.idx.get(id); ok && p.retiring[d] {
					or |= 1
				}
			}
			if full {
				for j, id := range src {
					rep[off+j], _ = p.idx.get(id)
				}
			}
			if or != 0 {
				ps.hits = append(ps.hits, i)
				ps.nreps += n
			}
			off += n
		}
	}
}

// scan3 is scan's loop for partitions i..end-1 of replication factor 3,
// the first at reps[off], without brokers to add. It stops early, at the
// first partition with a broker id beyond ret, and returns where it
// stopped.
func (ps *partScan) scan3(i, end int32, off int) (int32, int) {
	reps, ret := ps.p.a.reps, ps.ret
	n := uint32(len(ret))
	for ; i < end; i++ {
		src := reps[off : off+3 : off+3]
		x, y, z := uint32(src[0]), uint32(src[1]), uint32(src[2])
		if x >= n || y >= n || z >= n {
			break
		}
		if ret[x]|ret[y]|ret[z] != 0 {
			ps.hits = append(ps.hits, i)
			ps.nreps += 3
		}
		off += 3
	}
	return i, off
}

// working lays out the working set of a plan without brokers to add: the
// partitions hits, in the order given, which have nreps replicas in all,
// each with its replicas in dense form, rotated as [planner.touch] would:
// if the current leader stays, it comes first (rotated records it, and
// touch counts the leadership change later, in its turn). It also fills
// out, while each partition's header is at hand, the plan's move of each:
// From is the partition's replicas in the Assignment, To its working
// replicas, dense until [planner.movesInPlace] turns them into ids.
func (p *planner) working(hits []int32, nreps int) {
	a := p.a
	p.wpart = hits
	p.rep = make([]int32, nreps)
	p.out = make(Moves, len(hits))
	p.rotated = make([]uint64, (len(hits)+63)/64)
	p.visit = [2][]uint64{make([]uint64, len(p.rotated)), make([]uint64, len(p.rotated))}
	if len(hits) > 0 && nreps == len(hits)*int(a.parts[hits[0]].n) {
		p.stride = int(a.parts[hits[0]].n) // likely; the loop checks it
	}
	var woff []int32
	if p.stride == 0 {
		woff = make([]int32, 1, len(hits)+1)
	}
	at := 0
	tab, retiring := p.idx.tab, p.retiring
	for w, i := range hits {
		pt := &a.parts[i]
		n := int(pt.n)
		if n != p.stride && p.stride > 0 {
			// Not one replication factor after all: offsets, up to here
			// by the stride.
			woff = make([]int32, w+1, len(hits)+1)
			for k := range woff {
				woff[k] = int32(k * p.stride)
			}
			p.stride = 0
		}
		if p.stride == 0 {
			woff = append(woff, int32(at+n))
		}
		src := a.reps[pt.off : pt.off+pt.n : pt.off+pt.n]
		dense := p.rep[at : at+n : at+n]
		lead := -1
		for j, id := range src {
			var d int32
			if uint32(id) < uint32(len(tab)) {
				d = tab[id] - 1
			} else {
				d, _ = p.idx.get(id)
			}
			// Known since the scan.
			dense[j] = d
			if id == pt.leader && !retiring[d] {
				lead = j
			}
		}
		bit := uint64(1) << (w % 64)
		if lead > 0 {
			l := dense[lead]
			copy(dense[1:lead+1], dense[:lead])
			dense[0] = l
			p.rotated[w/64] |= bit
			p.visit[byLeaders][w/64] |= bit
		}
		if retiring[dense[0]] {
			p.visit[byLeaders][w/64] |= bit
		}
		for _, d := range dense[1:] {
			if retiring[d] {
				p.visit[byReplicas][w/64] |= bit
			}
		}
		at += n
		p.out[w] = Move{Topic: a.topics[pt.topic], Partition: pt.partition, From: src, To: dense, Bytes: a.sizeOf(int(i))}
	}
	if p.stride == 0 {
		p.woff = woff
	}
}

// dense returns the dense index of broker id, adding it if unknown.
func (p *planner) dense(id int32) int32 {
	d, ok := p.idx.get(id)
	if !ok {
		d = p.addBroker(id, -1)
	}
	return d
}

// works returns the size of the working set.
func (p *planner) works() int {
	if p.full {
		return len(p.a.parts)
	}
	return len(p.wpart)
}

// nAffected returns the number of working partitions with a retired
// replica.
func (p *planner) nAffected() int {
	if p.full {
		return len(p.affected)
	}
	return len(p.wpart)
}

// affectedAt returns the k-th working partition with a retired replica, in
// topic, partition order.
func (p *planner) affectedAt(k int) int {
	if p.full {
		return int(p.affected[k])
	}
	return k
}

// inOrder calls fn for every working partition in topic, partition order.
func (p *planner) inOrder(fn func(w int)) {
	if !p.full {
		for w := range p.wpart {
			fn(w)
		}
		return
	}
	for _, sp := range p.seq.spans {
		for k := sp.lo; k < sp.hi; k++ {
			fn(p.seq.at(k))
		}
	}
}

// addBroker appends a dense broker and returns its index.
func (p *planner) addBroker(id, rack int32) int32 {
	d := int32(len(p.ids))
	p.ids = append(p.ids, id)
	p.rack = append(p.rack, rack)
	p.retiring = append(p.retiring, false)
	p.target = append(p.target, false)
	p.added = append(p.added, false)
	p.pair = append(p.pair, -1)
	p.nrep = append(p.nrep, 0)
	p.nlead = append(p.nlead, 0)
	p.idx.put(id, d)
	return d
}

// part returns the partition index of working partition w.
func (p *planner) part(w int) int {
	if p.full {
		return w
	}
	return int(p.wpart[w])
}

// replicas returns the working replicas of working partition w.
func (p *planner) replicas(w int) []int32 {
	if p.full {
		pt := p.a.parts[w]
		return p.rep[pt.off : pt.off+pt.n : pt.off+pt.n]
	}
	if p.stride > 0 {
		lo := w * p.stride
		return p.rep[lo : lo+p.stride : lo+p.stride]
	}
	lo, hi := p.woff[w], p.woff[w+1]
	return p.rep[lo:hi:hi]
}

// leader returns the dense index of partition w's current leader if it is
// one of its replicas, else -1, when full. w must not be touched yet: its
// replicas are still those of the assignment.
func (p *planner) leader(w int) int32 {
	id := p.a.parts[w].leader
	if id < 0 {
		return -1
	}
	d, ok := p.idx.get(id)
	if !ok || !slices.Contains(p.replicas(w), d) {
		return -1
	}
	return d
}

// leadHolder returns the broker that will be first in partition i's target
// list as things stand: the current leader if it stays, else the first
// replica.
func (p *planner) leadHolder(i int) int32 {
	r := p.replicas(i)
	if !p.touched[i] {
		if l := p.leader(i); l >= 0 && !p.retiring[l] {
			return l
		}
	}
	return r[0]
}

// touch marks partition i as moving. If its current leader stays, it is
// rotated to the front, so that the target list keeps it as leader. Without
// brokers to add, the working set was laid out rotated (see
// [planner.working]), every working partition moves, and touch, called once
// per partition, counts the rotation.
func (p *planner) touch(i int) {
	if !p.full {
		if p.rotated[i/64]&(1<<(i%64)) != 0 {
			// The rotation moved the first replica to second place.
			r := p.replicas(i)
			p.nlead[r[1]]--
			p.nlead[r[0]]++
			p.fix(r[1])
			p.fix(r[0])
		}
		return
	}
	if p.touched[i] {
		return
	}
	p.touched[i] = true
	l := p.leader(i)
	if l < 0 || p.retiring[l] {
		return
	}
	r := p.replicas(i)
	k := slices.Index(r, l)
	if k <= 0 {
		return
	}
	first := r[0]
	copy(r[1:k+1], r[:k])
	r[0] = l
	p.nlead[first]--
	p.nlead[l]++
	p.fix(first)
	p.fix(l)
}

// replace puts broker c in slot k of a partition's working replicas r.
func (p *planner) replace(r []int32, k int, c int32) {
	old := r[k]
	r[k] = c
	p.nrep[old]--
	p.nrep[c]++
	if k == 0 {
		p.nlead[old]--
		p.nlead[c]++
	}
	p.fix(old)
	p.fix(c)
}

// fix restores the heap order of every structure holding d after its counts
// changed.
func (p *planner) fix(d int32) {
	for _, pl := range p.pools {
		if !pl.stale {
			pl.fix(d)
		}
	}
	if p.donors != nil {
		p.donors.fix(d)
	}
}

func (p *planner) less(kind int) func(x, y int32) bool {
	a, b := p.nrep, p.nlead
	if kind == byLeaders {
		a, b = b, a
	}
	return func(x, y int32) bool {
		if a[x] != a[y] {
			return a[x] < a[y]
		}
		if b[x] != b[y] {
			return b[x] < b[y]
		}
		return x < y // dense order is id order for known brokers
	}
}

// clash counts the replicas of r other than slot k that are, or will be,
// in rack: a retiring replica counts in its partner's rack, where it is
// bound to go, and not at all if it has no partner.
func (p *planner) clash(r []int32, k int, rack int32) int {
	if rack < 0 {
		return 0
	}
	n := 0
	for j, x := range r {
		if j == k {
			continue
		}
		if p.retiring[x] {
			if x = p.pair[x]; x < 0 {
				continue
			}
		}
		if p.rack[x] == rack {
			n++
		}
	}
	return n
}

// choose returns the best broker of pool pl for slot k of replicas r, and
// how many other replicas share its rack; -1 if every broker of the pool
// already holds the partition. Best is, in order: fewest rack clashes, in
// prefRack (if >= 0), least loaded by kind, lowest id.
func (p *planner) choose(pl *pool, r []int32, k int, kind int, prefRack int32) (int32, int) {
	pl.use()
	best, bestClash, bestPen := int32(-1), 0, 0
	for g := range pl.heaps {
		less := pl.heaps[g][kind].less
		c := pl.heaps[g][kind].bestNotIn(r)
		if c < 0 {
			continue
		}
		clash := p.clash(r, k, p.rack[c])
		pen := 0
		if prefRack >= 0 && p.rack[c] != prefRack {
			pen = 1
		}
		if best < 0 || clash < bestClash || clash == bestClash && (pen < bestPen || pen == bestPen && less(c, best)) {
			best, bestClash, bestPen = c, clash, pen
		}
	}
	return best, bestClash
}

// evacuate replaces every replica on a retiring broker.
func (p *planner) evacuate() error {
	if p.nRetiring == 0 {
		return nil
	}
	pl := p.newPool(p.target)
	p.pools = append(p.pools, pl)
	defer func() { p.pools = p.pools[:0] }()
	// Two passes: first the slots that will lead, by leader count, then the
	// others by replica count, which evens out what the first pass skewed.
	// Greedy placement in partition order can leave a broker two or more
	// above another that could have taken one of its new replicas. Moving
	// a new replica elsewhere costs no extra move, so each pass is refined
	// before the next.
	for _, kind := range []int{byLeaders, byReplicas} {
		if err := p.evacuatePass(pl, kind); err != nil {
			return err
		}
		p.refine(pl, kind)
	}
	return nil
}

// A placement is a retired replica's slot that evacuate filled by choice
// (not with the retired broker's partner).
type placement struct {
	i, s int32
	old  int32 // the retired broker
}

// refine moves new replicas from brokers that are two or more above the
// least loaded broker that could hold them, never adding a rack clash or
// leaving the retired broker's rack for a replaced broker. Sweeps repeat
// while they change something, at most a few times.
func (p *planner) refine(pl *pool, kind int) {
	count := p.nrep
	if kind == byLeaders {
		count = p.nlead
	}
	for range 4 {
		changed := false
		for _, ps := range p.placed {
			if (ps.s == 0) != (kind == byLeaders) {
				continue
			}
			i, s := int(ps.i), int(ps.s)
			r := p.replicas(i)
			c := r[s]
			prefRack := int32(-1)
			if p.pair[ps.old] >= 0 {
				prefRack = p.rack[ps.old]
			}
			c2, clash2 := p.choose(pl, r, s, kind, prefRack)
			switch {
			case c2 < 0, count[c]-count[c2] < 2, clash2 > p.clash(r, s, p.rack[c]):
				continue
			case prefRack >= 0 && p.rack[c] == prefRack && p.rack[c2] != prefRack:
				continue
			case kind == byLeaders && p.nrep[c2] >= p.nrep[c]:
				continue
			}
			p.replace(r, s, c2)
			changed = true
		}
		if !changed {
			return
		}
	}
}

// evacuatePass replaces, in topic, partition order, the retired replicas
// of the affected partitions that kind places: first replicas (those that
// will lead) by leaders, the others by replicas. The leaders pass, the
// first, touches every affected partition. Without brokers to add it visits
// only the partitions it has something to do for (see [planner.visit]).
func (p *planner) evacuatePass(pl *pool, kind int) error {
	if p.full {
		for k := range p.nAffected() {
			if err := p.evacuateOne(pl, kind, p.affectedAt(k)); err != nil {
				return err
			}
		}
		return nil
	}
	for word, bits := range p.visit[kind] {
		for bits != 0 {
			w := word*64 + mathbits.TrailingZeros64(bits)
			bits &= bits - 1
			if err := p.evacuateOne(pl, kind, w); err != nil {
				return err
			}
		}
	}
	return nil
}

// evacuateOne is evacuatePass for working partition i.
func (p *planner) evacuateOne(pl *pool, kind, i int) error {
	r := p.replicas(i)
	lo, hi := 1, len(r)
	if kind == byLeaders {
		p.touch(i)
		lo, hi = 0, 1
	}
	for s := lo; s < hi; s++ {
		if !p.retiring[r[s]] {
			continue
		}
		if err := p.evacuateSlot(pl, kind, i, r, s); err != nil {
			return err
		}
	}
	return nil
}

// evacuateSlot replaces the retired replica in slot s of partition i's
// replicas r.
func (p *planner) evacuateSlot(pl *pool, kind, i int, r []int32, s int) error {
	old := r[s]
	// The partner takes the replica unless it holds the partition
	// already, or another broker has fewer rack clashes (with two
	// racks and three replicas, say, every broker clashes).
	c := p.pair[old]
	if c >= 0 && slices.Contains(r, c) {
		c = -1
	}
	if c < 0 || p.clash(r, s, p.rack[c]) > 0 {
		// A replaced broker's replicas prefer its rack; a removed
		// broker's spread over all racks.
		prefRack := int32(-1)
		if p.pair[old] >= 0 {
			prefRack = p.rack[old]
		}
		alt, altClash := p.choose(pl, r, s, kind, prefRack)
		if c < 0 || alt >= 0 && altClash < p.clash(r, s, p.rack[c]) {
			c = alt
			p.placed = append(p.placed, placement{i: int32(i), s: int32(s), old: old})
		}
	}
	if c < 0 {
		pt := p.a.parts[p.part(i)]
		return &PartitionError{
			Topic: p.a.topics[pt.topic], Partition: pt.partition, Err: ErrUnplaceable,
			Reason: fmt.Sprintf("%d replicas but only %d brokers remain", pt.n, p.nTarget),
		}
	}
	p.replace(r, s, c)
	return nil
}

// prepareBalance builds, for every broker, the list of partitions it holds.
func (p *planner) prepareBalance() {
	n := len(p.ids)
	p.listOff = make([]int32, n+1)
	for _, d := range p.rep {
		p.listOff[d+1]++
	}
	for d := range n {
		p.listOff[d+1] += p.listOff[d]
	}
	p.list = make([]int32, len(p.rep))
	next := slices.Clone(p.listOff[:n])
	p.inOrder(func(i int) {
		for _, d := range p.replicas(i) {
			p.list[next[d]] = int32(i)
			next[d]++
		}
	})
}

// balance moves replicas from the most loaded remaining brokers onto the
// added brokers until they are within one of each other by kind. The
// leaders pass moves only first replicas; the replicas pass moves only
// others, so it keeps the leader balance the first pass made.
func (p *planner) balance(kind int) {
	recv := make([]bool, len(p.ids))
	donor := make([]bool, len(p.ids))
	for d := range p.ids {
		recv[d] = p.target[d] && p.added[d]
		donor[d] = p.target[d] && !p.added[d]
	}
	pl := p.newPool(recv)
	if len(pl.heaps) == 0 {
		return
	}
	count := p.nrep
	if kind == byLeaders {
		count = p.nlead
	}
	p.donors = newIheap(len(p.ids), func(x, y int32) bool {
		if count[x] != count[y] {
			return count[x] > count[y]
		}
		return x < y
	})
	for d := range p.ids {
		if donor[d] {
			p.donors.push(int32(d))
		}
	}
	p.pools = append(p.pools[:0], pl)
	defer func() { p.pools, p.donors = p.pools[:0], nil }()
	cursor := slices.Clone(p.listOff[:len(p.ids)])

	for p.donors.len() > 0 {
		d := p.donors.items[0]
		if count[d]-pl.min(kind, count) < 2 {
			return
		}
		moved := false
		for ; cursor[d] < p.listOff[d+1]; cursor[d]++ {
			i := int(p.list[cursor[d]])
			r := p.replicas(i)
			s := slices.Index(r, d)
			if s < 0 {
				continue
			}
			if lead := p.leadHolder(i) == d; lead != (kind == byLeaders) {
				continue
			}
			c, clash := p.choose(pl, r, s, kind, -1)
			if c < 0 || clash > p.clash(r, s, p.rack[d]) || count[d]-count[c] < 2 {
				continue
			}
			if kind == byLeaders && p.nrep[c] >= p.nrep[d] {
				continue
			}
			p.touch(i)
			p.replace(r, slices.Index(r, d), c)
			moved = true
			cursor[d]++
			break
		}
		if !moved {
			p.donors.remove(d)
		}
	}
}

// moves builds the plan's moves from the partitions that changed.
func (p *planner) moves() Moves {
	if !p.full {
		return p.movesInPlace()
	}
	n, size := 0, 0
	for w, t := range p.touched {
		if t {
			n++
			size += int(p.a.parts[w].n)
		}
	}
	arena := make([]int32, size)
	out := make(Moves, 0, n)
	at := 0
	p.inOrder(func(i int) {
		if !p.touched[i] {
			return
		}
		pt := p.a.parts[i]
		n := int(pt.n)
		from := p.a.reps[pt.off : pt.off+pt.n : pt.off+pt.n]
		to := arena[at : at+n : at+n]
		if !p.toIDs(to, p.replicas(i), from) {
			return
		}
		at += n
		out = append(out, Move{Topic: p.a.topics[pt.topic], Partition: pt.partition, From: from, To: to, Bytes: p.a.sizeOf(i)})
	})
	return out
}

// movesInPlace is moves without brokers to add: every working partition
// was touched, and its move is filled out but for To, still dense in rep,
// which it turns into ids. Every move changes its partition: each working
// partition has a replica on a retiring broker, which evacuate replaced.
func (p *planner) movesInPlace() Moves {
	for k, d := range p.rep {
		p.rep[k] = p.ids[d]
	}
	out := p.out
	p.out = nil
	return out
}

// toIDs writes the ids of the dense brokers reps to to (which may be reps)
// and reports whether they differ from from.
func (p *planner) toIDs(to, reps, from []int32) bool {
	changed := false
	for j, d := range reps {
		to[j] = p.ids[d]
		changed = changed || to[j] != from[j]
	}
	return changed
}

func (p *planner) loads() []BrokerLoad {
	out := make([]BrokerLoad, len(p.ids))
	for d, id := range p.ids {
		l := BrokerLoad{
			ID: id, Retired: p.retiring[d],
			Replicas: int(p.nrep0[d]), Leaders: int(p.nlead0[d]),
			ReplicasAfter: int(p.nrep[d]), LeadersAfter: int(p.nlead[d]),
		}
		if r := p.rack[d]; r >= 0 {
			l.Rack = p.racks[r]
		}
		out[d] = l
	}
	slices.SortFunc(out, func(x, y BrokerLoad) int { return int(x.ID) - int(y.ID) })
	return out
}

// brokerIndex maps broker ids to dense indexes: a table for small ids, a map
// for the rest.
type brokerIndex struct {
	tab []int32 // id → dense+1, 0 if absent
	m   map[int32]int32
}

const maxTable = 1 << 20

func (x *brokerIndex) get(id int32) (int32, bool) {
	if id >= 0 && int(id) < len(x.tab) {
		d := x.tab[id]
		return d - 1, d > 0
	}
	d, ok := x.m[id]
	return d, ok
}

func (x *brokerIndex) put(id, d int32) {
	if id >= 0 && id < maxTable {
		if int(id) >= len(x.tab) {
			x.tab = slices.Grow(x.tab, int(id)+1-len(x.tab))[:id+1]
		}
		x.tab[id] = d + 1
		return
	}
	if x.m == nil {
		x.m = make(map[int32]int32)
	}
	x.m[id] = d
}

// A pool is a set of candidate brokers grouped by rack, each group held in
// two heaps: by replicas and by leaders.
//
// The heaps are kept in order only while they are consulted. Evacuating
// brokers that all have partners changes counts hundreds of thousands of
// times and never asks the pool; so once the counts changed more times since
// the pool was last consulted than it has members, fix stops reordering and
// the next consultation reorders every heap at once, which costs about as
// much as that many fixes. Either way the heaps are in order whenever they
// are read.
type pool struct {
	group []int32    // dense → group index, -1 if not a member
	heaps [][2]iheap // per group
	racks []int32    // per group: rack index or -1
	size  int        // members
	fixes int        // fixes since the pool was last consulted
	stale bool       // the heaps are out of order
}

func (p *planner) newPool(member []bool) *pool {
	n := len(p.ids)
	pl := &pool{group: make([]int32, n)}
	pos := [2][]int32{make([]int32, n), make([]int32, n)}
	less := [2]func(x, y int32) bool{p.less(byReplicas), p.less(byLeaders)}
	byRack := make(map[int32]int32)
	for d := range n {
		pl.group[d] = -1
		if !member[d] {
			continue
		}
		g, ok := byRack[p.rack[d]]
		if !ok {
			g = int32(len(pl.heaps))
			byRack[p.rack[d]] = g
			pl.heaps = append(pl.heaps, [2]iheap{{pos: pos[0], less: less[0]}, {pos: pos[1], less: less[1]}})
			pl.racks = append(pl.racks, p.rack[d])
		}
		pl.group[d] = g
		pl.size++
		for k := range 2 {
			pl.heaps[g][k].push(int32(d))
		}
	}
	return pl
}

// staleAfter is how many fixes per member a pool makes between two
// consultations before it stops fixing; a test raises it to check that
// plans do not depend on it.
var staleAfter = 1

// fix restores the heap order after d's counts changed, or leaves it to the
// next [pool.use].
func (pl *pool) fix(d int32) {
	if pl.stale {
		return
	}
	g := pl.group[d]
	if g < 0 {
		return
	}
	if pl.fixes++; pl.fixes > pl.size*staleAfter {
		pl.stale = true
		return
	}
	pl.heaps[g][0].fix(d)
	pl.heaps[g][1].fix(d)
}

// use makes the heaps ready to be read: it reorders them if fix stopped
// doing so.
func (pl *pool) use() {
	pl.fixes = 0
	if !pl.stale {
		return
	}
	pl.stale = false
	for g := range pl.heaps {
		pl.heaps[g][0].heapify()
		pl.heaps[g][1].heapify()
	}
}

// min returns the smallest count of any member, by kind.
func (pl *pool) min(kind int, count []int32) int32 {
	pl.use()
	m := int32(-1)
	for g := range pl.heaps {
		if h := &pl.heaps[g][kind]; h.len() > 0 {
			if c := count[h.items[0]]; m < 0 || c < m {
				m = c
			}
		}
	}
	return m
}

// iheap is a binary min-heap of dense broker indexes whose positions are
// tracked, so an element can be fixed after its key changed.
type iheap struct {
	items []int32
	pos   []int32 // dense → position in items; shared by heaps with disjoint members
	less  func(x, y int32) bool
}

func newIheap(n int, less func(x, y int32) bool) *iheap {
	h := &iheap{pos: make([]int32, n), less: less}
	for i := range h.pos {
		h.pos[i] = -1
	}
	return h
}

func (h *iheap) len() int { return len(h.items) }

// heapify restores the heap order of every element.
func (h *iheap) heapify() {
	for i := len(h.items)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *iheap) push(d int32) {
	h.items = append(h.items, d)
	h.pos[d] = int32(len(h.items) - 1)
	h.up(len(h.items) - 1)
}

func (h *iheap) remove(d int32) {
	i := int(h.pos[d])
	last := len(h.items) - 1
	h.swap(i, last)
	h.items = h.items[:last]
	h.pos[d] = -1
	if i < last {
		h.down(i)
		h.up(i)
	}
}

func (h *iheap) fix(d int32) {
	i := int(h.pos[d])
	if i < 0 || i >= len(h.items) || h.items[i] != d {
		return
	}
	h.down(i)
	h.up(i)
}

func (h *iheap) swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.pos[h.items[i]] = int32(i)
	h.pos[h.items[j]] = int32(j)
}

func (h *iheap) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !h.less(h.items[i], h.items[parent]) {
			return
		}
		h.swap(i, parent)
		i = parent
	}
}

func (h *iheap) down(i int) {
	n := len(h.items)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.less(h.items[r], h.items[l]) {
			m = r
		}
		if !h.less(h.items[m], h.items[i]) {
			return
		}
		h.swap(i, m)
		i = m
	}
}

// bestNotIn returns the least element not in excl, or -1. It searches the
// heap best-first from the root, so it looks at about 2·len(excl) nodes.
func (h *iheap) bestNotIn(excl []int32) int32 {
	if len(h.items) == 0 {
		return -1
	}
	if top := h.items[0]; !slices.Contains(excl, top) {
		return top
	}
	var buf [32]int32
	frontier := buf[:0]
	push := func(i int) {
		if i < len(h.items) {
			frontier = append(frontier, int32(i))
		}
	}
	push(1)
	push(2)
	for len(frontier) > 0 {
		b := 0
		for j := 1; j < len(frontier); j++ {
			if h.less(h.items[frontier[j]], h.items[frontier[b]]) {
				b = j
			}
		}
		i := int(frontier[b])
		frontier[b] = frontier[len(frontier)-1]
		frontier = frontier[:len(frontier)-1]
		if d := h.items[i]; !slices.Contains(excl, d) {
			return d
		}
		push(2*i + 1)
		push(2*i + 2)
	}
	return -1
}
