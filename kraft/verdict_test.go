package kraft_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/kupgrade/kupgrade/health"
	"github.com/kupgrade/kupgrade/kraft"
)

// t0 is the leader's clock at the time of a hand-built DescribeQuorum answer.
var t0 = time.UnixMilli(1_800_000_000_000)

// quorum builds a Quorum led by leader whose voters last caught up the
// given time before the leader's answer (a negative duration means never:
// the timestamp is unknown).
func quorum(leader int32, behind map[int32]time.Duration) kraft.Quorum {
	q := kraft.Quorum{LeaderID: leader, LeaderEpoch: 7, HighWatermark: 100, Version: 2}
	for id := int32(1); id <= 9; id++ {
		d, ok := behind[id]
		if !ok {
			continue
		}
		r := kraft.Replica{ID: id, LogEndOffset: 100, Lag: 0, LastFetch: t0, LastCaughtUp: t0.Add(-d)}
		if d < 0 {
			r.LastCaughtUp, r.LastFetch, r.LogEndOffset, r.Lag = time.Time{}, time.Time{}, -1, -1
		}
		if id == leader {
			r.LastCaughtUp, r.LastFetch = t0, t0
		}
		q.Voters = append(q.Voters, r)
	}
	return q
}

func rules(rs []health.Reason) []string {
	var out []string
	for _, r := range rs {
		out = append(out, string(r.Rule)+":"+fmtNodes(r.Nodes))
	}
	return out
}

func fmtNodes(ids []int32) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(string(rune('0' + id)))
	}
	return b.String()
}

