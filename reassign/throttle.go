package reassign

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
)

// The replication throttle configs: two rates per broker, in bytes per
// second, and two replica lists per topic. A list is "", "*" (every replica
// of the topic) or "partition:broker,partition:broker".
const (
	LeaderRateConfig       = "leader.replication.throttled.rate"
	FollowerRateConfig     = "follower.replication.throttled.rate"
	LeaderReplicasConfig   = "leader.replication.throttled.replicas"
	FollowerReplicasConfig = "follower.replication.throttled.replicas"
)

// throttles is a set of replication throttle configs as a cluster has them,
// per broker and per topic. A config absent from the maps, or nil, is not
// set on that broker or topic.
//
// Give newLedger only values set on the resource itself (DescribeConfigs
// sources DYNAMIC_BROKER_CONFIG and DYNAMIC_TOPIC_CONFIG), not static
// server.properties values or cluster-wide defaults: when a throttle is
// restored by deleting the per-resource value, those apply again by
// themselves.
type throttles struct {
	Brokers map[int32]brokerThrottle `json:"brokers,omitempty"`
	Topics  map[string]topicThrottle `json:"topics,omitempty"`
}

// brokerThrottle holds one broker's throttle rates, nil if unset.
type brokerThrottle struct {
	LeaderRate   *string `json:"leaderRate,omitempty"`   // leader.replication.throttled.rate
	FollowerRate *string `json:"followerRate,omitempty"` // follower.replication.throttled.rate
}

// topicThrottle holds one topic's throttled replica lists, nil if unset.
type topicThrottle struct {
	LeaderReplicas   *string `json:"leaderReplicas,omitempty"`   // leader.replication.throttled.replicas
	FollowerReplicas *string `json:"followerReplicas,omitempty"` // follower.replication.throttled.replicas
}

// A ResourceType says whether a [ConfigChange] alters a broker or a topic.
type ResourceType int8

// The resource types a [ConfigChange] alters.
const (
	BrokerResource ResourceType = iota + 1
	TopicResource
)

// A ConfigChange is one IncrementalAlterConfigs operation on one broker or
// topic: [ConfigChange.AlterConfig] gives it in kadm's form, for
// kadm.Client.AlterBrokerConfigs(ctx, cfgs, c.Broker) or
// AlterTopicConfigs(ctx, cfgs, c.Topic).
type ConfigChange struct {
	Resource ResourceType
	Broker   int32  // the broker, if Resource is BrokerResource
	Topic    string // the topic, if Resource is TopicResource
	// Op is kadm.SetConfig or kadm.DeleteConfig (which restores the static
	// or default value).
	Op    kadm.IncrementalOp
	Name  string
	Value string // the value to set; empty for a delete
}

// AlterConfig returns the change as a kadm.AlterConfig.
func (c ConfigChange) AlterConfig() kadm.AlterConfig {
	ac := kadm.AlterConfig{Op: c.Op, Name: c.Name}
	if c.Op == kadm.SetConfig {
		ac.Value = kadm.StringPtr(c.Value)
	}
	return ac
}

// String renders the change as `broker 1: set leader.replication.throttled.rate="1000"`
// or "topic orders: delete follower.replication.throttled.replicas".
func (c ConfigChange) String() string {
	res := "broker " + strconv.Itoa(int(c.Broker))
	if c.Resource == TopicResource {
		res = "topic " + c.Topic
	}
	if c.Op == kadm.DeleteConfig {
		return res + ": delete " + c.Name
	}
	return fmt.Sprintf("%s: set %s=%q", res, c.Name, c.Value)
}

// ConfigChanges is a list of config changes, brokers first (by id), then
// topics (by name).
type ConfigChanges []ConfigChange

// ByBroker returns the broker changes grouped per broker, in order.
func (cs ConfigChanges) ByBroker() map[int32][]kadm.AlterConfig {
	out := make(map[int32][]kadm.AlterConfig)
	for _, c := range cs {
		if c.Resource == BrokerResource {
			out[c.Broker] = append(out[c.Broker], c.AlterConfig())
		}
	}
	return out
}

// ByTopic returns the topic changes grouped per topic, in order.
func (cs ConfigChanges) ByTopic() map[string][]kadm.AlterConfig {
	out := make(map[string][]kadm.AlterConfig)
	for _, c := range cs {
		if c.Resource == TopicResource {
			out[c.Topic] = append(out[c.Topic], c.AlterConfig())
		}
	}
	return out
}

// cfgKey names one config of one resource.
type cfgKey struct {
	res    ResourceType
	broker int32
	topic  string
	name   string
}

