package upgrade_test

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/health"
	"github.com/kupgrade/kupgrade/kafkatest"
	"github.com/kupgrade/kupgrade/node"
	"github.com/kupgrade/kupgrade/upgrade"
)

// plainOrchestrator hides every optional capability (here kafkatest's
// node.Liveness) of the Orchestrator it wraps.
type plainOrchestrator struct{ node.Orchestrator }

// TestHungBrokerBlocksByDefault reproduces issue 12.1 on real Kafka: KRaft
// 3.9.2 → 4.1.2 under traffic, with an Orchestrator without Liveness and no
// option but PassHolds. Broker 6 is paused (SIGSTOP) as soon as broker 4's
// step is done. Kafka still counts 6 in its ISRs for a while; the default
// liveness probe must block broker 5's restart, naming broker 6, and let it
// go once 6 answers again. No acknowledged record may be lost, no
// produce request may fail, and the ISR watcher must see no partition below
// min ISR.
func TestHungBrokerBlocksByDefault(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.KRaft("3.9.2"), kafkatest.Controllers(3), kafkatest.Brokers(3))
	tr := withTraffic(t, c)
	in := inspect(t, c)
	plan, err := upgrade.NewPlan(in.State, upgrade.Target{Version: compat.MustParseRelease("4.1.2")})
	if err != nil {
		t.Fatal(err)
	}
	cl := c.Client(t)
	stopISR := watchISR(t, c)
	rec := newRecorder(t)
	paused := make(chan error, 1)
	blocked := make(chan upgrade.Event, 1)
	rec.onEvent = func(e upgrade.Event) {
		switch {
		case e.Kind == upgrade.EventStepDone && e.Node == 4:
			paused <- c.Node(6).Pause()
		case e.Kind == upgrade.EventGateBlocked && e.Node == 5:
			for _, r := range e.Reasons {
				if r.Rule == upgrade.RuleBrokerUnresponsive && slices.Equal(r.Nodes, []int32{6}) {
					select {
					case blocked <- e:
					default:
					}
				}
			}
		}
	}
	start := time.Now()
	done := make(chan error, 1)
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // the Runner stops before the cluster does
	wg.Go(func() {
		done <- mustRunner(t, cl, plainOrchestrator{c}, upgrade.PassHolds(), upgrade.OnEvent(rec.add)).Run(t.Context(), plan)
	})
	var pausedAt time.Time
	select {
	case err := <-paused:
		if err != nil {
			t.Fatal(err)
		}
		pausedAt = time.Now()
	case err := <-done:
		t.Fatalf("run ended before broker 4's step was done: %v", err)
	}
	var e upgrade.Event
	select {
	case e = <-blocked:
	case err := <-done:
		t.Fatalf("run ended while broker 6 was paused, without blocking broker 5: %v", err)
	case <-time.After(5 * time.Minute):
		t.Fatal("broker 5's gate did not block on broker 6 within 5m")
	}
	t.Logf("blocked %v after the pause: %v", time.Since(pausedAt).Round(time.Millisecond), e)
	if slices.Contains(rec.restartOrder(), 5) {
		t.Fatal("broker 5 restarted while broker 6 was paused")
	}
	// What Kafka itself said at that moment: the hole was that it still
	// counted broker 6 in.
	if snap, err := health.Take(t.Context(), cl); err == nil {
		t.Logf("Kafka's view while 6 hangs (%v paused): broker 6 up: %v; %v", time.Since(pausedAt).Round(time.Millisecond), snap.Up(6), snap.Counts())
	}
	if err := c.Node(6).Resume(); err != nil {
		t.Fatal(err)
	}
	resumedAt := time.Now()
	if slices.Contains(rec.restartOrder(), 5) {
		t.Fatal("broker 5 restarted while broker 6 was paused")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	end := time.Now()
	t.Logf("broker 6 paused for %v; run took %v", resumedAt.Sub(pausedAt).Round(time.Millisecond), end.Sub(start).Round(time.Second))
	stopISR()
	finishTraffic(t, tr, start, end)
	for _, n := range c.All() {
		if n.Release() != "4.1.2" {
			t.Errorf("node %d runs %s", n.ID(), n.Release())
		}
	}
}

// minISRReason returns the index of e's first reason about a partition that
// would drop below min.insync.replicas, or -1.
func minISRReason(e upgrade.Event) int {
	return slices.IndexFunc(e.Reasons, func(r health.Reason) bool { return strings.Contains(r.Message, "below min.insync.replicas") })
}
