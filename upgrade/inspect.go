package upgrade

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/internal/hedge"
	"github.com/kupgrade/kupgrade/kraft"
	"github.com/kupgrade/kupgrade/node"
)

// An InspectOption configures [Inspect].
type InspectOption interface{ applyInspect(*inspectConfig) }

type inspectOptionFunc func(*inspectConfig)

func (f inspectOptionFunc) applyInspect(c *inspectConfig) { f(c) }

type inspectConfig struct {
	orch         node.Orchestrator
	controllers  []string
	timeout      time.Duration
	zkConnect    string // ZooKeeperConnect
	zkConnectSet bool
}

// InspectTimeout bounds each round of requests Inspect sends (metadata, API
// versions, configs, quorum, features), overriding the default of 15s. A node
// that has not answered by then is reported as not answering.
func InspectTimeout(d time.Duration) InspectOption {
	return inspectOptionFunc(func(c *inspectConfig) { c.timeout = d })
}

// InspectWith lets Inspect ask orch which release each node runs. Kafka's
// protocol reveals only a node's release line (from the APIs it speaks), so
// without an Orchestrator that reports versions, releases stay unknown.
func InspectWith(orch node.Orchestrator) InspectOption {
	return inspectOptionFunc(func(c *inspectConfig) { c.orch = orch })
}

// InspectControllers gives the KRaft controllers' addresses, for clusters
// whose controllers cannot be found through the brokers (before Kafka 3.9,
// DescribeQuorum does not say where voters listen).
func InspectControllers(addrs ...string) InspectOption {
	return inspectOptionFunc(func(c *inspectConfig) { c.controllers = append(c.controllers, addrs...) })
}

// NodeInfo is what [Inspect] learned about one node: its [compat.NodeState]
// (id, roles, exact release as the Orchestrator reported it, pins with their
// sources, migration flag, supported feature ranges; unknown facts zero),
// and what an operator wants to see besides.
type NodeInfo struct {
	compat.NodeState
	// Addr is the node's broker listener, or its controller listener for a
	// controller-only node; empty if unknown.
	Addr string `json:"addr,omitempty"`
	Rack string `json:"rack,omitempty"`
	// Line is the release line the node's ApiVersions answer reveals,
	// franz-go's guess (for example "v3.9" or "at least v4.1"); empty if the
	// node did not answer.
	Line string `json:"line,omitempty"`
	// Errors are what could not be read from this node, and why.
	Errors []string `json:"errors,omitempty"`
}

// An Inspection is a true picture of what a cluster runs now: the
// [compat.State] that [NewPlan] consumes, plus what an operator wants to see.
// Facts that could not be established stay unknown (zero) and are listed in
// Unknown; nothing is guessed. It marshals to JSON and prints as a table.
type Inspection struct {
	// State is what planning needs: mode, each node's release and pins, and
	// the finalized features.
	State compat.State `json:"state"`
	// ClusterID is the cluster id from metadata.
	ClusterID string `json:"clusterId,omitempty"`
	// Controller is the ZooKeeper controller broker, or the active KRaft
	// controller (the quorum leader); -1 if unknown.
	Controller int32 `json:"controller"`
	// Quorum is the KRaft controller quorum, nil in ZooKeeper mode or if it
	// could not be read.
	Quorum *kraft.Quorum `json:"quorum,omitempty"`
	// Nodes describes every node found.
	Nodes []NodeInfo `json:"nodes"`
	// MidUpgrade reports a cluster caught in the middle of an upgrade, and
	// MidUpgradeWhy says how: mixed releases, or pins and finalized levels
	// below what every node's software supports.
	MidUpgrade    bool     `json:"midUpgrade"`
	MidUpgradeWhy []string `json:"midUpgradeWhy,omitempty"`
	// Unknown lists the facts Inspect could not establish.
	Unknown []string `json:"unknown,omitempty"`
	// Migration is the ZooKeeper to KRaft migration's state as observed:
	// the brokers' modes and migration flags, the KRaft controllers known,
	// and the /migration znode when the brokers name a reachable ZooKeeper
	// and something migrates. Nil in KRaft mode with no ZooKeeper-mode
	// broker ever seen and no broker answering ApiVersions.
	Migration *MigrationStatus `json:"migration,omitempty"`
}

// A NodeError says what could not be read from one node.
type NodeError struct {
	Node int32
	Role node.Role
	What string
	Err  error
}

// Error names the node, what could not be read and why.
func (e *NodeError) Error() string {
	return fmt.Sprintf("upgrade: inspect %s %d: %s: %v", e.Role, e.Node, e.What, e.Err)
}

