package health

import (
	"fmt"
	"slices"
	"strconv"
)

// A GateOption configures a [Gate].
type GateOption interface{ applyGate(*gateConfig) }

type gateOptionFunc func(*gateConfig)

func (f gateOptionFunc) applyGate(c *gateConfig) { f(c) }

// A limit is an optional cluster-wide maximum.
type limit struct {
	set bool
	n   int
	by  string // the option that set it, for errors
}

type gateConfig struct {
	allowOfflineRF1 bool
	allowDown       bool
	offline         limit
	underReplicated limit
	underMinISR     limit
}

func defaultGateConfig() gateConfig { return gateConfig{} }

func (c *gateConfig) validate() error {
	for _, l := range []limit{c.offline, c.underReplicated, c.underMinISR} {
		if l.set && l.n < 0 {
			return fmt.Errorf("health: %s(%d): the limit must be 0 or more", l.by, l.n)
		}
	}
	return nil
}

// AllowOfflineRF1 lets a partition with a single replica go offline while its
// only replica restarts, overriding the default, which refuses. Use it for
// clusters that keep unreplicated topics and accept their brief outage.
func AllowOfflineRF1() GateOption {
	return gateOptionFunc(func(c *gateConfig) { c.allowOfflineRF1 = true })
}

// AllowRestartingDownNodes exempts nodes that the snapshot shows as down (not
// registered, or fenced) from the partition rules, overriding the default,
// which treats them like any replica holder. Their replicas serve nothing, so
// restarting them cannot make availability worse, and is often the way to
// recover; but with the default a down node that holds a replica of a
// partition already below min.insync.replicas is refused, as Strimzi does.
func AllowRestartingDownNodes() GateOption {
	return gateOptionFunc(func(c *gateConfig) { c.allowDown = true })
}

// MaxOffline refuses any restart while more than n partitions in the cluster
// are offline, overriding the default of no cluster-wide limit.
func MaxOffline(n int) GateOption {
	return gateOptionFunc(func(c *gateConfig) { c.offline = limit{true, n, "MaxOffline"} })
}

// MaxUnderReplicated refuses any restart while more than n partitions in the
// cluster are under-replicated, overriding the default of no cluster-wide
// limit.
func MaxUnderReplicated(n int) GateOption {
	return gateOptionFunc(func(c *gateConfig) { c.underReplicated = limit{true, n, "MaxUnderReplicated"} })
}

// MaxUnderMinISR refuses any restart while more than n online partitions in
// the cluster are below min.insync.replicas, overriding the default of no
// cluster-wide limit.
func MaxUnderMinISR(n int) GateOption {
	return gateOptionFunc(func(c *gateConfig) { c.underMinISR = limit{true, n, "MaxUnderMinISR"} })
}

// NoWorseThan refuses any restart while the cluster has more offline,
// under-replicated or under-min-ISR partitions than base, typically the
// [Snapshot.Counts] taken before a rolling restart began. It sets the three
// limits [MaxOffline], [MaxUnderReplicated] and [MaxUnderMinISR].
func NoWorseThan(base Counts) GateOption {
	return gateOptionFunc(func(c *gateConfig) {
		c.offline = limit{true, base.Offline, "NoWorseThan(Offline)"}
		c.underReplicated = limit{true, base.UnderReplicated, "NoWorseThan(UnderReplicated)"}
		c.underMinISR = limit{true, base.UnderMinISR, "NoWorseThan(UnderMinISR)"}
	})
}

// A Gate decides whether nodes can be restarted, under rules set by its
// options. A Gate is immutable and safe for concurrent use; the zero Gate
// applies the default rules, as [CanRestart] does.
type Gate struct {
	cfg gateConfig
}

