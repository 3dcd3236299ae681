package kafkatest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/compat"
)

// A WatchOption configures [Cluster.WatchISR].
type WatchOption interface{ applyWatch(*watchConfig) }

type watchOptionFunc func(*watchConfig)

func (f watchOptionFunc) applyWatch(c *watchConfig) { f(c) }

type watchConfig struct {
	interval    time.Duration
	topics      []string
	readTimeout time.Duration
	refresh     time.Duration
}

func defaultWatchConfig() watchConfig {
	return watchConfig{interval: 250 * time.Millisecond, readTimeout: 2 * time.Second, refresh: 10 * time.Second}
}

func (c *watchConfig) validate() error {
	if c.interval <= 0 {
		return fmt.Errorf("kafkatest: WatchInterval(%v): the interval must be positive", c.interval)
	}
	if c.readTimeout <= 0 {
		return fmt.Errorf("kafkatest: WatchReadTimeout(%v): the timeout must be positive", c.readTimeout)
	}
	if slices.Contains(c.topics, "") {
		return errors.New("kafkatest: WatchTopics: empty topic name")
	}
	return nil
}

// WatchInterval sets how often the watcher samples every broker, overriding
// the default of 250ms.
func WatchInterval(d time.Duration) WatchOption {
	return watchOptionFunc(func(c *watchConfig) { c.interval = d })
}

// WatchTopics limits the watcher to these topics, overriding the default of
// every topic that is not internal (neither flagged internal by Kafka nor
// named with a leading "__"). A named topic that does not exist yet is
// watched from the sample that first shows it.
func WatchTopics(names ...string) WatchOption {
	return watchOptionFunc(func(c *watchConfig) { c.topics = append(c.topics, names...) })
}

// WatchReadTimeout bounds one metadata read from one broker, overriding the
// default of 2s. A read that takes longer (a hung broker) counts as failed.
// (Brokers that kafkatest paused, stopped or killed are not asked at all:
// see [ISRReport].Skipped.)
func WatchReadTimeout(d time.Duration) WatchOption {
	return watchOptionFunc(func(c *watchConfig) { c.readTimeout = d })
}

// An ISRWatcher samples, independently of whatever else runs, every
// partition's ISR and leader through every broker of a [Cluster]; see
// [Cluster.WatchISR]. Its methods are safe for concurrent use.
type ISRWatcher struct {
	c      *Cluster
	cfg    watchConfig
	cancel context.CancelFunc
	wg     sync.WaitGroup
	admin  *kgo.Client // DescribeConfigs of min.insync.replicas

	mu       sync.Mutex
	rounds   int
	reads    int
	failed   int
	skipped  int
	parts    map[topicPartition]bool
	minISR   map[string]int    // topic → min.insync.replicas
	open     map[breachKey]int // index into closed/open breaches of an interval still going on
	breaches []ISRBreach
	stopOnce sync.Once
	final    ISRReport
	workers  map[int32]*watchWorker
}

type topicPartition struct {
	topic     string
	partition int32
}

type breachKey struct {
	topicPartition
	broker int32
}

type watchWorker struct {
	id   int32
	addr string
	tick chan struct{}
	cl   *kgo.Client
}

// An ISRReport is what an [ISRWatcher] saw.
type ISRReport struct {
	Rounds     int         // sampling rounds
	Reads      int         // per-broker metadata answers
	Failed     int         // per-broker reads that failed (broker down, restarting, paused past the read timeout)
	Skipped    int         // per-broker samples not taken: the broker's process was not running, or its previous read still ran
	Partitions int         // partitions watched: distinct topic-partitions seen in any answer
	Breaches   []ISRBreach // merged per (topic, partition, reporting broker) into intervals, sorted by First, then topic, partition, broker
}

// An ISRBreach is one interval during which one broker's metadata showed a
// partition with fewer in-sync replicas than the topic's
// min.insync.replicas, or without a leader. The interval ends with the first
// answer of that broker that shows the partition healthy again; failed reads
// in between neither end nor extend it.
type ISRBreach struct {
	Topic     string    // the partition's topic
	Partition int32     // the partition's number
	Broker    int32     // the broker whose metadata showed it
	ISR       []int32   // as first seen
	Leader    int32     // as first seen; -1: no leader
	MinISR    int       // the topic's min.insync.replicas, as first seen
	First     time.Time // first sample showing it
	Last      time.Time // last sample showing it
	Samples   int       // samples of this broker showing it
	Ongoing   bool      // the broker's latest answer still shows it
}

// String formats the breach on one line:
// "orders-3 via broker 5: ISR [4] < min 2, leader 4, 12 samples over 2.75s from 14:02:03.123".
func (b ISRBreach) String() string {
	isr := make([]string, len(b.ISR))
	for i, r := range b.ISR {
		isr[i] = strconv.Itoa(int(r))
	}
	leader := "leader " + strconv.Itoa(int(b.Leader))
	if b.Leader < 0 {
		leader = "no leader"
	}
	return fmt.Sprintf("%s-%d via broker %d: ISR [%s] (min %d), %s, %d samples over %v from %s",
		b.Topic, b.Partition, b.Broker, strings.Join(isr, ","), b.MinISR, leader, b.Samples,
		b.Last.Sub(b.First).Round(time.Millisecond), b.First.Format("15:04:05.000"))
}

