package kraft

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FetchTimeoutConfig is the config key [CanRestartController] needs.
const FetchTimeoutConfig = "controller.quorum.fetch.timeout.ms"

// A FetchTimeout is controller.quorum.fetch.timeout.ms as read from a live
// node.
type FetchTimeout struct {
	// Timeout is the value; [DefaultFetchTimeout] when Default is true.
	Timeout time.Duration `json:"timeout"`
	// Node is whose config it is: a controller's when one could be asked,
	// else a broker's (which may differ from the controllers' if they were
	// configured differently).
	Node NodeRef `json:"node"`
	// Source is where the node's value comes from, such as
	// "STATIC_BROKER_CONFIG" or "DEFAULT_CONFIG".
	Source string `json:"source,omitempty"`
	// Default is true when no node's config could be read and Timeout is
	// Kafka's default.
	Default bool `json:"default,omitempty"`
}

// String says where the value comes from, for example "3s from controller
// 1 (STATIC_BROKER_CONFIG)".
func (f FetchTimeout) String() string {
	if f.Default {
		return fmt.Sprintf("%v (Kafka's default; the live config could not be read)", f.Timeout)
	}
	return fmt.Sprintf("%v from %v (%s)", f.Timeout, f.Node, f.Source)
}

// QuorumFetchTimeout reads controller.quorum.fetch.timeout.ms from the live
// config with DescribeConfigs: from a controller when one can be reached
// (the active one first; controllers answer DescribeConfigs from Kafka 3.7),
// else from a broker. If no node answers, it returns Kafka's default of 2s
// with Default set, together with the error, so a caller may log the error
// and go on with the default.
func QuorumFetchTimeout(ctx context.Context, cl *kgo.Client, opts ...ReachOption) (FetchTimeout, error) {
	def := FetchTimeout{Timeout: DefaultFetchTimeout, Default: true}
	cfg, err := newConfig(opts)
	if err != nil {
		return def, err
	}
	c, err := open(ctx, cl, cfg)
	if err != nil {
		return def, err
	}
	defer c.close()
	q, _, qerr := c.describeQuorum(ctx)
	var eps []endpoint
	var errs []error
	if ctrls, err := c.controllers(ctx, q, qerr); err == nil {
		for _, ep := range ctrls.eps {
			if ep.ref.ID >= 0 {
				eps = append(eps, ep)
			}
		}
		// The active controller first: its value is the one that matters
		// for the leader's view of caught-up times.
		slices.SortStableFunc(eps, func(a, b endpoint) int {
			return boolInt(b.ref.ID == q.LeaderID) - boolInt(a.ref.ID == q.LeaderID)
		})
	} else {
		errs = append(errs, err)
	}
	if brokers, err := c.brokers(ctx, q, qerr); err == nil {
		eps = append(eps, brokers.eps...)
	} else {
		errs = append(errs, err)
	}
	for _, ep := range eps {
		ft, err := c.describeFetchTimeout(ctx, ep)
		if err == nil {
			return ft, nil
		}
		errs = append(errs, fmt.Errorf("%v: %w", ep.ref, err))
	}
	if len(errs) == 0 {
		errs = append(errs, errors.New("no broker or controller to ask"))
	}
	return def, fmt.Errorf("kraft: reading %s (using the default %v): %w", FetchTimeoutConfig, DefaultFetchTimeout, errors.Join(errs...))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// describeFetchTimeout asks one node for its own config key.
func (c *cluster) describeFetchTimeout(ctx context.Context, ep endpoint) (FetchTimeout, error) {
	req := kmsg.NewPtrDescribeConfigsRequest()
	r := kmsg.NewDescribeConfigsRequestResource()
	r.ResourceType = kmsg.ConfigResourceTypeBroker
	r.ResourceName = strconv.Itoa(int(ep.ref.ID))
	r.ConfigNames = []string{FetchTimeoutConfig}
	req.Resources = append(req.Resources, r)
	resp, err := askRead(ctx, c.cfg, ep, req)
	if err != nil {
		return FetchTimeout{}, err
	}
	for _, res := range resp.(*kmsg.DescribeConfigsResponse).Resources {
		if err := kerr.ErrorForCode(res.ErrorCode); err != nil {
			return FetchTimeout{}, fmt.Errorf("DescribeConfigs: %w%s", err, msgSuffix(res.ErrorMessage))
		}
		for _, cfg := range res.Configs {
			if cfg.Name != FetchTimeoutConfig || cfg.Value == nil {
				continue
			}
			ms, err := strconv.ParseInt(*cfg.Value, 10, 64)
			if err != nil || ms <= 0 {
				return FetchTimeout{}, fmt.Errorf("%s=%q is not a positive number of milliseconds", FetchTimeoutConfig, *cfg.Value)
			}
			return FetchTimeout{Timeout: time.Duration(ms) * time.Millisecond, Node: ep.ref, Source: cfg.Source.String()}, nil
		}
	}
	return FetchTimeout{}, fmt.Errorf("DescribeConfigs: no %s in the answer", FetchTimeoutConfig)
}
