package health

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/node"
)

// A Snapshot is what a cluster looked like at one moment: its brokers, its
// controller and every partition. The verdict functions ([CanRestart],
// [CaughtUp]) are pure functions of a Snapshot.
//
// A Snapshot is a value and JSON-serialisable. Treat it as immutable: the
// verdict functions keep an index by node that [Take], [Snapshot.Indexed] and
// JSON decoding attach, shared by copies. To change a snapshot (in a test, say),
// build a new Topics slice rather than editing partitions in place.
//
// The index is built only when a snapshot is asked more than twice: the
// first two lookups ([CanRestart], [CaughtUp], [Snapshot.Counts],
// [Snapshot.EachPartitionOn], [Snapshot.Topic] and the like) each scan
// every partition once, which costs less than building the index, and from
// the third on they touch only the partitions the nodes asked about host. A
// gate that takes a new snapshot at every poll thus never builds one. A
// Snapshot built as a literal, or whose Topics were replaced after the
// index was built, has no usable index: every lookup scans every
// partition, which is correct but slower for many lookups. A Snapshot is
// safe for concurrent use by readers. To compare snapshots with go-cmp, use
// cmpopts.IgnoreUnexported(Snapshot{}).
type Snapshot struct {
	// TakenAt is when the snapshot was taken (zero for hand-built ones).
	TakenAt time.Time `json:"takenAt,omitzero"`
	// ClusterID is the cluster's id, when the brokers report one.
	ClusterID string `json:"clusterId,omitempty"`
	// Controller is the controller id from metadata, -1 if unknown. In
	// ZooKeeper mode it is the controller broker; in KRaft mode Kafka reports
	// a random live broker here, not the active controller (ask the kraft
	// package for the quorum leader).
	Controller int32 `json:"controller"`
	// FencingKnown reports whether the brokers said which of them are fenced
	// (DescribeCluster v2, KRaft on Kafka 4.0 and later). If false, a broker
	// absent from metadata is simply missing from Brokers.
	FencingKnown bool `json:"fencingKnown,omitempty"`
	// Brokers are the registered brokers, sorted by ID. A broker is up if it
	// is listed and not fenced. If Brokers is empty, liveness is unknown and
	// every replica is assumed up (convenient for hand-built snapshots).
	Brokers []Broker `json:"brokers,omitempty"`
	// Topics are every topic, internal ones included, sorted by name by Take.
	Topics []Topic `json:"topics"`

	idx *index // lazily built; shared by copies; nil for literals
}

// A Broker is one registered broker.
type Broker struct {
	// Node is the broker's identity: ID, advertised client endpoint (Host
	// and Port) and Rack (empty if none); Roles and Version stay empty, as
	// metadata does not say them.
	node.Node
	// Fenced reports that the KRaft controller has fenced the broker: it is
	// registered but does not serve (starting, catching up, or shut down).
	Fenced bool `json:"fenced,omitempty"`
}

// A Topic is one topic with its partitions and its effective
// min.insync.replicas.
type Topic struct {
	// Name is the topic's name.
	Name string `json:"name"`
	// ID is the topic's id (Kafka 2.8 and later), zero if unknown.
	ID TopicID `json:"id,omitzero"`
	// Internal reports a Kafka-internal topic such as __consumer_offsets.
	Internal bool `json:"internal,omitempty"`
	// MinISR is the effective min.insync.replicas: the topic override, else
	// the broker or cluster dynamic default, else the static broker
	// config, else Kafka's default of 1. Zero or less means 1.
	MinISR int32 `json:"minIsr,omitempty"`
	// MinISRSource says where MinISR came from; empty
	// ([compat.SourceUnknown]) for hand-built topics and when it could not
	// be read.
	MinISRSource compat.ConfigSource `json:"minIsrSource,omitempty"`
	// MinISRError says why MinISR could not be read, if it could not; then
	// restarts of this topic's replica holders are refused (rule
	// [RuleMinISRUnknown]).
	MinISRError string `json:"minIsrError,omitempty"`
	// ErrorCode is the topic-level metadata error code, 0 if none.
	ErrorCode int16 `json:"errorCode,omitempty"`
	// Partitions are the topic's partitions, sorted by number by Take.
	Partitions []Partition `json:"partitions"`
}

