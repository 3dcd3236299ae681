package kafkatest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/internal/atomicfile"
	"github.com/kupgrade/kupgrade/node"
)

// StateFile is the file in a cluster's directory (see [Cluster.Dir]) that
// records what [Reopen] needs: the cluster's name, mode, ports and cluster
// id, and each node's roles, release and static config as of its last start.
// The cluster rewrites it whenever a node's release or config changes.
const StateFile = "kafkatest-cluster.json"

type savedCluster struct {
	Name           string      `json:"name"`
	Mode           compat.Mode `json:"mode"`
	Release        string      `json:"release"` // the first release: ZooKeeper's and tools' default
	ClusterID      string      `json:"clusterId,omitempty"`
	ZooKeeperPort  int         `json:"zooKeeperPort,omitempty"`
	NextID         int32       `json:"nextId"`
	BrokerHeapMB   int         `json:"brokerHeapMB"`
	ControllerHeap int         `json:"controllerHeapMB"`
	Nodes          []savedNode `json:"nodes"`
}

type savedNode struct {
	ID             int32             `json:"id"`
	Roles          []node.Role       `json:"roles"`
	BrokerPort     int               `json:"brokerPort,omitempty"`
	ControllerPort int               `json:"controllerPort,omitempty"`
	Rack           string            `json:"rack,omitempty"`
	Release        string            `json:"release"`
	Override       map[string]string `json:"override,omitempty"`
	Removed        []string          `json:"removed,omitempty"`
}

// saveState writes [StateFile] atomically (a crash leaves the old file or
// the new one). Errors are logged, not returned: the state file only matters
// to a later Reopen.
func (c *Cluster) saveState() {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	c.nodesMu.RLock()
	s := savedCluster{Name: c.name, Mode: c.cfg.mode, Release: c.cfg.release, ClusterID: c.clusterID,
		NextID: c.nextID, BrokerHeapMB: c.cfg.brokerHeapMB, ControllerHeap: c.cfg.controllerHeap}
	nodes := slices.Clone(c.nodes)
	c.nodesMu.RUnlock()
	if c.zk != nil {
		s.ZooKeeperPort = c.zk.port
	}
	for _, n := range nodes {
		n.mu.Lock()
		s.Nodes = append(s.Nodes, savedNode{ID: n.id, Roles: slices.Clone(n.roles), BrokerPort: n.brokerPort, ControllerPort: n.controllerPort,
			Rack: n.rack, Release: n.dist.Release, Override: maps.Clone(n.override), Removed: slices.Sorted(maps.Keys(n.removed))})
		n.mu.Unlock()
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err == nil {
		err = atomicfile.Write(filepath.Join(c.dir, StateFile), append(b, '\n'))
	}
	if err != nil {
		c.cfg.logger.Warn("cannot save cluster state; Reopen will not work", "dir", c.dir, "err", err)
	}
}

// Reopen starts again a cluster whose processes are gone (they die with the
// process that started them) from its directory dir, as returned by
// [Cluster.Dir]: same name, ports, cluster id and data, each node on the
// release and static config it last started with. It returns once every node
// is ready, like [New], and waits likewise for any other kafkatest cluster on
// the machine to close. Options that shape a new cluster (mode, node counts,
// configs, racks, [Dir]) are ignored; timeouts, logging and resolving apply.
// The directory is kept by Close. Reopen fails, naming the node, if one of
// the recorded ports is now taken by another process.
func Reopen(ctx context.Context, dir string, opts ...Option) (*Cluster, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return nil, fmt.Errorf("kafkatest: reopen %s: %w", dir, err)
	}
	var s savedCluster
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("kafkatest: reopen %s: %s is damaged: %w", dir, StateFile, err)
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o.apply(&cfg)
	}
	switch s.Mode {
	case compat.ModeKRaft, compat.ModeZooKeeper:
		cfg.mode = s.Mode
	default:
		return nil, fmt.Errorf("kafkatest: reopen %s: %s records mode %v, which kafkatest does not run", dir, StateFile, s.Mode)
	}
	if len(s.Nodes) == 0 {
		return nil, fmt.Errorf("kafkatest: reopen %s: %s lists no nodes", dir, StateFile)
	}
	cfg.release, cfg.brokerHeapMB, cfg.controllerHeap = s.Release, s.BrokerHeapMB, s.ControllerHeap
	c := &Cluster{cfg: cfg, name: s.Name, dir: dir, clusterID: s.ClusterID, nextID: s.NextID, dists: map[string]*Distribution{}}
	first, err := c.distribution(ctx, s.Release)
	if err != nil {
		return nil, err
	}
	for _, sn := range s.Nodes {
		d, err := c.distribution(ctx, sn.Release)
		if err != nil {
			return nil, err
		}
		n := &Process{c: c, id: sn.ID, roles: sn.Roles, brokerPort: sn.BrokerPort, controllerPort: sn.ControllerPort, rack: sn.Rack,
			dist: d, override: maps.Clone(sn.Override), removed: map[string]bool{}, dir: filepath.Join(dir, "node-"+strconv.Itoa(int(sn.ID)))}
		if n.override == nil {
			n.override = map[string]string{}
		}
		for _, k := range sn.Removed {
			n.removed[k] = true
		}
		c.nodes = append(c.nodes, n)
	}
	slices.SortFunc(c.nodes, func(a, b *Process) int { return int(a.id - b.id) })
	if cfg.mode == compat.ModeZooKeeper {
		c.zk = &zookeeper{dir: filepath.Join(dir, "zookeeper"), port: s.ZooKeeperPort, dist: first}
	}
	if err := c.lock(ctx); err != nil {
		return nil, err
	}
	if err := c.portsFree(); err != nil {
		c.Close()
		return nil, err
	}
	if err := writeLogConfigs(c.dir); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.boot(ctx, false); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// portsFree checks that no other process listens on the recorded ports.
func (c *Cluster) portsFree() error {
	check := func(what string, port int) error {
		if port == 0 {
			return nil
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			return fmt.Errorf("kafkatest: reopen %s: port %d of %s is taken by another process: %w", c.name, port, what, err)
		}
		return l.Close()
	}
	var errs []error
	if c.zk != nil {
		errs = append(errs, check("ZooKeeper", c.zk.port))
	}
	for _, n := range c.list() {
		errs = append(errs, check(fmt.Sprintf("node %d", n.id), n.brokerPort), check(fmt.Sprintf("node %d", n.id), n.controllerPort))
	}
	return errors.Join(errs...)
}
