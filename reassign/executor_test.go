package reassign

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/internal/kfaketest"
)

// These tests run the executor against kfake, which accepts
// AlterPartitionAssignments but moves nothing and lists no reassignment
// unless a control function fakes one: they prove the plumbing and the
// error paths. The real behaviour is proven against real Kafka in
// realkafka_test.go.

func fakeCluster(t *testing.T, topics ...string) (*kfake.Cluster, *kgo.Client) {
	t.Helper()
	c, cl := kfaketest.New(t, kfake.NumBrokers(4), kfake.SeedTopics(3, topics...))
	return c, cl
}

// replicasOf returns the replicas of every partition of topic.
func replicasOf(t *testing.T, cl *kgo.Client, topic string) map[int32][]int32 {
	t.Helper()
	v, err := metadata(t.Context(), cl, 10*time.Second, []string{topic})
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[int32][]int32)
	for p, ps := range v.topics[topic] {
		out[p] = ps.replicas
	}
	return out
}

// moveOff returns a move of topic-p that replaces its last replica with the
// broker of 0..3 that does not hold it.
func moveOff(t *testing.T, cl *kgo.Client, topic string, p int32) Move {
	t.Helper()
	from := replicasOf(t, cl, topic)[p]
	for b := int32(0); b < 4; b++ {
		if !slices.Contains(from, b) {
			to := slices.Clone(from)
			to[len(to)-1] = b
			return Move{Topic: topic, Partition: p, From: from, To: to}
		}
	}
	t.Fatalf("%s-%d is on every broker: %v", topic, p, from)
	return Move{}
}

// dynamicThrottles reads the throttle configs set on brokers 0..3 and the
// topics, as the executor's ledger sees them.
func dynamicThrottles(t *testing.T, cl *kgo.Client, topics ...string) throttles {
	t.Helper()
	th, err := readThrottles(t.Context(), kadm.NewClient(cl), 10*time.Second, []int32{0, 1, 2, 3}, topics)
	if err != nil {
		t.Fatal(err)
	}
	return th
}

func fastOpts(opts ...ExecutorOption) []ExecutorOption {
	return append([]ExecutorOption{CheckInterval(10 * time.Millisecond), RequestTimeout(5 * time.Second), Throttle(1 << 20)}, opts...)
}

// kinds of results, for comparisons: "" for success, else the sentinel.
func resultKinds(rs MoveResults) map[string]string {
	out := make(map[string]string)
	for _, r := range rs.Sorted() {
		k := r.Move.Topic + "-" + string(rune('0'+r.Move.Partition))
		var me *MoveError
		switch {
		case r.Err == nil:
			out[k] = ""
		case errors.As(r.Err, &me):
			out[k] = kindOf(me.Err)
		default:
			out[k] = "?" + r.Err.Error()
		}
	}
	return out
}

func TestExecutorKfakeDroppedMoves(t *testing.T) {
	_, cl := fakeCluster(t, "t")
	moves := Moves{moveOff(t, cl, "t", 0), moveOff(t, cl, "t", 1)}
	var progs, seconds []Progress // two OnProgress options: both are called
	store := &MemoryStore{}
	e, err := NewExecutor(cl, store, fastOpts(OnProgress(func(p Progress) { progs = append(progs, p) }), OnProgress(nil),
		OnProgress(func(p Progress) { seconds = append(seconds, p) }))...)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := e.Run(t.Context(), moves)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	// kfake never moves anything: the executor submits each move again
	// three times, then gives up on it.
	if diff := cmp.Diff(map[string]string{"t-0": "stale", "t-1": "stale"}, resultKinds(rs)); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if err := rs.FirstErr(); err == nil || !strings.Contains(err.Error(), "dropped the reassignment 4 times") {
		t.Errorf("FirstErr = %v, want the dropped reason", err)
	}
	if diff := cmp.Diff(throttles{Brokers: map[int32]brokerThrottle{}, Topics: map[string]topicThrottle{}}, dynamicThrottles(t, cl, "t")); diff != "" {
		t.Errorf("throttles left (-want +got):\n%s", diff)
	}
	if len(progs) == 0 || !cmp.Equal(progs, seconds) {
		t.Fatalf("the second OnProgress saw %d reports, the first %d: both must see every one", len(seconds), len(progs))
	}
	last := progs[len(progs)-1]
	if last.Moves != 2 || last.Failed != 2 || last.InFlight != 0 || last.Pending != 0 {
		t.Errorf("last progress %+v, want 2 failed", last)
	}
	// The run is done: running the same moves again returns its results
	// without touching the cluster.
	b, _ := store.Load(t.Context())
	j, err := decodeJournal(b)
	if err != nil || !j.Done || len(j.Unapplied) != 0 {
		t.Fatalf("journal done=%v unapplied=%v err=%v", j.Done, j.Unapplied, err)
	}
	rs2, err := e.Run(t.Context(), moves)
	if err != nil || !cmp.Equal(resultKinds(rs2), resultKinds(rs)) {
		t.Errorf("second Run = %v, %v; want the recorded results", resultKinds(rs2), err)
	}
}

