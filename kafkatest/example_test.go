package kafkatest_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"testing"
	"time"

	"github.com/kupgrade/kupgrade/kafkatest"
	"github.com/kupgrade/kupgrade/node"
)

// A test starts a real cluster, runs traffic, restarts a broker onto a newer
// release, and proves that no acknowledged record was lost.
func ExampleStart() {
	var t *testing.T // in a test, the *testing.T

	c := kafkatest.Start(t, kafkatest.KRaft("3.9.2"), kafkatest.Combined(3))
	if err := c.CreateTopic(t.Context(), "orders", 6, 3, map[string]string{"min.insync.replicas": "2"}); err != nil {
		t.Fatal(err)
	}
	traffic := c.Traffic(t, "orders", kafkatest.Rate(500))
	if err := c.Restart(t.Context(), 2, node.Change{Version: "4.1.2"}); err != nil {
		t.Fatal(err)
	}
	report, err := traffic.Stop(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := report.Err(); err != nil {
		t.Fatal(err) // acknowledged records were lost
	}
}

// A program starts a cluster with New and closes it itself.
func ExampleNew() {
	ctx := context.Background()
	c, err := kafkatest.New(ctx, kafkatest.ZooKeeper("3.6.2"), kafkatest.Brokers(3))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println(c.Mode(), c.Addrs())
}

// A proxy delays what it forwards in each direction, so a request and its
// answer cross it with twice the latency; here in front of a local echo
// server.
func ExampleNewProxy() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() { // echo one connection
		c, err := ln.Accept()
		if err == nil {
			io.Copy(c, c)
			c.Close()
		}
	}()

	p, err := kafkatest.NewProxy(ln.Addr().String(), kafkatest.ProxyLatency(50*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s after at least 100ms: %v\n", buf, time.Since(start) >= 100*time.Millisecond)
	// Output: ping after at least 100ms: true
}

// A fault test watches every partition's ISR through every broker while it
// slows one broker's link, restarts ZooKeeper and restarts nodes, then
// checks that no partition fell below min.insync.replicas.
func ExampleCluster_WatchISR() {
	var t *testing.T // in a test, the *testing.T
	ctx := t.Context()

	c := kafkatest.Start(t, kafkatest.ZooKeeper("3.9.2"), kafkatest.Brokers(3))
	if err := c.CreateTopic(ctx, "orders", 6, 3, map[string]string{"min.insync.replicas": "2"}); err != nil {
		t.Fatal(err)
	}
	w, err := c.WatchISR(ctx, kafkatest.WatchInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	// The code under test reaches broker 2 over a slow link.
	p, slow, err := c.SlowLink(2, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cl := c.Client(t, slow)
	_ = cl // … the code under test uses cl …

	if err := c.StopZooKeeper(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.StartZooKeeper(ctx); err != nil { // returns once every broker is registered again
		t.Fatal(err)
	}

	report := w.Stop()
	if below := report.Below(); len(below) > 0 {
		t.Errorf("partitions below min ISR:\n%v", report)
	}
}
