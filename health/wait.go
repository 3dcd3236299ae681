package health

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kupgrade/kupgrade/internal/poll"
)

// ErrTimeout reports that a wait ([Until], or a Runner's gate or catch-up
// wait) ran out of time; the error that wraps it also carries the last
// reason observed, so errors.Is(err, ErrUnsafe) and the like still work.
var ErrTimeout = poll.ErrTimedOut

// untilPolicy is how often [Until] takes a snapshot: at once, then after a
// pause growing from 200ms to at most 1s, so that a caller's timings are
// accurate to about a second.
var untilPolicy = poll.Policy{Initial: 200 * time.Millisecond, Max: time.Second, Multiplier: 2}

// Until takes snapshots with [Take] until check approves one, at once and
// then after a pause growing from 200ms to at most 1s, and returns the last
// snapshot taken (also on error, if any was). A failed Take counts as "not
// yet", with its error as the reason. After timeout (zero or less: 5m) it
// gives up with an error that wraps [ErrTimeout] and the last reason (a
// [*BlockedError] from check's verdict, or Take's error).
//
//	snap, err := health.Until(ctx, cl, func(s health.Snapshot) health.Verdict {
//		return health.CaughtUp(s, 2, health.LeadsPreferred())
//	}, 10*time.Minute)
func Until(ctx context.Context, cl *kgo.Client, check func(Snapshot) Verdict, timeout time.Duration, opts ...TakeOption) (Snapshot, error) {
	if cl == nil || check == nil {
		return Snapshot{}, errors.New("health: Until needs a client and a check (one is nil)")
	}
	if _, err := takeConfigOf(opts); err != nil {
		return Snapshot{}, err
	}
	p := untilPolicy
	p.Timeout = max(timeout, 0)
	var last Snapshot
	err := poll.Wait(ctx, func(ctx context.Context) error {
		s, err := Take(ctx, cl, opts...)
		if err != nil {
			return err
		}
		last = s
		return check(s).Err()
	}, p)
	return last, err
}
