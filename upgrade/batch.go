package upgrade

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/health"
	"github.com/kupgrade/kupgrade/node"
)

// BatchRestarts lets the Runner restart up to max brokers of a roll at
// once, overriding the default of one node at a time (max 0 or 1 keeps
// it). Before each batch the Runner takes a fresh snapshot and picks, with a
// pure function over it, the largest set of the roll's remaining brokers
// whose joint restart the health gate allows (no partition offline or below
// min.insync.replicas, with the [GateOptions]' rules); with racks it tries
// a rack at a time first. Just before the restarts it checks the batch
// again on another snapshot and shrinks it if the cluster moved. The
// batch's brokers restart concurrently, each step journaled as in a serial
// roll, and the next batch waits until all of them have caught up.
//
// The Orchestrator's Restart is called concurrently for the nodes of a
// batch, and must allow it. Events name their batch ([Event.Batch]); the
// batch's gate events (gate-blocked while it waits, a waiting event when it
// shrinks) come before its steps' step-started events, under the first
// step of the batch.
//
// Controllers (KRaft controllers and combined nodes) still restart one at
// a time, the active one last, and so does the ZooKeeper controller broker,
// last in its roll. A step in flight when an earlier run stopped is resumed
// on its own first.
func BatchRestarts(max int) RunnerOption {
	return optionFunc(func(c *config) { c.batchMax = max })
}

// restartBatch returns the largest set of cands (broker ids, in plan order)
// whose joint restart g allows over snap, of at most max nodes, in the order
// of cands; nil if no candidate may restart even alone. It does no I/O.
//
// It grows a set greedily along an order of the candidates, adding each one
// whose addition the gate still allows. Without racks the order is cands'.
// With racks (the snapshot's brokers' racks) it tries one order per rack,
// that rack's candidates first and then the others, so that a whole rack
// restarts together when that is safe; the largest set wins, and of equal
// sets the first rack's in cands' order.
func restartBatch(g *health.Gate, snap health.Snapshot, cands []int32, max int) []int32 {
	if max < 1 {
		max = 1
	}
	rackOf := map[int32]string{}
	for _, b := range snap.Brokers {
		rackOf[b.ID] = b.Rack
	}
	var racks []string
	for _, c := range cands {
		if r := rackOf[c]; r != "" && !slices.Contains(racks, r) {
			racks = append(racks, r)
		}
	}
	orders := [][]int32{cands}
	if len(racks) > 0 {
		orders = orders[:0]
		for _, r := range racks {
			order := make([]int32, 0, len(cands))
			for _, c := range cands {
				if rackOf[c] == r {
					order = append(order, c)
				}
			}
			for _, c := range cands {
				if rackOf[c] != r {
					order = append(order, c)
				}
			}
			orders = append(orders, order)
		}
	}
	var best []int32
	for _, order := range orders {
		var set []int32
		for _, c := range order {
			if len(set) == max {
				break
			}
			try := append(slices.Clone(set), c)
			if g.CanRestart(snap, try...).OK {
				set = try
			}
		}
		if len(set) > len(best) {
			best = set
		}
		if len(best) == max {
			break
		}
	}
	// Plan order, for journal and events.
	slices.SortFunc(best, func(a, b int32) int { return slices.Index(cands, a) - slices.Index(cands, b) })
	return best
}

// batchable reports whether step i may restart in a batch: a broker-only
// restart of a roll, not started by an earlier run, not held (unless holds
// are passed).
func (u *run) batchable(i int) bool {
	st := u.plan.Steps[i]
	state := u.rec.Steps[i].State
	return st.Kind == StepRestart && st.Roll > 0 && slices.Equal(st.Roles, []node.Role{node.RoleBroker}) &&
		(state == StepPending || state == StepFailed) && (!st.Hold || u.r.cfg.passHolds)
}

// batchCandidates returns the steps that may join step i (which next chose)
// in a batch: i first, then the other batchable steps of its roll in plan
// order, but for the ZooKeeper controller broker, which goes last, and for
// steps whose change is already in effect (they are skipped one by one).
func (u *run) batchCandidates(ctx context.Context, i int) []int {
	st := u.plan.Steps[i]
	leader := int32(-1)
	if u.plan.Mode == compat.ModeZooKeeper {
		if l, err := u.leader(ctx, st); err == nil {
			leader = l
		}
	}
	// The roll: the run of restart steps around i with its Roll, as next
	// groups them.
	inRoll := func(j int) bool { return u.plan.Steps[j].Kind == StepRestart && u.plan.Steps[j].Roll == st.Roll }
	lo, hi := i, i
	for lo > 0 && inRoll(lo-1) {
		lo--
	}
	for hi+1 < len(u.plan.Steps) && inRoll(hi+1) {
		hi++
	}
	out := []int{i}
	for j := lo; j <= hi; j++ {
		s := u.plan.Steps[j]
		if j == i || !u.batchable(j) || s.Node == leader {
			continue
		}
		if ok, _ := u.inEffect(ctx, s); ok {
			continue
		}
		out = append(out, j)
	}
	return out
}

