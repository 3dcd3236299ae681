package reassign

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sort"
)

// An Order compares two pending moves for a [Batcher]: the one that
// compares lower is submitted first. An Order must not modify the moves.
// Moves an Order finds equal keep the order they were given in.
type Order func(a, b *Move) int

// SmallFirst is an [Order] that submits moves with fewer Bytes first, so
// that many partitions finish early.
func SmallFirst(a, b *Move) int { return cmp.Compare(a.Bytes, b.Bytes) }

// LargeFirst is an [Order] that submits moves with more Bytes first, so
// that the longest copies do not trail at the end.
func LargeFirst(a, b *Move) int { return cmp.Compare(b.Bytes, a.Bytes) }

// AtRiskFirst returns an [Order] that submits moves with a higher risk
// first. risk is the caller's judgement of a partition, from a health
// snapshot for example: Cruise Control ranks partitions at
// min.insync.replicas with an offline replica highest, then those one
// above, then the rest; a negative risk postpones a move, as Cruise Control
// postpones under-replicated partitions. risk is called often and must be
// cheap.
func AtRiskFirst(risk func(*Move) int) Order {
	return func(a, b *Move) int { return cmp.Compare(risk(b), risk(a)) }
}

// A BatchOption configures a [Batcher].
type BatchOption interface{ apply(*batchConfig) }

type batchOptionFunc func(*batchConfig)

func (f batchOptionFunc) apply(c *batchConfig) { f(c) }

type batchConfig struct {
	slots       int
	brokerSlots map[int32]int
	maxInFlight int
	orders      []Order
}

func defaultBatchConfig() batchConfig {
	return batchConfig{slots: 5, maxInFlight: 1250}
}

func (c *batchConfig) validate() error {
	if c.slots < 1 {
		return fmt.Errorf("%w: SlotsPerBroker(%d): must be at least 1", ErrInvalid, c.slots)
	}
	for b, n := range c.brokerSlots {
		if n < 0 {
			return fmt.Errorf("%w: BrokerSlots(%d, %d): must not be negative", ErrInvalid, b, n)
		}
	}
	if c.maxInFlight < 1 {
		return fmt.Errorf("%w: MaxInFlight(%d): must be at least 1", ErrInvalid, c.maxInFlight)
	}
	return nil
}

// SlotsPerBroker sets how many moves may involve one broker at once,
// overriding the default of 5 (Cruise Control's
// num.concurrent.partition.movements.per.broker). A move uses one slot on
// every broker it adds a replica to and on every broker it removes one
// from: incoming and outgoing moves count alike.
func SlotsPerBroker(n int) BatchOption {
	return batchOptionFunc(func(c *batchConfig) { c.slots = n })
}

// BrokerSlots sets the slots of one broker, overriding [SlotsPerBroker] for
// it: more for a broker being drained that is the bottleneck (as Cruise
// Control's throttle_removed_broker=false), fewer for a fragile one, 0 to
// hold every move that involves it.
func BrokerSlots(broker int32, n int) BatchOption {
	return batchOptionFunc(func(c *batchConfig) {
		if c.brokerSlots == nil {
			c.brokerSlots = make(map[int32]int)
		}
		c.brokerSlots[broker] = n
	})
}

// MaxInFlight caps the moves in flight in the whole cluster, overriding the
// default of 1250 (Cruise Control's max.num.cluster.partition.movements,
// sized so a reassignment fits a 1 MB ZooKeeper znode).
func MaxInFlight(n int) BatchOption {
	return batchOptionFunc(func(c *batchConfig) { c.maxInFlight = n })
}

// OrderBy sets the order pending moves are submitted in: by the first of
// orders that tells two moves apart, else in the order they were given,
// which is the default. For example OrderBy(AtRiskFirst(risk), SmallFirst).
func OrderBy(orders ...Order) BatchOption {
	return batchOptionFunc(func(c *batchConfig) { c.orders = slices.Clone(orders) })
}

// A MoveState is where a move is in a [Batcher].
type MoveState uint8

// The states of a move.
const (
	MovePending   MoveState = iota // not submitted yet
	MoveInFlight                   // submitted and not finished
	MoveFinished                   // done: its partition has the target replicas
	MoveCancelled                  // given up; the Batcher does not submit it again unless requeued
)

// String returns "pending", "in flight", "finished" or "cancelled".
func (s MoveState) String() string {
	switch s {
	case MovePending:
		return "pending"
	case MoveInFlight:
		return "in flight"
	case MoveFinished:
		return "finished"
	case MoveCancelled:
		return "cancelled"
	}
	return fmt.Sprintf("MoveState(%d)", uint8(s))
}