// Unwrap returns the cause.
func (e *NodeError) Unwrap() error { return e.Err }

// ErrUnreachable reports a cluster Inspect could not ask at all.
var ErrUnreachable = errors.New("upgrade: cluster unreachable")

// Inspect reads what the cluster runs now. Brokers come from a fresh
// Metadata request, controllers from DescribeQuorum; each node's API
// versions and features from ApiVersions, its pins from DescribeConfigs,
// and its exact release from the Orchestrator given with [InspectWith].
//
// If the cluster cannot be reached the error wraps [ErrUnreachable]. If some
// node does not answer, or refuses (authorization), Inspect still returns
// what it learned, with the gaps in Unknown, and an error joining a
// *[NodeError] per problem, each naming the node and the cause.
func Inspect(ctx context.Context, cl *kgo.Client, opts ...InspectOption) (Inspection, error) {
	if cl == nil {
		return Inspection{Controller: -1}, errors.New("upgrade: Inspect needs a client (cl is nil)")
	}
	cfg := inspectConfig{timeout: 15 * time.Second}
	for _, o := range opts {
		o.applyInspect(&cfg)
	}
	if cfg.timeout <= 0 {
		return Inspection{}, fmt.Errorf("upgrade: InspectTimeout(%v) must be positive", cfg.timeout)
	}
	if err := validateZKConnect(cfg.zkConnect, cfg.zkConnectSet); err != nil {
		return Inspection{Controller: -1}, err
	}
	x := &inspector{cl: cl, adm: kadm.NewClient(cl), cfg: cfg, in: Inspection{Controller: -1}, infos: map[int32]*NodeInfo{}}
	meta, err := x.brokers(ctx)
	if err != nil {
		if authentication(err) {
			return x.in, fmt.Errorf("%w: metadata: %w", ErrUnauthenticated, err)
		}
		return x.in, fmt.Errorf("%w: metadata: %v", ErrUnreachable, err)
	}
	x.apiVersions(ctx)
	x.configs(ctx)
	x.zkConnect = zkConnectFor(x.zkConnect, cfg.zkConnect)
	mode := x.mode()
	for _, n := range x.infos {
		if n.Migration {
			mode = compat.ModeMigrating
		}
	}
	finalized := compat.FeatureLevels{}
	if mode != compat.ModeZooKeeper {
		finalized = x.quorum(ctx)
	} else if meta.ControllerID >= 0 {
		x.in.Controller = meta.ControllerID
	}
	x.in.State.Mode = mode
	x.in.State.Finalized = finalized
	x.state(mode, x.orchestrator(ctx))
	if len(x.zkModeOf) > 0 {
		x.observeMigration(ctx)
	}
	x.in.MidUpgradeWhy = midUpgrade(x.in)
	x.in.MidUpgrade = len(x.in.MidUpgradeWhy) > 0
	return x.in, errors.Join(x.errs...)
}

// inspector gathers an [Inspection], one round of requests per method; each
// round is bounded by the inspect timeout, so that a node that does not
// answer costs at most that.
type inspector struct {
	cl    *kgo.Client
	adm   *kadm.Client
	cfg   inspectConfig
	in    Inspection
	infos map[int32]*NodeInfo
	errs  []error
	// zkBrokers and kraftBrokers count the brokers whose API versions say
	// ZooKeeper mode (they speak LeaderAndIsr) and KRaft mode.
	zkBrokers, kraftBrokers int
	// zkModeOf says, per broker that answered ApiVersions, whether it runs
	// in ZooKeeper mode; zkConnect is a ZooKeeper-mode broker's
	// zookeeper.connect.
	zkModeOf  map[int32]bool
	zkConnect string
}

// round bounds one round of requests.
func (x *inspector) round(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, x.cfg.timeout, fmt.Errorf("no answer within %v", x.cfg.timeout))
}

// fail records what could not be read from one node.
func (x *inspector) fail(id int32, role node.Role, what string, err error) {
	x.errs = append(x.errs, &NodeError{Node: id, Role: role, What: what, Err: err})
	x.in.Unknown = append(x.in.Unknown, fmt.Sprintf("%s %d: %s: %v", role, id, what, err))
}

// unknown records a fact that could not be established, and the error.
func (x *inspector) unknown(fact string, err error) {
	x.in.Unknown = append(x.in.Unknown, fact)
	x.errs = append(x.errs, err)
}

func (x *inspector) info(id int32) *NodeInfo {
	if x.infos[id] == nil {
		x.infos[id] = &NodeInfo{NodeState: compat.NodeState{ID: id}}
	}
	return x.infos[id]
}

