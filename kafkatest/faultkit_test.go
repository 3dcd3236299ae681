package kafkatest_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/kafkatest"
)

// waitFor polls cond every 50ms until it holds, failing the test with what
// was awaited after within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("gave up after %v waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

func watch(t *testing.T, c *kafkatest.Cluster, opts ...kafkatest.WatchOption) *kafkatest.ISRWatcher {
	t.Helper()
	w, err := c.WatchISR(t.Context(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Stop() })
	return w
}

// medianRoundTrip sends n ApiVersions requests to b (after one to open the
// connection) and returns the median time of a request and its answer.
func medianRoundTrip(t *testing.T, b *kgo.Broker, n int) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var ds []time.Duration
	for i := range n + 1 {
		start := time.Now()
		if _, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, b); err != nil {
			t.Fatalf("ApiVersions: %v", err)
		}
		if i > 0 {
			ds = append(ds, time.Since(start))
		}
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// TestFaultKitKRaft proves the ISR watcher and the slow link on one small
// KRaft cluster (a controller, brokers 2–4): no breach on a healthy cluster
// under traffic, the added latency of a slow link, and the breach of a
// min.insync.replicas=2 topic when two of its three replicas' brokers stop,
// which ends when one of them is back.
func TestFaultKitKRaft(t *testing.T) {
	start := time.Now()
	c := kafkatest.Start(t, kafkatest.KRaft(kraftOld), kafkatest.Controllers(1), kafkatest.Brokers(3))
	t.Logf("cluster ready in %v (lock wait included)", time.Since(start).Round(time.Millisecond))
	ctx := t.Context()
	if err := c.CreateTopic(ctx, "strict", 6, 3, map[string]string{"min.insync.replicas": "2"}); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateTopic(ctx, "lenient", 2, 3, nil); err != nil { // the broker default: min.insync.replicas=1
		t.Fatal(err)
	}
	if err := c.StopZooKeeper(ctx); err == nil {
		t.Error("StopZooKeeper on a KRaft cluster: nil error")
	}
	if err := c.KillZooKeeper(); err == nil {
		t.Error("KillZooKeeper on a KRaft cluster: nil error")
	}
	if err := c.StartZooKeeper(ctx); err == nil || c.ZooKeeperRunning() {
		t.Errorf("StartZooKeeper on a KRaft cluster: %v; running %v", err, c.ZooKeeperRunning())
	}

	t.Run("healthy cluster, no breach", func(t *testing.T) {
		w := watch(t, c, kafkatest.WatchInterval(100*time.Millisecond))
		tr := c.Traffic(t, "strict", kafkatest.Rate(300))
		if err := tr.WaitAcknowledged(ctx, 600); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "20 watcher rounds", func() bool { return w.Report().Rounds >= 20 })
		if len(goroutinesIn("kafkatest.(*ISRWatcher)")) < 4 {
			t.Fatal("fewer than 4 watcher goroutines (rounds, configs, 3 brokers) while it runs: the check after Stop would prove nothing")
		}
		rep := w.Stop()
		trep, err := tr.Stop(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%v\ntraffic: %v", rep, trep)
		if len(rep.Below()) != 0 || len(rep.Breaches) != 0 {
			t.Errorf("breaches on a healthy cluster:\n%v", rep)
		}
		if rep.Partitions != 8 {
			t.Errorf("watched %d partitions, want 8 (strict 6, lenient 2; internal topics left out)", rep.Partitions)
		}
		if rep.Failed != 0 || rep.Reads < 3*(rep.Rounds-2) {
			t.Errorf("%d reads and %d failed in %d rounds of 3 brokers: want about 3 reads a round, none failed", rep.Reads, rep.Failed, rep.Rounds)
		}
		if gs := goroutinesIn("kafkatest.(*ISRWatcher)"); len(gs) > 0 {
			t.Errorf("%d watcher goroutines after Stop:\n%s", len(gs), strings.Join(gs, "\n\n"))
		}
		if again := w.Stop(); again.Rounds != rep.Rounds || again.Reads != rep.Reads {
			t.Errorf("second Stop returned %v, want the first report %v", again, rep)
		}
		if err := trep.Err(); err != nil {
			t.Error(err)
		}
	})

	t.Run("slow link to one broker", func(t *testing.T) {
		const latency = 100 * time.Millisecond
		p, through, err := c.SlowLink(3, latency)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		direct := c.Client(t)
		slow := c.Client(t, through)
		if _, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, slow); err != nil { // learns every broker
			t.Fatal(err)
		}
		d0 := medianRoundTrip(t, direct.Broker(3), 5)
		d1 := medianRoundTrip(t, slow.Broker(3), 5)
		other := medianRoundTrip(t, slow.Broker(2), 5)
		st := p.Stats()
		t.Logf("broker 3 round trip: direct %v, through the slow link (%v each way) %v; broker 2 through the same client %v; proxy %+v", d0, latency, d1, other, st)
		if d1 < 2*latency || d1 > d0+2*latency+150*time.Millisecond {
			t.Errorf("round trip through the slow link %v, want within [%v, %v]", d1, 2*latency, d0+2*latency+150*time.Millisecond)
		}
		if other >= latency {
			t.Errorf("round trip to broker 2 %v: only broker 3 is behind the slow link", other)
		}
		if st.Accepted == 0 || st.ToTarget == 0 || st.FromTarget == 0 {
			t.Errorf("proxy stats %+v: the slow client did not go through it", st)
		}
	})

	t.Run("two of three replicas stopped, breach", func(t *testing.T) {
		w := watch(t, c, kafkatest.WatchInterval(100*time.Millisecond))
		waitFor(t, 30*time.Second, "5 watcher rounds", func() bool { return w.Report().Rounds >= 5 })
		if err := c.StopNode(ctx, 3); err != nil { // strict's ISR falls to 2: at min, no breach
			t.Fatal(err)
		}
		second := time.Now()
		if err := c.StopNode(ctx, 4); err != nil { // and now to 1
			t.Fatal(err)
		}
		seen := func() []kafkatest.ISRBreach {
			var out []kafkatest.ISRBreach
			for _, b := range w.Report().Below() {
				if b.Topic == "strict" && b.Broker == 2 {
					out = append(out, b)
				}
			}
			return out
		}
		partitions := func() int {
			ps := map[int32]bool{}
			for _, b := range seen() {
				ps[b.Partition] = true
			}
			return len(ps)
		}
		took := waitFor(t, 30*time.Second, "broker 2 to show every strict partition below min ISR", func() bool { return partitions() == 6 })
		t.Logf("broker 2 showed all 6 strict partitions below min ISR %v after the second stop returned", took)
		for _, b := range seen() {
			if len(b.ISR) != 1 || b.ISR[0] != 2 || b.MinISR != 2 || b.Leader != 2 || !b.Ongoing {
				t.Errorf("breach %v: want ISR [2], min 2, leader 2, ongoing", b)
			}
		}
		for _, b := range w.Report().Breaches {
			if b.First.Before(second) {
				t.Errorf("breach before the second broker stopped (one stopped replica leaves strict at min ISR): %v", b)
			}
		}
		if err := c.StartNode(ctx, 3); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "the breaches to end once broker 3 is back in ISR", func() bool {
			return !slices.ContainsFunc(seen(), func(b kafkatest.ISRBreach) bool { return b.Ongoing })
		})
		rep := w.Stop()
		t.Logf("%v", rep)
		for _, b := range rep.Breaches {
			if b.Topic == "lenient" {
				t.Errorf("breach of lenient (min.insync.replicas 1, ISR never below 1): %v", b)
			}
			if b.Topic == "strict" && b.MinISR != 2 {
				t.Errorf("breach %v: strict has min.insync.replicas 2", b)
			}
		}
		if rep.Skipped == 0 {
			t.Errorf("no sample skipped while brokers 3 and 4 were stopped: %v", rep)
		}
	})
}

