package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A ProxyOption configures [NewProxy].
type ProxyOption interface{ applyProxy(*proxyConfig) }

type proxyOptionFunc func(*proxyConfig)

func (f proxyOptionFunc) applyProxy(c *proxyConfig) { f(c) }

type proxyConfig struct {
	latency     time.Duration
	dialTimeout time.Duration
}

// ProxyLatency sets the proxy's latency from the start, overriding the
// default of none; see [Proxy.SetLatency].
func ProxyLatency(d time.Duration) ProxyOption {
	return proxyOptionFunc(func(c *proxyConfig) { c.latency = d })
}

// ProxyDialTimeout bounds the proxy's dial of its target for each accepted
// connection, overriding the default of 5s. A connection whose dial fails is
// closed and counted in [ProxyStats].DialErrors.
func ProxyDialTimeout(d time.Duration) ProxyOption {
	return proxyOptionFunc(func(c *proxyConfig) { c.dialTimeout = d })
}

// A Proxy is a TCP proxy on 127.0.0.1 that forwards every connection to one
// target on the loopback interface and delays what it forwards: a slow
// network link between a client and one broker. Each direction of each
// connection is a delay line: a chunk read at time t is written at
// t+latency (the latency when it was read), or later, never before a chunk
// read earlier, so bytes keep their order and a stream's throughput is not
// limited by the latency. A request and its response each cross it once:
// a round trip gains twice the latency. Its methods are safe for concurrent
// use.
type Proxy struct {
	target  string
	ln      net.Listener
	cfg     proxyConfig
	latency atomic.Int64    // nanoseconds
	ctx     context.Context // ends with Close
	stop    context.CancelFunc
	wg      sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool

	accepted   atomic.Int64
	open       atomic.Int64
	dialErrors atomic.Int64
	toTarget   atomic.Int64
	fromTarget atomic.Int64
	closeOnce  sync.Once
}

// ProxyStats counts what a [Proxy] forwarded.
type ProxyStats struct {
	Accepted   int64 // connections accepted from clients
	Open       int   // client connections open now
	DialErrors int64 // accepted connections whose dial of the target failed
	ToTarget   int64 // bytes written to the target (client → target)
	FromTarget int64 // bytes written back to clients (target → client)
}

// NewProxy starts a proxy listening on 127.0.0.1 (a free port; see
// [Proxy.Addr]) that forwards to target, which must be a loopback IP address
// and port ("127.0.0.1:9092"): kafkatest never sends traffic elsewhere. The
// caller must Close it.
func NewProxy(target string, opts ...ProxyOption) (*Proxy, error) {
	cfg := proxyConfig{dialTimeout: 5 * time.Second}
	for _, o := range opts {
		o.applyProxy(&cfg)
	}
	if cfg.latency < 0 {
		return nil, fmt.Errorf("kafkatest: ProxyLatency(%v): latency cannot be negative", cfg.latency)
	}
	if cfg.dialTimeout <= 0 {
		return nil, fmt.Errorf("kafkatest: ProxyDialTimeout(%v): the timeout must be positive", cfg.dialTimeout)
	}
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		return nil, fmt.Errorf("kafkatest: proxy target %q: %w", target, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("kafkatest: proxy target %q: only loopback addresses such as 127.0.0.1:port are allowed", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("kafkatest: proxy: %w", err)
	}
	p := &Proxy{target: target, ln: ln, cfg: cfg, conns: map[net.Conn]struct{}{}}
	p.ctx, p.stop = context.WithCancel(context.Background())
	p.latency.Store(int64(cfg.latency))
	p.wg.Go(p.acceptLoop)
	return p, nil
}

// Addr returns the address the proxy listens on ("127.0.0.1:port").
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target returns the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// SetLatency sets the delay added to every chunk forwarded from now on, in
// both directions (a round trip gains 2·d). Chunks already on their way keep
// the delay they were read with; order is preserved. Negative values count
// as zero.
func (p *Proxy) SetLatency(d time.Duration) { p.latency.Store(int64(max(d, 0))) }

// Latency returns the current latency of each direction.
func (p *Proxy) Latency() time.Duration { return time.Duration(p.latency.Load()) }

// Stats returns the proxy's counters.
func (p *Proxy) Stats() ProxyStats {
	return ProxyStats{Accepted: p.accepted.Load(), Open: int(p.open.Load()), DialErrors: p.dialErrors.Load(),
		ToTarget: p.toTarget.Load(), FromTarget: p.fromTarget.Load()}
}

// Close closes the listener and every connection (bytes still delayed are
// dropped), and waits for the proxy's goroutines to end. It is idempotent.
func (p *Proxy) Close() error {
	var err error
	p.closeOnce.Do(func() {
		p.stop()
		err = p.ln.Close()
		p.mu.Lock()
		p.closed = true
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return err
}

func (p *Proxy) acceptLoop() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		p.accepted.Add(1)
		p.wg.Go(func() { p.serve(c) })
	}
}

// track registers c so that Close closes it; false if the proxy is closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// serve forwards one client connection to the target.
func (p *Proxy) serve(client net.Conn) {
	if !p.track(client) {
		client.Close()
		return
	}
	defer p.untrack(client)
	defer client.Close()
	p.open.Add(1)
	defer p.open.Add(-1)
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.dialTimeout) // a Close during the dial ends it
	var d net.Dialer
	server, err := d.DialContext(ctx, "tcp", p.target)
	cancel()
	if err != nil {
		p.dialErrors.Add(1)
		return
	}
	if !p.track(server) {
		server.Close()
		return
	}
	defer p.untrack(server)
	defer server.Close()
	var wg sync.WaitGroup
	wg.Go(func() { p.pipe(server, client, &p.toTarget) })
	wg.Go(func() { p.pipe(client, server, &p.fromTarget) })
	wg.Wait()
}

