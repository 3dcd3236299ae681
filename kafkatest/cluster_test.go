package kafkatest_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/kafkatest"
	"github.com/kupgrade/kupgrade/node"
)

// Releases the real-Kafka tests run: the newest patch of each line that
// Maven Central serves.
const (
	zkOld     = "3.6.2"
	zkNew     = "3.9.2"
	kraftOld  = "3.9.2"
	kraftNext = "4.1.2"
)

// versionGuess asks broker id for its ApiVersions and returns franz-go's
// guess of its release line ("v3.9").
func versionGuess(t *testing.T, adm *kadm.Client, id int32) string {
	t.Helper()
	vs, err := adm.ApiVersions(t.Context())
	if err != nil {
		t.Fatalf("ApiVersions: %v", err)
	}
	v, ok := vs[id]
	if !ok || v.Err != nil {
		t.Fatalf("ApiVersions of broker %d: present %v, err %v", id, ok, v.Err)
	}
	return v.VersionGuess()
}

// staticConfig returns a broker's config value and source from DescribeConfigs.
func staticConfig(t *testing.T, adm *kadm.Client, id int32, key string) (string, string) {
	t.Helper()
	rcs, err := adm.DescribeBrokerConfigs(t.Context(), id)
	if err != nil {
		t.Fatalf("DescribeConfigs of broker %d: %v", id, err)
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			t.Fatalf("DescribeConfigs of broker %d: %v", id, rc.Err)
		}
		for _, c := range rc.Configs {
			if c.Key == key {
				return c.MaybeValue(), c.Source.String()
			}
		}
	}
	t.Fatalf("broker %d has no config %q", id, key)
	return "", ""
}

