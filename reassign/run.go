package reassign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kupgrade/kupgrade/internal/poll"
)

// A run is one execution in progress: the journal, the batcher rebuilt from
// it, and what is not journaled (clocks, counters).
type run struct {
	e        *Executor
	cfg      *config
	log      *slog.Logger
	j        *journal
	b        *Batcher
	fl       []flight
	idx      map[string][]int // partKey → move indices
	excluded map[int32]bool
	start    time.Time
	dirty    bool // the journal changed since it was saved
	starved  bool // pending moves, none in flight, and the batcher hands out none

	m0 int64 // bytes moved at the first measurement, and when
	t0 time.Time

	// Brokers and topics whose throttles this run changed, to check at
	// the end that they show the configs as they were.
	touchedBrokers map[int32]bool
	touchedTopics  map[string]bool
}

// note journals throttle changes to apply (the caller saves the journal
// before applying them) and remembers what they touch.
func (r *run) note(cs ConfigChanges) {
	r.j.addUnapplied(cs)
	for _, c := range cs {
		r.touch(c)
	}
}

func (r *run) touch(c ConfigChange) {
	if c.Resource == BrokerResource {
		r.touchedBrokers[c.Broker] = true
	} else {
		r.touchedTopics[c.Topic] = true
	}
}

// flight is what a run knows of a move beyond the journal.
type flight struct {
	since    time.Time // submitted or adopted: the budget's clock
	cancelAt time.Time // cancel (or reorder) sent
	share    int       // most moves seen in flight on one of its brokers
	missed   int       // consecutive polls the move was neither listed nor done
	copied   int64
}

func newRun(e *Executor, cfg *config, j *journal) (*run, error) {
	moves := make(Moves, len(j.Moves))
	for i := range j.Moves {
		moves[i] = j.Moves[i].Move
	}
	b, err := NewBatcher(moves, cfg.batch...)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	r := &run{e: e, cfg: cfg, j: j, b: b, fl: make([]flight, len(moves)), idx: make(map[string][]int), excluded: make(map[int32]bool), start: now,
		log: cfg.logger.With("run", j.ID), touchedBrokers: make(map[int32]bool), touchedTopics: make(map[string]bool)}
	owned := j.Ledger.Owned() // what a crashed run changed and has not restored
	for b := range owned.Brokers {
		r.touchedBrokers[b] = true
	}
	for t := range owned.Topics {
		r.touchedTopics[t] = true
	}
	for _, c := range j.unapplied() {
		r.touch(c)
	}
	for _, x := range j.Excluded {
		r.excluded[x] = true
	}
	for i := range j.Moves {
		rec := &j.Moves[i]
		k := partKey(rec.Move.Topic, rec.Move.Partition)
		r.idx[k] = append(r.idx[k], i)
		switch {
		case rec.St == stateFinished:
			err = b.Finished(rec.Move)
		case rec.St == stateFailed:
			err = b.Cancelled(rec.Move)
		case rec.inFlight():
			err = b.Adopt(rec.Move)
			r.fl[i].since, r.fl[i].cancelAt = now, now
		}
		if err != nil {
			return nil, err
		}
	}
	return r, nil
}

// index returns the record of a move the batcher handed out.
func (r *run) index(m Move) int {
	for _, i := range r.idx[partKey(m.Topic, m.Partition)] {
		if r.j.Moves[i].St == statePending && slices.Equal(r.j.Moves[i].Move.To, m.To) {
			return i
		}
	}
	for _, i := range r.idx[partKey(m.Topic, m.Partition)] {
		if slices.Equal(r.j.Moves[i].Move.To, m.To) {
			return i
		}
	}
	return -1
}

func (r *run) save(ctx context.Context) error {
	b, err := json.Marshal(r.j)
	if err != nil {
		return fmt.Errorf("reassign: encode state: %w", err)
	}
	if err := r.e.store.Save(ctx, b); err != nil {
		return fmt.Errorf("reassign: save state: %w", causeOf(ctx, err))
	}
	r.dirty = false
	return nil
}

func (r *run) saveIfDirty(ctx context.Context) error {
	if !r.dirty {
		return nil
	}
	return r.save(ctx)
}

