package reassign_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kupgrade/kupgrade/node"
	"github.com/kupgrade/kupgrade/reassign"
)

// Replace broker 3 with broker 4, in the same rack.
func ExamplePlanMoves() {
	var a reassign.Assignment
	for _, p := range []reassign.PartitionAssignment{
		{Topic: "orders", Partition: 0, Replicas: []int32{1, 2, 3}, Leader: 1, Bytes: 1 << 30},
		{Topic: "orders", Partition: 1, Replicas: []int32{2, 3, 1}, Leader: 3, Bytes: 1 << 30},
		{Topic: "orders", Partition: 2, Replicas: []int32{3, 1, 2}, Leader: 3, Bytes: 1 << 30},
		{Topic: "orders", Partition: 3, Replicas: []int32{1, 2, 4}, Leader: 1, Bytes: 1 << 30},
	} {
		if err := a.Add(p); err != nil {
			log.Fatal(err)
		}
	}
	brokers := []node.Node{{ID: 1, Rack: "a"}, {ID: 2, Rack: "b"}, {ID: 3, Rack: "c"}, {ID: 4, Rack: "c"}}
	plan, err := reassign.PlanMoves(&a, brokers, reassign.BrokerChange{
		Replace: []reassign.Replacement{{Old: 3, New: 4}},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range plan.Moves {
		fmt.Println(m)
	}
	fmt.Print(plan)
	// Output:
	// orders-0 [1 2 3]→[1 2 4]
	// orders-1 [2 3 1]→[2 4 1]
	// orders-2 [3 1 2]→[4 1 2]
	// 3 moves, 3221225472 bytes to copy
	// broker  rack  replicas  leaders
	// 1       a     4→4       2→2
	// 2       b     4→4       1→1
	// 3       c     3→0       1→0      retired
	// 4       c     1→4       0→1
}

// An executor's loop, without the I/O: hand out moves, report what
// finished, refill.
func ExampleBatcher() {
	moves := reassign.Moves{
		{Topic: "a", Partition: 0, From: []int32{1}, To: []int32{4}},
		{Topic: "a", Partition: 1, From: []int32{1}, To: []int32{5}},
		{Topic: "a", Partition: 2, From: []int32{1}, To: []int32{6}},
		{Topic: "b", Partition: 0, From: []int32{2}, To: []int32{4}},
	}
	b, err := reassign.NewBatcher(moves, reassign.SlotsPerBroker(1))
	if err != nil {
		log.Fatal(err)
	}
	for round := 1; !b.Done(); round++ {
		batch := b.Next() // submit with AlterPartitionAssignments(batch.Moves.Request())
		fmt.Println(round, batch.Moves)
		// Pretend the oldest move in flight finished. One slot per broker:
		// b-0 waits for broker 4, the a moves for broker 1.
		if err := b.Finished(b.InFlight()[0]); err != nil {
			log.Fatal(err)
		}
	}
	// Output:
	// 1 [a-0 [1]→[4]]
	// 2 [a-1 [1]→[5] b-0 [2]→[4]]
	// 3 [a-2 [1]→[6]]
	// 4 []
}

// Decommission broker 4: plan the moves, then carry them out at 50 MB/s
// per broker with a journal on disk. If the program is interrupted, the
// moves in flight go on in the cluster; running it again with the same
// journal adopts them and finishes the run. (It needs a cluster, so it is
// compiled but not run.)
func ExampleExecutor() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	cl, err := kgo.NewClient(kgo.SeedBrokers("localhost:9092"))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()

	a, brokers, err := reassign.LoadAssignment(ctx, cl)
	if err != nil {
		log.Fatal(err)
	}
	plan, err := reassign.PlanMoves(a, brokers, reassign.BrokerChange{Remove: []int32{4}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(plan)

	e, err := reassign.NewExecutor(cl, reassign.NewFileStore("decommission-4.json"),
		reassign.Throttle(50_000_000),
		reassign.OnProgress(func(p reassign.Progress) { log.Println(p) }))
	if err != nil {
		log.Fatal(err)
	}
	results, err := e.Run(ctx, plan.Moves)
	if err != nil {
		log.Fatal(err) // stopped, or throttles left on a broker that is down: run again to resume
	}
	for _, r := range results.Sorted() {
		if r.Err != nil {
			log.Println(r.Err) // e.g. cancelled: destination broker 5 is down
		}
	}
}
