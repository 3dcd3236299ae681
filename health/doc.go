// Package health observes a Kafka cluster and decides, without I/O, whether
// it is safe to restart nodes and whether a restarted node has caught up.
//
// Zero downtime depends on two promises: never restart a node whose absence
// would take a partition below min.insync.replicas or offline, and never move
// on until a restarted node is really back. This package keeps both as pure
// functions over a value, so they can be tested with a million partitions and
// explained line by line.
//
// The main types:
//
//   - [Snapshot]: brokers (and whether they are fenced), the controller, and
//     every partition with its leader, replicas, ISR, offline replicas and
//     effective min.insync.replicas. [Take] reads one fresh from a cluster;
//     tests build them by hand. A Snapshot is a JSON-serialisable value.
//   - [Verdict]: the answer of a check, with every [Reason] that blocks it.
//     [CanRestart] (or a configured [Gate]) asks "can these nodes be
//     restarted now?", [CaughtUp] asks "is this node back?", and
//     [ProbeResults.Within] asks "does every broker round-trip through the
//     canary in time?". [Verdict.Err] turns a refusal into a [*BlockedError].
//   - [Canary]: a topic with a partition led by every broker, and a probe
//     that produces and fetches one record through each broker.
//   - [Until]: take snapshots with a bounded back-off until a check approves
//     one or a deadline passes ([ErrTimeout]), reporting the last reason seen.
//
// Everything here reads, except [ElectPreferred] (which asks the controller
// to move leadership back to preferred replicas) and the [Canary] (which
// creates and writes to its own topic).
package health
