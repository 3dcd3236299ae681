package upgrade

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/health"
	"github.com/kupgrade/kupgrade/internal/kfaketest"
)

// hungOps is a fake cluster whose brokers can hang: they stay in metadata
// and in every ISR (Kafka has not noticed) but do not answer the probe.
type hungOps struct {
	*fakeCluster
	mu     sync.Mutex
	hung   map[int32]bool
	probes int
}

func (h *hungOps) setHung(id int32, hung bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hung[id] = hung
}

func (h *hungOps) probeBrokers(ctx context.Context, timeout time.Duration, except int32) ([]health.Reason, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.probes++
	var out []health.Reason
	for id := range h.hung {
		if h.hung[id] && id != except {
			out = append(out, unresponsiveReason(id, timeout, errors.New("no answer within "+timeout.String())))
		}
	}
	return out, nil
}

// TestHungBrokerBlocksNextRestart proves that, by default, a broker that
// hangs (still in every ISR: Kafka has not noticed) blocks the next restart
// until it answers again, and that NoBrokerProbe turns that off.
func TestHungBrokerBlocksNextRestart(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts []RunnerOption
		want bool // node 5's restart waits for broker 6
	}{
		{"default", nil, true},
		{"NoBrokerProbe", []RunnerOption{NoBrokerProbe()}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeCluster(compat.ModeKRaft, "3.9.2", 3, 3)
				f.levels["metadata.version"] = 21
				ops := &hungOps{fakeCluster: f, hung: map[int32]bool{}}
				plan := kraftPlan(t, f, "4.1.2")
				var resumed, restarted5 time.Time
				f.onRestart = func(id int32) {
					if id == 5 {
						restarted5 = time.Now()
					}
				}
				var blocked []health.Reason
				opts := append([]RunnerOption{withOps(ops), PassHolds(), OnEvent(func(e Event) {
					switch {
					case e.Kind == EventStepDone && e.Node == 4:
						ops.setHung(6, true)
						time.AfterFunc(time.Minute, func() { resumed = time.Now(); ops.setHung(6, false) })
					case e.Kind == EventGateBlocked && e.Node == 5 && blocked == nil:
						blocked = e.Reasons
					}
				})}, tt.opts...)
				if err := mustRunner(t, nil, f, opts...).Run(t.Context(), plan); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff([]int32{1, 2, 3, 4, 5, 6}, slices.Sorted(slices.Values(f.restartOrder()))); diff != "" {
					t.Errorf("restarts (-want +got):\n%s", diff)
				}
				if !tt.want {
					if !restarted5.Before(resumed) && !resumed.IsZero() {
						t.Errorf("with NoBrokerProbe, node 5 restarted at %v, after broker 6 answered again (%v)", restarted5, resumed)
					}
					return
				}
				if len(blocked) != 1 || blocked[0].Rule != RuleBrokerUnresponsive || !slices.Equal(blocked[0].Nodes, []int32{6}) {
					t.Fatalf("node 5's gate blocked with %v, want broker 6 unresponsive", blocked)
				}
				if resumed.IsZero() || restarted5.Before(resumed) {
					t.Errorf("node 5 restarted at %v, broker 6 answered again at %v: want after", restarted5, resumed)
				}
			})
		})
	}
}

// TestBrokerProbeOptions proves the probe's timeout is validated.
func TestBrokerProbeOptions(t *testing.T) {
	f := newFakeCluster(compat.ModeKRaft, "3.9.2", 3, 3)
	for _, d := range []time.Duration{0, -time.Second} {
		if _, err := NewRunner(nil, f, withOps(f), BrokerProbeTimeout(d)); err == nil {
			t.Errorf("BrokerProbeTimeout(%v) accepted", d)
		}
	}
	if _, err := NewRunner(nil, f, withOps(f), BrokerProbeTimeout(time.Second)); err != nil {
		t.Errorf("BrokerProbeTimeout(1s): %v", err)
	}
}

// TestProbeBrokersFindsHungBroker runs the real probe against kfake: a
// broker that holds its ApiVersions answer is reported, within the
// timeout, and the others are not.
func TestProbeBrokersFindsHungBroker(t *testing.T) {
	c, cl := kfaketest.New(t, kfake.NumBrokers(3))
	ops := &liveOps{cl: cl}
	rs, err := ops.probeBrokers(t.Context(), time.Second, -1) // opens the connections
	if err != nil || len(rs) != 0 {
		t.Fatalf("healthy cluster: %v, %v", rs, err)
	}
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	c.ControlKey(int16(kmsg.ApiVersions), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if c.CurrentNode() != 1 {
			return nil, nil, false
		}
		c.SleepControl(func() { <-release }) // hangs as a paused broker does
		return nil, nil, false
	})
	start := time.Now()
	rs, err = ops.probeBrokers(t.Context(), 300*time.Millisecond, -1)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("probe took %v with a 300ms timeout", took)
	}
	if len(rs) != 1 || !slices.Equal(rs[0].Nodes, []int32{1}) || rs[0].Rule != RuleBrokerUnresponsive {
		t.Fatalf("reasons %v, want broker 1 unresponsive", rs)
	}
	t.Logf("reason: %v", rs[0])
	rs, err = ops.probeBrokers(t.Context(), 300*time.Millisecond, 1) // the broker to restart is left out
	if err != nil || len(rs) != 0 {
		t.Errorf("probe except broker 1: %v, %v", rs, err)
	}
}