// loop polls until every move ended, ctx ends, or the cluster cannot be
// observed for long.
func (r *run) loop(ctx context.Context, ctl *runCtl, abort bool) (MoveResults, error) {
	patience := 4 * r.cfg.requestTimeout
	lastOK := time.Now()
	for {
		err := r.step(ctx, abort)
		if ctx.Err() != nil {
			return r.stopped(ctx)
		}
		if err == nil {
			lastOK = time.Now()
		} else {
			r.log.LogAttrs(ctx, slog.LevelWarn, "poll failed", slog.Any("err", err))
			if time.Since(lastOK) > patience {
				return r.j.results(), fmt.Errorf("reassign: no successful poll for %v, giving up (Resume later with the same Store): %w", patience, err)
			}
		}
		if r.b.Done() {
			return r.finish(ctx)
		}
		if r.starved {
			// Only a broker given 0 slots holds moves back for good.
			return r.j.results(), fmt.Errorf("%w: %d moves can never start: a broker they involve has no slots (BrokerSlots 0); Abort the run", ErrInvalid, r.b.Counts().Pending)
		}
		t := time.NewTimer(r.cfg.poll)
		select {
		case <-t.C:
		case req := <-ctl.rates:
			t.Stop()
			req.errc <- r.setRate(ctx, req.rate)
		case <-ctx.Done():
			t.Stop()
			return r.stopped(ctx)
		}
	}
}

// stopped reports a run whose ctx ended. Everything it did is journaled
// already: the moves in flight continue on the cluster.
func (r *run) stopped(ctx context.Context) (MoveResults, error) {
	n := r.b.Counts().InFlight
	r.log.LogAttrs(ctx, slog.LevelWarn, "run stopped", slog.Int("inFlight", n), slog.Any("cause", context.Cause(ctx)))
	return r.j.results(), fmt.Errorf("reassign: stopped with %d move(s) in flight, which continue on the cluster (Resume with the same Store adopts them): %w", n, context.Cause(ctx))
}

// finish restores every throttle and marks the run done.
func (r *run) finish(ctx context.Context) (MoveResults, error) {
	r.note(r.j.Ledger.Close())
	r.dirty = true
	if err := r.save(ctx); err != nil {
		return r.j.results(), err
	}
	v, err := metadata(ctx, r.e.cl, r.cfg.requestTimeout, []string{})
	if err != nil {
		return r.j.results(), err
	}
	_, left, err := r.apply(ctx, v)
	if len(left) > 0 {
		if serr := r.save(ctx); serr != nil {
			return r.j.results(), serr
		}
		if err == nil {
			down := make(map[int32]bool)
			for _, c := range left {
				down[c.Broker] = true
			}
			err = fmt.Errorf("broker %s down", brokersAre(sortedInt32(down)))
		}
		r.log.LogAttrs(ctx, slog.LevelWarn, "throttles left", slog.Any("changes", left), slog.Any("err", err))
		r.progress(ctx, nil)
		return r.j.results(), &ThrottleError{Changes: left, Err: err}
	}
	if err := r.awaitRestored(ctx); err != nil {
		// The controller took every change; a broker is slow to apply one.
		r.log.LogAttrs(ctx, slog.LevelWarn, "restored throttles not yet visible on every broker", slog.Any("err", err))
	}
	r.j.Done = true
	if err := r.save(ctx); err != nil {
		return r.j.results(), err
	}
	p := r.progress(ctx, nil)
	r.log.LogAttrs(ctx, slog.LevelInfo, "run finished", slog.Int("finished", p.Finished), slog.Int("failed", p.Failed),
		slog.Int64("bytes", p.BytesMoved), slog.Duration("took", p.Elapsed))
	return r.j.results(), nil
}

// awaitRestored waits, at most RequestTimeout, until every broker and
// topic whose throttles the run changed shows them as they were before:
// brokers apply config changes a moment after the controller commits them,
// and each broker answers DescribeConfigs from its own copy.
func (r *run) awaitRestored(ctx context.Context) error {
	d := r.cfg.requestTimeout
	topics := slices.Sorted(maps.Keys(r.touchedTopics))
	if topics == nil {
		topics = []string{}
	}
	v, err := metadata(ctx, r.e.cl, d, topics)
	if err != nil {
		return err
	}
	var brokers []int32
	for _, b := range sortedInt32(r.touchedBrokers) {
		if v.isAlive(b) && !r.excluded[b] {
			brokers = append(brokers, b)
		}
	}
	topics = slices.DeleteFunc(topics, func(t string) bool { _, ok := v.topics[t]; return !ok })
	if len(brokers) == 0 && len(topics) == 0 {
		return nil
	}
	before := r.j.Ledger.Before()
	want := make(map[string]string)
	for _, b := range brokers {
		flatBroker(want, b, before.Brokers[b])
	}
	for _, t := range topics {
		flatTopic(want, t, before.Topics[t])
	}
	ctx, cancel := context.WithTimeoutCause(ctx, d, fmt.Errorf("reassign: brokers did not show the restored throttles within %v", d))
	defer cancel()
	var got map[string]string
	var last error
	err = poll.Every(ctx, 200*time.Millisecond, func(ctx context.Context) bool { // an observed condition, bounded by ctx
		now, err := readThrottles(ctx, r.e.adm, d, brokers, topics)
		got, last = make(map[string]string), err
		if err != nil {
			return false
		}
		for b, bt := range now.Brokers {
			flatBroker(got, b, bt)
		}
		for t, tt := range now.Topics {
			flatTopic(got, t, tt)
		}
		return maps.Equal(got, want)
	})
	if err != nil {
		return fmt.Errorf("%w (want %v, have %v, last error %v)", err, want, got, last)
	}
	return nil
}

