package compat

import (
	"fmt"
	"slices"

	"github.com/kupgrade/kupgrade/node"
)

// A Mode is how a cluster (or a node) keeps its metadata.
type Mode int

const (
	// ModeUnknown is the zero Mode. For a [NodeState] it means "the
	// cluster's mode".
	ModeUnknown Mode = iota
	// ModeZooKeeper: brokers with a ZooKeeper ensemble (up to 3.9).
	ModeZooKeeper
	// ModeKRaft: a controller quorum keeps the metadata (production from 3.3).
	ModeKRaft
	// ModeMigrating is a cluster in the middle of the ZooKeeper to KRaft
	// migration (3.4–3.9): KRaft controllers run with
	// zookeeper.metadata.migration.enable=true and the brokers are being
	// moved.
	ModeMigrating
)

var modeNames = [...]string{"", "zookeeper", "kraft", "migrating"}

// String returns "zookeeper", "kraft", "migrating" or "unknown".
func (m Mode) String() string {
	if m <= ModeUnknown || int(m) >= len(modeNames) {
		return "unknown"
	}
	return modeNames[m]
}

// MarshalText implements [encoding.TextMarshaler]; ModeUnknown is "".
func (m Mode) MarshalText() ([]byte, error) {
	if m < ModeUnknown || int(m) >= len(modeNames) {
		return nil, fmt.Errorf("compat: invalid mode %d", int(m))
	}
	return []byte(modeNames[m]), nil
}

// UnmarshalText implements [encoding.TextUnmarshaler].
func (m *Mode) UnmarshalText(b []byte) error {
	i := slices.Index(modeNames[:], string(b))
	if i < 0 {
		return fmt.Errorf("compat: invalid mode %q", b)
	}
	*m = Mode(i)
	return nil
}

// A ConfigSource says where a node's configuration value comes from.
type ConfigSource string

// Configuration sources. The zero value means the source (and so the value)
// is unknown.
const (
	SourceUnknown ConfigSource = ""
	// SourceDefault: not set; the node's release default applies
	// (DEFAULT_CONFIG).
	SourceDefault ConfigSource = "default"
	// SourceStatic: set in the node's server.properties
	// (STATIC_BROKER_CONFIG).
	SourceStatic ConfigSource = "static"
	// SourceBroker: a per-broker dynamic config (DYNAMIC_BROKER_CONFIG).
	SourceBroker ConfigSource = "broker"
	// SourceCluster: the cluster-wide dynamic default
	// (DYNAMIC_DEFAULT_BROKER_CONFIG).
	SourceCluster ConfigSource = "cluster"
	// SourceTopic: a topic override (DYNAMIC_TOPIC_CONFIG), as for the
	// effective min.insync.replicas that package health reads.
	SourceTopic ConfigSource = "topic"
)

// A ConfigValue is one configuration value of a node, with its source.
type ConfigValue struct {
	// Value is the configured string, or, for SourceDefault, optionally
	// the default the node reported; empty otherwise.
	Value  string       `json:"value,omitempty"`
	Source ConfigSource `json:"source,omitempty"`
}

// Known reports whether the value's source is known.
func (c ConfigValue) Known() bool { return c.Source != SourceUnknown }

// Explicit reports whether the value is set (statically, dynamically or as
// a topic override) rather than defaulted.
func (c ConfigValue) Explicit() bool { return c.Source != SourceUnknown && c.Source != SourceDefault }

// Static returns a ConfigValue set in server.properties.
func Static(value string) ConfigValue { return ConfigValue{Value: value, Source: SourceStatic} }

// Default returns a ConfigValue that is not set, so the release default
// applies.
func Default() ConfigValue { return ConfigValue{Source: SourceDefault} }

// A NodeState is what a planner knows about one node.
type NodeState struct {
	ID int32 `json:"id"`
	// Roles are the node's process.roles; empty means broker (and is the
	// only possibility in ZooKeeper mode).
	Roles []node.Role `json:"roles,omitempty"`
	// Release is the software the node runs; the zero Release is unknown.
	Release Release `json:"release"`
	// Mode is the node's own mode, needed while the cluster is Migrating (a
	// broker still on ZooKeeper, or already on KRaft). ModeUnknown means
	// the cluster's mode.
	Mode Mode `json:"mode,omitempty"`
	// Migration is true when the node runs with
	// zookeeper.metadata.migration.enable=true.
	Migration bool `json:"migration,omitempty"`
	// IBPV is inter.broker.protocol.version. It matters in ZooKeeper mode
	// and on KRaft nodes before 3.3; elsewhere it may be left unknown.
	IBPV ConfigValue `json:"ibpv"`
	// LMFV is log.message.format.version. It matters in ZooKeeper mode
	// while the IBPV is below 3.0-IV1; elsewhere it may be left unknown.
	LMFV ConfigValue `json:"lmfv"`
	// SupportedFeatures is what the node advertised in ApiVersions v4, if
	// it was asked. Route does not need it.
	SupportedFeatures map[string]LevelRange `json:"supportedFeatures,omitempty"`
	// LogDirs is how many log directories (log.dirs) the broker uses; 0
	// means unknown. More than one is JBOD, which a ZooKeeper to KRaft
	// migration supports only from inter.broker.protocol.version 3.7-IV2.
	LogDirs int `json:"logDirs,omitempty"`
	// BrokerID is the broker.id setting with its source, and
	// ReservedBrokerMaxID reserved.broker.max.id (0 unknown): a broker
	// whose id was generated (broker.id not set in server.properties, or
	// an id above reserved.broker.max.id) cannot be migrated, as KRaft has
	// no generated ids. Route does not need them.
	BrokerID            ConfigValue `json:"brokerId,omitzero"`
	ReservedBrokerMaxID int32       `json:"reservedBrokerMaxId,omitempty"`
	// Authorizer is the broker's authorizer.class.name, empty if unset or
	// unknown. A ZooKeeper to KRaft migration replaces ZooKeeper's
	// AclAuthorizer with KRaft's StandardAuthorizer. Route does not need it.
	Authorizer string `json:"authorizer,omitempty"`
}

