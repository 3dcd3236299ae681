package health

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/internal/hedge"
)

// ErrNoCanaryTopic reports that the canary topic does not exist; call
// [Canary.Ensure].
var ErrNoCanaryTopic = errors.New("health: canary topic does not exist")

// A CanaryOption configures a [Canary].
type CanaryOption interface{ applyCanary(*canaryConfig) }

type canaryOptionFunc func(*canaryConfig)

func (f canaryOptionFunc) applyCanary(c *canaryConfig) { f(c) }

type canaryConfig struct {
	topic   string
	rf      int
	timeout time.Duration
	brokers []int32
	configs map[string]string
}

func defaultCanaryConfig() canaryConfig {
	return canaryConfig{
		topic:   "kupgrade-canary",
		rf:      3,
		timeout: 10 * time.Second,
		configs: map[string]string{"retention.ms": "3600000"},
	}
}

func (c *canaryConfig) validate() error {
	switch {
	case c.topic == "":
		return errors.New("health: CanaryTopic(\"\"): the topic name must not be empty")
	case c.rf < 1:
		return fmt.Errorf("health: CanaryReplicationFactor(%d): must be at least 1", c.rf)
	case c.timeout <= 0:
		return fmt.Errorf("health: CanaryTimeout(%v): must be positive", c.timeout)
	}
	return nil
}

// CanaryTopic names the canary topic, overriding the default
// "kupgrade-canary".
func CanaryTopic(name string) CanaryOption {
	return canaryOptionFunc(func(c *canaryConfig) { c.topic = name })
}

// CanaryReplicationFactor sets the replication factor [Canary.Ensure] creates
// the topic with, overriding the default of 3 (never more than the brokers).
func CanaryReplicationFactor(n int) CanaryOption {
	return canaryOptionFunc(func(c *canaryConfig) { c.rf = n })
}

// CanaryTimeout bounds one round trip through one broker, overriding the
// default of 10s. A round trip that takes longer fails.
func CanaryTimeout(d time.Duration) CanaryOption {
	return canaryOptionFunc(func(c *canaryConfig) { c.timeout = d })
}

// CanaryBrokers fixes the brokers a probe must go through, overriding the
// default: every broker in metadata plus every broker that is the preferred
// leader of a canary partition (so a broker that vanished from metadata is
// still probed, and fails).
func CanaryBrokers(ids ...int32) CanaryOption {
	return canaryOptionFunc(func(c *canaryConfig) { c.brokers = normNodes(ids) })
}

// CanaryTopicConfig sets a topic config [Canary.Ensure] creates the topic
// with, in addition to the default retention.ms=3600000.
func CanaryTopicConfig(key, value string) CanaryOption {
	return canaryOptionFunc(func(c *canaryConfig) {
		c.configs = maps.Clone(c.configs)
		if c.configs == nil {
			c.configs = make(map[string]string)
		}
		c.configs[key] = value
	})
}

// A Canary is a topic with one partition led by each broker, and a probe that
// produces a record through every broker and fetches it back. It writes to
// its own topic only (creating it, adding partitions, electing its leaders).
// A Canary is safe for concurrent use.
type Canary struct {
	cl  *kgo.Client
	cfg canaryConfig
}

