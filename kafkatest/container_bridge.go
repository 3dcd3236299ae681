package kafkatest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// Bridge networking, the default of [Containers]. Each cluster gets a
// user-defined bridge network of its own, named and labelled like its
// containers (so Close, the watchdog and the sweep of dead owners remove
// it), and each container joins it under an alias: "node-<id>" for a node,
// "zookeeper" for the ZooKeeper server. Kafka returns advertised endpoints
// in its metadata, and this machine cannot resolve the aliases, so a node
// has two listeners per role:
//
//   - for this machine's clients, the node's port P (the one [Process.Addr]
//     and [Process.ControllerAddr] name), bound on every interface of the
//     container and published on 127.0.0.1:P only, advertised as
//     127.0.0.1:P: the broker listener (PLAINTEXT, or SASL_SSL with
//     [Secure]) and, on a controller, CONTROLLER_HOST;
//   - for the nodes among themselves, by alias, on fixed ports (each
//     container has a network namespace of its own): INTERNAL on
//     node-<id>:9092, the inter-broker listener, and CONTROLLER on
//     node-<id>:9093, the first of controller.listener.names, the one the
//     quorum's voters and the brokers use.
//
// The brokers' zookeeper.connect names zookeeper:<port>; ZooKeeper's port is
// published on 127.0.0.1 too, at the same number, and
// [Cluster.ZooKeeperConnect] is what a client on this machine uses instead
// (see upgrade.ZooKeeperConnect). Tools ([Cluster.Tool]) run in containers
// on the cluster's network; the node addresses of this machine among their
// arguments are rewritten to the nodes' internal listeners.

// Listener names and in-container ports of bridge networking.
const (
	internalListener       = "INTERNAL"        // brokers among themselves, by alias
	hostControllerListener = "CONTROLLER_HOST" // this machine's clients of a controller
	internalBrokerPort     = 9092
	internalControllerPort = 9093
	zooKeeperAlias         = "zookeeper"
)

// ContainerHostNetwork runs every container with host networking instead of
// the default, a bridge network per cluster with the clients' ports
// published on 127.0.0.1: the nodes then listen on this machine's loopback
// directly, with one listener per role as on JVMs, and the brokers'
// zookeeper.connect names 127.0.0.1. It needs a Linux engine (an engine in a
// virtual machine has its own loopback) and suits engines that cannot make
// networks or publish ports; [LocalContainers] uses it.
func ContainerHostNetwork() ContainerOption {
	return containerOptionFunc(func(c *containers) { c.hostNetwork = true })
}

// bridged reports whether the cluster's containers use bridge networking.
func (c *Cluster) bridged() bool {
	return c.cfg.containers != nil && !c.cfg.containers.hostNetwork
}

// nodeAlias is node id's name on the cluster's network.
func nodeAlias(id int32) string { return "node-" + strconv.Itoa(int(id)) }

