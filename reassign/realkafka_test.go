package reassign_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/kafkatest"
	"github.com/kupgrade/kupgrade/reassign"
)

// The tests in this file run the executor against a real Kafka cluster of
// local JVMs. They share one cluster, started by the first of them that
// runs and closed by TestMain: three combined KRaft nodes (1, 2, 3) and one
// broker-only node (4), in racks a, b, c, a. Each test uses its own topics.
// They skip with -short.

const kafkaRelease = "3.9.2"

var shared struct {
	mu   sync.Mutex
	c    *kafkatest.Cluster
	took time.Duration
}

func TestMain(m *testing.M) {
	code := m.Run()
	closeShared()
	os.Exit(code)
}

// closeShared closes the shared cluster, if it runs, so that a test can
// start another: only one kafkatest cluster runs on a machine at a time.
func closeShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.c != nil {
		shared.c.Close()
		shared.c = nil
	}
}

// realCluster returns the shared cluster, starting it on first use.
func realCluster(t *testing.T) *kafkatest.Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts real Kafka JVMs; skipped with -short")
	}
	kafkatest.RequireTools(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.c == nil {
		start := time.Now()
		// New waits for other clusters on the machine first (kafkatest's
		// lock, 30m by default), then for the nodes.
		ctx, cancel := context.WithTimeoutCause(context.Background(), 40*time.Minute,
			errors.New("reassign test: cluster not started within 40m, waiting for other clusters included"))
		defer cancel()
		c, err := kafkatest.New(ctx, kafkatest.KRaft(kafkaRelease), kafkatest.Combined(3), kafkatest.Brokers(1),
			kafkatest.Racks("a", "b", "c"))
		if err != nil {
			t.Fatalf("start cluster: %v", err)
		}
		shared.c, shared.took = c, time.Since(start)
	}
	t.Logf("cluster %s (KRaft %s, 3 combined + 1 broker) ready; start took %v", shared.c.Name(), kafkaRelease, shared.took.Round(time.Second))
	c := shared.c
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range c.All() {
				t.Logf("node %d (%v), last lines of %s:\n%s", n.ID(), n.Status(), n.LogPath(), n.LogTail(30))
			}
		}
	})
	return c
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// fill writes perPartition bytes of incompressible 64 KiB records to every
// partition of topic and returns the bytes written.
func fill(t *testing.T, c *kafkatest.Cluster, topic string, partitions int32, perPartition int) int64 {
	t.Helper()
	cl, err := c.NewClient(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rng := rand.NewChaCha8([32]byte{1})
	const size = 64 << 10
	var recs []*kgo.Record
	var n int64
	for p := range partitions {
		for w := 0; w < perPartition; w += size {
			v := make([]byte, size)
			rng.Read(v)
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: v})
			n += size
		}
	}
	ctx, cancel := context.WithTimeoutCause(t.Context(), 2*time.Minute, fmt.Errorf("fill %s: not acknowledged within 2m", topic))
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("fill %s: %v", topic, err)
	}
	return n
}

// createTopicOn creates a topic whose partition i has the replicas
// assignment[i], and waits until every partition has them all in sync.
func createTopicOn(t *testing.T, cl *kgo.Client, topic string, assignment ...[]int32) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	for i, reps := range assignment {
		ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		ra.Partition, ra.Replicas = int32(i), reps
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
	}
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 30_000
	resp, err := req.RequestWith(t.Context(), cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	waitFor(t, time.Minute, "topic "+topic+" in sync on its replicas", func() (bool, string) {
		ps := partitionsOf(t, cl, topic)
		for i, reps := range assignment {
			p, ok := ps[int32(i)]
			if !ok || !slices.Equal(p.replicas, reps) || !sameSet(p.isr, reps) {
				return false, fmt.Sprintf("%s-%d: %+v", topic, i, p)
			}
		}
		return true, ""
	})
}

// waitFor polls cond every 200ms until it holds, failing the test after d
// with cond's last explanation.
func waitFor(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	ctx, cancel := context.WithTimeoutCause(t.Context(), d, fmt.Errorf("%s: not within %v", what, d))
	defer cancel()
	for {
		ok, why := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%v (last: %s)", context.Cause(ctx), why)
		case <-time.After(200 * time.Millisecond): // polling an observed condition, bounded by ctx
		}
	}
}

// killOn kills node id once fire is closed (unless ctx ends first) and
// sends the time of the kill on the channel it returns.
func killOn(t *testing.T, ctx context.Context, fire <-chan struct{}, c *kafkatest.Cluster, id int32) <-chan time.Time {
	killed := make(chan time.Time, 1)
	go func() {
		select {
		case <-fire:
		case <-ctx.Done():
			return
		}
		if err := c.Node(id).Kill(); err != nil {
			t.Errorf("kill broker %d: %v", id, err)
		}
		killed <- time.Now()
	}()
	return killed
}

