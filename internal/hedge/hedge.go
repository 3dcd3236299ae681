// Package hedge sends reads that any of several brokers can answer so that
// one hung broker does not stall them.
//
// A hung broker (stopped with SIGSTOP, cut off by a network partition, stuck
// in a long GC pause) accepts a request, or a connection attempt, and holds
// it until the client's timeout: 10s by default in franz-go, which then
// retries on another broker. A healthy broker answers metadata-sized reads in
// milliseconds. So a read is hedged: when one broker has not answered within
// [Delay], the same read goes to another broker as well, and the first answer
// wins. At most [MaxHedges] extra copies are sent for slowness, so a cluster
// whose every broker is slow (a metadata response of a million partitions)
// sees at most that many duplicates; a copy that fails outright (a refused
// connection) is replaced at once.
package hedge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Delay is how long a copy of a read runs alone before the next is sent;
// MaxHedges is how many copies may be added for slowness alone.
const (
	Delay     = time.Second
	MaxHedges = 2
)

// An Attempt sends one copy of a read and returns the answer and the id of
// the broker that gave it (negative if unknown).
type Attempt func(ctx context.Context) (kmsg.Response, int32, error)

// Do runs attempts in order, the next one after [Delay] (at most [MaxHedges]
// times) or as soon as one fails, and returns the first answer. Attempts
// still running when it returns are cancelled. It returns every attempt's
// error if all fail, and the cause of ctx (with what failed so far) if ctx
// ends first.
func Do(ctx context.Context, attempts []Attempt) (kmsg.Response, int32, error) {
	return do(ctx, attempts, Delay)
}

func do(ctx context.Context, attempts []Attempt, delay time.Duration) (kmsg.Response, int32, error) {
	if len(attempts) == 0 {
		return nil, -1, errors.New("no broker to ask")
	}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	type answer struct {
		resp kmsg.Response
		id   int32
		err  error
	}
	answers := make(chan answer, len(attempts)) // never blocks a late attempt
	next, running, hedges := 0, 0, 0
	launch := func() {
		a := attempts[next]
		next++
		running++
		go func() {
			resp, id, err := a(actx)
			answers <- answer{resp, id, err}
		}()
	}
	launch()
	timer := time.NewTimer(delay)
	defer timer.Stop()
	var errs []error
	for {
		select {
		case a := <-answers:
			running--
			if a.err == nil {
				return a.resp, a.id, nil
			}
			errs = append(errs, a.err)
			if next < len(attempts) {
				launch()
				timer.Reset(delay)
			} else if running == 0 {
				return nil, -1, errors.Join(errs...)
			}
		case <-timer.C:
			if next < len(attempts) && hedges < MaxHedges {
				hedges++
				launch()
				timer.Reset(delay)
			}
		case <-ctx.Done():
			err := errors.Join(errs...)
			if err == nil {
				err = ctx.Err()
			}
			return nil, -1, CtxErr(ctx, err)
		}
	}
}

// CtxErr returns err, prefixed with the cause of ctx when ctx has ended and
// err does not already say so.
func CtxErr(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	c := context.Cause(ctx)
	if c == nil || errors.Is(err, c) {
		return err
	}
	return fmt.Errorf("%w: %w", c, err)
}

// ViaClient returns n attempts that each send the request mk builds through
// cl's own routing, which picks the next broker in turn for each (and, for
// metadata, updates cl's view of the brokers).
func ViaClient(cl *kgo.Client, n int, mk func() kmsg.Request) []Attempt {
	a := func(ctx context.Context) (kmsg.Response, int32, error) {
		sh := cl.RequestSharded(ctx, mk())
		if len(sh) == 0 {
			return nil, -1, errors.New("no response")
		}
		return sh[0].Resp, sh[0].Meta.NodeID, sh[0].Err
	}
	out := make([]Attempt, n)
	for i := range out {
		out[i] = a
	}
	return out
}

// ToBrokers returns attempts that send the request mk builds to each of ids
// in turn, directly.
func ToBrokers(cl *kgo.Client, ids []int32, mk func() kmsg.Request) []Attempt {
	out := make([]Attempt, 0, len(ids))
	for _, id := range ids {
		out = append(out, func(ctx context.Context) (kmsg.Response, int32, error) {
			resp, err := cl.Broker(int(id)).Request(ctx, mk())
			if err != nil {
				return nil, id, fmt.Errorf("broker %d: %w", id, err)
			}
			return resp, id, nil
		})
	}
	return out
}

// Rotate returns ids in turn, starting k places after first (or k places
// after the start, if first is not among them): the broker known to answer,
// or a different one for each of several reads in parallel.
func Rotate(ids []int32, first int32, k int) []int32 {
	i := max(slices.Index(ids, first), 0)
	out := make([]int32, len(ids))
	for j := range ids {
		out[j] = ids[(i+k+j)%len(ids)]
	}
	return out
}
