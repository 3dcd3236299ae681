package health_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/kupgrade/kupgrade/health"
)

// canRestart runs g (nil: the default rules) on the snapshot unindexed, with
// an index not built yet (which scans) and with a built index, checks that
// all agree, and returns the verdict.
func canRestart(t *testing.T, g *health.Gate, s health.Snapshot, nodes ...int32) health.Verdict {
	t.Helper()
	run := health.CanRestart
	if g != nil {
		run = g.CanRestart
	}
	plain := run(s, nodes...)
	if diff := cmp.Diff(plain, run(s.Indexed(), nodes...)); diff != "" {
		t.Fatalf("verdicts before the index is built and unindexed differ (-plain +fresh):\n%s", diff)
	}
	if diff := cmp.Diff(plain, run(health.Built(s), nodes...)); diff != "" {
		t.Fatalf("indexed and unindexed verdicts differ (-plain +indexed):\n%s", diff)
	}
	if plain.OK != (len(plain.Reasons) == 0) {
		t.Fatalf("OK = %v with %d reasons", plain.OK, len(plain.Reasons))
	}
	return plain
}

func mustGate(t *testing.T, opts ...health.GateOption) *health.Gate {
	t.Helper()
	g, err := health.NewGate(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestCanRestartRules has one group of rows per rule; each row names what it
// proves.
func TestCanRestartRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		snap    []string
		opts    []health.GateOption
		stop    []int32
		want    []string // brief(verdict)
		checked int
	}{
		// Strimzi's at-min rule.
		{name: "ISR above min stays at min", snap: []string{"orders-0 r=1,2,3 isr=1,2,3 min=2"},
			stop: []int32{3}, want: []string{}, checked: 1},
		{name: "ISR at min, ISR member restarts", snap: []string{"orders-0 r=1,2,3 isr=1,2 min=2"},
			stop: []int32{2}, want: []string{"orders-0 below-min-isr [2]"}, checked: 1},
		{name: "ISR at min, out-of-sync holder restarts", snap: []string{"orders-0 r=1,2,3 isr=1,2 min=2"},
			stop: []int32{3}, want: []string{}, checked: 1},
		{name: "node hosts nothing", snap: []string{"orders-0 r=1,2,3 isr=1,2 min=2"},
			stop: []int32{9}, want: []string{}, checked: 0},
		{name: "no nodes at all", snap: []string{"orders-0 r=1,2,3 isr=1 min=2"},
			stop: nil, want: []string{}, checked: 0},

		// Strimzi's already-under-min rule.
		{name: "already under min, out-of-sync holder restarts", snap: []string{"orders-0 r=1,2,3 isr=1 min=2"},
			stop: []int32{3}, want: []string{"orders-0 under-min-isr [3]"}, checked: 1},
		{name: "already under min, non-holder restarts", snap: []string{"orders-0 r=1,2,3 isr=1 min=2", "other-0 r=4,5,6 isr=4,5,6 min=2"},
			stop: []int32{4}, want: []string{}, checked: 1},
		{name: "already under min, last ISR member restarts: offline wins", snap: []string{"orders-0 r=1,2,3 isr=1 min=2"},
			stop: []int32{1}, want: []string{"orders-0 goes-offline [1]"}, checked: 1},

		// Strimzi's RF <= min ISR exemption.
		{name: "RF equals min ISR: min ISR rules do not apply", snap: []string{"orders-0 r=1,2 isr=1,2 min=2"},
			stop: []int32{1}, want: []string{}, checked: 1},
		{name: "RF below min ISR: min ISR rules do not apply", snap: []string{"orders-0 r=1,2 isr=1,2 min=3"},
			stop: []int32{2}, want: []string{}, checked: 1},
		{name: "RF below min ISR, under min: still exempt", snap: []string{"orders-0 r=1,2 isr=1 min=3"},
			stop: []int32{2}, want: []string{}, checked: 1},
		{name: "RF below min ISR, whole ISR restarts: offline rule still applies", snap: []string{"orders-0 r=1,2 isr=1,2 min=3"},
			stop: []int32{1, 2}, want: []string{"orders-0 goes-offline [1 2]"}, checked: 1},
		{name: "unset min ISR means 1", snap: []string{"orders-0 r=1,2 isr=1,2"},
			stop: []int32{1}, want: []string{}, checked: 1},
		{name: "unset min ISR, both replicas restart", snap: []string{"orders-0 r=1,2 isr=1,2"},
			stop: []int32{1, 2}, want: []string{"orders-0 goes-offline [1 2]"}, checked: 1},

		// RF=1.
		{name: "RF 1 goes offline", snap: []string{"logs-0 r=2 isr=2"},
			stop: []int32{2}, want: []string{"logs-0 goes-offline [2]"}, checked: 1},
		{name: "RF 1 allowed offline", snap: []string{"logs-0 r=2 isr=2"}, opts: []health.GateOption{health.AllowOfflineRF1()},
			stop: []int32{2}, want: []string{}, checked: 1},
		{name: "AllowOfflineRF1 does not cover RF 2", snap: []string{"logs-0 r=2 isr=2", "pairs-0 r=2,3 isr=2"}, opts: []health.GateOption{health.AllowOfflineRF1()},
			stop: []int32{2}, want: []string{"pairs-0 goes-offline [2]"}, checked: 2},
		{name: "RF 1 on another node", snap: []string{"logs-0 r=3 isr=3"},
			stop: []int32{2}, want: []string{}, checked: 0},

		// Sets of nodes.
		{name: "two nodes sharing a partition: one reason", snap: []string{"orders-0 r=1,2,3 isr=1,2,3 min=2"},
			stop: []int32{1, 2}, want: []string{"orders-0 below-min-isr [1 2]"}, checked: 1},
		{name: "two nodes, order and duplicates do not matter", snap: []string{"orders-0 r=1,2,3 isr=1,2,3 min=2"},
			stop: []int32{3, 1, 3}, want: []string{"orders-0 below-min-isr [1 3]"}, checked: 1},
		{name: "two nodes sharing a partition, enough left", snap: []string{"orders-0 r=1,2,3,4,5 isr=1,2,3,4,5 min=3"},
			stop: []int32{1, 2}, want: []string{}, checked: 1},
		{name: "two nodes sharing nothing", snap: []string{"a-0 r=1,2,3 isr=1,2,3 min=2", "b-0 r=4,5,6 isr=4,5,6 min=2"},
			stop: []int32{1, 4}, want: []string{}, checked: 2},
		{name: "three nodes take the whole ISR", snap: []string{"orders-0 r=1,2,3 isr=1,2,3 min=1"},
			stop: []int32{1, 2, 3}, want: []string{"orders-0 goes-offline [1 2 3]"}, checked: 1},
		{name: "a set blocks on each partition once, sorted", snap: []string{
			"b-1 r=2,3,4 isr=2,3 min=2", "a-0 r=1,2,3 isr=1,2 min=2", "a-1 r=3,1,2 isr=3,1,2 min=2", "c-0 r=5,6,7 isr=5,6,7 min=2"},
			stop: []int32{2, 1}, want: []string{"a-0 goes-offline [1 2]", "a-1 below-min-isr [1 2]", "b-1 below-min-isr [2]"}, checked: 3},

		// Leaderless partitions and liveness.
		{name: "leaderless, RF above min: holders blocked", snap: []string{"brokers=2,3", "orders-0 r=1,2,3 isr=1 leader=-1 min=2"},
			stop: []int32{2}, want: []string{"orders-0 under-min-isr [2]"}, checked: 1},
		{name: "leaderless, RF at min: nothing to lose", snap: []string{"brokers=2", "orders-0 r=1,2 isr=1 leader=-1 min=2"},
			stop: []int32{2}, want: []string{}, checked: 1},
		{name: "leaderless with a live ISR member: restarting it keeps it offline", snap: []string{"orders-0 r=1,2,3 isr=1 leader=-1 min=1"},
			stop: []int32{1}, want: []string{"orders-0 goes-offline [1]"}, checked: 1},
		{name: "leaderless, down node restarts: refused by default", snap: []string{"brokers=2,3", "orders-0 r=1,2,3 isr=1 leader=-1 min=2"},
			stop: []int32{1}, want: []string{"orders-0 under-min-isr [1]"}, checked: 1},
		{name: "leaderless, down node restarts: allowed by option", snap: []string{"brokers=2,3", "orders-0 r=1,2,3 isr=1 leader=-1 min=2"},
			opts: []health.GateOption{health.AllowRestartingDownNodes()}, stop: []int32{1}, want: []string{}, checked: 1},
		{name: "down node plus live node: live one still judged", snap: []string{"brokers=2,3", "orders-0 r=1,2,3 isr=1,2,3 min=2"},
			opts: []health.GateOption{health.AllowRestartingDownNodes()}, stop: []int32{1, 2}, want: []string{"orders-0 below-min-isr [2]"}, checked: 1},
		{name: "stale ISR: unregistered member not counted", snap: []string{"brokers=1,2", "orders-0 r=1,2,3 isr=1,2,3 min=2"},
			stop: []int32{2}, want: []string{"orders-0 below-min-isr [2]"}, checked: 1},
		{name: "stale ISR: fenced member not counted", snap: []string{"brokers=1,2,3 fenced=3", "orders-0 r=1,2,3 isr=1,2,3 min=2"},
			stop: []int32{2}, want: []string{"orders-0 below-min-isr [2]"}, checked: 1},
		{name: "liveness unknown: ISR taken as reported", snap: []string{"orders-0 r=1,2,3 isr=1,2,3 min=2"},
			stop: []int32{2}, want: []string{}, checked: 1},
		{name: "only live ISR member among the nodes", snap: []string{"brokers=1,2", "orders-0 r=1,3 isr=1,3 min=1"},
			stop: []int32{1}, want: []string{"orders-0 goes-offline [1]"}, checked: 1},

		// Unknown min.insync.replicas.
		{name: "min ISR unknown blocks", snap: []string{"secret-0 r=1,2,3 isr=1,2,3 unknown"},
			stop: []int32{1}, want: []string{"secret-0 min-isr-unknown [1]"}, checked: 1},
		{name: "min ISR unknown does not matter at RF 1", snap: []string{"secret-0 r=1 isr=1 unknown"}, opts: []health.GateOption{health.AllowOfflineRF1()},
			stop: []int32{1}, want: []string{}, checked: 1},

		// Cluster-wide limits.
		{name: "MaxOffline: another partition offline", snap: []string{"orders-0 r=1,2,3 isr=1,2,3 min=2", "other-0 r=5 isr= leader=-1"},
			opts: []health.GateOption{health.MaxOffline(0)}, stop: []int32{1}, want: []string{"cluster-offline"}, checked: 1},
		{name: "MaxOffline: within the limit", snap: []string{"orders-0 r=1,2,3 isr=1,2,3 min=2", "other-0 r=5 isr= leader=-1"},
			opts: []health.GateOption{health.MaxOffline(1)}, stop: []int32{1}, want: []string{}, checked: 1},
		{name: "MaxUnderReplicated and MaxUnderMinISR", snap: []string{"orders-0 r=1,2,3 isr=1,2,3 min=2", "other-0 r=5,6,7 isr=5 min=2"},
			opts: []health.GateOption{health.MaxUnderReplicated(0), health.MaxUnderMinISR(0)}, stop: []int32{1},
			want: []string{"cluster-under-min-isr", "cluster-under-replicated"}, checked: 1},
		{name: "cluster limits and partition rules together", snap: []string{"orders-0 r=1,2,3 isr=1,2 min=2", "other-0 r=5,6,7 isr=5,6 min=2"},
			opts: []health.GateOption{health.MaxUnderReplicated(1)}, stop: []int32{1},
			want: []string{"cluster-under-replicated", "orders-0 below-min-isr [1]"}, checked: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var g *health.Gate
			if tt.opts != nil {
				g = mustGate(t, tt.opts...)
			}
			v := canRestart(t, g, snap(t, tt.snap...), tt.stop...)
			if diff := cmp.Diff(tt.want, brief(v)); diff != "" {
				t.Errorf("reasons (-want +got):\n%s\nverdict: %v", diff, v)
			}
			if v.Checked != tt.checked {
				t.Errorf("Checked = %d, want %d", v.Checked, tt.checked)
			}
		})
	}
}

