// Package upgrade plans and runs zero-downtime Kafka upgrades.
//
// The flow:
//
//	in, err := upgrade.Inspect(ctx, cl, upgrade.InspectWith(orch))       // what runs now
//	plan, err := upgrade.NewPlan(in.State, upgrade.Target{Version: compat.MustParseRelease("4.1.2")}) // typed, ordered, explainable
//	fmt.Print(plan)                                                       // the dry run
//	runner, err := upgrade.NewRunner(cl, orch, upgrade.WithJournal(j))  // options checked here
//	err = runner.Run(ctx, plan)                                           // gated, journaled, resumable
//
// [Inspect] reads the cluster (releases, pins, finalized features, the
// quorum) into an [Inspection] whose State is a [compat.State]. [NewPlan]
// turns the route [compat.Route] finds into a [Plan] of [Step]s: a preflight,
// one restart per node per roll (ZooKeeper: the new binaries with
// inter.broker.protocol.version pinned, then a roll raising it; KRaft:
// controllers, then brokers), finalize steps, and optional bake and
// leader-election steps. Each step says whether it can be undone; the
// irreversible ones are held until the caller allows them ([PassHolds]).
// [NewRollbackPlan] plans the way back while that is still possible.
// [NewReplacePlan] replaces brokers instead of restarting them (blue/green,
// in waves of [ReplaceWaves], after a disk check), and
// [NewStopTheWorldPlan] stops every node at once for users who accept the
// outage ([AcceptDowntime]), reporting how long it lasted.
//
// A ZooKeeper cluster planned to 4.x goes through the ZooKeeper to KRaft
// migration on the 3.9 bridge, in the same plan: the bridge upgrade,
// KRaft controllers provisioned in migration mode through the
// Orchestrator's [node.Provisioner] ([MigrationControllers] picks their
// ids), the brokers rolled into migration mode, a wait until the metadata
// is copied ([StepAwaitMigration] says how it knows), the brokers rolled to
// KRaft, the controllers restarted out of migration mode (the point of no
// return, held: [Plan.PointOfNoReturn]), then the KRaft upgrade to the
// target. Each step has its [Phase]. Until the point of no return,
// [NewRollbackPlan] plans Apache Kafka's revert to ZooKeeper mode, with
// what the revert needs beyond Apache's steps on real brokers: the KRaft
// controller retired only once ZooKeeper holds the partition states the
// brokers hold, the new ZooKeeper controller's epoch above the KRaft one,
// and every partition's state re-issued by the new controller before the
// second roll ([StepClearMigration]). NewPlan
// refuses what Kafka cannot migrate (*[MigrationRefusal]: generated broker
// ids, JBOD below inter.broker.protocol.version 3.7-IV2) and switches
// [AclAuthorizer] to [StandardAuthorizer]; [Inspect] reports how far a
// migration has gone ([Inspection.Migration]). NewStopTheWorldPlan and
// NewReplacePlan refuse routes that migrate.
//
// A [Runner] executes a plan. Before each restart it waits, bounded, until
// [health.CanRestart] (and, for controllers, the KRaft quorum rule) allows
// it, reporting the blocking partitions in [Event]s; the active controller
// (or the ZooKeeper controller broker) goes last in its roll, re-checked at
// each step. After each restart it waits until the node is back in every
// ISR. In ZooKeeper mode, a leader that does not take the restarted broker
// back into a partition's ISR for a minute (the broker's replica caught up,
// or served nothing) loses that partition's leadership to an in-sync
// replica, and the replicas' order is restored once the broker is back
// ([EventLeadersMoved]): a leader whose requests to the controller stopped
// (seen on 3.9.2 after a migration's revert) would otherwise hold the
// broker out until the leader itself restarts. With [CanaryGate], real
// records must also round-trip through every broker before and after each
// restart ([health.Canary]). A [Journal] records progress, so a Runner
// given the journal of an interrupted run resumes it without restarting a
// node twice. With
// [BatchRestarts] the brokers of a roll restart in batches: the largest sets
// whose joint restart the gate allows, a rack at a time where that is safe,
// checked again just before each batch; controllers stay one at a time.
//
// # Orchestrators
//
// How a node is restarted is yours: a [node.Orchestrator] (package node,
// which imports nothing of the engine, documents how to write one). The
// Runner discovers its optional capabilities by type assertion, as
// database/sql does with database/sql/driver:
//
//   - [node.Liveness]: whether a node's process is alive. With it, a node
//     that dies after its restart stops the run at once, named, instead of
//     when [CatchUpTimeout] runs out, and a broker that died counts as down
//     in the restart gate before Kafka notices.
//   - [node.Provisioner]: start new nodes and retire old ones, which
//     node-replacement plans ([NewReplacePlan]) need; a Runner refuses such a
//     plan before its first step if the Orchestrator lacks it.
//   - [node.Stopper]: stop a node and start it again as two calls, so that
//     a stop-the-world plan ([NewStopTheWorldPlan]) has every node down
//     before any starts; without it such a plan restarts every node
//     concurrently.
//
// Package kafkatest implements all of them for local test clusters.
//
// # When things fail
//
// Under the defaults a Runner takes no unsafe step whatever fails around it:
//
//   - Every gate runs a bounded liveness probe of every broker
//     ([BrokerProbeTimeout]): a hung broker that Kafka still counts in its
//     ISRs blocks the next restart until it answers ([NoBrokerProbe] opts
//     out).
//   - In ZooKeeper mode every health snapshot first asks the brokers'
//     ZooKeeper whether it serves ([NoZooKeeperProbe] opts out): while it is
//     down, gates and catch-ups wait, without the topic config reads that
//     would hold the brokers' request threads until it is back.
//   - Run refuses a plan whose content does not match its ID, or whose steps
//     are malformed ([Plan.Verify]), before it touches a node.
//   - One run at a time: a second Run of a Runner fails with [ErrRunning],
//     and a [LockingJournal] ([FileJournal], [MemoryJournal]) held by another
//     run, in any process, with a *[JournalLockedError] naming the holder.
//   - A step the last run stopped in while restarting its node settles (the
//     node back, its change in effect) before it is judged again, so a rerun
//     right after a crash does not restart the node a second time.
//   - Secret config values (see [node.SecretKey]) never appear in plan
//     tables, events, errors or logs.
//   - Credentials the cluster refuses fail at once with [ErrUnauthenticated]
//     (not [ErrUnreachable]), and a request Kafka refuses for want of an ACL
//     with a *[DeniedError] naming the ACL operation and resource, instead
//     of waiting for a gate's timeout.
//
// # Secured clusters
//
// kupgrade connects only with the caller's *kgo.Client: TLS and SASL are
// the client's options, and the direct controller connections (package
// kraft) reuse them. [ACLs] lists the exact ACLs each [Operation] needs
// ([CanaryACLs] those of a canary topic), as data to grant, or as franz-go
// builders with [ACLBuilders].
package upgrade