// NewCanary returns a Canary that talks through cl (its TLS and SASL
// settings). cl must not produce with acks=0, as no answer would come back;
// its default acks=all makes the probe wait for the ISR, as producers that
// need durability do.
func NewCanary(cl *kgo.Client, opts ...CanaryOption) (*Canary, error) {
	if cl == nil {
		return nil, errors.New("health: NewCanary needs a client (cl is nil)")
	}
	cfg := defaultCanaryConfig()
	for _, o := range opts {
		o.applyCanary(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if a, ok := cl.OptValue(kgo.RequiredAcks).(kgo.Acks); ok && a == kgo.NoAck() {
		return nil, errors.New("health: canary: the client produces with acks=0 and would get no answer")
	}
	return &Canary{cl: cl, cfg: cfg}, nil
}

// Topic returns the canary topic's name.
func (c *Canary) Topic() string {
	if c == nil {
		return ""
	}
	return c.cfg.topic
}

// errNilCanary is what the methods of a nil *Canary return.
var errNilCanary = errors.New("health: nil *Canary (use NewCanary)")

// adminTimeout bounds the canary's metadata, creation and election requests.
const adminTimeout = 30 * time.Second

// canaryMeta is what the canary needs from metadata.
type canaryMeta struct {
	brokers []int32 // in metadata, sorted
	exists  bool
	id      [16]byte
	parts   []kmsg.MetadataResponseTopicPartition // sorted by partition
}

func (c *Canary) meta(ctx context.Context) (canaryMeta, error) {
	r, _, err := hedge.Do(ctx, hedge.ViaClient(c.cl, 1+hedge.MaxHedges, func() kmsg.Request {
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(c.cfg.topic)
		req.Topics = []kmsg.MetadataRequestTopic{rt}
		req.AllowAutoTopicCreation = false
		return req
	}))
	if err != nil {
		return canaryMeta{}, fmt.Errorf("health: canary: metadata: %w", hedge.CtxErr(ctx, err))
	}
	resp := r.(*kmsg.MetadataResponse)
	var m canaryMeta
	for _, b := range resp.Brokers {
		m.brokers = append(m.brokers, b.NodeID)
	}
	slices.Sort(m.brokers)
	for _, t := range resp.Topics {
		if deref(t.Topic) != c.cfg.topic {
			continue
		}
		switch err := kerr.ErrorForCode(t.ErrorCode); {
		case errors.Is(err, kerr.UnknownTopicOrPartition):
		case err != nil && len(t.Partitions) == 0 && !errors.Is(err, kerr.LeaderNotAvailable):
			return canaryMeta{}, fmt.Errorf("health: canary: metadata of %s: %w", c.cfg.topic, err)
		default:
			m.exists, m.id, m.parts = true, t.TopicID, t.Partitions
		}
	}
	slices.SortFunc(m.parts, func(a, b kmsg.MetadataResponseTopicPartition) int { return cmp.Compare(a.Partition, b.Partition) })
	return m, nil
}

// assignment returns the replicas of the partition b leads by preference: b,
// then the brokers after it in all, wrapping around.
func assignment(all []int32, b int32, rf int) []int32 {
	i := slices.Index(all, b)
	rf = min(rf, len(all))
	out := make([]int32, 0, rf)
	for k := range rf {
		out = append(out, all[(i+k)%len(all)])
	}
	return out
}

// Ensure creates the canary topic if it is missing, with one partition per
// broker in metadata (or per broker of [CanaryBrokers]) led by preference by
// that broker, and adds a partition for each such broker that has none. It
// gives up after 30s.
func (c *Canary) Ensure(ctx context.Context) error {
	if c == nil {
		return errNilCanary
	}
	ctx, cancel := context.WithTimeoutCause(ctx, adminTimeout, fmt.Errorf("health: canary topic %s not ensured within %v", c.cfg.topic, adminTimeout))
	defer cancel()
	m, err := c.meta(ctx)
	if err != nil {
		return err
	}
	want := m.brokers
	if c.cfg.brokers != nil {
		want = slices.DeleteFunc(slices.Clone(c.cfg.brokers), func(b int32) bool { return !slices.Contains(m.brokers, b) })
	}
	if len(want) == 0 {
		return fmt.Errorf("health: canary: no broker to place %s on", c.cfg.topic)
	}
	if !m.exists {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = int32(adminTimeout / time.Millisecond)
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = c.cfg.topic, -1, -1
		for i, b := range want {
			a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
			a.Partition, a.Replicas = int32(i), assignment(m.brokers, b, c.cfg.rf)
			rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
		}
		for _, k := range slices.Sorted(maps.Keys(c.cfg.configs)) {
			cc := kmsg.NewCreateTopicsRequestTopicConfig()
			cc.Name, cc.Value = k, kmsg.StringPtr(c.cfg.configs[k])
			rt.Configs = append(rt.Configs, cc)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, c.cl)
		if err != nil {
			return fmt.Errorf("health: canary: create %s: %w", c.cfg.topic, hedge.CtxErr(ctx, err))
		}
		for _, t := range resp.Topics {
			if err := kerr.ErrorForCode(t.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
				return fmt.Errorf("health: canary: create %s: %w%s", c.cfg.topic, err, msgSuffix(t.ErrorMessage))
			}
		}
		return nil
	}
	preferred := make(map[int32]bool)
	for _, p := range m.parts {
		if len(p.Replicas) > 0 {
			preferred[p.Replicas[0]] = true
		}
	}
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.TimeoutMillis = int32(adminTimeout / time.Millisecond)
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic = c.cfg.topic
	for _, b := range want {
		if preferred[b] {
			continue
		}
		a := kmsg.NewCreatePartitionsRequestTopicAssignment()
		a.Replicas = assignment(m.brokers, b, c.cfg.rf)
		rt.Assignment = append(rt.Assignment, a)
	}
	if len(rt.Assignment) == 0 {
		return nil
	}
	rt.Count = int32(len(m.parts) + len(rt.Assignment))
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, c.cl)
	if err != nil {
		return fmt.Errorf("health: canary: add partitions to %s: %w", c.cfg.topic, hedge.CtxErr(ctx, err))
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return fmt.Errorf("health: canary: add partitions to %s: %w%s", c.cfg.topic, err, msgSuffix(t.ErrorMessage))
		}
	}
	return nil
}