// NewGate returns a Gate with the given options, or an error naming the first
// invalid one.
func NewGate(opts ...GateOption) (*Gate, error) {
	cfg := defaultGateConfig()
	for _, o := range opts {
		o.applyGate(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Gate{cfg: cfg}, nil
}

var defaultGate = &Gate{cfg: defaultGateConfig()}

// CanRestart reports whether stopping all of nodes at once keeps every
// partition online and at or above min.insync.replicas, and why not. It is
// [Gate.CanRestart] with the default rules; it does no I/O.
func CanRestart(s Snapshot, nodes ...int32) Verdict { return defaultGate.CanRestart(s, nodes...) }

// CanRestart reports whether stopping all of nodes at once is safe, and why
// not. It does no I/O.
//
// Every partition with a replica on one of the nodes is checked against the
// partition rules ([RuleGoesOffline], [RuleMinISRUnknown], [RuleUnderMinISR],
// [RuleBelowMinISR]); each blocked partition yields one [Reason]. The ISR
// counted is the live ISR: members the snapshot shows as down (not
// registered, or fenced) are not counted, which is stricter than counting the
// ISR Kafka reports while it has not yet noticed a broker is gone. The rules
// are at least as strict as Strimzi's KafkaAvailability: a partition already
// below min.insync.replicas blocks a restart of any replica holder, one at
// min.insync.replicas blocks a restart of an ISR member, and neither applies
// when the replication factor is at most min.insync.replicas; besides, a
// partition whose live in-sync replicas are all among the nodes is blocked
// whatever its replication factor. Cluster-wide limits, if set, are checked
// first and yield reasons without a topic.
//
// Once the snapshot's index is built (see [Snapshot]) only the partitions the
// nodes host are touched; before that, and for a snapshot without an index,
// CanRestart scans every partition once. Nodes that host no partitions, such
// as KRaft controllers, are always safe as far as this check goes; the
// controller quorum is checked elsewhere.
func (g *Gate) CanRestart(s Snapshot, nodes ...int32) Verdict {
	set := normNodes(nodes)
	v := Verdict{Kind: KindCanRestart, Nodes: set}
	if x := s.lookup(); x != nil {
		v.Reasons = g.clusterReasons(x.counts, v.Reasons)
		for i, n := range set {
			for _, r := range x.refsOf(n) {
				t := &s.Topics[r.t]
				p := &t.Partitions[r.p]
				if holdsAny(p.Replicas, set[:i]) {
					continue // already checked with an earlier node of the set
				}
				g.check(&v, &x.live, t, p)
			}
		}
	} else {
		g.scan(&v, &s)
	}
	if len(v.Reasons) > 1 {
		sortReasons(v.Reasons)
	}
	v.OK = len(v.Reasons) == 0
	return v
}

// scan is CanRestart without an index: one pass over every partition,
// checking those that v.Nodes hold and, if the gate has cluster-wide limits,
// counting them all.
func (g *Gate) scan(v *Verdict, s *Snapshot) {
	set := v.Nodes
	live := newLiveness(s.Brokers)
	limits := g.cfg.offline.set || g.cfg.underReplicated.set || g.cfg.underMinISR.set
	var c Counts
	if limits {
		c = brokerCounts(s)
	}
	var member idMap // for large sets: id → 0 if a member
	if len(set) > 8 {
		for _, n := range set {
			member.set(n, 0)
		}
	}
	for ti := range s.Topics {
		t := &s.Topics[ti]
		m := int(t.EffectiveMinISR())
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			if limits {
				c.add(m, p)
			}
			if len(set) > 8 {
				if !member.holdsAny(p.Replicas) {
					continue
				}
			} else if !holdsAny(p.Replicas, set) {
				continue
			}
			g.check(v, &live, t, p)
		}
	}
	if limits {
		v.Reasons = g.clusterReasons(c, v.Reasons)
	}
}

// check counts p as checked and adds a reason if it blocks a restart of
// v.Nodes.
func (g *Gate) check(v *Verdict, live *liveness, t *Topic, p *Partition) {
	v.Checked++
	if rule := g.partitionRule(live, t, p, v.Nodes); rule != "" {
		v.Reasons = append(v.Reasons, restartReason(rule, live, t, p, v.Nodes, g.cfg.allowDown))
	}
}

// partitionRule returns the first rule p breaks if set restarts, or "".
// It does not allocate.
func (g *Gate) partitionRule(x *liveness, t *Topic, p *Partition, set []int32) Rule {
	if g.cfg.allowDown {
		up := false
		for _, n := range set {
			if !x.isDown(n) && slices.Contains(p.Replicas, n) {
				up = true
				break
			}
		}
		if !up {
			return "" // only down nodes hold it: restarting them changes nothing
		}
	}
	rf := len(p.Replicas)
	m := int(t.EffectiveMinISR())
	before, after := 0, 0
	for _, r := range p.ISR {
		if x.isDown(r) {
			continue
		}
		before++
		if !slices.Contains(set, r) {
			after++
		}
	}
	switch {
	case before > 0 && after == 0 && !(rf == 1 && g.cfg.allowOfflineRF1):
		return RuleGoesOffline
	case t.MinISRError != "" && rf > 1:
		return RuleMinISRUnknown
	case rf > m && before < m:
		return RuleUnderMinISR
	case rf > m && after < m:
		return RuleBelowMinISR
	}
	return ""
}

// restartReason explains why p blocks a restart of set under rule.
func restartReason(rule Rule, x *liveness, t *Topic, p *Partition, set []int32, allowDown bool) Reason {
	// One allocation for the three id lists.
	ids := make([]int32, 0, len(set)+2*len(p.ISR))
	for _, n := range set {
		if slices.Contains(p.Replicas, n) && !(allowDown && x.isDown(n)) {
			ids = append(ids, n)
		}
	}
	holders := ids[:len(ids):len(ids)]
	for _, r := range p.ISR {
		if !x.isDown(r) && !slices.Contains(set, r) {
			ids = append(ids, r)
		}
	}
	after := ids[len(holders):len(ids):len(ids)]
	for _, r := range p.ISR {
		if x.isDown(r) {
			ids = append(ids, r)
		}
	}
	down := ids[len(holders)+len(after):]
	m := t.EffectiveMinISR()

	b := make([]byte, 0, 160)
	b = append(b, t.Name...)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(p.Partition), 10)
	b = append(b, ": "...)
	switch rule {
	case RuleGoesOffline:
		b = append(b, "ISR "...)
		b = appendSet(b, p.ISR)
		b = append(b, " would drop to {}: the partition would go offline"...)
		if len(p.Replicas) == 1 {
			b = append(b, " (replication factor 1; AllowOfflineRF1 permits this)"...)
		}
	case RuleMinISRUnknown:
		b = append(b, "min.insync.replicas of topic "...)
		b = append(b, t.Name...)
		b = append(b, " is unknown"...)
		if t.MinISRError != "" {
			b = append(b, " ("...)
			b = append(b, t.MinISRError...)
			b = append(b, ')')
		}
		b = append(b, "; cannot tell whether restarting "...)
		b = append(b, nodeWord(holders)...)
		b = append(b, " is safe"...)
	case RuleUnderMinISR:
		b = append(b, "ISR "...)
		b = appendSet(b, p.ISR)
		b = append(b, " is already below min.insync.replicas "...)
		b = strconv.AppendInt(b, int64(m), 10)
		b = append(b, ", and "...)
		b = append(b, nodeWord(holders)...)
		if len(holders) > 1 {
			b = append(b, " hold replicas"...)
		} else {
			b = append(b, " holds a replica"...)
		}
		b = append(b, " that may be the first to catch up"...)
	case RuleBelowMinISR:
		b = append(b, "ISR "...)
		b = appendSet(b, p.ISR)
		b = append(b, " would drop to "...)
		b = appendSet(b, after)
		b = append(b, ", below min.insync.replicas "...)
		b = strconv.AppendInt(b, int64(m), 10)
	}
	if p.Leader < 0 {
		b = append(b, " (no leader)"...)
	}
	if len(down) > 0 {
		b = append(b, " (down: "...)
		b = appendSet(b, down)
		b = append(b, ')')
	}
	return Reason{
		Rule:      rule,
		Topic:     t.Name,
		Partition: p.Partition,
		Nodes:     holders,
		Leader:    p.Leader,
		Replicas:  p.Replicas,
		ISR:       p.ISR,
		ISRAfter:  after,
		MinISR:    m,
		Message:   string(b),
	}
}

