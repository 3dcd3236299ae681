package kraft

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/internal/poll"
)

// An UpgradeType says how [Finalize] sends a feature update. The values
// match UpdateFeatures' UpgradeType field, except [UpgradeAuto].
type UpgradeType int8

// The upgrade types.
const (
	// UpgradeAuto lets Finalize choose: Upgrade above the finalized level,
	// SafeDowngrade below it (UnsafeDowngrade with [AllowUnsafeDowngrade]
	// when the safe one is impossible), nothing when equal.
	UpgradeAuto UpgradeType = 0
	// Upgrade raises a level (UpdateFeatures UPGRADE, 1).
	Upgrade UpgradeType = 1
	// SafeDowngrade lowers a level without losing metadata
	// (SAFE_DOWNGRADE, 2).
	SafeDowngrade UpgradeType = 2
	// UnsafeDowngrade lowers a level even if metadata is lost
	// (UNSAFE_DOWNGRADE, 3). Every Kafka release so far refuses it for
	// metadata.version.
	UnsafeDowngrade UpgradeType = 3
)

// String returns "upgrade", "safe downgrade", "unsafe downgrade" or "auto".
func (t UpgradeType) String() string {
	switch t {
	case UpgradeAuto:
		return "auto"
	case Upgrade:
		return "upgrade"
	case SafeDowngrade:
		return "safe downgrade"
	case UnsafeDowngrade:
		return "unsafe downgrade"
	}
	return "upgrade type " + strconv.Itoa(int(t))
}

