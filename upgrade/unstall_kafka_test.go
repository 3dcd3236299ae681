package upgrade_test

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/kafkatest"
	"github.com/kupgrade/kupgrade/upgrade"
)

// TestStalledLeaderMoved proves on real ZooKeeper-mode brokers (3.8.1) what
// the Runner does when a leader does not take a restarted broker back into
// its ISRs: the leadership of those partitions moves to in-sync replicas, the
// broker catches up under the new leaders, and the replicas' order is put
// back.
//
// The stall is made with a leader-side replication throttle on one broker
// (L): 1 byte/s for every "orders" replica on L. The in-sync follower's
// fetches exceed it at once under traffic, and a leader serves a throttled
// replica that is out of the ISR nothing while the quota is exceeded, so the
// restarted broker cannot catch up on the partitions L leads, and on no
// other. (The cause seen in CI was another: a leader whose AlterPartition
// thread had died; the symptom and the remedy are the same.)
func TestStalledLeaderMoved(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.ZooKeeper("3.8.1"), kafkatest.Brokers(3))
	// Traffic to every partition all the time (round robin), so that the
	// leader's watermark always runs ahead of a replica it serves nothing.
	if err := c.CreateTopic(t.Context(), "orders", 6, 3, map[string]string{"min.insync.replicas": "2"}); err != nil {
		t.Fatal(err)
	}
	tr := c.Traffic(t, "orders", kafkatest.Rate(500), kafkatest.TrafficClientOpts(kgo.RecordPartitioner(kgo.RoundRobinPartitioner())))
	if err := tr.WaitAcknowledged(t.Context(), 500); err != nil {
		t.Fatal(err)
	}
	baseline[tr] = time.Now()
	if err := tr.WaitAcknowledged(t.Context(), 3000); err != nil {
		t.Fatal(err)
	}
	in := inspect(t, c)
	full, err := upgrade.NewPlan(in.State, upgrade.Target{Version: compat.MustParseRelease("3.9.2")})
	if err != nil {
		t.Fatal(err)
	}
	// The plan up to its first restart: one broker (A) is enough.
	plan := full
	first := slices.IndexFunc(full.Steps, func(s upgrade.Step) bool { return s.Kind == upgrade.StepRestart })
	plan.Steps = slices.Clone(full.Steps[:first+1])
	upgrade.Reseal(&plan)
	a := plan.Steps[first].Node

	cl := c.Client(t)
	adm := kadm.NewClient(cl)
	topics, err := adm.ListTopics(t.Context(), "orders")
	if err != nil || topics.Error() != nil {
		t.Fatalf("list orders: %v %v", err, topics.Error())
	}
	orig := map[int32][]int32{}
	leads := map[int32]int{}
	for _, p := range topics["orders"].Partitions {
		orig[p.Partition] = p.Replicas
		leads[p.Leader]++
	}
	// L: a broker other than A that leads partitions now.
	l := int32(-1)
	for _, id := range []int32{1, 2, 3} {
		if id != a && leads[id] > 0 && (l < 0 || leads[id] > leads[l]) {
			l = id
		}
	}
	if l < 0 {
		t.Fatalf("no broker but %d leads an orders partition: %v", a, leads)
	}
	var throttled []string
	for p := range orig {
		throttled = append(throttled, fmt.Sprintf("%d:%d", p, l))
	}
	slices.Sort(throttled)
	if _, err := adm.AlterTopicConfigs(t.Context(), []kadm.AlterConfig{{Name: "leader.replication.throttled.replicas", Value: kadm.StringPtr(strings.Join(throttled, ","))}}, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.AlterBrokerConfigs(t.Context(), []kadm.AlterConfig{{Name: "leader.replication.throttled.rate", Value: kadm.StringPtr("1")}}, l); err != nil {
		t.Fatal(err)
	}
	t.Logf("restarting broker %d; broker %d throttles every orders replica it leads (%v) to 1 byte/s; leaders %v", a, l, throttled, leads)

	rec := newRecorder(t)
	rec.onEvent = func(e upgrade.Event) {
		if e.Kind == upgrade.EventLeadersMoved {
			if ts, err := adm.ListTopics(t.Context(), "orders"); err == nil {
				for _, p := range ts["orders"].Partitions.Sorted() {
					t.Logf("at the move: orders-%d leader %d replicas %v ISR %v", p.Partition, p.Leader, p.Replicas, p.ISR)
				}
			}
		}
	}
	const after = 20 * time.Second
	start := time.Now()
	err = mustRunner(t, cl, c, upgrade.OnEvent(rec.add), upgrade.StallAfter(after), upgrade.CatchUpTimeout(3*time.Minute)).Run(t.Context(), plan)
	end := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	var moved []upgrade.Event
	for _, e := range rec.events {
		if e.Kind == upgrade.EventLeadersMoved {
			moved = append(moved, e)
		}
	}
	if len(moved) != 2 || !strings.Contains(moved[0].Message, "leader "+strconv.Itoa(int(l))+" did not take it back") || !strings.Contains(moved[1].Message, "in their order again") {
		t.Fatalf("leaders-moved events %v: want a move off broker %d, then the order restored", moved, l)
	}
	var restarted time.Time
	for _, e := range rec.events {
		if e.Kind == upgrade.EventRestarted {
			restarted = e.Time
		}
	}
	if d := moved[0].Time.Sub(restarted); d < after {
		t.Errorf("leaders moved %v after the restart, want at least %v", d, after)
	}
	t.Logf("run %v; leaders moved %v after the restart: %s", end.Sub(start).Round(time.Millisecond), moved[0].Time.Sub(restarted).Round(time.Millisecond), moved[0].Message)

	topics, err = adm.ListTopics(t.Context(), "orders")
	if err != nil || topics.Error() != nil {
		t.Fatalf("list orders: %v %v", err, topics.Error())
	}
	// The partitions named as moved ("orders-1: 2 → 3") are led by the
	// replica they moved to.
	named := regexp.MustCompile(`orders-(\d+): (\d+) → (\d+)`).FindAllStringSubmatch(moved[0].Message, -1)
	if len(named) == 0 {
		t.Fatalf("no partition named in %q", moved[0].Message)
	}
	to := map[int32]int32{}
	for _, m := range named {
		p, _ := strconv.Atoi(m[1])
		from, _ := strconv.Atoi(m[2])
		dst, _ := strconv.Atoi(m[3])
		if int32(from) != l || int32(dst) == a || int32(dst) == l {
			t.Errorf("move %s: want one off broker %d to the in-sync replica that is neither %d nor %d", m[0], l, l, a)
		}
		to[int32(p)] = int32(dst)
	}
	for _, p := range topics["orders"].Partitions {
		if !slices.Equal(p.Replicas, orig[p.Partition]) {
			t.Errorf("orders-%d: replicas %v after the run, want %v as before", p.Partition, p.Replicas, orig[p.Partition])
		}
		if !slices.Contains(p.ISR, a) {
			t.Errorf("orders-%d: broker %d not in ISR %v", p.Partition, a, p.ISR)
		}
		if dst, ok := to[p.Partition]; ok && p.Leader != dst {
			t.Errorf("orders-%d: led by %d, want %d, where it moved", p.Partition, p.Leader, dst)
		}
	}
	pending, err := adm.ListPartitionReassignments(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 0 {
		t.Errorf("reassignments still pending: %v", pending)
	}
	finishTraffic(t, tr, start, end)
}
