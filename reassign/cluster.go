package reassign

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/node"
)

// This file holds the executor's I/O: each function asks the cluster one
// thing, bounded by its own deadline, and returns plain values.

// partState is one partition as fresh metadata shows it.
type partState struct {
	replicas, isr []int32
	leader        int32
}

// A view is what one poll saw of the cluster.
type view struct {
	alive  map[int32]string                // brokers in metadata → rack
	topics map[string]map[int32]partState  // topics that exist
	moving map[string]map[int32]reassignee // reassignments in flight, of the partitions asked about
}

// reassignee is a reassignment in flight as ListPartitionReassignments shows it.
type reassignee struct {
	replicas, adding, removing []int32
}

// target returns the replicas the reassignment ends with.
func (r reassignee) target() []int32 { return minus(r.replicas, r.removing) }

// original returns the replicas before it (Kafka does not keep their order).
func (r reassignee) original() []int32 { return minus(r.replicas, r.adding) }

func (v *view) part(topic string, p int32) (partState, bool) {
	ps, ok := v.topics[topic][p]
	return ps, ok
}

func (v *view) listed(topic string, p int32) (reassignee, bool) {
	r, ok := v.moving[topic][p]
	return r, ok
}

func (v *view) isAlive(b int32) bool { _, ok := v.alive[b]; return ok }

// deadOf returns the brokers of bs that are not in the cluster.
func (v *view) deadOf(bs []int32) []int32 {
	var out []int32
	for _, b := range bs {
		if !v.isAlive(b) {
			out = append(out, b)
		}
	}
	return out
}

// bounded returns ctx with a deadline of d whose cause says what was
// awaited.
func bounded(ctx context.Context, d time.Duration, what string) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, d, fmt.Errorf("reassign: %s: no answer within %v", what, d))
}

// causeOf returns the cause of ctx's end if err came from it.
func causeOf(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
}

// metadata reads fresh metadata (never kgo's cached copy, which may be
// seconds old) for topics, or for every topic if topics is nil.
func metadata(ctx context.Context, cl *kgo.Client, d time.Duration, topics []string) (*view, error) {
	ctx, cancel := bounded(ctx, d, "metadata")
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	if topics != nil {
		req.Topics = []kmsg.MetadataRequestTopic{}
		for _, t := range topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(t)
			req.Topics = append(req.Topics, rt)
		}
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("reassign: metadata: %w", causeOf(ctx, err))
	}
	v := &view{alive: make(map[int32]string), topics: make(map[string]map[int32]partState)}
	for _, b := range resp.Brokers {
		v.alive[b.NodeID] = deref(b.Rack)
	}
	for _, t := range resp.Topics {
		name := deref(t.Topic)
		if t.ErrorCode == kerr.UnknownTopicOrPartition.Code || name == "" {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil && len(t.Partitions) == 0 {
			return nil, fmt.Errorf("reassign: metadata of topic %s: %w", name, err)
		}
		ps := make(map[int32]partState, len(t.Partitions))
		for _, p := range t.Partitions {
			ps[p.Partition] = partState{replicas: p.Replicas, isr: p.ISR, leader: p.Leader}
		}
		v.topics[name] = ps
	}
	return v, nil
}

// allPartitions returns every partition of the view's topics.
func (v *view) allPartitions() kadm.TopicsSet {
	s := make(kadm.TopicsSet)
	for t, ps := range v.topics {
		for p := range ps {
			s.Add(t, p)
		}
	}
	return s
}

// reassignments lists the reassignments in flight among the partitions of
// s, which must name them explicitly: kadm sends nothing for an empty set.
func reassignments(ctx context.Context, adm *kadm.Client, d time.Duration, s kadm.TopicsSet) (map[string]map[int32]reassignee, error) {
	out := make(map[string]map[int32]reassignee)
	if len(s) == 0 {
		return out, nil
	}
	ctx, cancel := bounded(ctx, d, "ListPartitionReassignments")
	defer cancel()
	resp, err := adm.ListPartitionReassignments(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("reassign: list reassignments: %w", causeOf(ctx, err))
	}
	for t, ps := range resp {
		for p, r := range ps {
			if out[t] == nil {
				out[t] = make(map[int32]reassignee)
			}
			out[t][p] = reassignee{replicas: r.Replicas, adding: r.AddingReplicas, removing: r.RemovingReplicas}
		}
	}
	return out, nil
}

