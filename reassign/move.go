package reassign

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
)

// A Move changes one partition's replicas from From to To with one
// AlterPartitionAssignments request. It is a plain value: it can be
// journaled as JSON and compared with go-cmp.
type Move struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// From are the replicas before the move, first the preferred leader.
	From []int32 `json:"from"`
	// To are the replicas after the move. The first is the preferred
	// leader, and the leader Kafka elects when the move completes if the
	// current leader is not in To.
	To []int32 `json:"to"`
	// Bytes is the size of one replica, 0 if unknown: roughly what each
	// broker in [Move.Adding] has to copy.
	Bytes int64 `json:"bytes,omitempty"`
}

// Adding returns the brokers in To that are not in From: those that receive
// a new replica and copy its data.
func (m Move) Adding() []int32 { return minus(m.To, m.From) }

// Removing returns the brokers in From that are not in To: those whose
// replica is deleted when the move completes.
func (m Move) Removing() []int32 { return minus(m.From, m.To) }

// Brokers returns every broker the move involves, From and To, sorted.
func (m Move) Brokers() []int32 {
	bs := slices.Concat(m.From, m.To)
	slices.Sort(bs)
	return slices.Compact(bs)
}

// String renders the move as "orders-3 [1 2 3]→[1 2 4]".
func (m Move) String() string {
	return fmt.Sprintf("%s-%d %v→%v", m.Topic, m.Partition, m.From, m.To)
}

func minus(a, b []int32) []int32 {
	var out []int32
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// compareMoves orders moves by topic, then partition. Moves of one plan
// share each topic's string, so the equality test first is usually a
// pointer comparison.
func compareMoves(a, b *Move) int {
	if a.Topic != b.Topic {
		return strings.Compare(a.Topic, b.Topic)
	}
	return cmp.Compare(a.Partition, b.Partition)
}

// Moves is a list of moves. [PlanMoves] returns them in topic, partition
// order.
type Moves []Move

// Sorted returns a copy of ms sorted by topic, then partition; moves of one
// partition keep their relative order.
func (ms Moves) Sorted() Moves {
	out := slices.Clone(ms)
	slices.SortStableFunc(out, func(a, b Move) int { return compareMoves(&a, &b) })
	return out
}

// Each calls fn for every move, in order.
func (ms Moves) Each(fn func(Move)) {
	for _, m := range ms {
		fn(m)
	}
}

// Bytes returns the total number of bytes the moves copy: each move's Bytes
// once per broker it adds.
func (ms Moves) Bytes() int64 {
	var n int64
	for _, m := range ms {
		n += m.Bytes * int64(len(minus(m.To, m.From)))
	}
	return n
}

// Request returns the moves as a kadm request, ready for
// kadm.Client.AlterPartitionAssignments. The replica slices are shared with
// the moves.
func (ms Moves) Request() kadm.AlterPartitionAssignmentsReq {
	req := make(kadm.AlterPartitionAssignmentsReq)
	for _, m := range ms {
		req.Assign(m.Topic, m.Partition, m.To)
	}
	return req
}

// A MoveResult is the outcome of one move, as an executor reports it.
type MoveResult struct {
	Move Move
	// Err is non-nil if the move failed or was cancelled.
	Err error
}

// MoveResults holds results by topic and partition.
type MoveResults map[string]map[int32]MoveResult

// Add records r, replacing any earlier result for its partition.
func (rs *MoveResults) Add(r MoveResult) {
	if *rs == nil {
		*rs = make(MoveResults)
	}
	t := (*rs)[r.Move.Topic]
	if t == nil {
		t = make(map[int32]MoveResult)
		(*rs)[r.Move.Topic] = t
	}
	t[r.Move.Partition] = r
}

// Sorted returns every result sorted by topic, then partition: stable for
// logs and tests.
func (rs MoveResults) Sorted() []MoveResult {
	var out []MoveResult
	rs.Each(func(r MoveResult) { out = append(out, r) })
	slices.SortFunc(out, func(a, b MoveResult) int { return compareMoves(&a.Move, &b.Move) })
	return out
}

// Each calls fn for every result, in no particular order.
func (rs MoveResults) Each(fn func(MoveResult)) {
	for _, t := range rs {
		for _, r := range t {
			fn(r)
		}
	}
}

// FirstErr returns the Err of the first failed result in topic, partition
// order, or nil if every move succeeded.
func (rs MoveResults) FirstErr() error {
	for _, r := range rs.Sorted() {
		if r.Err != nil {
			return r.Err
		}
	}
	return nil
}
