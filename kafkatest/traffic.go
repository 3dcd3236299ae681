package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"crypto/rand"
	"encoding/hex"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Traffic writes numbered records to a topic at a steady rate with an
// idempotent acks=all producer, and reads them back with a consumer in a
// group, while a test restarts, kills or upgrades nodes. [Traffic.Stop] then
// reads the whole topic once more and reports, exactly, which acknowledged
// records were lost. It is the oracle of kupgrade's zero-loss claims.
type Traffic struct {
	topic string
	seeds []string
	run   string // distinguishes this run's records from older ones in the topic
	cfg   trafficConfig
	start time.Time

	prod, cons *kgo.Client
	cancel     context.CancelFunc
	done       chan struct{} // producer and consumer loops ended

	mu        sync.Mutex
	state     []uint8 // per seq: 0 in flight, 1 acknowledged, 2 failed
	consumed  []uint8 // per seq: times the group consumer read it (saturating)
	samples   []latencySample
	errs      []string
	stopOnce  sync.Once
	report    TrafficReport
	reportErr error
}

type latencySample struct {
	sent time.Duration // since start
	took time.Duration
}

const (
	inFlight uint8 = iota
	acked
	failed
)

// A TrafficOption configures [StartTraffic].
type TrafficOption interface{ applyTraffic(*trafficConfig) }

type trafficOptionFunc func(*trafficConfig)

func (f trafficOptionFunc) applyTraffic(c *trafficConfig) { f(c) }

type trafficConfig struct {
	rate            int
	group           string
	clientOpts      []kgo.Opt
	drainTimeout    time.Duration
	deliveryTimeout time.Duration
}

// Rate sets how many records a second the producer writes, overriding the
// default of 500.
func Rate(perSecond int) TrafficOption {
	return trafficOptionFunc(func(c *trafficConfig) { c.rate = perSecond })
}

// Group sets the consumer group, overriding the default of
// "kafkatest-<topic>-<run>".
func Group(name string) TrafficOption {
	return trafficOptionFunc(func(c *trafficConfig) { c.group = name })
}

// TrafficClientOpts adds franz-go options (TLS, SASL, …) to the producer and
// consumer clients.
func TrafficClientOpts(opts ...kgo.Opt) TrafficOption {
	return trafficOptionFunc(func(c *trafficConfig) { c.clientOpts = append(c.clientOpts, opts...) })
}

// DrainTimeout bounds how long Stop waits for in-flight records to be
// acknowledged and for the verification read, overriding the default of 2m.
func DrainTimeout(d time.Duration) TrafficOption {
	return trafficOptionFunc(func(c *trafficConfig) { c.drainTimeout = d })
}

// DeliveryTimeout bounds how long the producer retries one record before it
// counts as failed, overriding the default of 2m.
func DeliveryTimeout(d time.Duration) TrafficOption {
	return trafficOptionFunc(func(c *trafficConfig) { c.deliveryTimeout = d })
}