// A Partition is one partition's leadership and replication state.
//
// Its slices may share memory with other values (the metadata response, a
// [Reason]); do not modify them.
type Partition struct {
	// Partition is the partition number.
	Partition int32 `json:"partition"`
	// Leader is the leader's node id, -1 if the partition has no leader
	// (it is offline).
	Leader int32 `json:"leader"`
	// LeaderEpoch is the leader epoch, -1 if unknown.
	LeaderEpoch int32 `json:"leaderEpoch,omitempty"`
	// ErrorCode is the partition's metadata error code, 0 if none.
	ErrorCode int16 `json:"errorCode,omitempty"`
	// Replicas are the assigned replicas; the first is the preferred leader.
	Replicas []int32 `json:"replicas"`
	// ISR are the in-sync replicas.
	ISR []int32 `json:"isr"`
	// Offline are replicas whose log directory is offline.
	Offline []int32 `json:"offline,omitempty"`
}

// A TopicID is a Kafka topic id (a UUID). It marshals as Kafka prints it:
// URL-safe base64 without padding.
type TopicID [16]byte

// String returns the id as Kafka prints it.
func (id TopicID) String() string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// IsZero reports whether the id is unset.
func (id TopicID) IsZero() bool { return id == TopicID{} }

// MarshalText implements [encoding.TextMarshaler].
func (id TopicID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements [encoding.TextUnmarshaler].
func (id *TopicID) UnmarshalText(b []byte) error {
	n, err := base64.RawURLEncoding.Decode(id[:], b)
	if err != nil || n != len(id) || base64.RawURLEncoding.DecodedLen(len(b)) != len(id) {
		return fmt.Errorf("health: bad topic id %q", b)
	}
	return nil
}

// Counts summarises a snapshot's partitions. Under- and at-min-ISR counts
// cover online partitions only, as Kafka's own metrics do; offline partitions
// are counted in Offline. Like Kafka, they cap min.insync.replicas at the
// partition's replica count: an RF 1 partition of a topic with
// min.insync.replicas 2 takes acks=all writes, so it is at min ISR, not under.
type Counts struct {
	// Brokers is the number of registered brokers; Fenced how many of them
	// are fenced.
	Brokers int `json:"brokers"`
	Fenced  int `json:"fenced"`
	// Topics, Partitions and Replicas count everything in the snapshot.
	Topics     int `json:"topics"`
	Partitions int `json:"partitions"`
	Replicas   int `json:"replicas"`
	// Offline counts partitions without a leader.
	Offline int `json:"offline"`
	// UnderReplicated counts partitions whose ISR is smaller than their
	// replica set.
	UnderReplicated int `json:"underReplicated"`
	// UnderMinISR counts online partitions whose ISR is smaller than their
	// effective min.insync.replicas: producers with acks=all fail there.
	UnderMinISR int `json:"underMinIsr"`
	// AtMinISR counts online partitions whose ISR equals their effective
	// min.insync.replicas: losing one more in-sync replica stops acks=all
	// producers.
	AtMinISR int `json:"atMinIsr"`
	// NotPreferredLeader counts online partitions not led by their first
	// replica.
	NotPreferredLeader int `json:"notPreferredLeader"`
}

// String renders the counts on one line, for logs.
func (c Counts) String() string {
	return fmt.Sprintf("%d brokers (%d fenced), %d partitions: %d offline, %d under-replicated, %d under min ISR, %d at min ISR, %d not on preferred leader",
		c.Brokers, c.Fenced, c.Partitions, c.Offline, c.UnderReplicated, c.UnderMinISR, c.AtMinISR, c.NotPreferredLeader)
}

// EffectiveMinISR returns MinISR, or 1 if MinISR is not set.
func (t *Topic) EffectiveMinISR() int32 {
	if t.MinISR <= 0 {
		return 1
	}
	return t.MinISR
}

// Partition returns the partition numbered p.
func (t *Topic) Partition(p int32) (Partition, bool) {
	if p >= 0 && int(p) < len(t.Partitions) && t.Partitions[p].Partition == p {
		return t.Partitions[p], true
	}
	for _, pt := range t.Partitions {
		if pt.Partition == p {
			return pt, true
		}
	}
	return Partition{}, false
}

// Online reports whether the partition has a leader.
func (p *Partition) Online() bool { return p.Leader >= 0 }

// PreferredLeader returns the first replica, or -1 if there are none.
func (p *Partition) PreferredLeader() int32 {
	if len(p.Replicas) == 0 {
		return -1
	}
	return p.Replicas[0]
}

// HasReplica reports whether node holds a replica of the partition.
func (p *Partition) HasReplica(node int32) bool { return slices.Contains(p.Replicas, node) }

// InISR reports whether node is an in-sync replica of the partition.
func (p *Partition) InISR(node int32) bool { return slices.Contains(p.ISR, node) }

// UnderReplicated reports whether the ISR is smaller than the replica set.
func (p *Partition) UnderReplicated() bool { return len(p.ISR) < len(p.Replicas) }

// Err returns the partition's metadata error, nil if none.
func (p *Partition) Err() error { return kerr.ErrorForCode(p.ErrorCode) }

// Broker returns the registered broker with the given id.
func (s Snapshot) Broker(id int32) (Broker, bool) {
	for _, b := range s.Brokers {
		if b.ID == id {
			return b, true
		}
	}
	return Broker{}, false
}

// Up reports whether node is a registered, unfenced broker. If the snapshot
// lists no brokers at all, liveness is unknown and Up reports true.
func (s Snapshot) Up(node int32) bool {
	if len(s.Brokers) == 0 {
		return true
	}
	b, ok := s.Broker(node)
	return ok && !b.Fenced
}

// Topic returns the named topic.
func (s Snapshot) Topic(name string) (Topic, bool) {
	if x := s.lookup(); x != nil {
		if i, ok := x.byName[name]; ok {
			return s.Topics[i], true
		}
		return Topic{}, false
	}
	for _, t := range s.Topics {
		if t.Name == name {
			return t, true
		}
	}
	return Topic{}, false
}

// Partition returns partition p of the named topic.
func (s Snapshot) Partition(topic string, p int32) (Partition, bool) {
	t, ok := s.Topic(topic)
	if !ok {
		return Partition{}, false
	}
	return t.Partition(p)
}

// EachPartition calls fn for every partition, topic by topic.
func (s Snapshot) EachPartition(fn func(Topic, Partition)) {
	for _, t := range s.Topics {
		for _, p := range t.Partitions {
			fn(t, p)
		}
	}
}

// EachPartitionOn calls fn for every partition of which node holds a replica,
// in the snapshot's order. Once the snapshot's index is built it touches
// only those partitions.
func (s Snapshot) EachPartitionOn(node int32, fn func(Topic, Partition)) {
	s.eachOn(s.lookup(), node, func(t *Topic, p *Partition) { fn(*t, *p) })
}

// Counts returns the snapshot's counts: kept in the index once it is built,
// else counted in one scan of the partitions.
func (s Snapshot) Counts() Counts {
	if x := s.lookup(); x != nil {
		return x.counts
	}
	return countsOf(&s)
}

// Indexed returns s with a fresh index attached, so that once the snapshot
// is asked more than twice, verdicts touch only the partitions the nodes
// they are asked about host. The index is built on the third lookup and
// shared by copies of the returned Snapshot (see [Snapshot]). [Take] and
// JSON decoding attach one already; call Indexed after building a Snapshot
// by hand or after replacing its Topics.
func (s Snapshot) Indexed() Snapshot {
	s.idx = new(index)
	return s
}

// UnmarshalJSON decodes a snapshot and attaches a fresh index to it.
func (s *Snapshot) UnmarshalJSON(b []byte) error {
	type plain Snapshot // no methods: avoids recursion
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*s = Snapshot(p)
	s.idx = new(index)
	return nil
}

// String summarises the snapshot on one line.
func (s Snapshot) String() string {
	var b strings.Builder
	if !s.TakenAt.IsZero() {
		b.WriteString(s.TakenAt.UTC().Format(time.RFC3339) + " ")
	}
	fmt.Fprintf(&b, "controller %d, %v", s.Controller, s.Counts())
	return b.String()
}
