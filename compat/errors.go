package compat

import (
	"errors"
	"fmt"
	"strconv"
)

// Sentinel errors. Every error this package returns wraps one of them, so
// callers can test the condition with [errors.Is] and read the details from
// the typed error with [errors.AsType].
var (
	// ErrInvalidRelease reports a string that is not a Kafka release number.
	ErrInvalidRelease = errors.New("compat: invalid release")

	// ErrUnknownRelease reports a well-formed release that this package has
	// no facts about (a line it does not know, or, without
	// [AllowUnlistedPatch], a patch it does not list).
	ErrUnknownRelease = errors.New("compat: unknown release")

	// ErrInvalidMetadataVersion reports a string that the reading release
	// would reject as inter.broker.protocol.version, log.message.format.version
	// or metadata.version.
	ErrInvalidMetadataVersion = errors.New("compat: invalid metadata version")

	// ErrUnknownMetadataVersion reports a feature level that the reading
	// release does not define, or defines below its supported minimum.
	ErrUnknownMetadataVersion = errors.New("compat: unknown metadata version")

	// ErrUnstableMetadataVersion reports a metadata.version above the reading
	// release's latest production level. Such levels are for testing only and
	// may mean something else in the release that makes them production, so
	// this package never plans with them.
	ErrUnstableMetadataVersion = errors.New("compat: metadata version is not production in this release")

	// ErrNoFeatureVersioning reports a question about KRaft feature levels
	// asked of a release before 3.3, which had no metadata.version feature
	// (KIP-778).
	ErrNoFeatureVersioning = errors.New("compat: release predates KRaft feature versioning (3.3)")

	// ErrUnknownFeature reports a feature name or level this package does not
	// know for the release in question.
	ErrUnknownFeature = errors.New("compat: unknown feature")

	// ErrFeatureDependency reports a feature level whose declared
	// dependencies (for example eligible.leader.replicas.version=1 needs
	// metadata.version 4.0-IV1) are not met.
	ErrFeatureDependency = errors.New("compat: feature dependency not met")

	// ErrFeatureUpdateRefused reports a feature change that the reading
	// release's controller refuses, or accepts without carrying it out:
	// any kraft.version downgrade, or a kraft.version upgrade before 4.1
	// (3.9 and 4.0 accept it but leave the quorum static).
	ErrFeatureUpdateRefused = errors.New("compat: feature update refused")

	// ErrInvalidMessageFormat reports a log.message.format.version that the
	// reading release refuses next to the configured
	// inter.broker.protocol.version.
	ErrInvalidMessageFormat = errors.New("compat: invalid log.message.format.version")

	// ErrRemovedConfig reports a configuration that the reading release no
	// longer has (inter.broker.protocol.version and
	// log.message.format.version were removed in 4.0).
	ErrRemovedConfig = errors.New("compat: configuration removed in this release")

	// ErrNotDowngrade reports a downgrade question whose target is newer than
	// its source.
	ErrNotDowngrade = errors.New("compat: target is newer than source")

	// ErrDowngradePastMetadataChange reports a metadata.version downgrade
	// that would cross a level with didMetadataChange=true. Kafka refuses it
	// as a safe downgrade, and no release through 4.4 implements the unsafe
	// one.
	ErrDowngradePastMetadataChange = errors.New("compat: downgrade would cross a metadata change")

	// ErrDowngradePastIBPV reports a ZooKeeper-mode downgrade after
	// inter.broker.protocol.version was raised beyond what the target
	// release understands. Kafka documents this as impossible.
	ErrDowngradePastIBPV = errors.New("compat: downgrade past a raised inter.broker.protocol.version")

	// ErrUnsupportedRoute reports an upgrade or downgrade that Kafka does not
	// support and that this package cannot split into supported hops.
	ErrUnsupportedRoute = errors.New("compat: unsupported route")

	// ErrIncompleteState reports a [State] that lacks a fact the requested
	// answer depends on, or whose facts contradict each other.
	ErrIncompleteState = errors.New("compat: incomplete or inconsistent cluster state")
)

// A ReleaseError reports why a string is not a Kafka release, or why a
// release is not one this package knows. It unwraps to [ErrInvalidRelease] or
// [ErrUnknownRelease].
type ReleaseError struct {
	Input  string // the string as given, or the release's String
	Reason string // why it was refused
	Err    error  // ErrInvalidRelease or ErrUnknownRelease
}

