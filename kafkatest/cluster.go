package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/node"
)

// A Cluster is a real Kafka cluster of local JVM processes on 127.0.0.1, made
// with [New] or [Start]. It implements [node.Orchestrator]. Its methods are
// safe for concurrent use, but only one Cluster runs on a machine at a time:
// [New] waits for any other to close.
type Cluster struct {
	cfg       config
	name      string
	dir       string
	ownDir    bool
	clusterID string
	zk        *zookeeper
	release   func()

	nodesMu sync.RWMutex
	nodes   []*Process // sorted by id; grows with Provision, shrinks with Retire
	retired []*Process // retired nodes, kept so that Close still ends them
	nextID  int32
	// quorumPorts are the controller ports of a migration's quorum, by
	// node id, given out before the controllers are provisioned (migrate.go).
	quorumPorts map[int32]int

	closeOnce sync.Once
	mu        sync.Mutex // serialises node lifecycle changes
	stateMu   sync.Mutex // serialises writes of StateFile
	dists     map[string]*Distribution
	security  *Security // nil unless Secure
}

var _ node.Orchestrator = (*Cluster)(nil)

// Start starts a cluster for a test and closes it when the test ends. If the
// test fails, the tail of every node's log is logged. Start fails the test if
// the cluster cannot start, and skips it with -short. Node data lives in
// t.TempDir() unless [Dir] says otherwise.
func Start(t testing.TB, opts ...Option) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("kafkatest: starts real Kafka JVMs; skipped with -short")
	}
	requireFor(t, opts)
	opts = append([]Option{Dir(t.TempDir()), ProgressOutput(testWriter{t})}, opts...)
	ctx := t.Context()
	c, err := New(ctx, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			// Short, so that the failure itself stays readable in a CI
			// log of limited size: the whole logs stay under the test's
			// temporary directory while it runs, or under Dir.
			for _, n := range c.list() {
				t.Logf("kafkatest: node %d (%s, %s, %v), %s\nlast errors:\n%s\nlast lines:\n%s", n.id, joinRoles(n.roles), n.Release(), n.Status(), n.LogPath(),
					clipLines(lastErrorLines(n.LogPath(), 6), 240), clipLines(n.LogTail(8), 240))
			}
		}
		c.Close()
	})
	return c
}

