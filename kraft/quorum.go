package kraft

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// MetadataTopic is the KRaft metadata log: DescribeQuorum asks about its
// only partition, 0.
const MetadataTopic = "__cluster_metadata"

// A Quorum is the state of the KRaft controller quorum as its leader sees
// it, from one DescribeQuorum answer.
type Quorum struct {
	// LeaderID is the active controller, -1 if the quorum has no leader.
	LeaderID int32 `json:"leaderId"`
	// LeaderEpoch is the latest known leader epoch.
	LeaderEpoch int32 `json:"leaderEpoch"`
	// HighWatermark is the metadata log's high watermark, -1 if unknown.
	HighWatermark int64 `json:"highWatermark"`
	// Voters are the controllers that vote, sorted by id; the leader is
	// one of them.
	Voters []Replica `json:"voters"`
	// Observers are the replicas that fetch the metadata log without voting
	// (brokers, and controllers that are not voters), sorted by id.
	Observers []Replica `json:"observers"`
	// Nodes are the voters' listeners, sorted by id. Kafka reports them from
	// DescribeQuorum v2 on (3.9+); empty before.
	Nodes []QuorumNode `json:"nodes,omitempty"`
	// Version is the DescribeQuorum version of the answer. Below 1 there
	// are no fetch or caught-up times; below 2 no directory ids and no Nodes.
	Version int16 `json:"version"`
}

// A Replica is one voter or observer of the metadata log.
type Replica struct {
	// ID is the node id.
	ID int32 `json:"id"`
	// DirectoryID identifies the replica's metadata log directory (KIP-853,
	// DescribeQuorum v2); zero when unknown.
	DirectoryID UUID `json:"directoryId"`
	// LogEndOffset is the replica's log end offset as the leader last saw
	// it, -1 if unknown.
	LogEndOffset int64 `json:"logEndOffset"`
	// Lag is how many records the replica is behind the leader's log end
	// offset (what kafka-metadata-quorum prints as Lag), -1 if unknown.
	Lag int64 `json:"lag"`
	// LastFetch is when the replica last fetched from the leader, by the
	// leader's clock; for the leader itself, the time of the answer. Zero if
	// unknown.
	LastFetch time.Time `json:"lastFetch"`
	// LastCaughtUp is the leader's append time of the offset the replica's
	// latest fetch reached: when it was last fully caught up, by the
	// leader's clock. For the leader itself it is the time of the answer.
	// Zero if unknown.
	LastCaughtUp time.Time `json:"lastCaughtUp"`
}

// A QuorumNode is a voter's network identity, from DescribeQuorum v2.
type QuorumNode struct {
	ID        int32      `json:"id"`
	Listeners []Listener `json:"listeners"`
}

// Addr returns the first listener's address ("host:port"), or "" if the
// node reports none.
func (n QuorumNode) Addr() string {
	if len(n.Listeners) == 0 {
		return ""
	}
	return n.Listeners[0].Addr()
}

// A Listener is one named endpoint of a node.
type Listener struct {
	Name string `json:"name"`
	Host string `json:"host"`
	Port uint16 `json:"port"`
}

// Addr returns "host:port".
func (l Listener) Addr() string { return net.JoinHostPort(l.Host, strconv.Itoa(int(l.Port))) }

// A UUID is a Kafka Uuid, such as a replica directory id.
type UUID [16]byte

// IsZero reports whether u is the zero UUID (unknown or not set).
func (u UUID) IsZero() bool { return u == UUID{} }

// String returns u as Kafka prints it: URL-safe base64 without padding
// ("AAAAAAAAAAAAAAAAAAAAAA" for the zero UUID).
func (u UUID) String() string { return base64.RawURLEncoding.EncodeToString(u[:]) }

// MarshalText implements encoding.TextMarshaler with [UUID.String].
func (u UUID) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler: it reads what
// [UUID.MarshalText] writes (22 characters of URL-safe base64 without
// padding), so a marshaled [Quorum] or Inspection decodes again.
func (u *UUID) UnmarshalText(b []byte) error {
	var v UUID
	if len(b) != base64.RawURLEncoding.EncodedLen(len(v)) {
		return fmt.Errorf("kraft: %q is not a Kafka Uuid (22 characters of URL-safe base64)", b)
	}
	if n, err := base64.RawURLEncoding.Strict().Decode(v[:], b); err != nil || n != len(v) {
		return fmt.Errorf("kraft: %q is not a Kafka Uuid (22 characters of URL-safe base64)", b)
	}
	*u = v
	return nil
}

