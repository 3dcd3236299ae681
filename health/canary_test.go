package health_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/health"
)

// canary ensures a canary on c and, since kfake places leaders at random
// and ignores assignments, moves partition i's leadership to broker i.
func canary(t *testing.T, c *kfake.Cluster, cl *kgo.Client, opts ...health.CanaryOption) *health.Canary {
	t.Helper()
	can, err := health.NewCanary(cl, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := can.Probe(t.Context()); !errors.Is(err, health.ErrNoCanaryTopic) {
		t.Fatalf("Probe before Ensure = %v, want ErrNoCanaryTopic", err)
	}
	if err := can.Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := range int32(3) {
		if err := c.MoveTopicPartition(can.Topic(), i, i); err != nil {
			t.Fatal(err)
		}
	}
	return can
}

func TestCanaryProbe(t *testing.T) {
	t.Parallel()
	c, cl := fake(t)
	can := canary(t, c, cl)
	for round := range int64(2) {
		rs, err := can.Probe(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 3 {
			t.Fatalf("got %d results, want one per broker: %+v", len(rs), rs)
		}
		for i, r := range rs {
			if r.Err != nil || r.Broker != int32(i) || r.Partition != int32(i) || r.Offset != round || r.RoundTrip <= 0 ||
				r.RoundTrip != r.Produce+r.Fetch || r.Topic != "kupgrade-canary" {
				t.Errorf("round %d, result %d: %+v", round, i, r)
			}
		}
		if v := rs.Within(10 * time.Second); !v.OK || v.Checked != 3 || v.Err() != nil {
			t.Errorf("Within(10s) = %v", v)
		}
		if err := rs.FirstErr(); err != nil {
			t.Error(err)
		}
	}
}

func TestCanaryGate(t *testing.T) {
	t.Parallel()
	c, cl := fake(t)
	can := canary(t, c, cl, health.CanaryTimeout(200*time.Millisecond), health.CanaryBrokers(0, 1, 2, 7))

	// Broker 1 refuses writes; broker 2 does not answer in time; broker 7
	// is expected but unknown.
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Nodes: []int32{1}, Err: kerr.NotEnoughReplicas, Count: -1})
	release := make(chan struct{})
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if c.CurrentNode() == 2 {
			c.SleepControl(func() { <-release })
		}
		return nil, nil, false
	})
	rs, err := can.Probe(t.Context())
	close(release)
	if err != nil {
		t.Fatal(err)
	}
	v := rs.Within(time.Minute)
	if got := brief(v); len(got) != 3 ||
		got[0] != "kupgrade-canary-1 canary-failed [1]" ||
		got[1] != "kupgrade-canary-2 canary-failed [2]" ||
		got[2] != "kupgrade-canary--1 canary-failed [7]" {
		t.Errorf("reasons %q", got)
	}
	for _, want := range []string{
		"broker 1: produce: NOT_ENOUGH_REPLICAS",
		"broker 2: produce: health: canary round trip through broker 2 not done within 200ms",
		"broker 7: not in metadata",
	} {
		if !strings.Contains(v.String()+v.Reasons[2].Message, want) {
			t.Errorf("verdict %q lacks %q", v, want)
		}
	}
	if !errors.Is(v.Err(), health.ErrCanaryFailed) {
		t.Errorf("errors.Is(%v, ErrCanaryFailed) = false", v.Err())
	}
	if rs[0].Err != nil {
		t.Errorf("broker 0: %v", rs[0].Err)
	}
	if slow := rs[0:1].Within(time.Nanosecond); slow.OK || slow.Reasons[0].Rule != health.RuleCanarySlow {
		t.Errorf("Within(1ns) = %v, want canary-slow", slow)
	}
	if s, ok := rs.Slowest(); !ok || s.Broker != 2 {
		t.Errorf("Slowest = %+v, want broker 2", s)
	}
	if v := (health.ProbeResults{}).Within(time.Second); v.OK {
		t.Error("no results passed the gate")
	}

	b, err := json.Marshal(rs[1])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"broker":1`) || !strings.Contains(string(b), `"error":"produce: NOT_ENOUGH_REPLICAS`) {
		t.Errorf("JSON %s", b)
	}
}

func TestCanaryEnsureAddsBrokers(t *testing.T) {
	t.Parallel()
	c, cl := fake(t)
	can := canary(t, c, cl)
	if _, _, err := c.AddNode(3, 0); err != nil {
		t.Fatal(err)
	}
	for i := range int32(3) { // AddNode reshuffles leaders
		if err := c.MoveTopicPartition(can.Topic(), i, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := can.Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(c.PartitionInfos(can.Topic())); n != 4 {
		t.Fatalf("canary has %d partitions after broker 3 joined, want 4", n)
	}
	if err := c.MoveTopicPartition(can.Topic(), 3, 3); err != nil {
		t.Fatal(err)
	}
	rs, err := can.Probe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if v := rs.Within(10 * time.Second); !v.OK || len(v.Nodes) != 4 {
		t.Errorf("Within = %v", v)
	}
	// A second Ensure changes nothing.
	if err := can.Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(c.PartitionInfos(can.Topic())); n != 4 {
		t.Errorf("canary has %d partitions after a second Ensure, want 4", n)
	}
}

// TestCanaryHedgesAHungBroker stalls metadata on one broker: the probe's
// metadata read goes to another broker after a second, so the probe still
// ends well within the client's 10s timeout.
func TestCanaryHedgesAHungBroker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, cl := virtual(t)
		can := canary(t, c, cl)
		release := make(chan struct{})
		c.ControlKey(int16(kmsg.Metadata), func(kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			if c.CurrentNode() == 1 {
				c.SleepControl(func() { <-release })
			}
			return nil, nil, false
		})
		for range 6 { // the client's routing reaches node 1 at least once
			start := time.Now()
			rs, err := can.Probe(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("Probe took %v with one broker's metadata hung, want at most 2s", took)
			}
			if v := rs.Within(time.Second); !v.OK {
				t.Errorf("Within = %v", v)
			}
		}
		close(release)
		cl.Close()
	})
}

func TestNewCanaryValidates(t *testing.T) {
	t.Parallel()
	c, cl := fake(t)
	for _, o := range []health.CanaryOption{health.CanaryTopic(""), health.CanaryReplicationFactor(0), health.CanaryTimeout(0)} {
		if _, err := health.NewCanary(cl, o); err == nil {
			t.Errorf("NewCanary with a bad option: no error")
		}
	}
	noAck, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	if err != nil {
		t.Fatal(err)
	}
	defer noAck.Close()
	if _, err := health.NewCanary(noAck); err == nil {
		t.Error("NewCanary with an acks=0 client: no error")
	}
	if can, err := health.NewCanary(cl, health.CanaryTopic("probe"), health.CanaryTopicConfig("min.insync.replicas", "1")); err != nil || can.Topic() != "probe" {
		t.Errorf("NewCanary = %v, %v", can, err)
	}
}