// awaitRates waits, at most RequestTimeout, until the brokers whose rates
// applied set report them: brokers apply dynamic configs asynchronously (in
// ZooKeeper mode on a change notification), and a move submitted before
// copies unthrottled. If they do not, it logs why and goes on: the moves are
// throttled as soon as the brokers catch up.
func (r *run) awaitRates(ctx context.Context, applied ConfigChanges) {
	want := make(map[string]string)
	var brokers []int32
	for _, c := range applied {
		if c.Resource != BrokerResource || c.Op != kadm.SetConfig {
			continue
		}
		want["broker "+strconv.Itoa(int(c.Broker))+" "+c.Name] = c.Value
		if !slices.Contains(brokers, c.Broker) {
			brokers = append(brokers, c.Broker)
		}
	}
	if len(want) == 0 {
		return
	}
	d := r.cfg.requestTimeout
	wctx, cancel := context.WithTimeoutCause(ctx, d, fmt.Errorf("brokers did not report the throttle rates within %v", d))
	defer cancel()
	var last error
	missing := want
	err := poll.Every(wctx, 100*time.Millisecond, func(wctx context.Context) bool { // an observed condition, bounded by wctx
		now, err := readThrottles(wctx, r.e.adm, d, brokers, nil)
		last = err
		if err != nil {
			return false
		}
		got := make(map[string]string)
		for b, bt := range now.Brokers {
			flatBroker(got, b, bt)
		}
		missing = make(map[string]string)
		for k, v := range want {
			if got[k] != v {
				missing[k] = v
			}
		}
		return len(missing) == 0
	})
	if err != nil && ctx.Err() == nil {
		r.log.LogAttrs(ctx, slog.LevelWarn, "submitting moves before every broker reports its throttle rate",
			slog.String("reason", err.Error()), slog.Any("missing", missing), slog.Any("lastError", last))
	}
}

func flatBroker(m map[string]string, b int32, bt brokerThrottle) {
	k := "broker " + strconv.Itoa(int(b)) + " "
	if bt.LeaderRate != nil {
		m[k+LeaderRateConfig] = *bt.LeaderRate
	}
	if bt.FollowerRate != nil {
		m[k+FollowerRateConfig] = *bt.FollowerRate
	}
}

func flatTopic(m map[string]string, t string, tt topicThrottle) {
	k := "topic " + t + " "
	if tt.LeaderReplicas != nil {
		m[k+LeaderReplicasConfig] = *tt.LeaderReplicas
	}
	if tt.FollowerReplicas != nil {
		m[k+FollowerReplicasConfig] = *tt.FollowerReplicas
	}
}

// apply journals nothing: it applies the journaled unapplied changes that it
// can (not those of brokers down, nor of brokers the run excludes, which
// are dropped) and keeps the rest. It returns the changes it applied and
// those it kept.
func (r *run) apply(ctx context.Context, v *view) (applied, left ConfigChanges, err error) {
	var cs ConfigChanges
	for _, c := range r.j.unapplied() {
		if c.Resource == BrokerResource && r.excluded[c.Broker] {
			r.dirty = true
			continue
		}
		cs = append(cs, c)
	}
	if len(cs) == 0 {
		r.j.Unapplied = nil
		return nil, nil, nil
	}
	left, err = applyChanges(ctx, r.e.cl, r.cfg.requestTimeout, cs, v.isAlive)
	if len(left) != len(cs) {
		r.log.LogAttrs(ctx, slog.LevelDebug, "throttles applied", slog.Int("changes", len(cs)-len(left)))
		r.dirty = true
	}
	r.j.Unapplied = nil
	r.j.addUnapplied(left)
	applied = slices.DeleteFunc(cs, func(c ConfigChange) bool { return slices.Contains(left, c) })
	return applied, left, err
}

// liveUnapplied reports whether throttle changes for live brokers or topics
// are waiting: no move may be submitted until they are applied.
func (r *run) liveUnapplied(v *view) bool {
	for _, c := range r.j.Unapplied {
		if c.Broker == nil || v.isAlive(*c.Broker) {
			return true
		}
	}
	return false
}

func (r *run) setRate(ctx context.Context, rate int64) error {
	cs, err := r.j.Ledger.SetRate(rate)
	if err != nil {
		return err
	}
	r.note(cs)
	r.dirty = true
	if err := r.save(ctx); err != nil {
		return err
	}
	v, err := metadata(ctx, r.e.cl, r.cfg.requestTimeout, []string{})
	if err != nil {
		return err
	}
	_, _, err = r.apply(ctx, v)
	if serr := r.saveIfDirty(ctx); err == nil {
		err = serr
	}
	r.log.LogAttrs(ctx, slog.LevelInfo, "throttle rate changed", slog.Int64("rate", rate), slog.Any("err", err))
	return err
}