// observe reads the reassignments in flight among the partitions of s,
// then fresh metadata of topics. In that order: a reassignment that
// completes between the two requests is then seen as not listed, with its
// final replicas (or, if the broker answering lags the controller, with
// the replicas of the reassignment still in flight), never as listed but
// done.
func observe(ctx context.Context, cl *kgo.Client, adm *kadm.Client, d time.Duration, topics []string, s kadm.TopicsSet) (*view, error) {
	moving, err := reassignments(ctx, adm, d, s)
	if err != nil {
		return nil, err
	}
	v, err := metadata(ctx, cl, d, topics)
	if err != nil {
		return nil, err
	}
	v.moving = moving
	return v, nil
}

// sizes maps broker → topic → partition → bytes of the replica there.
type sizes map[int32]map[string]map[int32]int64

func (s sizes) of(b int32, topic string, p int32) int64 { return s[b][topic][p] }

// logDirSizes asks each of brokers, at once, for the size of its replicas of
// the partitions in set (future replicas of intra-broker moves excluded).
// Each broker is asked once, without retries: a broker that just died
// fails fast instead of holding up the poll until d. A broker that does not
// answer is left out; the error joins their errors.
func logDirSizes(ctx context.Context, cl *kgo.Client, d time.Duration, brokers []int32, set kadm.TopicsSet) (sizes, error) {
	out := make(sizes)
	if len(set) == 0 {
		return out, nil
	}
	ctx, cancel := bounded(ctx, d, "DescribeLogDirs")
	defer cancel()
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for _, b := range brokers {
		wg.Go(func() {
			// One request per broker: kgo sets its version as it sends it.
			req := kmsg.NewPtrDescribeLogDirsRequest()
			for t, ps := range set {
				rt := kmsg.NewDescribeLogDirsRequestTopic()
				rt.Topic = t
				for p := range ps {
					rt.Partitions = append(rt.Partitions, p)
				}
				req.Topics = append(req.Topics, rt)
			}
			kresp, err := cl.Broker(int(b)).Request(ctx, req)
			if err == nil {
				err = kerr.ErrorForCode(kresp.(*kmsg.DescribeLogDirsResponse).ErrorCode)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("broker %d: %w", b, causeOf(ctx, err)))
				return
			}
			m := make(map[string]map[int32]int64)
			for _, dir := range kresp.(*kmsg.DescribeLogDirsResponse).Dirs {
				if dir.ErrorCode != 0 {
					continue
				}
				for _, t := range dir.Topics {
					for _, p := range t.Partitions {
						if p.IsFuture {
							continue
						}
						if m[t.Topic] == nil {
							m[t.Topic] = make(map[int32]int64)
						}
						m[t.Topic][p.Partition] += p.Size
					}
				}
			}
			out[b] = m
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return out, fmt.Errorf("reassign: describe log dirs: %w", errors.Join(errs...))
	}
	return out, nil
}

// readThrottles reads the replication throttle configs set on brokers and
// topics themselves (DYNAMIC_BROKER_CONFIG, DYNAMIC_TOPIC_CONFIG): what a
// ledger must restore. Static and cluster-default values are left out:
// deleting the per-resource value brings them back by itself.
func readThrottles(ctx context.Context, adm *kadm.Client, d time.Duration, brokers []int32, topics []string) (throttles, error) {
	t := throttles{Brokers: make(map[int32]brokerThrottle), Topics: make(map[string]topicThrottle)}
	ctx, cancel := bounded(ctx, d, "DescribeConfigs")
	defer cancel()
	if len(brokers) > 0 { // no broker at all would describe the cluster default
		rcs, err := adm.DescribeBrokerConfigs(ctx, brokers...)
		if err != nil {
			return t, fmt.Errorf("reassign: describe broker configs: %w", causeOf(ctx, err))
		}
		for _, rc := range rcs {
			if rc.Err != nil {
				return t, fmt.Errorf("reassign: describe configs of broker %s: %w %s", rc.Name, rc.Err, rc.ErrMessage)
			}
			id, err := strconv.ParseInt(rc.Name, 10, 32)
			if err != nil {
				continue
			}
			var bt brokerThrottle
			for _, c := range rc.Configs {
				if c.Source != kmsg.ConfigSourceDynamicBrokerConfig || c.Value == nil {
					continue
				}
				v := *c.Value
				switch c.Key {
				case LeaderRateConfig:
					bt.LeaderRate = &v
				case FollowerRateConfig:
					bt.FollowerRate = &v
				}
			}
			if bt != (brokerThrottle{}) {
				t.Brokers[int32(id)] = bt
			}
		}
	}
	if len(topics) > 0 {
		rcs, err := adm.DescribeTopicConfigs(ctx, topics...)
		if err != nil {
			return t, fmt.Errorf("reassign: describe topic configs: %w", causeOf(ctx, err))
		}
		for _, rc := range rcs {
			if rc.Err != nil {
				return t, fmt.Errorf("reassign: describe configs of topic %s: %w %s", rc.Name, rc.Err, rc.ErrMessage)
			}
			var tt topicThrottle
			for _, c := range rc.Configs {
				if c.Source != kmsg.ConfigSourceDynamicTopicConfig || c.Value == nil {
					continue
				}
				v := *c.Value
				switch c.Key {
				case LeaderReplicasConfig:
					tt.LeaderReplicas = &v
				case FollowerReplicasConfig:
					tt.FollowerReplicas = &v
				}
			}
			if tt != (topicThrottle{}) {
				t.Topics[rc.Name] = tt
			}
		}
	}
	return t, nil
}

// applyChanges applies config changes with one IncrementalAlterConfigs
// request, which kgo splits per broker (a broker's config can only be
// changed through that broker). It skips broker changes whose broker is not
// alive and returns them in left, with those that failed; a change whose
// topic no longer exists is dropped. err joins the failures.
func applyChanges(ctx context.Context, cl *kgo.Client, d time.Duration, cs ConfigChanges, alive func(int32) bool) (left ConfigChanges, err error) {
	type res struct {
		typ  kmsg.ConfigResourceType
		name string
	}
	var order []res
	byRes := make(map[res]ConfigChanges)
	for _, c := range cs {
		r := res{kmsg.ConfigResourceTypeTopic, c.Topic}
		if c.Resource == BrokerResource {
			if !alive(c.Broker) {
				left = append(left, c)
				continue
			}
			r = res{kmsg.ConfigResourceTypeBroker, strconv.Itoa(int(c.Broker))}
		}
		if _, ok := byRes[r]; !ok {
			order = append(order, r)
		}
		byRes[r] = append(byRes[r], c)
	}
	if len(order) == 0 {
		return left, nil
	}
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	for _, r := range order {
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = r.typ, r.name
		for _, c := range byRes[r] {
			rc := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
			rc.Name = c.Name
			rc.Op = kmsg.IncrementalAlterConfigOp(c.Op)
			if c.Op == kadm.SetConfig {
				rc.Value = kmsg.StringPtr(c.Value)
			}
			rr.Configs = append(rr.Configs, rc)
		}
		req.Resources = append(req.Resources, rr)
	}
	ctx, cancel := bounded(ctx, d, "IncrementalAlterConfigs")
	defer cancel()
	done := make(map[res]bool)
	var errs []error
	for _, sh := range cl.RequestSharded(ctx, req) {
		if sh.Err != nil {
			errs = append(errs, causeOf(ctx, sh.Err))
			continue
		}
		for _, rr := range sh.Resp.(*kmsg.IncrementalAlterConfigsResponse).Resources {
			r := res{rr.ResourceType, rr.ResourceName}
			err := kerr.ErrorForCode(rr.ErrorCode)
			switch {
			case err == nil:
				done[r] = true
			case r.typ == kmsg.ConfigResourceTypeTopic && errors.Is(err, kerr.UnknownTopicOrPartition):
				done[r] = true // the topic is gone, and its configs with it
			default:
				errs = append(errs, fmt.Errorf("%s %s: %w %s", r.typ, r.name, err, deref(rr.ErrorMessage)))
			}
		}
	}
	for _, r := range order {
		if !done[r] {
			left = append(left, byRes[r]...)
		}
	}
	if len(errs) > 0 {
		err = fmt.Errorf("reassign: apply throttle configs: %w", errors.Join(errs...))
	}
	return left, err
}

// alterAssignments sends one AlterPartitionAssignments request: req.Assign
// for moves, req.CancelAssign for cancellations. It returns the error of
// each partition that failed.
func alterAssignments(ctx context.Context, adm *kadm.Client, d time.Duration, req kadm.AlterPartitionAssignmentsReq) (map[string]map[int32]error, error) {
	ctx, cancel := bounded(ctx, d, "AlterPartitionAssignments")
	defer cancel()
	resp, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("reassign: alter partition assignments: %w", causeOf(ctx, err))
	}
	out := make(map[string]map[int32]error)
	for t, ps := range resp {
		for p, r := range ps {
			if r.Err == nil {
				continue
			}
			if out[t] == nil {
				out[t] = make(map[int32]error)
			}
			err := r.Err
			if r.ErrMessage != "" {
				err = fmt.Errorf("%w: %s", r.Err, r.ErrMessage)
			}
			out[t][p] = err
		}
	}
	return out, nil
}

