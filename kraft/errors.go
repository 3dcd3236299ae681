package kraft

import (
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kupgrade/kupgrade/compat"
)

// Sentinel errors. Every error this package returns for a refusal wraps one
// of them, so callers test the condition with [errors.Is] and read the
// details from the typed error with [errors.AsType].
var (
	// ErrNoLeader reports a quorum without a leader: an election is under
	// way or a majority of voters is down.
	ErrNoLeader = errors.New("kraft: the controller quorum has no leader")

	// ErrQuorumUnsafe reports that restarting a controller now could cost
	// the quorum its majority (see [CanRestartController]).
	ErrQuorumUnsafe = errors.New("kraft: restarting the controller is not safe now")

	// ErrUnsupportedLevel reports a feature level that some node does not
	// support. Upgrade that node's software first.
	ErrUnsupportedLevel = errors.New("kraft: a node does not support the feature level")

	// ErrUnverified reports a node whose support for a level could not be
	// checked because it did not answer.
	ErrUnverified = errors.New("kraft: could not verify that every node supports the feature level")

	// ErrUnsafeDowngrade reports a metadata.version downgrade that would
	// cross a level that changed the metadata format. Kafka refuses it as a
	// safe downgrade, and every release so far (through 4.x) also refuses
	// the unsafe (lossy) one, so there is no way down past that level.
	ErrUnsafeDowngrade = errors.New("kraft: downgrade would lose metadata")

	// ErrInvalidUpdate reports a feature update that Kafka (or this
	// package, before sending) rejects as invalid: a negative level, a
	// downgrade sent as an upgrade, kraft.version downgrades, a level below
	// the minimum, an update during a ZooKeeper migration.
	ErrInvalidUpdate = errors.New("kraft: invalid feature update")

	// ErrNotAuthorized reports that the client's principal may not change
	// features (it needs ALTER on the CLUSTER resource).
	ErrNotAuthorized = errors.New("kraft: not authorized to update features")

	// ErrUpdateFailed reports that the controller accepted the update but
	// failed to apply it (FEATURE_UPDATE_FAILED), or failed for a reason
	// this package does not classify further.
	ErrUpdateFailed = errors.New("kraft: feature update failed")
)

// An UnsupportedLevelError reports a node that does not support a feature
// level. It unwraps to [ErrUnsupportedLevel].
type UnsupportedLevelError struct {
	Feature string
	Level   int16
	// Node is the node that lacks support; Role says which of its listeners
	// answered (a combined node is asked as a broker and as a controller).
	Node NodeRef
	// Supported is the range the node advertises; Missing is true when the
	// node does not advertise the feature at all.
	Supported compat.LevelRange
	Missing   bool
	// APIVersion is the ApiVersions version the node answered; below 4 a
	// 3.9+ node hides features whose minimum level is 0.
	APIVersion int16
}

// Error says which node lacks which level, what it supports, and what to do.
func (e *UnsupportedLevelError) Error() string {
	have := fmt.Sprintf("it supports %s %s", e.Feature, describeRange(e.Feature, e.Supported))
	if e.Missing {
		have = "it does not advertise " + e.Feature
		if e.APIVersion < 4 {
			have += fmt.Sprintf(" (ApiVersions v%d)", e.APIVersion)
		}
	}
	return fmt.Sprintf("kraft: %v does not support %s %s: %s; upgrade its software to a release that supports the level first",
		e.Node, e.Feature, LevelName(e.Feature, e.Level), have)
}

// Unwrap returns [ErrUnsupportedLevel].
func (e *UnsupportedLevelError) Unwrap() error { return ErrUnsupportedLevel }

// An UnverifiedNodeError reports a node that could not be asked which
// levels it supports. It unwraps to [ErrUnverified] and to the cause.
type UnverifiedNodeError struct {
	Feature string
	Level   int16
	Node    NodeRef
	Err     error
}

// Error names the node and why it could not be asked.
func (e *UnverifiedNodeError) Error() string {
	return fmt.Sprintf("kraft: cannot verify that %v supports %s %s: %v; make it answer, or pass SkipPreCheck to rely on Kafka's own check of registered nodes",
		e.Node, e.Feature, LevelName(e.Feature, e.Level), e.Err)
}

// Unwrap returns [ErrUnverified] and the reason the node did not answer.
func (e *UnverifiedNodeError) Unwrap() []error { return []error{ErrUnverified, e.Err} }

// downgradeError reports a metadata.version downgrade that would cross a
// metadata change, which Kafka refuses: the [*compat.DowngradeError] that says
// which level is in the way, with the feature asked for.
type downgradeError struct {
	feature string
	de      *compat.DowngradeError
}

