package upgrade

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/health"
	"github.com/kupgrade/kupgrade/node"
)

// defaultStallAfter is how long a ZooKeeper-mode leader may keep a
// restarted broker's caught-up (or unserved) replica out of the ISR before
// the Runner moves that partition's leadership (see [stallWatch]).
const defaultStallAfter = time.Minute

// progressTimeout bounds one read of a restarted broker's log end offsets:
// the catch-up check that makes it goes on without them.
const progressTimeout = 5 * time.Second

// A leaderMove moves the leadership of one partition from a leader that
// does not take a restarted broker back into its ISR to an in-sync replica,
// keeping the partition's replicas.
type leaderMove struct {
	Topic     string
	Partition int32
	From      int32   // the stalled leader
	To        int32   // the in-sync replica that is to lead
	Replicas  []int32 // the partition's replicas, in their order before the move
}

// Order returns the replicas with To first and the others in their order:
// the assignment that makes To the preferred leader.
func (m leaderMove) Order() []int32 {
	out := []int32{m.To}
	for _, r := range m.Replicas {
		if r != m.To {
			out = append(out, r)
		}
	}
	return out
}

func (m leaderMove) String() string {
	return fmt.Sprintf("%s-%d: %d → %d", m.Topic, m.Partition, m.From, m.To)
}

// A replicaOrder is an assignment of one partition to replicas it already
// has, in a given order.
type replicaOrder struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Replicas  []int32 `json:"replicas"`
}

// leaderMovesKey is the journal's key ([Record.Data]) for the replica
// orders to restore of the partitions step i moved the leadership of.
func leaderMovesKey(i int) string { return "leader-moves/" + strconv.Itoa(i) }

// A replicaProgress is where a restarted broker's replica of a partition
// ends, next to the partition's high watermark on its leader.
type replicaProgress struct {
	End       int64 // the replica's log end offset, read on the restarted broker
	Watermark int64 // the leader's high watermark
}

// A stallWatch follows the catch-up of one restarted ZooKeeper-mode broker
// and finds the partitions whose leader does not take it back.
//
// A ZooKeeper-mode leader adds a caught-up follower to the ISR with an
// AlterPartition request to the controller. When that leader's request
// thread has died (seen on Kafka 3.9.2, after a migration's revert switched
// the brokers from the KRaft controller to a ZooKeeper one: "A metric named
// ... alter-partition-metrics ... already exists"), it never does, and the
// restarted broker stays out of the ISR of every partition that leader
// leads until the leader itself restarts. Restarting it would take a
// second replica out of those ISRs. Moving its leadership to another
// in-sync replica does not: the new leader takes the broker back. (A leader
// that serves the broker no data, such as one that throttles it, is
// stalled just as well.)
//
// The watch calls a partition stalled when the broker has been out of its
// ISR while its replica either stood at or beyond the leader's high
// watermark (as it was one check before: caught up, yet not taken back) or
// did not grow although the watermark was ahead (served nothing), in either
// case for [stallWatch.after]. A replica that grows, slowly or not, is
// catching up and left alone. Each partition is moved at most once.
type stallWatch struct {
	node  int32
	after time.Duration
	marks map[topicPart]*stallMark
	moved map[topicPart]leaderMove
}

// A stallMark is what the watch remembers of one partition's replica.
type stallMark struct {
	end     int64     // the replica's log end offset when last seen
	changed time.Time // when end last changed, or was first seen
	hw      int64     // the leader's high watermark when last seen
	caught  time.Time // since when the replica has stood at the watermark seen one check before (zero: it has not)
}

type topicPart struct {
	topic     string
	partition int32
}

func newStallWatch(node int32, after time.Duration) *stallWatch {
	return &stallWatch{node: node, after: after, marks: map[topicPart]*stallMark{}, moved: map[topicPart]leaderMove{}}
}

// stallWatch returns the watch for the catch-up of step st's node: a
// broker of a ZooKeeper-mode plan; nil for any other.
func (u *run) stallWatch(st Step) *stallWatch {
	if u.plan.Mode != compat.ModeZooKeeper || !(slices.Contains(st.Roles, node.RoleBroker) || len(st.Roles) == 0) {
		return nil
	}
	return newStallWatch(st.Node, u.r.cfg.stallAfter)
}

