package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// zookeeper is the single ZooKeeper server of a ZooKeeper-mode cluster, run
// from the jars of the cluster's first release.
type zookeeper struct {
	dir  string
	port int
	dist *Distribution

	mu   sync.Mutex
	proc *process
}

// bindAddr is where ZooKeeper listens: this machine's loopback, or every
// interface of its container with bridge networking (its port published on
// 127.0.0.1).
func (z *zookeeper) bindAddr(c *Cluster) string {
	if c.bridged() {
		return "0.0.0.0"
	}
	return "127.0.0.1"
}

func (z *zookeeper) start(ctx context.Context, c *Cluster) error {
	if z.running() {
		return errors.New("kafkatest: ZooKeeper is already running")
	}
	if err := os.MkdirAll(filepath.Join(z.dir, "data"), 0o755); err != nil {
		return fmt.Errorf("kafkatest: %w", err)
	}
	props := filepath.Join(z.dir, "zookeeper.properties")
	err := writeProperties(props, map[string]string{
		"dataDir":                 c.dataDir(filepath.Join(z.dir, "data")),
		"clientPort":              strconv.Itoa(z.port),
		"clientPortAddress":       z.bindAddr(c),
		"maxClientCnxns":          "0",
		"admin.enableServer":      "false",
		"4lw.commands.whitelist":  "ruok,srvr,dump,cons", // dump and cons: see registrationsLive
		"tickTime":                "2000",
		"minSessionTimeout":       "4000",
		"maxSessionTimeout":       "60000",
		"snapCount":               "100000",
		"autopurge.purgeInterval": "0",
	})
	if err != nil {
		return err
	}
	args := c.jvmArgs(z.dist, 128, z.dir)
	share, exited := cdsFlags(z.dist, "zookeeper")
	args = append(args, share...)
	args = append(args, "-Dkupgrade.kafkatest="+c.name+"/zookeeper", "-Dzookeeper.jmx.log4j.disable=true",
		"-cp", z.dist.Classpath(), "org.apache.zookeeper.server.quorum.QuorumPeerMain", props)
	p, err := c.launch("zookeeper", z.dist, args, filepath.Join(z.dir, "zookeeper.log"), "kafkatest: start ZooKeeper from Kafka "+z.dist.Release, exited)
	if err != nil {
		return fmt.Errorf("kafkatest: start ZooKeeper: %w", err)
	}
	z.mu.Lock()
	z.proc = p
	z.mu.Unlock()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(z.port))
	wctx, cancel := context.WithTimeoutCause(ctx, c.cfg.startTimeout, fmt.Errorf("kafkatest: ZooKeeper not ready within %v (see %s)", c.cfg.startTimeout, filepath.Join(z.dir, "zookeeper.log")))
	defer cancel()
	if err := poll(wctx, p.exited, func(ctx context.Context) error { return ruok(ctx, addr) }); err != nil {
		return fmt.Errorf("kafkatest: ZooKeeper: %w; log:\n%s", err, tail(filepath.Join(z.dir, "zookeeper.log"), 15))
	}
	return nil
}

// ruok asks ZooKeeper's four-letter "ruok" and wants "imok".
func ruok(ctx context.Context, addr string) error {
	b, err := fourLetter(ctx, addr, "ruok")
	if err != nil {
		return err
	}
	if b != "imok" {
		return fmt.Errorf("zookeeper answered %q to ruok", b)
	}
	return nil
}

// fourLetter sends one of ZooKeeper's four-letter commands (those in
// 4lw.commands.whitelist) and returns the answer.
func fourLetter(ctx context.Context, addr, cmd string) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	} else {
		conn.SetDeadline(time.Now().Add(3 * time.Second))
	}
	if _, err := conn.Write([]byte(cmd)); err != nil {
		return "", err
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// running reports whether the ZooKeeper process runs.
func (z *zookeeper) running() bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.proc == nil {
		return false
	}
	select {
	case <-z.proc.exited:
		return false
	default:
		return true
	}
}

func (z *zookeeper) kill() *process {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.proc == nil {
		return nil
	}
	p := z.proc
	z.proc = nil
	p.signal(syscall.SIGKILL)
	return p
}

// zkStopTimeout bounds ZooKeeper's shutdown after SIGTERM; then it is killed.
const zkStopTimeout = 30 * time.Second

func (z *zookeeper) stop(ctx context.Context) error {
	z.mu.Lock()
	p := z.proc
	z.proc = nil
	z.mu.Unlock()
	if p == nil {
		return nil
	}
	p.signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(zkStopTimeout):
		p.signal(syscall.SIGKILL)
		<-p.exited
		return fmt.Errorf("kafkatest: ZooKeeper did not stop within %v of SIGTERM; killed it", zkStopTimeout)
	case <-ctx.Done():
		p.signal(syscall.SIGKILL)
		<-p.exited
		return context.Cause(ctx)
	}
}

