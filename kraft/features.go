package kraft

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/internal/poll"
	"github.com/kupgrade/kupgrade/node"
)

// NodeFeatures is what one node's listener said about features in its
// ApiVersions answer.
type NodeFeatures struct {
	NodeRef
	// APIVersion is the ApiVersions version the node answered: the highest
	// both franz-go and the node support. From 4 (Kafka 3.9+) every
	// supported feature is listed; a 3.9+ node asked with a lower version
	// hides the features whose minimum level is 0 (kraft.version,
	// group.version, …), and Kafka 3.7 and 3.8 only speak up to 3.
	APIVersion int16 `json:"apiVersion"`
	// Supported maps each feature the node's software supports to its
	// range of levels.
	Supported map[string]compat.LevelRange `json:"supported,omitempty"`
	// Finalized maps each feature finalized cluster-wide, as this node
	// last learned it, to its level. Features finalized at level 0 are
	// absent, as Kafka omits them.
	Finalized map[string]int16 `json:"finalized,omitempty"`
	// FinalizedEpoch is the metadata offset (KRaft) or ZooKeeper version of
	// the finalized features this node reports, -1 if unknown.
	FinalizedEpoch int64 `json:"finalizedEpoch"`
	// Err is why the node could not be asked or did not answer; the other
	// fields are then empty.
	Err error `json:"-"`
}

// Supports reports whether the node supports level of feature. Level 0 of
// a feature other than metadata.version means "disabled" and is always
// supported.
func (n NodeFeatures) Supports(feature string, level int16) bool {
	r, ok := n.Supported[feature]
	if !ok {
		return level == 0 && feature != compat.FeatureMetadataVersion
	}
	return level >= r.Min && level <= r.Max
}

// ClusterFeatures is what every broker and controller listener said about
// features: one entry per listener asked (a combined node appears as a
// broker and as a controller), plus entries with an Err for nodes known to
// exist that could not be asked.
type ClusterFeatures []NodeFeatures

// Sorted returns the entries controllers first, then brokers, each by id.
func (fs ClusterFeatures) Sorted() []NodeFeatures {
	out := slices.Clone(fs)
	slices.SortStableFunc(out, func(a, b NodeFeatures) int { return compareRefs(a.NodeRef, b.NodeRef) })
	return out
}

// Each calls fn for every entry, in no particular order.
func (fs ClusterFeatures) Each(fn func(NodeFeatures)) {
	for _, f := range fs {
		fn(f)
	}
}

// FirstErr returns the first entry's error in [Features.Sorted] order, or
// nil if every node answered.
func (fs ClusterFeatures) FirstErr() error {
	for _, f := range fs.Sorted() {
		if f.Err != nil {
			return fmt.Errorf("%v: %w", f.NodeRef, f.Err)
		}
	}
	return nil
}

// Node returns the entry of a node's listener.
func (fs ClusterFeatures) Node(role node.Role, id int32) (NodeFeatures, bool) {
	i := slices.IndexFunc(fs, func(f NodeFeatures) bool { return f.Role == role && f.ID == id })
	if i < 0 {
		return NodeFeatures{}, false
	}
	return fs[i], true
}

// Finalized returns the finalized level of feature (0 if it is not
// finalized) as the controllers see it: the controller with the newest
// finalized-features epoch, or, if no controller answered, the broker with
// the newest epoch. (Brokers and controllers count epochs differently, so
// only epochs of the same role are compared.) agreed is true if every node
// that answered reports the same level; ok is false if no node answered.
func (fs ClusterFeatures) Finalized(feature string) (level int16, agreed, ok bool) {
	best := NodeFeatures{FinalizedEpoch: -2}
	for _, f := range fs {
		if f.Err != nil {
			continue
		}
		switch {
		case !ok,
			f.Role == node.RoleController && best.Role != node.RoleController,
			f.Role == best.Role && f.FinalizedEpoch > best.FinalizedEpoch:
			best, ok = f, true
		}
	}
	level = best.Finalized[feature]
	if !ok {
		return 0, false, false
	}
	agreed = true
	for _, f := range fs {
		if f.Err == nil && f.Finalized[feature] != level {
			agreed = false
		}
	}
	return level, agreed, true
}

// CheckSupport checks that every node supports level of feature. It
// returns nil if so, else one error per node that does not (an
// [*UnsupportedLevelError]) or could not be asked (an
// [*UnverifiedNodeError]), joined. No I/O: this is the check [Finalize]
// runs before it sends anything.
func (fs ClusterFeatures) CheckSupport(feature string, level int16) error {
	var errs []error
	for _, f := range fs.Sorted() {
		switch {
		case f.Err != nil:
			errs = append(errs, &UnverifiedNodeError{Feature: feature, Level: level, Node: f.NodeRef, Err: f.Err})
		case !f.Supports(feature, level):
			r, ok := f.Supported[feature]
			errs = append(errs, &UnsupportedLevelError{Feature: feature, Level: level, Node: f.NodeRef, Supported: r, Missing: !ok, APIVersion: f.APIVersion})
		}
	}
	return errors.Join(errs...)
}