// TestFaultKitZooKeeperRestart stops ZooKeeper under traffic: the brokers
// carry on without it, StartZooKeeper brings it back with every broker
// registered again, the cluster can change its metadata again (a new topic),
// and no acknowledged record is lost; the ISR watcher sees no breach while
// ZooKeeper restarts. A broker killed and started at once comes back too.
func TestFaultKitZooKeeperRestart(t *testing.T) {
	start := time.Now()
	c := kafkatest.Start(t, kafkatest.ZooKeeper(zkNew), kafkatest.Brokers(3))
	t.Logf("cluster ready in %v (lock wait included)", time.Since(start).Round(time.Millisecond))
	ctx := t.Context()
	if err := c.CreateTopic(ctx, "orders", 6, 3, map[string]string{"min.insync.replicas": "2"}); err != nil {
		t.Fatal(err)
	}
	w := watch(t, c, kafkatest.WatchTopics("orders")) // not the new topics, whose first metadata may lack leaders
	tr := c.Traffic(t, "orders", kafkatest.Rate(300))
	if err := tr.WaitAcknowledged(ctx, 300); err != nil {
		t.Fatal(err)
	}
	zkUp := func() bool {
		conn, err := net.DialTimeout("tcp", c.ZooKeeperAddr(), time.Second)
		if err == nil {
			conn.Close()
		}
		return err == nil
	}
	for i, how := range []string{"stop", "kill"} {
		start := time.Now()
		if how == "stop" {
			if err := c.StopZooKeeper(ctx); err != nil {
				t.Fatal(err)
			}
		} else if err := c.KillZooKeeper(); err != nil {
			t.Fatal(err)
		}
		down := time.Since(start)
		if c.ZooKeeperRunning() || zkUp() {
			t.Fatalf("after %s: ZooKeeper running %v, port open %v", how, c.ZooKeeperRunning(), zkUp())
		}
		acked := tr.Progress().Acknowledged
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := tr.WaitAcknowledged(actx, acked+300)
		cancel()
		if err != nil {
			t.Fatalf("brokers did not carry on without ZooKeeper: %v", err)
		}
		without := time.Since(start)
		start = time.Now()
		if err := c.StartZooKeeper(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("cycle %d (%s): ZooKeeper down in %v; 300 records acknowledged without it in %v; StartZooKeeper ready in %v",
			i+1, how, down.Round(time.Millisecond), without.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		if !c.ZooKeeperRunning() || !zkUp() {
			t.Fatalf("after StartZooKeeper: running %v, port open %v", c.ZooKeeperRunning(), zkUp())
		}
		if err := c.StartZooKeeper(ctx); err == nil {
			t.Error("StartZooKeeper while it runs: nil error")
		}
		if err := c.CreateTopic(ctx, fmt.Sprintf("after-%s", how), 3, 3, nil); err != nil {
			t.Fatalf("no new topic after ZooKeeper came back: %v", err)
		}
	}
	// The watch covers the ZooKeeper restarts only: a broker killed next
	// leaves the partitions it led without a leader until the controller
	// has elected new ones, which the watcher rightly reports.
	rep := w.Stop()
	t.Logf("%v", rep)
	if len(rep.Below()) != 0 {
		t.Errorf("ISR below min while ZooKeeper restarted:\n%v", rep)
	}
	if rep.Reads == 0 || rep.Partitions != 6 {
		t.Errorf("watcher read nothing: %v", rep)
	}

	// A killed broker started again at once waits for ZooKeeper to expire
	// its last session rather than exit at startup.
	start = time.Now()
	if err := c.Node(3).Kill(); err != nil {
		t.Fatal(err)
	}
	if err := c.StartNode(ctx, 3); err != nil {
		t.Fatal(err)
	}
	t.Logf("broker 3 killed and ready again in %v", time.Since(start).Round(time.Millisecond))
	if n := c.Node(3).Starts(); n != 2 {
		t.Errorf("broker 3 started %d times, want 2", n)
	}
	acked := tr.Progress().Acknowledged
	if err := tr.WaitAcknowledged(ctx, acked+300); err != nil {
		t.Fatal(err)
	}
	trep, err := tr.Stop(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("traffic: %v", trep)
	if err := trep.Err(); err != nil {
		t.Error(err)
	}
	if trep.Failed != 0 {
		t.Errorf("%d records failed: %v", trep.Failed, trep.Errors)
	}

	// The cluster, ZooKeeper's data included, reopens after a Close (SIGKILL
	// to all), and its ZooKeeper restarts again there.
	dir := c.Dir()
	c.Close()
	start = time.Now()
	rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	r, err := kafkatest.Reopen(rctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	reopened := time.Since(start)
	start = time.Now()
	if err := r.StopZooKeeper(rctx); err != nil {
		t.Fatal(err)
	}
	if err := r.StartZooKeeper(rctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("reopened in %v; its ZooKeeper stopped and back in %v", reopened.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if err := r.CreateTopic(rctx, "after-reopen", 3, 3, nil); err != nil {
		t.Fatal(err)
	}
}
