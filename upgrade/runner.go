package upgrade

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/health"
	"github.com/kupgrade/kupgrade/internal/poll"
	"github.com/kupgrade/kupgrade/node"
	"github.com/kupgrade/kupgrade/reassign"
)

// A RunnerOption configures a [Runner].
type RunnerOption interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	journal        Journal
	onEvent        func(Event)
	logger         *slog.Logger
	stepTimeout    time.Duration
	gateTimeout    time.Duration
	restartTimeout time.Duration
	catchUpTimeout time.Duration
	stallAfter     time.Duration // see stallWatch; 0: never move leaders
	poll           poll.Policy   // between the checks of every wait (the timeouts above bound each)
	gateOpts       []health.GateOption
	passHolds      bool
	leadersBack    bool
	canary         Prober
	canaryWithin   time.Duration
	controllers    []string
	moveThrottle   int64
	moveOpts       []reassign.ExecutorOption
	now            func() time.Time
	ops            clusterOps // nil: the real cluster through the client
	probe          brokerProbe
	zkProbeOff     bool
	zkConnect      string // ZooKeeperConnect
	zkConnectSet   bool
	batchMax       int // BatchRestarts; 0 or 1: one node at a time
	disk           diskConfig
}

func defaultConfig() config {
	return config{
		logger:         slog.New(slog.DiscardHandler),
		stepTimeout:    30 * time.Minute,
		gateTimeout:    10 * time.Minute,
		restartTimeout: 10 * time.Minute,
		catchUpTimeout: 10 * time.Minute,
		stallAfter:     defaultStallAfter,
		poll:           poll.Policy{Initial: 200 * time.Millisecond, Max: 2 * time.Second, Multiplier: 1.5},
		moveThrottle:   100 << 20,
		now:            time.Now,
	}
}

// WithJournal keeps the run's progress in j, overriding the default of a
// journal in memory (which cannot resume across processes). A Runner given
// the journal of an interrupted run continues where it stopped.
func WithJournal(j Journal) RunnerOption { return optionFunc(func(c *config) { c.journal = j }) }

// OnEvent calls fn for every [Event], overriding the default of no callback.
// fn is called from the goroutine running Run and must return quickly.
func OnEvent(fn func(Event)) RunnerOption { return optionFunc(func(c *config) { c.onEvent = fn }) }

// WithLogger sets the logger for progress and diagnostics, overriding the
// default, which discards.
func WithLogger(l *slog.Logger) RunnerOption { return optionFunc(func(c *config) { c.logger = l }) }

// StepTimeout bounds one step as a whole (gate, restart, catch-up), overriding
// the default of 30m. A bake step is bounded by its duration plus d.
func StepTimeout(d time.Duration) RunnerOption {
	return optionFunc(func(c *config) { c.stepTimeout = d })
}

// GateTimeout bounds how long a step waits for its health and quorum gates to
// allow it, overriding the default of 10m.
func GateTimeout(d time.Duration) RunnerOption {
	return optionFunc(func(c *config) { c.gateTimeout = d })
}

// RestartTimeout bounds the Orchestrator's Restart of one node, overriding
// the default of 10m.
func RestartTimeout(d time.Duration) RunnerOption {
	return optionFunc(func(c *config) { c.restartTimeout = d })
}

// CatchUpTimeout bounds the wait for a restarted node to be back in every
// ISR (and for finalized features to show on every node), overriding the
// default of 10m.
func CatchUpTimeout(d time.Duration) RunnerOption {
	return optionFunc(func(c *config) { c.catchUpTimeout = d })
}

// GateOptions adds rules to the health gate checked before each restart
// (see [health.NewGate]); by default the gate is [health.CanRestart]'s.
func GateOptions(opts ...health.GateOption) RunnerOption {
	return optionFunc(func(c *config) { c.gateOpts = append(c.gateOpts, opts...) })
}

// PassHolds lets the Runner run held steps (see [Step.Hold]): irreversible
// steps, and finalize steps of a plan made with [FinalizeLater]. Without it,
// Run stops before the first held step with a *[HeldError].
func PassHolds() RunnerOption { return optionFunc(func(c *config) { c.passHolds = true }) }

// LeadersBack makes each restart wait, after the node is back in ISR, until
// it leads its preferred partitions again (asking for a preferred leader
// election if needed), overriding the default of not waiting.
func LeadersBack() RunnerOption { return optionFunc(func(c *config) { c.leadersBack = true }) }

// A Prober sends traffic through every broker and reports each round trip,
// as [health.Canary] does: what [CanaryGate] needs.
type Prober interface {
	Probe(ctx context.Context) (health.ProbeResults, error)
}