func TestCanRestartReasonDetail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		snap []string
		opts []health.GateOption
		stop []int32
		want health.Reason
	}{
		{
			name: "below min",
			snap: []string{"orders-3 r=1,2,3 isr=1,2 min=2"},
			stop: []int32{1},
			want: health.Reason{Rule: health.RuleBelowMinISR, Topic: "orders", Partition: 3, Nodes: []int32{1}, Leader: 1,
				Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2}, ISRAfter: []int32{2}, MinISR: 2,
				Message: "orders-3: ISR {1,2} would drop to {2}, below min.insync.replicas 2"},
		},
		{
			name: "RF 1 offline",
			snap: []string{"logs-0 r=2 isr=2"},
			stop: []int32{2},
			want: health.Reason{Rule: health.RuleGoesOffline, Topic: "logs", Partition: 0, Nodes: []int32{2}, Leader: 2,
				Replicas: []int32{2}, ISR: []int32{2}, ISRAfter: []int32{}, MinISR: 1,
				Message: "logs-0: ISR {2} would drop to {}: the partition would go offline (replication factor 1; AllowOfflineRF1 permits this)"},
		},
		{
			name: "under min, leaderless, down member",
			snap: []string{"brokers=2,3", "orders-0 r=1,2,3 isr=1 leader=-1 min=2"},
			stop: []int32{2, 3},
			want: health.Reason{Rule: health.RuleUnderMinISR, Topic: "orders", Partition: 0, Nodes: []int32{2, 3}, Leader: -1,
				Replicas: []int32{1, 2, 3}, ISR: []int32{1}, ISRAfter: []int32{}, MinISR: 2,
				Message: "orders-0: ISR {1} is already below min.insync.replicas 2, and nodes {2,3} hold replicas that may be the first to catch up (no leader) (down: {1})"},
		},
		{
			name: "stale ISR",
			snap: []string{"brokers=1,2", "orders-0 r=1,2,3 isr=1,2,3 min=2"},
			stop: []int32{2},
			want: health.Reason{Rule: health.RuleBelowMinISR, Topic: "orders", Partition: 0, Nodes: []int32{2}, Leader: 1,
				Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}, ISRAfter: []int32{1}, MinISR: 2,
				Message: "orders-0: ISR {1,2,3} would drop to {1}, below min.insync.replicas 2 (down: {3})"},
		},
		{
			name: "unknown min ISR",
			snap: []string{"secret-0 r=1,2,3 isr=1,2,3 unknown"},
			stop: []int32{1},
			want: health.Reason{Rule: health.RuleMinISRUnknown, Topic: "secret", Partition: 0, Nodes: []int32{1}, Leader: 1,
				Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}, ISRAfter: []int32{2, 3}, MinISR: 1,
				Message: "secret-0: min.insync.replicas of topic secret is unknown (TOPIC_AUTHORIZATION_FAILED); cannot tell whether restarting node 1 is safe"},
		},
		{
			name: "cluster limit",
			snap: []string{"orders-0 r=1,2,3 isr=1,2,3 min=2", "other-0 r=5 isr= leader=-1", "other-1 r=5 isr= leader=-1"},
			opts: []health.GateOption{health.MaxOffline(1)},
			stop: []int32{1},
			want: health.Reason{Rule: health.RuleClusterOffline, Partition: -1, Leader: -1,
				Message: "cluster: 2 partitions offline, more than the 1 allowed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var g *health.Gate
			if tt.opts != nil {
				g = mustGate(t, tt.opts...)
			}
			v := canRestart(t, g, snap(t, tt.snap...), tt.stop...)
			if len(v.Reasons) != 1 {
				t.Fatalf("got %d reasons, want 1: %v", len(v.Reasons), v)
			}
			if diff := cmp.Diff(tt.want, v.Reasons[0]); diff != "" {
				t.Errorf("reason (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNoWorseThan(t *testing.T) {
	t.Parallel()
	base := snap(t, "orders-0 r=1,2,3 isr=1,2 min=2", "logs-0 r=4 isr= leader=-1", "a-0 r=1,2,3 isr=1,2,3 min=2")
	g := mustGate(t, health.NoWorseThan(base.Counts()))
	if v := canRestart(t, g, base, 3); !v.OK {
		t.Errorf("same counts as the baseline: %v", v)
	}
	worse := snap(t, "orders-0 r=1,2,3 isr=1,2 min=2", "logs-0 r=4 isr= leader=-1", "a-0 r=1,2,3 isr=1 min=2")
	v := canRestart(t, g, worse, 3)
	if diff := cmp.Diff([]string{"cluster-under-min-isr", "cluster-under-replicated", "a-0 under-min-isr [3]"}, brief(v)); diff != "" {
		t.Errorf("reasons (-want +got):\n%s", diff)
	}
}

func TestNewGateValidates(t *testing.T) {
	t.Parallel()
	for _, o := range []health.GateOption{health.MaxOffline(-1), health.MaxUnderReplicated(-2), health.MaxUnderMinISR(-1)} {
		if _, err := health.NewGate(o); err == nil || !strings.HasPrefix(err.Error(), "health: Max") {
			t.Errorf("NewGate(negative limit) = %v, want an error naming the option", err)
		}
	}
}

func TestVerdictErr(t *testing.T) {
	t.Parallel()
	s := snap(t, "orders-0 r=1,2,3 isr=1,2 min=2", "orders-1 r=1,2,3 isr=1,2 min=2", "orders-2 r=2,1,3 isr=2,1 min=2",
		"orders-3 r=1,2,3 isr=1,2 min=2", "orders-4 r=3,2,1 isr=3 min=2")
	v := health.CanRestart(s, 1)
	if v.OK || v.Err() == nil {
		t.Fatalf("want a refusal, got %v", v)
	}
	err := v.Err()
	if !errors.Is(err, health.ErrUnsafe) {
		t.Errorf("errors.Is(%v, ErrUnsafe) = false", err)
	}
	be, ok := errors.AsType[*health.BlockedError](err)
	if !ok || len(be.Verdict.Reasons) != 5 {
		t.Fatalf("errors.AsType[*BlockedError] = %v, %v", be, ok)
	}
	const want = "health: cannot restart node 1: orders-0: ISR {1,2} would drop to {2}, below min.insync.replicas 2; " +
		"orders-1: ISR {1,2} would drop to {2}, below min.insync.replicas 2; " +
		"orders-2: ISR {2,1} would drop to {2}, below min.insync.replicas 2; and 2 more"
	if err.Error() != want {
		t.Errorf("Error() =\n%s\nwant\n%s", err, want)
	}
	if got := v.Rules(); !cmp.Equal(got, map[health.Rule]int{health.RuleBelowMinISR: 4, health.RuleUnderMinISR: 1}) {
		t.Errorf("Rules() = %v", got)
	}
	if ok := health.CanRestart(s, 7); !ok.OK || ok.Err() != nil || ok.String() != "node 7 can restart (0 checked)" {
		t.Errorf("CanRestart(7) = %v, %v", ok, ok.Err())
	}

	// Verdicts are JSON.
	b, err := json.Marshal(health.CanRestart(s, 1, 3))
	if err != nil {
		t.Fatal(err)
	}
	var back health.Verdict
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(health.CanRestart(s, 1, 3), back, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", diff)
	}
}

// TestCanRestartManyNodes asks about more nodes than the scan checks one by
// one (it looks them up in a table then), with and without an index.
func TestCanRestartManyNodes(t *testing.T) {
	t.Parallel()
	var lines []string
	for p := range 24 {
		lines = append(lines, fmt.Sprintf("orders-%d r=%d,%d,%d isr=%d,%d,%d min=2", p, p%12+1, (p+4)%12+1, (p+8)%12+1, p%12+1, (p+4)%12+1, (p+8)%12+1))
	}
	s := snap(t, lines...)
	many := []int32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	v := canRestart(t, nil, s, many...)
	if v.OK || v.Checked != 24 {
		t.Errorf("restarting %v: OK %v, %d checked; want refused, 24 checked", many, v.OK, v.Checked)
	}
	if v := canRestart(t, mustGate(t, health.MaxOffline(0)), s, 13, 14, 15, 16, 17, 18, 19, 20, 21); !v.OK || v.Checked != 0 {
		t.Errorf("restarting nodes that host nothing: %v", v)
	}
}