func msgSuffix(s *string) string {
	if s == nil || *s == "" {
		return ""
	}
	return ": " + *s
}

// A ProbeResult is the outcome of one round trip through one broker:
// producing a record to a canary partition the broker leads (acks as the
// client is configured, all by default) and fetching it back from the same
// broker. Durations marshal to JSON in nanoseconds.
type ProbeResult struct {
	// Broker is the broker probed.
	Broker int32
	// Topic and Partition are where the record went; Partition is -1 if the
	// broker leads no canary partition.
	Topic     string
	Partition int32
	// Offset is the record's offset, -1 if it was not written.
	Offset int64
	// Produce is how long producing took, Fetch how long fetching it back
	// took, RoundTrip both (or the time until failure).
	Produce   time.Duration
	Fetch     time.Duration
	RoundTrip time.Duration
	// Err is non-nil if the round trip failed.
	Err error
}

// MarshalJSON renders the result with Err as a string.
func (r ProbeResult) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Broker    int32         `json:"broker"`
		Topic     string        `json:"topic"`
		Partition int32         `json:"partition"`
		Offset    int64         `json:"offset"`
		Produce   time.Duration `json:"produce"`
		Fetch     time.Duration `json:"fetch"`
		RoundTrip time.Duration `json:"roundTrip"`
		Error     string        `json:"error,omitempty"`
	}{r.Broker, r.Topic, r.Partition, r.Offset, r.Produce, r.Fetch, r.RoundTrip, errString(r.Err)})
}

// ProbeResults are probe outcomes sorted by broker.
type ProbeResults []ProbeResult

// FirstErr returns the first failed round trip's error, or nil.
func (rs ProbeResults) FirstErr() error {
	for _, r := range rs {
		if r.Err != nil {
			return fmt.Errorf("health: canary through broker %d: %w", r.Broker, r.Err)
		}
	}
	return nil
}

// Slowest returns the result with the longest round trip, false if rs is
// empty.
func (rs ProbeResults) Slowest() (ProbeResult, bool) {
	if len(rs) == 0 {
		return ProbeResult{}, false
	}
	return slices.MaxFunc(rs, func(a, b ProbeResult) int { return cmp.Compare(a.RoundTrip, b.RoundTrip) }), true
}

// Within is the canary as a gate: OK if every broker round-tripped without
// error in at most max ([RuleCanaryFailed], [RuleCanarySlow]). An empty rs
// is not OK: no broker was probed.
func (rs ProbeResults) Within(max time.Duration) Verdict {
	v := Verdict{Kind: KindCanary, Checked: len(rs), Nodes: []int32{}}
	for _, r := range rs {
		v.Nodes = append(v.Nodes, r.Broker)
		reason := Reason{Topic: r.Topic, Partition: r.Partition, Leader: r.Broker, Nodes: []int32{r.Broker}}
		if r.Partition < 0 {
			reason.Leader = -1
		}
		switch {
		case r.Err != nil:
			reason.Rule = RuleCanaryFailed
			reason.Message = fmt.Sprintf("broker %d: %v", r.Broker, r.Err)
		case r.RoundTrip > max:
			reason.Rule = RuleCanarySlow
			reason.Message = fmt.Sprintf("broker %d: round trip took %v, more than %v", r.Broker, r.RoundTrip.Round(time.Millisecond), max)
		default:
			continue
		}
		v.Reasons = append(v.Reasons, reason)
	}
	if len(rs) == 0 {
		v.Reasons = append(v.Reasons, Reason{Rule: RuleCanaryFailed, Partition: -1, Leader: -1, Message: "no broker was probed"})
	}
	v.OK = len(v.Reasons) == 0
	return v
}

