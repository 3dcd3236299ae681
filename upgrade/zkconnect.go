package upgrade

import (
	"errors"
	"fmt"
)

// A ZooKeeperOption configures both a [Runner] and [Inspect].
type ZooKeeperOption interface {
	RunnerOption
	InspectOption
}

// ZooKeeperConnect names the ZooKeeper connect string ("host:port,…/chroot")
// that the Runner and Inspect use instead of the brokers' zookeeper.connect,
// for a cluster whose brokers reach ZooKeeper at an address this process
// cannot: a name only the brokers' network resolves, such as a container's
// alias on its bridge network (kafkatest's Cluster.ZooKeeperConnect is the
// address from the test's side), or a port forwarded to this machine. It
// must name the same ensemble and the same chroot. Without it they use the
// brokers' zookeeper.connect, read from a broker's config.
//
// It serves the ZooKeeper probe before each health snapshot (see
// [NoZooKeeperProbe]), the migration's reads of /migration and /controller
// and the rollback's deletes. Whether the cluster is on ZooKeeper is still
// decided by the brokers: with none naming a zookeeper.connect, the address
// is not used. An address with no server in it is refused: NewRunner and
// Inspect return an error before any I/O.
func ZooKeeperConnect(connect string) ZooKeeperOption { return zkConnectOption(connect) }

type zkConnectOption string

func (o zkConnectOption) apply(c *config) { c.zkConnect, c.zkConnectSet = string(o), true }

func (o zkConnectOption) applyInspect(c *inspectConfig) {
	c.zkConnect, c.zkConnectSet = string(o), true
}

// validateZKConnect checks a ZooKeeperConnect address, if one was given.
func validateZKConnect(connect string, set bool) error {
	if !set {
		return nil
	}
	if connect == "" {
		return errors.New("upgrade: ZooKeeperConnect(\"\"): to use the brokers' zookeeper.connect, leave the option out")
	}
	if len(zkServers(connect)) == 0 {
		return fmt.Errorf("upgrade: ZooKeeperConnect(%q) names no server (want host:port[,host:port…][/chroot])", connect)
	}
	return nil
}

// zkConnectFor returns the connect string to use for the brokers'
// zookeeper.connect brokers: override if set and the brokers name one.
func zkConnectFor(brokers, override string) string {
	if brokers != "" && override != "" {
		return override
	}
	return brokers
}