func (k cfgKey) resource() string {
	if k.res == TopicResource {
		return "topic " + k.topic
	}
	return "broker " + strconv.Itoa(int(k.broker))
}

// A ledger owns the replication throttles of an execution: it sets them
// for the moves in flight and restores what was there before, exactly,
// as moves finish. It never clobbers what it does not own.
//
//   - Rates: both rates are set on every broker a move in flight involves
//     (its old and new replicas), overriding any earlier value; the earlier
//     value (or its absence) is restored once no move in flight involves the
//     broker any more.
//   - Replica lists, scoped as Cruise Control and topicctl do: the leader
//     list gets "partition:broker" for the old replicas of each moving
//     partition (where data is read from), the follower list for the
//     replicas being added (where it is written). Entries are merged into an
//     existing list after the entries already there, which are kept; a list
//     that is "*" is left alone, since it throttles everything already. As
//     moves finish, their entries go, and once no entry of ours is left the
//     earlier value is restored exactly (or the config deleted, if it was
//     not set).
//
// Each method returns the config changes to apply, and only those that
// change something. A Ledger is a pure value: it does no I/O and is not
// safe for concurrent use.
//
// It is JSON-serialisable for an executor's journal. The ledger records
// the state its last call asked for, so journal it together with the
// changes that call returned, before applying them. After a crash, load
// it, apply the journaled changes again (plain sets and deletes: applying
// twice is harmless), then carry on, or restore everything with
// [Ledger.Close].
//
// The zero ledger is not usable: create one with newLedger, or by
// unmarshalling a journaled one.
type ledger struct {
	rate     int64
	before   map[cfgKey]string         // values that existed; absent = unset
	owned    map[cfgKey]string         // values we set and have not restored yet
	inflight map[string]map[int32]Move // topic → partition → move
	refs     map[int32]int             // broker → moves in flight involving it
}

// newLedger returns a ledger that throttles moves at rate bytes per second,
// given the throttle configs the cluster has now. existing must hold every
// throttle config set on a broker or topic the moves involve (see
// throttles); one it lacks is taken as unset, and would be deleted, not
// restored. The error is a [*ConfigError] for a malformed replica list.
func newLedger(existing throttles, rate int64) (*ledger, error) {
	if rate <= 0 {
		return nil, fmt.Errorf("%w: throttle rate %d: must be positive", ErrInvalid, rate)
	}
	before, err := fromThrottles(existing)
	if err != nil {
		return nil, err
	}
	return &ledger{rate: rate, before: before, owned: make(map[cfgKey]string), inflight: make(map[string]map[int32]Move), refs: make(map[int32]int)}, nil
}

// Rate returns the throttle rate in bytes per second.
func (l *ledger) Rate() int64 { return l.rate }

// Before returns the throttle configs as they were before the ledger
// changed anything.
func (l *ledger) Before() throttles { return toThrottles(l.before) }

// Owned returns the throttle configs the ledger has set and not yet
// restored, as they should be in the cluster now.
func (l *ledger) Owned() throttles { return toThrottles(l.owned) }

// InFlight returns the moves begun and not finished, by topic and partition.
func (l *ledger) InFlight() Moves {
	var out Moves
	for _, t := range l.inflight {
		for _, m := range t {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b Move) int { return compareMoves(&a, &b) })
	return out
}

// Begin records that moves are about to be submitted and returns the
// config changes to apply first. Beginning a move of a partition already in
// flight replaces the earlier one. A move that adds no replica (it changes
// only the order) copies nothing and is not throttled: a leader-side entry
// would slow the partition's in-sync followers for no gain.
func (l *ledger) Begin(moves ...Move) ConfigChanges {
	if l.rate <= 0 {
		// Writing a rate of 0 would stop replication: refuse loudly.
		panic("reassign: Ledger used without NewLedger")
	}
	aff := newAffected()
	for _, m := range moves {
		if old, ok := l.inflight[m.Topic][m.Partition]; ok {
			l.forget(old)
			aff.add(old)
		}
		if len(m.Adding()) > 0 {
			l.track(m)
			aff.add(m)
		}
	}
	return l.reconcile(aff)
}

// track records m as in flight.
func (l *ledger) track(m Move) {
	m.From, m.To = slices.Clone(m.From), slices.Clone(m.To)
	t := l.inflight[m.Topic]
	if t == nil {
		t = make(map[int32]Move)
		l.inflight[m.Topic] = t
	}
	t[m.Partition] = m
	for _, b := range m.Brokers() {
		l.refs[b]++
	}
}

