package upgrade

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/health"
	"github.com/kupgrade/kupgrade/kraft"
)

// liveOps observes and changes a real cluster through a client.
type liveOps struct {
	cl          *kgo.Client
	controllers []string

	ftOnce sync.Once
	ft     time.Duration

	zk *zkProbe // nil: no ZooKeeper probe
}

// snapshot takes a health snapshot, once the brokers' ZooKeeper (if any)
// serves (see [NoZooKeeperProbe]).
func (o *liveOps) snapshot(ctx context.Context) (health.Snapshot, error) {
	if err := o.zk.check(ctx, o.cl); err != nil {
		return health.Snapshot{}, fmt.Errorf("health: snapshot: %w", err)
	}
	snap, err := health.Take(ctx, o.cl)
	if err == nil {
		err = deniedIn("health snapshot", snap)
	}
	return snap, err
}

func (o *liveOps) brokerConfig(ctx context.Context, id int32, keys []string) (map[string]compat.ConfigValue, error) {
	rcs, err := kadm.NewClient(o.cl).DescribeBrokerConfigs(ctx, id)
	if err != nil {
		return nil, err
	}
	rc, err := rcs.On(strconv.Itoa(int(id)), nil)
	if err != nil {
		return nil, err
	}
	if rc.Err != nil {
		return nil, fmt.Errorf("describe configs of broker %d: %w", id, rc.Err)
	}
	out := map[string]compat.ConfigValue{}
	for _, k := range keys {
		out[k] = compat.Default()
	}
	for _, c := range rc.Configs {
		if _, ok := out[c.Key]; !ok {
			continue
		}
		out[c.Key] = configValue(c)
	}
	return out, nil
}

// configValue reads the static value of a config: a dynamic value hides the
// static one, which then is among the synonyms.
func configValue(c kadm.Config) compat.ConfigValue {
	if c.Source == kmsg.ConfigSourceStaticBrokerConfig {
		return compat.Static(c.MaybeValue())
	}
	for _, s := range c.Synonyms {
		if s.Source == kmsg.ConfigSourceStaticBrokerConfig {
			return compat.Static(kadmMaybe(s.Value))
		}
	}
	switch c.Source {
	case kmsg.ConfigSourceDefaultConfig:
		return compat.ConfigValue{Value: c.MaybeValue(), Source: compat.SourceDefault}
	case kmsg.ConfigSourceDynamicBrokerConfig:
		return compat.ConfigValue{Value: c.MaybeValue(), Source: compat.SourceBroker}
	case kmsg.ConfigSourceDynamicDefaultBrokerConfig:
		return compat.ConfigValue{Value: c.MaybeValue(), Source: compat.SourceCluster}
	}
	return compat.ConfigValue{}
}

