package reassign

import (
	"fmt"
	"slices"
	"strings"
)

// A PartitionAssignment is one partition's current assignment, the unit that
// [Assignment.Add] takes and [Assignment.At] returns.
type PartitionAssignment struct {
	Topic     string
	Partition int32
	// Replicas are the broker ids holding a replica, in assignment order: the
	// first is the preferred leader.
	Replicas []int32
	// Leader is the broker that leads the partition now, or -1 if it has no
	// leader or the caller does not know it.
	Leader int32
	// Bytes is the size of one replica, or 0 if unknown. The planner copies it
	// into [Move.Bytes]; the batcher's size orderings use it.
	Bytes int64
}

// part is one partition in compact form: ids are indexes, replicas live in a
// shared arena. 20 bytes per partition plus 4 per replica.
type part struct {
	topic     int32 // index into Assignment.topics
	partition int32
	leader    int32 // broker id, -1 if none
	off       int32 // Replicas are reps[off : off+n]
	n         int32
}

// An rfRun is a stretch of partitions, in storage order, with one replication
// factor: parts[first:] up to the next run's first (or the end), each with
// rf replicas, which start at reps[off]. A whole cluster of one replication
// factor is one run, so that a pass over every replica reads reps alone.
type rfRun struct{ first, rf, off int32 }

// A brokerTally is one broker's replicas and preferred leaderships (first
// replicas) in an Assignment.
type brokerTally struct{ id, replicas, leaders int32 }

// An Assignment is the current placement of every partition, stored compactly
// so that a million partitions fit in tens of megabytes: topic names are
// interned once, replicas share one array and nothing is stored per
// partition that is not needed. It keeps each broker's replica and leader
// counts as partitions are added, so that a plan need not count them. Build it with [Assignment.Add] in any order;
// the planner always works in topic, partition order.
//
// The zero value is an empty Assignment ready to use. An Assignment is not
// safe for concurrent use while it is being built; once built it is only
// read, and may be shared.
type Assignment struct {
	topics   []string
	topicIdx map[string]int32
	first    []int32 // per topic: index of its first partition in parts
	parts    []part
	bytes    []int64 // nil until a partition with Bytes != 0 is added
	reps     []int32
	runs     []rfRun
	// tally counts the replicas and first replicas of every broker in a
	// replica list, in the order first seen; brokers maps its ids there.
	tally    []brokerTally
	brokers  brokerIndex
	unsorted bool // some partition was added out of topic, partition order
	// scattered: some topic's partitions were not added one after the
	// other in partition order (unsorted without it: only the topics are
	// out of order).
	scattered bool
}

// Add records one partition. It copies p.Replicas, so the caller may reuse
// the slice. It rejects an empty replica list, a replica listed twice and a
// negative partition number; a partition added twice is reported by
// [PlanMoves].
func (a *Assignment) Add(p PartitionAssignment) error {
	switch {
	case p.Partition < 0:
		return &PartitionError{Topic: p.Topic, Partition: p.Partition, Reason: "negative partition number", Err: ErrInvalid}
	case len(p.Replicas) == 0:
		return &PartitionError{Topic: p.Topic, Partition: p.Partition, Reason: "no replicas", Err: ErrInvalid}
	case len(p.Replicas) > 1<<15:
		return &PartitionError{Topic: p.Topic, Partition: p.Partition, Reason: "too many replicas", Err: ErrInvalid}
	}
	for i, r := range p.Replicas {
		if slices.Contains(p.Replicas[:i], r) {
			return &PartitionError{Topic: p.Topic, Partition: p.Partition, Reason: fmt.Sprintf("broker %d listed twice in replicas %v", r, p.Replicas), Err: ErrInvalid}
		}
	}
	t, seen := a.intern(p.Topic)
	if n := len(a.parts); n > 0 {
		prev := a.parts[n-1]
		switch {
		case prev.topic == t && prev.partition >= p.Partition:
			a.unsorted, a.scattered = true, true
		case prev.topic != t && seen:
			a.unsorted, a.scattered = true, true // the topic's partitions are split
		case prev.topic != t && !a.unsorted:
			a.unsorted = strings.Compare(a.topics[prev.topic], p.Topic) > 0
		}
	}
	leader := p.Leader
	if leader < 0 {
		leader = -1
	}
	if k := len(a.runs); k == 0 || a.runs[k-1].rf != int32(len(p.Replicas)) {
		a.runs = append(a.runs, rfRun{first: int32(len(a.parts)), rf: int32(len(p.Replicas)), off: int32(len(a.reps))})
	}
	a.parts = append(a.parts, part{topic: t, partition: p.Partition, leader: leader, off: int32(len(a.reps)), n: int32(len(p.Replicas))})
	a.reps = append(a.reps, p.Replicas...)
	for j, id := range p.Replicas {
		k, ok := a.brokers.get(id)
		if !ok {
			k = int32(len(a.tally))
			a.tally = append(a.tally, brokerTally{id: id})
			a.brokers.put(id, k)
		}
		a.tally[k].replicas++
		if j == 0 {
			a.tally[k].leaders++
		}
	}
	if p.Bytes != 0 && a.bytes == nil {
		a.bytes = make([]int64, len(a.parts)-1, cap(a.parts))
	}
	if a.bytes != nil {
		a.bytes = append(a.bytes, p.Bytes)
	}
	return nil
}