// String formats the report: a summary line, then a line per breach.
func (r ISRReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ISR watch: %d rounds, %d reads, %d failed, %d skipped, %d partitions, %d breaches",
		r.Rounds, r.Reads, r.Failed, r.Skipped, r.Partitions, len(r.Breaches))
	for _, br := range r.Breaches {
		b.WriteString("\n  ")
		b.WriteString(br.String())
	}
	return b.String()
}

// Below returns the breaches in which the ISR was smaller than the topic's
// min.insync.replicas or the partition had no leader, sorted by First.
func (r ISRReport) Below() []ISRBreach {
	var out []ISRBreach
	for _, b := range r.Breaches {
		if len(b.ISR) < b.MinISR || b.Leader < 0 {
			out = append(out, b)
		}
	}
	return out
}

// WatchISR starts an independent ISR watcher. Every interval (see
// [WatchInterval], default 250ms) it sends a Metadata request for the
// watched topics to each broker of the cluster whose process runs, each over
// its own connection (a client per broker with that broker as its only seed,
// which never asks another broker), and records every partition whose ISR,
// in that broker's view, is smaller than the topic's min.insync.replicas or
// has no leader. min.insync.replicas is read with DescribeConfigs at the
// start and again every 10s and whenever a new topic shows up (the broker
// default, 1, until it is known). Brokers added later are watched from the
// next round on.
//
// Reads that fail (a broker down or restarting) are counted, not breaches.
// A broker's view is reported as it is, even when it disagrees with the
// others (a broker that was just restarted or paused may serve stale
// metadata for a moment): every [ISRBreach] names the broker it came from,
// and the test decides what it counts.
//
// WatchISR fails if it cannot read the topics' configs at the start. The
// watcher runs until [ISRWatcher.Stop] is called or ctx ends; the caller
// must call Stop either way to release its connections.
func (c *Cluster) WatchISR(ctx context.Context, opts ...WatchOption) (*ISRWatcher, error) {
	cfg := defaultWatchConfig()
	for _, o := range opts {
		o.applyWatch(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	admin, err := c.NewClient(kgo.DialTimeout(2*time.Second), kgo.RetryTimeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("kafkatest: ISR watcher: %w", err)
	}
	w := &ISRWatcher{c: c, cfg: cfg, admin: admin, parts: map[topicPartition]bool{}, minISR: map[string]int{},
		open: map[breachKey]int{}, workers: map[int32]*watchWorker{}}
	sctx, cancel := context.WithTimeoutCause(ctx, 30*time.Second, errors.New("kafkatest: ISR watcher: topics' min.insync.replicas not read within 30s"))
	err = w.refreshConfigs(sctx, true)
	cancel()
	if err != nil {
		admin.Close()
		return nil, fmt.Errorf("kafkatest: ISR watcher: %w", err)
	}
	wctx, cancel := context.WithCancel(ctx)
	w.cancel = cancel
	w.wg.Go(func() { w.loop(wctx) })
	return w, nil
}

// Stop stops the watcher, waits for its goroutines and returns the final
// report. It is idempotent: later calls return the same report.
func (w *ISRWatcher) Stop() ISRReport {
	w.stopOnce.Do(func() {
		w.cancel()
		w.wg.Wait()
		w.admin.Close()
		w.mu.Lock()
		for _, wk := range w.workers {
			wk.cl.Close()
		}
		w.mu.Unlock()
		w.final = w.Report()
	})
	return w.final
}

// Report returns what the watcher has seen so far, without stopping it.
func (w *ISRWatcher) Report() ISRReport {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := ISRReport{Rounds: w.rounds, Reads: w.reads, Failed: w.failed, Skipped: w.skipped, Partitions: len(w.parts)}
	for _, b := range w.breaches {
		b.ISR = slices.Clone(b.ISR)
		r.Breaches = append(r.Breaches, b)
	}
	slices.SortStableFunc(r.Breaches, func(a, b ISRBreach) int {
		return cmp.Or(a.First.Compare(b.First), strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Broker, b.Broker))
	})
	return r
}

// loop runs the rounds: each tick it hands a sample to every running
// broker's worker, and now and then it refreshes min.insync.replicas.
func (w *ISRWatcher) loop(ctx context.Context) {
	tick := time.NewTicker(w.cfg.interval)
	defer tick.Stop()
	refresh := make(chan struct{}, 1)
	w.wg.Go(func() { w.configLoop(ctx, refresh) })
	for {
		w.round(ctx, refresh)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (w *ISRWatcher) round(ctx context.Context, refresh chan<- struct{}) {
	brokers := w.c.Brokers()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rounds++
	for _, n := range brokers {
		if n.Status() != Running {
			w.skipped++
			continue
		}
		wk := w.workers[n.id]
		if wk == nil {
			cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(n.Addr()), kgo.DialTimeout(w.cfg.readTimeout), kgo.RequestRetries(0),
				kgo.RetryTimeout(w.cfg.readTimeout), kgo.MetadataMinAge(10 * time.Millisecond)}, w.c.clientSecurity()...)...)
			if err != nil {
				w.failed++
				continue
			}
			wk = &watchWorker{id: n.id, addr: n.Addr(), tick: make(chan struct{}, 1), cl: cl}
			w.workers[n.id] = wk
			w.wg.Go(func() { w.work(ctx, wk, refresh) })
		}
		select {
		case wk.tick <- struct{}{}:
		default:
			w.skipped++ // the previous read of this broker still runs
		}
	}
}