// MarshalText implements encoding.TextMarshaler with [UpgradeType.String].
func (t UpgradeType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// A FeatureUpdate asks for one feature to be finalized at a level.
type FeatureUpdate struct {
	// Feature is the feature's name, such as "metadata.version".
	Feature string
	// Level is the level to finalize. 0 disables a feature other than
	// metadata.version.
	Level int16
	// Type says how to send it; the zero value, [UpgradeAuto], chooses by
	// comparing Level with the finalized level.
	Type UpgradeType
}

// A FeatureResult is the outcome of one [FeatureUpdate].
type FeatureResult struct {
	Feature string `json:"feature"`
	// From is the finalized level before the update (the newest any node
	// reported), -1 if it could not be read; To is the level asked for.
	From int16 `json:"from"`
	To   int16 `json:"to"`
	// Type is how the update was (or would have been) sent.
	Type UpgradeType `json:"type"`
	// Unchanged is true if the feature was already finalized at To, so
	// nothing was sent for it.
	Unchanged bool `json:"unchanged,omitempty"`
	// PreCheck is what Finalize's own checks said before sending: nil if
	// they passed. With [SkipPreCheck] the update is sent anyway and Kafka's
	// verdict is in Err.
	PreCheck error `json:"-"`
	// Err is nil if the update was applied (or, with [ValidateOnly],
	// validated); else Kafka's refusal as an [*UpdateError], or the
	// pre-check's refusal when the update was not sent.
	Err error `json:"-"`
}

// A FinalizeResult is the outcome of [Finalize].
type FinalizeResult struct {
	// Features holds one result per update, in the order given.
	Features []FeatureResult `json:"features"`
	// ValidateOnly is true for a dry run.
	ValidateOnly bool `json:"validateOnly,omitempty"`
	// Sent is true if an UpdateFeatures request reached Kafka.
	Sent bool `json:"sent"`
	// APIVersion is the UpdateFeatures version used when Sent.
	APIVersion int16 `json:"apiVersion,omitempty"`
}

// Each calls fn for every feature result, in the order of the updates.
func (r FinalizeResult) Each(fn func(FeatureResult)) {
	for _, f := range r.Features {
		fn(f)
	}
}

// Err returns every feature's error, joined, or nil.
func (r FinalizeResult) Err() error {
	var errs []error
	for _, f := range r.Features {
		if f.Err != nil {
			errs = append(errs, f.Err)
		}
	}
	return errors.Join(errs...)
}

// Finalize finalizes feature levels with UpdateFeatures: metadata.version
// after every node runs the new software, and, when asked, the other
// features (kraft.version, group.version, transaction.version, …).
//
// Before sending anything it asks every broker and controller for its
// features ([DescribeFeatures]) and refuses, with typed errors, when:
//
//   - some node does not support the level ([*UnsupportedLevelError]) or
//     could not be asked ([*UnverifiedNodeError]);
//   - a metadata.version downgrade would cross a level that changed the
//     metadata format ([*compat.DowngradeError]; Kafka would refuse it too);
//   - kraft.version would be downgraded, or a level is invalid
//     ([ErrInvalidUpdate]).
//
// A client seeded with controllers cannot ask brokers, so the support check
// then refuses with [ErrUnverified]: use a client seeded with brokers, or
// [SkipPreCheck] to rely on Kafka's own check of registered brokers.
//
// Upgrades and safe downgrades are then sent in one request, to the active
// controller (through a broker, or directly when cl is seeded with
// controllers). Kafka's refusals become [*UpdateError]s that say what to
// do. Raising metadata.version across a level that changed the metadata
// format cannot be undone; see [compat.SafeDowngradeFloor].
//
// The error is nil only if every update was applied (or validated, with
// [ValidateOnly]); otherwise it joins every feature's error, and the
// result still says which update failed and why. Kafka 3.x answers per
// feature and may apply the updates it accepts; 4.x accepts or refuses the
// whole request. Finalize returns once the active controller has committed
// the change; use [WaitFinalized] to wait until every node reports it.
func Finalize(ctx context.Context, cl *kgo.Client, updates []FeatureUpdate, opts ...FinalizeOption) (FinalizeResult, error) {
	cfg, err := newFinalizeConfig(opts)
	if err != nil {
		return FinalizeResult{}, err
	}
	if err := validateUpdates(updates); err != nil {
		return FinalizeResult{}, err
	}
	res := FinalizeResult{ValidateOnly: cfg.validateOnly, Features: make([]FeatureResult, len(updates))}
	c, err := open(ctx, cl, cfg.config)
	if err != nil {
		return res, err
	}
	defer c.close()

	scan, err := c.describeFeatures(ctx)
	if err != nil && !cfg.skipPreCheck {
		return res, fmt.Errorf("kraft: Finalize: reading the nodes' features: %w", err)
	}
	for i, u := range updates {
		res.Features[i] = plan(u, scan.features, cfg)
	}

	var send []int // indexes of updates to send
	var errs []error
	for i, f := range res.Features {
		switch {
		case f.Unchanged:
		case f.Err != nil:
			errs = append(errs, f.Err)
		case f.PreCheck != nil && !cfg.skipPreCheck:
			res.Features[i].Err = f.PreCheck
			errs = append(errs, f.PreCheck)
		default:
			send = append(send, i)
		}
	}
	if len(errs) > 0 || len(send) == 0 {
		return res, errors.Join(errs...)
	}

	req := kmsg.NewPtrUpdateFeaturesRequest()
	req.TimeoutMillis = int32(cfg.requestTimeout.Milliseconds())
	req.ValidateOnly = cfg.validateOnly
	for _, i := range send {
		f := res.Features[i]
		fu := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
		fu.Feature = f.Feature
		fu.MaxVersionLevel = f.To
		fu.UpgradeType = int8(f.Type)
		fu.AllowDowngrade = f.Type == SafeDowngrade || f.Type == UnsafeDowngrade // v0 only
		req.FeatureUpdates = append(req.FeatureUpdates, fu)
	}
	resp, err := c.updateFeatures(ctx, req)
	if err != nil {
		return res, err
	}
	res.Sent, res.APIVersion = true, resp.Version
	if cfg.validateOnly && resp.Version < 1 {
		return res, errors.New("kraft: Finalize: the cluster only speaks UpdateFeatures v0, which has no validate-only mode, and may have applied the update")
	}
	perFeature := map[string]kmsg.UpdateFeaturesResponseResult{}
	for _, r := range resp.Results {
		perFeature[r.Feature] = r
	}
	for _, i := range send {
		f := &res.Features[i]
		code, msg := resp.ErrorCode, resp.ErrorMessage
		if code == 0 {
			if r, ok := perFeature[f.Feature]; ok {
				code, msg = r.ErrorCode, r.ErrorMessage
			}
		}
		if code != 0 {
			m := ""
			if msg != nil {
				m = *msg
			}
			f.Err = classifyUpdateError(f.Feature, f.To, f.Type, code, m)
			errs = append(errs, f.Err)
		}
	}
	return res, errors.Join(errs...)
}

// validateUpdates checks the updates themselves, before any I/O.
func validateUpdates(updates []FeatureUpdate) error {
	if len(updates) == 0 {
		return errors.New("kraft: Finalize: no feature updates")
	}
	seen := map[string]bool{}
	for _, u := range updates {
		switch {
		case u.Feature == "":
			return errors.New("kraft: Finalize: a feature update has no feature name")
		case seen[u.Feature]:
			return fmt.Errorf("kraft: Finalize: %s is updated twice", u.Feature)
		case u.Level < 0:
			return fmt.Errorf("%w: %s level %d is negative", ErrInvalidUpdate, u.Feature, u.Level)
		case u.Type < UpgradeAuto || u.Type > UnsafeDowngrade:
			return fmt.Errorf("%w: %s: unknown upgrade type %d", ErrInvalidUpdate, u.Feature, u.Type)
		}
		seen[u.Feature] = true
	}
	return nil
}

// plan decides how to send one update and runs the pre-checks on it. No
// I/O: fs is what the nodes said (nil if they could not be asked).
func plan(u FeatureUpdate, fs ClusterFeatures, cfg finalizeConfig) FeatureResult {
	f := FeatureResult{Feature: u.Feature, From: -1, To: u.Level, Type: u.Type}
	from, _, known := fs.Finalized(u.Feature)
	if known {
		f.From = from
	}
	if f.Type == UpgradeAuto {
		switch {
		case !known:
			// Not even SkipPreCheck sends a guess.
			f.PreCheck = fmt.Errorf("%w: the finalized level of %s could not be read from any node, so Finalize cannot choose between upgrade and downgrade: set FeatureUpdate.Type", ErrUnverified, u.Feature)
			f.Err = f.PreCheck
			return f
		case u.Level == from:
			f.Unchanged = true
			return f
		case u.Level > from:
			f.Type = Upgrade
		default:
			f.Type = SafeDowngrade
		}
	}
	var errs []error
	if u.Feature == compat.FeatureMetadataVersion && u.Level < 1 {
		errs = append(errs, fmt.Errorf("%w: metadata.version cannot be disabled (level %d)", ErrInvalidUpdate, u.Level))
	}
	if known && f.To < f.From {
		if f.Type == Upgrade {
			errs = append(errs, fmt.Errorf("%w: %s %s is below the finalized %s: send it as a downgrade", ErrInvalidUpdate, u.Feature, LevelName(u.Feature, f.To), LevelName(u.Feature, f.From)))
		} else if err := checkDowngrade(u.Feature, f.From, f.To); err != nil {
			if _, ok := errors.AsType[*compat.DowngradeError](err); ok && cfg.allowUnsafeDowngrade {
				f.Type = UnsafeDowngrade
			} else {
				errs = append(errs, err)
			}
		}
	}
	if known && f.To > f.From && f.Type != Upgrade {
		errs = append(errs, fmt.Errorf("%w: %s %s is above the finalized %s: send it as an upgrade", ErrInvalidUpdate, u.Feature, LevelName(u.Feature, f.To), LevelName(u.Feature, f.From)))
	}
	if u.Feature == compat.FeatureKRaftVersion && f.Type == Upgrade {
		errs = append(errs, checkKRaftVersionUpgrade(fs)...)
	}
	if fs != nil {
		if err := fs.CheckSupport(u.Feature, u.Level); err != nil {
			errs = append(errs, err)
		}
	} else {
		errs = append(errs, fmt.Errorf("%w: the nodes' features could not be read", ErrUnverified))
	}
	f.PreCheck = errors.Join(errs...)
	return f
}

// updateFeatures sends the request to the active controller: through the
// client's routing (a broker forwards it) or, when the client is seeded
// with controllers, to the seed that leads the quorum. NOT_CONTROLLER
// (the leader moved) is retried until the request timeout.
func (c *cluster) updateFeatures(ctx context.Context, req *kmsg.UpdateFeaturesRequest) (*kmsg.UpdateFeaturesResponse, error) {
	// Kafka may use all of TimeoutMillis (the request timeout) before it
	// answers REQUEST_TIMED_OUT; leave room to read that answer.
	wait := c.cfg.requestTimeout + 5*time.Second
	ctx, cancel := context.WithTimeoutCause(ctx, wait,
		fmt.Errorf("kraft: UpdateFeatures not answered by the active controller within %v", wait))
	defer cancel()
	var out *kmsg.UpdateFeaturesResponse
	var last, final error
	err := poll.Every(ctx, c.cfg.pollInterval, func(ctx context.Context) bool { // the leader moved: find it again after a short pause
		var resp kmsg.Response
		var err error
		if c.viaControllers {
			var ep endpoint
			if _, ep, err = c.describeQuorum(ctx); err == nil {
				resp, err = ep.b.Request(ctx, req)
			}
		} else {
			resp, err = c.cl.Request(ctx, req)
		}
		if err == nil {
			r := resp.(*kmsg.UpdateFeaturesResponse)
			if r.ErrorCode != kerr.NotController.Code {
				out = r
				return true
			}
			err = kerr.NotController
		}
		last = err
		if ctx.Err() == nil && !c.viaControllers && !errors.Is(err, kerr.NotController) {
			final = fmt.Errorf("kraft: UpdateFeatures: %w", err)
			return true
		}
		return false
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("kraft: UpdateFeatures: %w (last error: %v)", err, last)
	case final != nil:
		return nil, final
	}
	return out, nil
}

// kraftVersionUpgradeMinMV is 4.1-IV1, the latest production
// metadata.version of Kafka 4.1: a node that supports it runs 4.1 or newer
// (a 4.0 node with unstable versions enabled reaches 4.1-IV0 at most).
const kraftVersionUpgradeMinMV = 27

// checkKRaftVersionUpgrade refuses a kraft.version upgrade unless every
// node runs Kafka 4.1+, the first release that turns a static quorum into a
// dynamic one (KAFKA-16538). Kafka 3.9 accepts the update but only records
// the level: ApiVersions then reports kraft.version 1 finalized while the
// quorum stays static (observed with 3.9.2).
func checkKRaftVersionUpgrade(fs ClusterFeatures) []error {
	var errs []error
	for _, f := range fs.Sorted() {
		if f.Err != nil {
			continue // CheckSupport reports it
		}
		if r := f.Supported[compat.FeatureMetadataVersion]; r.Max < kraftVersionUpgradeMinMV {
			errs = append(errs, fmt.Errorf("%w: upgrading kraft.version needs Kafka 4.1 or newer on every node (KAFKA-16538), and %v supports metadata.version up to %s only; Kafka 3.9 would accept the update and report the level without making the quorum dynamic",
				ErrInvalidUpdate, f.NodeRef, LevelName(compat.FeatureMetadataVersion, r.Max)))
		}
	}
	return errs
}