// fullISR waits until every partition of topic has all its replicas in ISR
// and reports how long that took.
func fullISR(t *testing.T, cl *kgo.Client, topic string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(within)
	for {
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(t.Context(), cl)
		var bad []string
		if err == nil {
			for _, p := range resp.Topics[0].Partitions {
				if len(p.ISR) != len(p.Replicas) || p.Leader < 0 {
					bad = append(bad, fmt.Sprintf("%d: isr %v of %v", p.Partition, p.ISR, p.Replicas))
				}
			}
			if len(bad) == 0 && len(resp.Topics[0].Partitions) > 0 {
				return time.Since(start)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s: ISR not full within %v: %v %v", topic, within, err, bad)
		}
		time.Sleep(200 * time.Millisecond) // polling an observed condition, bounded by deadline
	}
}

// logPeakRSS logs every running node's peak resident memory.
func logPeakRSS(t *testing.T, c *kafkatest.Cluster) {
	t.Helper()
	var parts []string
	for _, n := range c.All() {
		parts = append(parts, fmt.Sprintf("node %d (%s) %d MiB", n.ID(), n.Release(), n.PeakRSS()>>20))
	}
	t.Logf("peak RSS: %s", strings.Join(parts, ", "))
}

func underReplicated(t *testing.T, cl *kgo.Client) int {
	t.Helper()
	resp, err := kmsg.NewPtrMetadataRequest().RequestWith(t.Context(), cl)
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	n := 0
	for _, tp := range resp.Topics {
		for _, p := range tp.Partitions {
			if len(p.ISR) < len(p.Replicas) {
				n++
			}
		}
	}
	return n
}

// rollOne restarts node id onto release with ch under traffic and checks the
// node reports the new release and config through the Kafka protocol.
func rollOne(t *testing.T, c *kafkatest.Cluster, id int32, ch node.Change, wantGuess string) {
	t.Helper()
	const topic = "orders"
	if err := c.CreateTopic(t.Context(), topic, 6, 3, map[string]string{"min.insync.replicas": "2"}); err != nil {
		t.Fatal(err)
	}
	cl := c.Client(t)
	adm := kadm.NewClient(cl)
	tr := c.Traffic(t, topic, kafkatest.Rate(500))
	if err := tr.WaitAcknowledged(t.Context(), 2500); err != nil { // ~5 s of traffic before the restart
		t.Fatal(err)
	}
	start := time.Now()
	if err := c.Restart(t.Context(), id, ch); err != nil {
		t.Fatalf("restart node %d: %v", id, err)
	}
	up := time.Since(start)
	caught := fullISR(t, cl, topic, 2*time.Minute)
	t.Logf("node %d restart: process ready after %v, back in ISR after %v (stop → caught up)", id, up, up+caught)
	if err := tr.WaitAcknowledged(t.Context(), tr.Progress().Acknowledged+2500); err != nil { // ~5 s after it
		t.Fatal(err)
	}
	logPeakRSS(t, c)
	rep, err := tr.Stop(context.Background())
	if err != nil {
		t.Fatalf("traffic: %v", err)
	}
	t.Logf("traffic: %v", rep)
	if rep.Acknowledged < 4000 {
		t.Errorf("only %d records acknowledged in ~10 s at 500/s", rep.Acknowledged)
	}
	if err := rep.Err(); err != nil {
		t.Error(err)
	}
	if rep.Consumed == 0 {
		t.Error("the consumer group read nothing")
	}
	if got := versionGuess(t, adm, id); got != wantGuess {
		t.Errorf("node %d ApiVersions guess = %q, want %q", id, got, wantGuess)
	}
	if got := c.Node(id).Release(); got != ch.Version {
		t.Errorf("node %d Release() = %q, want %q", id, got, ch.Version)
	}
	for k, v := range ch.Set {
		got, src := staticConfig(t, adm, id, k)
		if got != v || src != "STATIC_BROKER_CONFIG" {
			t.Errorf("node %d %s = %q from %s, want %q from STATIC_BROKER_CONFIG", id, k, got, src, v)
		}
	}
}

func TestZooKeeperCluster(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.ZooKeeper(zkOld), kafkatest.Brokers(3))
	if c.Mode() != compat.ModeZooKeeper || c.ZooKeeperAddr() == "" || len(c.Addrs()) != 3 {
		t.Fatalf("mode %v, zk %q, brokers %v", c.Mode(), c.ZooKeeperAddr(), c.Addrs())
	}
	adm := kadm.NewClient(c.Client(t))
	for _, n := range c.Brokers() {
		if got := versionGuess(t, adm, n.ID()); got != "v3.6" {
			t.Fatalf("broker %d guess %q, want v3.6", n.ID(), got)
		}
	}
	rollOne(t, c, 3, node.Change{Version: zkNew, Set: map[string]string{"inter.broker.protocol.version": "3.6"}}, "v3.9")
	for _, id := range []int32{1, 2} {
		if got := c.Node(id).Release(); got != zkOld {
			t.Errorf("node %d runs %s; only node 3 was restarted", id, got)
		}
	}
}

func TestKRaftCluster(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.KRaft(kraftOld), kafkatest.Controllers(3), kafkatest.Brokers(3))
	if len(c.Controllers()) != 3 || len(c.Brokers()) != 3 || len(c.All()) != 6 {
		t.Fatalf("controllers %d, brokers %d", len(c.Controllers()), len(c.Brokers()))
	}
	for _, n := range c.Controllers() {
		if n.IsBroker() || n.ControllerAddr() == "" {
			t.Fatalf("node %d: broker %v, controller addr %q", n.ID(), n.IsBroker(), n.ControllerAddr())
		}
	}
	rollOne(t, c, 5, node.Change{Version: kraftNext, Set: map[string]string{"num.replica.fetchers": "2"}}, "v4.1")
}