// part is one partition as fresh metadata shows it.
type part struct {
	replicas, isr []int32
}

// allPartitions reads fresh metadata (not kgo's cached copy) of topics, or
// of every topic if none are given.
func allPartitions(t *testing.T, cl *kgo.Client, topics ...string) map[string]map[int32]part {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	if len(topics) > 0 {
		for _, tp := range topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(tp)
			req.Topics = append(req.Topics, rt)
		}
	}
	ctx, cancel := context.WithTimeoutCause(t.Context(), 15*time.Second, errors.New("metadata: no answer within 15s"))
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(context.Cause(ctx), err)
	}
	out := make(map[string]map[int32]part)
	for _, tp := range resp.Topics {
		if tp.Topic == nil || tp.ErrorCode != 0 {
			continue
		}
		ps := make(map[int32]part)
		for _, p := range tp.Partitions {
			ps[p.Partition] = part{replicas: p.Replicas, isr: p.ISR}
		}
		out[*tp.Topic] = ps
	}
	return out
}

// partitionsOf returns the partitions of one topic.
func partitionsOf(t *testing.T, cl *kgo.Client, topic string) map[int32]part {
	t.Helper()
	return allPartitions(t, cl, topic)[topic]
}

// replicasBecome waits until fresh metadata shows topic's partition with
// replicas want. The executor saw the end state on one broker; the broker a
// later read goes to may apply the same metadata a moment later.
func replicasBecome(t *testing.T, cl *kgo.Client, topic string, partition int32, want []int32, what string) {
	t.Helper()
	waitFor(t, 15*time.Second, fmt.Sprintf("%s: %s-%d replicas %v", what, topic, partition, want), func() (bool, string) {
		got := partitionsOf(t, cl, topic)[partition].replicas
		return slices.Equal(got, want), fmt.Sprintf("replicas %v", got)
	})
}

func sameSet(a, b []int32) bool {
	x, y := slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))
	return slices.Equal(x, y)
}

// listed returns the reassignments in flight among the partitions of set.
func listed(t *testing.T, adm *kadm.Client, set kadm.TopicsSet) kadm.ListPartitionReassignmentsResponses {
	t.Helper()
	ctx, cancel := context.WithTimeoutCause(t.Context(), 15*time.Second, errors.New("ListPartitionReassignments: no answer within 15s"))
	defer cancel()
	rs, err := adm.ListPartitionReassignments(ctx, set)
	if err != nil {
		t.Fatal(context.Cause(ctx), err)
	}
	return rs
}

// throttleConfigs returns every replication throttle config set
// dynamically on brokers 1-4, as the cluster-wide default, and on topics:
// "broker 1 leader.replication.throttled.rate" → value. It reads them
// independently of the executor's code, and asks every broker about the
// default and the topics, since each answers from its own copy of the
// metadata, which may lag the controller: ok is false while they disagree.
func throttleConfigs(t *testing.T, cl *kgo.Client, topics ...string) (cfg map[string]string, ok bool) {
	t.Helper()
	keys := []string{reassign.LeaderRateConfig, reassign.FollowerRateConfig, reassign.LeaderReplicasConfig, reassign.FollowerReplicasConfig}
	describe := func(via int32, typ kmsg.ConfigResourceType, names ...string) map[string]string {
		req := kmsg.NewPtrDescribeConfigsRequest()
		for _, n := range names {
			r := kmsg.NewDescribeConfigsRequestResource()
			r.ResourceType, r.ResourceName, r.ConfigNames = typ, n, keys
			req.Resources = append(req.Resources, r)
		}
		ctx, cancel := context.WithTimeoutCause(t.Context(), 15*time.Second, fmt.Errorf("DescribeConfigs via broker %d: no answer within 15s", via))
		defer cancel()
		resp, err := req.RequestWith(ctx, cl.Broker(int(via)))
		if err != nil {
			t.Fatal(context.Cause(ctx), err)
		}
		out := make(map[string]string)
		for _, r := range resp.Resources {
			if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
				t.Fatalf("DescribeConfigs %v %q via broker %d: %v", r.ResourceType, r.ResourceName, via, err)
			}
			for _, c := range r.Configs {
				want := map[kmsg.ConfigResourceType]kmsg.ConfigSource{kmsg.ConfigResourceTypeTopic: kmsg.ConfigSourceDynamicTopicConfig}[typ]
				what := "topic " + r.ResourceName
				if typ == kmsg.ConfigResourceTypeBroker {
					want, what = kmsg.ConfigSourceDynamicBrokerConfig, "broker "+r.ResourceName
					if r.ResourceName == "" {
						want, what = kmsg.ConfigSourceDynamicDefaultBrokerConfig, "default"
					}
				}
				if c.Source == want && c.Value != nil {
					out[what+" "+c.Name] = *c.Value
				}
			}
		}
		return out
	}
	cfg, ok = make(map[string]string), true
	var shared map[string]string
	for b := int32(1); b <= 4; b++ {
		maps.Copy(cfg, describe(b, kmsg.ConfigResourceTypeBroker, fmt.Sprint(b))) // only broker b answers for itself
		view := describe(b, kmsg.ConfigResourceTypeBroker, "")
		if len(topics) > 0 {
			maps.Copy(view, describe(b, kmsg.ConfigResourceTypeTopic, topics...))
		}
		if shared != nil && !maps.Equal(shared, view) {
			ok = false
		}
		shared = view
	}
	maps.Copy(cfg, shared)
	return cfg, ok
}

