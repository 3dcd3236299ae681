// Package kraft reads and changes what a KRaft cluster's controllers own:
// the metadata quorum and the finalized feature levels.
//
// A KRaft upgrade restarts the controllers one at a time, active
// controller last, without ever leaving the quorum short of a caught-up
// majority, and then finalizes metadata.version (and, when asked, other
// features) once every node runs software that supports the new level.
// This package gives the facts and the decisions for both halves.
//
// The main types and functions:
//
//   - [DescribeQuorum] returns a [Quorum]: leader, epoch, high watermark,
//     and every voter and observer ([Replica]) with log end offset, lag,
//     last fetch and last caught-up time. [Quorum.ActiveController] and
//     [Quorum.RollOrder] tell a roll which controller goes last.
//   - [CanRestartController] is a pure [Verdict] on a Quorum: may this
//     controller restart now, and if not, which voters are in the way
//     ([Reason]s). [QuorumFetchTimeout] reads the
//     controller.quorum.fetch.timeout.ms it needs from the live config.
//   - [DescribeFeatures] asks every broker and every controller for its
//     ApiVersions (v4 where the node speaks it) and returns [ClusterFeatures]:
//     per node, the supported range and the finalized level of every
//     feature, with per-node errors. [Features.CheckSupport] is the pure
//     "does every node support this level" check.
//   - [Finalize] sends UpdateFeatures (upgrade, safe downgrade,
//     validate-only) after its own pre-checks, and turns Kafka's refusals
//     into typed errors ([*UpdateError], [*UnsupportedLevelError],
//     [*compat.DowngradeError]) that say what to do. [WaitFinalized] waits until
//     every node reports the new levels.
//
// # Reaching controllers
//
// Every call takes a franz-go client. Seeded with brokers, the usual case,
// requests for the quorum go through a broker, which forwards them; the
// controllers' own listeners, which are not in broker metadata, are found
// in DescribeQuorum v2 (Kafka 3.9+) or given with [ControllerAddrs] (3.7
// and 3.8), and dialled with the client's own options. Seeded with
// controller listeners (Kafka 3.7+, like --bootstrap-controller), requests
// go to the controllers directly; brokers then cannot be reached. Which
// kind of seeds a client has is found out from one seed's ApiVersions.
//
// Every request to one node is bounded by [NodeTimeout]; a node that
// does not answer is reported by name, never waited on forever and never
// left out silently.
//
// Only [Finalize] changes anything. Everything here is safe for
// concurrent use.
package kraft