func TestCanRestartController(t *testing.T) {
	const ft = 2 * time.Second
	never := time.Duration(-1)
	tests := []struct {
		name     string
		q        kraft.Quorum
		id       int32
		ft       time.Duration
		ok       bool
		needed   int
		caughtUp []int32
		reasons  []string // rule:nodes
		warnings []string
	}{
		{
			name:    "no leader",
			q:       quorum(-1, map[int32]time.Duration{1: 0, 2: 0, 3: 0}),
			id:      2,
			reasons: []string{"no-leader:2"},
		},
		{
			name:    "leader not among voters",
			q:       quorum(4, map[int32]time.Duration{1: 0, 2: 0, 3: 0}),
			id:      2,
			reasons: []string{"no-leader:4"},
		},
		{
			name:     "one voter: allowed with a warning",
			q:        quorum(1, map[int32]time.Duration{1: 0}),
			id:       1,
			ok:       true,
			warnings: []string{"single-voter:1", "active-controller:1"},
		},
		{
			name:     "two voters, other caught up: allowed with a warning",
			q:        quorum(1, map[int32]time.Duration{1: 0, 2: 500 * time.Millisecond}),
			id:       2,
			ok:       true,
			needed:   1,
			caughtUp: []int32{1},
			warnings: []string{"two-voters:1,2"},
		},
		{
			name:    "two voters, restarting the leader while the follower lags",
			q:       quorum(1, map[int32]time.Duration{1: 0, 2: 5 * time.Second}),
			id:      1,
			needed:  1,
			reasons: []string{"not-caught-up:2", "no-majority:1"},
		},
		{
			name:     "three voters all caught up",
			q:        quorum(1, map[int32]time.Duration{1: 0, 2: 10 * time.Millisecond, 3: 300 * time.Millisecond}),
			id:       3,
			ok:       true,
			needed:   2,
			caughtUp: []int32{1, 2},
		},
		{
			name:     "three voters, one lagging: the other follower cannot restart",
			q:        quorum(1, map[int32]time.Duration{1: 0, 2: 0, 3: 9 * time.Second}),
			id:       2,
			needed:   2,
			caughtUp: []int32{1},
			reasons:  []string{"not-caught-up:3", "no-majority:2"},
		},
		{
			name:     "three voters, one lagging: the lagging one can restart",
			q:        quorum(1, map[int32]time.Duration{1: 0, 2: 0, 3: 9 * time.Second}),
			id:       3,
			ok:       true,
			needed:   2,
			caughtUp: []int32{1, 2},
		},
		{
			name:     "three voters, one never caught up (unknown timestamp)",
			q:        quorum(1, map[int32]time.Duration{1: 0, 2: 0, 3: never}),
			id:       2,
			needed:   2,
			caughtUp: []int32{1},
			reasons:  []string{"not-caught-up:3", "no-majority:2"},
		},
		{
			name:     "the candidate is the leader, followers caught up",
			q:        quorum(2, map[int32]time.Duration{1: 0, 2: 0, 3: time.Second}),
			id:       2,
			ok:       true,
			needed:   2,
			caughtUp: []int32{1, 3},
			warnings: []string{"active-controller:2"},
		},
		{
			name:     "the candidate is the leader, one follower lagging",
			q:        quorum(2, map[int32]time.Duration{1: 0, 2: 0, 3: 3 * time.Second}),
			id:       2,
			needed:   2,
			caughtUp: []int32{1},
			reasons:  []string{"not-caught-up:3", "no-majority:2"},
		},
		{
			name:     "boundary: just under the fetch timeout is caught up",
			q:        quorum(1, map[int32]time.Duration{1: 0, 2: 0, 3: ft - time.Millisecond}),
			id:       2,
			ok:       true,
			needed:   2,
			caughtUp: []int32{1, 3},
		},
		{
			name:     "boundary: exactly the fetch timeout is not caught up",
			q:        quorum(1, map[int32]time.Duration{1: 0, 2: 0, 3: ft}),
			id:       2,
			needed:   2,
			caughtUp: []int32{1},
			reasons:  []string{"not-caught-up:3", "no-majority:2"},
		},
		{
			name:     "boundary: a longer live fetch timeout accepts the same voter",
			q:        quorum(1, map[int32]time.Duration{1: 0, 2: 0, 3: ft}),
			id:       2,
			ft:       3 * time.Second,
			ok:       true,
			needed:   2,
			caughtUp: []int32{1, 3},
		},
		{
			name:     "five voters, one down: another may restart",
			q:        quorum(1, map[int32]time.Duration{1: 0, 2: 0, 3: 0, 4: 0, 5: time.Minute}),
			id:       4,
			ok:       true,
			needed:   3,
			caughtUp: []int32{1, 2, 3},
			warnings: []string{"not-caught-up:5"},
		},
		{
			name:     "five voters, two down: no other may restart",
			q:        quorum(1, map[int32]time.Duration{1: 0, 2: 0, 3: 0, 4: time.Minute, 5: never}),
			id:       3,
			needed:   3,
			caughtUp: []int32{1, 2},
			reasons:  []string{"not-caught-up:4", "not-caught-up:5", "no-majority:3"},
		},
		{
			name:     "five voters, two down: one of them may restart",
			q:        quorum(1, map[int32]time.Duration{1: 0, 2: 0, 3: 0, 4: time.Minute, 5: never}),
			id:       5,
			ok:       true,
			needed:   3,
			caughtUp: []int32{1, 2, 3},
			warnings: []string{"not-caught-up:4"},
		},
		{
			name:     "not a voter",
			q:        quorum(1, map[int32]time.Duration{1: 0, 2: 0, 3: 0}),
			id:       7,
			ok:       true,
			warnings: []string{"not-voter:7"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ft := tt.ft
			if ft == 0 {
				ft = 2 * time.Second
			}
			v := kraft.CanRestartController(tt.q, tt.id, ft)
			if v.OK != tt.ok {
				t.Errorf("OK = %v, want %v: %v", v.OK, tt.ok, v)
			}
			if v.OK != (len(v.Reasons) == 0) {
				t.Errorf("OK %v with %d reasons", v.OK, len(v.Reasons))
			}
			if diff := cmp.Diff(tt.reasons, rules(v.Reasons)); diff != "" {
				t.Errorf("reasons (-want +got):\n%s\n%v", diff, v)
			}
			if diff := cmp.Diff(tt.warnings, rules(v.Warnings)); diff != "" {
				t.Errorf("warnings (-want +got):\n%s\n%v", diff, v)
			}
			if diff := cmp.Diff(tt.caughtUp, v.CaughtUp, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("caught up (-want +got):\n%s", diff)
			}
			if v.Needed != tt.needed {
				t.Errorf("Needed = %d, want %d", v.Needed, tt.needed)
			}
			err := v.Err()
			if v.OK != (err == nil) {
				t.Errorf("Err() = %v with OK %v", err, v.OK)
			}
			if err != nil && !errors.Is(err, kraft.ErrQuorumUnsafe) {
				t.Errorf("Err() = %v, want it to wrap ErrQuorumUnsafe", err)
			}
			noLeader := len(tt.reasons) > 0 && strings.HasPrefix(tt.reasons[0], "no-leader")
			if err != nil && errors.Is(err, kraft.ErrNoLeader) != noLeader {
				t.Errorf("Err() = %v: ErrNoLeader wrapped only when there is no leader", err)
			}
		})
	}
}

