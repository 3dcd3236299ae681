package kafkatest_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/kafkatest"
)

// echoServer accepts connections on 127.0.0.1 and writes back what it reads.
// Its goroutines have ended once the test's cleanup returns.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				io.Copy(c, c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func newProxy(t *testing.T, target string, opts ...kafkatest.ProxyOption) *kafkatest.Proxy {
	t.Helper()
	p, err := kafkatest.NewProxy(target, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrips sends one byte n times over c, waits for its echo each time and
// returns the round-trip times, sorted.
func roundTrips(t *testing.T, c net.Conn, n int) []time.Duration {
	t.Helper()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	var out []time.Duration
	buf := make([]byte, 1)
	for i := range n {
		start := time.Now()
		if _, err := c.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatalf("round trip %d: %v", i, err)
		}
		out = append(out, time.Since(start))
	}
	slices.Sort(out)
	return out
}

func TestProxyRefusesOtherHosts(t *testing.T) {
	for _, target := range []string{"10.0.0.1:9092", "192.168.1.1:80", "localhost:9092", "example.com:80", "127.0.0.1", ""} {
		if p, err := kafkatest.NewProxy(target); err == nil {
			p.Close()
			t.Errorf("NewProxy(%q) = nil error, want a refusal", target)
		}
	}
	if _, err := kafkatest.NewProxy("127.0.0.1:1", kafkatest.ProxyLatency(-time.Second)); err == nil {
		t.Error("NewProxy with a negative latency: nil error")
	}
}

// A round trip through the proxy gains twice its latency (once each way),
// never less, and not much more.
func TestProxyLatency(t *testing.T) {
	addr := echoServer(t)
	p := newProxy(t, addr)
	c := dial(t, p.Addr())
	base := roundTrips(t, c, 10)
	const latency = 40 * time.Millisecond
	p.SetLatency(latency)
	slow := roundTrips(t, c, 10)
	median := func(ds []time.Duration) time.Duration { return ds[len(ds)/2] }
	t.Logf("round trip without latency: median %v, max %v; with %v each way: min %v, median %v, max %v",
		median(base), base[len(base)-1], latency, slow[0], median(slow), slow[len(slow)-1])
	if slow[0] < 2*latency {
		t.Errorf("fastest round trip %v with latency %v each way, want at least %v", slow[0], latency, 2*latency)
	}
	if limit := median(base) + 2*latency + 60*time.Millisecond; median(slow) > limit {
		t.Errorf("median round trip %v with latency %v each way, want at most %v", median(slow), latency, limit)
	}
	p.SetLatency(0)
	back := roundTrips(t, c, 10)
	if median(back) >= latency {
		t.Errorf("median round trip %v after SetLatency(0), want under %v", median(back), latency)
	}
	want := kafkatest.ProxyStats{Accepted: 1, Open: 1, ToTarget: 30, FromTarget: 30}
	if diff := cmp.Diff(want, settledStats(p, want)); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
}

// settledStats returns the proxy's stats once they equal want, or after 2s:
// a counter grows just after its write returns, when the peer may have read
// the bytes already.
func settledStats(p *kafkatest.Proxy, want kafkatest.ProxyStats) kafkatest.ProxyStats {
	deadline := time.Now().Add(2 * time.Second)
	for {
		st := p.Stats()
		if st == want || time.Now().After(deadline) {
			return st
		}
		time.Sleep(time.Millisecond)
	}
}