// Finish records that moves finished or were cancelled and returns the
// config changes that lift their throttles: their replica entries, and the
// rates of brokers no other move in flight involves. Moves not in flight
// are ignored; a move is found by topic and partition.
func (l *ledger) Finish(moves ...Move) ConfigChanges {
	aff := newAffected()
	for _, m := range moves {
		if old, ok := l.inflight[m.Topic][m.Partition]; ok {
			l.forget(old)
			aff.add(old)
		}
	}
	return l.reconcile(aff)
}

// Close forgets every move in flight and returns the config changes that
// restore every throttle config the ledger changed to what it was before.
// Use it at the end of an execution, when one is aborted, or after a
// crash with the journaled ledger.
func (l *ledger) Close() ConfigChanges {
	aff := newAffected()
	for k := range l.owned {
		if k.res == BrokerResource {
			aff.brokers[k.broker] = struct{}{}
		} else {
			aff.topics[k.topic] = struct{}{}
		}
	}
	clear(l.inflight)
	clear(l.refs)
	return l.reconcile(aff)
}

// SetRate changes the throttle rate, and returns the config changes that
// apply it to the brokers throttled now.
func (l *ledger) SetRate(rate int64) (ConfigChanges, error) {
	if rate <= 0 {
		return nil, fmt.Errorf("%w: throttle rate %d: must be positive", ErrInvalid, rate)
	}
	l.rate = rate
	aff := newAffected()
	for b := range l.refs {
		aff.brokers[b] = struct{}{}
	}
	return l.reconcile(aff), nil
}

// forget removes m from the moves in flight.
func (l *ledger) forget(m Move) {
	delete(l.inflight[m.Topic], m.Partition)
	if len(l.inflight[m.Topic]) == 0 {
		delete(l.inflight, m.Topic)
	}
	for _, b := range m.Brokers() {
		if l.refs[b]--; l.refs[b] <= 0 {
			delete(l.refs, b)
		}
	}
}

type affected struct {
	brokers map[int32]struct{}
	topics  map[string]struct{}
}

func newAffected() affected {
	return affected{brokers: make(map[int32]struct{}), topics: make(map[string]struct{})}
}

func (a affected) add(m Move) {
	a.topics[m.Topic] = struct{}{}
	for _, b := range m.From {
		a.brokers[b] = struct{}{}
	}
	for _, b := range m.To {
		a.brokers[b] = struct{}{}
	}
}

// reconcile brings the configs of the affected resources to what they
// should be now and returns the changes, brokers first, in order.
func (l *ledger) reconcile(aff affected) ConfigChanges {
	var out ConfigChanges
	rate := strconv.FormatInt(l.rate, 10)
	for _, b := range slices.Sorted(maps.Keys(aff.brokers)) {
		for _, name := range []string{LeaderRateConfig, FollowerRateConfig} {
			k := cfgKey{res: BrokerResource, broker: b, name: name}
			if l.refs[b] > 0 {
				out = l.sync(out, k, rate, true)
			} else {
				v, ok := l.before[k]
				out = l.sync(out, k, v, ok)
			}
		}
	}
	for _, t := range slices.Sorted(maps.Keys(aff.topics)) {
		for _, name := range []string{LeaderReplicasConfig, FollowerReplicasConfig} {
			k := cfgKey{res: TopicResource, topic: t, name: name}
			v, ok := l.wantList(k)
			out = l.sync(out, k, v, ok)
		}
	}
	return out
}

// wantList returns what topic list k should be: the earlier value with the
// entries of the moves in flight merged in.
func (l *ledger) wantList(k cfgKey) (string, bool) {
	bv, bok := l.before[k]
	if bok && strings.TrimSpace(bv) == "*" {
		return bv, true
	}
	ms := l.inflight[k.topic]
	if len(ms) == 0 {
		return bv, bok
	}
	var ours []string
	for _, p := range slices.Sorted(maps.Keys(ms)) {
		m := ms[p]
		brokers := m.From // leader side: where data is read from
		if k.name == FollowerReplicasConfig {
			brokers = m.Adding() // follower side: where it is written
		}
		for _, b := range brokers {
			ours = append(ours, strconv.Itoa(int(p))+":"+strconv.Itoa(int(b)))
		}
	}
	have := parseList(bv)
	merged := slices.Clone(have)
	for _, e := range ours {
		if !slices.Contains(have, e) {
			merged = append(merged, e)
		}
	}
	if len(merged) == len(have) {
		return bv, bok // every entry we need is there already, and not ours
	}
	return strings.Join(merged, ","), true
}