// CanaryGate adds real traffic to the gates: before each restart, every
// broker but the one to restart must round-trip a canary record within
// within; after it, the node counts as caught up only once every broker,
// itself included, does. p is typically a [health.Canary] whose topic
// exists ([health.Canary.Ensure]). The health gate alone reads what Kafka
// reports; the canary proves that clients are served.
func CanaryGate(p Prober, within time.Duration) RunnerOption {
	return optionFunc(func(c *config) { c.canary, c.canaryWithin = p, within })
}

// KRaftControllers gives the KRaft controllers' listener addresses, for
// clusters whose brokers cannot say where controllers listen (DescribeQuorum
// reports voters' endpoints only from Kafka 3.9). The Runner reads the
// controllers' features through them.
func KRaftControllers(addrs ...string) RunnerOption {
	return optionFunc(func(c *config) { c.controllers = append(c.controllers, addrs...) })
}

func (c *config) validate() error {
	for name, d := range map[string]time.Duration{"StepTimeout": c.stepTimeout, "GateTimeout": c.gateTimeout,
		"RestartTimeout": c.restartTimeout, "CatchUpTimeout": c.catchUpTimeout} {
		if d <= 0 {
			return fmt.Errorf("upgrade: %s(%v) must be positive", name, d)
		}
	}
	if c.logger == nil {
		return errors.New("upgrade: WithLogger(nil): to discard logs, leave the option out")
	}
	if err := c.probe.validate(); err != nil {
		return err
	}
	if err := validateZKConnect(c.zkConnect, c.zkConnectSet); err != nil {
		return err
	}
	if pc, ok := c.canary.(*health.Canary); ok && pc == nil {
		return errors.New("upgrade: CanaryGate: the Canary is nil (use health.NewCanary)")
	}
	if c.canary != nil && c.canaryWithin <= 0 {
		return fmt.Errorf("upgrade: CanaryGate(within %v) must be positive", c.canaryWithin)
	}
	if c.batchMax < 0 {
		return fmt.Errorf("upgrade: BatchRestarts(%d) must be 0 or more (0 or 1: one node at a time)", c.batchMax)
	}
	if err := c.disk.validate(); err != nil {
		return err
	}
	if c.moveThrottle <= 0 {
		return fmt.Errorf("upgrade: ReplaceThrottle(%d) must be positive", c.moveThrottle)
	}
	return nil
}

// A Runner executes a [Plan] against a live cluster: before each restart it
// waits, bounded, until the health gate (and, for controllers, the quorum)
// allows it; after, it waits until the node has caught up; finalize steps
// raise feature levels once every node can take them. Progress goes to a
// [Journal], so a Runner given the journal of an interrupted run resumes it,
// and to [Event]s. A Runner runs one plan at a time.
type Runner struct {
	cl   *kgo.Client
	orch node.Orchestrator
	cfg  config
	gate *health.Gate
}