// testWriter sends progress lines to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// New starts a cluster and returns once every node is ready: brokers listed
// in metadata (unfenced in KRaft), controllers answering. It resolves the
// release first (see [Resolve]) and waits for any other kafkatest cluster on
// the machine to close. The caller must Close the cluster.
func New(ctx context.Context, opts ...Option) (*Cluster, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o.apply(&cfg)
	}
	if err := cfg.finish(); err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg, dists: map[string]*Distribution{}}
	if cfg.secure != nil {
		var err error
		if c.security, err = newSecurity(cfg.mode, cfg.secure); err != nil {
			return nil, err
		}
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	c.name = "kt-" + hex.EncodeToString(rnd[:])
	dist, err := c.distribution(ctx, cfg.release)
	if err != nil {
		return nil, err
	}
	if err := c.lock(ctx); err != nil {
		return nil, err
	}
	if err := c.setUp(dist); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.boot(ctx, true); err != nil {
		c.Close()
		return nil, err
	}
	if c.security != nil {
		if err := c.createSCRAMUsers(ctx); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

func (c *Cluster) distribution(ctx context.Context, release string) (*Distribution, error) {
	c.mu.Lock()
	d := c.dists[release]
	c.mu.Unlock()
	if d != nil {
		return d, nil
	}
	if c.cfg.containers != nil {
		return c.containerDistribution(ctx, release)
	}
	d, err := Resolve(ctx, release, append([]ResolveOption{ResolveProgress(c.cfg.progress)}, c.cfg.resolve...)...)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.dists[release] = d
	c.mu.Unlock()
	return d, nil
}

// setUp lays out nodes, ports and directories.
func (c *Cluster) setUp(dist *Distribution) error {
	cfg := &c.cfg
	if cfg.dir == "" {
		dir, err := os.MkdirTemp("", "kafkatest-")
		if err != nil {
			return fmt.Errorf("kafkatest: %w", err)
		}
		c.dir, c.ownDir = dir, true
	} else {
		c.dir = filepath.Join(cfg.dir, c.name)
		if err := os.MkdirAll(c.dir, 0o755); err != nil {
			return fmt.Errorf("kafkatest: %w", err)
		}
	}
	if err := writeLogConfigs(c.dir); err != nil {
		return err
	}
	var layout [][]node.Role
	for range cfg.controllers {
		layout = append(layout, []node.Role{node.RoleController})
	}
	for range cfg.combined {
		layout = append(layout, []node.Role{node.RoleBroker, node.RoleController})
	}
	for range cfg.brokers {
		layout = append(layout, []node.Role{node.RoleBroker})
	}
	ports, err := freePorts(2*len(layout) + 1)
	if err != nil {
		return err
	}
	brokerIdx := 0
	for i, roles := range layout {
		id := int32(i + 1)
		n := &Process{c: c, id: id, roles: roles, dist: dist, override: map[string]string{}, removed: map[string]bool{},
			dir: filepath.Join(c.dir, "node-"+strconv.Itoa(int(id)))}
		if slices.Contains(roles, node.RoleBroker) {
			n.brokerPort = ports[2*i]
			if len(cfg.racks) > 0 {
				n.rack = cfg.racks[brokerIdx%len(cfg.racks)]
			}
			brokerIdx++
		}
		if slices.Contains(roles, node.RoleController) {
			n.controllerPort = ports[2*i+1]
		}
		maps.Copy(n.override, cfg.brokerConfig)
		maps.Copy(n.override, cfg.nodeConfig[id])
		if err := os.MkdirAll(filepath.Join(n.dir, "data"), 0o755); err != nil {
			return fmt.Errorf("kafkatest: %w", err)
		}
		c.nodes = append(c.nodes, n)
	}
	c.nextID = int32(len(c.nodes) + 1)
	for id := range cfg.nodeConfig {
		if c.Node(id) == nil {
			return fmt.Errorf("kafkatest: NodeConfig for node %d, but the cluster has nodes 1..%d", id, len(c.nodes))
		}
	}
	if cfg.mode == compat.ModeZooKeeper {
		c.zk = &zookeeper{dir: filepath.Join(c.dir, "zookeeper"), port: ports[len(ports)-1], dist: dist}
	} else {
		c.clusterID = newClusterID()
	}
	c.saveState()
	return nil
}

// newClusterID makes a KRaft cluster id as Kafka's Uuid.randomUuid does:
// 16 random bytes in URL-safe base64, never starting with '-' (the storage
// tool would read such an id as an option).
func newClusterID() string {
	for {
		var b [16]byte
		rand.Read(b[:])
		if id := base64.RawURLEncoding.EncodeToString(b[:]); id[0] != '-' {
			return id
		}
	}
}

// freePorts reserves n distinct free loopback ports. They stay the nodes'
// ports across restarts.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("kafkatest: no free port on 127.0.0.1: %w", err)
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// lock takes the machine-wide cluster lock (see [LockTimeout]).
func (c *Cluster) lock(ctx context.Context) error {
	lockDir := c.cfg.lockDir
	if lockDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		lockDir = filepath.Join(base, "kupgrade")
	}
	lockCtx, cancel := context.WithTimeoutCause(ctx, c.cfg.lockTimeout, fmt.Errorf("kafkatest: another cluster ran for longer than %v", c.cfg.lockTimeout))
	defer cancel()
	var err error
	c.release, err = acquireClusterLock(lockCtx, lockDir, c.name)
	if err == nil && c.cfg.containers != nil {
		err = c.sweepContainers(ctx)
	}
	return err
}

// boot starts ZooKeeper (ZooKeeper mode; when reopening, it waits for the
// last run's broker registrations to expire) or, when format is set, formats
// every KRaft node's storage; then it starts every node and waits until all
// are ready.
func (c *Cluster) boot(ctx context.Context, format bool) error {
	start := time.Now()
	if c.zk != nil {
		if err := c.zk.start(ctx, c); err != nil {
			return err
		}
		if !format { // reopened: the killed brokers' sessions outlive ZooKeeper's restart
			if err := c.waitStaleRegistrations(ctx); err != nil {
				return err
			}
		}
	} else if format {
		if err := c.formatAll(ctx); err != nil {
			return err
		}
	}
	for _, n := range c.list() {
		if err := n.start(); err != nil {
			return err
		}
	}
	errs := make([]error, len(c.list()))
	var wg sync.WaitGroup
	for i, n := range c.list() {
		wg.Go(func() { errs[i] = c.waitReady(ctx, n) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.cfg.logger.Info("cluster ready", "name", c.name, "mode", c.cfg.mode, "release", c.cfg.release, "nodes", len(c.list()), "took", time.Since(start))
	return nil
}

// formatAll formats every KRaft node's storage with the same cluster id, two
// at a time (each format is a short JVM run).
func (c *Cluster) formatAll(ctx context.Context) error {
	sem := make(chan struct{}, 2)
	errs := make([]error, len(c.list()))
	var wg sync.WaitGroup
	for i, n := range c.list() {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = c.format(ctx, n)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (c *Cluster) format(ctx context.Context, n *Process) error {
	n.mu.Lock()
	cfg := n.configLocked()
	dist := n.dist
	n.mu.Unlock()
	props := filepath.Join(n.dir, "server.properties")
	if err := writeProperties(props, cfg); err != nil {
		return err
	}
	share, exited := cdsFlags(dist, "storage-tool")
	defer exited()
	args := append(share, c.toolArgs(dist)...)
	args = append(args, "kafka.tools.StorageTool", "format", "-t", c.clusterID, "-c", props)
	if c.cfg.metadataVersion != "" {
		args = append(args, "--release-version", c.cfg.metadataVersion)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var out strings.Builder
	if err := c.runJava(ctx, dist, n, args, &out, &out); err != nil {
		return fmt.Errorf("kafkatest: format storage of node %d (Kafka %s): %v: %s", n.id, dist.Release, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// jvmArgs are the JVM options of a long-running node: a small heap and flags
// that start fast and spare CPU on small machines.
func (c *Cluster) jvmArgs(d *Distribution, heapMB int, nodeDir string) []string {
	return []string{
		"-Xms64m", "-Xmx" + strconv.Itoa(heapMB) + "m",
		"-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData", "-XX:+ExitOnOutOfMemoryError",
		"-Xshare:auto", "-Djava.awt.headless=true", "-Djava.net.preferIPv4Stack=true",
		"-Dlog4j.configuration=file:" + filepath.Join(c.dir, "log4j.properties"),
		"-Dlog4j2.configurationFile=" + filepath.Join(c.dir, "log4j2.properties"),
		"-Dkafka.logs.dir=" + filepath.Join(nodeDir, "logs"),
	}
}

// toolArgs are the JVM options of a short tool run (WARN logs to stderr).
func (c *Cluster) toolArgs(d *Distribution) []string {
	return []string{
		"-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData",
		"-Djava.net.preferIPv4Stack=true",
		"-Dlog4j.configuration=file:" + filepath.Join(c.dir, "tools-log4j.properties"),
		"-Dlog4j2.configurationFile=" + filepath.Join(c.dir, "tools-log4j2.properties"),
		"-Dkupgrade.kafkatest=" + c.name + "/tool",
		"-cp", d.Classpath(),
	}
}

// Tool runs one of Kafka's command-line tools (its main class, e.g.
// "org.apache.kafka.tools.FeatureCommand") from the jars of release and
// returns what it printed on stdout; stderr is included in the error if it
// fails. An empty release means the cluster's first release.
func (c *Cluster) Tool(ctx context.Context, release, mainClass string, args ...string) (string, error) {
	if release == "" {
		release = c.cfg.release
	}
	d, err := c.distribution(ctx, release)
	if err != nil {
		return "", err
	}
	var stdout, stderr strings.Builder
	if err := c.runJava(ctx, d, nil, append(append(c.toolArgs(d), mainClass), args...), &stdout, &stderr); err != nil {
		return stdout.String(), fmt.Errorf("kafkatest: %s %s: %v: %s", mainClass, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// runProcess runs a short-lived command to its end, started like every node
// (so it dies with this process, too).
func runProcess(cmd *exec.Cmd) error {
	if err := startProcess(cmd); err != nil {
		return err
	}
	return cmd.Wait()
}

// baseConfig is kafkatest's static config of a node for a release, before
// user overrides: loopback listeners, small internal topics and fast timeouts.
func (c *Cluster) baseConfig(n *Process, release string) map[string]string {
	major, _, _, _ := parseRelease(release)
	brokers := 0
	for _, m := range c.list() {
		if m.IsBroker() {
			brokers++
		}
	}
	rf := strconv.Itoa(min(3, max(brokers, 1)))
	minISR := strconv.Itoa(min(2, max(brokers, 1)))
	cfg := map[string]string{
		"log.dirs":                                 c.dataDir(filepath.Join(n.dir, "data")),
		"num.network.threads":                      "2",
		"num.io.threads":                           "2",
		"num.recovery.threads.per.data.dir":        "1",
		"background.threads":                       "2",
		"log.cleaner.dedupe.buffer.size":           "8388608",
		"log.cleaner.threads":                      "1",
		"offsets.topic.replication.factor":         rf,
		"offsets.topic.num.partitions":             "10",
		"transaction.state.log.replication.factor": rf,
		"transaction.state.log.min.isr":            minISR,
		"transaction.state.log.num.partitions":     "5",
		"group.initial.rebalance.delay.ms":         "0",
	}
	if !n.kraftLocked() {
		cfg["broker.id"] = strconv.Itoa(int(n.id))
		cfg["zookeeper.connect"] = c.zooKeeperConnect()
		cfg["zookeeper.session.timeout.ms"] = "12000" // tolerant of a busy 2-core machine; a killed broker is noticed after this
		cfg["listeners"] = "PLAINTEXT://" + n.Addr()
	} else {
		var voters []string
		for _, m := range c.list() {
			if m.IsController() {
				voters = append(voters, fmt.Sprintf("%d@%s", m.id, c.quorumAddr(m.id, m.controllerPort)))
			}
		}
		var listeners []string
		if n.IsBroker() {
			listeners = append(listeners, "PLAINTEXT://"+n.Addr())
			cfg["inter.broker.listener.name"] = "PLAINTEXT"
			cfg["broker.session.timeout.ms"] = "9000"
			cfg["broker.heartbeat.interval.ms"] = "1500"
		}
		if n.IsController() {
			listeners = append(listeners, "CONTROLLER://"+n.ControllerAddr())
		}
		roles := make([]string, len(n.roles))
		for i, r := range n.roles {
			roles[i] = string(r)
		}
		cfg["process.roles"] = strings.Join(roles, ",")
		cfg["node.id"] = strconv.Itoa(int(n.id))
		cfg["controller.quorum.voters"] = strings.Join(c.migrationVoters(voters), ",")
		cfg["controller.listener.names"] = "CONTROLLER"
		cfg["listener.security.protocol.map"] = "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
		cfg["listeners"] = strings.Join(listeners, ",")
		if major >= 4 && n.IsBroker() {
			cfg["share.coordinator.state.topic.replication.factor"] = rf
			cfg["share.coordinator.state.topic.min.isr"] = minISR
			cfg["share.coordinator.state.topic.num.partitions"] = "5"
		}
	}
	if n.rack != "" {
		cfg["broker.rack"] = n.rack
	}
	if c.security != nil {
		c.applySecurity(n, cfg)
	}
	if c.bridged() {
		c.bridgeConfig(n, cfg, release)
	}
	return cfg
}

// list returns the current nodes, sorted by id.
func (c *Cluster) list() []*Process {
	c.nodesMu.RLock()
	defer c.nodesMu.RUnlock()
	return slices.Clone(c.nodes)
}

// Name returns the cluster's name, unique per cluster ("kt-1a2b3c4d"); every
// JVM it starts carries it in -Dkupgrade.kafkatest.
func (c *Cluster) Name() string { return c.name }

// Mode returns the cluster's mode.
func (c *Cluster) Mode() compat.Mode { return c.cfg.mode }

// Dir returns the cluster's directory. It holds [StateFile], so that
// [Reopen] can start the cluster again from it.
func (c *Cluster) Dir() string { return c.dir }

// ClusterID returns the KRaft cluster id the storage was formatted with ("" in
// ZooKeeper mode, where Kafka makes its own).
func (c *Cluster) ClusterID() string { return c.clusterID }

// ZooKeeperAddr returns the ZooKeeper server's address, "" in KRaft mode.
func (c *Cluster) ZooKeeperAddr() string {
	if c.zk == nil {
		return ""
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.zk.port))
}

// Addrs returns the listener of every broker-role node: the seed brokers for
// a client.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, n := range c.list() {
		if n.IsBroker() {
			out = append(out, n.Addr())
		}
	}
	return out
}

// ControllerAddrs returns the controller listener of every KRaft
// controller-role node (none in ZooKeeper mode).
func (c *Cluster) ControllerAddrs() []string {
	var out []string
	for _, n := range c.list() {
		if n.IsController() {
			out = append(out, n.ControllerAddr())
		}
	}
	return out
}

// Node returns the node with the given id, or nil.
func (c *Cluster) Node(id int32) *Process {
	for _, n := range c.list() {
		if n.id == id {
			return n
		}
	}
	return nil
}

// All returns every node, sorted by id.
func (c *Cluster) All() []*Process { return c.list() }

// Brokers returns the nodes with the broker role, sorted by id.
func (c *Cluster) Brokers() []*Process {
	var out []*Process
	for _, n := range c.list() {
		if n.IsBroker() {
			out = append(out, n)
		}
	}
	return out
}

// Controllers returns the nodes with the KRaft controller role, sorted by id.
func (c *Cluster) Controllers() []*Process {
	var out []*Process
	for _, n := range c.list() {
		if n.IsController() {
			out = append(out, n)
		}
	}
	return out
}

// NewClient returns a franz-go client seeded with the cluster's brokers.
// The caller closes it.
func (c *Cluster) NewClient(opts ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append(append([]kgo.Opt{kgo.SeedBrokers(c.Addrs()...)}, c.clientSecurity()...), opts...)...)
}

// Client returns a franz-go client seeded with the cluster's brokers, closed
// when the test ends.
func (c *Cluster) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := c.NewClient(opts...)
	if err != nil {
		t.Fatalf("kafkatest: client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func (c *Cluster) node(id int32) (*Process, error) {
	if n := c.Node(id); n != nil {
		return n, nil
	}
	return nil, fmt.Errorf("kafkatest: cluster %s has no node %d", c.name, id)
}

// StopNode stops a node gracefully (see [Node.Stop]).
func (c *Cluster) StopNode(ctx context.Context, id int32) error {
	n, err := c.node(id)
	if err != nil {
		return err
	}
	return n.Stop(ctx)
}

// StartNode starts a stopped or killed node and waits until it is ready. In
// ZooKeeper mode, a node that was killed starts once ZooKeeper has expired
// its last session (up to zookeeper.session.timeout.ms, 12s), which would
// otherwise make it exit at startup.
func (c *Cluster) StartNode(ctx context.Context, id int32) error {
	n, err := c.node(id)
	if err != nil {
		return err
	}
	if err := c.beforeStart(ctx, n); err != nil {
		return err
	}
	if err := n.start(); err != nil {
		return err
	}
	return c.waitReady(ctx, n)
}

// Nodes lists the cluster's Kafka nodes with the release each runs. It
// implements [node.Orchestrator].
func (c *Cluster) Nodes(ctx context.Context) ([]node.Node, error) {
	out := []node.Node{}
	for _, n := range c.list() {
		addr := n.Addr()
		host, port, _ := net.SplitHostPort(addr)
		p, _ := strconv.Atoi(port)
		out = append(out, node.Node{ID: n.id, Roles: n.Roles(), Host: host, Port: p, Rack: n.rack, Version: n.Release()})
	}
	return out, ctx.Err()
}

// Restart stops a node gracefully, applies ch (another release and/or static
// config keys set and unset) and starts it again, returning once it is ready
// (a broker listed in metadata, a controller answering). A release that cannot
// be resolved is reported before the node is touched. If the node does not
// come back, the error names it and quotes its log. It implements
// [node.Orchestrator].
func (c *Cluster) Restart(ctx context.Context, id int32, ch node.Change) error {
	n, err := c.node(id)
	if err != nil {
		return err
	}
	if err := ch.Validate(); err != nil {
		return err
	}
	var dist *Distribution
	if ch.Version != "" {
		major, minor, _, err := parseRelease(ch.Version)
		if err != nil {
			return err
		}
		if c.zkAfter(n, ch) && major >= 4 {
			return fmt.Errorf("kafkatest: node %d cannot run Kafka %s: ZooKeeper mode ends with 3.9 (migrate to KRaft first)", id, ch.Version)
		}
		if c.cfg.mode == compat.ModeKRaft && major == 3 && minor < 7 {
			return fmt.Errorf("kafkatest: node %d cannot run Kafka %s: kafkatest runs KRaft on 3.7.0 and newer", id, ch.Version)
		}
		if dist, err = c.distribution(ctx, ch.Version); err != nil {
			return err
		}
	}
	if err := n.Stop(ctx); err != nil {
		return fmt.Errorf("kafkatest: restart node %d: %w", id, err)
	}
	n.apply(dist, ch)
	c.saveState()
	if err := c.beforeStart(ctx, n); err != nil { // the stop timed out and killed it
		return err
	}
	if err := n.start(); err != nil {
		return err
	}
	return c.waitReady(ctx, n)
}

// Close kills every process of the cluster at once (no controlled shutdown:
// use [Cluster.Stop] to stop gracefully first), removes the cluster's
// directory if kafkatest made it, and lets the next cluster on the machine
// start. It is idempotent.
func (c *Cluster) Close() {
	c.closeOnce.Do(func() {
		var procs []*process
		c.nodesMu.RLock()
		all := append(slices.Clone(c.nodes), c.retired...)
		c.nodesMu.RUnlock()
		for _, n := range all {
			if p := n.signal(syscall.SIGKILL, Killed); p != nil {
				procs = append(procs, p)
			}
		}
		if c.zk != nil {
			if p := c.zk.kill(); p != nil {
				procs = append(procs, p)
			}
		}
		for _, p := range procs {
			<-p.exited
		}
		c.closeContainers()
		if c.ownDir {
			os.RemoveAll(c.dir)
		}
		if c.release != nil {
			c.release()
		}
	})
}

// Stop stops every node gracefully, brokers first, then controllers, then
// ZooKeeper, so that data on disk is clean. The cluster can then only be
// closed; nodes can be started again one by one with StartNode.
func (c *Cluster) Stop(ctx context.Context) error {
	var errs []error
	for _, n := range c.list() {
		if n.IsBroker() && !n.IsController() {
			errs = append(errs, n.Stop(ctx))
		}
	}
	for _, n := range c.list() {
		if n.IsController() {
			errs = append(errs, n.Stop(ctx))
		}
	}
	if c.zk != nil {
		errs = append(errs, c.zk.stop(ctx))
	}
	return errors.Join(errs...)
}

// waitReady waits until a node is ready: a broker-role node is listed in
// the metadata it serves (a KRaft broker is listed once unfenced) and in that
// of every other running broker, a controller answers ApiVersions. It gives
// up when the process exits (quoting its log) or after the start timeout.
func (c *Cluster) waitReady(ctx context.Context, n *Process) error {
	ctx, cancel := context.WithTimeoutCause(ctx, c.cfg.startTimeout,
		fmt.Errorf("kafkatest: node %d not ready within %v of its start (see %s)", n.id, c.cfg.startTimeout, n.LogPath()))
	defer cancel()
	exited := n.exitedChan()
	start := time.Now()
	check := func(ctx context.Context) error {
		if !n.IsBroker() {
			return answersAPIVersions(ctx, n.ControllerAddr(), c.clientSecurity()...)
		}
		if err := brokerLists(ctx, n.Addr(), n.id, c.clientSecurity()...); err != nil {
			return fmt.Errorf("broker %d not yet in its own metadata (fenced or starting): %w", n.id, err)
		}
		// The others learn of it a moment later; a client of the cluster
		// may ask any of them.
		for _, m := range c.list() {
			if m == n || !m.IsBroker() || m.Status() != Running {
				continue
			}
			if err := brokerLists(ctx, m.Addr(), n.id, c.clientSecurity()...); err != nil {
				return fmt.Errorf("broker %d not yet in the metadata of broker %d: %w", n.id, m.id, err)
			}
		}
		return nil
	}
	err := poll(ctx, exited, check)
	if err == nil {
		c.cfg.logger.Info("node ready", "node", n.id, "took", time.Since(start))
		return nil
	}
	select {
	case <-exited:
		n.mu.Lock()
		n.reapLocked()
		perr := n.proc.err
		n.mu.Unlock()
		return fmt.Errorf("kafkatest: node %d (Kafka %s) exited during start (%v); from %s:\n%s", n.id, n.Release(), perr, n.LogPath(), lastErrorLines(n.LogPath(), 8))
	default:
	}
	return err
}

// poll runs check with a growing pause until it succeeds, ctx ends or exited
// is closed. The pause is capped so that readiness is noticed quickly.
func poll(ctx context.Context, exited <-chan struct{}, check func(context.Context) error) error {
	wait := 100 * time.Millisecond
	var last error
	for {
		actx, cancel := context.WithTimeout(ctx, 3*time.Second)
		last = check(actx)
		cancel()
		if last == nil {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (last check: %v)", context.Cause(ctx), last)
		case <-exited:
			t.Stop()
			return errors.New("process exited")
		case <-t.C:
		}
		wait = min(wait*3/2, time.Second)
	}
}

// oneShotClient is a client that talks to one address only and does not retry.
// opts add security (TLS, SASL).
func oneShotClient(addr string, opts ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.DialTimeout(2 * time.Second), kgo.RequestRetries(0),
		kgo.MetadataMinAge(10 * time.Millisecond), kgo.RetryTimeout(2 * time.Second)}, opts...)...)
}

// brokerLists asks the broker at addr whether its metadata lists broker id.
func brokerLists(ctx context.Context, addr string, id int32, opts ...kgo.Opt) error {
	cl, err := oneShotClient(addr, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{} // brokers only
	resp, err := req.RequestWith(ctx, cl.SeedBrokers()[0])
	if err != nil {
		return err
	}
	for _, b := range resp.Brokers {
		if b.NodeID == id {
			return nil
		}
	}
	return errors.New("not listed")
}

func answersAPIVersions(ctx context.Context, addr string, opts ...kgo.Opt) error {
	cl, err := oneShotClient(addr, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	_, err = kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl.SeedBrokers()[0])
	return err
}

var _ node.Liveness = (*Cluster)(nil)

// Alive reports whether node id's process runs (not paused, stopped or
// exited). It implements [node.Liveness].
func (c *Cluster) Alive(ctx context.Context, id int32) (bool, error) {
	n, err := c.node(id)
	if err != nil {
		return false, err
	}
	return n.Status() == Running, nil
}

var _ node.Provisioner = (*Cluster)(nil)

// Provision starts a new broker on spec.Version (the cluster's first release
// if empty) with the next free node id, and returns once it is ready (listed
// in metadata). It implements [node.Provisioner]. Only broker-only nodes
// can be added, and, to a ZooKeeper-mode cluster, KRaft controllers for a
// migration (see migrate.go).
func (c *Cluster) Provision(ctx context.Context, spec node.Spec) (node.Node, error) {
	if c.zk != nil && slices.Equal(spec.Roles, []node.Role{node.RoleController}) {
		return c.provisionController(ctx, spec) // a migration to KRaft (migrate.go)
	}
	if len(spec.Roles) != 0 && !slices.Equal(spec.Roles, []node.Role{node.RoleBroker}) {
		return node.Node{}, fmt.Errorf("kafkatest: can only add brokers, not %v", spec.Roles)
	}
	release := spec.Version
	if release == "" {
		release = c.cfg.release
	}
	major, _, _, err := parseRelease(release)
	if err != nil {
		return node.Node{}, err
	}
	if c.cfg.mode == compat.ModeZooKeeper && major >= 4 {
		return node.Node{}, fmt.Errorf("kafkatest: Kafka %s has no ZooKeeper mode", release)
	}
	dist, err := c.distribution(ctx, release)
	if err != nil {
		return node.Node{}, err
	}
	ports, err := freePorts(1)
	if err != nil {
		return node.Node{}, err
	}
	c.nodesMu.Lock()
	id := c.nextID
	c.nextID++
	n := &Process{c: c, id: id, roles: []node.Role{node.RoleBroker}, dist: dist, brokerPort: ports[0], rack: spec.Rack,
		override: maps.Clone(c.cfg.brokerConfig), removed: map[string]bool{}, dir: filepath.Join(c.dir, "node-"+strconv.Itoa(int(id)))}
	maps.Copy(n.override, spec.Config)
	c.nodes = append(c.nodes, n)
	c.nodesMu.Unlock()
	if err := os.MkdirAll(filepath.Join(n.dir, "data"), 0o755); err != nil {
		return node.Node{}, fmt.Errorf("kafkatest: %w", err)
	}
	c.saveState()
	if c.cfg.mode == compat.ModeKRaft {
		if err := c.format(ctx, n); err != nil {
			return node.Node{}, err
		}
	}
	if err := n.start(); err != nil {
		return node.Node{}, err
	}
	if err := c.waitReady(ctx, n); err != nil {
		return node.Node{}, err
	}
	return node.Node{ID: id, Roles: n.Roles(), Host: "127.0.0.1", Port: n.brokerPort, Rack: n.rack, Version: release}, nil
}

// Retire stops node id gracefully and removes it from the cluster for good
// (its directory stays until Close). It implements [node.Provisioner].
func (c *Cluster) Retire(ctx context.Context, id int32) error {
	n, err := c.node(id)
	if err != nil {
		return err
	}
	if n.IsController() && c.zk == nil { // a ZooKeeper cluster's controllers can go: a migration reverted
		return fmt.Errorf("kafkatest: node %d is a controller; only brokers can be retired", id)
	}
	if err := n.Stop(ctx); err != nil {
		return err
	}
	c.nodesMu.Lock()
	c.nodes = slices.DeleteFunc(c.nodes, func(m *Process) bool { return m == n })
	c.retired = append(c.retired, n)
	c.nodesMu.Unlock()
	c.saveState()
	c.cfg.logger.Info("node retired", "node", id)
	return nil
}
