package health_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kupgrade/kupgrade/health"
	"github.com/kupgrade/kupgrade/node"
)

func ExampleCanRestart() {
	s := health.Snapshot{
		Brokers: []health.Broker{{Node: node.Node{ID: 1}}, {Node: node.Node{ID: 2}}, {Node: node.Node{ID: 3}}},
		Topics: []health.Topic{
			{Name: "orders", MinISR: 2, Partitions: []health.Partition{
				{Partition: 0, Leader: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}},
				{Partition: 3, Leader: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2}},
			}},
		},
	}.Indexed()

	fmt.Println(health.CanRestart(s, 3))
	v := health.CanRestart(s, 2)
	fmt.Println(v.OK)
	for _, r := range v.Reasons {
		fmt.Println(r.Rule, r.ISRAfter, r)
	}
	// Output:
	// node 3 can restart (2 checked)
	// false
	// below-min-isr [1] orders-3: ISR {1,2} would drop to {1}, below min.insync.replicas 2
}

func ExampleNewGate() {
	s := health.Snapshot{Topics: []health.Topic{
		{Name: "scratch", Partitions: []health.Partition{{Partition: 0, Leader: 4, Replicas: []int32{4}, ISR: []int32{4}}}},
	}}
	fmt.Println(health.CanRestart(s, 4))

	base := s.Counts() // before the rolling restart starts
	g, err := health.NewGate(health.AllowOfflineRF1(), health.NoWorseThan(base))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(g.CanRestart(s, 4))
	// Output:
	// cannot restart node 4: scratch-0: ISR {4} would drop to {}: the partition would go offline (replication factor 1; AllowOfflineRF1 permits this)
	// node 4 can restart (1 checked)
}

func ExampleCaughtUp() {
	s := health.Snapshot{
		Brokers: []health.Broker{{Node: node.Node{ID: 1}}, {Node: node.Node{ID: 2}}, {Node: node.Node{ID: 3}}},
		Topics: []health.Topic{{Name: "orders", Partitions: []health.Partition{
			{Partition: 0, Leader: 1, Replicas: []int32{2, 1, 3}, ISR: []int32{1, 3, 2}},
		}}},
	}
	fmt.Println(health.CaughtUp(s, 2))
	fmt.Println(health.CaughtUp(s, 2, health.LeadsPreferred()))
	// Output:
	// node 2 caught up (1 checked)
	// node 2 not caught up: orders-0: node 2 is the preferred leader, but node 1 leads
}

// ExampleUntil restarts one node safely: gate, restart, wait until it has
// caught up, bring its leadership back, and check the canary.
func ExampleUntil() {
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers("localhost:9092"))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	const node = 2

	snap, err := health.Take(ctx, cl)
	if err != nil {
		log.Fatal(err)
	}
	if err := health.CanRestart(snap, node).Err(); err != nil {
		log.Fatal(err) // e.g. health: cannot restart node 2: orders-3: ISR {1,2} would drop to {1}, ...
	}

	restart(node) // the user's orchestrator

	snap, err = health.Until(ctx, cl, func(s health.Snapshot) health.Verdict {
		return health.CaughtUp(s, node)
	}, 10*time.Minute)
	if err != nil {
		log.Fatal(err) // the last reason is in the error: "... node 2 is not in ISR {1,3}"
	}
	if _, err := health.ElectPreferred(ctx, cl, snap, node); err != nil {
		log.Fatal(err)
	}

	can, err := health.NewCanary(cl)
	if err != nil {
		log.Fatal(err)
	}
	if err := can.Ensure(ctx); err != nil {
		log.Fatal(err)
	}
	rs, err := can.Probe(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if err := rs.Within(2 * time.Second).Err(); err != nil {
		log.Fatal(err) // e.g. health: canary failed: broker 2: ...
	}
}

func restart(int32) {}
