package kafkatest_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/kafkatest"
)

// engineState lists the containers (name → state) and volumes that carry
// label, on the engine DOCKER_HOST names.
func engineState(t *testing.T, label string) (map[string]string, []string) {
	t.Helper()
	cli, err := testcontainers.NewDockerClientWithOpts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	f := client.Filters{}.Add("label", label)
	cs, err := cli.ContainerList(t.Context(), client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	ctrs := map[string]string{}
	for _, s := range cs.Items {
		ctrs[strings.TrimPrefix(s.Names[0], "/")] = string(s.State)
	}
	vs, err := cli.VolumeList(t.Context(), client.VolumeListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	var vols []string
	for _, v := range vs.Items {
		vols = append(vols, v.Name)
	}
	slices.Sort(vols)
	return ctrs, vols
}

// running counts the containers in state "running" (or "paused" too).
func running(ctrs map[string]string, paused bool) int {
	n := 0
	for _, s := range ctrs {
		if s == "running" || paused && s == "paused" {
			n++
		}
	}
	return n
}

// TestContainersKillPause runs three combined KRaft nodes of 3.9.2 in
// containers under traffic: a container killed (SIGKILL to its java) is
// gone and the node comes back in a new container on its data volume; a
// paused container (docker pause) answers nothing until unpaused; no
// acknowledged record is lost. It also checks the cleanup that replaces
// Ryuk: a volume left by a dead process is removed when the cluster starts,
// and Close leaves no container or volume of the cluster behind. It runs
// with host networking and with bridge networking (where the engine can:
// see LocalBridgeContainers), where it also checks what the nodes publish
// and advertise.
func TestContainersKillPause(t *testing.T) {
	t.Run("host", func(t *testing.T) { testKillPause(t, kafkatest.LocalContainers(t, kraftOld), false) })
	t.Run("bridge", func(t *testing.T) { testKillPause(t, kafkatest.LocalBridgeContainers(t, kraftOld), true) })
}

func testKillPause(t *testing.T, opt kafkatest.Option, bridge bool) {

	// What a test process killed mid-run leaves: a volume whose owner is dead.
	cli, err := testcontainers.NewDockerClientWithOpts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	orphan := fmt.Sprintf("kt-dead%d-node-1", time.Now().UnixNano())
	if _, err := cli.VolumeCreate(t.Context(), client.VolumeCreateOptions{Name: orphan,
		Labels: map[string]string{"org.kupgrade.kafkatest.owner": "999999999/1", "org.kupgrade.kafkatest.cluster": "kt-dead"}}); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	c := kafkatest.Start(t, kafkatest.KRaft(kraftOld), kafkatest.Combined(3), opt,
		kafkatest.Logger(slog.New(slog.NewTextHandler(tlog{t}, nil)))) // "cluster ready … took": the start without the lock's wait
	t.Logf("3 combined nodes of %s ready in containers in %v", kraftOld, time.Since(start).Round(time.Millisecond))
	if _, vols := engineState(t, "org.kupgrade.kafkatest.cluster=kt-dead"); len(vols) != 0 {
		t.Errorf("the dead process's volume %v is still there after the next cluster started", vols)
	}
	label := "org.kupgrade.kafkatest.cluster=" + c.Name()
	ctrs, vols := engineState(t, label)
	wantVols := []string{c.Name() + "-node-1", c.Name() + "-node-2", c.Name() + "-node-3"}
	if running(ctrs, false) != 3 || !slices.Equal(vols, wantVols) {
		t.Fatalf("containers %v, volumes %v; want 3 running and volumes %v", ctrs, vols, wantVols)
	}
	if bridge {
		checkBridge(t, c, label)
	}
	for _, n := range c.All() {
		if cfg := n.Config(); cfg["log.dirs"] != "/var/lib/kafka/data" {
			t.Errorf("node %d log.dirs %q, want the data volume /var/lib/kafka/data", n.ID(), cfg["log.dirs"])
		}
		// The node's java is PID 1 of a container: its cgroup names it.
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", n.PID()))
		if err != nil || !strings.Contains(string(b), "docker") {
			t.Errorf("node %d (pid %d) is not in a container's cgroup: %q %v", n.ID(), n.PID(), b, err)
		}
	}

	if err := c.CreateTopic(t.Context(), "events", 6, 3, map[string]string{"min.insync.replicas": "2"}); err != nil {
		t.Fatal(err)
	}
	cl := c.Client(t)
	tr := c.Traffic(t, "events", kafkatest.Rate(300))
	if err := tr.WaitAcknowledged(t.Context(), 1000); err != nil {
		t.Fatal(err)
	}

	// Pause: the container is frozen, the node answers nothing.
	paused := c.Node(3)
	if err := paused.Pause(); err != nil || paused.Status() != kafkatest.Paused {
		t.Fatalf("Pause: %v, status %v", err, paused.Status())
	}
	if alive, _ := c.Alive(t.Context(), 3); alive {
		t.Error("a paused node is reported alive")
	}
	if ctrs, _ := engineState(t, label); running(ctrs, false) != 2 || running(ctrs, true) != 3 {
		t.Errorf("after Pause: containers %v; want one paused", ctrs)
	}
	if err := apiVersions(t, paused.Addr(), 2*time.Second); err == nil {
		t.Error("a paused node answered ApiVersions")
	}
	acked := tr.Progress().Acknowledged
	if err := tr.WaitAcknowledged(t.Context(), acked+600); err != nil { // the others carry the traffic
		t.Fatalf("no traffic while node 3 was paused: %v", err)
	}
	if err := paused.Resume(); err != nil || paused.Status() != kafkatest.Running {
		t.Fatalf("Resume: %v, status %v", err, paused.Status())
	}
	if err := apiVersions(t, paused.Addr(), 30*time.Second); err != nil {
		t.Errorf("node 3 not answering after Resume: %v", err)
	}

	// Kill: the container ends and is removed; its volume stays.
	victim := c.Node(2)
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	if victim.Status() != kafkatest.Killed || victim.PID() != 0 {
		t.Fatalf("after Kill: status %v pid %d", victim.Status(), victim.PID())
	}
	ctrs, vols = engineState(t, label)
	if len(ctrs) != 2 || !slices.Equal(vols, wantVols) {
		t.Errorf("after Kill: containers %v, volumes %v; want 2 containers, every volume", ctrs, vols)
	}
	deadline := time.Now().Add(time.Minute)
	for underReplicated(t, cl) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no under-replicated partition within 1m of killing node 2")
		}
		time.Sleep(200 * time.Millisecond)
	}
	restart := time.Now()
	if err := c.StartNode(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(2 * time.Minute)
	for n := underReplicated(t, cl); n > 0; n = underReplicated(t, cl) {
		if time.Now().After(deadline) {
			t.Fatalf("%d partitions still under-replicated 2m after node 2 came back", n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("node 2 back in ISR %v after its start in a new container", time.Since(restart).Round(time.Millisecond))
	if ctrs, _ := engineState(t, label); running(ctrs, false) != 3 {
		t.Errorf("after StartNode: containers %v; want 3 running", ctrs)
	}

	rep, err := tr.Stop(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("traffic: %v", rep)
	if err := rep.Err(); err != nil {
		t.Error(err)
	}
	if rep.Acknowledged < 2000 || rep.Consumed == 0 {
		t.Errorf("traffic acknowledged %d, consumed %d: too little to prove anything", rep.Acknowledged, rep.Consumed)
	}

	c.Close()
	if ctrs, vols := engineState(t, label); len(ctrs)+len(vols) != 0 {
		t.Errorf("after Close: containers %v, volumes %v left", ctrs, vols)
	}
	if nets := engineNetworks(t, label); len(nets) != 0 {
		t.Errorf("after Close: networks %v left", nets)
	}
}

// engineNetworks lists the networks that carry label.
func engineNetworks(t *testing.T, label string) []string {
	t.Helper()
	cli, err := testcontainers.NewDockerClientWithOpts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	nl, err := cli.NetworkList(t.Context(), client.NetworkListOptions{Filters: client.Filters{}.Add("label", label)})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range nl.Items {
		out = append(out, n.Name)
	}
	slices.Sort(out)
	return out
}

// checkBridge checks a KRaft cluster on bridge networking: one network of
// the cluster's, every node on it under its alias, the clients' ports
// published on 127.0.0.1 only, and what Kafka tells this machine's clients
// (Metadata, DescribeCluster of brokers and controllers, DescribeQuorum)
// names 127.0.0.1 for the brokers.
func checkBridge(t *testing.T, c *kafkatest.Cluster, label string) {
	t.Helper()
	if nets := engineNetworks(t, label); !slices.Equal(nets, []string{c.Name()}) {
		t.Errorf("networks %v of the cluster, want [%s]", nets, c.Name())
	}
	cli, err := testcontainers.NewDockerClientWithOpts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	list, err := cli.ContainerList(t.Context(), client.ContainerListOptions{Filters: client.Filters{}.Add("label", label)})
	if err != nil {
		t.Fatal(err)
	}
	published := map[string]bool{}
	for _, s := range list.Items {
		ins, err := cli.ContainerInspect(t.Context(), s.ID, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ep := ins.Container.NetworkSettings.Networks[c.Name()]
		if ep == nil {
			t.Errorf("container %s is not on network %s: %v", s.Names, c.Name(), ins.Container.NetworkSettings.Networks)
			continue
		}
		t.Logf("container %s: network %s, aliases %v, ports %v", s.Names[0], c.Name(), ep.Aliases, ins.Container.NetworkSettings.Ports)
		for port, bs := range ins.Container.NetworkSettings.Ports {
			for _, b := range bs {
				if b.HostIP.String() != "127.0.0.1" || b.HostPort != strconv.Itoa(int(port.Num())) {
					t.Errorf("container %s publishes %v on %v:%s, want 127.0.0.1:%d only", s.Names[0], port, b.HostIP, b.HostPort, port.Num())
				}
				published["127.0.0.1:"+b.HostPort] = true
			}
		}
	}
	for _, n := range c.All() {
		for _, a := range []string{n.Addr(), n.ControllerAddr()} {
			if a != "" && !published[a] {
				t.Errorf("node %d's %s is not published (published: %v)", n.ID(), a, published)
			}
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cl := c.Client(t)
	meta, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for _, b := range meta.Brokers {
		got = append(got, fmt.Sprintf("%d@%s:%d", b.NodeID, b.Host, b.Port))
	}
	for _, n := range c.All() {
		want = append(want, fmt.Sprintf("%d@%s", n.ID(), n.Addr()))
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("Metadata lists brokers %v, want %v", got, want)
	}
	dc, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for _, b := range dc.Brokers {
		got = append(got, fmt.Sprintf("%d@%s:%d", b.NodeID, b.Host, b.Port))
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("DescribeCluster through a broker lists %v, want %v", got, want)
	}
	dq := kmsg.NewPtrDescribeQuorumRequest()
	tp := kmsg.NewDescribeQuorumRequestTopic()
	tp.Topic = "__cluster_metadata"
	tp.Partitions = []kmsg.DescribeQuorumRequestTopicPartition{kmsg.NewDescribeQuorumRequestTopicPartition()}
	dq.Topics = append(dq.Topics, tp)
	if q, err := dq.RequestWith(ctx, cl); err != nil {
		t.Errorf("DescribeQuorum through a broker: %v", err)
	} else {
		var nodes []string
		for _, n := range q.Nodes {
			for _, l := range n.Listeners {
				nodes = append(nodes, fmt.Sprintf("%d %s@%s:%d", n.NodeID, l.Name, l.Host, l.Port))
			}
		}
		t.Logf("DescribeQuorum through a broker: voters' endpoints %v", nodes)
	}
	// A controller, asked directly, as upgrade.KRaftControllers does.
	ccl, err := kgo.NewClient(kgo.SeedBrokers(c.ControllerAddrs()[0]), kgo.RequestRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	defer ccl.Close()
	cdc := kmsg.NewPtrDescribeClusterRequest()
	cdc.EndpointType = 2 // controllers
	r, err := cdc.RequestWith(ctx, ccl.SeedBrokers()[0])
	if err != nil {
		t.Fatalf("DescribeCluster of a controller: %v", err)
	}
	got, want = got[:0], want[:0]
	for _, b := range r.Brokers {
		got = append(got, fmt.Sprintf("%d@%s:%d", b.NodeID, b.Host, b.Port))
	}
	for _, n := range c.Controllers() {
		want = append(want, fmt.Sprintf("%d@%s", n.ID(), n.ControllerAddr()))
	}
	slices.Sort(got)
	if !slices.Equal(got, want) { // kupgrade tells controllers apart by these (3.9+)
		t.Errorf("DescribeCluster of a controller (error %d) lists controllers %v, want %v", r.ErrorCode, got, want)
	}
}

// tlog writes log lines to the test log.
type tlog struct{ t *testing.T }

func (w tlog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// apiVersions asks addr for ApiVersions, giving up after d.
func apiVersions(t *testing.T, addr string, d time.Duration) error {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequestRetries(0))
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		_, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
		if err == nil || ctx.Err() != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestContainersNoOrphans SIGKILLs a test process that runs a container
// cluster (no cleanup of its own runs) and checks that its containers and
// volumes are removed all the same, by the watchdog the cluster started,
// without waiting for the next cluster's sweep.
func TestContainersNoOrphans(t *testing.T) {
	if os.Getenv("KAFKATEST_CONTAINER_ORPHAN_FILE") != "" {
		return // the child's work is in TestContainersOrphanChild
	}
	kafkatest.LocalContainers(t, kraftOld) // the engine and image, and DOCKER_HOST for the child
	nameFile := filepath.Join(t.TempDir(), "name")
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestContainersOrphanChild$", "-test.v")
	cmd.Env = append(os.Environ(), "KAFKATEST_CONTAINER_ORPHAN_FILE="+nameFile)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("child exited cleanly, want it killed; output:\n%s", out)
	}
	b, rerr := os.ReadFile(nameFile)
	if rerr != nil {
		t.Fatalf("child did not start its cluster (%v); output:\n%s", rerr, out)
	}
	name, seen, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	if seen != "1" {
		t.Fatalf("child saw %s containers of its cluster running, want 1", seen)
	}
	died := time.Now()
	deadline := died.Add(time.Minute)
	for {
		ctrs, vols := engineState(t, "org.kupgrade.kafkatest.cluster="+name)
		if len(ctrs)+len(vols) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("1m after its test process was killed, cluster %s still has containers %v and volumes %v", name, ctrs, vols)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("cluster %s's container and volume gone %v after its test process was killed", name, time.Since(died).Round(time.Millisecond))
}

// TestContainersOrphanChild is TestContainersNoOrphans' child: it starts a
// one-node container cluster and SIGKILLs itself.
func TestContainersOrphanChild(t *testing.T) {
	file := os.Getenv("KAFKATEST_CONTAINER_ORPHAN_FILE")
	if file == "" {
		t.Skip("helper of TestContainersNoOrphans; runs only as its child process")
	}
	c := kafkatest.Start(t, kafkatest.KRaft(kraftOld), kafkatest.Combined(1), kafkatest.LocalContainers(t, kraftOld))
	ctrs, _ := engineState(t, "org.kupgrade.kafkatest.cluster="+c.Name())
	os.WriteFile(file, fmt.Appendf(nil, "%s %d", c.Name(), running(ctrs, false)), 0o644)
	syscall.Kill(os.Getpid(), syscall.SIGKILL) // no cleanup runs
	select {}
}