// errNotZooKeeper is returned by the ZooKeeper methods of a KRaft cluster.
var errNotZooKeeper = errors.New("kafkatest: a KRaft cluster has no ZooKeeper")

// ZooKeeperRunning reports whether the cluster's ZooKeeper server process
// runs (false in KRaft mode, and after [Cluster.StopZooKeeper] or
// [Cluster.KillZooKeeper]).
func (c *Cluster) ZooKeeperRunning() bool { return c.zk != nil && c.zk.running() }

// StopZooKeeper stops the ZooKeeper server gracefully (SIGTERM) and waits
// for it to end; if it has not within 30s, or ctx ends first, it is killed
// and StopZooKeeper says so. The brokers keep running: they serve produce
// and fetch requests with the leaders and ISRs they have, and cannot change
// them (nor elect a controller) until ZooKeeper is back. Stopping a stopped
// ZooKeeper does nothing. It fails in KRaft mode.
func (c *Cluster) StopZooKeeper(ctx context.Context) error {
	if c.zk == nil {
		return errNotZooKeeper
	}
	return c.zk.stop(ctx)
}

// KillZooKeeper kills the ZooKeeper server with SIGKILL (a crash) and waits
// for it to end. It fails in KRaft mode and when ZooKeeper does not run.
func (c *Cluster) KillZooKeeper() error {
	if c.zk == nil {
		return errNotZooKeeper
	}
	p := c.zk.kill()
	if p == nil {
		return errors.New("kafkatest: kill ZooKeeper: it is not running")
	}
	<-p.exited
	return nil
}

// StartZooKeeper starts the ZooKeeper server again after
// [Cluster.StopZooKeeper] or [Cluster.KillZooKeeper], on the same port with
// the same data, and returns once the cluster is whole again, which here
// means all of:
//
//   - ZooKeeper answers "imok" to ruok and serves ("srvr" reports its mode);
//   - every running broker's registration (/brokers/ids/<id>) and the
//     controller's (/controller) are ephemeral nodes of sessions that are
//     connected to this server now (ZooKeeper's "dump" and "cons"), so the
//     brokers' sessions have resumed or registered anew, and a controller
//     holds office;
//   - every running broker's metadata lists every running broker and names
//     a controller.
//
// Each wait is bounded by the cluster's [StartTimeout]; the error says which
// condition was not met. It fails in KRaft mode and if ZooKeeper runs.
func (c *Cluster) StartZooKeeper(ctx context.Context) error {
	if c.zk == nil {
		return errNotZooKeeper
	}
	if err := c.zk.start(ctx, c); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, c.cfg.startTimeout,
		fmt.Errorf("kafkatest: brokers not back on ZooKeeper within %v of its start", c.cfg.startTimeout))
	defer cancel()
	c.zk.mu.Lock()
	p := c.zk.proc
	c.zk.mu.Unlock()
	if p == nil {
		return errors.New("kafkatest: ZooKeeper was stopped again while it started")
	}
	if err := poll(ctx, p.exited, c.registrationsLive); err != nil {
		return fmt.Errorf("kafkatest: ZooKeeper restarted: %w", err)
	}
	c.cfg.logger.Info("ZooKeeper back", "name", c.name)
	return nil
}

// registrationsLive checks the last two conditions of StartZooKeeper.
func (c *Cluster) registrationsLive(ctx context.Context) error {
	addr := c.ZooKeeperAddr()
	srvr, err := fourLetter(ctx, addr, "srvr")
	if err != nil {
		return err
	}
	if !strings.Contains(srvr, "Mode:") {
		return fmt.Errorf("zookeeper not serving yet: %q", strings.TrimSpace(srvr))
	}
	dump, err := fourLetter(ctx, addr, "dump")
	if err != nil {
		return err
	}
	cons, err := fourLetter(ctx, addr, "cons")
	if err != nil {
		return err
	}
	owners := ephemeralOwners(dump)
	live := connectedSessions(cons)
	var running []int32
	for _, n := range c.Brokers() {
		if n.Status() == Running {
			running = append(running, n.id)
		}
	}
	paths := []string{"/" + c.name + "/controller"}
	for _, id := range running {
		paths = append(paths, "/"+c.name+"/brokers/ids/"+strconv.Itoa(int(id)))
	}
	for _, path := range paths {
		s, ok := owners[path]
		if !ok {
			return fmt.Errorf("%s is not registered", path)
		}
		if !live[s] {
			return fmt.Errorf("%s belongs to session %s, which is not connected", path, s)
		}
	}
	for _, n := range c.Brokers() {
		if n.Status() != Running {
			continue
		}
		if err := metadataWhole(ctx, n.Addr(), running, c.clientSecurity()...); err != nil {
			return fmt.Errorf("broker %d: %w", n.id, err)
		}
	}
	return nil
}