// batch restarts steps of one roll together, starting from step i, which
// next chose. It returns handled false, doing nothing, when step i should
// run on its own (u.step).
func (u *run) batch(ctx context.Context, i int) (handled bool, err error) {
	st := u.plan.Steps[i]
	if ok, _ := u.inEffect(ctx, st); ok {
		return false, nil // the serial step skips it
	}
	cands := u.batchCandidates(ctx, i)
	if len(cands) < 2 {
		return false, nil
	}
	stepOf := map[int32]int{}
	var ids []int32
	for _, j := range cands {
		stepOf[u.plan.Steps[j].Node] = j
		ids = append(ids, u.plan.Steps[j].Node)
	}
	snap, err := u.r.cfg.ops.snapshot(ctx)
	if err != nil {
		return false, nil // the serial step's gate waits for the cluster
	}
	picked := restartBatch(u.r.gate, u.withDead(ctx, snap), ids, u.r.cfg.batchMax)
	if len(picked) < 2 {
		return false, nil // one at a time: the serial step gates and waits
	}
	n := 1
	for _, s := range u.rec.Steps {
		n = max(n, s.Batch+1)
	}
	steps, err := u.gateBatch(ctx, i, n, picked, stepOf)
	if err != nil {
		if ctx.Err() != nil {
			return true, fmt.Errorf("upgrade: run stopped before batch %d: %w", n, context.Cause(ctx))
		}
		// As a serial step whose gate gives up: step i failed.
		u.rec.Steps[i] = StepRecord{State: StepStarted, Started: u.r.cfg.now()}
		return true, u.finishStep(ctx, i, err)
	}
	if len(steps) < 2 {
		return false, nil
	}
	return true, u.runBatch(ctx, n, steps)
}

// gateBatch checks the batch again on a fresh snapshot, just before its
// restarts, with the gates of a serial restart (health, liveness probe,
// canary), and shrinks it to what that snapshot allows. It waits, bounded by
// [GateTimeout], while not even one of the nodes may restart. It returns the
// batch's steps.
func (u *run) gateBatch(ctx context.Context, i, n int, ids []int32, stepOf map[int32]int) ([]int, error) {
	ops := u.r.cfg.ops
	u.batchOf = map[int]int{i: n}
	defer func() { u.batchOf = nil }()
	err := u.waitFor(ctx, i, EventGateBlocked, u.r.cfg.gateTimeout, fmt.Sprintf("restarting batch %d (nodes %v) is not safe", n, ids),
		func(ctx context.Context) (health.Verdict, error) {
			snap, err := ops.snapshot(ctx)
			if err != nil {
				return health.Verdict{}, err
			}
			snap = u.withDead(ctx, snap)
			v := u.r.gate.CanRestart(snap, ids...)
			if !v.OK {
				if sub := restartBatch(u.r.gate, snap, ids, len(ids)); len(sub) > 0 {
					u.emit(Event{Kind: EventWaiting, Step: i, Reasons: v.Reasons,
						Message: fmt.Sprintf("batch %d: nodes %v are no longer safe to restart together; restarting %v", n, ids, sub)})
					ids = sub
					v = u.r.gate.CanRestart(snap, ids...)
				}
			}
			reasons, err := u.unresponsive(ctx, v.Reasons, -1)
			if err != nil {
				return health.Verdict{}, err
			}
			if reasons, err = u.canary(ctx, reasons, -1); err != nil {
				return health.Verdict{}, err
			}
			// A hung or slow member of the batch is no reason to wait:
			// its restart is what helps.
			reasons = slices.DeleteFunc(reasons, func(r health.Reason) bool {
				return r.Topic == "" && len(r.Nodes) == 1 && slices.Contains(ids, r.Nodes[0])
			})
			return health.Verdict{Kind: health.KindCanRestart, Nodes: ids, OK: len(reasons) == 0, Reasons: reasons}, nil
		})
	if err != nil {
		return nil, err
	}
	var steps []int
	for _, id := range ids {
		steps = append(steps, stepOf[id])
	}
	slices.Sort(steps)
	return steps, nil
}