// Bytes keep their order while the latency changes under a stream of
// writes, and a stream is not slowed to one chunk per latency.
func TestProxyKeepsOrder(t *testing.T) {
	addr := echoServer(t)
	p := newProxy(t, addr, kafkatest.ProxyLatency(20*time.Millisecond))
	c := dial(t, p.Addr())
	c.SetDeadline(time.Now().Add(30 * time.Second))
	const n = 20000 // numbers of 4 bytes
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // flip the latency between 20ms and 0 while the stream runs
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Millisecond):
			}
			p.SetLatency(time.Duration(i%2) * 20 * time.Millisecond)
		}
	})
	start := time.Now()
	writeErr := make(chan error, 1)
	go func() {
		var b [4]byte
		w := make([]byte, 0, 4*64)
		for i := range n {
			binary.BigEndian.PutUint32(b[:], uint32(i))
			w = append(w, b[:]...)
			if len(w) == cap(w) || i == n-1 {
				if _, err := c.Write(w); err != nil {
					writeErr <- err
					return
				}
				w = w[:0]
			}
		}
		writeErr <- nil
	}()
	got := make([]byte, 4*n)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read back: %v", err)
	}
	took := time.Since(start)
	close(stop)
	wg.Wait()
	if err := <-writeErr; err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if v := binary.BigEndian.Uint32(got[4*i:]); v != uint32(i) {
			t.Fatalf("number %d read back as %d: order not kept", i, v)
		}
	}
	// n/64 writes: one latency each, were the chunks delayed one after
	// another instead of in a pipeline.
	t.Logf("%d bytes there and back in %v (%d writes of 256 bytes)", 4*n, took, n/64)
	if serial := time.Duration(n/64) * 20 * time.Millisecond / 2; took > serial {
		t.Errorf("stream took %v, want well under the %v of delaying chunks one after another", took, serial)
	}
	want := kafkatest.ProxyStats{Accepted: 1, Open: 1, ToTarget: 4 * n, FromTarget: 4 * n}
	if diff := cmp.Diff(want, settledStats(p, want)); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
}

// goroutinesIn returns the stacks of goroutines whose stack mentions fn
// ("kafkatest.(*Proxy)").
func goroutinesIn(fn string) []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte(fn)) {
			out = append(out, string(g))
		}
	}
	return out
}

// proxyGoroutines returns the stacks of goroutines running the proxy's code.
func proxyGoroutines() []string { return goroutinesIn("kafkatest.(*Proxy)") }

// Close ends every connection, also those with delayed bytes in flight, and
// leaves no goroutine behind.
func TestProxyCloseLeavesNoGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	addr := echoServer(t)
	p, err := kafkatest.NewProxy(addr, kafkatest.ProxyLatency(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	for range 3 {
		c := dial(t, p.Addr())
		if _, err := c.Write([]byte("stuck for an hour")); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.Stats().Open < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("proxy has %d connections open 5s after 3 dials", p.Stats().Open)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(proxyGoroutines()) == 0 {
		t.Fatal("no proxy goroutine found while it runs: the check below would prove nothing")
	}
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return within 5s with delayed bytes in flight")
	}
	if gs := proxyGoroutines(); len(gs) > 0 {
		t.Errorf("%d proxy goroutines after Close:\n%s", len(gs), strings.Join(gs, "\n\n"))
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(make([]byte, 64))
		if n != 0 || !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !strings.Contains(fmtErr(err), "reset") {
			t.Errorf("connection %d after Close: read %d bytes, %v; want EOF or a reset", i, n, err)
		}
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		t.Error("the proxy still accepts connections after Close")
	}
	for _, c := range conns {
		c.Close()
	}
	// The test's own goroutines (echo server) end with its cleanup; those
	// of the runtime and the testing package settle on their own.
	deadline = time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 { // the echo server's accept loop and one connection may still be closing
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines 5s after Close, %d before the proxy started", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// A franz-go client made with DialThrough reaches the routed broker through
// the proxy, for the seed and for the broker it discovers in metadata, and
// pays the latency there; kfake stands in for the broker (plumbing only).
func TestDialThroughRoutesSeedAndDiscoveredBroker(t *testing.T) {
	fake, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	real := fake.ListenAddrs()[0]
	p := newProxy(t, real)
	cl, err := kgo.NewClient(kgo.SeedBrokers(real), kafkatest.DialThrough(map[string]string{real: p.Addr()}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ask := func(b *kgo.Broker) time.Duration {
		t.Helper()
		start := time.Now()
		if _, err := kmsg.NewPtrApiVersionsRequest().RequestWith(t.Context(), b); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	ask(cl.SeedBrokers()[0])
	if _, err := kmsg.NewPtrMetadataRequest().RequestWith(t.Context(), cl); err != nil {
		t.Fatal(err)
	}
	ask(cl.Broker(0)) // discovered: kfake's first broker is node 0
	st := p.Stats()
	if st.Accepted != 2 || st.ToTarget == 0 || st.FromTarget == 0 {
		t.Fatalf("proxy stats %+v after a seed request and a request to the discovered broker: want 2 connections and bytes both ways", st)
	}
	const latency = 50 * time.Millisecond
	p.SetLatency(latency)
	if d := ask(cl.Broker(0)); d < 2*latency {
		t.Errorf("request through a proxy with latency %v each way took %v, want at least %v", latency, d, 2*latency)
	}
}
