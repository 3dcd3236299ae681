package reassign

import (
	"errors"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestAssignmentOrder checks the orders the planner walks partitions in:
// as added, by topic spans, or by permutation, each in topic, partition
// order, and that a partition added twice is reported in every case.
func TestAssignmentOrder(t *testing.T) {
	tests := []struct {
		name  string
		added []string // "topic-partition", in the order added
		want  []string // nil: "added twice"
		spans int      // spans in the sequence
		perm  bool     // whether it needs a permutation
	}{
		{name: "sorted", added: []string{"a-0", "a-1", "b-0", "t10-0"}, want: []string{"a-0", "a-1", "b-0", "t10-0"}, spans: 1},
		{name: "topics out of order", added: []string{"t9-0", "t9-1", "t10-0", "t10-1", "b-0"}, want: []string{"b-0", "t10-0", "t10-1", "t9-0", "t9-1"}, spans: 3},
		{name: "topic split", added: []string{"a-0", "b-0", "a-1"}, want: []string{"a-0", "a-1", "b-0"}, spans: 1, perm: true},
		{name: "partitions out of order", added: []string{"a-1", "a-0", "b-0"}, want: []string{"a-0", "a-1", "b-0"}, spans: 1, perm: true},
		{name: "twice in a row", added: []string{"a-0", "a-0"}},
		{name: "twice, topics out of order", added: []string{"b-0", "a-0", "a-0"}},
		{name: "twice, split", added: []string{"a-0", "b-0", "a-0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := make([]string, len(tt.added))
			for i, tp := range tt.added {
				lines[i] = tp + " 1,2"
			}
			a := asg(t, lines...)
			seq, err := a.order()
			if tt.want == nil {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("order() = %v, want ErrInvalid (added twice)", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, sp := range seq.spans {
				for k := sp.lo; k < sp.hi; k++ {
					p := a.At(seq.at(k))
					got = append(got, p.Topic+"-"+strconv.Itoa(int(p.Partition)))
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("order (-want +got):\n%s", diff)
			}
			if len(seq.spans) != tt.spans || (seq.perm != nil) != tt.perm {
				t.Errorf("%d spans, permutation %v; want %d, %v", len(seq.spans), seq.perm != nil, tt.spans, tt.perm)
			}
		})
	}
}