// IsController reports whether the node has the controller role (combined
// nodes are controllers for ordering purposes).
func (n NodeState) IsController() bool { return slices.Contains(n.Roles, node.RoleController) }

// IsBroker reports whether the node has the broker role, or no roles.
func (n NodeState) IsBroker() bool {
	return len(n.Roles) == 0 || slices.Contains(n.Roles, node.RoleBroker)
}

// A State is the snapshot of a cluster that planning consumes:
// upgrade.Inspect produces it and upgrade.NewPlan hands it to [Route]. It
// is plain data and round-trips through JSON. Unknown facts stay at their
// zero values (zero Release, SourceUnknown, nil Finalized), never guessed.
type State struct {
	Mode  Mode        `json:"mode"`
	Nodes []NodeState `json:"nodes"`
	// Finalized holds the finalized KRaft features, including
	// metadata.version; nil means unknown, an empty map means none (a
	// ZooKeeper cluster, or KRaft before 3.3).
	Finalized FeatureLevels `json:"finalized"`
}

// Node returns the node with the given ID.
func (s State) Node(id int32) (NodeState, bool) {
	for _, n := range s.Nodes {
		if n.ID == id {
			return n, true
		}
	}
	return NodeState{}, false
}

// ReleaseRange returns the oldest and the newest release the nodes run,
// ignoring unknown ones; both are zero if no release is known.
func (s State) ReleaseRange() (oldest, newest Release) {
	for _, n := range s.Nodes {
		if n.Release.IsZero() {
			continue
		}
		if oldest.IsZero() || n.Release.Less(oldest) {
			oldest = n.Release
		}
		if newest.IsZero() || newest.Less(n.Release) {
			newest = n.Release
		}
	}
	return oldest, newest
}

// Mixed reports whether the nodes run more than one release: an upgrade (or
// rollback) is under way.
func (s State) Mixed() bool {
	lo, hi := s.ReleaseRange()
	return lo != hi
}

func incomplete(format string, args ...any) error {
	return &RouteError{Reason: fmt.Sprintf(format, args...), Err: ErrIncompleteState,
		Suggestion: "inspect the cluster again, or fill in the missing fact"}
}

// Validate checks that the state is complete and consistent enough to plan
// with: a known mode, at least one node, unique IDs, a known release of a
// known line on every node, and roles and modes that fit the cluster's
// mode. Errors wrap [ErrIncompleteState] (or [ErrUnknownRelease]).
func (s State) Validate() error { return s.validate(true) }

func (s State) validate(unlisted bool) error {
	if s.Mode == ModeUnknown || s.Mode > ModeMigrating {
		return incomplete("cluster mode is unknown")
	}
	if len(s.Nodes) == 0 {
		return incomplete("no nodes")
	}
	seen := map[int32]bool{}
	for _, n := range s.Nodes {
		if seen[n.ID] {
			return incomplete("node %d appears twice", n.ID)
		}
		seen[n.ID] = true
		if n.Release.IsZero() {
			return incomplete("node %d: release unknown", n.ID)
		}
		l, err := knownOrLine(n.Release, unlisted)
		if err != nil {
			re := err.(*ReleaseError)
			return &RouteError{Reason: fmt.Sprintf("node %d runs %v: %s", n.ID, n.Release, re.Reason), Err: ErrUnknownRelease,
				Suggestion: "use a kupgrade version that knows this release, or AllowUnlistedPatch for a new patch of a known line"}
		}
		mode := n.Mode
		if mode == ModeUnknown {
			mode = s.Mode
		}
		switch mode {
		case ModeZooKeeper:
			if !l.zooKeeper {
				return incomplete("node %d runs %v in ZooKeeper mode, which %v does not have", n.ID, n.Release, n.Release.Short())
			}
			if n.IsController() {
				return incomplete("node %d has the controller role but runs in ZooKeeper mode", n.ID)
			}
		case ModeKRaft:
			if l.kraft == 0 {
				return incomplete("node %d runs %v in KRaft mode, which %v does not have", n.ID, n.Release, n.Release.Short())
			}
		case ModeMigrating:
			return incomplete("node %d: in a migrating cluster every node's own Mode (zookeeper or kraft) must be set", n.ID)
		default:
			return incomplete("node %d: invalid mode %v", n.ID, n.Mode)
		}
		if s.Mode != ModeMigrating && mode != s.Mode {
			return incomplete("node %d runs in %v mode in a %v cluster", n.ID, mode, s.Mode)
		}
	}
	return nil
}