func TestKillAndRecover(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.KRaft(kraftOld), kafkatest.Combined(3))
	if err := c.CreateTopic(t.Context(), "events", 6, 3, map[string]string{"min.insync.replicas": "2"}); err != nil {
		t.Fatal(err)
	}
	cl := c.Client(t)
	tr := c.Traffic(t, "events")
	if err := tr.WaitAcknowledged(t.Context(), 1000); err != nil {
		t.Fatal(err)
	}
	// A paused node holds its sockets but answers nothing; resumed, it runs on.
	if err := c.Node(3).Pause(); err != nil || c.Node(3).Status() != kafkatest.Paused {
		t.Fatalf("Pause: %v, status %v", err, c.Node(3).Status())
	}
	if err := c.Node(3).Resume(); err != nil || c.Node(3).Status() != kafkatest.Running {
		t.Fatalf("Resume: %v, status %v", err, c.Node(3).Status())
	}
	if err := c.Node(3).Resume(); err == nil {
		t.Error("Resume of a running node succeeded")
	}
	victim := c.Node(2)
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	if victim.Status() != kafkatest.Killed || victim.PID() != 0 {
		t.Fatalf("after Kill: status %v pid %d", victim.Status(), victim.PID())
	}
	deadline := time.Now().Add(time.Minute)
	for underReplicated(t, cl) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no under-replicated partition within 1m of killing node 2")
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("under-replicated partitions seen after the kill: %d", underReplicated(t, cl))
	start := time.Now()
	if err := c.StartNode(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	took := fullISR(t, cl, "events", 2*time.Minute)
	deadline = time.Now().Add(time.Minute)
	for n := underReplicated(t, cl); n > 0; n = underReplicated(t, cl) {
		if time.Now().After(deadline) {
			t.Fatalf("%d partitions still under-replicated 1m after node 2 came back", n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("node 2 back in ISR %v after its start (ready, then ISR full %v later)", time.Since(start).Round(time.Millisecond), took)
	rep, err := tr.Stop(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("traffic: %v", rep)
	if err := rep.Err(); err != nil {
		t.Error(err)
	}
	if victim.Starts() != 2 {
		t.Errorf("node 2 started %d times, want 2", victim.Starts())
	}
}

// TestNoOrphans runs clusters in child processes of this test binary that end
// badly (a failed test, a panic, a SIGKILL of the whole test process) and
// checks that no JVM they started survives.
func TestNoOrphans(t *testing.T) {
	if os.Getenv("KAFKATEST_ORPHAN_CHILD") != "" {
		return // the child's work is in TestOrphanChild
	}
	if testing.Short() {
		t.Skip("starts real Kafka JVMs")
	}
	kafkatest.RequireTools(t)
	for _, how := range []string{"fail", "panic", "sigkill"} {
		t.Run(how, func(t *testing.T) {
			nameFile := filepath.Join(t.TempDir(), "name")
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestOrphanChild$", "-test.v")
			cmd.Env = append(os.Environ(), "KAFKATEST_ORPHAN_CHILD="+how, "KAFKATEST_ORPHAN_NAME_FILE="+nameFile)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("child exited cleanly, want a failure; output:\n%s", out)
			}
			b, rerr := os.ReadFile(nameFile)
			if rerr != nil {
				t.Fatalf("child did not start its cluster (%v); output:\n%s", rerr, out)
			}
			name, seen, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
			if seen != "2" {
				t.Fatalf("child saw %s JVMs of its cluster, want 2 (ZooKeeper and a broker)", seen)
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				left := jvmsOf(name)
				if len(left) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("JVMs of cluster %s still running 30s after its test process ended: pids %v", name, left)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}

// TestOrphanChild is TestNoOrphans' child: it starts a cluster and ends badly.
func TestOrphanChild(t *testing.T) {
	how := os.Getenv("KAFKATEST_ORPHAN_CHILD")
	if how == "" {
		t.Skip("helper of TestNoOrphans; runs only as its child process")
	}
	c := kafkatest.Start(t, kafkatest.ZooKeeper(zkNew), kafkatest.Brokers(1))
	os.WriteFile(os.Getenv("KAFKATEST_ORPHAN_NAME_FILE"), fmt.Appendf(nil, "%s %d", c.Name(), len(jvmsOf(c.Name()))), 0o644)
	switch how {
	case "fail":
		t.Fatal("failing on purpose")
	case "panic":
		panic("panicking on purpose")
	case "sigkill":
		syscall.Kill(os.Getpid(), syscall.SIGKILL) // no cleanup runs; only the parent-death signal helps
		select {}
	}
}

// jvmsOf returns the pids of processes whose command line carries the
// cluster's marker.
func jvmsOf(name string) []int {
	marker := "-Dkupgrade.kafkatest=" + name + "/"
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if strings.Contains(string(b), marker) {
			if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && strings.Contains(string(st), ") Z ") {
				continue // a zombie has ended; its parent has not reaped it yet
			}
			pids = append(pids, pid)
		}
	}
	return pids
}