// watched returns the partitions whose replica progress the watch needs:
// those on the node, led by another broker, with the node out of the ISR
// and not moved yet, in topic and partition order.
func (w *stallWatch) watched(snap health.Snapshot) []topicPart {
	if w.after <= 0 {
		return nil
	}
	var out []topicPart
	snap.EachPartitionOn(w.node, func(t health.Topic, p health.Partition) {
		tp := topicPart{t.Name, p.Partition}
		if _, done := w.moved[tp]; !done && p.Leader >= 0 && p.Leader != w.node && !p.InISR(w.node) {
			out = append(out, tp)
		}
	})
	return out
}

// due returns the moves to make now, in topic and partition order, and
// records them as made. It is a pure function of the snapshot, the
// replicas' progress, the time and what the watch saw before.
func (w *stallWatch) due(snap health.Snapshot, prog map[topicPart]replicaProgress, now time.Time) []leaderMove {
	var moves []leaderMove
	for _, tp := range w.watched(snap) {
		pr, ok := prog[tp]
		if !ok {
			continue
		}
		m := w.marks[tp]
		if m == nil {
			w.marks[tp] = &stallMark{end: pr.End, changed: now, hw: pr.Watermark}
			continue
		}
		if pr.End != m.end {
			m.end, m.changed = pr.End, now
		}
		switch {
		case pr.End < m.hw:
			m.caught = time.Time{}
		case m.caught.IsZero():
			m.caught = now
		}
		m.hw = pr.Watermark
		starved := pr.End < pr.Watermark && now.Sub(m.changed) >= w.after
		refused := !m.caught.IsZero() && now.Sub(m.caught) >= w.after
		if !starved && !refused {
			continue
		}
		p, _ := snap.Partition(tp.topic, tp.partition)
		to := int32(-1)
		for _, r := range p.Replicas {
			if r != p.Leader && r != w.node && p.InISR(r) && !slices.Contains(p.Offline, r) {
				to = r
				break
			}
		}
		if to < 0 {
			continue // no other in-sync replica can lead
		}
		mv := leaderMove{Topic: tp.topic, Partition: tp.partition, From: p.Leader, To: to, Replicas: slices.Clone(p.Replicas)}
		w.moved[tp] = mv
		moves = append(moves, mv)
	}
	return moves
}

// unelected returns the moved partitions whose leader is not the replica
// they were moved to yet, in topic and partition order.
func (w *stallWatch) unelected(snap health.Snapshot) []leaderMove {
	var out []leaderMove
	for _, m := range w.sorted() {
		p, ok := snap.Partition(m.Topic, m.Partition)
		if ok && p.Leader != m.To && p.InISR(m.To) {
			out = append(out, m)
		}
	}
	return out
}

// restores returns the assignments that put the moved partitions' replicas
// back in their order before the moves.
func (w *stallWatch) restores() []replicaOrder {
	var out []replicaOrder
	for _, m := range w.sorted() {
		out = append(out, replicaOrder{Topic: m.Topic, Partition: m.Partition, Replicas: m.Replicas})
	}
	return out
}

