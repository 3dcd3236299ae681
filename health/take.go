package health

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/internal/hedge"
	"github.com/kupgrade/kupgrade/node"
)

// A TakeOption configures [Take].
type TakeOption interface{ applyTake(*takeConfig) }

type takeOptionFunc func(*takeConfig)

func (f takeOptionFunc) applyTake(c *takeConfig) { f(c) }

type takeConfig struct {
	timeout time.Duration
	batch   int
}

func defaultTakeConfig() takeConfig { return takeConfig{timeout: 30 * time.Second, batch: 500} }

func (c *takeConfig) validate() error {
	if c.timeout <= 0 {
		return fmt.Errorf("health: TakeTimeout(%v): must be positive", c.timeout)
	}
	if c.batch <= 0 {
		return fmt.Errorf("health: ConfigBatch(%d): must be positive", c.batch)
	}
	return nil
}

// TakeTimeout bounds a whole [Take], overriding the default of 30s.
func TakeTimeout(d time.Duration) TakeOption {
	return takeOptionFunc(func(c *takeConfig) { c.timeout = d })
}

// ConfigBatch sets how many topics one DescribeConfigs request asks about,
// overriding the default of 500.
func ConfigBatch(n int) TakeOption {
	return takeOptionFunc(func(c *takeConfig) { c.batch = n })
}

func takeConfigOf(opts []TakeOption) (takeConfig, error) {
	cfg := defaultTakeConfig()
	for _, o := range opts {
		o.applyTake(&cfg)
	}
	return cfg, cfg.validate()
}

// configParallel is how many DescribeConfigs batches Take has in flight.
const configParallel = 4

// minISRKey is the config Take reads per topic.
const minISRKey = "min.insync.replicas"