// inFlightSet returns the topics and partitions of the moves in flight.
func (r *run) inFlightSet() ([]string, kadm.TopicsSet) {
	set := make(kadm.TopicsSet)
	for i := range r.j.Moves {
		if r.j.Moves[i].inFlight() {
			set.Add(r.j.Moves[i].Move.Topic, r.j.Moves[i].Move.Partition)
		}
	}
	topics := slices.Sorted(maps.Keys(set))
	if topics == nil {
		topics = []string{} // brokers only; nil would ask for every topic
	}
	return topics, set
}

// step is one poll: observe, settle the moves in flight, lift the throttles
// of those that ended, submit the next moves, report progress.
func (r *run) step(ctx context.Context, abort bool) error {
	d := r.cfg.requestTimeout
	topics, set := r.inFlightSet()
	v, err := observe(ctx, r.e.cl, r.e.adm, d, topics, set)
	if err != nil {
		return err
	}
	r.updateShares()
	t := &tick{r: r, ctx: ctx, now: time.Now(), cancels: make(kadm.AlterPartitionAssignmentsReq)}
	for i := range r.j.Moves {
		rec := &r.j.Moves[i]
		m := rec.Move
		if rec.St == statePending {
			if abort {
				t.end(i, stateFailed, ErrAborted, "not started: the run was aborted")
			}
			continue
		}
		if !rec.inFlight() {
			continue
		}
		ps, exists := v.part(m.Topic, m.Partition)
		if !exists {
			t.end(i, stateFailed, ErrStale, "the partition no longer exists")
			continue
		}
		ra, listed := v.listed(m.Topic, m.Partition)
		switch rec.St {
		case stateSubmitted:
			t.submitted(i, v, ps, ra, listed, abort)
		case stateCancelling:
			t.cancelling(i, ps, listed)
		case stateReverting:
			t.reverting(i, ps, listed)
		}
	}
	if err := r.sendCancels(ctx, t.cancels); err != nil {
		return err
	}

	// Lift the throttles of the moves that ended: journal, then apply.
	r.note(r.j.Ledger.Finish(t.ended...))
	if len(t.ended) > 0 {
		r.dirty = true
	}
	if err := r.saveIfDirty(ctx); err != nil {
		return err
	}
	_, _, applyErr := r.apply(ctx, v)
	if err := r.saveIfDirty(ctx); err != nil {
		return err
	}
	if !abort {
		if r.liveUnapplied(v) {
			r.progress(ctx, v)
			return applyErr // no new moves until their throttles are in place
		}
		if err := r.submit(ctx, v, t.resub); err != nil {
			r.progress(ctx, v)
			return err
		}
	}
	r.progress(ctx, v)
	return applyErr
}

// sendCancels sends the cancellations and replica-order restores of a step,
// after journaling them.
func (r *run) sendCancels(ctx context.Context, cancels kadm.AlterPartitionAssignmentsReq) error {
	if len(cancels) == 0 {
		return nil
	}
	if err := r.saveIfDirty(ctx); err != nil {
		return err
	}
	perr, err := alterAssignments(ctx, r.e.adm, r.cfg.requestTimeout, cancels)
	if err != nil {
		return err
	}
	for t, ps := range perr {
		for p, err := range ps {
			if !errors.Is(err, kerr.NoReassignmentInProgress) {
				r.log.LogAttrs(ctx, slog.LevelWarn, "cancel or reorder refused", slog.String("topic", t), slog.Int("partition", int(p)), slog.Any("err", err))
			}
		}
	}
	return nil
}

// A tick is one step's judgement of the moves in flight: the moves that
// ended (whose throttles can go), the cancellations and replica-order
// restores to send, and the moves to submit again.
type tick struct {
	r       *run
	ctx     context.Context // for logging
	now     time.Time
	ended   Moves // ours, whose throttles can go
	cancels kadm.AlterPartitionAssignmentsReq
	resub   []int
}

// end records move i as ended in state st (with kind and reason if it did
// not simply finish) and tells the batcher.
func (t *tick) end(i int, st string, kind error, reason string) {
	r := t.r
	rec := &r.j.Moves[i]
	rec.St = st
	rec.Kind, rec.Reason = "", ""
	if kind != nil {
		rec.Kind, rec.Reason = kindOf(kind), reason
	}
	var err error
	if st == stateFinished {
		err = r.b.Finished(rec.Move)
	} else {
		err = r.b.Cancelled(rec.Move)
	}
	if err != nil {
		r.log.LogAttrs(t.ctx, slog.LevelError, "batcher lost a move", slog.Any("err", err))
	}
	if !rec.Foreign {
		t.ended = append(t.ended, rec.Move)
	}
	r.dirty = true
	lvl := slog.LevelInfo
	if kind != nil {
		lvl = slog.LevelWarn
	}
	r.log.LogAttrs(t.ctx, lvl, "move "+st, slog.String("move", rec.Move.String()), slog.String("reason", reason),
		slog.Duration("took", t.now.Sub(r.fl[i].since)))
}

