package node

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// A Role is what a Kafka process does: serve clients as a broker, vote in the
// KRaft controller quorum, or both (a combined node). A ZooKeeper-mode
// broker has only [RoleBroker].
type Role string

// The roles a node can have.
const (
	RoleBroker     Role = "broker"
	RoleController Role = "controller"
)

// A Node is one Kafka process as an [Orchestrator] knows it: its identity and
// where it listens.
type Node struct {
	// ID is the node's broker.id (ZooKeeper mode) or node.id (KRaft).
	ID int32 `json:"id"`
	// Roles is what the node does; a combined KRaft node has both roles.
	Roles []Role `json:"roles,omitempty"`
	// Host and Port are where clients (or, for a controller-only node, other
	// controllers) reach the node.
	Host string `json:"host"`
	Port int    `json:"port"`
	// Rack is the node's broker.rack, empty if none is set.
	Rack string `json:"rack,omitempty"`
	// Version is the Kafka software release the node runs, as the
	// orchestrator knows it ("3.9.1"); empty if the orchestrator cannot tell.
	Version string `json:"version,omitempty"`
}

// HasRole reports whether the node has role r.
func (n Node) HasRole(r Role) bool { return slices.Contains(n.Roles, r) }

// A Change is what a restart changes on one node: its software release and its
// static configuration (server.properties). The zero Change restarts the node
// as it is.
type Change struct {
	// Version is the Kafka release to run after the restart ("4.1.1"); empty
	// keeps the current one.
	Version string `json:"version,omitempty"`
	// Set adds or replaces static config keys.
	Set map[string]string `json:"set,omitempty"`
	// Unset removes static config keys, so Kafka's default applies again.
	Unset []string `json:"unset,omitempty"`
}

// IsZero reports whether c changes nothing.
func (c Change) IsZero() bool { return c.Version == "" && len(c.Set) == 0 && len(c.Unset) == 0 }

// Validate reports a Change that cannot be applied: a key both set and unset,
// or an empty key.
func (c Change) Validate() error {
	for k := range c.Set {
		if strings.TrimSpace(k) == "" {
			return errors.New("node: change sets an empty config key")
		}
		if slices.Contains(c.Unset, k) {
			return fmt.Errorf("node: change both sets and unsets %q", k)
		}
	}
	for _, k := range c.Unset {
		if strings.TrimSpace(k) == "" {
			return errors.New("node: change unsets an empty config key")
		}
	}
	return nil
}

// String renders the change for logs and plan tables, with keys sorted and
// the values of secret keys redacted (see [SecretKey]), for example
// "version=4.1.1 set[inter.broker.protocol.version=3.6] unset[log.message.format.version]".
func (c Change) String() string {
	var parts []string
	if c.Version != "" {
		parts = append(parts, "version="+c.Version)
	}
	if len(c.Set) > 0 {
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(c.Set)) {
			kv = append(kv, k+"="+RedactValue(k, c.Set[k]))
		}
		parts = append(parts, "set["+strings.Join(kv, " ")+"]")
	}
	if len(c.Unset) > 0 {
		parts = append(parts, "unset["+strings.Join(slices.Sorted(slices.Values(c.Unset)), " ")+"]")
	}
	if len(parts) == 0 {
		return "restart"
	}
	return strings.Join(parts, " ")
}

// An Orchestrator restarts Kafka nodes on some infrastructure: systemd over
// SSH, Kubernetes, a cloud API, or local processes in tests (package kafkatest).
// kupgrade decides what to change and when it is safe; the Orchestrator only
// carries it out. It is the one interface every user implements.
//
// Implementations must honour ctx: once it is done they return promptly with
// its error. They must be safe for use by one Runner at a time; kupgrade never
// calls them concurrently for the same node, but may restart different nodes
// at once (upgrade.BatchRestarts), so Restart must allow calls for different
// nodes in parallel.
type Orchestrator interface {
	// Nodes lists every Kafka node the orchestrator manages: brokers,
	// controllers and combined nodes (not ZooKeeper servers).
	Nodes(ctx context.Context) ([]Node, error)

	// Restart stops the node gracefully (a controlled shutdown, as SIGTERM
	// gives), applies ch (new release and/or static config) and starts it
	// again. It returns once the process has been started; kupgrade itself
	// waits for the node to rejoin and catch up. If the node cannot be
	// started, Restart returns an error saying why.
	Restart(ctx context.Context, id int32, ch Change) error
}

// Liveness is an optional [Orchestrator] capability: it tells whether a
// node's process is alive. While a restarted node catches up, a Runner that
// finds it asks it at each check and fails the step at once, naming the node,
// when the process has died; its restart gate also counts a dead broker as
// down before Kafka notices. Without it, such a node fails the step when the
// Runner's catch-up timeout runs out.
type Liveness interface {
	// Alive reports whether node id's process runs. An error means the
	// orchestrator could not tell; the Runner then keeps waiting.
	Alive(ctx context.Context, id int32) (bool, error)
}

// A Spec describes a node for a [Provisioner] to start.
type Spec struct {
	// Version is the Kafka release the node runs ("4.1.2").
	Version string `json:"version"`
	// Roles are the node's roles; node replacement provisions brokers.
	Roles []Role `json:"roles"`
	// Rack is the node's broker.rack, empty for none.
	Rack string `json:"rack,omitempty"`
	// Config is static config beyond what the Provisioner sets itself
	// (listeners, ids, directories).
	Config map[string]string `json:"config,omitempty"`
	// NodeID, when positive, is the node id the new node must get (the
	// KRaft controllers of a ZooKeeper to KRaft migration get the ids the
	// plan chose); 0 lets the Provisioner pick one.
	NodeID int32 `json:"nodeId,omitempty"`
	// ClusterID, when set, is the cluster id to format a KRaft node's
	// storage with (for a migration: the ZooKeeper cluster's id); empty
	// means the Provisioner's own cluster's id.
	ClusterID string `json:"clusterId,omitempty"`
	// MetadataVersion, when set, is the metadata.version to format a new
	// KRaft controller's storage at (kafka-storage format --release-version,
	// "3.9-IV0"); empty means the release's default.
	MetadataVersion string `json:"metadataVersion,omitempty"`
	// Quorum, for a KRaft controller of a new quorum (a migration's), lists
	// the node ids of all its controllers, this one included, in the order
	// they are provisioned: a static quorum's controller.quorum.voters must
	// name every voter from the first controller's first start.
	Quorum []int32 `json:"quorum,omitempty"`
}

// Provisioner is an optional [Orchestrator] capability that node-replacement
// (blue/green) upgrades and ZooKeeper to KRaft migrations need: it starts new
// nodes (brokers; for a migration, KRaft controllers with the node id, cluster
// id and metadata.version the [Spec] names) and retires them for good. A
// Runner refuses a plan with provision or retire steps before its first step
// if the Orchestrator lacks it.
type Provisioner interface {
	// Provision starts a new node as spec says and returns it once it has
	// started (with the id Kafka knows it by). kupgrade waits for it to
	// register.
	Provision(ctx context.Context, spec Spec) (Node, error)
	// Retire stops node id for good and releases what it used. kupgrade
	// calls it only once the node holds no replica.
	Retire(ctx context.Context, id int32) error
}