// A chunk is bytes read at one time, due to be written at due; a nil data
// marks the end of the stream.
type chunk struct {
	data []byte
	due  time.Time
}

// pipe copies src to dst through a delay line. When either side fails, both
// connections are closed, which ends the other direction too; a clean end
// of src half-closes dst once every delayed chunk is written.
func (p *Proxy) pipe(dst, src net.Conn, count *atomic.Int64) {
	queue := make(chan chunk, 256)
	var wg sync.WaitGroup
	wg.Go(func() { // reader
		defer close(queue)
		for {
			buf := make([]byte, 32*1024)
			n, err := src.Read(buf)
			if n > 0 {
				select {
				case queue <- chunk{data: buf[:n], due: time.Now().Add(p.Latency())}:
				case <-p.ctx.Done():
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	broken := false
	for c := range queue {
		if broken {
			continue // drain, so that the reader never blocks
		}
		if wait := time.Until(c.due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-p.ctx.Done():
				broken = true
				continue
			}
		}
		n, err := dst.Write(c.data)
		count.Add(int64(n))
		if err != nil {
			broken = true
			src.Close() // the reader returns; the other direction ends with it
			dst.Close()
		}
	}
	wg.Wait()
	if !broken {
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		} else {
			dst.Close()
		}
	}
}

// DialThrough returns a franz-go option whose dialer sends connections to
// the addresses in routes (a broker's real address, as the cluster's
// metadata advertises it → the address of a [Proxy] in front of it) through
// the route, and every other connection directly. Seed brokers and brokers
// discovered from metadata go the same way. It replaces the client's dialer
// (kgo.Dialer), with a 10s dial timeout: leave out kgo.Dialer,
// kgo.DialTimeout and kgo.DialTLSConfig, which it would override or clash
// with; kafkatest's clusters speak plaintext.
func DialThrough(routes map[string]string) kgo.Opt {
	table := make(map[string]string, len(routes))
	for k, v := range routes {
		table[k] = v
	}
	return kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
		if to, ok := table[host]; ok {
			host = to
		}
		d := net.Dialer{Timeout: 10 * time.Second}
		return d.DialContext(ctx, network, host)
	})
}

// SlowLink puts a [Proxy] with the given latency in front of broker id and
// returns it with a franz-go option ([DialThrough]) that makes a client
// reach that broker through the proxy, although metadata advertises the
// broker's real address; other brokers are reached directly. Traffic of
// other clients and between brokers is not slowed. Change the latency with
// [Proxy.SetLatency]; the caller must Close the proxy.
func (c *Cluster) SlowLink(id int32, latency time.Duration) (*Proxy, kgo.Opt, error) {
	n, err := c.node(id)
	if err != nil {
		return nil, nil, err
	}
	if !n.IsBroker() {
		return nil, nil, fmt.Errorf("kafkatest: slow link: node %d is not a broker", id)
	}
	p, err := NewProxy(n.Addr(), ProxyLatency(latency))
	if err != nil {
		return nil, nil, err
	}
	return p, DialThrough(map[string]string{n.Addr(): p.Addr()}), nil
}
