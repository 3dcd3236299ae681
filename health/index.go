package health

import (
	"slices"
	"sync"
	"sync/atomic"
)

// A ref locates a partition in a Snapshot: Topics[t].Partitions[p].
type ref struct{ t, p int32 }

// An index is the lazily built lookup structure a Snapshot shares with its
// copies. Building it costs several passes over the replicas, more than one
// verdict that scans every partition, so it is built only once the snapshot
// proves to be used again: the first scanLimit lookups scan, the next one
// builds the index from the snapshot that asks.
type index struct {
	once  sync.Once
	data  atomic.Pointer[indexData]
	scans atomic.Int32 // lookups answered by scanning
}

// scanLimit is how many lookups (verdicts, Counts, EachPartitionOn, Topic) a
// snapshot answers by scanning before it builds its index. A gate that takes
// a new snapshot at every poll asks one or two questions of each, so it
// never pays for an index; a caller asking many questions of one snapshot
// pays at most scanLimit scans more than before.
const scanLimit = 2

// indexData is an index by node in compressed sparse row form: the refs of
// the partitions node n hosts are refs[start[slot(n)]:start[slot(n)+1]], in
// topic and partition order. Building it costs two passes over the replicas
// and 8 bytes per replica.
type indexData struct {
	// topics and ntopics identify the Topics slice the index was built
	// from; a snapshot whose Topics differ does not use it.
	topics  *Topic
	ntopics int

	slots  idMap   // node id → slot
	start  []int32 // slot → first ref; len(start) == slots+1
	refs   []ref
	live   liveness
	counts Counts
	byName map[string]int32
}

// matches reports whether d was built from s's Topics.
func (d *indexData) matches(s *Snapshot) bool {
	return d.ntopics == len(s.Topics) && (len(s.Topics) == 0 || d.topics == &s.Topics[0])
}

// cached returns the snapshot's shared index, building it if it is not
// built yet, or nil if the snapshot has none or it was built from other
// Topics.
func (s *Snapshot) cached() *indexData {
	if s.idx == nil {
		return nil
	}
	s.idx.once.Do(func() { s.idx.data.Store(buildIndex(s)) })
	if d := s.idx.data.Load(); d.matches(s) {
		return d
	}
	return nil
}

// lookup returns the index a lookup should use, or nil if it should scan
// the partitions instead: the shared index if it is built; else, once the
// snapshot has answered scanLimit lookups by scanning, the index built now;
// nil for a snapshot without an index or whose index was built from other
// Topics.
func (s *Snapshot) lookup() *indexData {
	if s.idx == nil {
		return nil
	}
	if d := s.idx.data.Load(); d != nil {
		if d.matches(s) {
			return d
		}
		return nil
	}
	if s.idx.scans.Add(1) <= scanLimit {
		return nil
	}
	return s.cached()
}

// A liveness says which nodes a snapshot shows as down: none if it lists no
// brokers, else those not registered or fenced.
type liveness struct {
	known bool  // the snapshot lists brokers
	up    idMap // id → 1 if up, 2 if registered but fenced
}

func newLiveness(brokers []Broker) liveness {
	l := liveness{known: len(brokers) > 0}
	for _, b := range brokers {
		if b.Fenced {
			l.up.set(b.ID, 2)
		} else {
			l.up.set(b.ID, 1)
		}
	}
	return l
}

// isDown reports whether node is known to be down: the snapshot lists
// brokers and node is not among them, or is fenced.
func (l *liveness) isDown(node int32) bool {
	return l.known && l.up.lookup(node) != 1
}

// countsOf returns the counts of s, in one scan of its partitions.
func countsOf(s *Snapshot) Counts {
	c := brokerCounts(s)
	for ti := range s.Topics {
		t := &s.Topics[ti]
		m := int(t.EffectiveMinISR())
		for pi := range t.Partitions {
			c.add(m, &t.Partitions[pi])
		}
	}
	return c
}

// brokerCounts returns the counts of s that do not depend on partitions.
func brokerCounts(s *Snapshot) Counts {
	c := Counts{Topics: len(s.Topics)}
	for _, b := range s.Brokers {
		c.Brokers++
		if b.Fenced {
			c.Fenced++
		}
	}
	return c
}