// Probe sends one record through each broker and fetches it back, all brokers
// at once, each bounded by [CanaryTimeout]. Brokers probed are those of
// [CanaryBrokers], or by default every broker in metadata plus every
// preferred leader of a canary partition. A broker that leads no canary
// partition but is the in-sync preferred replica of one is first made its
// leader again (a preferred leader election on the canary topic only).
// Its metadata read is hedged as [Take]'s are, so a hung broker fails its own
// round trip within CanaryTimeout without holding up the whole probe.
//
// The error means the probe could not start (metadata failed, or the topic
// does not exist: [ErrNoCanaryTopic]); per-broker failures are in the results.
func (c *Canary) Probe(ctx context.Context) (ProbeResults, error) {
	if c == nil {
		return nil, errNilCanary
	}
	mctx, cancel := context.WithTimeoutCause(ctx, adminTimeout, fmt.Errorf("health: canary metadata not read within %v", adminTimeout))
	defer cancel()
	m, err := c.meta(mctx)
	if err != nil {
		return nil, err
	}
	if !m.exists {
		return nil, fmt.Errorf("%w: %s", ErrNoCanaryTopic, c.cfg.topic)
	}
	targets := c.cfg.brokers
	if targets == nil {
		targets = slices.Clone(m.brokers)
		for _, p := range m.parts {
			if len(p.Replicas) > 0 {
				targets = append(targets, p.Replicas[0])
			}
		}
		targets = normNodes(targets)
	}

	// Bring leadership back to preferred replicas that lost it.
	electErr := make(map[int32]error)
	var elect []kmsg.ElectLeadersRequestTopic
	for _, b := range targets {
		if leads(m.parts, b) >= 0 {
			continue
		}
		for _, p := range m.parts {
			if len(p.Replicas) > 0 && p.Replicas[0] == b && slices.Contains(p.ISR, b) {
				if len(elect) == 0 {
					rt := kmsg.NewElectLeadersRequestTopic()
					rt.Topic = c.cfg.topic
					elect = append(elect, rt)
				}
				elect[0].Partitions = append(elect[0].Partitions, p.Partition)
			}
		}
	}
	if len(elect) > 0 {
		es, err := electLeaders(mctx, c.cl, elect)
		for _, e := range es {
			if e.Err != nil {
				if p := slices.IndexFunc(m.parts, func(p kmsg.MetadataResponseTopicPartition) bool { return p.Partition == e.Partition }); p >= 0 {
					electErr[m.parts[p].Replicas[0]] = e.Err
				}
			}
		}
		if err == nil {
			if m2, err := c.meta(mctx); err == nil && m2.exists {
				m = m2
			}
		}
	}

	rs := make(ProbeResults, len(targets))
	var wg sync.WaitGroup
	for i, b := range targets {
		p := leads(m.parts, b)
		if p < 0 {
			err := fmt.Errorf("leads no partition of %s", c.cfg.topic)
			switch {
			case !slices.Contains(m.brokers, b):
				err = errors.New("not in metadata (down or fenced?)")
			case electErr[b] != nil:
				err = fmt.Errorf("leads no partition of %s; preferred leader election failed: %w", c.cfg.topic, electErr[b])
			}
			rs[i] = ProbeResult{Broker: b, Topic: c.cfg.topic, Partition: -1, Offset: -1, Err: err}
			continue
		}
		wg.Go(func() { rs[i] = c.roundTrip(ctx, b, m.id, p) })
	}
	wg.Wait()
	return rs, nil
}

// leads returns the lowest partition b leads, preferring one b is the
// preferred leader of, or -1.
func leads(parts []kmsg.MetadataResponseTopicPartition, b int32) int32 {
	found := int32(-1)
	for _, p := range parts {
		if p.Leader != b {
			continue
		}
		if len(p.Replicas) > 0 && p.Replicas[0] == b {
			return p.Partition
		}
		if found < 0 {
			found = p.Partition
		}
	}
	return found
}

