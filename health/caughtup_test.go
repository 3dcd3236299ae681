package health_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kupgrade/kupgrade/health"
)

func TestCaughtUp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		snap    []string
		node    int32
		opts    []health.CatchUpOption
		want    []string
		checked int
	}{
		{name: "back in every ISR", snap: []string{"brokers=1,2,3", "orders-0 r=1,2,3 isr=1,2,3", "orders-1 r=2,3,1 isr=3,1,2"},
			node: 2, want: []string{}, checked: 2},
		{name: "not registered", snap: []string{"brokers=1,3", "orders-0 r=1,2,3 isr=1,3"},
			node: 2, want: []string{"node-down", "orders-0 not-in-isr [2]"}, checked: 1},
		{name: "registered but fenced", snap: []string{"brokers=1,2,3 fenced=2", "orders-0 r=1,2,3 isr=1,3"},
			node: 2, want: []string{"node-down", "orders-0 not-in-isr [2]"}, checked: 1},
		{name: "up but one replica still catching up", snap: []string{"brokers=1,2,3", "orders-0 r=1,2,3 isr=1,2,3", "orders-1 r=1,2,3 isr=1,3"},
			node: 2, want: []string{"orders-1 not-in-isr [2]"}, checked: 2},
		{name: "replica on an offline log dir", snap: []string{"brokers=1,2,3", "orders-0 r=1,2,3 isr=1,3 offline=2"},
			node: 2, want: []string{"orders-0 replica-offline [2]"}, checked: 1},
		{name: "liveness unknown: only ISR checked", snap: []string{"orders-0 r=1,2,3 isr=1,2,3"},
			node: 2, want: []string{}, checked: 1},
		{name: "hosts nothing", snap: []string{"brokers=1,2,3", "orders-0 r=1,3 isr=1,3"},
			node: 2, want: []string{}, checked: 0},
		{name: "not leading its preferred partitions: ignored by default", snap: []string{"brokers=1,2,3", "orders-0 r=2,1,3 isr=1,2,3 leader=1"},
			node: 2, want: []string{}, checked: 1},
		{name: "not leading its preferred partitions", snap: []string{"brokers=1,2,3", "orders-0 r=2,1,3 isr=1,2,3 leader=1", "orders-1 r=2,3,1 isr=2,3,1", "orders-2 r=2,1,3 isr=2 leader=-1", "orders-3 r=1,2,3 isr=1,2,3"},
			node: 2, opts: []health.CatchUpOption{health.LeadsPreferred()},
			want: []string{"orders-0 not-preferred-leader [2]", "orders-2 not-preferred-leader [2]"}, checked: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := snap(t, tt.snap...)
			v := health.CaughtUp(s, tt.node, tt.opts...)
			if diff := cmp.Diff(v, health.CaughtUp(health.Built(s), tt.node, tt.opts...)); diff != "" {
				t.Fatalf("indexed and unindexed verdicts differ (-plain +indexed):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, brief(v)); diff != "" {
				t.Errorf("reasons (-want +got):\n%s\nverdict: %v", diff, v)
			}
			if v.Checked != tt.checked || v.OK != (len(tt.want) == 0) {
				t.Errorf("Checked, OK = %d, %v; want %d, %v", v.Checked, v.OK, tt.checked, len(tt.want) == 0)
			}
		})
	}
}

func TestCaughtUpMessages(t *testing.T) {
	t.Parallel()
	s := snap(t, "brokers=1,3", "orders-0 r=2,1,3 isr=1,3")
	err := health.CaughtUp(s, 2, health.LeadsPreferred()).Err()
	if !errors.Is(err, health.ErrNotCaughtUp) {
		t.Fatalf("errors.Is(%v, ErrNotCaughtUp) = false", err)
	}
	const want = "health: node 2 not caught up: node 2 is not registered (absent from metadata); " +
		"orders-0: node 2 is not in ISR {1,3}; orders-0: node 2 is the preferred leader, but node 1 leads"
	if err.Error() != want {
		t.Errorf("Error() =\n%s\nwant\n%s", err, want)
	}
}