// add counts partition p of a topic whose effective min.insync.replicas is
// m.
func (c *Counts) add(m int, p *Partition) {
	c.Partitions++
	c.Replicas += len(p.Replicas)
	if p.Leader < 0 {
		c.Offline++
	} else {
		// Kafka caps min.insync.replicas at the replica count
		// (Partition.effectiveMinIsr): acks=all writes to an RF 1
		// partition succeed even with min.insync.replicas 2.
		switch isr, pm := len(p.ISR), min(m, max(len(p.Replicas), 1)); {
		case isr < pm:
			c.UnderMinISR++
		case isr == pm:
			c.AtMinISR++
		}
		if len(p.Replicas) > 0 && p.Replicas[0] != p.Leader {
			c.NotPreferredLeader++
		}
	}
	if len(p.ISR) < len(p.Replicas) {
		c.UnderReplicated++
	}
}

// eachOn calls fn for every partition node hosts, in the snapshot's order:
// with x, the index, only those; without, scanning every partition.
func (s *Snapshot) eachOn(x *indexData, node int32, fn func(t *Topic, p *Partition)) {
	if x != nil {
		for _, r := range x.refsOf(node) {
			t := &s.Topics[r.t]
			fn(t, &t.Partitions[r.p])
		}
		return
	}
	for ti := range s.Topics {
		t := &s.Topics[ti]
		for pi := range t.Partitions {
			if p := &t.Partitions[pi]; slices.Contains(p.Replicas, node) {
				fn(t, p)
			}
		}
	}
}

func buildIndex(s *Snapshot) *indexData {
	d := &indexData{
		ntopics: len(s.Topics),
		live:    newLiveness(s.Brokers),
		byName:  make(map[string]int32, len(s.Topics)),
		counts:  brokerCounts(s),
	}
	if len(s.Topics) > 0 {
		d.topics = &s.Topics[0]
	}

	// Pass 1: count replicas per node, and the counts.
	var perSlot []int32
	for ti := range s.Topics {
		t := &s.Topics[ti]
		d.byName[t.Name] = int32(ti)
		m := int(t.EffectiveMinISR())
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			d.counts.add(m, p)
			for i, r := range p.Replicas {
				if slices.Contains(p.Replicas[:i], r) {
					continue // a malformed duplicate; index the partition once
				}
				sl, ok := d.slots.get(r)
				if !ok {
					sl = int32(len(perSlot))
					d.slots.set(r, sl)
					perSlot = append(perSlot, 0)
				}
				perSlot[sl]++
			}
		}
	}

	// Pass 2: fill the refs, node by node.
	d.start = make([]int32, len(perSlot)+1)
	for i, n := range perSlot {
		d.start[i+1] = d.start[i] + n
	}
	next := perSlot // reuse: next free position per slot
	copy(next, d.start[:len(perSlot)])
	d.refs = make([]ref, d.start[len(perSlot)])
	for ti := range s.Topics {
		t := &s.Topics[ti]
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			for i, r := range p.Replicas {
				if slices.Contains(p.Replicas[:i], r) {
					continue
				}
				sl, _ := d.slots.get(r)
				d.refs[next[sl]] = ref{int32(ti), int32(pi)}
				next[sl]++
			}
		}
	}
	return d
}

// refsOf returns the partitions node hosts.
func (d *indexData) refsOf(node int32) []ref {
	sl, ok := d.slots.get(node)
	if !ok {
		return nil
	}
	return d.refs[d.start[sl]:d.start[sl+1]]
}

// denseLimit bounds the ids an idMap stores in its slice; larger (or
// negative) ids go to its map.
const denseLimit = 1 << 20

// An idMap maps node ids to small non-negative int32 values. Node ids are
// usually small, so it keeps a slice indexed by id and falls back to a map.
type idMap struct {
	dense  []int32 // value+1, 0 for absent
	sparse map[int32]int32
}

func (m *idMap) set(id, v int32) {
	if id >= 0 && id < denseLimit {
		if int(id) >= len(m.dense) {
			m.dense = slices.Grow(m.dense, int(id)+1-len(m.dense))[:id+1]
		}
		m.dense[id] = v + 1
		return
	}
	if m.sparse == nil {
		m.sparse = make(map[int32]int32)
	}
	m.sparse[id] = v
}

func (m *idMap) get(id int32) (int32, bool) {
	if id >= 0 && id < denseLimit {
		if int(id) < len(m.dense) && m.dense[id] != 0 {
			return m.dense[id] - 1, true
		}
		return 0, false
	}
	v, ok := m.sparse[id]
	return v, ok
}

// lookup returns the value for id, 0 if absent.
func (m *idMap) lookup(id int32) int32 {
	v, _ := m.get(id)
	return v
}