// settledThrottles waits until every broker agrees on the throttle configs
// and cond accepts them, and returns them.
func settledThrottles(t *testing.T, cl *kgo.Client, what string, cond func(map[string]string) bool, topics ...string) map[string]string {
	t.Helper()
	var got map[string]string
	waitFor(t, 15*time.Second, what, func() (bool, string) {
		var ok bool
		got, ok = throttleConfigs(t, cl, topics...)
		return ok && cond(got), fmt.Sprintf("agreed %v: %v", ok, got)
	})
	return got
}

func none(m map[string]string) bool { return len(m) == 0 }

// replaceOne returns a move of topic-p that replaces its replica at index
// i with the first broker of candidates not holding it.
func replaceOne(t *testing.T, topic string, p int32, from []int32, i int, candidates ...int32) reassign.Move {
	t.Helper()
	for _, b := range candidates {
		if !slices.Contains(from, b) {
			to := slices.Clone(from)
			to[i] = b
			return reassign.Move{Topic: topic, Partition: p, From: slices.Clone(from), To: to}
		}
	}
	t.Fatalf("%s-%d %v: no candidate in %v", topic, p, from, candidates)
	return reassign.Move{}
}

func checkAllSucceeded(t *testing.T, rs reassign.MoveResults, n int) {
	t.Helper()
	if got := len(rs.Sorted()); got != n {
		t.Errorf("%d results, want %d", got, n)
	}
	for _, r := range rs.Sorted() {
		if r.Err != nil {
			t.Errorf("%v", r.Err)
		}
	}
}

