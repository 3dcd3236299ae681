package kraft_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/kraft"
)

// A pure check on a hand-built quorum: voter 3 stopped fetching 9 seconds
// ago, so restarting voter 2 would leave only the leader caught up.
func ExampleCanRestartController() {
	now := time.UnixMilli(1_800_000_000_000)
	q := kraft.Quorum{
		LeaderID: 1,
		Voters: []kraft.Replica{
			{ID: 1, LastCaughtUp: now},
			{ID: 2, LastCaughtUp: now.Add(-100 * time.Millisecond)},
			{ID: 3, LastCaughtUp: now.Add(-9 * time.Second)},
		},
	}
	fmt.Println(kraft.CanRestartController(q, 2, 2*time.Second))
	fmt.Println(kraft.CanRestartController(q, 3, 2*time.Second))
	fmt.Println(q.RollOrder())
	// Output:
	// cannot restart controller 2: voter 3 last caught up 9s before the leader 1 (controller.quorum.fetch.timeout.ms 2s): it is down or lagging; restarting controller 2 would leave 1 caught-up voter(s) [1] of 3, and the quorum needs 2
	// controller 3 can restart
	// [2 3 1]
}

// Gate a controller restart on the live quorum, then finalize
// metadata.version once every node runs the new release. It needs a
// cluster, so it is compiled but not run.
func Example() {
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:9092"))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()

	q, err := kraft.DescribeQuorum(ctx, cl)
	if err != nil {
		log.Fatal(err)
	}
	ft, err := kraft.QuorumFetchTimeout(ctx, cl)
	if err != nil {
		log.Printf("using %v: %v", ft, err) // the default, 2s
	}
	for _, id := range q.RollOrder() { // the active controller last
		if v := kraft.CanRestartController(q, id, ft.Timeout); !v.OK {
			log.Fatal(v.Err())
		}
		// … restart controller id, wait until it is caught up, describe the quorum again …
	}

	res, err := kraft.Finalize(ctx, cl, []kraft.FeatureUpdate{{Feature: "metadata.version", Level: 21}})
	if de, ok := errors.AsType[*compat.DowngradeError](err); ok {
		log.Fatalf("no safe way down: the floor is %v", de.Floor)
	}
	if err != nil {
		log.Fatal(err) // e.g. a *kraft.UnsupportedLevelError naming the node to upgrade first
	}
	fmt.Println(res.Features[0].From, "->", res.Features[0].To)
	if _, err := kraft.WaitFinalized(ctx, cl, map[string]int16{"metadata.version": 21}, time.Minute); err != nil {
		log.Fatal(err)
	}
}