func (w *stallWatch) sorted() []leaderMove {
	return slices.SortedFunc(maps.Values(w.moved), func(a, b leaderMove) int {
		return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
}

// moveStalled makes the moves the watch finds due and elects the moved
// partitions' new leaders until they lead. It is called on every check of
// a ZooKeeper-mode broker's catch-up. A replica progress that cannot be
// read is no error: the watch looks again at the next check.
func (u *run) moveStalled(ctx context.Context, i int, w *stallWatch, snap health.Snapshot) error {
	ops := u.r.cfg.ops
	var moves []leaderMove
	if tps := w.watched(snap); len(tps) > 0 {
		pctx, cancel := context.WithTimeout(ctx, progressTimeout) // a broker just started may not answer yet
		prog, err := ops.replicaProgress(pctx, w.node, tps)
		cancel()
		if err == nil {
			moves = w.due(snap, prog, u.r.cfg.now())
		}
	}
	if len(moves) > 0 {
		orders := make([]replicaOrder, len(moves))
		from := map[int32]bool{}
		for j, m := range moves {
			orders[j] = replicaOrder{Topic: m.Topic, Partition: m.Partition, Replicas: m.Order()}
			from[m.From] = true
		}
		leaders := "leader " + joinIDs(slices.Sorted(maps.Keys(from)))
		if len(from) > 1 {
			leaders = "leaders " + joinIDs(slices.Sorted(maps.Keys(from)))
		}
		u.emit(Event{Kind: EventLeadersMoved, Step: i, Message: fmt.Sprintf(
			"node %d: %s did not take it back into the ISR of %s for %v (its replica caught up but not taken back, or served nothing); moving their leadership to in-sync replicas (%s) by a reassignment to the same replicas and a preferred election; their order is restored once node %d is back",
			w.node, leaders, partitions(len(moves)), w.after, strings.Join(firstFew(stringsOf(moves)), ", "), w.node)})
		// The journal first: a run that stops before the restore leaves the
		// next run the orders to put back.
		if err := u.journalOrders(ctx, i, w.restores()); err != nil {
			return err
		}
		if err := ops.reorderReplicas(ctx, orders); err != nil {
			return fmt.Errorf("move the leadership of %d partitions off their stalled leaders: %w", len(moves), err)
		}
	}
	if todo := w.unelected(snap); len(todo) > 0 {
		tps := make([]topicPart, len(todo))
		for j, m := range todo {
			tps[j] = topicPart{m.Topic, m.Partition}
		}
		if err := ops.electPreferredOf(ctx, tps); err != nil {
			return fmt.Errorf("elect the moved partitions' new leaders: %w", err)
		}
	}
	return nil
}

// restoreOrder puts the replicas of the partitions the watch moved back in
// their order, once the node is back (see [run.putBack]).
func (u *run) restoreOrder(ctx context.Context, i int, w *stallWatch) error {
	orders := w.restores()
	if len(orders) == 0 {
		return nil
	}
	what := fmt.Sprintf("node %d is back, but the replicas of the %s whose leadership moved are not back in their order (%s)",
		w.node, partitions(len(orders)), strings.Join(firstFew(stringsOf(w.sorted())), ", "))
	if err := u.putBack(ctx, i, orders, what); err != nil {
		return err
	}
	u.emit(Event{Kind: EventLeadersMoved, Step: i, Message: fmt.Sprintf("node %d is back: the replicas of the %s whose leadership moved are in their order again", w.node, partitions(len(orders)))})
	return nil
}

// restoreLeftOrders puts back the replica orders an earlier run journaled
// and did not restore (it stopped during a catch-up that had moved
// leaders), before anything else; the catch-up, run again, moves them
// again if their leader still does not take the broker back.
func (u *run) restoreLeftOrders(ctx context.Context) error {
	for _, key := range slices.Sorted(maps.Keys(u.rec.Data)) {
		var i int
		if _, err := fmt.Sscanf(key, "leader-moves/%d", &i); err != nil || key != leaderMovesKey(i) || i < 0 || i >= len(u.plan.Steps) {
			continue
		}
		var orders []replicaOrder
		if err := json.Unmarshal(u.rec.Data[key], &orders); err != nil {
			return fmt.Errorf("upgrade: journal entry %s: %w", key, err)
		}
		what := fmt.Sprintf("the replicas of the %s whose leadership the last run moved are not back in their order", partitions(len(orders)))
		if err := u.putBack(ctx, i, orders, what); err != nil {
			return fmt.Errorf("upgrade: %w", err)
		}
		u.emit(Event{Kind: EventLeadersMoved, Step: i, Message: fmt.Sprintf("the replicas of the %s whose leadership the last run moved are in their order again", partitions(len(orders)))})
	}
	return nil
}

// putBack reassigns the partitions to their replicas in the orders given,
// waits until the brokers' metadata shows them, then drops step i's journal
// entry. A reassignment whose replicas are all in sync completes at once;
// the leaders stay until a preferred election.
func (u *run) putBack(ctx context.Context, i int, orders []replicaOrder, what string) error {
	if err := u.r.cfg.ops.reorderReplicas(ctx, orders); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	err := u.waitFor(ctx, i, EventWaiting, u.r.cfg.catchUpTimeout, what, func(ctx context.Context) (health.Verdict, error) {
		snap, err := u.r.cfg.ops.snapshot(ctx)
		if err != nil {
			return health.Verdict{}, err
		}
		v := health.Verdict{Kind: health.Kind("replica-order")}
		for _, o := range orders {
			if p, ok := snap.Partition(o.Topic, o.Partition); ok && !slices.Equal(p.Replicas, o.Replicas) {
				v.Reasons = append(v.Reasons, health.Reason{Rule: "replica-order", Topic: o.Topic, Partition: o.Partition, Leader: p.Leader, Replicas: p.Replicas,
					Message: fmt.Sprintf("%s-%d: replicas %v, not yet %v again", o.Topic, o.Partition, p.Replicas, o.Replicas)})
			}
		}
		v.OK = len(v.Reasons) == 0
		return v, nil
	})
	if err != nil {
		return err
	}
	return u.journalOrders(ctx, i, nil)
}

// journalOrders records the orders to restore for step i (none: drops the
// entry) and saves the journal.
func (u *run) journalOrders(ctx context.Context, i int, orders []replicaOrder) error {
	key := leaderMovesKey(i)
	if len(orders) == 0 {
		if _, ok := u.rec.Data[key]; !ok {
			return nil
		}
		delete(u.rec.Data, key)
		return u.save(ctx)
	}
	b, err := json.Marshal(orders)
	if err != nil {
		return err
	}
	if u.rec.Data == nil {
		u.rec.Data = map[string]json.RawMessage{}
	}
	u.rec.Data[key] = b
	return u.save(ctx)
}

// partitions says "1 partition" or "n partitions".
func partitions(n int) string {
	if n == 1 {
		return "1 partition"
	}
	return strconv.Itoa(n) + " partitions"
}

func joinIDs(ids []int32) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.Itoa(int(id))
	}
	return strings.Join(parts, ", ")
}

