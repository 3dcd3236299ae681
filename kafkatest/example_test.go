package kafkatest_test

import (
	"context"
	"fmt"
	"log"
	"testing"

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