// Error implements the error interface.
func (e *ReleaseError) Error() string {
	what := "invalid release"
	if e.Err == ErrUnknownRelease {
		what = "unknown release"
	}
	return fmt.Sprintf("compat: %s %s: %s", what, strconv.Quote(e.Input), e.Reason)
}

// Unwrap returns the sentinel.
func (e *ReleaseError) Unwrap() error { return e.Err }

// A MetadataVersionError reports why a metadata.version (or IBPV/LMFV string,
// or feature level) was refused by a reading release. It unwraps to
// [ErrInvalidMetadataVersion], [ErrUnknownMetadataVersion],
// [ErrUnstableMetadataVersion], [ErrNoFeatureVersioning] or [ErrUnknownRelease].
type MetadataVersionError struct {
	Input  string  // the string or "level N" that was asked about
	Reader Release // the release whose rules were applied
	Reason string  // why it was refused
	// Unstable is the reader's own definition of the level when Err is
	// ErrUnstableMetadataVersion, for display only; its zero value otherwise.
	Unstable MetadataVersion
	Err      error
}

// Error implements the error interface.
func (e *MetadataVersionError) Error() string {
	return fmt.Sprintf("compat: metadata version %s read by %v: %s", strconv.Quote(e.Input), e.Reader, e.Reason)
}

// Unwrap returns the sentinel.
func (e *MetadataVersionError) Unwrap() error { return e.Err }

// A DowngradeError explains why a metadata.version downgrade cannot be done
// safely. It unwraps to [ErrDowngradePastMetadataChange] or [ErrNotDowngrade].
type DowngradeError struct {
	From, To MetadataVersion
	// Blocker is the first level below From (walking down) whose
	// didMetadataChange is true and that lies above To; the zero value when
	// Err is ErrNotDowngrade.
	Blocker MetadataVersion
	// Floor is the lowest level From can be safely downgraded to.
	Floor MetadataVersion
	Err   error
}

// Error implements the error interface.
func (e *DowngradeError) Error() string {
	if e.Err == ErrNotDowngrade {
		return fmt.Sprintf("compat: %v to %v is not a downgrade", e.From, e.To)
	}
	return fmt.Sprintf("compat: cannot downgrade metadata.version %v to %v: %v (level %d) changed the metadata format, and Kafka refuses downgrades across such a level; the lowest safe target is %v",
		e.From, e.To, e.Blocker, e.Blocker.Level, e.Floor)
}

// Unwrap returns the sentinel.
func (e *DowngradeError) Unwrap() error { return e.Err }

// A FeatureError reports a feature level that is unknown, unsupported by a
// release, or whose dependencies are not met. It unwraps to
// [ErrUnknownFeature], [ErrFeatureDependency] or [ErrNoFeatureVersioning].
type FeatureError struct {
	Feature string
	Level   int16
	Reason  string
	Err     error
}

// Error implements the error interface.
func (e *FeatureError) Error() string {
	return fmt.Sprintf("compat: %s=%d: %s", e.Feature, e.Level, e.Reason)
}

// Unwrap returns the sentinel.
func (e *FeatureError) Unwrap() error { return e.Err }

// A MessageFormatError reports a log.message.format.version that the reading
// release refuses. It unwraps to [ErrInvalidMessageFormat] or
// [ErrRemovedConfig].
type MessageFormatError struct {
	IBPV, LMFV MetadataVersion
	Reader     Release
	Reason     string
	Err        error
}

// Error implements the error interface.
func (e *MessageFormatError) Error() string {
	return fmt.Sprintf("compat: log.message.format.version %v with inter.broker.protocol.version %v on %v: %s", e.LMFV, e.IBPV, e.Reader, e.Reason)
}

// Unwrap returns the sentinel.
func (e *MessageFormatError) Unwrap() error { return e.Err }

// A RouteError explains why [Route] cannot plan the requested change, and
// what to do instead. It unwraps to the sentinel that names the condition
// (for example [ErrDowngradePastMetadataChange] or [ErrUnsupportedRoute]).
type RouteError struct {
	Reason     string // what is impossible, in terms of the cluster's facts
	Suggestion string // what the operator can do instead; may be empty
	Err        error
}

// Error implements the error interface.
func (e *RouteError) Error() string {
	if e.Suggestion == "" {
		return "compat: no route: " + e.Reason
	}
	return "compat: no route: " + e.Reason + "; instead: " + e.Suggestion
}

// Unwrap returns the sentinel.
func (e *RouteError) Unwrap() error { return e.Err }