func stringsOf[T fmt.Stringer](xs []T) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = x.String()
	}
	return out
}

// The live implementations.

// reorderReplicas reassigns each partition to the replicas named, which it
// already has.
func (o *liveOps) reorderReplicas(ctx context.Context, orders []replicaOrder) error {
	adm := kadm.NewClient(o.cl)
	for batch := range slices.Chunk(orders, reseedBatch) {
		var req kadm.AlterPartitionAssignmentsReq
		for _, r := range batch {
			req.Assign(r.Topic, r.Partition, r.Replicas)
		}
		res, err := adm.AlterPartitionAssignments(ctx, req)
		if err != nil {
			return err
		}
		if err := res.Error(); err != nil {
			return err
		}
	}
	return nil
}

// electPreferredOf runs a preferred leader election for the partitions
// named. A partition whose preferred replica leads already, or cannot lead
// yet (the reassignment that makes it preferred is not applied), is no
// error: the caller checks the leaders again.
func (o *liveOps) electPreferredOf(ctx context.Context, tps []topicPart) error {
	set := kadm.TopicsSet{}
	for _, tp := range tps {
		set.Add(tp.topic, tp.partition)
	}
	return o.elect(ctx, set, kerr.PreferredLeaderNotAvailable)
}

// replicaProgress reads broker id's log end offsets with a ListOffsets
// request as the debugging replica (-2), which a follower answers from its
// own log, and the leaders' high watermarks with a client's ListOffsets.
func (o *liveOps) replicaProgress(ctx context.Context, id int32, tps []topicPart) (map[topicPart]replicaProgress, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -2
	set := kadm.TopicsSet{}
	for _, tp := range tps {
		set.Add(tp.topic, tp.partition)
	}
	for _, t := range set.Sorted() {
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition = p
			rp.Timestamp = -1 // the end
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, o.cl.Broker(int(id)))
	if err != nil {
		return nil, fmt.Errorf("list broker %d's log end offsets: %w", id, err)
	}
	hws, err := kadm.NewClient(o.cl).ListEndOffsets(ctx, set.Topics()...)
	if err != nil {
		return nil, fmt.Errorf("list high watermarks: %w", err)
	}
	out := map[topicPart]replicaProgress{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				continue
			}
			hw, ok := hws.Lookup(t.Topic, p.Partition)
			if !ok || hw.Err != nil {
				continue
			}
			out[topicPart{t.Topic, p.Partition}] = replicaProgress{End: p.Offset, Watermark: hw.Offset}
		}
	}
	return out, nil
}