func mb(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// TestDecommission drains broker 4 of four under traffic: every replica it
// held lands on another broker of its rack where the partition has none,
// the replication factor is kept, no acknowledged record is lost, and no
// throttle is left behind.
func TestDecommission(t *testing.T) {
	c := realCluster(t)
	ctx := t.Context()
	cl := c.Client(t)
	if err := c.CreateTopic(ctx, "decom-orders", 6, 3, map[string]string{"min.insync.replicas": "2"}); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateTopic(ctx, "decom-bulk", 4, 3, nil); err != nil {
		t.Fatal(err)
	}
	fill(t, c, "decom-bulk", 4, 3<<20)
	tr := c.Traffic(t, "decom-orders")
	if err := tr.WaitAcknowledged(ctx, 1000); err != nil {
		t.Fatal(err)
	}

	a, brokers, err := reassign.LoadAssignment(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	rack := make(map[int32]string)
	for _, b := range brokers {
		rack[b.ID] = b.Rack
	}
	racksOf := func(reps []int32) int {
		rs := make(map[string]bool)
		for _, b := range reps {
			rs[rack[b]] = true
		}
		return len(rs)
	}
	before := make(map[string][]int32)
	for i := range a.Len() {
		p := a.At(i)
		before[fmt.Sprintf("%s-%d", p.Topic, p.Partition)] = slices.Clone(p.Replicas)
	}
	plan, err := reassign.PlanMoves(a, brokers, reassign.BrokerChange{Remove: []int32{4}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("plan:\n%v", plan)

	const rate = 4 << 20
	var last reassign.Progress
	e, err := reassign.NewExecutor(cl, reassign.NewFileStore(filepath.Join(t.TempDir(), "decommission.json")),
		reassign.Throttle(rate), reassign.CheckInterval(time.Second), reassign.ExecutorLogger(testLogger(t)),
		reassign.OnProgress(func(p reassign.Progress) { last = p; t.Logf("progress: %v", p) }))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rs, err := e.Run(ctx, plan.Moves)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkAllSucceeded(t, rs, len(plan.Moves))

	var all map[string]map[int32]part
	waitFor(t, 15*time.Second, "every broker's metadata shows the moves done", func() (bool, string) {
		all = allPartitions(t, cl) // every topic
		for _, m := range plan.Moves {
			if now := all[m.Topic][m.Partition]; !slices.Equal(now.replicas, m.To) || !sameSet(now.isr, now.replicas) {
				return false, fmt.Sprintf("%v: replicas %v, ISR %v", m, now.replicas, now.isr)
			}
		}
		return true, ""
	})
	for name, reps := range before {
		i := strings.LastIndexByte(name, '-')
		var p int32
		fmt.Sscan(name[i+1:], &p)
		now, ok := all[name[:i]][p]
		switch {
		case !ok:
			t.Errorf("%s vanished", name)
		case slices.Contains(now.replicas, 4):
			t.Errorf("%s still on broker 4: %v", name, now.replicas)
		case len(now.replicas) != len(reps):
			t.Errorf("%s: replication factor %d → %d (%v → %v)", name, len(reps), len(now.replicas), reps, now.replicas)
		case racksOf(now.replicas) < racksOf(reps):
			t.Errorf("%s: racks %d → %d (%v → %v)", name, racksOf(reps), racksOf(now.replicas), reps, now.replicas)
		case !sameSet(now.isr, now.replicas):
			t.Errorf("%s: ISR %v of %v", name, now.isr, now.replicas)
		}
	}
	for _, m := range plan.Moves {
		if now := all[m.Topic][m.Partition]; !slices.Equal(now.replicas, m.To) {
			t.Errorf("%v: replicas are %v", m, now.replicas)
		}
	}
	settledThrottles(t, cl, "no throttle left", none, slices.Sorted(maps.Keys(all))...)
	rep, err := tr.Stop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("traffic: %v", rep)
	if err := rep.Err(); err != nil {
		t.Error(err)
	}
	t.Logf("decommissioned broker 4: %d moves, %s copied in %v at a throttle of %s/s per broker (bytes/throttle %v)",
		len(plan.Moves), mb(last.Bytes), took.Round(100*time.Millisecond), mb(rate), time.Duration(float64(last.Bytes)/rate*float64(time.Second)).Round(100*time.Millisecond))
}

// TestThrottleLedgerRestore runs moves on brokers and topics that already
// have throttles: rates on two brokers, a cluster-wide default, "*" on one
// topic and someone else's replica entries on another. While the moves
// run, ours are merged in; afterwards every throttle config is exactly as
// before.
func TestThrottleLedgerRestore(t *testing.T) {
	c := realCluster(t)
	ctx := t.Context()
	cl := c.Client(t)
	adm := kadm.NewClient(cl)
	createTopicOn(t, cl, "ledger-star", []int32{1, 2}, []int32{2, 3})
	createTopicOn(t, cl, "ledger-mixed", []int32{1, 3}, []int32{2, 1})
	fill(t, c, "ledger-star", 2, 4<<20)
	fill(t, c, "ledger-mixed", 2, 4<<20)

	set := func(op string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
	}
	sp := kadm.StringPtr
	brokerCfg := func(b int32, kv ...string) {
		var cfgs []kadm.AlterConfig
		for i := 0; i < len(kv); i += 2 {
			cfgs = append(cfgs, kadm.AlterConfig{Name: kv[i], Value: sp(kv[i+1])})
		}
		var rs kadm.AlterConfigsResponses
		var err error
		if b < 0 {
			rs, err = adm.AlterBrokerConfigs(ctx, cfgs) // the cluster-wide default
		} else {
			rs, err = adm.AlterBrokerConfigs(ctx, cfgs, b)
		}
		if err == nil {
			for _, r := range rs {
				err = errors.Join(err, r.Err)
			}
		}
		set(fmt.Sprintf("broker %d configs", b), err)
	}
	topicCfg := func(topic string, kv ...string) {
		var cfgs []kadm.AlterConfig
		for i := 0; i < len(kv); i += 2 {
			cfgs = append(cfgs, kadm.AlterConfig{Name: kv[i], Value: sp(kv[i+1])})
		}
		rs, err := adm.AlterTopicConfigs(ctx, cfgs, topic)
		if err == nil {
			for _, r := range rs {
				err = errors.Join(err, r.Err)
			}
		}
		set("topic "+topic+" configs", err)
	}
	brokerCfg(1, reassign.LeaderRateConfig, "7000000")
	brokerCfg(2, reassign.LeaderRateConfig, "6000000", reassign.FollowerRateConfig, "5000000")
	brokerCfg(-1, reassign.FollowerRateConfig, "50000000")
	topicCfg("ledger-star", reassign.LeaderReplicasConfig, "*")
	topicCfg("ledger-mixed", reassign.LeaderReplicasConfig, "1:1,0:2", reassign.FollowerReplicasConfig, "0:3")
	t.Cleanup(func() { // leave the shared cluster clean for the next test
		ctx := context.Background()
		del := []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: reassign.LeaderRateConfig}, {Op: kadm.DeleteConfig, Name: reassign.FollowerRateConfig}}
		adm.AlterBrokerConfigs(ctx, del, 1, 2)
		adm.AlterBrokerConfigs(ctx, del)
	})
	topics := []string{"ledger-mixed", "ledger-star"}
	before := settledThrottles(t, cl, "the 7 pre-existing throttles", func(m map[string]string) bool { return len(m) == 7 }, topics...)
	t.Logf("before: %v", before)

	moves := reassign.Moves{
		replaceOne(t, "ledger-star", 0, []int32{1, 2}, 1, 4),
		replaceOne(t, "ledger-star", 1, []int32{2, 3}, 1, 4),
		replaceOne(t, "ledger-mixed", 0, []int32{1, 3}, 1, 4),
		replaceOne(t, "ledger-mixed", 1, []int32{2, 1}, 1, 3),
	}
	const rate = 2 << 20
	// While they run: our rate on every broker involved (1-4), the "*"
	// list untouched, ours merged after someone else's entries.
	r := fmt.Sprint(rate)
	wantDuring := map[string]string{
		"broker 1 " + reassign.LeaderRateConfig: r, "broker 1 " + reassign.FollowerRateConfig: r,
		"broker 2 " + reassign.LeaderRateConfig: r, "broker 2 " + reassign.FollowerRateConfig: r,
		"broker 3 " + reassign.LeaderRateConfig: r, "broker 3 " + reassign.FollowerRateConfig: r,
		"broker 4 " + reassign.LeaderRateConfig: r, "broker 4 " + reassign.FollowerRateConfig: r,
		"default " + reassign.FollowerRateConfig:                "50000000",
		"topic ledger-star " + reassign.LeaderReplicasConfig:    "*",
		"topic ledger-star " + reassign.FollowerReplicasConfig:  "0:4,1:4",
		"topic ledger-mixed " + reassign.LeaderReplicasConfig:   "1:1,0:2,0:1,0:3,1:2",
		"topic ledger-mixed " + reassign.FollowerReplicasConfig: "0:3,0:4,1:3",
	}
	var during map[string]string
	e, err := reassign.NewExecutor(cl, &reassign.MemoryStore{}, reassign.Throttle(rate), reassign.CheckInterval(500*time.Millisecond), reassign.ExecutorLogger(testLogger(t)),
		reassign.OnProgress(func(p reassign.Progress) {
			if during != nil || p.InFlight != len(moves) {
				return
			}
			// A test may take its time here: look until every broker has
			// applied the executor's changes, for at most 5s.
			for deadline := time.Now().Add(5 * time.Second); ; {
				var ok bool
				during, ok = throttleConfigs(t, cl, topics...)
				if ok && maps.Equal(during, wantDuring) || time.Now().After(deadline) {
					return
				}
				time.Sleep(100 * time.Millisecond) // polling an observed condition, bounded by deadline
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rs, err := e.Run(ctx, moves)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkAllSucceeded(t, rs, len(moves))
	t.Logf("4 moves of 4 MiB took %v at %s/s", time.Since(start).Round(100*time.Millisecond), mb(rate))
	if during == nil {
		t.Fatal("never saw the four moves in flight")
	}
	if diff := cmp.Diff(wantDuring, during); diff != "" {
		t.Errorf("throttles while the moves ran (-want +got):\n%s", diff)
	}

	// Afterwards: exactly as before. Brokers apply config records a moment
	// after the controller commits them, so look until they agree.
	after := settledThrottles(t, cl, "throttles as before", func(m map[string]string) bool { return maps.Equal(m, before) }, topics...)
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("throttles not restored (-before +after):\n%s", diff)
	}
}

// TestExecutorResume stops an executor while its moves copy (as a crash
// would: the moves go on in the cluster), checks that another executor
// without its journal refuses to run beside them, then resumes with the
// journal: the moves are adopted, not resubmitted, the rate is raised
// while they run, and they complete with no throttle left and no record
// lost.
func TestExecutorResume(t *testing.T) {
	c := realCluster(t)
	ctx := t.Context()
	cl := c.Client(t)
	adm := kadm.NewClient(cl)
	createTopicOn(t, cl, "resume", []int32{1, 2}, []int32{2, 3}, []int32{3, 1})
	written := fill(t, c, "resume", 3, 6<<20)
	tr := c.Traffic(t, "resume")
	if err := tr.WaitAcknowledged(ctx, 500); err != nil {
		t.Fatal(err)
	}
	moves := reassign.Moves{
		replaceOne(t, "resume", 0, []int32{1, 2}, 1, 4),
		replaceOne(t, "resume", 1, []int32{2, 3}, 1, 4),
		replaceOne(t, "resume", 2, []int32{3, 1}, 1, 2),
	}
	store := reassign.NewFileStore(filepath.Join(t.TempDir(), "resume.json"))
	const rate1, rate2 = 1 << 20, 4 << 20

	// The first executor stops once every move copies.
	crash := errors.New("test: executor killed mid-batch")
	ctx1, kill := context.WithCancelCause(ctx)
	var atKill reassign.Progress
	e1, err := reassign.NewExecutor(cl, store, reassign.Throttle(rate1), reassign.CheckInterval(500*time.Millisecond), reassign.ExecutorLogger(testLogger(t).With("executor", 1)),
		reassign.OnProgress(func(p reassign.Progress) {
			if p.InFlight == len(moves) && p.BytesMoved > 0 {
				atKill = p
				kill(crash)
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := e1.Run(ctx1, moves); !errors.Is(err, crash) {
		t.Fatalf("first Run = %v, want it stopped by the test", err)
	}
	t.Logf("executor 1 stopped after %v: %v", time.Since(start).Round(100*time.Millisecond), atKill)

	set := make(kadm.TopicsSet)
	for _, m := range moves {
		set.Add(m.Topic, m.Partition)
	}
	if ls := listed(t, adm, set); len(ls["resume"]) != len(moves) {
		t.Fatalf("%d reassignments in flight after the stop, want %d: %v", len(ls["resume"]), len(moves), ls)
	}

	// Without the journal, they are someone else's: refused.
	stranger, err := reassign.NewExecutor(cl, &reassign.MemoryStore{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = stranger.Run(ctx, moves)
	if fe, ok := errors.AsType[*reassign.ForeignError](err); !ok || len(fe.Reassignments) != len(moves) {
		t.Fatalf("Run beside the stopped run's moves = %v, want a *reassign.ForeignError naming %d", err, len(moves))
	}
	t.Logf("refused as expected: %v", err)

	// The second executor adopts them; once it has, raise the rate.
	adopted := make(chan reassign.Progress, 1)
	var first reassign.Progress
	e2, err := reassign.NewExecutor(cl, store, reassign.CheckInterval(500*time.Millisecond), reassign.ExecutorLogger(testLogger(t).With("executor", 2)),
		reassign.OnProgress(func(p reassign.Progress) {
			if first.Moves == 0 {
				first = p
				adopted <- p
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	rateErr := make(chan error, 1)
	go func() {
		<-adopted
		rateErr <- e2.SetRate(ctx, rate2)
	}()
	start2 := time.Now()
	rs, err := e2.Resume(ctx)
	if err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if err := <-rateErr; err != nil {
		t.Errorf("SetRate: %v", err)
	}
	checkAllSucceeded(t, rs, len(moves))
	if first.InFlight != len(moves) || first.Pending != 0 {
		t.Errorf("first progress after resuming: %+v, want the %d moves adopted in flight", first, len(moves))
	}
	done, rate, resubmits, err := reassign.JournalOf(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	for m, n := range resubmits {
		if n != 0 {
			t.Errorf("%s was submitted again %d times, want it adopted", m, n)
		}
	}
	if !done || rate != rate2 {
		t.Errorf("journal done=%v rate=%d, want done at %d", done, rate, rate2)
	}
	for _, m := range moves {
		replicasBecome(t, cl, "resume", m.Partition, m.To, "after the resumed run")
	}
	settledThrottles(t, cl, "no throttle left", none, "resume")
	rep, err := tr.Stop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("traffic: %v", rep)
	if err := rep.Err(); err != nil {
		t.Error(err)
	}
	t.Logf("3 moves of %s each: %s copied by executor 1 before its stop, the rest by executor 2 in %v (rate %s/s, then %s/s)",
		mb(written/3), mb(atKill.BytesMoved), time.Since(start2).Round(100*time.Millisecond), mb(rate1), mb(rate2))
}

// TestDeadDestination kills the destination broker of a slow move: the
// executor cancels the move once the broker leaves the cluster, the
// partition gets its original replicas back in their order, and the run
// reports the move with reassign.ErrDeadBroker. The dead broker's throttle cannot
// be lifted until it is back: the run says so, and Resume lifts it then.
func TestDeadDestination(t *testing.T) {
	c := realCluster(t)
	ctx := t.Context()
	cl := c.Client(t)
	adm := kadm.NewClient(cl)
	t.Cleanup(func() { // give the next test its four brokers back
		if n := c.Node(4); n.Status() != kafkatest.Running {
			c.StartNode(context.Background(), 4)
		}
	})
	createTopicOn(t, cl, "dead-dest", []int32{1, 2})
	fill(t, c, "dead-dest", 1, 8<<20)
	move := reassign.Move{Topic: "dead-dest", Partition: 0, From: []int32{1, 2}, To: []int32{1, 4}}

	const rate = 512 << 10
	store := reassign.NewFileStore(filepath.Join(t.TempDir(), "dead.json"))
	fire := make(chan struct{})
	var once sync.Once
	var atKill reassign.Progress
	e, err := reassign.NewExecutor(cl, store, reassign.Throttle(rate), reassign.CheckInterval(500*time.Millisecond), reassign.ExecutorLogger(testLogger(t)),
		reassign.OnProgress(func(p reassign.Progress) {
			if p.InFlight == 1 && p.BytesMoved > 0 {
				once.Do(func() { atKill = p; close(fire) })
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	killed := killOn(t, ctx, fire, c, 4)
	rs, err := e.Run(ctx, reassign.Moves{move})
	ended := time.Now()
	te, ok := errors.AsType[*reassign.ThrottleError](err)
	if !ok {
		t.Fatalf("Run = %v, want a *reassign.ThrottleError for broker 4's rates", err)
	}
	for _, ch := range te.Changes {
		if ch.Resource != reassign.BrokerResource || ch.Broker != 4 {
			t.Errorf("throttle change left that is not broker 4's: %v", ch)
		}
	}
	t.Logf("Run: %v", err)
	killAt := <-killed
	r := rs["dead-dest"][0]
	if !errors.Is(r.Err, reassign.ErrDeadBroker) {
		t.Fatalf("result %v, want ErrDeadBroker", r.Err)
	}
	t.Logf("result: %v", r.Err)
	t.Logf("broker 4 killed with %s of 8 MiB copied; the run ended %v later", mb(atKill.BytesMoved), ended.Sub(killAt).Round(100*time.Millisecond))
	replicasBecome(t, cl, "dead-dest", 0, move.From, "after the cancel")
	if ls := listed(t, adm, kadm.TopicsSet{"dead-dest": {0: {}}}); len(ls) != 0 {
		t.Errorf("reassignments after the cancel: %v; want none", ls)
	}

	// Broker 4 back: Resume lifts its throttles and finishes the run.
	if err := c.StartNode(ctx, 4); err != nil {
		t.Fatal(err)
	}
	rs2, err := e.Resume(ctx)
	if err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if !errors.Is(rs2["dead-dest"][0].Err, reassign.ErrDeadBroker) {
		t.Errorf("result after Resume: %v, want the recorded ErrDeadBroker", rs2["dead-dest"][0].Err)
	}
	settledThrottles(t, cl, "no throttle left", none, "dead-dest")
}

// TestTimeBudget gives a slow move a budget it cannot meet: the executor
// cancels it, the partition keeps its original replicas in their order,
// and the run reports reassign.ErrTooSlow with nothing left throttled.
func TestTimeBudget(t *testing.T) {
	c := realCluster(t)
	ctx := t.Context()
	cl := c.Client(t)
	createTopicOn(t, cl, "slow", []int32{2, 3})
	fill(t, c, "slow", 1, 8<<20)
	move := reassign.Move{Topic: "slow", Partition: 0, From: []int32{2, 3}, To: []int32{4, 3}}
	const rate = 256 << 10
	e, err := reassign.NewExecutor(cl, &reassign.MemoryStore{}, reassign.Throttle(rate), reassign.MoveBudget(0.1, 2*time.Second), reassign.CheckInterval(500*time.Millisecond), reassign.ExecutorLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rs, err := e.Run(ctx, reassign.Moves{move})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	r := rs["slow"][0]
	if !errors.Is(r.Err, reassign.ErrTooSlow) {
		t.Fatalf("result %v, want ErrTooSlow", r.Err)
	}
	t.Logf("%v after %v (8 MiB at %s/s would take 32s)", r.Err, time.Since(start).Round(100*time.Millisecond), mb(rate))
	replicasBecome(t, cl, "slow", 0, move.From, "after the cancel")
	settledThrottles(t, cl, "no throttle left", none, "slow")
}

// TestAbort stops an executor while a slow move copies, then aborts the
// run with another executor and the same journal: the move is cancelled,
// the partition keeps its original replicas in their order, the throttles
// are gone, and the move is reported with ErrAborted.
func TestAbort(t *testing.T) {
	c := realCluster(t)
	ctx := t.Context()
	cl := c.Client(t)
	adm := kadm.NewClient(cl)
	createTopicOn(t, cl, "abort", []int32{3, 1})
	fill(t, c, "abort", 1, 8<<20)
	move := reassign.Move{Topic: "abort", Partition: 0, From: []int32{3, 1}, To: []int32{4, 1}}
	store := reassign.NewFileStore(filepath.Join(t.TempDir(), "abort.json"))

	stop := errors.New("test: operator stops the run")
	ctx1, cancel := context.WithCancelCause(ctx)
	e1, err := reassign.NewExecutor(cl, store, reassign.Throttle(256<<10), reassign.CheckInterval(500*time.Millisecond), reassign.ExecutorLogger(testLogger(t).With("executor", 1)),
		reassign.OnProgress(func(p reassign.Progress) {
			if p.InFlight == 1 {
				cancel(stop)
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e1.Run(ctx1, reassign.Moves{move}); !errors.Is(err, stop) {
		t.Fatalf("Run = %v, want it stopped by the test", err)
	}
	if ls := listed(t, adm, kadm.TopicsSet{"abort": {0: {}}}); len(ls["abort"]) != 1 {
		t.Fatalf("reassignments after the stop: %v, want the move in flight", ls)
	}

	e2, err := reassign.NewExecutor(cl, store, reassign.CheckInterval(500*time.Millisecond), reassign.ExecutorLogger(testLogger(t).With("executor", 2)))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rs, err := e2.Abort(ctx)
	if err != nil {
		t.Fatalf("Abort: %v", err)
	}
	r := rs["abort"][0]
	if !errors.Is(r.Err, reassign.ErrAborted) {
		t.Fatalf("result %v, want ErrAborted", r.Err)
	}
	t.Logf("aborted in %v: %v", time.Since(start).Round(100*time.Millisecond), r.Err)
	replicasBecome(t, cl, "abort", 0, move.From, "after the abort")
	if ls := listed(t, adm, kadm.TopicsSet{"abort": {0: {}}}); len(ls) != 0 {
		t.Errorf("reassignments after the abort: %v; want none", ls)
	}
	settledThrottles(t, cl, "no throttle left", none, "abort")
	// The run is over: resuming it only reports it.
	if rs, err := e2.Resume(ctx); err != nil || !errors.Is(rs["abort"][0].Err, reassign.ErrAborted) {
		t.Errorf("Resume after Abort = %v, %v; want the recorded result", rs, err)
	}
}

// TestZooKeeperMode runs the executor on a ZooKeeper-mode cluster (Kafka
// 3.9, four brokers) under traffic: one move completes, the other's
// destination broker is killed mid-copy and the move is cancelled; after
// the broker is back, Resume lifts its throttle. It closes the shared
// KRaft cluster first: one cluster runs on a machine at a time.
func TestZooKeeperMode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real Kafka JVMs; skipped with -short")
	}
	closeShared()
	c := kafkatest.Start(t, kafkatest.ZooKeeper(kafkaRelease), kafkatest.Brokers(4))
	ctx := t.Context()
	cl := c.Client(t)
	adm := kadm.NewClient(cl)
	t.Cleanup(func() {
		if n := c.Node(4); n.Status() != kafkatest.Running {
			c.StartNode(context.Background(), 4)
		}
	})
	createTopicOn(t, cl, "zk", []int32{1, 2}, []int32{2, 3})
	fill(t, c, "zk", 2, 6<<20)
	tr := c.Traffic(t, "zk")
	if err := tr.WaitAcknowledged(ctx, 500); err != nil {
		t.Fatal(err)
	}
	dies := reassign.Move{Topic: "zk", Partition: 0, From: []int32{1, 2}, To: []int32{1, 4}}
	lives := reassign.Move{Topic: "zk", Partition: 1, From: []int32{2, 3}, To: []int32{2, 1}}

	const rate = 1 << 20
	store := reassign.NewFileStore(filepath.Join(t.TempDir(), "zk.json"))
	fire := make(chan struct{})
	var once sync.Once
	e, err := reassign.NewExecutor(cl, store, reassign.Throttle(rate), reassign.CheckInterval(500*time.Millisecond), reassign.ExecutorLogger(testLogger(t)),
		reassign.OnProgress(func(p reassign.Progress) {
			if p.InFlight > 0 && p.BytesMoved > 0 {
				once.Do(func() { close(fire) })
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	killed := killOn(t, ctx, fire, c, 4)
	start := time.Now()
	rs, err := e.Run(ctx, reassign.Moves{dies, lives})
	ended := time.Now()
	if _, ok := errors.AsType[*reassign.ThrottleError](err); !ok {
		t.Fatalf("Run = %v, want a *ThrottleError for broker 4's rates", err)
	}
	killAt := <-killed
	if err := rs["zk"][1].Err; err != nil {
		t.Errorf("zk-1: %v", err)
	}
	if err := rs["zk"][0].Err; !errors.Is(err, reassign.ErrDeadBroker) {
		t.Errorf("zk-0: %v, want ErrDeadBroker", err)
	}
	t.Logf("run took %v; broker 4 killed %v in, the run ended %v after", ended.Sub(start).Round(100*time.Millisecond),
		killAt.Sub(start).Round(100*time.Millisecond), ended.Sub(killAt).Round(100*time.Millisecond))
	replicasBecome(t, cl, "zk", 0, dies.From, "after the cancel")
	replicasBecome(t, cl, "zk", 1, lives.To, "after the run")
	if ls := listed(t, adm, kadm.TopicsSet{"zk": {0: {}, 1: {}}}); len(ls) != 0 {
		t.Errorf("reassignments after the run: %v; want none", ls)
	}
	if err := c.StartNode(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Resume(ctx); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	settledThrottles(t, cl, "no throttle left", none, "zk")
	rep, err := tr.Stop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("traffic: %v", rep)
	if err := rep.Err(); err != nil {
		t.Error(err)
	}
}
