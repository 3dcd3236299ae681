package health

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/internal/hedge"
)

// A CatchUpOption configures [CaughtUp].
type CatchUpOption interface{ applyCatchUp(*catchUpConfig) }

type catchUpOptionFunc func(*catchUpConfig)

func (f catchUpOptionFunc) applyCatchUp(c *catchUpConfig) { f(c) }

type catchUpConfig struct {
	leadsPreferred bool
}

// LeadsPreferred also requires the node to lead every partition of which it
// is the preferred (first) replica, overriding the default, which does not
// look at leadership. See [ElectPreferred] to bring leadership back rather
// than wait for Kafka's auto.leader.rebalance.enable to do it.
func LeadsPreferred() CatchUpOption {
	return catchUpOptionFunc(func(c *catchUpConfig) { c.leadsPreferred = true })
}

// CaughtUp reports whether node is back after a restart, and why not: it is
// registered and not fenced ([RuleNodeDown]), every replica it hosts is in
// the ISR ([RuleNotInISR]) and on an online log directory
// ([RuleReplicaOffline]), and, with [LeadsPreferred], it leads the partitions
// it is the preferred leader of ([RuleNotPreferredLeader]). It does no I/O.
//
// If the snapshot lists no brokers, registration is not checked.
func CaughtUp(s Snapshot, node int32, opts ...CatchUpOption) Verdict {
	var cfg catchUpConfig
	for _, o := range opts {
		o.applyCatchUp(&cfg)
	}
	v := Verdict{Kind: KindCaughtUp, Nodes: []int32{node}}
	if len(s.Brokers) > 0 {
		b, ok := s.Broker(node)
		switch {
		case !ok:
			v.Reasons = append(v.Reasons, nodeReason(node, fmt.Sprintf("node %d is not registered (absent from metadata)", node)))
		case b.Fenced:
			v.Reasons = append(v.Reasons, nodeReason(node, fmt.Sprintf("node %d is registered but fenced", node)))
		}
	}
	s.eachOn(s.lookup(), node, func(t *Topic, p *Partition) {
		v.Checked++
		reason := func(rule Rule, msg string) {
			v.Reasons = append(v.Reasons, Reason{
				Rule: rule, Topic: t.Name, Partition: p.Partition, Nodes: []int32{node},
				Leader: p.Leader, Replicas: p.Replicas, ISR: p.ISR, MinISR: t.EffectiveMinISR(),
				Message: tp(t.Name, p.Partition) + ": " + msg,
			})
		}
		switch {
		case slices.Contains(p.Offline, node):
			reason(RuleReplicaOffline, fmt.Sprintf("the replica on node %d is on an offline log directory", node))
		case !slices.Contains(p.ISR, node):
			reason(RuleNotInISR, fmt.Sprintf("node %d is not in ISR %s", node, fmtSet(p.ISR)))
		}
		if cfg.leadsPreferred && p.PreferredLeader() == node && p.Leader != node {
			if p.Leader < 0 {
				reason(RuleNotPreferredLeader, fmt.Sprintf("node %d is the preferred leader, but the partition has no leader", node))
			} else {
				reason(RuleNotPreferredLeader, fmt.Sprintf("node %d is the preferred leader, but node %d leads", node, p.Leader))
			}
		}
	})
	if len(v.Reasons) > 1 {
		sortReasons(v.Reasons)
	}
	v.OK = len(v.Reasons) == 0
	return v
}

func nodeReason(node int32, msg string) Reason {
	return Reason{Rule: RuleNodeDown, Partition: -1, Leader: -1, Nodes: []int32{node}, Message: msg}
}

// An Election is the outcome of one preferred leader election.
type Election struct {
	// Topic and Partition name the partition.
	Topic     string
	Partition int32
	// Err is non-nil if the election failed. An election that was not
	// needed (the preferred replica already leads) is a success.
	Err error
}

// MarshalJSON renders the election with Err as a string.
func (e Election) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		Error     string `json:"error,omitempty"`
	}{e.Topic, e.Partition, errString(e.Err)})
}

// Elections are election outcomes sorted by topic and partition.
type Elections []Election

// FirstErr returns the first failed election's error, or nil.
func (es Elections) FirstErr() error {
	for _, e := range es {
		if e.Err != nil {
			return fmt.Errorf("health: preferred leader election for %s: %w", tp(e.Topic, e.Partition), e.Err)
		}
	}
	return nil
}

// electTimeout bounds ElectPreferred.
const electTimeout = 30 * time.Second

// ElectPreferred asks the controller to make node the leader again of every
// partition in s of which it is the preferred replica, is in the ISR, but
// does not lead. It sends nothing if there is no such partition. The error
// means the request could not be made or was refused as a whole; per-partition
// failures are in the Elections. It gives up after 30s.
//
// This writes to the cluster (leadership only) and needs ALTER on CLUSTER.
func ElectPreferred(ctx context.Context, cl *kgo.Client, s Snapshot, node int32) (Elections, error) {
	if cl == nil {
		return nil, errors.New("health: ElectPreferred needs a client (cl is nil)")
	}
	var req struct {
		Topics []kmsg.ElectLeadersRequestTopic
	}
	last := -1
	s.EachPartitionOn(node, func(t Topic, p Partition) {
		if p.PreferredLeader() != node || p.Leader == node || !p.InISR(node) || slices.Contains(p.Offline, node) {
			return
		}
		if last < 0 || req.Topics[last].Topic != t.Name {
			rt := kmsg.NewElectLeadersRequestTopic()
			rt.Topic = t.Name
			req.Topics = append(req.Topics, rt)
			last = len(req.Topics) - 1
		}
		req.Topics[last].Partitions = append(req.Topics[last].Partitions, p.Partition)
	})
	if len(req.Topics) == 0 {
		return nil, nil // an empty request would elect every partition
	}
	ctx, cancel := context.WithTimeoutCause(ctx, electTimeout,
		fmt.Errorf("health: preferred leader election for node %d not answered within %v", node, electTimeout))
	defer cancel()
	es, err := electLeaders(ctx, cl, req.Topics)
	if err != nil {
		return nil, fmt.Errorf("health: preferred leader election for node %d: %w", node, err)
	}
	slices.SortFunc(es, func(a, b Election) int {
		return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return es, nil
}

// electLeaders runs one preferred leader election request.
func electLeaders(ctx context.Context, cl *kgo.Client, topics []kmsg.ElectLeadersRequestTopic) (Elections, error) {
	req := kmsg.NewPtrElectLeadersRequest()
	req.ElectionType = 0 // preferred
	req.TimeoutMillis = int32(electTimeout / time.Millisecond)
	req.Topics = topics
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, hedge.CtxErr(ctx, err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, err
	}
	var es Elections
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			err := kerr.ErrorForCode(p.ErrorCode)
			if errors.Is(err, kerr.ElectionNotNeeded) {
				err = nil
			}
			if err != nil && p.ErrorMessage != nil && *p.ErrorMessage != "" {
				err = fmt.Errorf("%w: %s", err, *p.ErrorMessage)
			}
			es = append(es, Election{Topic: t.Topic, Partition: p.Partition, Err: err})
		}
	}
	return es, nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
