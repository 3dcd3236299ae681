package reassign

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// An ExecutorOption configures an [Executor].
type ExecutorOption interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	rate           int64
	rateSet        bool
	poll           time.Duration
	budgetFactor   float64
	budgetFloor    time.Duration
	cancelTimeout  time.Duration
	requestTimeout time.Duration
	adoptForeign   bool
	batch          []BatchOption
	logger         *slog.Logger
	onProgress     []func(Progress)
}

func defaultConfig() config {
	return config{
		rate:           120_000_000,
		poll:           10 * time.Second,
		budgetFactor:   3,
		budgetFloor:    5 * time.Minute,
		cancelTimeout:  2 * time.Minute,
		requestTimeout: 30 * time.Second,
		logger:         slog.New(slog.DiscardHandler),
	}
}

func (c *config) validate() error {
	switch {
	case c.rate <= 0:
		return fmt.Errorf("%w: Throttle(%d): must be positive", ErrInvalid, c.rate)
	case c.poll <= 0:
		return fmt.Errorf("%w: CheckInterval(%v): must be positive", ErrInvalid, c.poll)
	case c.budgetFactor <= 0 || c.budgetFloor <= 0:
		return fmt.Errorf("%w: MoveBudget(%v, %v): both must be positive", ErrInvalid, c.budgetFactor, c.budgetFloor)
	case c.cancelTimeout <= 0:
		return fmt.Errorf("%w: CancelTimeout(%v): must be positive", ErrInvalid, c.cancelTimeout)
	case c.requestTimeout <= 0:
		return fmt.Errorf("%w: RequestTimeout(%v): must be positive", ErrInvalid, c.requestTimeout)
	case c.logger == nil:
		return fmt.Errorf("%w: ExecutorLogger(nil)", ErrInvalid)
	}
	b := defaultBatchConfig()
	for _, o := range c.batch {
		o.apply(&b)
	}
	return b.validate()
}

// Throttle sets the replication throttle of the moves in flight, in bytes
// per second per broker, overriding the default of 120 MB/s (topicctl's).
// Both leader.replication.throttled.rate and
// follower.replication.throttled.rate are set to it on every broker a move
// in flight involves. A resumed run keeps the rate it had unless this
// option is given or [Executor.SetRate] is called.
func Throttle(bytesPerSecond int64) ExecutorOption {
	return optionFunc(func(c *config) { c.rate, c.rateSet = bytesPerSecond, true })
}

// CheckInterval sets how often the executor looks at the reassignments in
// flight, overriding the default of 10s (Cruise Control's and topicctl's).
func CheckInterval(d time.Duration) ExecutorOption {
	return optionFunc(func(c *config) { c.poll = d })
}

// MoveBudget sets how long a move may take before the executor cancels it
// as stuck: max(floor, factor × bytes × share / rate), where bytes is the
// size of the partition's replica, rate the throttle and share the number of
// moves in flight on the busiest of its brokers, which split that broker's
// throttle. It overrides the defaults of 3 and 5m (Cruise Control's
// expected duration is max(bytes / rate, 90s), for an alert). The clock
// starts when the move is submitted, or adopted after a restart.
func MoveBudget(factor float64, floor time.Duration) ExecutorOption {
	return optionFunc(func(c *config) { c.budgetFactor, c.budgetFloor = factor, floor })
}

// CancelTimeout bounds the wait for a cancelled move to leave the cluster's
// reassignments (and for its partition's replica order to be restored),
// overriding the default of 2m. Its throttles are lifted either way.
func CancelTimeout(d time.Duration) ExecutorOption {
	return optionFunc(func(c *config) { c.cancelTimeout = d })
}

// RequestTimeout bounds each request to the cluster, overriding the default
// of 30s. A run gives up, leaving its moves to a later [Executor.Resume],
// when the cluster could not be observed for four times as long.
func RequestTimeout(d time.Duration) ExecutorOption {
	return optionFunc(func(c *config) { c.requestTimeout = d })
}

// AdoptForeign makes the executor adopt reassignments in flight that it did
// not start, instead of refusing to run with a [*ForeignError], the
// default. Adopted reassignments are watched to completion like its own
// moves, use batcher slots and may be cancelled as dead or too slow, but
// their throttles are left to whoever set them, and after a cancel their
// replica order is not restored (Kafka does not keep it).
func AdoptForeign() ExecutorOption {
	return optionFunc(func(c *config) { c.adoptForeign = true })
}

// Batching sets the [Batcher]'s options: slots per broker, the cluster cap
// and the order of moves. The default is [NewBatcher]'s.
func Batching(opts ...BatchOption) ExecutorOption {
	return optionFunc(func(c *config) { c.batch = slices.Clone(opts) })
}

