package kraft

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/internal/hedge"
	"github.com/kupgrade/kupgrade/node"
)

// A NodeRef names one listener of one node: its role (which kind of
// listener answered: a combined node, process.roles=broker,controller, has
// one of each and is asked as both), its id and the address asked.
type NodeRef struct {
	Role node.Role `json:"role"`
	// ID is the node id, -1 when a controller address could not be matched
	// to an id.
	ID int32 `json:"id"`
	// Addr is the "host:port" asked, "" when the node could not be reached
	// because no address is known.
	Addr string `json:"addr,omitempty"`
}

// String returns "broker 4", "controller 1", or "controller at
// 127.0.0.1:9093" when the id is unknown.
func (n NodeRef) String() string {
	if n.ID < 0 {
		if n.Addr == "" {
			return string(n.Role) + " (unknown)"
		}
		return string(n.Role) + " at " + n.Addr
	}
	return string(n.Role) + " " + strconv.Itoa(int(n.ID))
}

func compareRefs(a, b NodeRef) int {
	if a.Role != b.Role { // controllers first
		return strings.Compare(string(b.Role), string(a.Role))
	}
	if a.ID != b.ID {
		if a.ID < b.ID {
			return -1
		}
		return 1
	}
	switch {
	case a.Addr < b.Addr:
		return -1
	case a.Addr > b.Addr:
		return 1
	}
	return 0
}

// ErrNoAddress reports a node known to exist (a voter or observer of the
// quorum) whose listener address is unknown, so it could not be asked. A
// [NodeFeatures] entry's Err wraps it with what to do.
var ErrNoAddress = errors.New("kraft: no address known for this node")

// observerGone is how long an observer must have stopped fetching, by the
// leader's clock, to count as gone: the leader keeps reporting retired and
// stopped brokers as observers for minutes, while a running broker fetches
// every few hundred milliseconds.
const observerGone = 10 * time.Second

// goneObserver reports whether observer o stopped fetching long ago.
func goneObserver(leader, o Replica) bool {
	return !leader.LastFetch.IsZero() && !o.LastFetch.IsZero() && leader.LastFetch.Sub(o.LastFetch) > observerGone
}

// Errors behind per-node failures to reach a node at all.
var (
	errNoControllerAddr = fmt.Errorf("%w: Kafka reports controller endpoints from 3.9 (DescribeQuorum v2); pass ControllerAddrs", ErrNoAddress)
	errNoBrokerAddr     = fmt.Errorf("%w: a client seeded with controllers cannot reach brokers; use a client seeded with brokers", ErrNoAddress)
	errNotInMetadata    = errors.New("kraft: fetches the metadata log as an observer but is not in the brokers' metadata: fenced, starting, or a controller that is not a voter")
)

// cluster is one call's view of how to reach a cluster's nodes.
type cluster struct {
	cl  *kgo.Client
	cfg config
	// viaControllers is true when cl is seeded with controller listeners.
	viaControllers bool
	// own is a client this call made for controller addresses; closed by
	// close.
	own *kgo.Client
}

// endpoint is a pinned handle to one listener.
type endpoint struct {
	ref NodeRef
	b   *kgo.Broker
}