// A Batch is the moves a [Batcher] hands out at once, to submit with one
// AlterPartitionAssignments request ([Moves.Request]).
type Batch struct {
	Moves Moves
}

// Len returns the number of moves in the batch.
func (b Batch) Len() int { return len(b.Moves) }

// BatchCounts counts a Batcher's moves by state.
type BatchCounts struct {
	Pending, InFlight, Finished, Cancelled int
}

// A Batcher decides which moves may run now. It follows Cruise Control's
// executor: each broker has slots, and a move needs a free slot on every
// broker it adds or removes a replica on; the cluster has a cap on moves in
// flight; moves are handed out in rounds in which each broker takes part in
// at most one new move, so the first moves spread over all brokers; and two
// moves of one partition never run at once (Kafka would reject the second).
// Within those rules the highest priority pending move goes first.
//
// The executor drives it: [Batcher.Next] hands out moves and counts them as
// in flight; [Batcher.Finished], [Batcher.Cancelled] and [Batcher.Requeue]
// report what became of them, freeing their slots; [Batcher.Adopt] counts
// moves already in flight, after a restart for example. Call Next again
// whenever moves finish to refill the freed slots. It is pure bookkeeping:
// no I/O, no clock.
//
// A Batcher is not safe for concurrent use.
type Batcher struct {
	cfg   batchConfig
	moves Moves
	state []MoveState
	n     [4]int // moves per state

	group []int32 // move → partition (moves of one partition share a group); nil if each move is its own
	busy  []bool  // partition → a move of it is in flight
	key   []int32 // moves sorted by topic, partition, index; nil if already so
	rank  []int32 // move → position in submission order; nil if the given order

	tOff  []int32 // touch[tOff[m]:tOff[m+1]]: dense brokers using a slot for move m
	touch []int32
	qOff  []int32 // q[qOff[d]:qOff[d+1]]: moves using a slot on d, by rank
	q     []int32
	head  []int32 // per broker: q entries before it are not pending
	free  []int32 // per broker: free slots; negative after Adopt beyond the limit
	ids   []int32 // dense → broker id
	idx   brokerIndex

	loose     []int32 // moves using no slot (replica order changes only), by rank
	looseHead int

	dirty        bool // something changed since Next last found nothing more to submit
	epoch, round uint32
	used         []uint32 // per broker: round it took a move in
	stuck        []uint32 // per broker: epoch its queue was found blocked
	cands        []int32
}

