package upgrade

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// NoZooKeeperProbe turns off the ZooKeeper probe that comes before every
// health snapshot of a cluster whose brokers name a zookeeper.connect
// (ZooKeeper mode, or a migration to KRaft under way).
//
// The probe is on by default because, while ZooKeeper is down, the cluster
// looks healthy to every read a gate makes except one: no controller can
// move a leader or change an ISR, so restarting a broker leaves its
// partitions without a leader until ZooKeeper is back; and the brokers
// answer a topic's DescribeConfigs (how a snapshot reads min.insync.replicas)
// from ZooKeeper, each such request holding one of the broker's request
// handler threads (num.io.threads) until ZooKeeper answers. A gate that kept
// asking would stall every client of the brokers. So before each snapshot
// the Runner asks the servers of the brokers' zookeeper.connect (read once,
// from the broker's static config) the four-letter word "srvr", each within
// the liveness probe's timeout ([BrokerProbeTimeout]); while none answers,
// or none serves, the snapshot fails naming them, and whatever waited for it
// (a gate, a catch-up) waits on. A server that answers but does not allow
// "srvr" (4lw.commands.whitelist) counts as up. Turn the probe off if the
// Runner cannot reach ZooKeeper.
func NoZooKeeperProbe() RunnerOption { return optionFunc(func(c *config) { c.zkProbeOff = true }) }

// zkProbe asks the brokers' ZooKeeper whether it serves.
type zkProbe struct {
	off     bool
	timeout time.Duration
	connect string // ZooKeeperConnect: used instead of the brokers' zookeeper.connect

	mu      sync.Mutex
	known   bool     // servers was read
	servers []string // from zookeeper.connect; none: not on ZooKeeper
}

// check returns an error naming the ZooKeeper servers if none of them
// serves. Where it cannot tell (no zookeeper.connect, or the brokers' config
// cannot be read), it returns nil: the snapshot's own reads decide.
func (p *zkProbe) check(ctx context.Context, cl *kgo.Client) error {
	if p == nil || p.off {
		return nil
	}
	servers := p.lookup(ctx, cl)
	if len(servers) == 0 {
		return nil
	}
	timeout := p.timeout
	if timeout <= 0 {
		timeout = DefaultBrokerProbeTimeout
	}
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Go(func() { errs[i] = zkServes(ctx, s, timeout) })
	}
	wg.Wait()
	for _, err := range errs {
		if err == nil {
			return nil
		}
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return fmt.Errorf("ZooKeeper does not serve (%w): while it is down no controller can move leaders or change ISRs, "+
		"and each topic config read holds a broker's request thread until it is back, so no snapshot is taken (NoZooKeeperProbe turns this check off)",
		errors.Join(errs...))
}

// lookup returns the ZooKeeper servers the brokers use, reading them once.
func (p *zkProbe) lookup(ctx context.Context, cl *kgo.Client) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.known {
		return p.servers
	}
	connect, err := zkConnect(ctx, cl)
	if err != nil {
		return nil // asked again next time
	}
	p.known, p.servers = true, zkServers(zkConnectFor(connect, p.connect))
	return p.servers
}

// zkConnect reads zookeeper.connect from one broker's static config (the
// brokers read it from their properties file, not from ZooKeeper).
func zkConnect(ctx context.Context, cl *kgo.Client) (string, error) {
	meta := kmsg.NewPtrMetadataRequest()
	meta.Topics = []kmsg.MetadataRequestTopic{}
	mresp, err := meta.RequestWith(ctx, cl)
	if err != nil {
		return "", err
	}
	if len(mresp.Brokers) == 0 {
		return "", errors.New("metadata lists no broker")
	}
	req := kmsg.NewPtrDescribeConfigsRequest()
	r := kmsg.NewDescribeConfigsRequestResource()
	r.ResourceType = kmsg.ConfigResourceTypeBroker
	r.ResourceName = fmt.Sprint(mresp.Brokers[0].NodeID)
	r.ConfigNames = []string{"zookeeper.connect"}
	req.Resources = append(req.Resources, r)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return "", err
	}
	for _, res := range resp.Resources {
		if res.ErrorCode != 0 {
			return "", fmt.Errorf("describe configs of broker %s: error code %d", res.ResourceName, res.ErrorCode)
		}
		for _, c := range res.Configs {
			if c.Name == "zookeeper.connect" && c.Value != nil {
				return *c.Value, nil
			}
		}
	}
	return "", nil
}

// zkServers splits a zookeeper.connect string ("h1:2181,h2:2181/chroot")
// into host:port addresses.
func zkServers(connect string) []string {
	if i := strings.IndexByte(connect, '/'); i >= 0 {
		connect = connect[:i]
	}
	var out []string
	for _, s := range strings.Split(connect, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(s); err != nil {
			s = net.JoinHostPort(s, "2181")
		}
		out = append(out, s)
	}
	return out
}

// zkServes asks the ZooKeeper server at addr "srvr" within timeout.
func zkServes(ctx context.Context, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if _, err := conn.Write([]byte("srvr")); err != nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	b, err := io.ReadAll(conn)
	out := string(b)
	switch {
	case strings.Contains(out, "Mode:"):
		return nil
	case strings.Contains(out, "not in the whitelist"):
		return nil // up, and it does not tell more
	case out != "":
		return fmt.Errorf("%s: %s", addr, strings.TrimSpace(out))
	case err != nil:
		return fmt.Errorf("%s: %w", addr, err)
	}
	return fmt.Errorf("%s: no answer to srvr", addr)
}