// Take reads a fresh [Snapshot] of the cluster cl talks to.
//
// It sends its own Metadata request for all topics rather than use kadm's,
// which may answer from a cache up to kgo.MetadataMinAge (5s) old; it asks
// DescribeCluster (v2, with fenced brokers) which brokers are fenced, and does
// without where the brokers are too old or do not answer it; and it reads
// every topic's effective min.insync.replicas with DescribeConfigs in batches
// (the value and source are those of the broker that answers, for topics
// without an override). A topic whose config cannot be read gets
// a [Topic.MinISRError] saying why. The returned Snapshot is indexed.
//
// Every read is hedged: if a broker has not answered within a second, the
// same read goes to another broker as well (at most two more), and the first
// answer wins. A hung broker (paused, partitioned, in a long GC pause) holds
// a request until the client's timeout, 10s by default in franz-go; this way
// it costs Take about a second.
//
// A snapshot shows what Kafka believes. A broker that crashed stays listed,
// with full ISRs, until Kafka notices: after broker.session.timeout.ms in
// KRaft mode (9s by default), or zookeeper.session.timeout.ms in ZooKeeper
// mode (18s by default). KRaft brokers on Kafka 4.0 and later then show as
// fenced ([Snapshot.FencingKnown]); earlier KRaft brokers and ZooKeeper mode
// drop them from Brokers. A [Canary] probe, which connects to every broker,
// sees a crash at once.
//
// The error means the cluster could not be asked at all (metadata, or a whole
// DescribeConfigs batch, failed); partial problems are in the Snapshot.
func Take(ctx context.Context, cl *kgo.Client, opts ...TakeOption) (Snapshot, error) {
	if cl == nil {
		return Snapshot{}, fmt.Errorf("health: Take needs a client (cl is nil)")
	}
	cfg, err := takeConfigOf(opts)
	if err != nil {
		return Snapshot{}, err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, cfg.timeout, fmt.Errorf("health: snapshot not taken within %v", cfg.timeout))
	defer cancel()

	resp, answered, err := hedge.Do(ctx, hedge.ViaClient(cl, 1+hedge.MaxHedges, func() kmsg.Request {
		req := kmsg.NewPtrMetadataRequest()
		req.Topics = nil // all topics
		req.AllowAutoTopicCreation = false
		return req
	}))
	if err != nil {
		return Snapshot{}, fmt.Errorf("health: snapshot: metadata: %w", hedge.CtxErr(ctx, err))
	}
	meta := resp.(*kmsg.MetadataResponse)
	s := Snapshot{TakenAt: time.Now(), Controller: meta.ControllerID}
	if meta.ClusterID != nil {
		s.ClusterID = *meta.ClusterID
	}
	for _, b := range meta.Brokers {
		s.Brokers = append(s.Brokers, Broker{Node: node.Node{ID: b.NodeID, Host: b.Host, Port: int(b.Port), Rack: deref(b.Rack)}})
	}
	slices.SortFunc(s.Brokers, func(a, b Broker) int { return cmp.Compare(a.ID, b.ID) })
	// The later reads go to the broker that just answered first, then to
	// the other live ones.
	live := make([]int32, len(s.Brokers))
	for i, b := range s.Brokers {
		live[i] = b.ID
	}
	fenced(ctx, cl, hedge.Rotate(live, answered, 0), &s)
	slices.SortFunc(s.Brokers, func(a, b Broker) int { return cmp.Compare(a.ID, b.ID) })

	s.Topics = make([]Topic, 0, len(meta.Topics))
	for i := range meta.Topics {
		mt := &meta.Topics[i]
		t := Topic{
			Name:      deref(mt.Topic),
			ID:        TopicID(mt.TopicID),
			Internal:  mt.IsInternal,
			ErrorCode: mt.ErrorCode,
		}
		if t.Name == "" {
			continue // a topic known only by id; cannot be described
		}
		t.Partitions = make([]Partition, len(mt.Partitions))
		for j := range mt.Partitions {
			mp := &mt.Partitions[j]
			t.Partitions[j] = Partition{
				Partition:   mp.Partition,
				Leader:      mp.Leader,
				LeaderEpoch: mp.LeaderEpoch,
				ErrorCode:   mp.ErrorCode,
				Replicas:    mp.Replicas,
				ISR:         mp.ISR,
				Offline:     mp.OfflineReplicas,
			}
		}
		slices.SortFunc(t.Partitions, func(a, b Partition) int { return cmp.Compare(a.Partition, b.Partition) })
		s.Topics = append(s.Topics, t)
	}
	slices.SortFunc(s.Topics, func(a, b Topic) int { return strings.Compare(a.Name, b.Name) })

	if err := minISRs(ctx, cl, live, answered, s.Topics, cfg.batch); err != nil {
		return Snapshot{}, err
	}
	return s.Indexed(), nil
}

// fenced asks DescribeCluster for fenced brokers and merges the answer into
// s. It is best effort: brokers before Kafka 2.8 do not have the request, and
// only v2 (Kafka 4.0) reports fencing; without it, a broker missing from
// metadata is just missing.
func fenced(ctx context.Context, cl *kgo.Client, brokers []int32, s *Snapshot) {
	r, _, err := hedge.Do(ctx, hedge.ToBrokers(cl, brokers, func() kmsg.Request {
		req := kmsg.NewPtrDescribeClusterRequest()
		req.IncludeFencedBrokers = true
		return req
	}))
	if err != nil {
		return
	}
	resp := r.(*kmsg.DescribeClusterResponse)
	if resp.ErrorCode != 0 {
		return
	}
	if s.Controller < 0 {
		s.Controller = resp.ControllerID
	}
	if s.ClusterID == "" {
		s.ClusterID = resp.ClusterID
	}
	if resp.Version < 2 {
		return
	}
	s.FencingKnown = true
	for _, b := range resp.Brokers {
		i := slices.IndexFunc(s.Brokers, func(x Broker) bool { return x.ID == b.NodeID })
		if i < 0 {
			s.Brokers = append(s.Brokers, Broker{Node: node.Node{ID: b.NodeID, Host: b.Host, Port: int(b.Port), Rack: deref(b.Rack)}, Fenced: b.IsFenced})
			continue
		}
		s.Brokers[i].Fenced = b.IsFenced
	}
}