// TestCanRestartControllerMessages pins the sentences a user reads.
func TestCanRestartControllerMessages(t *testing.T) {
	q := quorum(1, map[int32]time.Duration{1: 0, 2: 0, 3: 9100 * time.Millisecond})
	v := kraft.CanRestartController(q, 2, 3*time.Second)
	want := "cannot restart controller 2: voter 3 last caught up 9.1s before the leader 1 (controller.quorum.fetch.timeout.ms 3s): it is down or lagging; " +
		"restarting controller 2 would leave 1 caught-up voter(s) [1] of 3, and the quorum needs 2"
	if got := v.String(); got != want {
		t.Errorf("String() =\n%s\nwant\n%s", got, want)
	}
	if v.FetchTimeout != 3*time.Second {
		t.Errorf("FetchTimeout = %v", v.FetchTimeout)
	}
	if v := kraft.CanRestartController(q, 2, 0); v.FetchTimeout != kraft.DefaultFetchTimeout {
		t.Errorf("a zero fetch timeout should mean Kafka's default, got %v", v.FetchTimeout)
	}
}

func TestVoterCaughtUp(t *testing.T) {
	at := time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)
	q := kraft.Quorum{LeaderID: 1, LeaderEpoch: 5, Voters: []kraft.Replica{
		{ID: 1, LastCaughtUp: at},
		{ID: 2, LastCaughtUp: at.Add(-500 * time.Millisecond)},
		{ID: 3, LastCaughtUp: at.Add(-3 * time.Second)},
		{ID: 4},
	}}
	for _, tt := range []struct {
		id   int32
		ft   time.Duration
		want bool
		why  string
	}{
		{1, 0, true, ""},
		{2, 0, true, ""},
		{3, 0, false, "voter 3 last caught up 3s before the leader 1"},
		{3, 5 * time.Second, true, ""},
		{4, 0, false, "voter 4 has never caught up"},
		{9, 0, false, "node 9 is not among the voters [1 2 3 4]"},
	} {
		ok, why := kraft.VoterCaughtUp(q, tt.id, tt.ft)
		if ok != tt.want || !strings.Contains(why, tt.why) {
			t.Errorf("VoterCaughtUp(%d, %v) = %v, %q; want %v, %q", tt.id, tt.ft, ok, why, tt.want, tt.why)
		}
	}
	if ok, why := kraft.VoterCaughtUp(kraft.Quorum{LeaderID: -1, LeaderEpoch: 7}, 1, 0); ok || !strings.Contains(why, "no leader (epoch 7)") {
		t.Errorf("no leader: %v, %q", ok, why)
	}
}