// clusterReasons appends a reason for each cluster-wide limit c exceeds.
func (g *Gate) clusterReasons(c Counts, rs []Reason) []Reason {
	for _, l := range []struct {
		lim  limit
		n    int
		rule Rule
		what string
	}{
		{g.cfg.offline, c.Offline, RuleClusterOffline, "offline"},
		{g.cfg.underReplicated, c.UnderReplicated, RuleClusterUnderReplicated, "under-replicated"},
		{g.cfg.underMinISR, c.UnderMinISR, RuleClusterUnderMinISR, "under min.insync.replicas"},
	} {
		if l.lim.set && l.n > l.lim.n {
			rs = append(rs, Reason{
				Rule:      l.rule,
				Partition: -1,
				Leader:    -1,
				Message:   fmt.Sprintf("cluster: %d partitions %s, more than the %d allowed", l.n, l.what, l.lim.n),
			})
		}
	}
	return rs
}

// holdsAny reports whether replicas contains any of the ids in m.
func (m *idMap) holdsAny(replicas []int32) bool {
	for _, r := range replicas {
		if _, ok := m.get(r); ok {
			return true
		}
	}
	return false
}

// holdsAny reports whether replicas contains any of nodes.
func holdsAny(replicas, nodes []int32) bool {
	for _, n := range nodes {
		if slices.Contains(replicas, n) {
			return true
		}
	}
	return false
}