// brokers reads the brokers and the cluster id from a fresh Metadata
// request. The read is hedged: a hung seed (paused, partitioned) would
// otherwise hold it for the whole round while others could answer.
func (x *inspector) brokers(ctx context.Context) (*kmsg.MetadataResponse, error) {
	rctx, cancel := x.round(ctx)
	resp, _, err := hedge.Do(rctx, hedge.ViaClient(x.cl, 1+hedge.MaxHedges, func() kmsg.Request {
		req := kmsg.NewPtrMetadataRequest()
		req.Topics = []kmsg.MetadataRequestTopic{} // brokers only, no topics
		return req
	}))
	cancel()
	if err != nil {
		return nil, err
	}
	meta := resp.(*kmsg.MetadataResponse)
	if meta.ClusterID != nil {
		x.in.ClusterID = *meta.ClusterID
	}
	for _, b := range meta.Brokers {
		n := x.info(b.NodeID)
		n.Roles = append(n.Roles, node.RoleBroker)
		n.Addr = b.Host + ":" + strconv.Itoa(int(b.Port))
		if b.Rack != nil {
			n.Rack = *b.Rack
		}
	}
	return meta, nil
}

// apiVersions reads each broker's release line and whether it is a
// ZooKeeper broker (only those speak LeaderAndIsr).
func (x *inspector) apiVersions(ctx context.Context) {
	rctx, cancel := x.round(ctx)
	vs, err := apiVersions(rctx, x.adm)
	cancel()
	if err != nil {
		x.unknown("API versions of the brokers: "+err.Error(), fmt.Errorf("upgrade: inspect: ApiVersions: %w", err))
	} else {
		for _, id := range slices.Sorted(maps.Keys(vs)) {
			v := vs[id]
			if v.Err != nil {
				x.fail(id, node.RoleBroker, "ApiVersions", v.Err)
				continue
			}
			x.info(id).Line = v.VersionGuess()
			_, zk := v.KeyMaxVersion(4)
			if x.zkModeOf == nil {
				x.zkModeOf = map[int32]bool{}
			}
			x.zkModeOf[id] = zk
			if zk {
				x.zkBrokers++
			} else {
				x.kraftBrokers++
			}
		}
	}
}

// mode is the cluster's mode as the brokers' API versions tell it.
func (x *inspector) mode() compat.Mode {
	switch {
	case x.kraftBrokers > 0 && x.zkBrokers == 0:
		return compat.ModeKRaft
	case x.kraftBrokers > 0 && x.zkBrokers > 0:
		return compat.ModeMigrating
	case x.zkBrokers == 0 && x.kraftBrokers == 0:
		x.in.Unknown = append(x.in.Unknown, "mode: no broker answered ApiVersions")
		return compat.ModeUnknown
	}
	return compat.ModeZooKeeper
}

// configs reads each broker's pins and migration flag, with their sources.
func (x *inspector) configs(ctx context.Context) {
	brokerIDs := slices.Sorted(maps.Keys(x.infos))
	if len(brokerIDs) == 0 {
		return
	}
	rctx, cancel := x.round(ctx)
	rcs, err := x.adm.DescribeBrokerConfigs(rctx, brokerIDs...)
	cancel()
	if err != nil && len(rcs) == 0 {
		for _, id := range brokerIDs {
			x.fail(id, node.RoleBroker, "DescribeConfigs", err)
		}
	}
	for _, rc := range rcs {
		id, _ := strconv.Atoi(rc.Name)
		n := x.info(int32(id))
		if rc.Err != nil {
			x.fail(n.ID, node.RoleBroker, "DescribeConfigs", describeErr(rc.Err, rc.ErrMessage))
			continue
		}
		for _, c := range rc.Configs {
			switch c.Key {
			case "inter.broker.protocol.version":
				n.IBPV = configValue(c)
			case "log.message.format.version":
				n.LMFV = configValue(c)
			case "zookeeper.metadata.migration.enable":
				n.Migration = c.MaybeValue() == "true"
			case "log.dirs", "log.dir":
				if c.Key == "log.dirs" || n.LogDirs == 0 {
					if v := c.MaybeValue(); v != "" {
						n.LogDirs = len(strings.Split(v, ","))
					}
				}
			case "broker.id":
				n.BrokerID = configValue(c)
			case "authorizer.class.name":
				n.Authorizer = c.MaybeValue()
			case "reserved.broker.max.id":
				if v, err := strconv.ParseInt(c.MaybeValue(), 10, 32); err == nil {
					n.ReservedBrokerMaxID = int32(v)
				}
			case "zookeeper.connect":
				if v := c.MaybeValue(); v != "" && x.zkConnect == "" {
					x.zkConnect = v
				}
			}
		}
	}
}

