package upgrade_test

import (
	"context"
	"fmt"
	"log"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/node"
	"github.com/kupgrade/kupgrade/upgrade"
)

// What does upgrading a three-broker ZooKeeper cluster from 3.6.2 to 3.9.2
// involve? Two rolls: the new binaries with inter.broker.protocol.version
// pinned to the old value, then a roll raising it, which cannot be undone.
func ExampleNewPlan() {
	state := compat.State{Mode: compat.ModeZooKeeper, Finalized: compat.FeatureLevels{}}
	for id := int32(1); id <= 3; id++ {
		state.Nodes = append(state.Nodes, compat.NodeState{ID: id, Release: compat.MustParseRelease("3.6.2"),
			IBPV: compat.Default(), LMFV: compat.Default()})
	}
	plan, err := upgrade.NewPlan(state, upgrade.Target{Version: compat.MustParseRelease("3.9.2")})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range plan.Steps {
		rev := "reversible"
		if !s.Reversible {
			rev = "irreversible, held"
		}
		fmt.Printf("%v (%s)\n", s, rev)
	}
	// Output:
	// preflight: check that the nodes and releases are those planned for and that no partition is offline or under min ISR (reversible)
	// restart node 1 (broker): version=3.9.2 set[inter.broker.protocol.version=3.6-IV2] (reversible)
	// restart node 2 (broker): version=3.9.2 set[inter.broker.protocol.version=3.6-IV2] (reversible)
	// restart node 3 (broker): version=3.9.2 set[inter.broker.protocol.version=3.6-IV2] (reversible)
	// restart node 1 (broker): set[inter.broker.protocol.version=3.9-IV0] (irreversible, held)
	// restart node 2 (broker): set[inter.broker.protocol.version=3.9-IV0] (irreversible, held)
	// restart node 3 (broker): set[inter.broker.protocol.version=3.9-IV0] (irreversible, held)
}

// myOrchestrator restarts nodes on your infrastructure.
type myOrchestrator struct{}

func (myOrchestrator) Nodes(ctx context.Context) ([]node.Node, error) { return nil, nil }
func (myOrchestrator) Restart(ctx context.Context, id int32, ch node.Change) error {
	return nil // edit server.properties, switch the binary to ch.Version, restart the service
}

// The whole flow against a live cluster: inspect, plan, print the dry run,
// run with a journal so that an interrupted run can resume.
func ExampleRunner() {
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:9092")) // your client: your TLS and SASL
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	orch := myOrchestrator{}
	in, err := upgrade.Inspect(ctx, cl, upgrade.InspectWith(orch))
	if err != nil {
		log.Fatal(err)
	}
	plan, err := upgrade.NewPlan(in.State, upgrade.Target{Version: compat.MustParseRelease("4.1.2")})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(plan) // the dry run
	runner, err := upgrade.NewRunner(cl, orch,
		upgrade.WithJournal(upgrade.NewFileJournal("upgrade-journal.json")),
		upgrade.OnEvent(func(e upgrade.Event) { fmt.Println(e) }),
		upgrade.PassHolds(), // also finalize metadata.version, which cannot be undone
	)
	if err != nil {
		log.Fatal(err) // an option out of range: nothing has been asked of the cluster
	}
	if err := runner.Run(ctx, plan); err != nil {
		log.Fatal(err)
	}
}
