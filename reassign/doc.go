// Package reassign plans, batches and throttles partition moves: the data
// movement behind replacing, decommissioning and adding Kafka brokers.
//
// The pure core, which does no I/O and is deterministic:
//
//   - [PlanMoves] turns an [Assignment] (the current replicas of every
//     partition, stored compactly enough for millions of partitions), the
//     brokers and their racks, and a [BrokerChange] (brokers to replace, remove or
//     add) into a [MovePlan]: the minimal [Moves] that keep every partition's
//     replication factor, keep replicas in distinct racks, keep the current
//     leader where it stays, and balance replicas and leaders.
//   - A [Batcher] hands the moves out a few at a time, as Cruise Control's
//     executor does: per-broker slots (incoming and outgoing moves alike), a
//     cluster cap, never two moves of one partition at once, in an [Order]
//     such as [AtRiskFirst] or [SmallFirst]. It is told what finished and
//     refills the freed slots.
//   - The executor owns the replication throttles of the moves in flight:
//     it applies [ConfigChanges] (kadm IncrementalAlterConfigs sets and
//     deletes) as moves begin and finish, merges with throttles that were
//     there before, and restores them exactly; its bookkeeping is
//     journaled in the [Store].
//
// The I/O shell:
//
//   - [LoadAssignment] reads a cluster's placement, racks and partition
//     sizes for PlanMoves.
//   - An [Executor] carries the moves out: it refuses to start beside
//     reassignments it did not start (unless told to [AdoptForeign] them),
//     reads the throttles already set and feeds them to its Ledger, submits
//     the Batcher's batches with AlterPartitionAssignments, polls
//     ListPartitionReassignments and fresh metadata, counts a move done when
//     its replicas are the target and all in the ISR, cancels moves whose
//     destination broker died or that overran their [MoveBudget] (and puts
//     the original replica order back), reports [Progress], and restores
//     every throttle at the end. [Executor.SetRate] changes the throttle
//     while it runs.
//   - A [Store] ([FileStore], [MemoryStore]) keeps the executor's journal:
//     a crashed or stopped run is resumed by another Executor with
//     [Executor.Resume], which adopts the moves still in flight, or ended
//     with [Executor.Abort].
//
// Results are [MoveResults]: a failed move carries a [*MoveError] that
// unwraps to [ErrDeadBroker], [ErrTooSlow], [ErrStale], [ErrRejected] or
// [ErrAborted]; the executor's own error means the run could not start,
// was stopped, or left throttles it could not restore ([*ThrottleError]).
package reassign