// StartTraffic starts producing to and consuming from topic, which must exist,
// through the given seed brokers. Stop it with [Traffic.Stop].
func StartTraffic(ctx context.Context, seeds []string, topic string, opts ...TrafficOption) (*Traffic, error) {
	cfg := trafficConfig{rate: 500, drainTimeout: 2 * time.Minute, deliveryTimeout: 2 * time.Minute}
	for _, o := range opts {
		o.applyTraffic(&cfg)
	}
	if cfg.rate <= 0 || cfg.rate > 100000 {
		return nil, fmt.Errorf("kafkatest: traffic rate %d/s out of range 1..100000", cfg.rate)
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	tr := &Traffic{topic: topic, seeds: slices.Clone(seeds), run: hex.EncodeToString(rnd[:]), cfg: cfg, done: make(chan struct{})}
	if tr.cfg.group == "" {
		tr.cfg.group = "kafkatest-" + topic + "-" + tr.run
	}
	base := append([]kgo.Opt{kgo.SeedBrokers(seeds...)}, cfg.clientOpts...)
	var err error
	tr.prod, err = kgo.NewClient(append(slices.Clone(base),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotence is on by default with acks=all
		kgo.RecordDeliveryTimeout(cfg.deliveryTimeout),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.MetadataMinAge(250*time.Millisecond), // notice moved leaders fast, as a tuned client would
		// A broker in controlled shutdown may close a connection the client
		// has just opened, right after its first request. franz-go takes an
		// EOF on a connection's first read for a misconfiguration (TLS or
		// SASL) and fails the records at once; this producer's configuration
		// is kafkatest's own, so such an EOF is the restart: retry (bounded
		// by the delivery timeout). Seen on real Kafka: 80 records failed in
		// one ZooKeeper-mode roll.
		kgo.AlwaysRetryEOF(),
	)...)
	if err != nil {
		return nil, fmt.Errorf("kafkatest: traffic producer: %w", err)
	}
	adm := kadm.NewClient(tr.prod)
	if _, err := adm.ListEndOffsets(ctx, topic); err != nil {
		tr.prod.Close()
		return nil, fmt.Errorf("kafkatest: traffic topic %q: %w", topic, err)
	}
	tr.cons, err = kgo.NewClient(append(slices.Clone(base),
		kgo.ConsumerGroup(tr.cfg.group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond),
	)...)
	if err != nil {
		tr.prod.Close()
		return nil, fmt.Errorf("kafkatest: traffic consumer: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	tr.cancel = cancel
	tr.start = time.Now()
	var wg sync.WaitGroup
	wg.Go(func() { tr.produceLoop(runCtx) })
	wg.Go(func() { tr.consumeLoop(runCtx) })
	go func() { wg.Wait(); close(tr.done) }()
	return tr, nil
}

// Traffic starts [StartTraffic] against the cluster's brokers for a test and
// stops it when the test ends if the test has not stopped it.
func (c *Cluster) Traffic(t testing.TB, topic string, opts ...TrafficOption) *Traffic {
	t.Helper()
	if sec := c.clientSecurity(); sec != nil { // a secured cluster: as admin, unless opts say otherwise
		opts = append([]TrafficOption{TrafficClientOpts(sec...)}, opts...)
	}
	tr, err := StartTraffic(t.Context(), c.Addrs(), topic, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Stop(context.Background()) })
	return tr
}

func (tr *Traffic) produceLoop(ctx context.Context) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var sent int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		due := int64(time.Since(tr.start).Seconds() * float64(tr.cfg.rate))
		for ; sent < due; sent++ {
			seq := sent
			tr.mu.Lock()
			tr.state = append(tr.state, inFlight)
			tr.mu.Unlock()
			at := time.Now()
			rec := &kgo.Record{Key: []byte(strconv.FormatInt(seq, 10)), Value: []byte(tr.run + ":" + strconv.FormatInt(seq, 10))}
			tr.prod.Produce(context.Background(), rec, func(_ *kgo.Record, err error) {
				took := time.Since(at)
				tr.mu.Lock()
				defer tr.mu.Unlock()
				if err != nil {
					tr.state[seq] = failed
					if len(tr.errs) < 5 {
						tr.errs = append(tr.errs, fmt.Sprintf("record %d: %v", seq, err))
					}
					return
				}
				tr.state[seq] = acked
				tr.samples = append(tr.samples, latencySample{sent: at.Sub(tr.start), took: took})
			})
		}
	}
}

func (tr *Traffic) consumeLoop(ctx context.Context) {
	for ctx.Err() == nil {
		fs := tr.cons.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			seq, ok := tr.parse(r.Value)
			if !ok {
				return
			}
			tr.mu.Lock()
			if seq < int64(len(tr.state)) {
				for int64(len(tr.consumed)) <= seq {
					tr.consumed = append(tr.consumed, 0)
				}
				if tr.consumed[seq] < 255 {
					tr.consumed[seq]++
				}
			}
			tr.mu.Unlock()
		})
	}
}

// parse returns the sequence number of one of this run's records.
func (tr *Traffic) parse(v []byte) (int64, bool) {
	run, num, ok := strings.Cut(string(v), ":")
	if !ok || run != tr.run {
		return 0, false
	}
	seq, err := strconv.ParseInt(num, 10, 64)
	return seq, err == nil && seq >= 0
}

// A TrafficReport counts what happened to the records of a [Traffic] run.
type TrafficReport struct {
	Topic    string        `json:"topic"`
	Duration time.Duration `json:"duration"`
	// Produced is the number of records handed to the producer.
	Produced int64 `json:"produced"`
	// Acknowledged is the number of records the cluster acknowledged (acks=all).
	Acknowledged int64 `json:"acknowledged"`
	// Failed is the number of records the producer gave up on; InFlight those
	// still unanswered when Stop gave up waiting.
	Failed   int64 `json:"failed"`
	InFlight int64 `json:"inFlight"`
	// Consumed is the number of distinct records the group consumer read
	// while the traffic ran; Redelivered of those it read more than once
	// (after a rebalance, say), which is not data loss.
	Consumed    int64 `json:"consumed"`
	Redelivered int64 `json:"redelivered"`
	// Duplicated is the number of records stored more than once in the topic
	// (an idempotent producer should make this 0).
	Duplicated int64 `json:"duplicated"`
	// LostAcknowledged is the number of acknowledged records that the final
	// read of the whole topic did not find: data loss. Lost lists the first of
	// their sequence numbers.
	LostAcknowledged int64   `json:"lostAcknowledged"`
	Lost             []int64 `json:"lost,omitempty"`
	// Latency is the produce latency (send to acknowledgement) of every
	// acknowledged record.
	Latency LatencyStats `json:"latency"`
	// Errors holds the first produce errors.
	Errors []string `json:"errors,omitempty"`
}

