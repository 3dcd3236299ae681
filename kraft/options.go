package kraft

import (
	"fmt"
	"net"
	"time"
)

// A ReachOption configures how this package reaches a cluster's nodes. It is
// accepted by [DescribeFeatures], [QuorumFetchTimeout], [WaitFinalized] and,
// because every ReachOption is also a [FinalizeOption], by [Finalize].
type ReachOption interface {
	FinalizeOption
	apply(*config)
}

// A FinalizeOption configures [Finalize]. Every [ReachOption] is one too.
type FinalizeOption interface {
	applyFinalize(*finalizeConfig)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config)                 { f(c) }
func (f optionFunc) applyFinalize(c *finalizeConfig) { f(&c.config) }

type finalizeOptionFunc func(*finalizeConfig)

func (f finalizeOptionFunc) applyFinalize(c *finalizeConfig) { f(c) }

// config holds the options common to every call.
type config struct {
	controllerAddrs []string
	requestTimeout  time.Duration
	pollInterval    time.Duration
}

func defaultConfig() config {
	return config{
		requestTimeout: 15 * time.Second,
		pollInterval:   500 * time.Millisecond,
	}
}

func (c *config) validate() error {
	if c.requestTimeout <= 0 {
		return fmt.Errorf("kraft: NodeTimeout must be positive, got %v", c.requestTimeout)
	}
	if c.pollInterval <= 0 {
		return fmt.Errorf("kraft: PollInterval must be positive, got %v", c.pollInterval)
	}
	for _, a := range c.controllerAddrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("kraft: ControllerAddrs: %q is not host:port: %w", a, err)
		}
	}
	return nil
}

func newConfig(opts []ReachOption) (config, error) {
	c := defaultConfig()
	for _, o := range opts {
		o.apply(&c)
	}
	return c, c.validate()
}

// finalizeConfig holds the options of [Finalize].
type finalizeConfig struct {
	config
	validateOnly         bool
	allowUnsafeDowngrade bool
	skipPreCheck         bool
}

func newFinalizeConfig(opts []FinalizeOption) (finalizeConfig, error) {
	c := finalizeConfig{config: defaultConfig()}
	for _, o := range opts {
		o.applyFinalize(&c)
	}
	return c, c.config.validate()
}

// ControllerAddrs names the controller listeners ("host:port") to ask,
// overriding the default: the client's seeds when it is seeded with
// controllers, else the endpoints the quorum leader reports in
// DescribeQuorum v2 (Kafka 3.9+; each voter's first listener). Kafka 3.7 and 3.8 do not report controller
// endpoints to a client seeded with brokers, so pass them here for those
// releases. The addresses are dialled with the client's own options (TLS,
// SASL, dialer), so the controller listener must accept them.
func ControllerAddrs(addrs ...string) ReachOption {
	return optionFunc(func(c *config) { c.controllerAddrs = append(c.controllerAddrs[:0:0], addrs...) })
}

// NodeTimeout bounds each request to one node, overriding the default of
// 15s. A node that does not answer in time (crashed, paused, partitioned) is
// reported with an error naming it instead of stalling the whole call. For
// [Finalize] it also sets the UpdateFeatures timeout Kafka applies.
func NodeTimeout(d time.Duration) ReachOption {
	return optionFunc(func(c *config) { c.requestTimeout = d })
}

// PollInterval sets how often [WaitFinalized] asks the nodes again,
// overriding the default of 500ms.
func PollInterval(d time.Duration) ReachOption {
	return optionFunc(func(c *config) { c.pollInterval = d })
}

// ValidateOnly makes [Finalize] a dry run: the pre-checks run and Kafka's
// controller validates the update (UpdateFeatures validateOnly, v1+), but
// nothing changes. The default is to apply the update.
func ValidateOnly() FinalizeOption {
	return finalizeOptionFunc(func(c *finalizeConfig) { c.validateOnly = true })
}

// AllowUnsafeDowngrade lets [Finalize] send a metadata.version downgrade
// that crosses a metadata change as UNSAFE_DOWNGRADE instead of refusing it.
// The default is to refuse such a downgrade before sending anything.
//
// Every Kafka release so far (3.3 through 4.x) refuses unsafe metadata
// downgrades ("Unsafe metadata downgrade is not supported in this
// version", KAFKA-13896 was never implemented), so with this option the
// refusal comes from Kafka as an [*UpdateError] wrapping
// [ErrUnsafeDowngrade]. The option exists so that a future release that does
// implement it needs no API change; an unsafe downgrade, where it works,
// deletes metadata.
func AllowUnsafeDowngrade() FinalizeOption {
	return finalizeOptionFunc(func(c *finalizeConfig) { c.allowUnsafeDowngrade = true })
}

// SkipPreCheck makes [Finalize] send the update even if its own checks
// (every node supports the level, every node answered, the downgrade does
// not cross a metadata change) refuse it, so that Kafka's controller
// decides. It exists to test Kafka's own refusals and to finalize while a
// node is down for good (Kafka checks the registrations of every broker
// and, from metadata.version 3.7-IV0, every controller). Refusals that
// would have blocked are still reported in [FinalizeResult.PreCheck].
func SkipPreCheck() FinalizeOption {
	return finalizeOptionFunc(func(c *finalizeConfig) { c.skipPreCheck = true })
}
