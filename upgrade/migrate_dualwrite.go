package upgrade

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/health"
)

// RuleDualWriteBehind is the rule of a wait's reason while ZooKeeper does
// not yet hold a partition state the brokers already have: the KRaft
// controller writes its metadata to ZooKeeper after committing it (Kafka's
// ZooKeeperWriteBehindLag metric), so a leader election or ISR change of
// the last second may be known to the brokers and not to ZooKeeper yet.
const RuleDualWriteBehind health.Rule = "dual-write-behind"

// awaitDualWrite waits, before a revert retires the KRaft controllers,
// until ZooKeeper holds every partition state the brokers know. The KRaft
// controller writes to ZooKeeper after it commits, so a leader election or
// ISR change of the last moment may be known to the brokers only; retired
// then, the change never reaches ZooKeeper, and the ZooKeeper controller
// the revert elects starts from older leader epochs than the brokers hold.
// A precaution: in the runs that showed the revert stuck, ZooKeeper had
// caught up already (the cause was the partition epochs, see
// [run.reseedPartitions]).
func (u *run) awaitDualWrite(ctx context.Context, i int) error {
	mops := u.r.cfg.ops.(migrationOps)
	connect, err := revertZooKeeper(ctx, mops)
	if err != nil {
		return err
	}
	return u.waitFor(ctx, i, EventWaiting, u.r.cfg.catchUpTimeout, "ZooKeeper did not catch up with the KRaft controller's partition states", func(ctx context.Context) (health.Verdict, error) {
		behind, err := mops.dualWriteBehind(ctx, connect)
		if err != nil {
			return health.Verdict{}, err
		}
		v := health.Verdict{Kind: health.Kind("dual-write"), OK: len(behind) == 0}
		for _, b := range behind {
			v.Reasons = append(v.Reasons, health.Reason{Rule: RuleDualWriteBehind, Partition: -1, Leader: -1, Message: b})
		}
		return v, nil
	})
}

// partitionState is what a broker or ZooKeeper says of a partition's
// leadership.
type partitionState struct {
	Leader      int32   `json:"leader"`
	LeaderEpoch int32   `json:"leader_epoch"`
	ISR         []int32 `json:"isr"`
}

func (p partitionState) String() string {
	return fmt.Sprintf("leader %d epoch %d ISR %v", p.Leader, p.LeaderEpoch, p.ISR)
}

func (p partitionState) equal(o partitionState) bool {
	a, b := slices.Sorted(slices.Values(p.ISR)), slices.Sorted(slices.Values(o.ISR))
	return p.Leader == o.Leader && p.LeaderEpoch == o.LeaderEpoch && slices.Equal(a, b)
}

// dualWriteBehind asks every broker for the partitions' leaders, leader
// epochs and ISRs and compares them with the partition state znodes. It
// returns a line per partition where ZooKeeper (or a broker) differs, at
// most a few, or none when all agree.
func (o *liveOps) dualWriteBehind(ctx context.Context, connect string) ([]string, error) {
	meta, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, o.cl)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	seen := map[string]partitionState{} // topic-partition → what the first broker says
	var order []string
	var differ []string
	for _, b := range meta.Brokers {
		req := kmsg.NewPtrMetadataRequest()
		for _, t := range meta.Topics {
			if t.Topic != nil {
				rt := kmsg.NewMetadataRequestTopic()
				rt.Topic = t.Topic
				req.Topics = append(req.Topics, rt)
			}
		}
		resp, err := req.RequestWith(ctx, o.cl.Broker(int(b.NodeID)))
		if err != nil {
			return []string{fmt.Sprintf("broker %d: metadata: %v", b.NodeID, err)}, nil
		}
		for _, t := range resp.Topics {
			if t.Topic == nil {
				continue
			}
			for _, p := range t.Partitions {
				key := fmt.Sprintf("%s/partitions/%d", *t.Topic, p.Partition)
				st := partitionState{Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, ISR: p.ISR}
				first, ok := seen[key]
				switch {
				case !ok:
					seen[key] = st
					order = append(order, key)
				case !first.equal(st):
					differ = append(differ, fmt.Sprintf("%s: brokers differ (%v; broker %d: %v)", strings.Replace(key, "/partitions/", "-", 1), first, b.NodeID, st))
				}
			}
		}
	}
	if len(differ) > 0 {
		return firstFew(differ), nil
	}
	root := zkChroot(connect)
	paths := make([]string, len(order))
	for i, key := range order {
		paths[i] = root + "/brokers/topics/" + key + "/state"
	}
	var errs []error
	for _, srv := range zkServers(connect) {
		states, err := zkGetMany(ctx, srv, o.zkTimeout(), paths)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", srv, err))
			continue
		}
		var behind []string
		for i, key := range order {
			name := strings.Replace(key, "/partitions/", "-", 1)
			data, ok := states[paths[i]]
			if !ok {
				behind = append(behind, fmt.Sprintf("%s: no state in ZooKeeper yet (brokers: %v)", name, seen[key]))
				continue
			}
			var zk partitionState
			if err := json.Unmarshal(data, &zk); err != nil {
				return nil, fmt.Errorf("the state znode of %s is not the JSON Kafka writes: %.200q", name, data)
			}
			if !zk.equal(seen[key]) {
				behind = append(behind, fmt.Sprintf("%s: ZooKeeper has %v, the brokers %v", name, zk, seen[key]))
			}
		}
		return firstFew(behind), nil
	}
	return nil, fmt.Errorf("read the partition states from ZooKeeper: %w", errors.Join(errs...))
}

// firstFew keeps three lines and says how many more there were.
func firstFew(lines []string) []string {
	if len(lines) <= 3 {
		return lines
	}
	return append(lines[:3:3], fmt.Sprintf("and %d more partitions", len(lines)-3))
}