// LatencyStats summarises produce latencies.
type LatencyStats struct {
	Count int           `json:"count"`
	P50   time.Duration `json:"p50"`
	P99   time.Duration `json:"p99"`
	Max   time.Duration `json:"max"`
}

// String formats the stats as "n=… p50=… p99=… max=…".
func (s LatencyStats) String() string {
	return fmt.Sprintf("n=%d p50=%v p99=%v max=%v", s.Count, s.P50.Round(10*time.Microsecond), s.P99.Round(10*time.Microsecond), s.Max.Round(10*time.Microsecond))
}

// String formats the report on one line.
func (r TrafficReport) String() string {
	return fmt.Sprintf("topic %s, %v: produced %d, acknowledged %d, failed %d, in flight %d, consumed %d (redelivered %d), duplicated %d, lost acknowledged %d; latency %v",
		r.Topic, r.Duration.Round(time.Millisecond), r.Produced, r.Acknowledged, r.Failed, r.InFlight, r.Consumed, r.Redelivered, r.Duplicated, r.LostAcknowledged, r.Latency)
}

// ErrLostRecords reports acknowledged records that are not in the topic.
var ErrLostRecords = errors.New("kafkatest: acknowledged records lost")

// Err returns an error wrapping [ErrLostRecords] if any acknowledged record
// was lost, else nil.
func (r TrafficReport) Err() error {
	if r.LostAcknowledged == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d of %d (first: %v)", ErrLostRecords, r.LostAcknowledged, r.Acknowledged, r.Lost)
}

func stats(ds []time.Duration) LatencyStats {
	if len(ds) == 0 {
		return LatencyStats{}
	}
	slices.Sort(ds)
	q := func(p float64) time.Duration { return ds[min(len(ds)-1, int(p*float64(len(ds))))] }
	return LatencyStats{Count: len(ds), P50: q(0.50), P99: q(0.99), Max: ds[len(ds)-1]}
}

// Latency returns the produce latency of the records sent between from and
// to (zero times mean unbounded), for "before" and "during" comparisons.
func (tr *Traffic) Latency(from, to time.Time) LatencyStats {
	tr.mu.Lock()
	var ds []time.Duration
	for _, s := range tr.samples {
		at := tr.start.Add(s.sent)
		if (!from.IsZero() && at.Before(from)) || (!to.IsZero() && !at.Before(to)) {
			continue
		}
		ds = append(ds, s.took)
	}
	tr.mu.Unlock()
	return stats(ds)
}

// Progress returns the counts so far, without the final verification
// (Duplicated and LostAcknowledged stay 0).
func (tr *Traffic) Progress() TrafficReport {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.countLocked()
}

func (tr *Traffic) countLocked() TrafficReport {
	r := TrafficReport{Topic: tr.topic, Duration: time.Since(tr.start), Produced: int64(len(tr.state)), Errors: slices.Clone(tr.errs)}
	for _, s := range tr.state {
		switch s {
		case acked:
			r.Acknowledged++
		case failed:
			r.Failed++
		default:
			r.InFlight++
		}
	}
	for _, n := range tr.consumed {
		if n > 0 {
			r.Consumed++
		}
		if n > 1 {
			r.Redelivered++
		}
	}
	ds := make([]time.Duration, len(tr.samples))
	for i, s := range tr.samples {
		ds[i] = s.took
	}
	r.Latency = stats(ds)
	return r
}

// Stop stops producing, waits (bounded by [DrainTimeout]) for every record
// in flight to be answered, stops the consumer, then reads the whole topic
// from its start to its end offsets and reports which acknowledged records
// are missing. Later calls return the first report.
func (tr *Traffic) Stop(ctx context.Context) (TrafficReport, error) {
	tr.stopOnce.Do(func() { tr.report, tr.reportErr = tr.stop(ctx) })
	return tr.report, tr.reportErr
}