// cancel starts cancelling move i, for kind and reason.
func (t *tick) cancel(i int, kind error, reason string) {
	r := t.r
	rec := &r.j.Moves[i]
	rec.St, rec.Kind, rec.Reason = stateCancelling, kindOf(kind), reason
	r.fl[i].cancelAt = t.now
	t.cancels.CancelAssign(rec.Move.Topic, rec.Move.Partition)
	r.dirty = true
	r.log.LogAttrs(t.ctx, slog.LevelWarn, "cancelling move", slog.String("move", rec.Move.String()), slog.String("reason", reason))
}

// submitted judges a submitted move i: still copying (within its budget, to
// live brokers), done, dropped by the cluster, or changed by someone else.
func (t *tick) submitted(i int, v *view, ps partState, ra reassignee, listed, abort bool) {
	rec := &t.r.j.Moves[i]
	m := rec.Move
	fl := &t.r.fl[i]
	if listed {
		fl.missed = 0
		bud := budget(m.Bytes, fl.share, t.r.j.Ledger.Rate(), t.r.cfg.budgetFactor, t.r.cfg.budgetFloor)
		switch dead := v.deadOf(m.Adding()); {
		case !sameSet(ra.target(), m.To):
			t.end(i, stateFailed, ErrStale, fmt.Sprintf("someone else reassigned the partition to %v while the move was in flight", ra.target()))
		case abort && rec.Foreign:
			t.end(i, stateFailed, ErrAborted, "adopted reassignment left running: the run was aborted")
		case abort:
			t.cancel(i, ErrAborted, "cancelled: the run was aborted")
		case len(dead) > 0:
			t.cancel(i, ErrDeadBroker, fmt.Sprintf("cancelled: destination broker %s down", brokersAre(dead)))
		case t.now.Sub(fl.since) > bud:
			t.cancel(i, ErrTooSlow, fmt.Sprintf("cancelled: still copying after %v, over its budget of %v (%d bytes at %d B/s shared by %d)",
				t.now.Sub(fl.since).Round(time.Second), bud, m.Bytes, t.r.j.Ledger.Rate(), max(fl.share, 1)))
		}
		return
	}
	if sameSet(ps.replicas, m.To) {
		fl.missed = 0
		out := minus(m.To, ps.isr)
		bud := budget(m.Bytes, fl.share, t.r.j.Ledger.Rate(), t.r.cfg.budgetFactor, t.r.cfg.budgetFloor)
		switch dead := v.deadOf(out); {
		case len(out) == 0:
			t.end(i, stateFinished, nil, "")
		case len(dead) > 0:
			t.end(i, stateFinished, ErrDeadBroker, fmt.Sprintf("completed, but broker %s is down, out of the ISR", brokersAre(dead)))
		case abort || t.now.Sub(fl.since) > bud:
			t.end(i, stateFinished, ErrTooSlow, fmt.Sprintf("completed, but replicas %v are not back in the ISR after %v", out, t.now.Sub(fl.since).Round(time.Second)))
		}
		return
	}
	if sameSet(ps.replicas, union(m.From, m.To)) && fl.missed < 5 {
		// Done at the controller a moment ago; the broker that
		// answered the metadata request has not heard yet.
		fl.missed++
		return
	}
	if sameSet(ps.replicas, m.From) {
		switch fl.missed++; {
		case fl.missed < 2: // metadata may lag the controller; look again
		case rec.Foreign:
			t.end(i, stateFailed, ErrStale, "the reassignment was cancelled by someone else")
		case abort:
			t.end(i, stateFailed, ErrAborted, "not started: the run was aborted")
		case len(v.deadOf(m.Adding())) > 0:
			t.end(i, stateFailed, ErrDeadBroker, fmt.Sprintf("the cluster dropped the move and destination broker %s down", brokersAre(v.deadOf(m.Adding()))))
		case rec.Resubmits >= 3:
			t.end(i, stateFailed, ErrStale, fmt.Sprintf("the cluster dropped the reassignment %d times", rec.Resubmits+1))
		default:
			t.resub = append(t.resub, i)
		}
		return
	}
	if fl.missed++; fl.missed >= 2 { // twice in a row: not a lagging broker
		t.end(i, stateFailed, ErrStale, fmt.Sprintf("replicas are %v, neither the move's %v nor its target", ps.replicas, m.From))
	}
}