func kadmMaybe(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (o *liveOps) electPreferred(ctx context.Context, snap health.Snapshot, node int32) error {
	_, err := health.ElectPreferred(ctx, o.cl, snap, node)
	return err
}

func (o *liveOps) electAll(ctx context.Context) error {
	return o.elect(ctx, nil)
}

// elect runs a preferred leader election for the partitions of set (every
// partition if set is nil). Partitions whose preferred replica leads
// already are no error, nor those that fail with one of the errors of
// ignore.
func (o *liveOps) elect(ctx context.Context, set kadm.TopicsSet, ignore ...error) error {
	res, err := kadm.NewClient(o.cl).ElectLeaders(ctx, kadm.ElectPreferredReplica, set)
	if err != nil {
		return fmt.Errorf("preferred leader election: %w", err)
	}
	var errs []error
	for _, ps := range res {
		for _, r := range ps {
			if r.Err != nil && !errors.Is(r.Err, kerr.ElectionNotNeeded) && !slices.ContainsFunc(ignore, func(e error) bool { return errors.Is(r.Err, e) }) {
				errs = append(errs, fmt.Errorf("%s-%d: %w", r.Topic, r.Partition, r.Err))
			}
		}
	}
	return errors.Join(errs...)
}

// kraftOpts are the kraft options of a run (controller addresses).
func (o *liveOps) kraftOpts() []kraft.ReachOption {
	if len(o.controllers) == 0 {
		return nil
	}
	return []kraft.ReachOption{kraft.ControllerAddrs(o.controllers...)}
}

func (o *liveOps) activeController(ctx context.Context) (int32, error) {
	q, err := kraft.DescribeQuorum(ctx, o.cl, o.kraftOpts()...)
	if err != nil {
		return -1, err
	}
	if id, ok := q.ActiveController(); ok {
		return id, nil
	}
	return -1, fmt.Errorf("the controller quorum has no leader (epoch %d)", q.LeaderEpoch)
}

// fetchTimeout reads controller.quorum.fetch.timeout.ms once per Runner.
func (o *liveOps) fetchTimeout(ctx context.Context) time.Duration {
	o.ftOnce.Do(func() {
		ft, _ := kraft.QuorumFetchTimeout(ctx, o.cl, o.kraftOpts()...) // on error: Kafka's default, which it returns
		o.ft = ft.Timeout
	})
	return o.ft
}

func (o *liveOps) canRestartController(ctx context.Context, id int32) (health.Verdict, error) {
	q, err := kraft.DescribeQuorum(ctx, o.cl, o.kraftOpts()...)
	if err != nil {
		return health.Verdict{}, err
	}
	return kraft.CanRestartController(q, id, o.fetchTimeout(ctx)).Verdict, nil
}

// controllerCaughtUp applies the quorum's caught-up rule to voter id
// ([kraft.VoterCaughtUp]) on a fresh DescribeQuorum.
func (o *liveOps) controllerCaughtUp(ctx context.Context, id int32) (health.Verdict, error) {
	q, err := kraft.DescribeQuorum(ctx, o.cl, o.kraftOpts()...)
	if err != nil {
		return health.Verdict{}, err
	}
	return voterCaughtUp(q, id, o.fetchTimeout(ctx)), nil
}

func (o *liveOps) finalized(ctx context.Context) (compat.FeatureLevels, error) {
	fs, err := kraft.DescribeFeatures(ctx, o.cl, o.kraftOpts()...)
	if err != nil {
		return nil, err
	}
	out := compat.FeatureLevels{}
	for _, nf := range fs {
		for f := range nf.Finalized {
			if lvl, agreed, ok := fs.Finalized(f); ok && agreed {
				out[f] = lvl
			}
		}
	}
	return out, nil
}

func (o *liveOps) finalizedEverywhere(ctx context.Context, levels compat.FeatureLevels) (health.Verdict, error) {
	fs, err := kraft.DescribeFeatures(ctx, o.cl, o.kraftOpts()...)
	if err != nil {
		return health.Verdict{}, err
	}
	v := health.Verdict{Kind: health.Kind("finalized")}
	for _, nf := range fs.Sorted() {
		v.Checked++
		if nf.Err != nil {
			v.Reasons = append(v.Reasons, health.Reason{Rule: "feature-unknown", Partition: -1, Leader: -1, Nodes: []int32{nf.ID},
				Message: fmt.Sprintf("%v did not answer ApiVersions: %v", nf.NodeRef, nf.Err)})
			continue
		}
		for _, f := range levels.Names() {
			if got := nf.Finalized[f]; got != levels[f] { // Kafka omits level 0
				v.Reasons = append(v.Reasons, health.Reason{Rule: "feature-not-finalized", Partition: -1, Leader: -1, Nodes: []int32{nf.ID},
					Message: fmt.Sprintf("%v reports %s at %d, not %d yet", nf.NodeRef, f, got, levels[f])})
			}
		}
	}
	v.OK = len(v.Reasons) == 0
	return v, nil
}

func (o *liveOps) updateFeatures(ctx context.Context, levels compat.FeatureLevels, downgrade bool) error {
	var ups []kraft.FeatureUpdate
	for _, f := range levels.Names() {
		u := kraft.FeatureUpdate{Feature: f, Level: levels[f]}
		if downgrade {
			u.Type = kraft.SafeDowngrade
		}
		ups = append(ups, u)
	}
	var opts []kraft.FinalizeOption
	for _, o := range o.kraftOpts() {
		opts = append(opts, o)
	}
	_, err := kraft.Finalize(ctx, o.cl, ups, opts...)
	return err
}

// voterCaughtUp is the caught-up verdict of voter id in quorum q
// ([kraft.VoterCaughtUp]), whichever way q was read.
func voterCaughtUp(q kraft.Quorum, id int32, fetchTimeout time.Duration) health.Verdict {
	v := health.Verdict{Kind: health.KindCaughtUp, Nodes: []int32{id}}
	ok, why := kraft.VoterCaughtUp(q, id, fetchTimeout)
	if !ok {
		v.Reasons = []health.Reason{{Rule: kraft.RuleNotCaughtUp, Partition: -1, Leader: -1, Nodes: []int32{id}, Message: why}}
	}
	v.OK = ok
	return v
}