// work reads one broker's metadata on each tick.
func (w *ISRWatcher) work(ctx context.Context, wk *watchWorker, refresh chan<- struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-wk.tick:
		}
		req := kmsg.NewPtrMetadataRequest()
		for _, t := range w.cfg.topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(t)
			req.Topics = append(req.Topics, rt)
		}
		rctx, cancel := context.WithTimeout(ctx, w.cfg.readTimeout)
		resp, err := req.RequestWith(rctx, wk.cl.SeedBrokers()[0])
		cancel()
		if ctx.Err() != nil {
			return // stopping: this read does not count
		}
		now := time.Now()
		if err != nil {
			w.mu.Lock()
			w.failed++
			w.mu.Unlock()
			continue
		}
		if w.record(wk.id, resp, now) {
			select {
			case refresh <- struct{}{}:
			default:
			}
		}
	}
}

// record merges one broker's answer into the breaches. It reports whether a
// topic whose min.insync.replicas is not known yet was seen.
func (w *ISRWatcher) record(broker int32, resp *kmsg.MetadataResponse, now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reads++
	newTopic := false
	for _, t := range resp.Topics {
		if t.Topic == nil || t.ErrorCode != 0 && len(t.Partitions) == 0 {
			continue
		}
		name := *t.Topic
		if len(w.cfg.topics) == 0 && (t.IsInternal || strings.HasPrefix(name, "__")) {
			continue
		}
		minISR, ok := w.minISR[name]
		if !ok {
			minISR, newTopic = 1, true
		}
		for _, p := range t.Partitions {
			tp := topicPartition{name, p.Partition}
			w.parts[tp] = true
			key := breachKey{tp, broker}
			bad := p.Leader < 0 || len(p.ISR) < minISR
			i, isOpen := w.open[key]
			switch {
			case bad && isOpen:
				w.breaches[i].Last = now
				w.breaches[i].Samples++
			case bad:
				w.open[key] = len(w.breaches)
				w.breaches = append(w.breaches, ISRBreach{Topic: name, Partition: p.Partition, Broker: broker,
					ISR: slices.Clone(p.ISR), Leader: p.Leader, MinISR: minISR, First: now, Last: now, Samples: 1, Ongoing: true})
			case isOpen:
				w.breaches[i].Ongoing = false
				delete(w.open, key)
			}
		}
	}
	return newTopic
}

// configLoop refreshes min.insync.replicas every 10s, or sooner when a
// worker saw a topic it does not know.
func (w *ISRWatcher) configLoop(ctx context.Context, refresh <-chan struct{}) {
	t := time.NewTicker(w.cfg.refresh)
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-refresh:
			if time.Since(last) < time.Second {
				continue // asked again by the next sample that sees the topic
			}
		}
		if w.c.Mode() == compat.ModeZooKeeper && !w.c.ZooKeeperRunning() {
			// The brokers answer topic configs from ZooKeeper: each read
			// would hold one of their request threads until it is back.
			continue
		}
		last = time.Now()
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		w.refreshConfigs(rctx, false) // a failure keeps the values known so far
		cancel()
	}
}

// refreshConfigs reads min.insync.replicas of the watched topics (all
// topics if none were named). With strict, any failure is returned.
func (w *ISRWatcher) refreshConfigs(ctx context.Context, strict bool) error {
	adm := kadm.NewClient(w.admin)
	topics := w.cfg.topics
	if len(topics) == 0 {
		tds, err := adm.ListTopics(ctx)
		if err != nil {
			return fmt.Errorf("list topics: %w", err)
		}
		topics = tds.Names()
	}
	if len(topics) == 0 {
		return nil
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		return fmt.Errorf("describe configs of %d topics: %w", len(topics), err)
	}
	got := map[string]int{}
	var errs []error
	for _, rc := range rcs {
		if rc.Err != nil {
			continue // a named topic that does not exist yet, or one deleted since it was listed
		}
		for _, cv := range rc.Configs {
			if cv.Key != "min.insync.replicas" {
				continue
			}
			n, err := strconv.Atoi(cv.MaybeValue())
			if err != nil {
				errs = append(errs, fmt.Errorf("topic %s: min.insync.replicas %q: %w", rc.Name, cv.MaybeValue(), err))
				continue
			}
			got[rc.Name] = n
		}
	}
	w.mu.Lock()
	for k, v := range got {
		w.minISR[k] = v
	}
	w.mu.Unlock()
	if strict {
		return errors.Join(errs...)
	}
	return nil
}