func TestExecutorKfakeChecksBeforeSubmitting(t *testing.T) {
	c, cl := fakeCluster(t, "t", "u")
	dead := moveOff(t, cl, "t", 0)
	dead.To[len(dead.To)-1] = 99 // no such broker
	stale := moveOff(t, cl, "t", 1)
	stale.From = []int32{7, 8, 9}
	gone := Move{Topic: "nosuch", Partition: 0, From: []int32{0, 1}, To: []int32{1, 2}}
	rejected := moveOff(t, cl, "u", 2)
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.AlterPartitionAssignments}, Topic: "u", Partitions: []int32{2}, Err: kerr.InvalidReplicaAssignment, Count: -1})

	// Pre-existing throttles on broker 1 and topic u: kfake keeps broker
	// configs cluster-wide, so only the rate on "broker 1" is set.
	adm := kadm.NewClient(cl)
	if _, err := adm.AlterBrokerConfigs(t.Context(), []kadm.AlterConfig{{Name: LeaderRateConfig, Value: kadm.StringPtr("777")}}, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.AlterTopicConfigs(t.Context(), []kadm.AlterConfig{{Name: FollowerReplicasConfig, Value: kadm.StringPtr("9:9")}}, "u"); err != nil {
		t.Fatal(err)
	}
	before := dynamicThrottles(t, cl, "t", "u")

	e, err := NewExecutor(cl, &MemoryStore{}, fastOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := e.Run(t.Context(), Moves{dead, stale, gone, rejected})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := map[string]string{"t-0": "dead", "t-1": "stale", "nosuch-0": "stale", "u-2": "rejected"}
	if diff := cmp.Diff(want, resultKinds(rs)); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	for _, r := range rs.Sorted() {
		t.Logf("%v", r.Err)
	}
	if diff := cmp.Diff(before, dynamicThrottles(t, cl, "t", "u")); diff != "" {
		t.Errorf("throttles not restored (-before +after):\n%s", diff)
	}
}

// listReassignment makes kfake list one reassignment of topic-p, replicas
// plus extra being removed, for the next n ListPartitionReassignments
// requests that ask about it.
func listReassignment(c *kfake.Cluster, topic string, p int32, replicas []int32, extra int32, n int) *atomic.Int32 {
	return listReassignmentWhen(c, topic, p, replicas, extra, n, nil)
}

// listReassignmentWhen is listReassignment that lists nothing while armed
// is false.
func listReassignmentWhen(c *kfake.Cluster, topic string, p int32, replicas []int32, extra int32, n int, armed *atomic.Bool) *atomic.Int32 {
	var asked atomic.Int32
	c.ControlKey(int16(kmsg.ListPartitionReassignments), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kr.(*kmsg.ListPartitionReassignmentsRequest)
		resp := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
		resp.Version = req.Version
		for _, rt := range req.Topics {
			if rt.Topic != topic || !slices.Contains(rt.Partitions, p) || armed != nil && !armed.Load() {
				continue
			}
			if asked.Add(1) > int32(n) {
				continue
			}
			st := kmsg.NewListPartitionReassignmentsResponseTopic()
			st.Topic = topic
			sp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
			sp.Partition = p
			sp.Replicas = append(slices.Clone(replicas), extra)
			sp.RemovingReplicas = []int32{extra}
			st.Partitions = append(st.Partitions, sp)
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	return &asked
}

func TestExecutorKfakeForeign(t *testing.T) {
	c, cl := fakeCluster(t, "t")
	cur := replicasOf(t, cl, "t")[0]
	var extra int32
	for b := int32(0); b < 4; b++ {
		if !slices.Contains(cur, b) {
			extra = b
		}
	}
	asked := listReassignment(c, "t", 0, cur, extra, 4)
	move := moveOff(t, cl, "t", 1)

	// Someone else is moving t-0 off broker extra: refuse.
	e, err := NewExecutor(cl, &MemoryStore{}, fastOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Run(t.Context(), Moves{move})
	fe, ok := errors.AsType[*ForeignError](err)
	if !ok || !errors.Is(err, ErrForeign) {
		t.Fatalf("Run = %v, want a *ForeignError", err)
	}
	wantForeign := Moves{{Topic: "t", Partition: 0, From: append(slices.Clone(cur), extra), To: cur}}
	if diff := cmp.Diff(wantForeign, fe.Reassignments); diff != "" {
		t.Errorf("foreign reassignments (-want +got):\n%s", diff)
	}

	// Adopted, it is watched until it completes (kfake stops listing it,
	// and t-0's replicas are its target), and reported with the run.
	asked.Store(0)
	e, err = NewExecutor(cl, &MemoryStore{}, fastOpts(AdoptForeign(), MoveBudget(1, time.Minute))...)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := e.Run(t.Context(), Moves{move})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"t-0": "", "t-1": "stale"}, resultKinds(rs)); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if got := asked.Load(); got < 4 {
		t.Errorf("the adopted reassignment was listed %d times, want it watched until it ended", got)
	}
}

func TestExecutorKfakeStopAndResume(t *testing.T) {
	c, cl := fakeCluster(t, "t")
	move := moveOff(t, cl, "t", 0)
	// Once submitted, t-0 stays "in flight" for 1000 listings: until the
	// test stops it.
	var armed atomic.Bool
	c.ControlKey(int16(kmsg.AlterPartitionAssignments), func(kmsg.Request) (kmsg.Response, error, bool) {
		armed.Store(true)
		return nil, nil, false
	})
	listReassignmentWhen(c, "t", 0, move.To, move.From[len(move.From)-1], 1000, &armed)
	store := NewFileStore(filepath.Join(t.TempDir(), "state.json"))
	ctx, cancel := context.WithCancelCause(t.Context())
	stopped := errors.New("test: stop after the first poll")
	e, err := NewExecutor(cl, store, fastOpts(OnProgress(func(p Progress) {
		if p.InFlight > 0 {
			cancel(stopped)
		}
	}))...)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Run(ctx, Moves{move})
	if !errors.Is(err, stopped) {
		t.Fatalf("Run = %v, want it stopped by the test", err)
	}
	// Our throttles are still there: the move runs on.
	if th := dynamicThrottles(t, cl, "t"); len(th.Brokers) == 0 || len(th.Topics) == 0 {
		t.Errorf("throttles after the stop: %+v, want ours kept for the move in flight", th)
	}

	// Another run of other moves is refused; Resume finishes this one.
	e2, err := NewExecutor(cl, store, fastOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e2.Run(t.Context(), Moves{moveOff(t, cl, "t", 1)}); !errors.Is(err, ErrOtherRun) {
		t.Errorf("Run of other moves = %v, want ErrOtherRun", err)
	}
	// kfake keeps listing the move, whose target its metadata never shows:
	// abort it instead. Abort cancels it (kfake answers
	// NO_REASSIGNMENT_IN_PROGRESS and goes on listing it, so the cancel is
	// never confirmed) and restores the throttles.
	e3, err := NewExecutor(cl, store, fastOpts(CancelTimeout(100*time.Millisecond), ExecutorLogger(slog.New(slog.NewTextHandler(t.Output(), nil))))...)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := e3.Abort(t.Context())
	if err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if diff := cmp.Diff(map[string]string{"t-0": "aborted"}, resultKinds(rs)); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if err := rs.FirstErr(); err == nil || !strings.Contains(err.Error(), "not confirmed") {
		t.Errorf("FirstErr = %v, want the unconfirmed cancel", err)
	}
	if diff := cmp.Diff(throttles{Brokers: map[int32]brokerThrottle{}, Topics: map[string]topicThrottle{}}, dynamicThrottles(t, cl, "t")); diff != "" {
		t.Errorf("throttles left (-want +got):\n%s", diff)
	}
}

func TestExecutorStoreErrors(t *testing.T) {
	_, cl := fakeCluster(t, "t")
	e, err := NewExecutor(cl, &MemoryStore{}, fastOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Resume(t.Context()); !errors.Is(err, ErrNoState) {
		t.Errorf("Resume on an empty store = %v, want ErrNoState", err)
	}
	if _, err := e.Abort(t.Context()); !errors.Is(err, ErrNoState) {
		t.Errorf("Abort on an empty store = %v, want ErrNoState", err)
	}
	if rs, err := e.Run(t.Context(), nil); err != nil || len(rs) != 0 {
		t.Errorf("Run of no moves = %v, %v", rs, err)
	}
	bad := Moves{{Topic: "t", Partition: 0, From: []int32{1}, To: []int32{2, 2}}}
	if _, err := e.Run(t.Context(), bad); !errors.Is(err, ErrInvalid) {
		t.Errorf("Run of a move listing a broker twice = %v, want ErrInvalid", err)
	}
	if err := e.SetRate(t.Context(), 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetRate(0) = %v, want ErrInvalid", err)
	}
}

func TestNewExecutorOptions(t *testing.T) {
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, tt := range []struct {
		name string
		opt  ExecutorOption
		want string
	}{
		{"zero throttle", Throttle(0), "Throttle(0)"},
		{"zero poll", CheckInterval(0), "CheckInterval(0s)"},
		{"zero budget factor", MoveBudget(0, time.Minute), "MoveBudget(0, 1m0s)"},
		{"zero cancel timeout", CancelTimeout(0), "CancelTimeout(0s)"},
		{"zero request timeout", RequestTimeout(0), "RequestTimeout(0s)"},
		{"nil logger", ExecutorLogger(nil), "ExecutorLogger(nil)"},
		{"bad batching", Batching(SlotsPerBroker(0)), "SlotsPerBroker(0)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewExecutor(cl, &MemoryStore{}, tt.opt)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewExecutor = %v, want ErrInvalid naming %s", err, tt.want)
			}
		})
	}
	if _, err := NewExecutor(cl, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("NewExecutor without a store = %v, want ErrInvalid", err)
	}
}

func TestFileStore(t *testing.T) {
	s := NewFileStore(filepath.Join(t.TempDir(), "state.json"))
	if _, err := s.Load(t.Context()); !errors.Is(err, ErrNoState) {
		t.Fatalf("Load of a new store = %v, want ErrNoState", err)
	}
	for _, want := range []string{`{"a":1}`, `{"b":2}`} {
		if err := s.Save(t.Context(), []byte(want)); err != nil {
			t.Fatal(err)
		}
		got, err := s.Load(t.Context())
		if err != nil || string(got) != want {
			t.Errorf("Load = %q, %v; want %q", got, err, want)
		}
	}
	matches, _ := filepath.Glob(s.Path() + ".tmp*")
	if len(matches) != 0 {
		t.Errorf("temporary files left: %v", matches)
	}
	var m MemoryStore
	if _, err := m.Load(t.Context()); !errors.Is(err, ErrNoState) {
		t.Errorf("MemoryStore.Load = %v, want ErrNoState", err)
	}
}

func TestBudget(t *testing.T) {
	for _, tt := range []struct {
		name   string
		bytes  int64
		share  int
		rate   int64
		factor float64
		floor  time.Duration
		want   time.Duration
	}{
		{"floor wins for small moves", 1 << 20, 1, 10 << 20, 3, time.Minute, time.Minute},
		{"bytes over rate times factor", 100 << 20, 1, 1 << 20, 3, time.Minute, 300 * time.Second},
		{"shared throttle lengthens it", 100 << 20, 4, 1 << 20, 3, time.Minute, 1200 * time.Second},
		{"unknown size gets the floor", 0, 1, 1 << 20, 3, time.Minute, time.Minute},
		{"huge moves saturate", 1 << 62, 1000, 1, 3, time.Minute, 1 << 62},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := budget(tt.bytes, tt.share, tt.rate, tt.factor, tt.floor); got != tt.want {
				t.Errorf("budget = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestETA(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name                    string
		moved0, moved1, remains int64
		dt                      time.Duration
		rate                    int64
		dests                   int
		want                    time.Duration
	}{
		{"observed 1 MiB/s, 10 MiB left", 0, 10 << 20, 10 << 20, 10 * time.Second, 4 << 20, 1, 10 * time.Second},
		{"too early to trust the rate: throttle", 0, 10 << 20, 10 << 20, 5 * time.Second, 1 << 20, 2, 5 * time.Second},
		{"too little copied to trust: throttle", 0, 1 << 10, 10 << 20, time.Minute, 1 << 20, 1, 10 * time.Second},
		{"nothing copied, no destination", 5, 5, 10, time.Minute, 1 << 20, 0, 0},
		{"nothing left", 0, 10, 0, time.Minute, 1 << 20, 1, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := eta(tt.moved0, tt.moved1, tt.remains, t0, t0.Add(tt.dt), tt.rate, tt.dests); got != tt.want {
				t.Errorf("eta = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestJournalUnappliedLatestWins(t *testing.T) {
	var j journal
	j.addUnapplied(ConfigChanges{
		{Resource: BrokerResource, Broker: 4, Op: kadm.SetConfig, Name: LeaderRateConfig, Value: "10"},
		{Resource: TopicResource, Topic: "t", Op: kadm.SetConfig, Name: LeaderReplicasConfig, Value: "0:4"},
	})
	j.addUnapplied(ConfigChanges{{Resource: BrokerResource, Broker: 4, Op: kadm.DeleteConfig, Name: LeaderRateConfig}})
	want := ConfigChanges{
		{Resource: BrokerResource, Broker: 4, Op: kadm.DeleteConfig, Name: LeaderRateConfig},
		{Resource: TopicResource, Topic: "t", Op: kadm.SetConfig, Name: LeaderReplicasConfig, Value: "0:4"},
	}
	if diff := cmp.Diff(want, j.unapplied()); diff != "" {
		t.Errorf("unapplied (-want +got):\n%s", diff)
	}
}