// ActiveController returns the id of the active controller (the quorum
// leader) and true, or -1 and false if the quorum has no leader.
func (q Quorum) ActiveController() (int32, bool) { return q.LeaderID, q.LeaderID >= 0 }

// Leader returns the leader's replica state.
func (q Quorum) Leader() (Replica, bool) { return q.Voter(q.LeaderID) }

// Voter returns voter id's replica state.
func (q Quorum) Voter(id int32) (Replica, bool) { return find(q.Voters, id) }

// Observer returns observer id's replica state.
func (q Quorum) Observer(id int32) (Replica, bool) { return find(q.Observers, id) }

// IsVoter reports whether id is a voter.
func (q Quorum) IsVoter(id int32) bool { _, ok := q.Voter(id); return ok }

// VoterIDs returns the voters' ids, sorted.
func (q Quorum) VoterIDs() []int32 { return ids(q.Voters) }

// ObserverIDs returns the observers' ids, sorted.
func (q Quorum) ObserverIDs() []int32 { return ids(q.Observers) }

// Node returns voter id's listeners, if Kafka reported them.
func (q Quorum) Node(id int32) (QuorumNode, bool) {
	i := slices.IndexFunc(q.Nodes, func(n QuorumNode) bool { return n.ID == id })
	if i < 0 {
		return QuorumNode{}, false
	}
	return q.Nodes[i], true
}

// RollOrder returns the voters in the order to restart them: by id, with
// the active controller last, so that the quorum elects a new leader once,
// at the end of the roll.
func (q Quorum) RollOrder() []int32 {
	order := q.VoterIDs()
	if i := slices.Index(order, q.LeaderID); i >= 0 {
		order = append(slices.Delete(order, i, i+1), q.LeaderID)
	}
	return order
}

// MaxFollowerLag returns how many records the furthest-behind voter lags
// the leader (kafka-metadata-quorum's MaxFollowerLag), or -1 if unknown.
func (q Quorum) MaxFollowerLag() int64 {
	lag := int64(-1)
	for _, v := range q.Voters {
		if v.Lag > lag {
			lag = v.Lag
		}
	}
	return lag
}

// MaxFollowerLagTime returns how long ago, by the leader's clock, the
// furthest-behind voter (by log end offset) was last caught up
// (kafka-metadata-quorum's MaxFollowerLagTimeMs), and false if a timestamp
// is unknown.
func (q Quorum) MaxFollowerLagTime() (time.Duration, bool) {
	leader, ok := q.Leader()
	if !ok || len(q.Voters) == 0 {
		return 0, false
	}
	worst := slices.MinFunc(q.Voters, func(a, b Replica) int { return cmp.Compare(a.LogEndOffset, b.LogEndOffset) })
	if worst.ID == leader.ID || worst.LogEndOffset == leader.LogEndOffset {
		return 0, true
	}
	if leader.LastCaughtUp.IsZero() || worst.LastCaughtUp.IsZero() {
		return 0, false
	}
	return leader.LastCaughtUp.Sub(worst.LastCaughtUp), true
}

// String summarises the quorum in one line, for logs: leader, epoch, high
// watermark and each voter's lag.
func (q Quorum) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "leader %d epoch %d hw %d voters [", q.LeaderID, q.LeaderEpoch, q.HighWatermark)
	for i, v := range q.Voters {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%d:lag=%d", v.ID, v.Lag)
	}
	fmt.Fprintf(&b, "] observers %v", q.ObserverIDs())
	return b.String()
}

func find(rs []Replica, id int32) (Replica, bool) {
	i := slices.IndexFunc(rs, func(r Replica) bool { return r.ID == id })
	if i < 0 {
		return Replica{}, false
	}
	return rs[i], true
}

