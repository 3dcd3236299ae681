package hedge

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fake makes attempts; attempt returns one that answers as broker id after d, or fails
// with err after d; it records that it started and whether it was cancelled.
type fake struct {
	started, cancelled atomic.Int32
}

func (f *fake) attempt(id int32, d time.Duration, err error) Attempt {
	return func(ctx context.Context) (kmsg.Response, int32, error) {
		f.started.Add(1)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			f.cancelled.Add(1)
			return nil, id, ctx.Err()
		}
		if err != nil {
			return nil, id, err
		}
		resp := kmsg.NewPtrMetadataResponse()
		resp.ControllerID = id
		return resp, id, nil
	}
}

const delay = 20 * time.Millisecond

func TestFirstAnswerWins(t *testing.T) {
	var f fake
	resp, id, err := do(t.Context(), []Attempt{f.attempt(1, 0, nil), f.attempt(2, 0, nil)}, delay)
	if err != nil || id != 1 || resp.(*kmsg.MetadataResponse).ControllerID != 1 {
		t.Fatalf("got %v from %d, err %v; want broker 1's answer", resp, id, err)
	}
	if n := f.started.Load(); n != 1 {
		t.Errorf("%d attempts started, want 1 (the first answered at once)", n)
	}
}

func TestHungBrokerIsHedged(t *testing.T) {
	var f fake
	start := time.Now()
	_, id, err := do(t.Context(), []Attempt{f.attempt(1, time.Hour, nil), f.attempt(2, 0, nil)}, delay)
	if err != nil || id != 2 {
		t.Fatalf("answer from %d, err %v; want broker 2", id, err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("took %v with broker 1 hung, want about %v", took, delay)
	}
	waitFor(t, func() bool { return f.cancelled.Load() == 1 }, "the hung attempt to be cancelled")
}

func TestFailureIsReplacedAtOnce(t *testing.T) {
	var f fake
	start := time.Now()
	_, id, err := do(t.Context(), []Attempt{f.attempt(1, 0, errors.New("refused")), f.attempt(2, 0, nil)}, time.Hour)
	if err != nil || id != 2 {
		t.Fatalf("answer from %d, err %v; want broker 2", id, err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("took %v, want the failed attempt replaced at once", took)
	}
}

func TestAtMostMaxHedgesForSlowness(t *testing.T) {
	var f fake
	var as []Attempt
	for id := range int32(6) {
		as = append(as, f.attempt(id, 10*delay, nil))
	}
	if _, _, err := do(t.Context(), as, delay); err != nil {
		t.Fatal(err)
	}
	if n := f.started.Load(); n != 1+MaxHedges {
		t.Errorf("%d attempts started for slow brokers, want %d", n, 1+MaxHedges)
	}
}

func TestAllFail(t *testing.T) {
	var f fake
	_, _, err := do(t.Context(), []Attempt{f.attempt(1, 0, errors.New("broker 1: refused")), f.attempt(2, 0, errors.New("broker 2: refused"))}, delay)
	if err == nil || !strings.Contains(err.Error(), "broker 1: refused") || !strings.Contains(err.Error(), "broker 2: refused") {
		t.Errorf("err %v, want both failures", err)
	}
	if _, _, err := do(t.Context(), nil, delay); err == nil {
		t.Error("no attempts: want an error")
	}
}

func TestContextCause(t *testing.T) {
	var f fake
	why := errors.New("no answer within 50ms")
	ctx, cancel := context.WithTimeoutCause(t.Context(), 50*time.Millisecond, why)
	defer cancel()
	_, _, err := do(ctx, []Attempt{f.attempt(2, 0, errors.New("broker 2: refused")), f.attempt(1, time.Hour, nil)}, time.Hour)
	if !errors.Is(err, why) || !strings.Contains(err.Error(), "broker 2: refused") {
		t.Errorf("err %v, want the cause and what failed so far", err)
	}
	waitFor(t, func() bool { return f.cancelled.Load() == 1 }, "the hung attempt to be cancelled")
}

func TestRotate(t *testing.T) {
	ids := []int32{1, 2, 3, 4}
	for _, tc := range []struct {
		first int32
		k     int
		want  []int32
	}{
		{first: 1, k: 0, want: []int32{1, 2, 3, 4}},
		{first: 3, k: 0, want: []int32{3, 4, 1, 2}},
		{first: 3, k: 2, want: []int32{1, 2, 3, 4}},
		{first: 9, k: 1, want: []int32{2, 3, 4, 1}},
	} {
		if diff := cmp.Diff(tc.want, Rotate(ids, tc.first, tc.k)); diff != "" {
			t.Errorf("Rotate(%v, %d, %d) (-want +got):\n%s", ids, tc.first, tc.k, diff)
		}
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting 5s for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
