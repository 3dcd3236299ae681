package kafkatest

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/node"
)

// A ZooKeeper-mode cluster can be migrated to KRaft, as Apache Kafka's
// "ZooKeeper to KRaft Migration" describes, through the Orchestrator
// interfaces alone:
//
//   - [Cluster.Provision] with Roles {controller} starts a KRaft controller
//     next to the ZooKeeper-mode brokers: node id spec.NodeID, storage
//     formatted with spec.ClusterID (the ZooKeeper cluster's id) at
//     spec.MetadataVersion, spec.Config on top (for a migration:
//     zookeeper.metadata.migration.enable=true and zookeeper.connect).
//   - A broker restarted with zookeeper.metadata.migration.enable=true set
//     gets, besides its ZooKeeper settings, what it needs to reach the
//     controllers: controller.quorum.voters, controller.listener.names and
//     the CONTROLLER entry of listener.security.protocol.map.
//   - A broker restarted with process.roles set runs in KRaft mode: kafkatest
//     gives it node.id, the quorum and its listeners, and no ZooKeeper
//     setting. Unsetting process.roles again (a rollback) makes it a
//     ZooKeeper-mode broker, with broker.id and zookeeper.connect restored
//     even if an earlier change unset them.
//
// Cluster.Mode stays [compat.ModeZooKeeper]: it is the mode the cluster was
// made in; each node's mode follows its config.

// kraftLocked reports whether node n runs in KRaft mode: every node of a
// KRaft cluster, a controller, and a broker of a ZooKeeper cluster whose
// static config names process.roles. n.mu is held.
func (n *Process) kraftLocked() bool {
	return n.c.cfg.mode == compat.ModeKRaft || n.IsController() || n.override["process.roles"] != ""
}

// migrationConfig completes the config of node n (n.mu held) for the mode
// it runs in: a ZooKeeper-mode broker of a cluster with KRaft controllers
// gets what migration mode needs, and keeps its broker.id and
// zookeeper.connect whatever earlier changes unset.
func (c *Cluster) migrationConfig(n *Process, base, cfg map[string]string) {
	if c.zk == nil || n.kraftLocked() {
		return
	}
	for _, k := range []string{"broker.id", "zookeeper.connect"} {
		if _, ok := cfg[k]; !ok {
			cfg[k] = base[k]
		}
	}
	if cfg["zookeeper.metadata.migration.enable"] != "true" {
		return
	}
	cfg["controller.quorum.voters"] = strings.Join(c.migrationVoters(nil), ",")
	cfg["controller.listener.names"] = "CONTROLLER"
	cfg["listener.security.protocol.map"] = c.protocolMap("PLAINTEXT")
}

// migrationVoters returns voters (id@host:port of the running
// controllers) completed, in a ZooKeeper cluster being migrated, with the
// controllers of the quorum that are not provisioned yet (see
// [node.Spec.Quorum]): a static quorum names every voter from the start. It
// builds the list itself when voters is nil.
func (c *Cluster) migrationVoters(voters []string) []string {
	if c.zk == nil {
		return voters
	}
	c.nodesMu.RLock()
	defer c.nodesMu.RUnlock()
	ports := map[int32]int{}
	for _, m := range c.nodes {
		if m.IsController() {
			ports[m.id] = m.controllerPort
		}
	}
	maps.Copy(ports, c.quorumPorts)
	out := []string{}
	for _, id := range slices.Sorted(maps.Keys(ports)) {
		out = append(out, fmt.Sprintf("%d@%s", id, c.quorumAddr(id, ports[id])))
	}
	return out
}