// NewRunner returns a Runner that observes the cluster through cl and
// restarts nodes through orch. cl is the user's client (their TLS, SASL);
// the Runner does not close it. It validates the options before anything
// else, and returns an error naming the first one out of range (or a
// missing client or Orchestrator); it does no I/O.
func NewRunner(cl *kgo.Client, orch node.Orchestrator, opts ...RunnerOption) (*Runner, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o.apply(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	gate, err := health.NewGate(cfg.gateOpts...)
	if err != nil {
		return nil, err
	}
	if orch == nil {
		return nil, errors.New("upgrade: NewRunner needs an Orchestrator")
	}
	if cfg.journal == nil {
		cfg.journal = &MemoryJournal{}
	}
	if cfg.ops == nil {
		if cl == nil {
			return nil, errors.New("upgrade: NewRunner needs a client")
		}
		cfg.ops = &liveOps{cl: cl, controllers: cfg.controllers, zk: &zkProbe{off: cfg.zkProbeOff, timeout: cfg.probe.timeout, connect: cfg.zkConnect}}
	}
	return &Runner{cl: cl, orch: orch, cfg: cfg, gate: gate}, nil
}

// ErrHeld reports that a run stopped before a held step.
var ErrHeld = errors.New("upgrade: run stopped before a held step")

// A HeldError says which held step a run stopped before. Run the plan again
// with [PassHolds] (and the same journal) to go on.
type HeldError struct {
	Index int
	Step  Step
}

// Error names the held step and how to go on.
func (e *HeldError) Error() string {
	why := "it is held by the plan"
	if !e.Step.Reversible {
		why = "it cannot be undone (" + e.Step.Why + ")"
	}
	return fmt.Sprintf("upgrade: stopped before step %d (%v): %s; run again with PassHolds to go on", e.Index+1, e.Step, why)
}

// Unwrap returns [ErrHeld].
func (e *HeldError) Unwrap() error { return ErrHeld }

// A StepError says which step of a run failed and why. The journal records
// the failure; a later Run with the same journal retries that step.
type StepError struct {
	Index int
	Step  Step
	Err   error
}

// Error names the failed step and its cause.
func (e *StepError) Error() string {
	return fmt.Sprintf("upgrade: step %d (%v) failed: %v", e.Index+1, e.Step, e.Err)
}

// Unwrap returns the cause.
func (e *StepError) Unwrap() error { return e.Err }

// ErrJournalMismatch reports a journal that belongs to another plan.
var ErrJournalMismatch = errors.New("upgrade: journal belongs to another plan")

// Run executes the plan until every step is finished, a step fails, a held
// step is reached (without [PassHolds]) or ctx ends. It resumes from the
// journal: finished steps are skipped, and a step that was in flight is
// re-verified before anything is done again. Running a finished plan again
// does nothing. Cancelling ctx stops the run safely between actions; the
// journal records where.
//
// Before anything else, Run refuses a plan that does not [Plan.Verify] (a
// *[PlanError]), a second Run of this Runner while one runs ([ErrRunning]),
// and a journal that another run holds (a *[JournalLockedError], for a
// [LockingJournal]); it holds the journal until it returns.
func (r *Runner) Run(ctx context.Context, plan Plan) error {
	if plan.Version != PlanVersion {
		return fmt.Errorf("%w: plan %s has schema version %d; this kupgrade runs version %d (plan again)", ErrUnsupportedPlan, plan.ID, plan.Version, PlanVersion)
	}
	end, err := r.begin(ctx, plan)
	if err != nil {
		return err
	}
	defer end()
	if _, err := r.provisioner(plan); err != nil {
		return err
	}
	if err := r.checkMigration(plan); err != nil {
		return err
	}
	for i, s := range plan.Steps {
		if s.Kind == StepManual {
			return fmt.Errorf("%w: step %d is %s, which kupgrade does not automate yet; plan to the last release before it, do it, then plan again", ErrUnsupportedPlan, i+1, s.Reason)
		}
	}
	rec, err := r.cfg.journal.Load(ctx)
	switch {
	case errors.Is(err, ErrNoRecord):
		rec = Record{PlanID: plan.ID, Steps: make([]StepRecord, len(plan.Steps))}
	case err != nil:
		return err
	case rec.PlanID != plan.ID || len(rec.Steps) != len(plan.Steps):
		return fmt.Errorf("%w: the journal is of plan %s with %d steps, this is plan %s with %d", ErrJournalMismatch, rec.PlanID, len(rec.Steps), plan.ID, len(plan.Steps))
	}
	run := &run{r: r, plan: plan, rec: rec, start: r.cfg.now()}
	if plan.migrates() {
		run.learnControllers(ctx) // migrate.go
		defer run.endMigration()
	}
	if rec.Done() {
		run.emit(Event{Kind: EventRunDone, Step: -1, Node: -1, Message: "plan already finished; nothing to do"})
		return nil
	}
	done := 0
	for _, s := range rec.Steps {
		if s.State.Finished() {
			done++
		}
	}
	msg := fmt.Sprintf("plan %s: %d steps", plan.ID, len(plan.Steps))
	if done > 0 {
		msg += fmt.Sprintf(", resuming with %d finished", done)
	}
	run.emit(Event{Kind: EventRunStarted, Step: -1, Node: -1, Message: msg})
	if err := run.restoreLeftOrders(ctx); err != nil {
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("upgrade: run stopped: %w", context.Cause(ctx))
		}
		i, err := run.next(ctx)
		if err != nil {
			return err
		}
		if i < 0 {
			break
		}
		if r.cfg.batchMax > 1 && run.batchable(i) {
			handled, err := run.batch(ctx, i)
			if err != nil {
				return err
			}
			if handled {
				continue
			}
		}
		if err := run.step(ctx, i); err != nil {
			return err
		}
	}
	run.emit(Event{Kind: EventRunDone, Step: -1, Node: -1, Elapsed: r.cfg.now().Sub(run.start), Message: "every step finished"})
	return nil
}

// run is the state of one Run call.
type run struct {
	r     *Runner
	plan  Plan
	rec   Record
	start time.Time
	// batchOf gives the batch number of the steps of the batch being
	// gated or run (see [BatchRestarts]), for their events.
	batchOf map[int]int
	// restore undoes what a migration changed in the Runner's reads
	// (learnControllers).
	restore func()
}

