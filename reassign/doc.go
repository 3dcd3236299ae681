// Package reassign plans, batches and throttles partition moves: the data
// movement behind replacing, decommissioning and adding Kafka brokers.
//
// The pure core, which does no I/O and is deterministic:
//
//   - [PlanMoves] turns an [Assignment] (the current replicas of every
//     partition, stored compactly enough for millions of partitions), the
//     brokers and their racks, and a [Change] (brokers to replace, remove or
//     add) into a [Plan]: the minimal [Moves] that keep every partition's
//     replication factor, keep replicas in distinct racks, keep the current
//     leader where it stays, and balance replicas and leaders.
//   - A [Batcher] hands the moves out a few at a time, as Cruise Control's
//     executor does: per-broker slots (incoming and outgoing moves alike), a
//     cluster cap, never two moves of one partition at once, in an [Order]
//     such as [AtRiskFirst] or [SmallFirst]. It is told what finished and
//     refills the freed slots.
//   - A [Ledger] owns the replication throttles of the moves in flight: it
//     returns the [ConfigChanges] to apply (kadm IncrementalAlterConfigs
//     sets and deletes) as moves begin and finish, merges with throttles
//     that were there before, and restores them exactly. It is
//     JSON-serialisable for a journal.
//
// An executor built on these sends the batches with AlterPartitionAssignments,
// applies the ledger's changes, watches progress and cancels dead moves.
package reassign