// open finds out whether cl is seeded with brokers or controllers by
// asking its seeds for their ApiVersions: controllers serve no Metadata.
func open(ctx context.Context, cl *kgo.Client, cfg config) (*cluster, error) {
	if cl == nil {
		return nil, errors.New("kraft: nil client")
	}
	c := &cluster{cl: cl, cfg: cfg}
	seeds := cl.SeedBrokers()
	type answer struct {
		resp *kmsg.ApiVersionsResponse
		err  error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	answers := make(chan answer, len(seeds))
	for i, b := range seeds {
		go func() {
			resp, err := askRead(ctx, cfg, endpoint{ref: NodeRef{ID: -1, Addr: "seed " + strconv.Itoa(i)}, b: b}, c.newApiVersionsRequest())
			r, _ := resp.(*kmsg.ApiVersionsResponse)
			answers <- answer{r, err}
		}()
	}
	var errs []error
	for range seeds {
		a := <-answers
		if a.err == nil {
			a.err = kerr.ErrorForCode(a.resp.ErrorCode)
		}
		if a.err != nil {
			errs = append(errs, a.err)
			continue
		}
		c.viaControllers = !slices.ContainsFunc(a.resp.ApiKeys, func(k kmsg.ApiVersionsResponseApiKey) bool { return k.ApiKey == 3 })
		return c, nil
	}
	// Seeds can be gone (brokers replaced since the client was made) while
	// the client still knows the cluster's current brokers: a Metadata
	// answer through it proves it talks to brokers.
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{}
	rctx, rcancel := context.WithTimeoutCause(ctx, cfg.requestTimeout,
		fmt.Errorf("kraft: no broker the client knows answered Metadata within %v", cfg.requestTimeout))
	defer rcancel()
	_, err := req.RequestWith(rctx, cl)
	if err == nil {
		return c, nil
	}
	if rctx.Err() != nil {
		err = context.Cause(rctx)
	}
	errs = append(errs, err)
	return nil, fmt.Errorf("kraft: no seed of the client answered ApiVersions, and no broker it knows answered Metadata: %w", errors.Join(errs...))
}

// newApiVersionsRequest returns an ApiVersions request that names the
// client's software as the client's own connections do: from v3 on, Kafka
// answers INVALID_REQUEST to empty or malformed names.
func (c *cluster) newApiVersionsRequest() *kmsg.ApiVersionsRequest {
	req := kmsg.NewPtrApiVersionsRequest()
	req.ClientSoftwareName, req.ClientSoftwareVersion = "kgo", "unknown"
	if vs := c.cl.OptValues(kgo.SoftwareNameAndVersion); len(vs) == 2 {
		if name, ok := vs[0].(string); ok && name != "" {
			req.ClientSoftwareName = name
		}
		if version, ok := vs[1].(string); ok && version != "" {
			req.ClientSoftwareVersion = version
		}
	}
	return req
}

func (c *cluster) close() {
	if c.own != nil {
		c.own.Close()
	}
}

// ask sends req to one endpoint within the request timeout; a timeout
// names the node.
func ask(ctx context.Context, cfg config, ep endpoint, req kmsg.Request) (kmsg.Response, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, cfg.requestTimeout,
		fmt.Errorf("kraft: %v did not answer %s within %v", ep.ref, kmsg.NameForKey(req.Key()), cfg.requestTimeout))
	defer cancel()
	resp, err := ep.b.Request(ctx, req)
	if err != nil && ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	return resp, err
}

// seedAddrs returns the addresses cl was seeded with, in seed order.
func seedAddrs(cl *kgo.Client) []string {
	addrs, _ := cl.OptValue(kgo.SeedBrokers).([]string)
	out := make([]string, len(addrs))
	for i, a := range addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			a = net.JoinHostPort(a, "9092") // kgo's default port
		}
		out[i] = a
	}
	return out
}

// dial returns a client seeded with addrs that shares cl's connection
// options (TLS, SASL, dialer, client id) but none of its producer,
// consumer or group options, so it never joins the caller's group.
func (c *cluster) dial(addrs []string) (*kgo.Client, error) {
	var opts []kgo.Opt
	for _, o := range c.cl.Opts() {
		switch o.(type) {
		case kgo.ProducerOpt, kgo.ConsumerOpt, kgo.GroupOpt:
			continue
		}
		opts = append(opts, o)
	}
	opts = append(opts, kgo.SeedBrokers(addrs...))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kraft: client for controllers %v: %w", addrs, err)
	}
	return cl, nil
}

