package compat

import (
	"fmt"
	"strconv"
)

// SafeDowngradeFloor returns the lowest metadata.version that a cluster
// finalized at mv can reach with a safe (lossless) downgrade: Kafka refuses a
// downgrade if any level above the target, up to and including mv, has
// didMetadataChange=true (MetadataVersion.checkIfMetadataChanged), and never
// goes below 3.3-IV0. From 4.2-IV1 (29) the floor is 4.0-IV1 (23); from
// 3.9-IV0 (21) it is 3.7-IV2 (17).
//
// For a ZooKeeper-only version (level -1), a pre-3.3 KRaft level (1–3), an
// unstable or an unknown level, the floor is mv itself: no downgrade is
// possible or known to be safe.
func SafeDowngradeFloor(mv MetadataVersion) MetadataVersion {
	if mv.Unstable || mv.Level < minBootstrapMV.Level {
		return mv
	}
	if _, ok := mvLevel(mv.Level); !ok {
		return mv
	}
	floor := minBootstrapMV
	for l := mv.Level; l >= minBootstrapMV.Level; l-- {
		row, _ := mvLevel(l)
		if row.DidMetadataChange {
			floor = row
			break
		}
	}
	return floor
}

// CanDowngrade reports whether metadata.version can be safely downgraded
// from one production KRaft level to a lower one. It returns nil if so, and
// otherwise an error that says why:
//
//   - a *[DowngradeError] wrapping [ErrDowngradePastMetadataChange] whose
//     Blocker is the first level (walking down from from) with
//     didMetadataChange=true that lies above to, and whose Floor is
//     [SafeDowngradeFloor](from);
//   - a *[DowngradeError] wrapping [ErrNotDowngrade] if to is newer than from;
//   - a *[MetadataVersionError] for ZooKeeper-only, pre-3.3, unstable or
//     unknown levels (wrapping [ErrUnknownMetadataVersion] or
//     [ErrUnstableMetadataVersion]).
//
// No release through 4.4 implements the unsafe (lossy) downgrade, so a
// blocked downgrade has no workaround within Kafka.
func CanDowngrade(from, to MetadataVersion) error {
	for _, mv := range []MetadataVersion{from, to} {
		if mv.Unstable {
			return &MetadataVersionError{Input: mv.Name, Reason: "unstable levels are not downgraded by plan", Err: ErrUnstableMetadataVersion}
		}
		if _, ok := mvLevel(mv.Level); !ok {
			return &MetadataVersionError{Input: mv.Name, Reason: "not a KRaft metadata.version level (" + strconv.Itoa(int(mv.Level)) + ")", Err: ErrUnknownMetadataVersion}
		}
	}
	if from.Level == to.Level {
		return nil
	}
	if to.Level > from.Level {
		return &DowngradeError{From: from, To: to, Floor: SafeDowngradeFloor(from), Err: ErrNotDowngrade}
	}
	if to.Level < minBootstrapMV.Level {
		return &MetadataVersionError{Input: to.Name, Err: ErrUnknownMetadataVersion,
			Reason: fmt.Sprintf("Kafka never sets metadata.version below %v (level %d)", minBootstrapMV, minBootstrapMV.Level)}
	}
	for l := from.Level; l > to.Level; l-- {
		row, _ := mvLevel(l)
		if row.DidMetadataChange {
			return &DowngradeError{From: from, To: to, Blocker: row, Floor: SafeDowngradeFloor(from), Err: ErrDowngradePastMetadataChange}
		}
	}
	return nil
}
