// Package kupgrade plans and executes zero-downtime Apache Kafka upgrades,
// in ZooKeeper mode and in KRaft mode.
//
// kupgrade is a library: it decides what to do and when it is safe, and leaves
// how a node is restarted to a [node.Orchestrator] that the user supplies.
// The packages, each with one idea (ARCHITECTURE.md in the repository shows
// what each owns and how an upgrade flows through them):
//
//   - [github.com/kupgrade/kupgrade/node]: the [node.Orchestrator] interface
//     you implement, its optional capabilities and the types they use. It
//     imports nothing of the engine.
//   - [github.com/kupgrade/kupgrade/compat]: Kafka releases, inter.broker.protocol.version,
//     log.message.format.version, KRaft metadata.version and feature levels, legal
//     upgrade routes and safe-downgrade floors. Pure functions and data, no I/O.
//   - [github.com/kupgrade/kupgrade/health]: snapshots of partitions and brokers,
//     "can these nodes be restarted now, and if not, exactly why", caught-up checks
//     and a canary produce/consume probe.
//   - [github.com/kupgrade/kupgrade/kraft]: controller quorum health, supported and
//     finalized features, UpdateFeatures.
//   - [github.com/kupgrade/kupgrade/reassign]: planned, batched and throttled
//     partition moves.
//   - [github.com/kupgrade/kupgrade/upgrade]: Inspect, typed plans and a Runner
//     that executes them through a [node.Orchestrator] with health gates, a
//     journal and events.
//   - [github.com/kupgrade/kupgrade/kafkatest]: real Kafka clusters (ZooKeeper or
//     KRaft, any release from Maven Central jars) as local JVM processes, for tests
//     and demos, plus a traffic generator that proves no acknowledged record was lost.
package kupgrade