func ids(rs []Replica) []int32 {
	out := make([]int32, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

// DescribeQuorum asks the KRaft controller quorum for its state.
//
// cl may be seeded with brokers or with controller listeners:
//
//   - seeded with brokers (the usual client), the request goes to a broker,
//     which forwards it to the active controller (Kafka 3.3+);
//   - seeded with controllers (Kafka 3.7+, like kafka-metadata-quorum
//     --bootstrap-controller), it goes to every seed at once and the
//     leader's answer is used: only the leader answers DescribeQuorum.
//
// Which kind of seeds cl has is found out by asking one seed for its
// ApiVersions (controllers serve no Metadata). Only [NodeTimeout] of opts
// applies. An answer without a leader is an error wrapping [ErrNoLeader].
func DescribeQuorum(ctx context.Context, cl *kgo.Client, opts ...ReachOption) (Quorum, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return Quorum{}, err
	}
	c, err := open(ctx, cl, cfg)
	if err != nil {
		return Quorum{}, err
	}
	defer c.close()
	q, _, err := c.describeQuorum(ctx)
	return q, err
}

// newDescribeQuorumRequest returns a request for the metadata partition.
func newDescribeQuorumRequest() *kmsg.DescribeQuorumRequest {
	req := kmsg.NewPtrDescribeQuorumRequest()
	t := kmsg.NewDescribeQuorumRequestTopic()
	t.Topic = MetadataTopic
	p := kmsg.NewDescribeQuorumRequestTopicPartition()
	p.Partition = 0
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	return req
}

// quorumFromResponse turns a DescribeQuorum answer into a [Quorum]. Errors
// at the top level or on the metadata partition become errors; a
// partition error NOT_LEADER_OR_FOLLOWER or a leader id of -1 wraps
// [ErrNoLeader].
func quorumFromResponse(resp *kmsg.DescribeQuorumResponse) (Quorum, error) {
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return Quorum{}, fmt.Errorf("kraft: DescribeQuorum: %w%s", err, msgSuffix(resp.ErrorMessage))
	}
	var p *kmsg.DescribeQuorumResponseTopicPartition
	for i := range resp.Topics {
		t := &resp.Topics[i]
		if t.Topic != MetadataTopic {
			continue
		}
		for j := range t.Partitions {
			if t.Partitions[j].Partition == 0 {
				p = &t.Partitions[j]
			}
		}
	}
	if p == nil {
		return Quorum{}, fmt.Errorf("kraft: DescribeQuorum: the answer has no %s-0", MetadataTopic)
	}
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		if errors.Is(err, kerr.NotLeaderForPartition) {
			return Quorum{}, fmt.Errorf("%w: DescribeQuorum: %w%s", ErrNoLeader, err, msgSuffix(p.ErrorMessage))
		}
		return Quorum{}, fmt.Errorf("kraft: DescribeQuorum: %w%s", err, msgSuffix(p.ErrorMessage))
	}
	q := Quorum{
		LeaderID:      p.LeaderID,
		LeaderEpoch:   p.LeaderEpoch,
		HighWatermark: p.HighWatermark,
		Version:       resp.Version,
	}
	var leaderLEO int64 = -1
	for _, v := range p.CurrentVoters {
		if v.ReplicaID == p.LeaderID {
			leaderLEO = v.LogEndOffset
		}
	}
	conv := func(rs []kmsg.DescribeQuorumResponseTopicPartitionReplicaState) []Replica {
		out := make([]Replica, 0, len(rs))
		for _, r := range rs {
			lag := int64(-1)
			if leaderLEO >= 0 && r.LogEndOffset >= 0 {
				lag = leaderLEO - r.LogEndOffset
			}
			out = append(out, Replica{
				ID:           r.ReplicaID,
				DirectoryID:  UUID(r.ReplicaDirectoryID),
				LogEndOffset: r.LogEndOffset,
				Lag:          lag,
				LastFetch:    millis(r.LastFetchTimestamp),
				LastCaughtUp: millis(r.LastCaughtUpTimestamp),
			})
		}
		slices.SortFunc(out, func(a, b Replica) int { return cmp.Compare(a.ID, b.ID) })
		return out
	}
	q.Voters = conv(p.CurrentVoters)
	q.Observers = conv(p.Observers)
	for _, n := range resp.Nodes {
		node := QuorumNode{ID: n.NodeID}
		for _, l := range n.Listeners {
			node.Listeners = append(node.Listeners, Listener{Name: l.Name, Host: l.Host, Port: l.Port})
		}
		q.Nodes = append(q.Nodes, node)
	}
	slices.SortFunc(q.Nodes, func(a, b QuorumNode) int { return cmp.Compare(a.ID, b.ID) })
	if q.LeaderID < 0 {
		return q, fmt.Errorf("%w (epoch %d)", ErrNoLeader, q.LeaderEpoch)
	}
	return q, nil
}

// millis converts a Kafka timestamp in milliseconds; -1 (and any other
// negative value) means unknown and becomes the zero time.
func millis(ms int64) time.Time {
	if ms < 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

func msgSuffix(s *string) string {
	if s == nil || *s == "" {
		return ""
	}
	return ": " + *s
}