// quorumAddr is where the other nodes reach controller id, whose controller
// port on this machine is port.
func (c *Cluster) quorumAddr(id int32, port int) string {
	if c.bridged() {
		return net.JoinHostPort(nodeAlias(id), strconv.Itoa(internalControllerPort))
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// zooKeeperConnect is the brokers' zookeeper.connect.
func (c *Cluster) zooKeeperConnect() string {
	host := "127.0.0.1"
	if c.bridged() {
		host = zooKeeperAlias
	}
	return net.JoinHostPort(host, strconv.Itoa(c.zk.port)) + "/" + c.name
}

// ZooKeeperConnect returns the ZooKeeper connect string ("host:port/chroot")
// a client on this machine uses to reach the ZooKeeper the brokers use, ""
// in KRaft mode. It is the brokers' zookeeper.connect, except with bridge
// networking ([Containers]), where the brokers name ZooKeeper by its alias
// on the cluster's network, which this machine cannot resolve: give this
// address to the Runner and to Inspect with upgrade.ZooKeeperConnect.
func (c *Cluster) ZooKeeperConnect() string {
	if c.zk == nil {
		return ""
	}
	return c.ZooKeeperAddr() + "/" + c.name
}

// protocolMap is listener.security.protocol.map with every listener of the
// cluster's networking on proto (PLAINTEXT, or SASL_SSL with [Secure]).
func (c *Cluster) protocolMap(proto string) string {
	names := []string{"CONTROLLER", proto}
	if c.bridged() {
		names = []string{"CONTROLLER", hostControllerListener, proto, internalListener}
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n + ":" + proto
	}
	return strings.Join(out, ",")
}

// bridgeConfig rewrites the listeners of node n's base config (for Kafka
// release) for bridge networking (see above).
//
// A controller advertises CONTROLLER_HOST as 127.0.0.1:<port> from Kafka 3.9
// on (KIP-853 lets controllers have advertised.listeners): kupgrade matches
// the controller addresses it is given with those a controller reports
// (DescribeCluster to a controller answers with the endpoints of the
// listener asked). Before 3.9 a controller reports its bind address, so
// this machine's clients cannot tell which controller an address is.
func (c *Cluster) bridgeConfig(n *Process, cfg map[string]string, release string) {
	proto := "PLAINTEXT"
	if c.security != nil {
		proto = secureListenerName
		for _, l := range []string{internalListener, hostControllerListener} {
			l = strings.ToLower(l)
			s := strings.ToLower(secureListenerName)
			cfg["listener.name."+l+".plain.sasl.jaas.config"] = cfg["listener.name."+s+".plain.sasl.jaas.config"]
			cfg["listener.name."+l+".scram-sha-512.sasl.jaas.config"] = cfg["listener.name."+s+".scram-sha-512.sasl.jaas.config"]
		}
	}
	var listeners, advertised []string
	if n.IsBroker() {
		internal := internalListener + "://" + net.JoinHostPort(nodeAlias(n.id), strconv.Itoa(internalBrokerPort))
		listeners = append(listeners, proto+"://:"+strconv.Itoa(n.brokerPort), internal)
		advertised = append(advertised, proto+"://"+n.Addr(), internal)
		cfg["inter.broker.listener.name"] = internalListener
		delete(cfg, "security.inter.broker.protocol") // one or the other
	}
	if n.IsController() {
		internal := "CONTROLLER://" + c.quorumAddr(n.id, n.controllerPort)
		listeners = append(listeners, internal, hostControllerListener+"://:"+strconv.Itoa(n.controllerPort))
		if major, minor, _, err := parseRelease(release); err == nil && (major > 3 || minor >= 9) {
			advertised = append(advertised, internal, hostControllerListener+"://"+n.ControllerAddr())
		}
	}
	cfg["listeners"] = strings.Join(listeners, ",")
	if len(advertised) > 0 {
		cfg["advertised.listeners"] = strings.Join(advertised, ",")
	}
	cfg["listener.security.protocol.map"] = c.protocolMap(proto)
	if cfg["controller.listener.names"] != "" {
		cfg["controller.listener.names"] = "CONTROLLER," + hostControllerListener
	}
	if c.zk != nil && cfg["zookeeper.connect"] != "" {
		cfg["zookeeper.connect"] = c.zooKeeperConnect()
	}
}

// publishedPorts returns the ports of role's container that this machine's
// clients use ("node-<id>" or "zookeeper"; none for a tool).
func (c *Cluster) publishedPorts(role string) []int {
	if role == "zookeeper" && c.zk != nil {
		return []int{c.zk.port}
	}
	id, ok := strings.CutPrefix(role, "node-")
	if !ok {
		return nil
	}
	i, err := strconv.Atoi(id)
	if err != nil {
		return nil
	}
	n := c.Node(int32(i))
	if n == nil {
		return nil
	}
	var out []int
	if n.IsBroker() {
		out = append(out, n.brokerPort)
	}
	if n.IsController() {
		out = append(out, n.controllerPort)
	}
	return out
}

// dnsOptions bound a container's name lookups. The engine's resolver answers
// the aliases of running containers at once, but forwards a name it does not
// know (the alias of a node whose container is not running: the storage tool
// formatting node 1 resolves the other voters; a node resolves a peer being
// restarted) to the engine's upstream servers, and where those are not
// reachable (a machine without a network) each lookup took 10s per address
// family: formatting three KRaft nodes took 75s instead of 5s, and a broker
// reconnecting to a restarted peer waited 20s. With these, such a lookup
// fails within a second.
var dnsOptions = []string{"timeout:1", "attempts:1"}

// bridgeRequest puts a container request on the cluster's network under
// role's alias, with role's ports published on 127.0.0.1 (publish is false
// for a short tool run of a node's role, as the storage tool's).
func (c *Cluster) bridgeRequest(req *testcontainers.ContainerRequest, netName, role string, publish bool) {
	req.Networks = []string{netName}
	if role != "" {
		req.NetworkAliases = map[string][]string{netName: {role}}
		req.ConfigModifier = func(cfg *container.Config) { cfg.Hostname = role }
	}
	bindings := network.PortMap{}
	if publish {
		for _, p := range c.publishedPorts(role) {
			port := network.MustParsePort(strconv.Itoa(p) + "/tcp")
			req.ExposedPorts = append(req.ExposedPorts, port.String())
			bindings[port] = []network.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(p)}}
		}
	}
	req.HostConfigModifier = func(hc *container.HostConfig) {
		hc.NetworkMode = container.NetworkMode(netName)
		hc.PortBindings = bindings
		hc.DNSOptions = dnsOptions
	}
}