// runBatch restarts the steps of batch n concurrently, then waits for each
// node to catch up. Each step is journaled as a serial one is: started,
// restart asked for, then done or failed; a run that stops in between
// leaves steps in flight, which the next run settles one by one.
func (u *run) runBatch(ctx context.Context, n int, steps []int) error {
	u.batchOf = map[int]int{}
	defer func() { u.batchOf = nil }()
	var nodes []int32
	for _, i := range steps {
		u.batchOf[i] = n
		nodes = append(nodes, u.plan.Steps[i].Node)
	}
	sctx, cancel := context.WithTimeoutCause(ctx, u.r.cfg.stepTimeout,
		fmt.Errorf("upgrade: batch %d (nodes %v) did not finish within %v", n, nodes, u.r.cfg.stepTimeout))
	defer cancel()
	started := u.r.cfg.now()
	for _, i := range steps {
		sr := &u.rec.Steps[i]
		*sr = StepRecord{State: StepStarted, Started: started, Batch: n}
	}
	if err := u.save(ctx); err != nil {
		return err
	}
	for _, i := range steps {
		u.emit(Event{Kind: EventStepStarted, Step: i, Message: fmt.Sprintf("%v (batch %d: nodes %v)", u.plan.Steps[i], n, nodes)})
		u.emit(Event{Kind: EventGatePassed, Step: i, Message: fmt.Sprintf("restarting nodes %v together is safe", nodes)})
	}
	for _, i := range steps {
		u.rec.Steps[i].Restarted = true
	}
	if err := u.save(ctx); err != nil {
		return err
	}
	for _, i := range steps {
		st := u.plan.Steps[i]
		u.emit(Event{Kind: EventRestarting, Step: i, Message: fmt.Sprintf("restarting node %d: %v", st.Node, st.Change)})
	}
	results := make([]error, len(steps))
	began := u.r.cfg.now()
	var wg sync.WaitGroup
	for k, i := range steps {
		st := u.plan.Steps[i]
		wg.Go(func() {
			rctx, cancel := context.WithTimeoutCause(sctx, u.r.cfg.restartTimeout,
				fmt.Errorf("the Orchestrator did not restart node %d within %v", st.Node, u.r.cfg.restartTimeout))
			defer cancel()
			if err := u.r.orch.Restart(rctx, st.Node, st.Change); err != nil {
				results[k] = fmt.Errorf("node %d did not restart: %w", st.Node, err)
			}
		})
	}
	wg.Wait()
	elapsed := u.r.cfg.now().Sub(began)
	var first error
	for k, i := range steps {
		st := u.plan.Steps[i]
		if results[k] == nil {
			u.emit(Event{Kind: EventRestarted, Step: i, Elapsed: elapsed, Message: fmt.Sprintf("node %d restarted", st.Node)})
		}
	}
	for k, i := range steps {
		err := results[k]
		if err == nil {
			err = u.catchUp(sctx, i, u.plan.Steps[i])
		}
		if err := u.finishStep(ctx, i, err); err != nil && first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return first
}

// finishStep records the end of batched step i (err nil: done) and emits
// its event, as u.step does for a serial step.
func (u *run) finishStep(ctx context.Context, i int, err error) error {
	st := u.plan.Steps[i]
	sr := &u.rec.Steps[i]
	if err != nil {
		if ctx.Err() != nil {
			u.save(ctx)
			return fmt.Errorf("upgrade: run stopped during step %d (%v): %w", i+1, st, context.Cause(ctx))
		}
		sr.State, sr.Err, sr.Finished = StepFailed, err.Error(), u.r.cfg.now()
		serr := u.save(ctx)
		u.emit(Event{Kind: EventStepFailed, Step: i, Elapsed: sr.Finished.Sub(sr.Started), Err: err, Message: "step failed"})
		if serr != nil {
			return errors.Join(&StepError{Index: i, Step: st, Err: err}, serr)
		}
		return &StepError{Index: i, Step: st, Err: err}
	}
	sr.State, sr.Err, sr.Finished = StepDone, "", u.r.cfg.now()
	if err := u.save(ctx); err != nil {
		return err
	}
	u.emit(Event{Kind: EventStepDone, Step: i, Elapsed: sr.Finished.Sub(sr.Started)})
	return nil
}