// String renders one line per entry, for logs and test failures.
func (fs ClusterFeatures) String() string {
	var b strings.Builder
	for _, f := range fs.Sorted() {
		fmt.Fprintf(&b, "%v", f.NodeRef)
		if f.Addr != "" && f.ID >= 0 {
			fmt.Fprintf(&b, " (%s)", f.Addr)
		}
		if f.Err != nil {
			fmt.Fprintf(&b, ": error: %v\n", f.Err)
			continue
		}
		fmt.Fprintf(&b, ": v%d epoch %d", f.APIVersion, f.FinalizedEpoch)
		for _, name := range slices.Sorted(maps.Keys(f.Supported)) {
			r := f.Supported[name]
			fmt.Fprintf(&b, " %s=%d[%d-%d]", name, f.Finalized[name], r.Min, r.Max)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// DescribeFeatures asks every broker and every controller for its
// ApiVersions and returns the features each supports and the levels each
// reports as finalized. Kafka has no other way to read features: ApiVersions
// carries them (v3+, and v4+ for features whose minimum level is 0).
//
// Brokers come from a fresh Metadata request; controllers, which are not in
// broker metadata, are reached as [ControllerAddrs] describes. Requests go
// to all nodes at once, each bounded by [NodeTimeout]; a node that cannot
// be asked or does not answer is an entry with Err, never left out. The
// error is non-nil only if the cluster could not be asked at all.
func DescribeFeatures(ctx context.Context, cl *kgo.Client, opts ...ReachOption) (ClusterFeatures, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	c, err := open(ctx, cl, cfg)
	if err != nil {
		return nil, err
	}
	defer c.close()
	s, err := c.describeFeatures(ctx)
	return s.features, err
}

// A scan is what describeFeatures learned: the features, and the quorum
// (or the error asking for it) used to find the controllers.
type scan struct {
	features  ClusterFeatures
	quorum    Quorum
	quorumErr error
}

func (c *cluster) describeFeatures(ctx context.Context) (scan, error) {
	var s scan
	s.quorum, _, s.quorumErr = c.describeQuorum(ctx)
	brokers, err := c.brokers(ctx, s.quorum, s.quorumErr)
	if err != nil {
		return s, err
	}
	ctrls, err := c.controllers(ctx, s.quorum, s.quorumErr)
	if err != nil {
		return s, err
	}
	eps := append(slices.Clone(brokers.eps), ctrls.eps...)
	fs := ClusterFeatures(fanOut(eps, func(ep endpoint) NodeFeatures { return c.apiVersions(ctx, ep) }))
	fs = append(fs, brokers.missing...)
	fs = append(fs, ctrls.missing...)
	s.features = fs.Sorted()
	return s, nil
}

// apiVersions asks one listener for its ApiVersions. franz-go negotiates
// the version: the highest both sides support (v4 with Kafka 3.9+, unless
// the client's MaxVersions pins it lower).
func (c *cluster) apiVersions(ctx context.Context, ep endpoint) NodeFeatures {
	nf := NodeFeatures{NodeRef: ep.ref, FinalizedEpoch: -1}
	resp, err := askRead(ctx, c.cfg, ep, c.newApiVersionsRequest())
	if err != nil {
		nf.Err = err
		return nf
	}
	av := resp.(*kmsg.ApiVersionsResponse)
	if err := kerr.ErrorForCode(av.ErrorCode); err != nil {
		nf.Err = fmt.Errorf("ApiVersions: %w", err)
		return nf
	}
	return featuresFromResponse(nf.NodeRef, av)
}

// featuresFromResponse reads the features of an ApiVersions answer.
func featuresFromResponse(ref NodeRef, av *kmsg.ApiVersionsResponse) NodeFeatures {
	nf := NodeFeatures{NodeRef: ref, APIVersion: av.Version, FinalizedEpoch: av.FinalizedFeaturesEpoch,
		Supported: map[string]compat.LevelRange{}, Finalized: map[string]int16{}}
	for _, f := range av.SupportedFeatures {
		nf.Supported[f.Name] = compat.LevelRange{Min: f.MinVersion, Max: f.MaxVersion}
	}
	for _, f := range av.FinalizedFeatures {
		nf.Finalized[f.Name] = f.MaxVersionLevel
	}
	return nf
}

// WaitFinalized waits until every broker and controller reports the given
// finalized levels (feature name to level) in its ApiVersions, as they do
// shortly after [Finalize] succeeds: each node applies the change when it
// replays the metadata log. Every node must answer; a node that is down
// keeps the wait going. The wait ends at ctx's deadline or after timeout,
// whichever is first, with an error that names the nodes still behind and
// what they report. It returns the last Features seen.
func WaitFinalized(ctx context.Context, cl *kgo.Client, want map[string]int16, timeout time.Duration, opts ...ReachOption) (ClusterFeatures, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if len(want) == 0 {
		return nil, errors.New("kraft: WaitFinalized: no feature levels to wait for")
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout,
		fmt.Errorf("kraft: nodes did not all report finalized %v within %v", fmtLevels(want), timeout))
	defer cancel()
	var last ClusterFeatures
	var behind []string
	err = poll.Every(ctx, cfg.pollInterval, func(ctx context.Context) bool {
		fs, err := DescribeFeatures(ctx, cl, opts...)
		if err != nil {
			behind = []string{err.Error()}
			return false
		}
		last = fs
		behind = behind[:0]
		for _, f := range fs {
			if f.Err != nil {
				behind = append(behind, fmt.Sprintf("%v: %v", f.NodeRef, f.Err))
				continue
			}
			for _, name := range slices.Sorted(maps.Keys(want)) {
				if got := f.Finalized[name]; got != want[name] {
					behind = append(behind, fmt.Sprintf("%v reports %s %s", f.NodeRef, name, LevelName(name, got)))
				}
			}
		}
		return len(behind) == 0 && len(fs) > 0
	})
	if err != nil {
		return last, fmt.Errorf("%w; last seen: %s", err, strings.Join(behind, "; "))
	}
	return last, nil
}

func fmtLevels(m map[string]int16) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, name+"="+LevelName(name, m[name]))
	}
	return strings.Join(parts, ", ")
}