// cancelling judges move i while its cancel takes effect.
func (t *tick) cancelling(i int, ps partState, listed bool) {
	rec := &t.r.j.Moves[i]
	m := rec.Move
	fl := &t.r.fl[i]
	if listed {
		if t.now.Sub(fl.cancelAt) > t.r.cfg.cancelTimeout {
			t.end(i, stateFailed, kinds[rec.Kind], rec.Reason+fmt.Sprintf("; the cancel was not confirmed within %v", t.r.cfg.cancelTimeout))
		} else {
			t.cancels.CancelAssign(m.Topic, m.Partition) // again: harmless, and covers a lost request
		}
		return
	}
	switch {
	case sameSet(ps.replicas, union(m.From, m.To)) && !sameSet(m.From, m.To) && t.now.Sub(fl.cancelAt) <= t.r.cfg.cancelTimeout:
		// Metadata lags the controller: look again.
	case sameSet(ps.replicas, m.To) && len(minus(m.To, ps.isr)) == 0:
		t.end(i, stateFinished, nil, "completed before the cancel took effect")
	case sameSet(ps.replicas, m.To):
		t.end(i, stateFinished, kinds[rec.Kind], rec.Reason+"; it completed before the cancel took effect")
	case sameSet(ps.replicas, m.From) && !rec.Foreign && !slices.Equal(ps.replicas, m.From):
		// Kafka reverts to the original replicas, not their order:
		// restore it, so the preferred leader is the one before.
		rec.St = stateReverting
		fl.cancelAt, fl.missed = t.now, 0
		t.cancels.Assign(m.Topic, m.Partition, m.From)
		t.ended = append(t.ended, m)
		t.r.dirty = true
	case sameSet(ps.replicas, m.From):
		t.end(i, stateFailed, kinds[rec.Kind], rec.Reason)
	default:
		t.end(i, stateFailed, kinds[rec.Kind], rec.Reason+fmt.Sprintf("; replicas are now %v", ps.replicas))
	}
}

// reverting judges move i while its original replica order is restored.
func (t *tick) reverting(i int, ps partState, listed bool) {
	rec := &t.r.j.Moves[i]
	m := rec.Move
	fl := &t.r.fl[i]
	switch {
	case !listed && slices.Equal(ps.replicas, m.From):
		t.end(i, stateFailed, kinds[rec.Kind], rec.Reason)
	case t.now.Sub(fl.cancelAt) > t.r.cfg.cancelTimeout:
		t.end(i, stateFailed, kinds[rec.Kind], rec.Reason+fmt.Sprintf("; replica order %v not restored within %v (now %v)", m.From, t.r.cfg.cancelTimeout, ps.replicas))
	case !listed:
		if fl.missed++; fl.missed >= 2 {
			t.cancels.Assign(m.Topic, m.Partition, m.From)
			fl.missed = 0
		}
	}
}

// updateShares records, for each move in flight, the most moves in flight
// seen on one of its brokers: they split its throttle.
func (r *run) updateShares() {
	per := make(map[int32]int)
	for i := range r.j.Moves {
		if r.j.Moves[i].St == stateSubmitted {
			for _, b := range r.j.Moves[i].Move.Brokers() {
				per[b]++
			}
		}
	}
	for i := range r.j.Moves {
		if r.j.Moves[i].St == stateSubmitted {
			for _, b := range r.j.Moves[i].Move.Brokers() {
				r.fl[i].share = max(r.fl[i].share, per[b])
			}
		}
	}
}

// submit sends the moves the cluster dropped again, and the next batch.
func (r *run) submit(ctx context.Context, v *view, resub []int) error {
	now := time.Now()
	var send []int
	for _, i := range resub {
		rec := &r.j.Moves[i]
		rec.Resubmits++
		r.fl[i].missed = 0
		send = append(send, i)
		r.log.LogAttrs(ctx, slog.LevelWarn, "the cluster dropped a move; submitting it again", slog.String("move", rec.Move.String()))
	}
	begins, fresh, err := r.takeBatches(ctx)
	if err != nil {
		return err
	}
	send = append(send, fresh...)
	if c := r.b.Counts(); c.InFlight == 0 && c.Pending > 0 {
		r.starved = true
	}
	if len(send) == 0 {
		return r.saveIfDirty(ctx)
	}
	return r.send(ctx, v, now, send, fresh, begins, len(resub))
}

// notSubmitted records that move i was not submitted: it ended in state st
// (finished, or failed for kind and reason) when its checks ran.
func (r *run) notSubmitted(ctx context.Context, i int, st string, kind error, reason string) {
	rec := &r.j.Moves[i]
	rec.St = st
	var err error
	if st == stateFinished {
		err = r.b.Finished(rec.Move)
	} else {
		rec.Kind, rec.Reason = kindOf(kind), reason
		err = r.b.Cancelled(rec.Move)
	}
	if err != nil {
		r.log.LogAttrs(ctx, slog.LevelError, "batcher lost a move", slog.Any("err", err))
	}
	r.dirty = true
	lvl := slog.LevelWarn
	if st == stateFinished {
		lvl = slog.LevelInfo
	}
	r.log.LogAttrs(ctx, lvl, "move not submitted", slog.String("move", rec.Move.String()), slog.String("state", st), slog.String("reason", reason))
}