// zkAfter reports whether node n runs in ZooKeeper mode once ch is applied.
func (c *Cluster) zkAfter(n *Process, ch node.Change) bool {
	if c.zk == nil || n.IsController() {
		return false
	}
	if ch.Set["process.roles"] != "" {
		return false
	}
	if slices.Contains(ch.Unset, "process.roles") {
		return true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return !n.kraftLocked()
}

// provisionController starts a KRaft controller in a ZooKeeper-mode
// cluster, for a migration (see [Cluster.Provision]).
func (c *Cluster) provisionController(ctx context.Context, spec node.Spec) (node.Node, error) {
	if spec.NodeID <= 0 {
		return node.Node{}, fmt.Errorf("kafkatest: a controller for a ZooKeeper cluster needs an explicit node id (spec.NodeID)")
	}
	if spec.ClusterID == "" {
		return node.Node{}, fmt.Errorf("kafkatest: a controller for a ZooKeeper cluster needs the cluster's id (spec.ClusterID)")
	}
	if c.Node(spec.NodeID) != nil {
		return node.Node{}, fmt.Errorf("kafkatest: node id %d is taken", spec.NodeID)
	}
	release := spec.Version
	if release == "" {
		release = c.cfg.release
	}
	major, minor, _, err := parseRelease(release)
	if err != nil {
		return node.Node{}, err
	}
	if major != 3 || minor < 4 {
		return node.Node{}, fmt.Errorf("kafkatest: Kafka %s cannot migrate from ZooKeeper (3.4 to 3.9 can)", release)
	}
	dist, err := c.distribution(ctx, release)
	if err != nil {
		return node.Node{}, err
	}
	quorum := spec.Quorum
	if !slices.Contains(quorum, spec.NodeID) {
		quorum = append(slices.Clone(quorum), spec.NodeID)
	}
	// Every voter of the quorum gets its port now, so that each
	// controller's controller.quorum.voters names all of them.
	c.nodesMu.Lock()
	if c.quorumPorts == nil {
		c.quorumPorts = map[int32]int{}
	}
	var missing []int32
	for _, id := range quorum {
		if _, ok := c.quorumPorts[id]; !ok {
			missing = append(missing, id)
		}
	}
	c.nodesMu.Unlock()
	ports, err := freePorts(len(missing))
	if err != nil {
		return node.Node{}, err
	}
	c.nodesMu.Lock()
	for i, id := range missing {
		c.quorumPorts[id] = ports[i]
	}
	port := c.quorumPorts[spec.NodeID]
	c.nodesMu.Unlock()
	n := &Process{c: c, id: spec.NodeID, roles: []node.Role{node.RoleController}, dist: dist, controllerPort: port,
		override: maps.Clone(spec.Config), removed: map[string]bool{}, dir: filepath.Join(c.dir, "node-"+strconv.Itoa(int(spec.NodeID)))}
	if n.override == nil {
		n.override = map[string]string{}
	}
	c.nodesMu.Lock()
	c.nodes = append(c.nodes, n)
	slices.SortFunc(c.nodes, func(a, b *Process) int { return int(a.id - b.id) })
	c.nodesMu.Unlock()
	if err := os.MkdirAll(filepath.Join(n.dir, "data"), 0o755); err != nil {
		return node.Node{}, fmt.Errorf("kafkatest: %w", err)
	}
	c.saveState()
	if err := c.formatWith(ctx, n, spec.ClusterID, spec.MetadataVersion); err != nil {
		return node.Node{}, err
	}
	if err := n.start(); err != nil {
		return node.Node{}, err
	}
	if err := c.waitReady(ctx, n); err != nil {
		return node.Node{}, err
	}
	return node.Node{ID: n.id, Roles: n.Roles(), Host: "127.0.0.1", Port: n.controllerPort, Version: release}, nil
}

// formatWith formats node n's storage with cluster id and, if set,
// metadataVersion.
func (c *Cluster) formatWith(ctx context.Context, n *Process, clusterID, metadataVersion string) error {
	n.mu.Lock()
	cfg := n.configLocked()
	dist := n.dist
	n.mu.Unlock()
	props := filepath.Join(n.dir, "server.properties")
	if err := writeProperties(props, cfg); err != nil {
		return err
	}
	args := append(c.toolArgs(dist), "kafka.tools.StorageTool", "format", "-t", clusterID, "-c", props)
	if metadataVersion != "" {
		args = append(args, "--release-version", metadataVersion)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var out strings.Builder
	cmd := exec.CommandContext(ctx, dist.Java, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := runProcess(cmd); err != nil {
		return fmt.Errorf("kafkatest: format storage of node %d (Kafka %s): %v: %s", n.id, dist.Release, err, strings.TrimSpace(out.String()))
	}
	return nil
}
