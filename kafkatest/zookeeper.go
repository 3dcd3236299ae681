package kafkatest

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
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

func (z *zookeeper) start(ctx context.Context, c *Cluster) error {
	if err := os.MkdirAll(filepath.Join(z.dir, "data"), 0o755); err != nil {
		return fmt.Errorf("kafkatest: %w", err)
	}
	props := filepath.Join(z.dir, "zookeeper.properties")
	err := writeProperties(props, map[string]string{
		"dataDir":                 filepath.Join(z.dir, "data"),
		"clientPort":              strconv.Itoa(z.port),
		"clientPortAddress":       "127.0.0.1",
		"maxClientCnxns":          "0",
		"admin.enableServer":      "false",
		"4lw.commands.whitelist":  "ruok,srvr",
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
	p, err := launch(z.dist.Java, args, filepath.Join(z.dir, "zookeeper.log"), "kafkatest: start ZooKeeper from Kafka "+z.dist.Release, exited)
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
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	} else {
		conn.SetDeadline(time.Now().Add(3 * time.Second))
	}
	if _, err := conn.Write([]byte("ruok")); err != nil {
		return err
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		return err
	}
	if string(b) != "imok" {
		return fmt.Errorf("zookeeper answered %q to ruok", b)
	}
	return nil
}

func (z *zookeeper) kill() *process {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.proc == nil {
		return nil
	}
	p := z.proc
	z.proc = nil
	p.cmd.Process.Signal(syscall.SIGKILL)
	return p
}

func (z *zookeeper) stop(ctx context.Context) error {
	z.mu.Lock()
	p := z.proc
	z.proc = nil
	z.mu.Unlock()
	if p == nil {
		return nil
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("kafkatest: ZooKeeper did not stop within 30s of SIGTERM; killed it")
	case <-ctx.Done():
		p.cmd.Process.Kill()
		<-p.exited
		return context.Cause(ctx)
	}
}