// quorum reads the KRaft quorum and every node's features (KRaft, and
// migrations), and returns the finalized levels every node agrees on (nil
// while a finalize propagates).
func (x *inspector) quorum(ctx context.Context) compat.FeatureLevels {
	var kopts []kraft.ReachOption
	if len(x.cfg.controllers) > 0 {
		kopts = append(kopts, kraft.ControllerAddrs(x.cfg.controllers...))
	}
	rctx, cancel := x.round(ctx)
	q, err := kraft.DescribeQuorum(rctx, x.cl, kopts...)
	cancel()
	if err != nil {
		x.unknown("controller quorum: "+err.Error(), fmt.Errorf("upgrade: inspect: DescribeQuorum: %w", err))
	} else {
		x.in.Quorum = &q
		x.in.Controller = q.LeaderID
		for _, v := range q.Voters {
			n := x.info(v.ID)
			n.Roles = append(n.Roles, node.RoleController)
			if n.Addr == "" {
				for _, qn := range q.Nodes {
					if qn.ID == v.ID {
						n.Addr = qn.Addr()
					}
				}
			}
		}
	}
	rctx, cancel = x.round(ctx)
	fs, err := kraft.DescribeFeatures(rctx, x.cl, kopts...)
	cancel()
	if err != nil {
		x.unknown("features: "+err.Error(), fmt.Errorf("upgrade: inspect: features: %w", err))
	}
	finalized := compat.FeatureLevels{}
	for _, nf := range fs {
		if nf.ID < 0 {
			continue
		}
		if nf.Err != nil {
			x.fail(nf.ID, nf.Role, "ApiVersions (features)", nf.Err)
			continue
		}
		n := x.info(nf.ID)
		if !slices.Contains(n.Roles, nf.Role) {
			n.Roles = append(n.Roles, nf.Role)
		}
		if n.SupportedFeatures == nil {
			n.SupportedFeatures = maps.Clone(nf.Supported)
		}
		for f := range nf.Supported {
			if lvl, agreed, ok := fs.Finalized(f); ok && agreed {
				finalized[f] = lvl
			}
		}
	}
	if lvl, agreed, ok := fs.Finalized(compat.FeatureMetadataVersion); ok && !agreed {
		x.in.Unknown = append(x.in.Unknown, fmt.Sprintf("metadata.version: nodes report different finalized levels (one is %d): a finalize is propagating", lvl))
		return nil
	}
	return finalized
}

// orchestrator asks the Orchestrator given with [InspectWith] for its nodes,
// the only source of exact releases; nil without one.
func (x *inspector) orchestrator(ctx context.Context) map[int32]node.Node {
	if x.cfg.orch == nil {
		return nil
	}
	rctx, cancel := x.round(ctx)
	ns, err := x.cfg.orch.Nodes(rctx)
	cancel()
	if err != nil {
		x.unknown("releases: the Orchestrator cannot list nodes: "+err.Error(), fmt.Errorf("upgrade: inspect: Orchestrator.Nodes: %w", err))
	}
	orchNodes := map[int32]node.Node{}
	for _, n := range ns {
		orchNodes[n.ID] = n
		ni := x.info(n.ID)
		for _, r := range n.Roles {
			if !slices.Contains(ni.Roles, r) {
				ni.Roles = append(ni.Roles, r)
			}
		}
		if ni.Addr == "" && n.Host != "" {
			ni.Addr = n.Host + ":" + strconv.Itoa(n.Port)
		}
	}
	return orchNodes
}

// state turns what was learned into the planning State and the node table,
// in node id order.
func (x *inspector) state(mode compat.Mode, orchNodes map[int32]node.Node) {
	for _, id := range slices.Sorted(maps.Keys(x.infos)) {
		n := x.infos[id]
		slices.Sort(n.Roles)
		if on, ok := orchNodes[id]; ok && on.Version != "" {
			rel, err := compat.ParseRelease(on.Version)
			if err != nil {
				x.in.Unknown = append(x.in.Unknown, fmt.Sprintf("node %d: the Orchestrator reports release %q: %v", id, on.Version, err))
			} else {
				n.Release = rel
			}
		}
		if n.Release.IsZero() {
			msg := fmt.Sprintf("node %d: exact release", id)
			if n.Line != "" {
				msg += " (its API versions say " + n.Line + ")"
			}
			x.in.Unknown = append(x.in.Unknown, msg)
		}
		ns := n.NodeState
		ns.Roles = slices.Clone(n.Roles)
		if mode == compat.ModeZooKeeper && !n.IBPV.Known() {
			ns.IBPV = compat.ConfigValue{}
		}
		x.in.State.Nodes = append(x.in.State.Nodes, ns)
		x.in.Nodes = append(x.in.Nodes, *n)
	}
}