// describeQuorum asks the quorum for its state through the brokers, or,
// with a controller-seeded client, through every seed at once; it also
// returns the endpoint of the controller that answered (zero when a broker
// forwarded the request).
func (c *cluster) describeQuorum(ctx context.Context) (Quorum, endpoint, error) {
	if !c.viaControllers {
		ctx, cancel := context.WithTimeoutCause(ctx, c.cfg.requestTimeout,
			fmt.Errorf("kraft: no answer to DescribeQuorum through the brokers within %v", c.cfg.requestTimeout))
		defer cancel()
		// Hedged: one hung broker must not hold the read while others
		// could forward it.
		resp, _, err := hedge.Do(ctx, hedge.ViaClient(c.cl, 1+hedge.MaxHedges, func() kmsg.Request { return newDescribeQuorumRequest() }))
		if err != nil {
			return Quorum{}, endpoint{}, fmt.Errorf("kraft: DescribeQuorum: %w", err)
		}
		q, err := quorumFromResponse(resp.(*kmsg.DescribeQuorumResponse))
		return q, endpoint{}, err
	}
	eps := c.seedEndpoints()
	type answer struct {
		q   Quorum
		ep  endpoint
		err error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	answers := make(chan answer, len(eps))
	for _, ep := range eps {
		go func() {
			resp, err := askRead(ctx, c.cfg, ep, newDescribeQuorumRequest())
			if err != nil {
				answers <- answer{err: fmt.Errorf("%v: %w", ep.ref, err)}
				return
			}
			q, err := quorumFromResponse(resp.(*kmsg.DescribeQuorumResponse))
			answers <- answer{q, ep, err}
		}()
	}
	var errs []error
	noLeader := true
	for range eps {
		a := <-answers
		if a.err == nil {
			a.ep.ref.ID = a.q.LeaderID // only the leader answers
			return a.q, a.ep, nil
		}
		noLeader = noLeader && errors.Is(a.err, ErrNoLeader)
		errs = append(errs, a.err)
	}
	if noLeader {
		return Quorum{}, endpoint{}, fmt.Errorf("%w: no controller seed answered as the leader: %w", ErrNoLeader, errors.Join(errs...))
	}
	return Quorum{}, endpoint{}, fmt.Errorf("kraft: DescribeQuorum through the controller seeds: %w", errors.Join(errs...))
}

// seedEndpoints returns a handle per seed of cl, with its address when
// the seed list can be read.
func (c *cluster) seedEndpoints() []endpoint {
	seeds := c.cl.SeedBrokers()
	addrs := seedAddrs(c.cl)
	role := node.RoleBroker
	if c.viaControllers {
		role = node.RoleController
	}
	eps := make([]endpoint, len(seeds))
	for i, b := range seeds {
		ref := NodeRef{Role: role, ID: -1}
		if len(addrs) == len(seeds) {
			ref.Addr = addrs[i]
		}
		eps[i] = endpoint{ref: ref, b: b}
	}
	return eps
}

// reachable is the outcome of finding a set of nodes: handles to ask, and
// nodes known to exist that cannot be asked.
type reachable struct {
	eps     []endpoint
	missing []NodeFeatures // with Err set
}

// brokers lists the brokers from metadata. With a controller-seeded
// client, the quorum's observers (or, if there are none, one entry without
// an id) are listed as unreachable instead. With a
// broker-seeded client, observers that are neither voters nor in the
// metadata are listed as unreachable too: Kafka still counts a fenced
// broker's registration when it checks feature support.
func (c *cluster) brokers(ctx context.Context, q Quorum, qerr error) (reachable, error) {
	var r reachable
	if c.viaControllers {
		// Observers are the brokers by id; the broker listeners of combined
		// nodes are voters, not observers, so without observers there is
		// still no telling whether brokers exist: say so once.
		if qerr == nil {
			for _, id := range q.ObserverIDs() {
				r.missing = append(r.missing, NodeFeatures{NodeRef: NodeRef{Role: node.RoleBroker, ID: id}, Err: errNoBrokerAddr})
			}
		}
		if len(r.missing) == 0 {
			r.missing = append(r.missing, NodeFeatures{NodeRef: NodeRef{Role: node.RoleBroker, ID: -1}, Err: errNoBrokerAddr})
		}
		return r, nil
	}
	ctx, cancel := context.WithTimeoutCause(ctx, c.cfg.requestTimeout,
		fmt.Errorf("kraft: no broker answered Metadata within %v", c.cfg.requestTimeout))
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{} // brokers only, no topics
	resp, err := req.RequestWith(ctx, c.cl)
	if err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		return r, fmt.Errorf("kraft: list brokers: %w", err)
	}
	inMeta := map[int32]bool{}
	for _, b := range resp.Brokers {
		inMeta[b.NodeID] = true
		r.eps = append(r.eps, endpoint{
			ref: NodeRef{Role: node.RoleBroker, ID: b.NodeID, Addr: net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))},
			b:   c.cl.Broker(int(b.NodeID)),
		})
	}
	if qerr == nil {
		leader, _ := q.Leader()
		for _, id := range q.ObserverIDs() {
			if o, _ := q.Observer(id); goneObserver(leader, o) {
				continue // stopped fetching: retired or stopped, not a node to ask
			}
			if !inMeta[id] && !q.IsVoter(id) {
				r.missing = append(r.missing, NodeFeatures{NodeRef: NodeRef{Role: node.RoleBroker, ID: id}, Err: errNotInMetadata})
			}
		}
	}
	return r, nil
}