// ExecutorLogger sets the logger for progress and diagnostics, overriding the
// default, which discards.
func ExecutorLogger(l *slog.Logger) ExecutorOption {
	return optionFunc(func(c *config) { c.logger = l })
}

// OnProgress adds a function the executor calls with its [Progress] after
// every poll and once at the end of a run, from the goroutine running it.
// It must return quickly. Functions given by several OnProgress options are
// all called, in the order given; a nil one is ignored. The default is none.
func OnProgress(fn func(Progress)) ExecutorOption {
	return optionFunc(func(c *config) {
		if fn != nil {
			c.onProgress = append(slices.Clip(c.onProgress), fn)
		}
	})
}

// An Executor carries out partition moves on a cluster, a batch at a time,
// with replication throttles it owns, and keeps a journal of what it does
// in a [Store] so that a crashed run can be resumed by another Executor.
//
// A run:
//   - refuses to start while reassignments it did not start are in flight
//     ([*ForeignError]) unless [AdoptForeign] is given;
//   - measures each partition's size with DescribeLogDirs and reads the
//     throttle configs already set on the brokers and topics involved,
//     which its ledger restores exactly as moves finish and at the end;
//   - hands the moves to a [Batcher] and submits each batch with
//     AlterPartitionAssignments, after journaling it and setting its
//     throttles;
//   - polls fresh metadata and ListPartitionReassignments (for the
//     partitions in flight, by name) every [CheckInterval]: a move is done
//     when its partition's replicas are the target and all of them are in
//     the ISR; a move whose destination broker left the cluster, or that
//     exceeded its [MoveBudget], is cancelled (and its partition's replica
//     order restored); a move the cluster dropped is submitted again;
//   - reports [Progress] to [OnProgress], and the outcome of every move in
//     its [MoveResults].
//
// A move that is not submitted because it no longer matches the cluster,
// or that Kafka rejects, fails alone: the others carry on.
//
// A broker's dynamic config can only be read and changed through that
// broker. So a broker that is down when the run begins is never throttled
// (its existing throttles cannot be read, and would not be restored
// exactly); and one that dies during the run keeps our throttle until it
// is back: the run ends with a [*ThrottleError], and [Executor.Resume]
// lifts the throttle once the broker has returned. To find reassignments it
// did not start, a run lists those of every partition of the cluster, once,
// when it begins or resumes.
//
// When ctx ends,
// Run returns at once; the moves in flight continue on the cluster, with
// their throttles, and [Executor.Resume] with the same Store adopts them.
//
// An Executor runs one run at a time. [Executor.SetRate] may be called
// from any goroutine while it runs.
type Executor struct {
	cl    *kgo.Client
	adm   *kadm.Client
	store Store
	cfg   config

	mu     sync.Mutex
	active *runCtl // the run in progress, nil if none
}

// runCtl lets SetRate reach a running loop.
type runCtl struct {
	rates chan rateReq
	done  chan struct{}
}

type rateReq struct {
	rate int64
	errc chan error
}

// NewExecutor returns an Executor that moves partitions of the cluster cl
// talks to and journals its runs in store. It does not close cl. Without a
// durable store (a [FileStore], or the caller's own), a crashed run cannot
// be resumed, and the throttles it set stay until someone removes them.
func NewExecutor(cl *kgo.Client, store Store, opts ...ExecutorOption) (*Executor, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o.apply(&cfg)
	}
	if cl == nil || store == nil {
		return nil, fmt.Errorf("%w: NewExecutor needs a client and a Store", ErrInvalid)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Executor{cl: cl, adm: kadm.NewClient(cl), store: store, cfg: cfg}, nil
}

// Run carries out moves (typically a [MovePlan]'s) and returns the outcome of
// each. If the Store holds an unfinished run of the same moves, Run resumes
// it; if it holds an unfinished run of other moves, Run returns
// [ErrOtherRun]; a finished run of the same moves is not repeated, its
// results are returned.
//
// The error is non-nil only if the run could not start, was stopped (ctx
// ended: the moves in flight continue, resume them later), could not
// observe the cluster for long, or left throttles it could not restore
// ([*ThrottleError]). Failed moves are reported in the results.
func (e *Executor) Run(ctx context.Context, moves Moves) (MoveResults, error) {
	return e.run(ctx, moves, modeRun)
}

// Resume continues the unfinished run in the Store: it adopts the moves
// still in flight, finishes them, runs the moves not yet submitted, and
// restores the throttles. It returns [ErrNoState] if the Store holds
// nothing, and the recorded results if the run finished.
func (e *Executor) Resume(ctx context.Context) (MoveResults, error) {
	return e.run(ctx, nil, modeResume)
}