func describeErr(err error, msg string) error {
	if msg != "" {
		return fmt.Errorf("%w: %s", err, msg)
	}
	return err
}

// midUpgrade says how the cluster is caught mid-upgrade, if it is.
func midUpgrade(in Inspection) []string {
	var why []string
	releases := map[string][]int32{}
	for _, n := range in.Nodes {
		key := n.Line
		if !n.Release.IsZero() {
			key = n.Release.String()
		}
		if key != "" {
			releases[key] = append(releases[key], n.ID)
		}
	}
	if len(releases) > 1 {
		var parts []string
		for _, r := range slices.Sorted(maps.Keys(releases)) {
			parts = append(parts, fmt.Sprintf("%s on %v", r, releases[r]))
		}
		why = append(why, "mixed releases: "+strings.Join(parts, ", "))
	}
	for _, n := range in.State.Nodes {
		if n.Release.IsZero() || !n.IBPV.Explicit() {
			continue
		}
		latest, err := compat.LatestProduction(n.Release)
		if err != nil {
			continue
		}
		pin, err := compat.ParseMetadataVersion(n.IBPV.Value, n.Release)
		if err == nil && pin.Compare(latest) < 0 {
			why = append(why, fmt.Sprintf("node %d pins inter.broker.protocol.version %s below its software's %s", n.ID, pin.Name, latest.Name))
		}
	}
	if lvl, ok := in.State.Finalized[compat.FeatureMetadataVersion]; ok && len(in.State.Nodes) > 0 {
		lowest := int16(-1)
		for _, n := range in.State.Nodes {
			if r, ok := n.SupportedFeatures[compat.FeatureMetadataVersion]; ok && (lowest < 0 || r.Max < lowest) {
				lowest = r.Max
			}
		}
		if lowest > lvl {
			why = append(why, fmt.Sprintf("metadata.version %s is finalized, below %s that every node supports: finalizing is pending",
				kraft.LevelName(compat.FeatureMetadataVersion, lvl), kraft.LevelName(compat.FeatureMetadataVersion, lowest)))
		}
	}
	return why
}

// String renders the inspection as a table.
func (in Inspection) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cluster %s: %v mode", in.ClusterID, in.State.Mode)
	if in.Controller >= 0 {
		fmt.Fprintf(&b, ", controller %d", in.Controller)
	}
	if len(in.State.Finalized) > 0 {
		fmt.Fprintf(&b, ", finalized %s", in.State.Finalized)
	}
	b.WriteString("\n")
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NODE\tROLES\tADDRESS\tRACK\tRELEASE\tAPI LINE\tIBPV\tLMFV\tmetadata.version")
	for _, n := range in.Nodes {
		rel := "?"
		if !n.Release.IsZero() {
			rel = n.Release.String()
		}
		mv := "-"
		if r, ok := n.SupportedFeatures[compat.FeatureMetadataVersion]; ok {
			mv = fmt.Sprintf("%d..%d", r.Min, r.Max)
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, rolesString(n.Roles), orDash(n.Addr), orDash(n.Rack), rel,
			orDash(n.Line), configString(n.IBPV), configString(n.LMFV), mv)
	}
	w.Flush()
	if in.Migration != nil && (in.Migration.Phase != MigrationPhaseZooKeeper && in.Migration.Phase != MigrationPhaseKRaft || in.State.Mode == compat.ModeMigrating) {
		b.WriteString(in.Migration.String() + "\n")
	}
	for _, s := range in.MidUpgradeWhy {
		b.WriteString("mid-upgrade: " + s + "\n")
	}
	for _, s := range in.Unknown {
		b.WriteString("unknown: " + s + "\n")
	}
	return b.String()
}

// JSON returns the inspection as indented JSON.
func (in Inspection) JSON() ([]byte, error) { return json.MarshalIndent(in, "", "  ") }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func configString(c compat.ConfigValue) string {
	switch c.Source {
	case compat.SourceUnknown:
		return "-"
	case compat.SourceDefault:
		if c.Value != "" {
			return c.Value + " (default)"
		}
		return "(default)"
	}
	return c.Value + " (" + string(c.Source) + ")"
}