// controllers finds a handle per controller listener: ControllerAddrs,
// else the client's seeds when it is seeded with controllers, else each
// voter's first endpoint from DescribeQuorum v2. Ids are filled from
// DescribeQuorum's Nodes, or from DescribeCluster with EndpointType 2
// (3.7+); voters that no handle reaches are listed as missing.
func (c *cluster) controllers(ctx context.Context, q Quorum, qerr error) (reachable, error) {
	var r reachable
	switch {
	case c.viaControllers && len(c.cfg.controllerAddrs) == 0:
		r.eps = c.seedEndpoints()
	case len(c.cfg.controllerAddrs) > 0 || (qerr == nil && len(q.Nodes) > 0):
		addrs := c.cfg.controllerAddrs
		var known []int32
		if len(addrs) == 0 {
			for _, n := range q.Nodes {
				if a := n.Addr(); a != "" {
					addrs = append(addrs, a)
					known = append(known, n.ID)
				}
			}
		}
		own, err := c.dial(addrs)
		if err != nil {
			return r, err
		}
		c.own = own
		for i, b := range own.SeedBrokers() {
			ref := NodeRef{Role: node.RoleController, ID: -1, Addr: addrs[i]}
			if known != nil {
				ref.ID = known[i]
			}
			r.eps = append(r.eps, endpoint{ref: ref, b: b})
		}
	case qerr != nil:
		r.missing = append(r.missing, NodeFeatures{NodeRef: NodeRef{Role: node.RoleController, ID: -1},
			Err: fmt.Errorf("cannot find the controllers: %w", qerr)})
		return r, nil
	default:
		for _, id := range q.VoterIDs() {
			r.missing = append(r.missing, NodeFeatures{NodeRef: NodeRef{Role: node.RoleController, ID: id}, Err: errNoControllerAddr})
		}
		return r, nil
	}
	c.identify(ctx, r.eps, q, qerr)
	if qerr == nil {
		for _, id := range q.VoterIDs() {
			if !slices.ContainsFunc(r.eps, func(ep endpoint) bool { return ep.ref.ID == id }) {
				r.missing = append(r.missing, NodeFeatures{NodeRef: NodeRef{Role: node.RoleController, ID: id},
					Err: fmt.Errorf("voter %d is not among the controller addresses asked: %w", id, errNoControllerAddr)})
			}
		}
	}
	return r, nil
}

// identify fills in the ids of controller endpoints that lack one, by
// address: from DescribeQuorum's Nodes, else from DescribeCluster with
// EndpointType 2 (controllers answer it from 3.7 on).
func (c *cluster) identify(ctx context.Context, eps []endpoint, q Quorum, qerr error) {
	byAddr := map[string]int32{}
	if qerr == nil {
		for _, n := range q.Nodes {
			for _, l := range n.Listeners {
				byAddr[l.Addr()] = n.ID
			}
		}
	}
	need := slices.ContainsFunc(eps, func(ep endpoint) bool { _, ok := byAddr[ep.ref.Addr]; return ep.ref.ID < 0 && !ok })
	if need {
		for _, ep := range eps {
			req := kmsg.NewPtrDescribeClusterRequest()
			req.EndpointType = 2
			resp, err := askRead(ctx, c.cfg, ep, req)
			if err != nil {
				continue
			}
			dc := resp.(*kmsg.DescribeClusterResponse)
			if dc.ErrorCode != 0 || dc.Version < 1 {
				continue
			}
			for _, b := range dc.Brokers {
				byAddr[net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))] = b.NodeID
			}
			break
		}
	}
	for i := range eps {
		if eps[i].ref.ID >= 0 {
			continue
		}
		if id, ok := byAddr[eps[i].ref.Addr]; ok {
			eps[i].ref.ID = id
		}
	}
}

// fanOut runs fn for every endpoint concurrently and returns the results
// in endpoint order.
func fanOut[T any](eps []endpoint, fn func(endpoint) T) []T {
	out := make([]T, len(eps))
	var wg sync.WaitGroup
	for i, ep := range eps {
		wg.Go(func() { out[i] = fn(ep) })
	}
	wg.Wait()
	return out
}
