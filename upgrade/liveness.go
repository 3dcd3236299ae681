package upgrade

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/health"
	"github.com/kupgrade/kupgrade/internal/hedge"
)

// RuleBrokerUnresponsive is the rule of a gate's reason when a broker did not
// answer the liveness probe in time (see [BrokerProbeTimeout]).
const RuleBrokerUnresponsive health.Rule = "broker-unresponsive"

// DefaultBrokerProbeTimeout is how long each broker has to answer the
// liveness probe unless [BrokerProbeTimeout] says otherwise.
const DefaultBrokerProbeTimeout = 5 * time.Second

// brokerProbe is how the gates probe brokers: the zero value probes with
// the default timeout.
type brokerProbe struct {
	timeout time.Duration
	set     bool // BrokerProbeTimeout was given
	off     bool // NoBrokerProbe was given
}

func (p brokerProbe) validate() error {
	if p.set && p.timeout <= 0 {
		return fmt.Errorf("upgrade: BrokerProbeTimeout(%v) must be positive (NoBrokerProbe turns the probe off)", p.timeout)
	}
	return nil
}

// BrokerProbeTimeout sets how long each broker has to answer the liveness
// probe that every gate runs (preflight and before each restart), overriding
// the default of 5s ([DefaultBrokerProbeTimeout]).
//
// The probe is on by default because a hung broker (stopped with SIGSTOP, in
// a long GC pause, cut off by a partition) looks healthy to every other check
// until Kafka notices: it stays registered and unfenced until its session
// times out (broker.session.timeout.ms, 9s), and in every ISR until
// replica.lag.time.max.ms (30s) has passed. Restarting another broker then
// leaves the partitions the two share with one live replica: producers with
// acks=all get NotEnoughReplicas. So before each restart every broker in
// metadata but the one to restart must answer an ApiVersions request, sent to
// all of them at once, each within the timeout (once more at once on a new
// connection if the old one turns out stale); one that does not blocks the
// restart, with a reason of rule [RuleBrokerUnresponsive] naming it, until it
// answers or the gate times out. It needs no topic, no ACL and no write, and
// costs a round trip per broker, which is why it, rather than the canary
// ([CanaryGate], which needs a topic of its own and writes to it), is the
// default; the canary goes further (it proves produce and fetch through
// every broker) and stays an option. Opt out with [NoBrokerProbe].
func BrokerProbeTimeout(d time.Duration) RunnerOption {
	return optionFunc(func(c *config) { c.probe.timeout, c.probe.set = d, true })
}

// NoBrokerProbe turns off the liveness probe that every gate runs by default
// (see [BrokerProbeTimeout]). Without it, a hung broker that Kafka has not
// noticed yet does not block the next restart: only a [node.Liveness]
// Orchestrator or a [CanaryGate] would see it.
func NoBrokerProbe() RunnerOption { return optionFunc(func(c *config) { c.probe.off = true }) }

// A brokerProber probes brokers; liveOps is one, and so may a test's ops be.
type brokerProber interface {
	// probeBrokers asks every broker in metadata but except (-1 for none)
	// to answer within timeout, and returns a reason for each that did not.
	probeBrokers(ctx context.Context, timeout time.Duration, except int32) ([]health.Reason, error)
}

// unresponsive adds to reasons those of the liveness probe (see
// [BrokerProbeTimeout]), leaving out except (the node about to restart; -1
// for none). Without a probe (opted out, or ops that cannot), reasons are
// returned as they are.
func (u *run) unresponsive(ctx context.Context, reasons []health.Reason, except int32) ([]health.Reason, error) {
	p, ok := u.r.cfg.ops.(brokerProber)
	if !ok || u.r.cfg.probe.off {
		return reasons, nil
	}
	timeout := u.r.cfg.probe.timeout
	if timeout <= 0 {
		timeout = DefaultBrokerProbeTimeout
	}
	rs, err := p.probeBrokers(ctx, timeout, except)
	if err != nil {
		return nil, fmt.Errorf("liveness probe: %w", err)
	}
	return append(reasons, rs...), nil
}

// probeBrokers implements brokerProber with ApiVersions, which every broker
// answers without authorization.
func (o *liveOps) probeBrokers(ctx context.Context, timeout time.Duration, except int32) ([]health.Reason, error) {
	// Metadata may first go to the hung broker: the bound leaves time for
	// every hedge (one more broker each hedge.Delay) to get its answer.
	bound := timeout + hedge.MaxHedges*hedge.Delay
	mctx, cancel := context.WithTimeoutCause(ctx, bound, fmt.Errorf("no broker answered metadata within %v", bound))
	resp, _, err := hedge.Do(mctx, hedge.ViaClient(o.cl, 1+hedge.MaxHedges, func() kmsg.Request {
		req := kmsg.NewPtrMetadataRequest()
		req.Topics = []kmsg.MetadataRequestTopic{} // brokers only
		return req
	}))
	cancel()
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", hedge.CtxErr(mctx, err))
	}
	var ids []int32
	for _, b := range resp.(*kmsg.MetadataResponse).Brokers {
		if b.NodeID != except {
			ids = append(ids, b.NodeID)
		}
	}
	slices.Sort(ids)
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			pctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("no answer within %v", timeout))
			defer cancel()
			ask := func() error {
				_, err := kmsg.NewPtrApiVersionsRequest().RequestWith(pctx, o.cl.Broker(int(id)))
				if err != nil && pctx.Err() != nil {
					return context.Cause(pctx)
				}
				return err
			}
			err := ask()
			if hedge.StaleConn(err) && pctx.Err() == nil {
				err = ask() // the broker restarted since the client last used it
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	var out []health.Reason
	for i, id := range ids {
		if errs[i] != nil {
			out = append(out, unresponsiveReason(id, timeout, errs[i]))
		}
	}
	return out, nil
}

// unresponsiveReason says that broker id did not answer the probe.
func unresponsiveReason(id int32, timeout time.Duration, err error) health.Reason {
	return health.Reason{Rule: RuleBrokerUnresponsive, Partition: -1, Leader: -1, Nodes: []int32{id},
		Message: fmt.Sprintf("broker %d did not answer ApiVersions within %v (%v): it may hang, and Kafka counts it in ISRs until it notices; no restart while a broker does not answer", id, timeout, err)}
}

var _ brokerProber = (*liveOps)(nil)
