package kraft

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/kupgrade/kupgrade/compat"
)

// LevelName renders a feature level for people: metadata.version levels
// with their release name, "3.9-IV0 (21)", when [compat] knows the level as
// production; other levels, and unknown metadata.version levels, as the
// number alone.
func LevelName(feature string, level int16) string {
	if feature == compat.FeatureMetadataVersion {
		if mv, ok := metadataVersion(level); ok {
			return fmt.Sprintf("%s (%d)", mv.Name, level)
		}
		return "level " + strconv.Itoa(int(level))
	}
	return strconv.Itoa(int(level))
}

// describeRange renders a supported range: "3.0-IV1 (1) to 3.9-IV0 (21)"
// or "0-1".
func describeRange(feature string, r compat.LevelRange) string {
	if feature == compat.FeatureMetadataVersion {
		return LevelName(feature, r.Min) + " to " + LevelName(feature, r.Max)
	}
	return fmt.Sprintf("%d-%d", r.Min, r.Max)
}

// metadataVersion returns the production metadata.version with a KRaft
// level. Production levels never change meaning, so no release is needed
// to name them.
func metadataVersion(level int16) (compat.MetadataVersion, bool) {
	if level < 1 {
		return compat.MetadataVersion{}, false
	}
	for _, mv := range compat.MetadataVersions() {
		if mv.Level == level {
			return mv, true
		}
	}
	return compat.MetadataVersion{}, false
}

// checkDowngrade checks a downgrade of feature from one level to a lower
// one before it is sent. For metadata.version it asks compat whether a
// level in between changed the metadata format; kraft.version can never be
// downgraded; other features are safe to downgrade (Kafka's controller has
// no metadata-change notion for them).
func checkDowngrade(feature string, from, to int16) error {
	switch feature {
	case compat.FeatureKRaftVersion:
		return fmt.Errorf("%w: kraft.version cannot be downgraded (from %d to %d): Kafka refuses it", ErrInvalidUpdate, from, to)
	case compat.FeatureMetadataVersion:
	default:
		return nil
	}
	fromMV, ok := metadataVersion(from)
	if !ok {
		return fmt.Errorf("%w: cannot tell whether downgrading metadata.version from level %d crosses a metadata change: the level is unknown to this version of kupgrade; pass SkipPreCheck to let Kafka decide", ErrUnverified, from)
	}
	toMV, ok := metadataVersion(to)
	if !ok {
		return fmt.Errorf("%w: metadata.version level %d is not a known production level", ErrInvalidUpdate, to)
	}
	err := compat.CanDowngrade(fromMV, toMV)
	if err == nil {
		return nil
	}
	if de, ok := errors.AsType[*compat.DowngradeError](err); ok && errors.Is(err, compat.ErrDowngradePastMetadataChange) {
		return &downgradeError{feature: feature, de: de}
	}
	return fmt.Errorf("%w: %w", ErrInvalidUpdate, err)
}
