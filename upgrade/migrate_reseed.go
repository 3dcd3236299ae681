package upgrade

import (
	"context"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kupgrade/kupgrade/health"
)

// reseedBatch is how many partitions one no-op reassignment request names.
const reseedBatch = 500

// reseedPartitions gives every partition a state from the ZooKeeper
// controller, once it has taken over from the retired KRaft controller: a
// reassignment of each partition to the replicas it already has, which a
// ZooKeeper controller completes at once by bumping the partition's leader
// epoch and sending the new state to every replica. Nothing moves.
//
// Without it the leaders keep the partition epochs the KRaft controller
// gave them, which are not the ZooKeeper versions of the partition state
// znodes that a ZooKeeper controller checks an ISR change against: it
// answers a leader's AlterPartition with NOT_CONTROLLER, the leader retries
// forever, and a broker restarted next (the revert's second roll) never
// rejoins the ISR of such a partition (seen on 3.9.2; a leader epoch bump
// ended it).
func (u *run) reseedPartitions(ctx context.Context, i int) error {
	mops := u.r.cfg.ops.(migrationOps)
	n, err := mops.reseedPartitions(ctx)
	if err != nil {
		return fmt.Errorf("reassign every partition to its own replicas (a leader epoch bump from the ZooKeeper controller): %w", err)
	}
	u.emit(Event{Kind: EventWaiting, Step: i, Message: fmt.Sprintf("%d partitions reassigned to their own replicas: the ZooKeeper controller bumps their leader epochs; waiting until it has done so", n)})
	return u.waitFor(ctx, i, EventWaiting, u.r.cfg.catchUpTimeout, "the ZooKeeper controller did not complete the no-op reassignments", func(ctx context.Context) (health.Verdict, error) {
		pending, err := mops.reassignmentsPending(ctx)
		if err != nil {
			return health.Verdict{}, err
		}
		v := health.Verdict{Kind: health.Kind("reassignments"), OK: len(pending) == 0}
		if !v.OK {
			v.Reasons = []health.Reason{{Rule: "reassignment-pending", Partition: -1, Leader: -1,
				Message: fmt.Sprintf("%d reassignments in progress: %v", len(pending), firstFew(pending))}}
		}
		return v, nil
	})
}

// reseedPartitions reassigns every partition to its current replicas and
// returns how many it named.
func (o *liveOps) reseedPartitions(ctx context.Context) (int, error) {
	adm := kadm.NewClient(o.cl)
	topics, err := adm.ListTopicsWithInternal(ctx)
	if err != nil {
		return 0, fmt.Errorf("list topics: %w", err)
	}
	if err := topics.Error(); err != nil {
		return 0, fmt.Errorf("list topics: %w", err)
	}
	var all []replicaOrder
	for _, t := range topics.Sorted() {
		for _, p := range t.Partitions.Sorted() {
			all = append(all, replicaOrder{Topic: t.Topic, Partition: p.Partition, Replicas: slices.Clone(p.Replicas)})
		}
	}
	if err := o.reorderReplicas(ctx, all); err != nil {
		return 0, err
	}
	return len(all), nil
}

// reassignmentsPending lists the partitions being reassigned.
func (o *liveOps) reassignmentsPending(ctx context.Context) ([]string, error) {
	res, err := kadm.NewClient(o.cl).ListPartitionReassignments(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("list partition reassignments: %w", err)
	}
	var out []string
	for _, r := range res.Sorted() {
		out = append(out, fmt.Sprintf("%s-%d", r.Topic, r.Partition))
	}
	return out, nil
}