// Error names the level in the way and the lowest reachable level.
func (e *downgradeError) Error() string {
	name := func(mv compat.MetadataVersion) string { return LevelName(e.feature, mv.Level) }
	return fmt.Sprintf("kraft: refusing to downgrade %s from %s to %s: %s changed the metadata format, so Kafka refuses the safe downgrade and no release implements the unsafe one; the lowest reachable level is %s",
		e.feature, name(e.de.From), name(e.de.To), name(e.de.Blocker), name(e.de.Floor))
}

// Unwrap returns [ErrUnsafeDowngrade] and the [*compat.DowngradeError].
func (e *downgradeError) Unwrap() []error { return []error{ErrUnsafeDowngrade, e.de} }

// An UpdateError is Kafka's refusal of one feature update, turned into a
// sentence that says what to do. It unwraps to one of this package's
// sentinels (Kind) and to the Kafka error ([kerr.InvalidUpdateVersion],
// [kerr.ClusterAuthorizationFailed], …), so both errors.Is checks work.
type UpdateError struct {
	Feature string
	Level   int16
	Type    UpgradeType
	// Kind is the sentinel that classifies the refusal, such as
	// [ErrUnsafeDowngrade] or [ErrUnsupportedLevel].
	Kind error
	// Kafka is the error code Kafka returned, as a [*kerr.Error] when franz-go
	// knows it.
	Kafka error
	// Message is Kafka's error message, verbatim ("" if it sent none).
	Message string
	// Hint says what to do about it.
	Hint string
}

// Error quotes Kafka's refusal and adds the hint.
func (e *UpdateError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kraft: Kafka refused %s %s %s: %v", e.Type, e.Feature, LevelName(e.Feature, e.Level), e.Kafka)
	if e.Message != "" {
		fmt.Fprintf(&b, ": %q", e.Message)
	}
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// Unwrap returns Kind and Kafka.
func (e *UpdateError) Unwrap() []error { return []error{e.Kind, e.Kafka} }

// classifyUpdateError turns an UpdateFeatures error code and message into an
// [*UpdateError]. The messages it recognises come from Kafka's
// FeatureControlManager and QuorumFeatures (3.3 to 4.x).
func classifyUpdateError(feature string, level int16, t UpgradeType, code int16, msg string) *UpdateError {
	kafka := kerr.ErrorForCode(code)
	e := &UpdateError{Feature: feature, Level: level, Type: t, Kafka: kafka, Message: msg, Kind: ErrUpdateFailed}
	lower := strings.ToLower(msg)
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(lower, s) {
				return true
			}
		}
		return false
	}
	switch code {
	case kerr.ClusterAuthorizationFailed.Code:
		e.Kind = ErrNotAuthorized
		e.Hint = "grant the client's principal ALTER on the CLUSTER resource"
	case kerr.FeatureUpdateFailed.Code:
		e.Hint = "the controller could not apply the update; check the active controller's log and retry"
	case kerr.InvalidUpdateVersion.Code, kerr.InvalidRequest.Code:
		e.Kind = ErrInvalidUpdate
		switch {
		case has("unsafe metadata downgrade is not supported"):
			e.Kind = ErrUnsafeDowngrade
			e.Hint = "no Kafka release implements the unsafe metadata.version downgrade; the level cannot be lowered past the last metadata change"
		case has("might delete metadata", "refusing to perform the requested downgrade"):
			e.Kind = ErrUnsafeDowngrade
			e.Hint = "a level between the target and the current one changed the metadata format; choose a target at or above the safe-downgrade floor"
		case has("does not support", "only supports", "has not registered", "not supported by"):
			e.Kind = ErrUnsupportedLevel
			e.Hint = "upgrade every broker and controller to a release that supports the level (and let every controller register) before finalizing"
		case has("can't downgrade to a newer version"):
			e.Hint = "the level is above the finalized one: send it as an upgrade"
		case has("without setting the upgrade type", "can't downgrade the version of this feature"):
			if feature == "kraft.version" {
				e.Hint = "kraft.version can never be downgraded"
			} else {
				e.Hint = "the level is below the finalized one: send it as a safe downgrade"
			}
		case has("zk migration", "zookeeper migration"):
			e.Hint = "finish the ZooKeeper to KRaft migration before changing metadata.version"
		case has("less than", "valid versions are", "unknown metadata.version", "cannot be less than 0"):
			e.Hint = "the level is outside what Kafka accepts for this feature"
		case has("dependenc", "requires"):
			e.Hint = "finalize the features this level depends on first (usually a higher metadata.version)"
		default:
			e.Hint = "Kafka rejected the level; compare it with the levels every node supports"
		}
	case kerr.UnsupportedVersion.Code:
		e.Hint = "the cluster does not support this UpdateFeatures request; features need KRaft (or ZooKeeper mode 2.7+)"
	case kerr.NotController.Code, kerr.RequestTimedOut.Code:
		e.Hint = "the controller moved or timed out while applying the update; check the finalized level, then retry"
	}
	return e
}