// minISRs fills in every topic's effective min.insync.replicas, asking the
// live brokers in turn, first the one that answered last.
func minISRs(ctx context.Context, cl *kgo.Client, live []int32, answered int32, topics []Topic, batch int) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, configParallel)
	)
	for lo := 0; lo < len(topics); lo += batch {
		part := topics[lo:min(lo+batch, len(topics))]
		brokers := hedge.Rotate(live, answered, lo/batch)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := describeMinISR(ctx, cl, brokers, part); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}

// describeMinISR fills in min.insync.replicas for topics, one request
// answered by one of brokers (any broker can describe any topic).
func describeMinISR(ctx context.Context, cl *kgo.Client, brokers []int32, topics []Topic) error {
	byName := make(map[string]*Topic, len(topics))
	for i := range topics {
		t := &topics[i]
		byName[t.Name] = t
		t.MinISRSource = compat.SourceUnknown
		t.MinISRError = "no answer"
	}
	mk := func() kmsg.Request {
		req := kmsg.NewPtrDescribeConfigsRequest()
		req.IncludeSynonyms = true
		for i := range topics {
			r := kmsg.NewDescribeConfigsRequestResource()
			r.ResourceType = kmsg.ConfigResourceTypeTopic
			r.ResourceName = topics[i].Name
			r.ConfigNames = []string{minISRKey}
			req.Resources = append(req.Resources, r)
		}
		return req
	}
	attempts := hedge.ToBrokers(cl, brokers, mk)
	if len(attempts) == 0 {
		attempts = hedge.ViaClient(cl, 1+hedge.MaxHedges, mk)
	}
	r, _, err := hedge.Do(ctx, attempts)
	if err != nil {
		return fmt.Errorf("health: snapshot: describe min.insync.replicas of %d topics: %w", len(topics), hedge.CtxErr(ctx, err))
	}
	for _, res := range r.(*kmsg.DescribeConfigsResponse).Resources {
		t := byName[res.ResourceName]
		if t == nil {
			continue
		}
		if err := kerr.ErrorForCode(res.ErrorCode); err != nil {
			t.MinISRError = err.Error()
			if res.ErrorMessage != nil && *res.ErrorMessage != "" {
				t.MinISRError += ": " + *res.ErrorMessage
			}
			continue
		}
		setMinISR(t, res.Configs)
	}
	return nil
}

// setMinISR sets t's min ISR from a DescribeConfigs answer.
func setMinISR(t *Topic, configs []kmsg.DescribeConfigsResponseResourceConfig) {
	t.MinISR, t.MinISRSource, t.MinISRError = 1, compat.SourceDefault, ""
	for _, c := range configs {
		if c.Name != minISRKey {
			continue
		}
		if c.Value == nil {
			t.MinISRSource, t.MinISRError = compat.SourceUnknown, "min.insync.replicas has no value"
			return
		}
		n, err := strconv.ParseInt(*c.Value, 10, 32)
		if err != nil || n < 1 {
			t.MinISRSource, t.MinISRError = compat.SourceUnknown, fmt.Sprintf("min.insync.replicas is %q", *c.Value)
			return
		}
		t.MinISR, t.MinISRSource = int32(n), source(c.Source, c.IsDefault)
		return
	}
}

// source maps a Kafka config source to ours.
func source(s kmsg.ConfigSource, isDefault bool) compat.ConfigSource {
	switch s {
	case kmsg.ConfigSourceDynamicTopicConfig:
		return compat.SourceTopic
	case kmsg.ConfigSourceDynamicBrokerConfig:
		return compat.SourceBroker
	case kmsg.ConfigSourceDynamicDefaultBrokerConfig:
		return compat.SourceCluster
	case kmsg.ConfigSourceStaticBrokerConfig:
		return compat.SourceStatic
	case kmsg.ConfigSourceDefaultConfig:
		return compat.SourceDefault
	}
	if isDefault { // DescribeConfigs v0 has no source
		return compat.SourceDefault
	}
	return compat.SourceTopic
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