// takeBatches takes batches until the batcher has nothing more, checking
// each move against the partition as it is now: a move that fails its checks
// frees its slots for another. It returns the moves to submit (fresh, by
// index) and their throttles to begin (begins, with From as it is now).
func (r *run) takeBatches(ctx context.Context) (Moves, []int, error) {
	var begins Moves
	var fresh []int
	for {
		batch := r.b.Next().Moves
		if len(batch) == 0 {
			break
		}
		// Look at the batch's partitions afresh: they are not in v.
		set := make(kadm.TopicsSet)
		for _, m := range batch {
			set.Add(m.Topic, m.Partition)
		}
		bv, err := observe(ctx, r.e.cl, r.e.adm, r.cfg.requestTimeout, slices.Sorted(maps.Keys(set)), set)
		if err != nil {
			var ms Moves
			for _, i := range fresh {
				ms = append(ms, r.j.Moves[i].Move)
			}
			return nil, nil, errors.Join(err, r.b.Requeue(append(ms, batch...)...))
		}
		for _, m := range batch {
			i := r.index(m)
			if i < 0 {
				return nil, nil, fmt.Errorf("reassign: internal error: batcher handed out unknown move %v", m)
			}
			ps, ok := bv.part(m.Topic, m.Partition)
			_, listed := bv.listed(m.Topic, m.Partition)
			switch dead := bv.deadOf(m.Adding()); {
			case !ok:
				r.notSubmitted(ctx, i, stateFailed, ErrStale, "the partition does not exist")
			case listed:
				r.notSubmitted(ctx, i, stateFailed, ErrStale, "someone else is reassigning the partition")
			case slices.Equal(ps.replicas, m.To):
				r.notSubmitted(ctx, i, stateFinished, nil, "already done")
			case !sameSet(ps.replicas, m.From) && !sameSet(ps.replicas, m.To):
				r.notSubmitted(ctx, i, stateFailed, ErrStale, fmt.Sprintf("replicas are %v, the plan assumed %v", ps.replicas, m.From))
			case len(dead) > 0:
				r.notSubmitted(ctx, i, stateFailed, ErrDeadBroker, fmt.Sprintf("not submitted: destination broker %s down", brokersAre(dead)))
			default:
				// Throttle what actually moves, from the replicas there
				// now, and remember them as the move's origin.
				r.j.Moves[i].Move.From = slices.Clone(ps.replicas)
				begins = append(begins, r.j.Moves[i].Move)
				fresh = append(fresh, i)
			}
		}
	}
	return begins, fresh, nil
}

// send journals the moves to send with their throttles, applies the
// throttles, then submits the moves; the fresh ones are in flight from now,
// and resubmitted is how many the cluster had dropped before.
func (r *run) send(ctx context.Context, v *view, now time.Time, send, fresh []int, begins Moves, resubmitted int) error {
	// Journal the moves with their throttles, apply the throttles, then
	// submit. A crash in between leaves moves journaled as submitted that
	// the cluster does not know: a resumed run submits them again.
	r.note(r.j.Ledger.Begin(begins...))
	for _, i := range fresh {
		r.j.Moves[i].St = stateSubmitted
		r.fl[i] = flight{since: now}
	}
	r.dirty = true
	if err := r.save(ctx); err != nil {
		return errors.Join(err, r.unsubmit(ctx, fresh))
	}
	applied, _, err := r.apply(ctx, v)
	if err != nil && r.liveUnapplied(v) {
		return errors.Join(err, r.unsubmit(ctx, fresh))
	}
	r.awaitRates(ctx, applied)
	req := make(kadm.AlterPartitionAssignmentsReq)
	for _, i := range send {
		req.Assign(r.j.Moves[i].Move.Topic, r.j.Moves[i].Move.Partition, r.j.Moves[i].Move.To)
	}
	perr, err := alterAssignments(ctx, r.e.adm, r.cfg.requestTimeout, req)
	if err != nil {
		// The controller may have taken some: the next polls tell, and
		// submit again what it did not.
		return errors.Join(err, r.saveIfDirty(ctx))
	}
	var rejected Moves
	for _, i := range send {
		rec := &r.j.Moves[i]
		err := perr[rec.Move.Topic][rec.Move.Partition]
		switch {
		case err == nil:
		case kerr.IsRetriable(err):
			r.log.LogAttrs(ctx, slog.LevelWarn, "move not taken yet; will submit again", slog.String("move", rec.Move.String()), slog.Any("err", err))
		default:
			rec.St, rec.Kind, rec.Reason = stateFailed, kindOf(ErrRejected), err.Error()
			if err := r.b.Cancelled(rec.Move); err != nil {
				r.log.LogAttrs(ctx, slog.LevelError, "batcher lost a move", slog.Any("err", err))
			}
			rejected = append(rejected, rec.Move)
			r.log.LogAttrs(ctx, slog.LevelWarn, "move rejected", slog.String("move", rec.Move.String()), slog.Any("err", err))
		}
	}
	r.log.LogAttrs(ctx, slog.LevelInfo, "submitted", slog.Int("moves", len(send)-len(rejected)), slog.Int("rejected", len(rejected)), slog.Int("resubmitted", resubmitted))
	if len(rejected) > 0 {
		r.note(r.j.Ledger.Finish(rejected...))
		r.dirty = true
		if err := r.save(ctx); err != nil {
			return err
		}
		if _, _, err := r.apply(ctx, v); err != nil {
			return errors.Join(err, r.saveIfDirty(ctx))
		}
	}
	return r.saveIfDirty(ctx)
}