// sync appends the change that makes config k hold v (set) or nothing
// (!set), if it does not already, and records ownership.
func (l *ledger) sync(out ConfigChanges, k cfgKey, v string, set bool) ConfigChanges {
	cur, curSet := l.owned[k]
	if !curSet {
		cur, curSet = l.before[k]
	}
	bv, bSet := l.before[k]
	restoring := set == bSet && v == bv
	if restoring {
		delete(l.owned, k)
	} else {
		l.owned[k] = v
	}
	if set == curSet && v == cur {
		return out
	}
	c := ConfigChange{Resource: k.res, Broker: k.broker, Topic: k.topic, Name: k.name, Op: kadm.SetConfig, Value: v}
	if !set {
		c.Op, c.Value = kadm.DeleteConfig, ""
	}
	return append(out, c)
}

// parseList splits a replica list into trimmed, non-empty entries.
func parseList(v string) []string {
	var out []string
	for e := range strings.SplitSeq(v, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

func validList(k cfgKey, v string) error {
	if strings.TrimSpace(v) == "*" {
		return nil
	}
	for _, e := range parseList(v) {
		p, b, ok := strings.Cut(e, ":")
		if !ok || !digits(p) || !digits(b) {
			return &ConfigError{Resource: k.resource(), Name: k.name, Value: v, Reason: fmt.Sprintf("entry %q is not partition:broker", e)}
		}
	}
	return nil
}

func digits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

func fromThrottles(t throttles) (map[cfgKey]string, error) {
	out := make(map[cfgKey]string)
	put := func(k cfgKey, v *string) error {
		if v == nil {
			return nil
		}
		if k.res == TopicResource {
			if err := validList(k, *v); err != nil {
				return err
			}
		}
		out[k] = *v
		return nil
	}
	for b, bt := range t.Brokers {
		_ = put(cfgKey{res: BrokerResource, broker: b, name: LeaderRateConfig}, bt.LeaderRate)
		_ = put(cfgKey{res: BrokerResource, broker: b, name: FollowerRateConfig}, bt.FollowerRate)
	}
	for _, name := range slices.Sorted(maps.Keys(t.Topics)) { // first error is deterministic
		tt := t.Topics[name]
		if err := put(cfgKey{res: TopicResource, topic: name, name: LeaderReplicasConfig}, tt.LeaderReplicas); err != nil {
			return nil, err
		}
		if err := put(cfgKey{res: TopicResource, topic: name, name: FollowerReplicasConfig}, tt.FollowerReplicas); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func toThrottles(m map[cfgKey]string) throttles {
	var t throttles
	for k, v := range m {
		switch k.res {
		case BrokerResource:
			if t.Brokers == nil {
				t.Brokers = make(map[int32]brokerThrottle)
			}
			bt := t.Brokers[k.broker]
			if k.name == LeaderRateConfig {
				bt.LeaderRate = &v
			} else {
				bt.FollowerRate = &v
			}
			t.Brokers[k.broker] = bt
		case TopicResource:
			if t.Topics == nil {
				t.Topics = make(map[string]topicThrottle)
			}
			tt := t.Topics[k.topic]
			if k.name == LeaderReplicasConfig {
				tt.LeaderReplicas = &v
			} else {
				tt.FollowerReplicas = &v
			}
			t.Topics[k.topic] = tt
		}
	}
	return t
}

// ledgerJSON is the Ledger's journal form.
type ledgerJSON struct {
	Rate     int64     `json:"rate"`
	Before   throttles `json:"before"`
	Owned    throttles `json:"owned"`
	InFlight Moves     `json:"inFlight"`
}

// MarshalJSON encodes the ledger: the rate, the configs before, the configs
// it owns now, and the moves in flight. Equal ledgers encode to equal bytes.
func (l ledger) MarshalJSON() ([]byte, error) {
	return json.Marshal(ledgerJSON{Rate: l.rate, Before: toThrottles(l.before), Owned: toThrottles(l.owned), InFlight: l.InFlight()})
}

// UnmarshalJSON decodes a ledger that MarshalJSON encoded.
func (l *ledger) UnmarshalJSON(b []byte) error {
	var j ledgerJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	nl, err := newLedger(j.Before, j.Rate)
	if err != nil {
		return err
	}
	if nl.owned, err = fromThrottles(j.Owned); err != nil {
		return err
	}
	for _, m := range j.InFlight {
		nl.track(m)
	}
	*l = *nl
	return nil
}
