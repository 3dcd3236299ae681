package reassign

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
)

func TestMoveHelpers(t *testing.T) {
	m := mv("a-0 1,2,3>4,2,5 B=10")
	if diff := cmp.Diff([]int32{4, 5}, m.Adding()); diff != "" {
		t.Errorf("Adding (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int32{1, 3}, m.Removing()); diff != "" {
		t.Errorf("Removing (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int32{1, 2, 3, 4, 5}, m.Brokers()); diff != "" {
		t.Errorf("Brokers (-want +got):\n%s", diff)
	}
	if got, want := m.String(), "a-0 [1 2 3]→[4 2 5]"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}

	ms := mvs("b-1 1>2 B=5", "a-2 1,2>3,4 B=7", "a-0 1>1", "a-2 3,4>3,5")
	if diff := cmp.Diff([]string{"a-00", "a-02", "a-02", "b-01"}, names(ms.Sorted())); diff != "" {
		t.Errorf("Sorted (-want +got):\n%s", diff)
	}
	if got := ms.Sorted()[1].To; !cmp.Equal(got, []int32{3, 4}) {
		t.Errorf("Sorted reordered moves of one partition: second is →%v", got)
	}
	if got, want := ms.Bytes(), int64(5+2*7); got != want {
		t.Errorf("Bytes = %d, want %d", got, want)
	}
	var n int
	ms.Each(func(Move) { n++ })
	if n != len(ms) {
		t.Errorf("Each called %d times, want %d", n, len(ms))
	}
	want := kadm.AlterPartitionAssignmentsReq{"a": {2: {3, 5}, 0: {1}}, "b": {1: {2}}}
	if diff := cmp.Diff(want, mvs("a-2 3,4>3,5", "a-0 1>1", "b-1 1>2").Request()); diff != "" {
		t.Errorf("Request (-want +got):\n%s", diff)
	}
}

func TestMoveResults(t *testing.T) {
	var rs MoveResults
	if rs.FirstErr() != nil {
		t.Error("FirstErr of no results is not nil")
	}
	errB, errA := errors.New("b failed"), errors.New("a-3 failed")
	rs.Add(MoveResult{Move: mv("b-0 1>2"), Err: errB})
	rs.Add(MoveResult{Move: mv("a-3 1>2"), Err: errA})
	rs.Add(MoveResult{Move: mv("a-1 1>2")})
	if diff := cmp.Diff([]string{"a-01", "a-03", "b-00"}, names(movesOf(rs.Sorted()))); diff != "" {
		t.Errorf("Sorted (-want +got):\n%s", diff)
	}
	if got := rs.FirstErr(); got != errA {
		t.Errorf("FirstErr = %v, want %v (first in topic, partition order)", got, errA)
	}
	var n int
	rs.Each(func(MoveResult) { n++ })
	if n != 3 {
		t.Errorf("Each called %d times, want 3", n)
	}
}

func movesOf(rs []MoveResult) Moves {
	var out Moves
	for _, r := range rs {
		out = append(out, r.Move)
	}
	return out
}