// LoadAssignment reads a cluster's current placement for [PlanMoves]: every
// partition of topics (of every topic, internal ones included, if none are
// given) with its replicas, its leader and its size (the largest of its
// replicas, from DescribeLogDirs), and every broker in the cluster with its
// rack. It reads fresh metadata. A broker that is down is not in the list;
// PlanMoves accepts it as a broker to retire. ctx bounds the whole call.
func LoadAssignment(ctx context.Context, cl *kgo.Client, topics ...string) (*Assignment, []node.Node, error) {
	if cl == nil {
		return nil, nil, fmt.Errorf("%w: LoadAssignment needs a client (cl is nil)", ErrInvalid)
	}
	const d = 30 * time.Second
	var names []string
	if len(topics) > 0 {
		names = topics
	}
	v, err := metadata(ctx, cl, d, names)
	if err != nil {
		return nil, nil, err
	}
	for _, t := range topics {
		if _, ok := v.topics[t]; !ok {
			return nil, nil, fmt.Errorf("%w: topic %s does not exist", ErrInvalid, t)
		}
	}
	sz, err := logDirSizes(ctx, cl, d, sortedKeys(v.alive), v.allPartitions())
	if err != nil && len(sz) == 0 {
		return nil, nil, err
	}
	a := new(Assignment)
	for _, t := range slices.Sorted(maps.Keys(v.topics)) {
		for _, p := range slices.Sorted(maps.Keys(v.topics[t])) {
			ps := v.topics[t][p]
			var size int64
			for _, b := range ps.replicas {
				size = max(size, sz.of(b, t, p))
			}
			if err := a.Add(PartitionAssignment{Topic: t, Partition: p, Replicas: ps.replicas, Leader: ps.leader, Bytes: size}); err != nil {
				return nil, nil, err
			}
		}
	}
	var brokers []node.Node
	for _, b := range sortedKeys(v.alive) {
		brokers = append(brokers, node.Node{ID: b, Rack: v.alive[b]})
	}
	return a, brokers, nil
}

func sortedKeys[V any](m map[int32]V) []int32 { return slices.Sorted(maps.Keys(m)) }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