// ephemeralOwners parses the "Sessions with Ephemerals" part of ZooKeeper's
// "dump": a session line ("0x1000abc:") then its paths, each indented.
func ephemeralOwners(dump string) map[string]string {
	out := map[string]string{}
	_, rest, ok := strings.Cut(dump, "Sessions with Ephemerals")
	if !ok {
		return out
	}
	session := ""
	for i, line := range strings.Split(rest, "\n") {
		if i == 0 {
			continue // the rest of the heading line: " (2):"
		}
		t := strings.TrimSpace(line)
		switch {
		case t == "":
		case strings.HasPrefix(t, "0x") && strings.HasSuffix(t, ":"):
			session = strings.TrimSuffix(t, ":")
		case strings.HasPrefix(t, "/") && session != "":
			out[t] = session
		default:
			if !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "\t") {
				return out // a later section
			}
		}
	}
	return out
}

// connectedSessions parses ZooKeeper's "cons": a line per connection with
// "sid=0x…".
func connectedSessions(cons string) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(cons, "\n") {
		_, rest, ok := strings.Cut(line, "sid=")
		if !ok {
			continue
		}
		if i := strings.IndexAny(rest, ",)"); i >= 0 {
			rest = rest[:i]
		}
		out[rest] = true
	}
	return out
}

// metadataWhole asks the broker at addr for its metadata and wants every
// broker of ids listed and a controller named.
func metadataWhole(ctx context.Context, addr string, ids []int32, opts ...kgo.Opt) error {
	cl, err := oneShotClient(addr, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{}
	resp, err := req.RequestWith(ctx, cl.SeedBrokers()[0])
	if err != nil {
		return err
	}
	if resp.ControllerID < 0 {
		return errors.New("metadata names no controller")
	}
	for _, id := range ids {
		if !slices.ContainsFunc(resp.Brokers, func(b kmsg.MetadataResponseBroker) bool { return b.NodeID == id }) {
			return fmt.Errorf("metadata does not list broker %d", id)
		}
	}
	return nil
}

// waitStaleRegistrations waits until ZooKeeper holds no registration
// (/brokers/ids/<id>) of the given brokers, all if ids is empty. It is
// called before brokers start whose last process was killed: their sessions
// outlive them (and a restart of ZooKeeper, as in Close then [Reopen]) until
// the session timeout (12s), and a ZooKeeper-mode broker that finds its id
// registered by another session exits at startup (NodeExistsException).
func (c *Cluster) waitStaleRegistrations(ctx context.Context, ids ...int32) error {
	start := time.Now()
	ctx, cancel := context.WithTimeoutCause(ctx, c.cfg.startTimeout,
		fmt.Errorf("kafkatest: registrations of killed brokers still in ZooKeeper after %v", c.cfg.startTimeout))
	defer cancel()
	prefix := "/" + c.name + "/brokers/ids/"
	err := poll(ctx, nil, func(ctx context.Context) error {
		dump, err := fourLetter(ctx, c.ZooKeeperAddr(), "dump")
		if err != nil {
			return err
		}
		if !strings.Contains(dump, "Sessions with Ephemerals") {
			return fmt.Errorf("zookeeper not serving yet: %q", strings.TrimSpace(dump))
		}
		var stale []string
		for path := range ephemeralOwners(dump) {
			id, ok := strings.CutPrefix(path, prefix)
			if ok && (len(ids) == 0 || slices.Contains(ids, int32(atoiOr(id, -1)))) {
				stale = append(stale, path)
			}
		}
		if len(stale) > 0 {
			slices.Sort(stale)
			return fmt.Errorf("still registered by sessions of killed brokers: %v", stale)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if took := time.Since(start); took > time.Second {
		c.cfg.logger.Info("killed brokers' registrations expired", "name", c.name, "took", took)
	}
	return nil
}

func atoiOr(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return def
	}
	return n
}

// beforeStart waits, in ZooKeeper mode, until the registration of node n's
// last process is gone if that process was killed or crashed (a graceful
// stop deregisters it). If ZooKeeper does not run, it does not wait.
func (c *Cluster) beforeStart(ctx context.Context, n *Process) error {
	if c.zk == nil || !c.zk.running() {
		return nil
	}
	if st := n.Status(); st != Killed && st != Exited {
		return nil
	}
	if err := c.waitStaleRegistrations(ctx, n.id); err != nil {
		return fmt.Errorf("kafkatest: start node %d: %w", n.id, err)
	}
	return nil
}