func (u *run) emit(e Event) {
	e.Time = u.r.cfg.now()
	if e.Step >= 0 && e.StepKind == "" {
		e.StepKind = u.plan.Steps[e.Step].Kind
		e.Node = u.plan.Steps[e.Step].Node
	}
	if e.Step >= 0 && e.Batch == 0 {
		e.Batch = u.batchOf[e.Step]
	}
	level := slog.LevelInfo
	switch e.Kind {
	case EventStepFailed:
		level = slog.LevelError
	case EventGateBlocked, EventHeld, EventLeadersMoved:
		level = slog.LevelWarn
	case EventWaiting:
		level = slog.LevelDebug
	}
	attrs := []slog.Attr{slog.String("plan", u.plan.ID), slog.String("event", string(e.Kind))}
	if e.Step >= 0 {
		attrs = append(attrs, slog.Int("step", e.Step+1), slog.String("kind", string(e.StepKind)), slog.Int("node", int(e.Node)))
	}
	if e.Batch > 0 {
		attrs = append(attrs, slog.Int("batch", e.Batch))
	}
	if len(e.Reasons) > 0 {
		attrs = append(attrs, slog.String("reason", e.Reasons[0].Message), slog.Int("reasons", len(e.Reasons)))
	}
	if e.Err != nil {
		attrs = append(attrs, slog.String("err", e.Err.Error()))
	}
	u.r.cfg.logger.LogAttrs(context.Background(), level, e.Message, attrs...)
	if u.r.cfg.onEvent != nil {
		u.r.cfg.onEvent(e)
	}
}

func (u *run) save(ctx context.Context) error {
	u.rec.Updated = u.r.cfg.now()
	// The journal is written even if ctx has just ended, so that a
	// cancelled run records where it stopped.
	if err := u.r.cfg.journal.Save(context.WithoutCancel(ctx), u.rec); err != nil {
		return fmt.Errorf("upgrade: save journal: %w", err)
	}
	return nil
}

// next picks the next step to run, or -1 when all are finished. Steps run in
// plan order, except within a roll: a step in flight is resumed first, and
// the node that leads the cluster (the active KRaft controller, or the
// ZooKeeper controller broker) goes last, re-checked now since it can move.
func (u *run) next(ctx context.Context) (int, error) {
	first := -1
	for i, s := range u.rec.Steps {
		if !s.State.Finished() {
			first = i
			break
		}
	}
	if first < 0 {
		return -1, nil
	}
	st := u.plan.Steps[first]
	if st.Kind != StepRestart || st.Roll == 0 {
		return first, nil
	}
	var group []int
	for i := first; i < len(u.plan.Steps) && u.plan.Steps[i].Kind == StepRestart && u.plan.Steps[i].Roll == st.Roll; i++ {
		if !u.rec.Steps[i].State.Finished() {
			group = append(group, i)
		}
	}
	for _, i := range group {
		if u.rec.Steps[i].State == StepStarted {
			return i, nil
		}
	}
	if len(group) == 1 {
		return group[0], nil
	}
	// A node that is down goes first (as Strimzi rolls unready pods first):
	// restarting it costs nothing, and the others' gates need it back.
	if i, ok := u.downFirst(ctx, group); ok {
		return i, nil
	}
	leader, err := u.leader(ctx, st)
	if err != nil {
		// Not knowing the leader is no reason to stop: plan order is safe,
		// only slower (the leader may move twice).
		u.r.cfg.logger.Warn("cannot tell the active controller; keeping plan order", "err", err)
		return group[0], nil
	}
	for _, i := range group {
		if u.plan.Steps[i].Node != leader {
			return i, nil
		}
	}
	return group[0], nil
}

// downFirst returns the step of group whose node is down, if any: a broker
// not up in a fresh snapshot, or a node the Orchestrator's [node.Liveness] says is
// not alive.
func (u *run) downFirst(ctx context.Context, group []int) (int, bool) {
	live, hasLive := u.r.orch.(node.Liveness)
	snap, snapErr := u.r.cfg.ops.snapshot(ctx)
	for _, i := range group {
		st := u.plan.Steps[i]
		if hasLive {
			if alive, err := live.Alive(ctx, st.Node); err == nil && !alive {
				return i, true
			}
		}
		if snapErr == nil && len(snap.Brokers) > 0 && slices.Contains(st.Roles, node.RoleBroker) && !snap.Up(st.Node) {
			return i, true
		}
	}
	return 0, false
}

