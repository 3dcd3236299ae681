package compat_test

import (
	"errors"
	"fmt"
	"log"

	"github.com/kupgrade/kupgrade/compat"
)

// What does upgrading a three-broker ZooKeeper cluster on 3.6 to 4.1 involve?
func ExampleRoute() {
	state := compat.State{Mode: compat.ModeZooKeeper}
	for id := int32(1); id <= 3; id++ {
		state.Nodes = append(state.Nodes, compat.NodeState{
			ID:      id,
			Release: compat.MustParseRelease("3.6.2"),
			IBPV:    compat.Default(), // inter.broker.protocol.version not set
			LMFV:    compat.Default(),
		})
	}
	plan, err := compat.Route(state, compat.MustParseRelease("4.1.2"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(plan)
	fmt.Println("reversible:", plan.Reversible())
	// Output:
	// route to 4.1.2: 3 hops
	// 1. zookeeper-upgrade 3.6.2 → 3.9.2
	//    before: the ZooKeeper ensemble runs 3.8.3 or newer (3.9 upgrade notes)
	//    a. roll brokers 1,2,3 to 3.9.2 set inter.broker.protocol.version=3.6-IV2 [reversible]
	//    b. restart brokers 1,2,3 set inter.broker.protocol.version=3.9-IV0 [irreversible]
	// 2. migration on 3.9.2
	//    before: every broker has an explicit, non-negative broker.id (broker.id generation is incompatible with the migration)
	//    before: the KRaft controllers get node ids that no broker uses, and the ZooKeeper cluster's cluster id
	//    before: no inter.broker.protocol.version or metadata.version change while migrating: Kafka does not support it
	//    a. provision controllers on 3.9.2 set process.roles=controller zookeeper.metadata.migration.enable=true [reversible]
	//    b. restart brokers 1,2,3 set zookeeper.metadata.migration.enable=true [reversible]
	//    c. restart brokers 1,2,3 set process.roles=broker unset broker.id zookeeper.connect zookeeper.metadata.migration.enable inter.broker.protocol.version control.plane.listener.name [reversible]
	//    d. restart controllers unset zookeeper.metadata.migration.enable zookeeper.connect [irreversible]
	// 3. kraft-upgrade 3.9.2 → 4.1.2
	//    before: clients (including Streams and Connect) run 2.1 or newer: 4.0 removed older protocol versions (KIP-896; see CheckClient)
	//    before: brokers and controllers run on Java 17 or newer
	//    a. roll controllers to 4.1.2 [reversible]
	//    b. roll brokers 1,2,3 to 4.1.2 [reversible]
	//    c. finalize metadata.version=27 (4.1-IV1) [irreversible]
	//    d. finalize eligible.leader.replicas.version=1 group.version=1 transaction.version=2 [reversible]
	//    e. optional: finalize share.version=1 [reversible]
	//    f. optional: finalize kraft.version=1 [irreversible]
	// reversible: false
}

// The same string means different things to different releases.
func ExampleParseMetadataVersion() {
	for _, c := range []struct{ in, reader string }{
		{"0.10.0.0-IV0", "3.9.1"}, // three segments for 0.x: the -IV0 is dropped with the fourth
		{"1.0.1", "3.9.1"},        // two segments otherwise
		{"4.0", "3.9.1"},          // the short form maps production versions only
		{"4.0-IV0", "3.9.1"},      // an unstable 3.9 version (ELR), not 4.0's meaning
		{"4.0", "4.2.1"},
		{"0.10.0", "4.2.1"}, // nothing below 3.3-IV3 in 4.x
	} {
		mv, err := compat.ParseMetadataVersion(c.in, compat.MustParseRelease(c.reader))
		switch {
		case err != nil:
			fmt.Printf("%s read by %s: error\n", c.in, c.reader)
		case mv.Unstable:
			fmt.Printf("%s read by %s: %v (level %d, unstable)\n", c.in, c.reader, mv, mv.Level)
		default:
			fmt.Printf("%s read by %s: %v (level %d)\n", c.in, c.reader, mv, mv.Level)
		}
	}
	// Output:
	// 0.10.0.0-IV0 read by 3.9.1: 0.10.0-IV1 (level -1)
	// 1.0.1 read by 3.9.1: 1.0-IV0 (level -1)
	// 4.0 read by 3.9.1: error
	// 4.0-IV0 read by 3.9.1: 4.0-IV0 (level 22, unstable)
	// 4.0 read by 4.2.1: 4.0-IV3 (level 25)
	// 0.10.0 read by 4.2.1: error
}

// What does a real broker of each release advertise, and what does a fresh
// cluster of it finalize? These are the facts a cross-check against real
// brokers compares.
func ExampleDefaultFeatureLevels() {
	for _, s := range []string{"3.9.1", "4.2.1", "4.4.0"} {
		r := compat.MustParseRelease(s)
		mvs, _ := compat.SupportedMetadataVersions(r)
		lp, _ := compat.LatestProduction(r)
		levels, _ := compat.DefaultFeatureLevels(r, compat.DynamicQuorum)
		fmt.Printf("%v: supports %v, formats %v\n  finalized: %v\n", r, mvs, lp, levels.NonZero())
	}
	// Output:
	// 3.9.1: supports 3.0-IV1…3.9-IV0, formats 3.9-IV0
	//   finalized: metadata.version=21 kraft.version=1
	// 4.2.1: supports 3.3-IV3…4.2-IV1, formats 4.2-IV1
	//   finalized: metadata.version=29 eligible.leader.replicas.version=1 group.version=1 kraft.version=1 share.version=1 streams.version=1 transaction.version=2
	// 4.4.0: supports 3.3-IV3…4.4-IV2, formats 4.4-IV2
	//   finalized: metadata.version=33 eligible.leader.replicas.version=1 group.version=1 kraft.version=1 share.version=2 streams.version=1 transaction.version=2
}

// How far back can a cluster finalized at 4.2-IV1 go?
func ExampleCanDowngrade() {
	from := compat.MustParseMetadataVersion("4.2-IV1", compat.MustParseRelease("4.2.1"))
	fmt.Println("floor:", compat.SafeDowngradeFloor(from))
	for _, to := range []string{"4.0-IV3", "3.9-IV0"} {
		err := compat.CanDowngrade(from, compat.MustParseMetadataVersion(to, compat.MustParseRelease("4.2.1")))
		if de, ok := errors.AsType[*compat.DowngradeError](err); ok {
			fmt.Printf("to %s: no, %v is in the way\n", to, de.Blocker)
			continue
		}
		fmt.Printf("to %s: yes\n", to)
	}
	// Output:
	// floor: 4.0-IV1
	// to 4.0-IV3: yes
	// to 3.9-IV0: no, 4.0-IV1 is in the way
}

// Can a 2.0 Java consumer keep working after the brokers move to 4.0?
func ExampleCheckClient() {
	for _, c := range []string{"2.0.1", "2.8.2", "3.6.2"} {
		v, _ := compat.CheckClient(compat.MustParseRelease(c), compat.MustParseRelease("4.0.0"))
		fmt.Printf("%s: %v\n", c, v.Support)
	}
	// Output:
	// 2.0.1: unsupported
	// 2.8.2: partial
	// 3.6.2: supported
}
