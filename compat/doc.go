// Package compat is kupgrade's model of Kafka compatibility: pure functions
// and tables, no I/O.
//
// It answers, per Kafka release from 0.8.0 to 4.4.0:
//
//   - what a release is and how releases order ([Release], [ParseRelease],
//     [Releases], [IsKnown], [LatestPatch]);
//   - which inter.broker.protocol.version / metadata.version values exist,
//     what each means and how the release reads a version string
//     ([MetadataVersion], [MetadataVersions], [ParseMetadataVersion],
//     [LookupMetadataVersion], [UnstableMetadataVersions]);
//   - what a node of a release advertises and what a fresh cluster of it
//     finalizes ([LatestProduction], [SupportedMetadataVersions],
//     [FinalizableMetadataVersions], [SupportedFeatures],
//     [DefaultFeatureLevels], [ReleaseVersionLevels]);
//     these are the questions a real broker answers in ApiVersions v4, and
//     what a cross-check against real brokers compares;
//   - the KRaft features other than metadata.version ([Features],
//     [ProductionMaxLevel], [DefaultFeatureLevel], [CheckFeatureUpdate]);
//   - log.message.format.version rules ([ParseMessageFormat],
//     [CheckMessageFormat], [MessageFormatIgnored], [AdviseMessageFormat]);
//   - downgrades ([SafeDowngradeFloor], [CanDowngrade]);
//   - how to get a cluster from its current [State] to a target release
//     ([Route], which returns a [RoutePlan]: ordered [Hop] values, each a list
//     of [Action] values that say what to pin, raise and finalize, and whether
//     it can be undone);
//   - whether clients survive 4.x's removal of old protocol versions
//     (KIP-896: [CheckClient], [CheckClientAPIVersions],
//     [MinimumAPIVersions]).
//
// Unstable metadata versions (above a release's LATEST_PRODUCTION) change
// meaning between releases, so this package describes them as the reading
// release defines them and never plans with them. Every fact names its source
// in a comment next to the tables (tables.go, features.go, clients.go).
//
// Everything here is safe for concurrent use: the tables are read-only.
package compat