// NewBatcher returns a Batcher for moves, all pending. The moves are
// typically a [MovePlan]'s; they may include several moves of one partition
// (run one after the other, in the given order if the Order ties). The
// Batcher keeps moves and the replica slices in them, which must not be
// modified afterwards.
func NewBatcher(moves Moves, opts ...BatchOption) (*Batcher, error) {
	cfg := defaultBatchConfig()
	for _, o := range opts {
		o.apply(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	n := len(moves)
	b := &Batcher{cfg: cfg, moves: moves, state: make([]MoveState, n), dirty: true}
	b.n[MovePending] = n
	if err := b.index(); err != nil {
		return nil, err
	}
	order := b.submissionOrder()
	b.queue(order)
	return b, nil
}

// index checks the moves and, in one pass over them, numbers the groups of
// moves of one partition (which never run at once), lists the brokers
// that use a slot per move (those a move adds or removes a replica on) and
// counts the moves using each (in qOff[d+1], for queue). Moves
// in topic, partition order, as a plan gives them, need nothing more (and
// if no two share a partition, no group numbers); others are sorted by
// partition to find the groups.
func (b *Batcher) index() error {
	moves := b.moves
	n := len(moves)
	b.tOff = make([]int32, n+1)
	b.qOff = make([]int32, 1, 64)
	// A move that changes one replica uses two slots; room for a quarter
	// of the moves to change two, as when two brokers of a partition
	// retire.
	b.touch = make([]int32, 0, 2*n+n/4)
	sorted := true
	g := int32(-1)
	for i := range moves {
		m := &moves[i]
		if len(m.To) == 0 {
			return &PartitionError{Topic: m.Topic, Partition: m.Partition, Reason: "move has no target replicas", Err: ErrInvalid}
		}
		if sorted {
			c := 1 // the first move starts a group
			if i > 0 {
				c = compareMoves(&moves[i-1], m)
			}
			switch {
			case i > 0 && c > 0:
				sorted = false
			case c == 0 && b.group == nil:
				// The first partition with two moves: groups from here
				// on, each move its own before.
				b.group = make([]int32, n)
				for k := range i {
					b.group[k] = int32(k)
				}
			}
			if c != 0 {
				g++
			}
			if b.group != nil {
				b.group[i] = g
			}
		}
		b.addTouches(m.From, m.To)
		b.tOff[i+1] = int32(len(b.touch))
	}
	if !sorted {
		b.groupUnsorted()
		return nil
	}
	b.busy = make([]bool, g+1)
	return nil
}

// addTouches appends to touch the dense brokers of a move from → to that
// use a slot: those in to and not in from, then those in from and not in
// to, each once.
func (b *Batcher) addTouches(from, to []int32) {
	start := len(b.touch)
	if len(from) == 3 && len(to) == 3 {
		// The usual replication factor, unrolled.
		f0, f1, f2, t0, t1, t2 := from[0], from[1], from[2], to[0], to[1], to[2]
		for _, id := range [3]int32{t0, t1, t2} {
			if id != f0 && id != f1 && id != f2 {
				b.addTouch(start, id)
			}
		}
		for _, id := range [3]int32{f0, f1, f2} {
			if id != t0 && id != t1 && id != t2 {
				b.addTouch(start, id)
			}
		}
		return
	}
	if len(from) > 64 {
		for _, id := range to {
			if !slices.Contains(from, id) {
				b.addTouch(start, id)
			}
		}
		for _, id := range from {
			if !slices.Contains(to, id) {
				b.addTouch(start, id)
			}
		}
		return
	}
	var kept uint64 // bit k: from[k] is in to
	for _, id := range to {
		found := false
		for k, f := range from {
			if f == id {
				kept |= 1 << k
				found = true
			}
		}
		if !found {
			b.addTouch(start, id)
		}
	}
	for k, id := range from {
		if kept&(1<<k) == 0 {
			b.addTouch(start, id)
		}
	}
}

// addTouch adds broker id to the brokers using a slot for the move whose
// list starts at touch[start], unless it is there already.
func (b *Batcher) addTouch(start int, id int32) {
	d, ok := b.idx.get(id)
	if !ok {
		d = int32(len(b.ids))
		b.ids = append(b.ids, id)
		b.idx.put(id, d)
		b.qOff = append(b.qOff, 0)
	}
	if !slices.Contains(b.touch[start:], d) {
		b.touch = append(b.touch, d)
		b.qOff[d+1]++
	}
}

// groupUnsorted numbers the groups of moves given out of partition order:
// it sorts them by partition (keeping the given order within one) in key.
func (b *Batcher) groupUnsorted() {
	n := len(b.moves)
	b.group = make([]int32, n)
	b.key = make([]int32, n)
	for i := range b.key {
		b.key[i] = int32(i)
	}
	slices.SortFunc(b.key, func(x, y int32) int {
		if c := compareMoves(&b.moves[x], &b.moves[y]); c != 0 {
			return c
		}
		return cmp.Compare(x, y)
	})
	g := int32(-1)
	for k := range n {
		i := b.at(k)
		if k == 0 || compareMoves(&b.moves[b.at(k-1)], &b.moves[i]) != 0 {
			g++
		}
		b.group[i] = g
	}
	b.busy = make([]bool, g+1)
}

// submissionOrder returns the move indexes in the order the orderings give
// (stable: plan order among equals), and ranks the moves by it. Without
// orderings that is the given order, and it returns nil: rank is then nil
// too, as a move's rank is its index.
func (b *Batcher) submissionOrder() []int32 {
	if len(b.cfg.orders) == 0 {
		return nil
	}
	n := len(b.moves)
	order := make([]int32, n)
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(x, y int32) int {
		for _, o := range b.cfg.orders {
			if c := o(&b.moves[x], &b.moves[y]); c != 0 {
				return c
			}
		}
		return 0
	})
	b.rank = make([]int32, n)
	for r, i := range order {
		b.rank[i] = int32(r)
	}
	return order
}

// rankOf returns move i's position in submission order.
func (b *Batcher) rankOf(i int32) int32 {
	if b.rank == nil {
		return i
	}
	return b.rank[i]
}

// queue builds, per broker, the queue of the moves using it by rank, the
// moves using no broker's slot, and each broker's free slots. order is the
// submission order, nil for the given order.
func (b *Batcher) queue(order []int32) {
	nb := len(b.ids)
	for d := range nb {
		b.qOff[d+1] += b.qOff[d]
	}
	b.q = make([]int32, len(b.touch))
	b.head = slices.Clone(b.qOff[:nb])
	next := slices.Clone(b.head)
	place := func(i int32) {
		ts := b.touches(int(i))
		if len(ts) == 0 {
			b.loose = append(b.loose, i)
		}
		for _, d := range ts {
			b.q[next[d]] = i
			next[d]++
		}
	}
	if order == nil {
		for i := range int32(len(b.moves)) {
			place(i)
		}
	} else {
		for _, i := range order {
			place(i)
		}
	}
	b.free = make([]int32, nb)
	for d, id := range b.ids {
		s, ok := b.cfg.brokerSlots[id]
		if !ok {
			s = b.cfg.slots
		}
		b.free[d] = int32(s)
	}
	b.used = make([]uint32, nb)
	b.stuck = make([]uint32, nb)
}

// groupOf returns the group of move i.
func (b *Batcher) groupOf(i int) int32 {
	if b.group == nil {
		return int32(i)
	}
	return b.group[i]
}

func (b *Batcher) at(k int) int {
	if b.key == nil {
		return k
	}
	return int(b.key[k])
}

func (b *Batcher) touches(i int) []int32 { return b.touch[b.tOff[i]:b.tOff[i+1]] }

// Counts returns how many moves are in each state.
func (b *Batcher) Counts() BatchCounts {
	return BatchCounts{Pending: b.n[MovePending], InFlight: b.n[MoveInFlight], Finished: b.n[MoveFinished], Cancelled: b.n[MoveCancelled]}
}

// Done reports whether every move has finished or been cancelled.
func (b *Batcher) Done() bool { return b.n[MovePending] == 0 && b.n[MoveInFlight] == 0 }

// InFlight returns the moves in flight, in the order they were given.
func (b *Batcher) InFlight() Moves {
	var out Moves
	for i, s := range b.state {
		if s == MoveInFlight {
			out = append(out, b.moves[i])
		}
	}
	return out
}

// Next returns the moves to submit now and counts them as in flight: as
// many as the free slots and the cluster cap allow, highest priority first,
// at most one new move per broker per round. It returns an empty Batch when
// nothing can start until something finishes, and does no work then.
func (b *Batcher) Next() Batch {
	if !b.dirty {
		return Batch{}
	}
	defer func() { b.dirty = false }() // submitting marks it dirty; nothing else changed
	var out Moves
	room := b.cfg.maxInFlight - b.n[MoveInFlight]

	// Moves that change only the order of replicas need no slot.
	for k := b.looseHead; k < len(b.loose) && room > 0; k++ {
		i := int(b.loose[k])
		if b.state[i] != MovePending {
			if k == b.looseHead {
				b.looseHead++
			}
			continue
		}
		if !b.busy[b.groupOf(i)] {
			out = append(out, b.submit(i))
			room--
		}
	}

	b.epoch++
	for room > 0 {
		b.round++
		// Brokers that can take part, best pending move first.
		b.cands = b.cands[:0]
		for d := range b.ids {
			if b.free[d] > 0 && b.stuck[d] != b.epoch && b.advance(d) {
				b.cands = append(b.cands, int32(d))
			}
		}
		slices.SortFunc(b.cands, func(x, y int32) int {
			return cmp.Compare(b.rankOf(b.q[b.head[x]]), b.rankOf(b.q[b.head[y]]))
		})
		picked := 0
		for _, d := range b.cands {
			if room == 0 {
				break
			}
			if b.used[d] == b.round || b.free[d] <= 0 {
				continue
			}
			if i := b.scan(int(d)); i >= 0 {
				out = append(out, b.submit(i))
				room--
				picked++
			}
		}
		if picked == 0 {
			break
		}
	}
	return Batch{Moves: out}
}

// advance moves broker d's queue head past moves that are not pending and
// reports whether any remain.
func (b *Batcher) advance(d int) bool {
	end := b.qOff[d+1]
	for b.head[d] < end && b.state[b.q[b.head[d]]] != MovePending {
		b.head[d]++
	}
	return b.head[d] < end
}

// scan returns broker d's best pending move that can start in this round,
// or -1. If none could start even in a later round of this call (every one
// waits for a full broker or a busy partition), d is marked stuck.
func (b *Batcher) scan(d int) int {
	roundBlocked := false
	for _, i := range b.q[b.head[d]:b.qOff[d+1]] {
		if b.state[i] != MovePending || b.busy[b.groupOf(int(i))] {
			continue
		}
		ok := true
		for _, t := range b.touches(int(i)) {
			if b.free[t] <= 0 {
				ok = false
				break
			}
			if b.used[t] == b.round {
				ok, roundBlocked = false, true
			}
		}
		if ok {
			return int(i)
		}
	}
	if !roundBlocked {
		b.stuck[d] = b.epoch
	}
	return -1
}

func (b *Batcher) submit(i int) Move {
	b.setState(i, MoveInFlight)
	for _, t := range b.touches(i) {
		b.used[t] = b.round
	}
	return b.moves[i]
}

// setState moves i to s, keeping slots, partitions and counts right.
func (b *Batcher) setState(i int, s MoveState) {
	old := b.state[i]
	if old == s {
		return
	}
	b.dirty = true
	b.state[i] = s
	b.n[old]--
	b.n[s]++
	if old == MoveInFlight {
		b.busy[b.groupOf(i)] = false
		for _, t := range b.touches(i) {
			b.free[t]++
		}
	}
	if s == MoveInFlight {
		b.busy[b.groupOf(i)] = true
		for _, t := range b.touches(i) {
			b.free[t]--
		}
	}
	if s == MovePending {
		// Rewind the queues that may have skipped past it.
		for _, t := range b.touches(i) {
			q := b.q[b.qOff[t]:b.qOff[t+1]]
			k, _ := slices.BinarySearchFunc(q, b.rankOf(int32(i)), func(e, r int32) int { return cmp.Compare(b.rankOf(e), r) })
			b.head[t] = min(b.head[t], b.qOff[t]+int32(k))
		}
		if len(b.touches(i)) == 0 {
			k, _ := slices.BinarySearchFunc(b.loose, b.rankOf(int32(i)), func(e, r int32) int { return cmp.Compare(b.rankOf(e), r) })
			b.looseHead = min(b.looseHead, k)
		}
	}
}

// Finished records that moves completed: their partitions have the target
// replicas. Their slots are free again. A pending move may be finished too,
// when a restarted executor learns it completed before the crash, and so
// may a cancelled one whose copy completed before the cancel took effect. A
// move is found by topic and partition, and by To if several moves of the
// partition were given.
func (b *Batcher) Finished(ms ...Move) error {
	return b.apply(ms, MoveFinished, MoveInFlight, MovePending, MoveCancelled)
}

// Cancelled records that moves were given up (a dead move the executor
// cancelled, or a move it could not submit). Their slots are free again and
// they are not handed out again unless requeued.
func (b *Batcher) Cancelled(ms ...Move) error {
	return b.apply(ms, MoveCancelled, MoveInFlight, MovePending)
}

// Requeue puts in-flight or cancelled moves back to pending, to be handed
// out again: for a submission that failed, or a move the cluster forgot
// (after a controller failover, Cruise Control re-executes such moves).
func (b *Batcher) Requeue(ms ...Move) error {
	return b.apply(ms, MovePending, MoveInFlight, MoveCancelled)
}

// Adopt records that pending moves are already in flight, for an executor
// that restarts and finds its earlier moves still running. They use their
// slots even beyond the limits; new moves start only as slots come free.
func (b *Batcher) Adopt(ms ...Move) error {
	return b.apply(ms, MoveInFlight, MovePending)
}

// apply moves each of ms that is in one of the from states to state to.
// Moves in other states are left alone; unknown moves are reported.
func (b *Batcher) apply(ms []Move, to MoveState, from ...MoveState) error {
	var errs []error
	for _, m := range ms {
		i := b.find(&m, from)
		if i == -1 {
			errs = append(errs, &PartitionError{Topic: m.Topic, Partition: m.Partition, Reason: "move " + m.String() + " is not in the batcher's plan", Err: ErrUnknownMove})
			continue
		}
		if i >= 0 {
			b.setState(i, to)
		}
	}
	return errors.Join(errs...)
}

// find returns the move matching m (by topic, partition and, if m.To is
// set and several moves share the partition, To) in the first of the
// states prefer that has one; -2 if the moves match but none is in those
// states; -1 if none matches.
func (b *Batcher) find(m *Move, prefer []MoveState) int {
	lo := sort.Search(len(b.moves), func(k int) bool { return compareMoves(&b.moves[b.at(k)], m) >= 0 })
	var match []int
	for k := lo; k < len(b.moves); k++ {
		i := b.at(k)
		if compareMoves(&b.moves[i], m) != 0 {
			break
		}
		match = append(match, i)
	}
	if len(match) > 1 && m.To != nil {
		match = slices.DeleteFunc(match, func(i int) bool { return !slices.Equal(b.moves[i].To, m.To) })
	}
	if len(match) == 0 {
		return -1
	}
	for _, s := range prefer {
		for _, i := range match {
			if b.state[i] == s {
				return i
			}
		}
	}
	return -2
}
