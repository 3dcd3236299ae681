package health

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrTimeout reports that a [Wait] reached its [Policy.Timeout]; the
// [*WaitError] that wraps it also carries the last reason observed.
var ErrTimeout = errors.New("health: wait timed out")

// The defaults of a zero [Policy].
const (
	DefaultInitial    = 250 * time.Millisecond // the first pause
	DefaultMax        = 10 * time.Second       // the longest pause (or Initial, if longer)
	DefaultMultiplier = 2.0                    // the growth of each pause over the last
	DefaultTimeout    = 5 * time.Minute        // how long a Wait lasts at most
)

// A Policy is a bounded exponential back-off with a deadline: after the n-th
// failed check (from 0), [Wait] pauses Initial×Multiplier^n, at most Max, and
// gives up once Timeout has passed since it started. A zero field takes its
// default ([DefaultInitial], [DefaultMax], [DefaultMultiplier],
// [DefaultTimeout]); there is no jitter, so waits are reproducible.
type Policy struct {
	Initial    time.Duration `json:"initial,omitempty"`    // the first pause
	Max        time.Duration `json:"max,omitempty"`        // the longest pause
	Multiplier float64       `json:"multiplier,omitempty"` // the growth of each pause, at least 1
	Timeout    time.Duration `json:"timeout,omitempty"`    // how long Wait lasts at most
}

func (p Policy) withDefaults() Policy {
	if p.Initial == 0 {
		p.Initial = DefaultInitial
	}
	if p.Max == 0 {
		p.Max = max(DefaultMax, p.Initial)
	}
	if p.Multiplier == 0 {
		p.Multiplier = DefaultMultiplier
	}
	if p.Timeout == 0 {
		p.Timeout = DefaultTimeout
	}
	return p
}

// Validate reports a policy [Wait] refuses: a negative duration, a
// multiplier below 1, or Max below Initial.
func (p Policy) Validate() error {
	switch {
	case p.Initial < 0, p.Max < 0, p.Timeout < 0:
		return fmt.Errorf("health: policy %+v: durations must not be negative", p)
	case p.Multiplier != 0 && !(p.Multiplier >= 1):
		return fmt.Errorf("health: policy multiplier %v: must be at least 1", p.Multiplier)
	case p.Max != 0 && p.Max < p.Initial:
		return fmt.Errorf("health: policy max %v is below initial %v", p.Max, p.Initial)
	}
	return nil
}

// Delay returns the pause after the n-th failed check (n counts from 0), with
// zero fields taking their defaults.
func (p Policy) Delay(n int) time.Duration {
	p = p.withDefaults()
	d := float64(p.Initial)
	for range n {
		d *= p.Multiplier
		if d >= float64(p.Max) {
			return p.Max
		}
	}
	return min(time.Duration(d), p.Max)
}

// A Condition reports whether what a [Wait] awaits holds: nil if it does, or
// an error saying why not yet (a [*BlockedError] from [Verdict.Err], an I/O
// error, anything). Wrap an error with [Permanent] to stop waiting at once.
// A Condition must return promptly once ctx is done.
type Condition func(ctx context.Context) error

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as final: a [Wait] whose condition returns it stops and
// returns err (unmarked) without waiting further. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// A WaitError reports a [Wait] that gave up: its deadline passed ([ErrTimeout])
// or its context ended. It unwraps to both the cause and the last reason, so
// errors.Is(err, ErrTimeout) and errors.AsType[*BlockedError](err) work.
type WaitError struct {
	// Cause is why the wait ended: an error wrapping ErrTimeout, or the
	// cause of the parent context's end.
	Cause error
	// Last is the last reason the condition gave, nil if it never ran.
	Last error
	// Checks is how many times the condition ran; Waited how long the wait
	// lasted.
	Checks int
	Waited time.Duration
}

// Error renders the cause, the effort and the last reason.
func (e *WaitError) Error() string {
	s := fmt.Sprintf("%v after %d checks in %v", e.Cause, e.Checks, e.Waited.Round(time.Millisecond))
	if e.Last != nil {
		s += "; last: " + e.Last.Error()
	}
	return s
}

// Unwrap returns the cause and the last reason.
func (e *WaitError) Unwrap() []error {
	if e.Last == nil {
		return []error{e.Cause}
	}
	return []error{e.Cause, e.Last}
}

// Wait runs cond until it returns nil, pausing between checks as p says, and
// returns nil once it does. It returns a [*WaitError] with the last reason
// when p.Timeout passes or ctx ends first, the unmarked error if cond returns
// a [Permanent] one, and p's validation error before any check if p is
// invalid. It never sleeps longer than the next check needs, and checks at
// once at the start.
func Wait(ctx context.Context, cond Condition, p Policy) error {
	if cond == nil {
		return errors.New("health: Wait needs a condition (cond is nil)")
	}
	if err := p.Validate(); err != nil {
		return err
	}
	p = p.withDefaults()
	start := time.Now()
	ctx, cancel := context.WithTimeoutCause(ctx, p.Timeout, fmt.Errorf("%w (timeout %v)", ErrTimeout, p.Timeout))
	defer cancel()
	var last error
	giveUp := func(checks int) error {
		return &WaitError{Cause: context.Cause(ctx), Last: last, Checks: checks, Waited: time.Since(start)}
	}
	for n := 0; ; n++ {
		err := cond(ctx)
		if err == nil {
			return nil
		}
		if pe, ok := errors.AsType[*permanentError](err); ok {
			return pe.err
		}
		if ctx.Err() == nil || last == nil {
			last = err // once ctx is done, keep the reason seen before it
		}
		if ctx.Err() != nil {
			return giveUp(n + 1)
		}
		t := time.NewTimer(p.Delay(n))
		select {
		case <-ctx.Done():
			t.Stop()
			return giveUp(n + 1)
		case <-t.C:
		}
	}
}

// Until takes snapshots with [Take] until check approves one, pausing and
// giving up as p says, and returns the last snapshot taken (also on error, if
// any was). A failed Take counts as "not yet", with its error as the reason.
//
//	snap, err := health.Until(ctx, cl, func(s health.Snapshot) health.Verdict {
//		return health.CaughtUp(s, 2, health.LeadsPreferred())
//	}, health.Policy{Timeout: 10 * time.Minute})
func Until(ctx context.Context, cl *kgo.Client, check func(Snapshot) Verdict, p Policy, opts ...TakeOption) (Snapshot, error) {
	if cl == nil || check == nil {
		return Snapshot{}, errors.New("health: Until needs a client and a check (one is nil)")
	}
	if _, err := takeConfigOf(opts); err != nil {
		return Snapshot{}, err
	}
	var last Snapshot
	err := Wait(ctx, func(ctx context.Context) error {
		s, err := Take(ctx, cl, opts...)
		if err != nil {
			return err
		}
		last = s
		return check(s).Err()
	}, p)
	return last, err
}