func (tr *Traffic) stop(ctx context.Context) (TrafficReport, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, tr.cfg.drainTimeout,
		fmt.Errorf("kafkatest: traffic on %s did not drain within %v", tr.topic, tr.cfg.drainTimeout))
	defer cancel()
	tr.cancel() // stops the produce loop; Produce callbacks still arrive
	<-tr.done
	flushErr := tr.prod.Flush(ctx)
	tr.cons.Close() // leaves the group
	tr.mu.Lock()
	r := tr.countLocked()
	state := slices.Clone(tr.state)
	tr.mu.Unlock()
	if flushErr != nil {
		tr.prod.Close()
		return r, fmt.Errorf("kafkatest: traffic: waiting for %d records in flight: %w", r.InFlight, flushErr)
	}
	counts, err := tr.readAll(ctx, len(state))
	tr.prod.Close()
	if err != nil {
		return r, err
	}
	for seq, s := range state {
		if counts[seq] > 1 {
			r.Duplicated++
		}
		if s == acked && counts[seq] == 0 {
			r.LostAcknowledged++
			if len(r.Lost) < 20 {
				r.Lost = append(r.Lost, int64(seq))
			}
		}
	}
	return r, nil
}

// readAll reads every partition of the topic from its start offset to the
// end offset it has now, and counts how often each of this run's records is
// stored.
func (tr *Traffic) readAll(ctx context.Context, n int) ([]uint8, error) {
	adm := kadm.NewClient(tr.prod)
	starts, err := listOffsets(ctx, adm.ListStartOffsets, tr.topic)
	if err != nil {
		return nil, fmt.Errorf("kafkatest: traffic verification: start offsets of %s: %w", tr.topic, err)
	}
	ends, err := listOffsets(ctx, adm.ListEndOffsets, tr.topic)
	if err != nil {
		return nil, fmt.Errorf("kafkatest: traffic verification: end offsets of %s: %w", tr.topic, err)
	}
	want := map[int32]int64{} // partition -> end offset still to reach
	from := map[string]map[int32]kgo.Offset{tr.topic: {}}
	ends.Each(func(o kadm.ListedOffset) {
		s, _ := starts.Lookup(o.Topic, o.Partition)
		if o.Offset > s.Offset {
			want[o.Partition] = o.Offset
			from[tr.topic][o.Partition] = kgo.NewOffset().At(s.Offset)
		}
	})
	counts := make([]uint8, n)
	if len(want) == 0 {
		return counts, nil
	}
	// Seed with the brokers the producer knows now: the seeds it started
	// with may have been retired (node replacement).
	seeds := slices.Clone(tr.seeds)
	mreq := kmsg.NewPtrMetadataRequest()
	mreq.Topics = []kmsg.MetadataRequestTopic{}
	if meta, err := mreq.RequestWith(ctx, tr.prod); err == nil {
		for _, b := range meta.Brokers {
			seeds = append(seeds, net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))))
		}
	}
	cl, err := kgo.NewClient(append(slices.Clone(tr.cfg.clientOpts), kgo.SeedBrokers(seeds...),
		kgo.ConsumePartitions(from), kgo.FetchMaxWait(200*time.Millisecond))...)
	if err != nil {
		return nil, fmt.Errorf("kafkatest: traffic verification: %w", err)
	}
	defer cl.Close()
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("kafkatest: traffic verification of %s: %d partitions not read to the end: %w", tr.topic, len(want), context.Cause(ctx))
		}
		fs.EachRecord(func(r *kgo.Record) {
			if seq, ok := tr.parse(r.Value); ok && seq < int64(n) && counts[seq] < 255 {
				counts[seq]++
			}
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	return counts, nil
}

// WaitAcknowledged waits until at least n records of this run have been
// acknowledged, so a test can let traffic flow for a measured amount rather
// than a fixed time. It gives up when ctx ends.
func (tr *Traffic) WaitAcknowledged(ctx context.Context, n int64) error {
	wait := 20 * time.Millisecond
	for {
		got := tr.Progress().Acknowledged
		if got >= n {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("kafkatest: traffic on %s: %d of %d records acknowledged: %w", tr.topic, got, n, context.Cause(ctx))
		case <-t.C:
		}
		wait = min(2*wait, 250*time.Millisecond)
	}
}

// listOffsets lists topic's offsets with list, again while a partition
// answers with a retriable error (OFFSET_NOT_AVAILABLE just after a leader
// election: seen after a reverted migration's preferred leader election),
// until ctx ends.
func listOffsets(ctx context.Context, list func(context.Context, ...string) (kadm.ListedOffsets, error), topic string) (kadm.ListedOffsets, error) {
	for {
		los, err := list(ctx, topic)
		if err == nil {
			err = los.Error()
		}
		if err == nil || !kerr.IsRetriable(err) {
			return los, err
		}
		select {
		case <-ctx.Done():
			return los, fmt.Errorf("%w (still at %v)", err, context.Cause(ctx))
		case <-time.After(200 * time.Millisecond):
		}
	}
}
