package health

import (
	"slices"
	"sync"
)

// A ref locates a partition in a Snapshot: Topics[t].Partitions[p].
type ref struct{ t, p int32 }

// An index is the lazily built lookup structure a Snapshot shares with its
// copies. It is built once, on first use, from the snapshot that first needs
// it.
type index struct {
	once sync.Once
	data *indexData
}

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
	live   bool    // whether the snapshot lists brokers (liveness known)
	down   []int32 // sorted ids of replica holders and brokers that are not up
	counts Counts
	byName map[string]int32
}

// cached returns the snapshot's shared index, building it on first use, or
// nil if the snapshot has none or it was built from other Topics.
func (s *Snapshot) cached() *indexData {
	if s.idx == nil {
		return nil
	}
	s.idx.once.Do(func() { s.idx.data = buildIndex(s) })
	d := s.idx.data
	if d.ntopics != len(s.Topics) || (len(s.Topics) > 0 && d.topics != &s.Topics[0]) {
		return nil
	}
	return d
}

// index returns the shared index, or builds a throwaway one.
func (s *Snapshot) index() *indexData {
	if d := s.cached(); d != nil {
		return d
	}
	return buildIndex(s)
}

func buildIndex(s *Snapshot) *indexData {
	d := &indexData{
		ntopics: len(s.Topics),
		live:    len(s.Brokers) > 0,
		byName:  make(map[string]int32, len(s.Topics)),
	}
	if len(s.Topics) > 0 {
		d.topics = &s.Topics[0]
	}
	c := &d.counts
	var up idMap // id → 1 if up, 2 if registered but fenced
	for _, b := range s.Brokers {
		c.Brokers++
		if b.Fenced {
			c.Fenced++
			up.set(b.ID, 2)
			d.down = append(d.down, b.ID)
		} else {
			up.set(b.ID, 1)
		}
	}
	c.Topics = len(s.Topics)

	// Pass 1: count replicas per node, and the counts.
	var perSlot []int32
	for ti := range s.Topics {
		t := &s.Topics[ti]
		d.byName[t.Name] = int32(ti)
		m := int(t.EffectiveMinISR())
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			c.Partitions++
			c.Replicas += len(p.Replicas)
			for i, r := range p.Replicas {
				if slices.Contains(p.Replicas[:i], r) {
					continue // a malformed duplicate; index the partition once
				}
				sl, ok := d.slots.get(r)
				if !ok {
					sl = int32(len(perSlot))
					d.slots.set(r, sl)
					perSlot = append(perSlot, 0)
					if d.live && up.lookup(r) == 0 {
						d.down = append(d.down, r)
					}
				}
				perSlot[sl]++
			}
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
	}
	slices.Sort(d.down)
	d.down = slices.Compact(d.down)

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

// isDown reports whether node is known to be down: the snapshot lists
// brokers and node is not among them, or is fenced.
func (d *indexData) isDown(node int32) bool {
	if len(d.down) == 0 {
		return false
	}
	_, found := slices.BinarySearch(d.down, node)
	return found
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