// leader returns the node that should roll last in st's roll.
func (u *run) leader(ctx context.Context, st Step) (int32, error) {
	ops := u.r.cfg.ops
	if slices.Contains(st.Roles, node.RoleController) { // KRaft, or a migration's controllers
		return ops.activeController(ctx)
	}
	if u.plan.Mode == compat.ModeZooKeeper {
		snap, err := ops.snapshot(ctx)
		if err != nil {
			return -1, err
		}
		return snap.Controller, nil
	}
	return -1, nil
}

// step runs step i and records the outcome.
func (u *run) step(ctx context.Context, i int) error {
	st := u.plan.Steps[i]
	sr := &u.rec.Steps[i]
	if st.Hold && !u.r.cfg.passHolds {
		err := &HeldError{Index: i, Step: st}
		if serr := u.save(ctx); serr != nil {
			return serr
		}
		u.emit(Event{Kind: EventHeld, Step: i, Message: err.Error()})
		return err
	}
	resumed := sr.State == StepStarted
	if !resumed {
		// A failed step is retried from scratch, except for what it did
		// that cannot be undone by retrying: a node it provisioned.
		*sr = StepRecord{State: StepStarted, Started: u.r.cfg.now(), Provisioned: sr.Provisioned, Restarted: sr.Restarted && sr.Provisioned != nil}
		if err := u.save(ctx); err != nil {
			return err
		}
	}
	msg := st.String()
	if resumed {
		msg = "resuming (in flight when the last run stopped): " + msg
	}
	u.emit(Event{Kind: EventStepStarted, Step: i, Message: msg})
	timeout := u.r.cfg.stepTimeout
	if st.Kind == StepBake { // a bake lasts its duration by design
		timeout += st.Duration
	}
	sctx, cancel := context.WithTimeoutCause(ctx, timeout,
		fmt.Errorf("upgrade: step %d (%v) did not finish within %v", i+1, st, timeout))
	defer cancel()
	started := u.r.cfg.now()
	skipped, err := u.exec(sctx, i, st, sr, resumed)
	if err != nil {
		if ctx.Err() != nil { // cancelled from outside: not a failure of the step
			u.save(ctx)
			return fmt.Errorf("upgrade: run stopped during step %d (%v): %w", i+1, st, context.Cause(ctx))
		}
		sr.State, sr.Err, sr.Finished = StepFailed, err.Error(), u.r.cfg.now()
		// The journal first, then the event: whoever acts on the event
		// finds the journal saying so.
		serr := u.save(ctx)
		u.emit(Event{Kind: EventStepFailed, Step: i, Elapsed: u.r.cfg.now().Sub(started), Err: err, Message: "step failed"})
		if serr != nil {
			return errors.Join(&StepError{Index: i, Step: st, Err: err}, serr)
		}
		return &StepError{Index: i, Step: st, Err: err}
	}
	sr.State, sr.Err, sr.Finished = StepDone, "", u.r.cfg.now()
	kind := EventStepDone
	if skipped != "" {
		sr.State = StepSkipped
		kind = EventStepSkipped
	}
	if err := u.save(ctx); err != nil {
		return err
	}
	u.emit(Event{Kind: kind, Step: i, Elapsed: u.r.cfg.now().Sub(started), Message: skipped})
	return nil
}

// exec carries out one step. A non-empty skipped says why nothing was done.
func (u *run) exec(ctx context.Context, i int, st Step, sr *StepRecord, resumed bool) (skipped string, err error) {
	switch st.Kind {
	case StepPreflight:
		return "", u.preflight(ctx, i)
	case StepRestart:
		return u.restart(ctx, i, st, sr, resumed)
	case StepFinalize:
		return u.finalize(ctx, i, st)
	case StepBake:
		return "", u.bake(ctx, i, st)
	case StepElectLeaders:
		return "", u.r.cfg.ops.electAll(ctx)
	case StepProvision:
		return u.provision(ctx, i, st, sr)
	case StepMove:
		return u.move(ctx, i, st)
	case StepRetire:
		return u.retire(ctx, i, st)
	case StepProvisionController:
		return u.provisionController(ctx, i, st, sr)
	case StepAwaitMigration:
		return "", u.awaitMigration(ctx, i)
	case StepRetireController:
		return u.retireController(ctx, i, st)
	case StepClearMigration:
		return "", u.clearMigration(ctx, i)
	case StepRestartReplacement:
		return u.restartReplacement(ctx, i, st, sr, resumed)
	case StepStopWorld:
		return u.stopWorld(ctx, i, st, sr)
	}
	return "", fmt.Errorf("upgrade: step kind %q cannot be run", st.Kind)
}