// intern returns the index of topic, adding it if new, and whether it was
// known. Consecutive partitions of one topic, the common case, cost a string
// comparison and no map lookup.
func (a *Assignment) intern(topic string) (int32, bool) {
	if n := len(a.parts); n > 0 {
		if t := a.parts[n-1].topic; a.topics[t] == topic {
			return t, true
		}
	}
	if t, ok := a.topicIdx[topic]; ok {
		return t, true
	}
	if a.topicIdx == nil {
		a.topicIdx = make(map[string]int32)
	}
	t := int32(len(a.topics))
	a.topics = append(a.topics, topic)
	a.first = append(a.first, int32(len(a.parts)))
	a.topicIdx[topic] = t
	return t, false
}

// Len returns the number of partitions added.
func (a *Assignment) Len() int { return len(a.parts) }

// At returns the i-th partition added, 0 <= i < Len. Its Replicas slice
// points into the Assignment and must not be modified.
func (a *Assignment) At(i int) PartitionAssignment {
	p := a.parts[i]
	return PartitionAssignment{
		Topic:     a.topics[p.topic],
		Partition: p.partition,
		Replicas:  a.reps[p.off : p.off+p.n : p.off+p.n],
		Leader:    p.leader,
		Bytes:     a.sizeOf(i),
	}
}

func (a *Assignment) sizeOf(i int) int64 {
	if a.bytes == nil {
		return 0
	}
	return a.bytes[i]
}

// Grow reserves room for n more partitions with rf replicas each, so that
// building a large Assignment does not reallocate.
func (a *Assignment) Grow(n, rf int) {
	a.parts = slices.Grow(a.parts, n)
	a.reps = slices.Grow(a.reps, n*rf)
}

// A span is the partitions at positions lo..hi-1 of a sequence.
type span struct{ lo, hi int32 }

// A sequence lists the partitions of an Assignment in topic, partition order:
// the positions of spans, in order, where position k is partition perm[k],
// or partition k if perm is nil.
type sequence struct {
	spans []span
	perm  []int32
}

// at returns the partition at position k.
func (q *sequence) at(k int32) int {
	if q.perm == nil {
		return int(k)
	}
	return int(q.perm[k])
}

// order returns the partitions in topic, partition order; it reports a
// partition added twice. Partitions added in that order, the usual input,
// are one span. Partitions added topic by topic, each topic's in order, but
// with the topics out of order (as "t9" before "t10"), are one span per
// topic, the spans sorted by topic name: no per-partition work. Otherwise it
// sorts the topics by name, places partitions by topic with a counting
// sort, and sorts a topic's partitions only if they were not added in
// order.
func (a *Assignment) order() (sequence, error) {
	n := int32(len(a.parts))
	if !a.unsorted {
		return sequence{spans: []span{{0, n}}}, nil
	}
	byName := make([]int32, len(a.topics))
	for i := range byName {
		byName[i] = int32(i)
	}
	slices.SortFunc(byName, func(x, y int32) int { return strings.Compare(a.topics[x], a.topics[y]) })
	if !a.scattered {
		// Topics were interned in the order they were added, so topic t's
		// partitions run from first[t] to first[t+1].
		spans := make([]span, len(byName))
		for k, t := range byName {
			hi := n
			if int(t)+1 < len(a.first) {
				hi = a.first[t+1]
			}
			spans[k] = span{a.first[t], hi}
		}
		return sequence{spans: spans}, nil
	}
	count := make([]int32, len(a.topics))
	for _, p := range a.parts {
		count[p.topic]++
	}
	next := make([]int32, len(a.topics)) // where a topic's next partition goes
	off := int32(0)
	for _, t := range byName {
		next[t] = off
		off += count[t]
	}
	ord := make([]int32, len(a.parts))
	for i, p := range a.parts {
		ord[next[p.topic]] = int32(i)
		next[p.topic]++
	}
	for _, t := range byName {
		seg := ord[next[t]-count[t] : next[t]]
		byPartition := func(x, y int32) int { return int(a.parts[x].partition) - int(a.parts[y].partition) }
		if !slices.IsSortedFunc(seg, byPartition) {
			slices.SortStableFunc(seg, byPartition)
		}
		for k := 1; k < len(seg); k++ {
			if q := a.parts[seg[k]]; a.parts[seg[k-1]].partition == q.partition {
				return sequence{}, &PartitionError{Topic: a.topics[q.topic], Partition: q.partition, Reason: "added twice", Err: ErrInvalid}
			}
		}
	}
	return sequence{spans: []span{{0, n}}, perm: ord}, nil
}