// Abort ends the unfinished run in the Store: it cancels the moves in
// flight that it started (adopted ones are left running), waits for the
// cancellations, restores every throttle it changed, and reports the moves
// not carried out with [ErrAborted]. It returns [ErrNoState] if the Store
// holds nothing.
func (e *Executor) Abort(ctx context.Context) (MoveResults, error) {
	return e.run(ctx, nil, modeAbort)
}

// SetRate changes the replication throttle. During a run it is journaled
// and applied to the brokers throttled now before SetRate returns; between
// runs it applies to the next one, resumed runs included.
func (e *Executor) SetRate(ctx context.Context, bytesPerSecond int64) error {
	if bytesPerSecond <= 0 {
		return fmt.Errorf("%w: SetRate(%d): must be positive", ErrInvalid, bytesPerSecond)
	}
	e.mu.Lock()
	e.cfg.rate, e.cfg.rateSet = bytesPerSecond, true
	ctl := e.active
	e.mu.Unlock()
	if ctl == nil {
		return nil
	}
	req := rateReq{rate: bytesPerSecond, errc: make(chan error, 1)}
	select {
	case ctl.rates <- req:
	case <-ctl.done:
		return nil // the run ended; the rate applies to the next
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	select {
	case err := <-req.errc:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

type runMode int

const (
	modeRun runMode = iota
	modeResume
	modeAbort
)

func (e *Executor) run(ctx context.Context, moves Moves, mode runMode) (MoveResults, error) {
	ctl := &runCtl{rates: make(chan rateReq), done: make(chan struct{})}
	e.mu.Lock()
	if e.active != nil {
		e.mu.Unlock()
		return nil, errors.New("reassign: the executor is already running")
	}
	e.active = ctl
	cfg := e.cfg
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.active = nil
		e.mu.Unlock()
		close(ctl.done)
	}()

	j, err := e.load(ctx)
	if err != nil && !errors.Is(err, ErrNoState) {
		return nil, err
	}
	var r *run
	switch {
	case j == nil && mode != modeRun:
		return nil, err
	case j != nil && j.Done && (mode != modeRun || j.ID == runID(moves)):
		return j.results(), nil
	case j != nil && !j.Done && mode == modeRun && j.ID != runID(moves):
		return nil, fmt.Errorf("%w: it has %d moves, this run %d", ErrOtherRun, len(j.Moves), len(moves))
	case j != nil && !j.Done:
		r, err = e.resume(ctx, &cfg, j)
	default:
		if len(moves) == 0 {
			return MoveResults{}, nil
		}
		r, err = e.begin(ctx, &cfg, moves)
	}
	if err != nil {
		return nil, err
	}
	return r.loop(ctx, ctl, mode == modeAbort)
}

func (e *Executor) load(ctx context.Context) (*journal, error) {
	b, err := e.store.Load(ctx)
	if err != nil {
		if errors.Is(err, ErrNoState) {
			return nil, err
		}
		return nil, fmt.Errorf("reassign: load state: %w", err)
	}
	return decodeJournal(b)
}

// validateMoves checks what Kafka would reject outright.
func validateMoves(ms Moves) error {
	for _, m := range ms {
		bad := func(reason string) error {
			return &PartitionError{Topic: m.Topic, Partition: m.Partition, Reason: reason, Err: ErrInvalid}
		}
		switch {
		case m.Topic == "" || m.Partition < 0:
			return bad("move names no partition")
		case len(m.From) == 0 || len(m.To) == 0:
			return bad("move " + m.String() + " lacks replicas")
		case len(slices.Compact(slices.Sorted(slices.Values(m.To)))) != len(m.To):
			return bad("move " + m.String() + " lists a target broker twice")
		}
	}
	return nil
}

// begin starts a new run: it checks for foreign reassignments, measures
// the partitions, reads the existing throttles and journals the run.
func (e *Executor) begin(ctx context.Context, cfg *config, moves Moves) (*run, error) {
	if err := validateMoves(moves); err != nil {
		return nil, err
	}
	d := cfg.requestTimeout
	v, err := metadata(ctx, e.cl, d, nil)
	if err != nil {
		return nil, err
	}
	if v.moving, err = reassignments(ctx, e.adm, d, v.allPartitions()); err != nil {
		return nil, err
	}
	foreign := foreignMoves(v, nil)
	if len(foreign) > 0 && !cfg.adoptForeign {
		return nil, &ForeignError{Reassignments: foreign}
	}

	j := &journal{Version: journalVersion, ID: runID(moves)}
	ms := make(Moves, 0, len(moves)+len(foreign))
	for _, m := range moves {
		m.From, m.To = slices.Clone(m.From), slices.Clone(m.To)
		ms = append(ms, m)
	}
	ms = append(ms, foreign...)
	// Measure the replicas to copy: the largest of each partition's
	// current replicas.
	set := make(kadm.TopicsSet)
	for _, m := range ms {
		set.Add(m.Topic, m.Partition)
	}
	sz, err := logDirSizes(ctx, e.cl, d, sortedKeys(v.alive), set)
	if err != nil {
		cfg.logger.LogAttrs(ctx, slog.LevelWarn, "could not measure every partition; using the plan's sizes", slog.Any("err", err))
	}
	for i := range ms {
		var size int64
		if ps, ok := v.part(ms[i].Topic, ms[i].Partition); ok {
			for _, b := range ps.replicas {
				size = max(size, sz.of(b, ms[i].Topic, ms[i].Partition))
			}
		}
		if size > 0 {
			ms[i].Bytes = size
		}
	}

	// Read the throttles already there, on the brokers and topics our moves
	// involve. A broker that is down cannot be asked: the run leaves its
	// throttles alone.
	brokers, excluded := make(map[int32]bool), make(map[int32]bool)
	topics := make(map[string]bool)
	for _, m := range ms[:len(moves)] {
		for _, b := range m.Brokers() {
			if v.isAlive(b) {
				brokers[b] = true
			} else {
				excluded[b] = true
			}
		}
		if _, ok := v.topics[m.Topic]; ok {
			topics[m.Topic] = true
		}
	}
	existing, err := readThrottles(ctx, e.adm, d, sortedInt32(brokers), slices.Sorted(maps.Keys(topics)))
	if err != nil {
		return nil, err
	}
	if j.Ledger, err = newLedger(existing, cfg.rate); err != nil {
		return nil, err
	}
	j.Excluded = sortedInt32(excluded)
	for i, m := range ms {
		rec := record{Move: m, St: statePending}
		if i >= len(moves) {
			rec.St, rec.Foreign = stateSubmitted, true
		}
		j.Moves = append(j.Moves, rec)
	}
	r, err := newRun(e, cfg, j)
	if err != nil {
		return nil, err
	}
	r.log.LogAttrs(ctx, slog.LevelInfo, "run starting", slog.Int("moves", len(moves)), slog.Int("adopted", len(foreign)),
		slog.Int64("bytes", ms.Bytes()), slog.Int64("rate", cfg.rate), slog.Any("excluded", j.Excluded))
	if err := r.save(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// foreignMoves returns the reassignments in v that are not among the
// in-flight records of ours, as moves.
func foreignMoves(v *view, ours []record) Moves {
	known := make(map[string]bool)
	for i := range ours {
		if ours[i].inFlight() {
			known[partKey(ours[i].Move.Topic, ours[i].Move.Partition)] = true
		}
	}
	var out Moves
	for _, t := range slices.Sorted(maps.Keys(v.moving)) {
		for _, p := range slices.Sorted(maps.Keys(v.moving[t])) {
			if known[partKey(t, p)] {
				continue
			}
			ra := v.moving[t][p]
			out = append(out, Move{Topic: t, Partition: p, From: ra.original(), To: ra.target()})
		}
	}
	return out
}

func partKey(topic string, p int32) string { return topic + "\x00" + strconv.Itoa(int(p)) }

// resume continues a journaled run.
func (e *Executor) resume(ctx context.Context, cfg *config, j *journal) (*run, error) {
	if cfg.rateSet && cfg.rate != j.Ledger.Rate() {
		cs, err := j.Ledger.SetRate(cfg.rate)
		if err != nil {
			return nil, err
		}
		j.addUnapplied(cs)
	}
	var adopted Moves
	if slices.ContainsFunc(j.Moves, func(r record) bool { return !r.ended() }) {
		v, err := metadata(ctx, e.cl, cfg.requestTimeout, nil)
		if err != nil {
			return nil, err
		}
		if v.moving, err = reassignments(ctx, e.adm, cfg.requestTimeout, v.allPartitions()); err != nil {
			return nil, err
		}
		adopted = foreignMoves(v, j.Moves)
		if len(adopted) > 0 && !cfg.adoptForeign {
			return nil, &ForeignError{Reassignments: adopted}
		}
		for _, m := range adopted {
			j.Moves = append(j.Moves, record{Move: m, St: stateSubmitted, Foreign: true})
		}
	}
	r, err := newRun(e, cfg, j)
	if err != nil {
		return nil, err
	}
	n := 0
	for i := range j.Moves {
		if j.Moves[i].inFlight() {
			n++
		}
	}
	r.log.LogAttrs(ctx, slog.LevelInfo, "resuming run", slog.Int("moves", len(j.Moves)), slog.Int("inFlight", n),
		slog.Int("adoptedForeign", len(adopted)), slog.Int("unappliedThrottles", len(j.Unapplied)), slog.Int64("rate", j.Ledger.Rate()))
	if err := r.save(ctx); err != nil {
		return nil, err
	}
	return r, nil
}
