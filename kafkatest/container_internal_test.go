package kafkatest

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestContainerArgsDropClassDataSharing(t *testing.T) {
	in := []string{"-Xmx512m", "-Xlog:cds=off,cds+dynamic=off", "-XX:SharedArchiveFile=/root/.cache/a.jsa",
		"-XX:ArchiveClassesAtExit=/tmp/b.tmp", "-cp", "/opt/kafka/libs/*", "kafka.Kafka", "/x/server.properties"}
	want := []string{"-Xmx512m", "-cp", "/opt/kafka/libs/*", "kafka.Kafka", "/x/server.properties"}
	if diff := cmp.Diff(want, containerArgs(in)); diff != "" {
		t.Errorf("containerArgs (-want +got):\n%s", diff)
	}
}

func TestHostFilesNamedByArgs(t *testing.T) {
	dir := t.TempDir()
	props := filepath.Join(dir, "server.properties")
	log4j := filepath.Join(dir, "log4j.properties")
	log4j2 := filepath.Join(dir, "log4j2.properties")
	for _, f := range []string{props, log4j, log4j2} {
		if err := os.WriteFile(f, []byte("x=1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{
		"-Dlog4j.configuration=file:" + log4j,            // file: URL in a -D value
		"-Dlog4j2.configurationFile=" + log4j2,           // plain path in a -D value
		"-Dkafka.logs.dir=" + filepath.Join(dir, "logs"), // no such file: not copied
		"-cp", "/opt/kafka/libs/*", // inside the image
		"kafka.Kafka", props, props, // the same file once
		"relative.properties",
	}
	want := []string{log4j, log4j2, props}
	if diff := cmp.Diff(want, hostFiles(args)); diff != "" {
		t.Errorf("hostFiles (-want +got):\n%s", diff)
	}
}

func TestOwnerAlive(t *testing.T) {
	me := ownerLabel()
	if !ownerAlive(me) {
		t.Errorf("ownerAlive(%q) = false for this very process", me)
	}
	pid := strconv.Itoa(os.Getpid())
	for _, owner := range []string{
		pid + "/1",    // this pid, another start time: a reused pid
		"999999999/1", // no such process
		pid,           // malformed
		"x/1",
		"",
	} {
		if ownerAlive(owner) {
			t.Errorf("ownerAlive(%q) = true", owner)
		}
	}
}

func TestContainersOption(t *testing.T) {
	cfg := defaultConfig()
	KRaft("3.9.2").apply(&cfg)
	if cfg.containers != nil {
		t.Fatal("containers on without the option")
	}
	Containers().apply(&cfg)
	if got := cfg.containers.image("4.0.2"); got != "apache/kafka:4.0.2" {
		t.Errorf("default image %q, want apache/kafka:4.0.2", got)
	}
	Containers(ContainerImage(func(r string) string { return "local/kafka:" + r })).apply(&cfg)
	if got := cfg.containers.image("4.0.2"); got != "local/kafka:4.0.2" {
		t.Errorf("ContainerImage: image %q", got)
	}
	c := &Cluster{cfg: cfg}
	if got := c.dataDir("/tmp/x/node-1/data"); got != dataPath {
		t.Errorf("dataDir with containers = %q, want %q", got, dataPath)
	}
	c.cfg.containers = nil
	if got := c.dataDir("/tmp/x/node-1/data"); got != "/tmp/x/node-1/data" {
		t.Errorf("dataDir without containers = %q", got)
	}
}

// TestBridgeConfig checks the listeners of bridge networking: the clients'
// listener on the node's port, advertised as 127.0.0.1; INTERNAL and
// CONTROLLER by alias on the fixed ports; the voters by alias; ZooKeeper by
// alias for the brokers and on 127.0.0.1 for this machine. Host networking
// keeps kafkatest's loopback listeners.
func TestBridgeConfig(t *testing.T) {
	c := testCluster(t, KRaft("3.9.2"), Controllers(1), Brokers(1), Containers())
	ctrl, b := c.Node(1), c.Node(2)
	cp, bp := strconv.Itoa(ctrl.controllerPort), strconv.Itoa(b.brokerPort)
	keys := []string{"listeners", "advertised.listeners", "controller.listener.names", "controller.quorum.voters",
		"inter.broker.listener.name", "listener.security.protocol.map"}
	protos := "CONTROLLER:PLAINTEXT,CONTROLLER_HOST:PLAINTEXT,PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT"
	if diff := cmp.Diff(map[string]string{
		"listeners":                      "CONTROLLER://node-1:9093,CONTROLLER_HOST://:" + cp,
		"advertised.listeners":           "CONTROLLER://node-1:9093,CONTROLLER_HOST://127.0.0.1:" + cp, // 3.9+
		"controller.listener.names":      "CONTROLLER,CONTROLLER_HOST",
		"controller.quorum.voters":       "1@node-1:9093",
		"listener.security.protocol.map": protos,
	}, pick(ctrl.Config(), keys...)); diff != "" {
		t.Errorf("controller (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{
		"listeners":                      "PLAINTEXT://:" + bp + ",INTERNAL://node-2:9092",
		"advertised.listeners":           "PLAINTEXT://127.0.0.1:" + bp + ",INTERNAL://node-2:9092",
		"controller.listener.names":      "CONTROLLER,CONTROLLER_HOST",
		"controller.quorum.voters":       "1@node-1:9093",
		"inter.broker.listener.name":     "INTERNAL",
		"listener.security.protocol.map": protos,
	}, pick(b.Config(), keys...)); diff != "" {
		t.Errorf("broker (-want +got):\n%s", diff)
	}
	if got, want := c.publishedPorts("node-1"), []int{ctrl.controllerPort}; !cmp.Equal(got, want) {
		t.Errorf("published ports of node-1 %v, want %v", got, want)
	}
	// A tool's addresses of this machine become the nodes' on the network.
	args := []string{"--bootstrap-server", b.Addr() + ",127.0.0.1:1", "--bootstrap-controller=" + ctrl.ControllerAddr()}
	want := []string{"--bootstrap-server", "node-2:9092,127.0.0.1:1", "--bootstrap-controller=node-1:9093"}
	if diff := cmp.Diff(want, c.networkArgs(args)); diff != "" {
		t.Errorf("networkArgs (-want +got):\n%s", diff)
	}

	z := testCluster(t, ZooKeeper("3.8.1"), Brokers(1), Containers())
	zb := z.Node(1)
	zp := strconv.Itoa(zb.brokerPort)
	if diff := cmp.Diff(map[string]string{
		"listeners":                      "PLAINTEXT://:" + zp + ",INTERNAL://node-1:9092",
		"advertised.listeners":           "PLAINTEXT://127.0.0.1:" + zp + ",INTERNAL://node-1:9092",
		"inter.broker.listener.name":     "INTERNAL",
		"listener.security.protocol.map": protos,
		"zookeeper.connect":              "zookeeper:" + strconv.Itoa(z.zk.port) + "/" + z.name,
	}, pick(zb.Config(), append(keys, "zookeeper.connect")...)); diff != "" {
		t.Errorf("ZooKeeper-mode broker (-want +got):\n%s", diff)
	}
	if got, want := z.ZooKeeperConnect(), "127.0.0.1:"+strconv.Itoa(z.zk.port)+"/"+z.name; got != want {
		t.Errorf("ZooKeeperConnect() = %q, want %q", got, want)
	}

	h := testCluster(t, ZooKeeper("3.8.1"), Brokers(1), Containers(ContainerHostNetwork()))
	hb := h.Node(1)
	if diff := cmp.Diff(map[string]string{
		"listeners":         "PLAINTEXT://" + hb.Addr(),
		"zookeeper.connect": h.ZooKeeperConnect(),
	}, pick(hb.Config(), append(keys, "zookeeper.connect")...)); diff != "" {
		t.Errorf("host networking (-want +got):\n%s", diff)
	}
}

// pick returns the keys of cfg that are set.
func pick(cfg map[string]string, keys ...string) map[string]string {
	out := map[string]string{}
	for _, k := range keys {
		if v, ok := cfg[k]; ok {
			out[k] = v
		}
	}
	return out
}