// clusterNetwork returns the cluster's network, creating it at the first
// container. k.mu is not held.
func (c *Cluster) clusterNetwork(ctx context.Context, k *containers) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.network != "" {
		return k.network, nil
	}
	name := c.name
	labels := map[string]string{labelOwner: ownerLabel(), labelCluster: c.name}
	_, err := k.cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{Driver: "bridge", Labels: labels})
	if err != nil && !cerrdefs.IsConflict(err) { // a conflict: Reopen of a cluster whose network is still there
		return "", fmt.Errorf("kafkatest: containers: create the bridge network %s (ContainerHostNetwork uses none): %w", name, err)
	}
	k.network = name
	return name, nil
}

// hostAddr matches an address of this machine's loopback in a tool's
// arguments.
var hostAddr = regexp.MustCompile(`(?:127\.0\.0\.1|localhost):([0-9]+)`)

// networkArgs rewrites, for a tool run on the cluster's network, the node (and
// ZooKeeper) addresses of this machine among args to the nodes' addresses on
// the network: a broker's port to its INTERNAL listener, a controller's to
// its CONTROLLER listener, ZooKeeper's to its alias.
func (c *Cluster) networkArgs(args []string) []string {
	to := map[string]string{}
	for _, n := range c.list() {
		if n.IsBroker() {
			to[strconv.Itoa(n.brokerPort)] = net.JoinHostPort(nodeAlias(n.id), strconv.Itoa(internalBrokerPort))
		}
		if n.IsController() {
			to[strconv.Itoa(n.controllerPort)] = c.quorumAddr(n.id, n.controllerPort)
		}
	}
	if c.zk != nil {
		to[strconv.Itoa(c.zk.port)] = net.JoinHostPort(zooKeeperAlias, strconv.Itoa(c.zk.port))
	}
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = hostAddr.ReplaceAllStringFunc(a, func(m string) string {
			if t, ok := to[hostAddr.FindStringSubmatch(m)[1]]; ok {
				return t
			}
			return m
		})
	}
	return out
}

// sweepNetworks removes the networks of clusters whose processes died
// without closing them (their containers are gone by then) and returns how
// many it removed.
func sweepNetworks(ctx context.Context, k *containers) int {
	f := client.Filters{}.Add("label", labelOwner)
	nl, err := k.cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return 0
	}
	n := 0
	for _, nw := range nl.Items {
		if ownerAlive(nw.Labels[labelOwner]) {
			continue
		}
		if _, err := k.cli.NetworkRemove(ctx, nw.ID, client.NetworkRemoveOptions{}); err == nil {
			n++
		}
	}
	return n
}

// probeBridge makes a labelled bridge network on the engine DOCKER_HOST
// names and removes it: whether the engine can run bridge networking.
func probeBridge(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("no container engine: %w", err)
	}
	defer cli.Close()
	name := fmt.Sprintf("kt-probe-%d-%d", os.Getpid(), containerSeq.Add(1))
	labels := map[string]string{labelOwner: ownerLabel(), labelCluster: name}
	if _, err := cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{Driver: "bridge", Labels: labels}); err != nil {
		return fmt.Errorf("create a bridge network: %w", err)
	}
	if _, err := cli.NetworkRemove(ctx, name, client.NetworkRemoveOptions{}); err != nil {
		return fmt.Errorf("remove the bridge network %s: %w", name, err)
	}
	return nil
}