// unsubmit puts moves whose throttles could not be set back to pending, and
// journals the throttle changes that undo theirs.
func (r *run) unsubmit(ctx context.Context, is []int) error {
	var ms Moves
	for _, i := range is {
		r.j.Moves[i].St = statePending
		ms = append(ms, r.j.Moves[i].Move)
	}
	r.note(r.j.Ledger.Finish(ms...))
	r.dirty = true
	return errors.Join(r.b.Requeue(ms...), r.save(ctx))
}

// progress measures the copies in flight and reports.
func (r *run) progress(ctx context.Context, v *view) Progress {
	now := time.Now()
	p := Progress{Moves: len(r.j.Moves), Rate: r.j.Ledger.Rate(), Elapsed: now.Sub(r.start)}
	if v != nil {
		byBroker := make(map[int32]bool)
		set := make(kadm.TopicsSet)
		for i := range r.j.Moves {
			rec := &r.j.Moves[i]
			if rec.St != stateSubmitted {
				continue
			}
			for _, b := range rec.Move.Adding() {
				if v.isAlive(b) {
					byBroker[b] = true
					set.Add(rec.Move.Topic, rec.Move.Partition)
				}
			}
		}
		// Best effort, and never worth holding the poll up for long.
		sz, err := logDirSizes(ctx, r.e.cl, min(r.cfg.requestTimeout, 5*time.Second), sortedInt32(byBroker), set)
		if err != nil {
			r.log.LogAttrs(ctx, slog.LevelDebug, "progress: log dirs", slog.Any("err", err))
		}
		for i := range r.j.Moves {
			rec := &r.j.Moves[i]
			if rec.St != stateSubmitted {
				continue
			}
			var c int64
			answered := false
			for _, b := range rec.Move.Adding() {
				if _, ok := sz[b]; ok {
					answered = true
				}
				c += min(sz.of(b, rec.Move.Topic, rec.Move.Partition), rec.Move.Bytes)
			}
			if answered {
				r.fl[i].copied = c
			}
		}
	}
	for i := range r.j.Moves {
		rec := &r.j.Moves[i]
		want := rec.Move.Bytes * int64(len(rec.Move.Adding()))
		switch {
		case rec.St == statePending:
			p.Pending++
			p.Bytes += want
		case rec.inFlight():
			p.InFlight++
			p.Bytes += want
			p.BytesMoved += r.fl[i].copied
		case rec.St == stateFinished && rec.Kind == "":
			p.Finished++
			p.Bytes += want
			p.BytesMoved += want
		default:
			p.Failed++
		}
	}
	if r.t0.IsZero() {
		r.m0, r.t0 = p.BytesMoved, now
	}
	dests := make(map[int32]bool)
	for i := range r.j.Moves {
		if rec := &r.j.Moves[i]; rec.St == statePending || rec.St == stateSubmitted {
			for _, b := range rec.Move.Adding() {
				dests[b] = true
			}
		}
	}
	p.ETA = eta(r.m0, p.BytesMoved, p.Bytes-p.BytesMoved, r.t0, now, p.Rate, len(dests))
	r.log.LogAttrs(ctx, slog.LevelDebug, "progress", slog.String("progress", p.String()))
	for _, fn := range r.cfg.onProgress {
		fn(p)
	}
	return p
}

func union(a, b []int32) []int32 { return append(slices.Clone(a), minus(b, a)...) }

func sameSet(a, b []int32) bool {
	return len(a) == len(b) && len(minus(a, b)) == 0 && len(minus(b, a)) == 0
}

func brokersAre(bs []int32) string {
	if len(bs) == 1 {
		return strconv.Itoa(int(bs[0])) + " is"
	}
	return fmt.Sprint(bs) + " are"
}