// roundTrip produces one record to partition p through broker b and fetches
// it back from b.
func (c *Canary) roundTrip(ctx context.Context, b int32, id [16]byte, p int32) ProbeResult {
	r := ProbeResult{Broker: b, Topic: c.cfg.topic, Partition: p, Offset: -1}
	ctx, cancel := context.WithTimeoutCause(ctx, c.cfg.timeout,
		fmt.Errorf("health: canary round trip through broker %d not done within %v", b, c.cfg.timeout))
	defer cancel()
	br := c.cl.Broker(int(b))
	start := time.Now()
	fail := func(what string, err error) ProbeResult {
		r.RoundTrip = time.Since(start)
		r.Err = fmt.Errorf("%s: %w", what, hedge.CtxErr(ctx, err))
		return r
	}
	value := []byte("kupgrade canary broker=" + strconv.Itoa(int(b)) + " nonce=" + strconv.FormatUint(rand.Uint64(), 16))

	preq := kmsg.NewPtrProduceRequest()
	preq.Acks = -1 // kgo rewrites this to the client's acks
	preq.TimeoutMillis = int32(c.cfg.timeout / time.Millisecond)
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic, pt.TopicID = c.cfg.topic, id
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Partition, pp.Records = p, recordBatch(value, start)
	pt.Partitions = append(pt.Partitions, pp)
	preq.Topics = append(preq.Topics, pt)
	presp, err := preq.RequestWith(ctx, br)
	if err != nil {
		return fail("produce", err)
	}
	var got *kmsg.ProduceResponseTopicPartition
	for i := range presp.Topics {
		for j := range presp.Topics[i].Partitions {
			if presp.Topics[i].Partitions[j].Partition == p {
				got = &presp.Topics[i].Partitions[j]
			}
		}
	}
	if got == nil {
		return fail("produce", errors.New("no answer for the partition"))
	}
	if err := kerr.ErrorForCode(got.ErrorCode); err != nil {
		return fail("produce", err)
	}
	r.Offset = got.BaseOffset
	r.Produce = time.Since(start)

	for {
		freq := kmsg.NewPtrFetchRequest()
		freq.MaxWaitMillis = 250
		freq.MinBytes = 1
		freq.MaxBytes = 1 << 20
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic, ft.TopicID = c.cfg.topic, id
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = p, r.Offset, 1<<20
		ft.Partitions = append(ft.Partitions, fp)
		freq.Topics = append(freq.Topics, ft)
		fresp, err := freq.RequestWith(ctx, br)
		if err != nil {
			return fail("fetch", err)
		}
		if err := kerr.ErrorForCode(fresp.ErrorCode); err != nil {
			return fail("fetch", err)
		}
		for i := range fresp.Topics {
			for j := range fresp.Topics[i].Partitions {
				rp := &fresp.Topics[i].Partitions[j]
				if rp.Partition != p {
					continue
				}
				fetched, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
					Offset: r.Offset, Topic: c.cfg.topic, Partition: p,
				}, rp, kgo.DefaultDecompressor(), nil)
				if fetched.Err != nil {
					return fail("fetch", fetched.Err)
				}
				for _, rec := range fetched.Records {
					if rec.Offset != r.Offset {
						continue
					}
					if !bytes.Equal(rec.Value, value) {
						return fail("fetch", fmt.Errorf("the record at offset %d is not the one produced", r.Offset))
					}
					r.RoundTrip = time.Since(start)
					r.Fetch = r.RoundTrip - r.Produce
					return r
				}
			}
		}
		if ctx.Err() != nil {
			return fail("fetch", ctx.Err())
		}
		// Not visible yet (high watermark behind): fetch again; the
		// broker holds the request up to MaxWaitMillis.
	}
}

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// recordBatch encodes value as the only record of an uncompressed, magic 2,
// non-idempotent record batch.
func recordBatch(value []byte, ts time.Time) []byte {
	rec := kmsg.Record{Value: value}
	rec.Length = int32(len(rec.AppendTo(nil)) - 1) // the zero length took one byte
	ms := ts.UnixMilli()
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		FirstTimestamp:       ms,
		MaxTimestamp:         ms,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           1,
		Records:              rec.AppendTo(nil),
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:12], uint32(len(raw)-12))               // Length: all after itself
	binary.BigEndian.PutUint32(raw[17:21], crc32.Checksum(raw[21:], crc32c)) // CRC: from Attributes on
	return raw
}
