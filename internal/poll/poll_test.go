package poll_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kupgrade/kupgrade/health"
	"github.com/kupgrade/kupgrade/internal/poll"
	"github.com/kupgrade/kupgrade/node"
)

func TestPolicyDelay(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	tests := []struct {
		name string
		p    poll.Policy
		want []time.Duration
	}{
		{"defaults", poll.Policy{}, []time.Duration{250 * ms, 500 * ms, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}},
		{"capped early", poll.Policy{Initial: 100 * ms, Max: 300 * ms, Multiplier: 3}, []time.Duration{100 * ms, 300 * ms, 300 * ms}},
		{"constant", poll.Policy{Initial: time.Second, Multiplier: 1}, []time.Duration{time.Second, time.Second, time.Second}},
		{"initial above default max", poll.Policy{Initial: 20 * time.Second}, []time.Duration{20 * time.Second, 20 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []time.Duration
			for n := range tt.want {
				got = append(got, tt.p.Delay(n))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("delays (-want +got):\n%s", diff)
			}
		})
	}
	if d := (poll.Policy{}).Delay(1 << 20); d != poll.DefaultMax {
		t.Errorf("Delay(huge) = %v, want the cap", d)
	}
}

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	for _, p := range []poll.Policy{
		{Initial: -1}, {Max: -1}, {Timeout: -time.Second},
		{Multiplier: 0.5}, {Initial: time.Second, Max: time.Millisecond},
	} {
		if err := p.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", p)
		}
		called := false
		if err := poll.Wait(t.Context(), func(context.Context) error { called = true; return nil }, p); err == nil || called {
			t.Errorf("Wait(%+v) = %v, called = %v; want an error before any check", p, err, called)
		}
	}
	if err := (poll.Policy{}).Validate(); err != nil {
		t.Errorf("zero policy: %v", err)
	}
}

func TestWaitSucceeds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		checks := 0
		err := poll.Wait(t.Context(), func(context.Context) error {
			checks++
			if checks < 4 {
				return fmt.Errorf("not yet (%d)", checks)
			}
			return nil
		}, poll.Policy{})
		if err != nil {
			t.Fatal(err)
		}
		// Checks at 0, 250ms, 750ms and 1.75s: no sleep after success.
		if got, want := time.Since(start), 1750*time.Millisecond; checks != 4 || got != want {
			t.Errorf("checks = %d after %v, want 4 after %v", checks, got, want)
		}
	})
}

func TestWaitTimesOutWithLastReason(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := health.Snapshot{ // brokers 1 and 3 up; orders-0 on 1,2,3 with ISR 1,3
			Brokers: []health.Broker{{Node: node.Node{ID: 1}}, {Node: node.Node{ID: 3}}},
			Topics:  []health.Topic{{Name: "orders", Partitions: []health.Partition{{Partition: 0, Leader: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 3}}}}},
		}
		start := time.Now()
		checks := 0
		err := poll.Wait(t.Context(), func(context.Context) error {
			checks++
			return health.CaughtUp(s, 2).Err()
		}, poll.Policy{Timeout: 10 * time.Minute})
		if got := time.Since(start); got != 10*time.Minute {
			t.Errorf("gave up after %v, want exactly the 10m timeout", got)
		}
		if !errors.Is(err, poll.ErrTimedOut) || !errors.Is(err, health.ErrNotCaughtUp) {
			t.Errorf("errors.Is(ErrTimeout), errors.Is(ErrNotCaughtUp) = %v, %v", errors.Is(err, poll.ErrTimedOut), errors.Is(err, health.ErrNotCaughtUp))
		}
		we, ok := errors.AsType[*poll.WaitError](err)
		if !ok {
			t.Fatalf("%v is not a *WaitError", err)
		}
		// 0.25+0.5+1+2+4+8 = 15.75s, then every 10s up to 600s: 6 + 59 pauses.
		if we.Checks != checks || checks != 65 || we.Waited != 10*time.Minute {
			t.Errorf("Checks = %d (counted %d), Waited = %v", we.Checks, checks, we.Waited)
		}
		be, ok := errors.AsType[*health.BlockedError](err)
		if !ok || be.Verdict.Kind != health.KindCaughtUp {
			t.Errorf("errors.AsType[*BlockedError] = %v, %v", be, ok)
		}
		const want = "health: wait timed out (timeout 10m0s) after 65 checks in 10m0s; last: health: node 2 not caught up: " +
			"node 2 is not registered (absent from metadata); orders-0: node 2 is not in ISR {1,3}"
		if err.Error() != want {
			t.Errorf("Error() =\n%s\nwant\n%s", err, want)
		}
	})
}

func TestWaitKeepsReasonSeenBeforeDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		checks := 0
		err := poll.Wait(t.Context(), func(ctx context.Context) error {
			checks++
			if checks == 1 {
				return errors.New("ISR not full")
			}
			<-ctx.Done() // a slow check cut short by the deadline
			return ctx.Err()
		}, poll.Policy{Timeout: time.Minute})
		if !strings.HasSuffix(err.Error(), "last: ISR not full") || checks != 2 {
			t.Errorf("Wait = %v after %d checks, want the first reason kept", err, checks)
		}
	})
}

func TestWaitPermanent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("topic deleted")
		checks := 0
		err := poll.Wait(t.Context(), func(context.Context) error {
			checks++
			if checks == 3 {
				return poll.Permanent(boom)
			}
			return errors.New("not yet")
		}, poll.Policy{})
		if err != boom || checks != 3 {
			t.Errorf("Wait = %v after %d checks, want %v after 3", err, checks, boom)
		}
		if poll.Permanent(nil) != nil {
			t.Error("Permanent(nil) != nil")
		}
	})
}

func TestWaitParentContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		err := poll.Wait(ctx, func(context.Context) error { return errors.New("never") }, poll.Policy{})
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, poll.ErrTimedOut) {
			t.Errorf("Wait = %v, want the parent's deadline, not the policy's", err)
		}
	})
}
