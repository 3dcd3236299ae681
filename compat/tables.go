package compat

// This file holds the facts. Everything else in the package derives from it.
//
// Sources, per fact:
//   - MetadataVersion rows 0.8.0 … 3.3-IV2: Apache Kafka 3.9.1,
//     server-common/src/main/java/org/apache/kafka/server/common/MetadataVersion.java.
//   - Rows 3.3-IV3 … 4.2-IV1 (levels 7–29): Apache Kafka 4.2.1, same file
//     (byte-identical in 4.2.0-rc1 and 4.2.1).
//   - Row 4.3-IV0 (level 30, didMetadataChange=true): Apache Kafka 4.3.1
//     MetadataVersion.java and the 4.3 upgrade notes (docs/getting-started/upgrade.md),
//     which list IBP_4_3_IV0(30, "4.3", "IV0", true). In 4.2.x the same level
//     was unstable with didMetadataChange=false.
//   - Rows 4.4-IV0 … 4.4-IV2 (levels 31–33): the 4.4 MetadataVersion.java
//     (LATEST_PRODUCTION = IBP_4_4_IV2 after the 4.4.0 RC0 fix, apache/kafka
//     PR #23235), cross-checked with franz-go v1.22.2 pkg/kversion, whose
//     V4_4_0 finalizes metadata.version=33.
//   - Per-line LATEST_PRODUCTION, unstable levels and minimums: section 1.3 of
//     the kupgrade Kafka reference (tags 3.3.0 … 4.2.1), 4.3.1 source (LATEST_PRODUCTION
//     = IBP_4_3_IV0, IBP_4_4_IV0 defined but unstable), 4.4 source (IBP_4_5_IV0 unstable).
//   - Feature levels: Feature.java and the *Version.java enums (4.2.1), plus
//     ShareVersion SV_2 from apache/kafka PR #21994 (KAFKA-20415, bootstraps at
//     4.4-IV0) made production by PR #22803 (KAFKA-20793) for 4.4.
//   - Checked against the published jars (kafka-server-common of 3.7.2, 3.8.1,
//     3.9.2, 4.0.2, 4.1.2, 4.2.1, 4.3.1 and 4.4.0, read with javap; 4.2.2 and
//     4.3.2 declare the same MetadataVersion constants as 4.2.1 and 4.3.1): every
//     MetadataVersion constant of each line with its level and
//     didMetadataChange, each line's LATEST_PRODUCTION, and every *Version
//     enum's levels, bootstrap versions, dependencies and LATEST_PRODUCTION.
//     This corrected the unstable rows of 4.0, 4.1 and 4.3, whose
//     didMetadataChange had been assumed true: it is false in each.
//   - Checked against real nodes of 3.7.2, 3.8.1, 3.9.2, 4.0.2, 4.1.2, 4.2.2,
//     4.3.2 and 4.4.0 by TestCompatMatchesRealKafka
//     (kafka_test.go): ApiVersions, validate-only UpdateFeatures, unstable
//     feature versions and, on 4.x, kafka-features version-mapping.

// mvRow is one MetadataVersion constant with the meaning it has in the
// release that made it production.
type mvRow struct {
	name  string
	level int16
	dmc   bool
	note  string
}

// mvTable lists every production MetadataVersion in declaration order (which
// is Kafka's ordering). Levels are contiguous from 3.0-IV1 (level 1) on.
var mvTable = []mvRow{
	{"0.8.0", -1, true, "ZooKeeper-era protocol of 0.8.0"},
	{"0.8.1", -1, true, "ZooKeeper-era protocol of 0.8.1"},
	{"0.8.2", -1, true, "ZooKeeper-era protocol of 0.8.2"},
	{"0.9.0", -1, true, "ZooKeeper-era protocol of 0.9.0"},
	{"0.10.0-IV0", -1, true, "message format V1 with timestamps (KIP-31/32)"},
	{"0.10.0-IV1", -1, true, "rack awareness (KIP-36) and SASL handshake (KIP-43)"},
	{"0.10.1-IV0", -1, true, "JoinGroup with rebalance timeout (KIP-62)"},
	{"0.10.1-IV1", -1, true, "fetch response size limit (KIP-74)"},
	{"0.10.1-IV2", -1, true, "ListOffsets v1 (KIP-79)"},
	{"0.10.2-IV0", -1, true, "UpdateMetadata v3 (KIP-103)"},
	{"0.11.0-IV0", -1, true, "message format V2, idempotent and transactional producer (KIP-98)"},
	{"0.11.0-IV1", -1, true, "DeleteRecords v0 and Fetch v4 (KIP-107)"},
	{"0.11.0-IV2", -1, true, "leader epoch in the replica fetcher (KIP-101)"},
	{"1.0-IV0", -1, true, "LeaderAndIsr v1, UpdateMetadata v4, Fetch v6 (KIP-112)"},
	{"1.1-IV0", -1, true, "DeleteGroups v0 (KIP-229), incremental fetch (KIP-227)"},
	{"2.0-IV0", -1, true, "OffsetsForLeaderEpoch v1 (KIP-279)"},
	{"2.0-IV1", -1, true, "quota communication request bumps (KIP-219)"},
	{"2.1-IV0", -1, true, "group offset and metadata schemas v2 (KIP-211)"},
	{"2.1-IV1", -1, true, "Fetch, OffsetsForLeaderEpoch and ListOffsets schemas (KIP-320)"},
	{"2.1-IV2", -1, true, "ZStandard compression (KIP-110)"},
	{"2.2-IV0", -1, true, "broker generation (KIP-380)"},
	{"2.2-IV1", -1, true, "ListOffsets error for a lagging new leader (KIP-207)"},
	{"2.3-IV0", -1, true, "static group membership (KIP-345)"},
	{"2.3-IV1", -1, true, "rack id in Fetch (KIP-392)"},
	{"2.4-IV0", -1, true, "adding and removing replicas in LeaderAndIsr (KIP-455)"},
	{"2.4-IV1", -1, true, "flexible versions in inter-broker APIs (KIP-482)"},
	{"2.5-IV0", -1, true, "no new APIs, same as 2.4-IV1"},
	{"2.6-IV0", -1, true, "StopReplica v3 with leader epochs (KIP-570)"},
	{"2.7-IV0", -1, true, "feature versioning (KIP-584)"},
	{"2.7-IV1", -1, true, "Fetch for the Raft protocol (KIP-595)"},
	{"2.7-IV2", -1, true, "AlterPartition (KIP-497)"},
	{"2.8-IV0", -1, true, "flexible ListOffsets, WriteTxnMarkers, OffsetsForLeaderEpoch; topic ids (KIP-516)"},
	{"2.8-IV1", -1, true, "topic ids in LeaderAndIsr and UpdateMetadata (KIP-516)"},
	{"3.0-IV0", -1, true, "AllocateProducerIds (KIP-730)"},
	{"3.0-IV1", 1, true, "ListOffsets by max timestamp (KIP-734); message format fixed at 3.0 (KIP-724)"},
	{"3.1-IV0", 2, false, "topic ids in Fetch (KIP-516)"},
	{"3.2-IV0", 3, true, "leader recovery after unclean election (KIP-704)"},
	{"3.3-IV0", 4, false, "metadata.version is a feature (KIP-778)"},
	{"3.3-IV1", 5, true, "NoopRecord in the metadata log (KIP-835)"},
	{"3.3-IV2", 6, true, "BrokerRegistrationChangeRecord replaces fence/unfence records"},
	{"3.3-IV3", 7, true, "InControlledShutdown broker state (KIP-841); the 4.x minimum"},
	{"3.4-IV0", 8, true, "ZooKeeper to KRaft migration records (KIP-866)"},
	{"3.5-IV0", 9, false, "tiered storage (KIP-405)"},
	{"3.5-IV1", 10, false, "replica epoch in Fetch (KIP-903)"},
	{"3.5-IV2", 11, true, "SCRAM credentials in KRaft"},
	{"3.6-IV0", 12, false, "no leader epoch bump when the controller shrinks the ISR (KAFKA-15021)"},
	{"3.6-IV1", 13, true, "metadata transactions (KIP-868)"},
	{"3.6-IV2", 14, true, "delegation tokens in KRaft"},
	{"3.7-IV0", 15, true, "controller registration (KIP-919)"},
	{"3.7-IV1", 16, false, "reserved"},
	{"3.7-IV2", 17, true, "JBOD in KRaft (KIP-858)"},
	{"3.7-IV3", 18, false, "reserved (was ELR, moved to 4.0-IV1)"},
	{"3.7-IV4", 19, false, "replica fetcher Fetch v16 (KIP-951)"},
	{"3.8-IV0", 20, false, "3.8 release marker"},
	{"3.9-IV0", 21, false, "ListOffsets v9 (KIP-1005)"},
	{"4.0-IV0", 22, false, "bootstraps group.version 1 (KIP-848)"},
	{"4.0-IV1", 23, true, "ELR records in the metadata log (KIP-966)"},
	{"4.0-IV2", 24, false, "bootstraps transaction.version 1 and 2 (KIP-890)"},
	{"4.0-IV3", 25, false, "async remote ListOffsets (KIP-1075)"},
	{"4.1-IV0", 26, false, "ELR on by default for new clusters (KIP-966)"},
	{"4.1-IV1", 27, false, "replica fetcher Fetch v18 (KIP-1166)"},
	{"4.2-IV0", 28, false, "share groups on by default for new clusters (KIP-932)"},
	{"4.2-IV1", 29, false, "streams groups on by default for new clusters (KIP-1071)"},
	{"4.3-IV0", 30, true, "cordoned log directories in broker registrations (KIP-1066)"},
	{"4.4-IV0", 31, false, "dead-letter queues for share groups, bootstraps share.version 2 (KIP-1191)"},
	{"4.4-IV1", 32, true, "CIDR host patterns in ACLs (KIP-1276)"},
	{"4.4-IV2", 33, true, "controller unregistration (KIP-1312)"},
}

// unstableRow describes a level above a line's LATEST_PRODUCTION, as that
// line's source defines it, didMetadataChange included. Nothing is planned
// with these.
type unstableRow = mvRow

// lineFacts holds what this package knows about one release line.
type lineFacts struct {
	line    Release
	patches []int // listed patch numbers (the fourth number for 0.x lines)
	// latest names the line's LATEST_PRODUCTION (3.7+) or, before 3.7, the
	// newest constant of its enum, which was then the default.
	latest   string
	unstable []unstableRow
	// zooKeeper: the line runs in ZooKeeper mode (everything up to 3.9).
	zooKeeper bool
	// kraft: 0 none, 1 early access/preview (2.8–3.2), 2 production (3.3+).
	kraft int
	// minMV is the lowest metadata.version the line advertises in
	// ApiVersions; 0 when the line has no metadata.version feature.
	minMV int16
	// minFinalize is the lowest metadata.version UpdateFeatures accepts.
	minFinalize int16
	// features maps each non-metadata.version feature the line registers as
	// production to its LATEST_PRODUCTION level. Only levels above 0 are
	// advertised (QuorumFeatures, BrokerFeatures).
	features map[string]int16
	// parse selects fromVersionString's rules.
	parse parseRules
}

// parseRules selects how a line's MetadataVersion.fromVersionString reads a
// string.
type parseRules int

const (
	// parseLegacy: ≤ 3.6. Three segments for "0.", else two; the short form
	// maps to the newest constant of the line.
	parseLegacy parseRules = iota
	// parseProductionShort: 3.7–3.9. As legacy, but the short form maps only
	// to production constants; unstable full names still parse.
	parseProductionShort
	// parseTwoSegments: 4.0–4.1. Always two segments, nothing below 3.3-IV3;
	// unstable full names parse.
	parseTwoSegments
	// parseRejectUnstable: 4.2+. As 4.0, but non-production versions are
	// refused unless unstable.feature.versions.enable is set (KAFKA-19544).
	parseRejectUnstable
)

func (l *lineFacts) release(p int) Release {
	if l.line.Major == 0 {
		return Release{Minor: l.line.Minor, Patch: l.line.Patch, Fix: p}
	}
	return Release{Major: l.line.Major, Minor: l.line.Minor, Patch: p}
}

func (l *lineFacts) patchOf(r Release) int {
	if l.line.Major == 0 {
		return r.Fix
	}
	return r.Patch
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// zk returns the facts of a ZooKeeper-only line.
func zk(line Release, latest string, patches []int) lineFacts {
	return lineFacts{line: line, patches: patches, latest: latest, zooKeeper: true, parse: parseLegacy}
}

// features per line. Levels from Feature.java / *Version.java; see
// featureTable for bootstrap versions and dependencies.
var (
	feat39 = map[string]int16{FeatureKRaftVersion: 1, FeatureTransactionVersion: 0} // TV_1/TV_2 bootstrap at unstable 4.0-IV0 in 3.9
	feat40 = map[string]int16{FeatureKRaftVersion: 1, FeatureTransactionVersion: 2, FeatureGroupVersion: 1, FeatureEligibleLeaderReplicasVersion: 1}
	feat41 = map[string]int16{FeatureKRaftVersion: 1, FeatureTransactionVersion: 2, FeatureGroupVersion: 1, FeatureEligibleLeaderReplicasVersion: 1, FeatureShareVersion: 1, FeatureStreamsVersion: 0}
	feat42 = map[string]int16{FeatureKRaftVersion: 1, FeatureTransactionVersion: 2, FeatureGroupVersion: 1, FeatureEligibleLeaderReplicasVersion: 1, FeatureShareVersion: 1, FeatureStreamsVersion: 1}
	feat44 = map[string]int16{FeatureKRaftVersion: 1, FeatureTransactionVersion: 2, FeatureGroupVersion: 1, FeatureEligibleLeaderReplicasVersion: 1, FeatureShareVersion: 2, FeatureStreamsVersion: 1}
)

// lines lists every known release line, oldest first.
var lines = []lineFacts{
	zk(v0(8, 0), "0.8.0", []int{0}),
	zk(v0(8, 1), "0.8.1", []int{0, 1}),
	zk(v0(8, 2), "0.8.2", seq(3)),
	zk(v0(9, 0), "0.9.0", seq(2)),
	zk(v0(10, 0), "0.10.0-IV1", seq(2)),
	zk(v0(10, 1), "0.10.1-IV2", seq(2)),
	zk(v0(10, 2), "0.10.2-IV0", seq(3)),
	zk(v0(11, 0), "0.11.0-IV2", seq(4)),
	zk(v(1, 0), "1.0-IV0", seq(3)),
	zk(v(1, 1), "1.1-IV0", seq(2)),
	zk(v(2, 0), "2.0-IV1", seq(2)),
	zk(v(2, 1), "2.1-IV2", seq(2)),
	zk(v(2, 2), "2.2-IV1", seq(3)),
	zk(v(2, 3), "2.3-IV1", seq(2)),
	zk(v(2, 4), "2.4-IV1", seq(2)),
	zk(v(2, 5), "2.5-IV0", seq(2)),
	zk(v(2, 6), "2.6-IV0", seq(4)),
	zk(v(2, 7), "2.7-IV2", seq(3)),
	{line: v(2, 8), patches: seq(3), latest: "2.8-IV1", zooKeeper: true, kraft: 1, parse: parseLegacy},
	{line: v(3, 0), patches: seq(3), latest: "3.0-IV1", zooKeeper: true, kraft: 1, parse: parseLegacy},
	{line: v(3, 1), patches: seq(3), latest: "3.1-IV0", zooKeeper: true, kraft: 1, parse: parseLegacy},
	{line: v(3, 2), patches: seq(4), latest: "3.2-IV0", zooKeeper: true, kraft: 1, parse: parseLegacy},
	// 3.3–3.6: no LATEST_PRODUCTION yet; latest() was the last constant.
	// MINIMUM_KRAFT_VERSION = 3.0-IV1 (advertised minimum),
	// MINIMUM_BOOTSTRAP_VERSION = 3.3-IV0 (UpdateFeatures minimum).
	{line: v(3, 3), patches: seq(3), latest: "3.3-IV3", zooKeeper: true, kraft: 2, minMV: 1, minFinalize: 4, parse: parseLegacy},
	{line: v(3, 4), patches: seq(2), latest: "3.4-IV0", zooKeeper: true, kraft: 2, minMV: 1, minFinalize: 4, parse: parseLegacy},
	{line: v(3, 5), patches: seq(3), latest: "3.5-IV2", zooKeeper: true, kraft: 2, minMV: 1, minFinalize: 4, parse: parseLegacy},
	{line: v(3, 6), patches: seq(3), latest: "3.6-IV2", zooKeeper: true, kraft: 2, minMV: 1, minFinalize: 4, parse: parseLegacy},
	// 3.7.x: LATEST_PRODUCTION = IBP_3_7_IV4; IBP_3_8_IV0(20, …, true) was
	// then the unstable ELR version.
	{line: v(3, 7), patches: seq(3), latest: "3.7-IV4", zooKeeper: true, kraft: 2, minMV: 1, minFinalize: 4, parse: parseProductionShort,
		unstable: []unstableRow{{"3.8-IV0", 20, true, "unstable in 3.7: ELR (KIP-966), later moved"}}},
	// 3.8.x: IBP_3_9_IV0(21, …, true) was unstable ELR.
	{line: v(3, 8), patches: seq(2), latest: "3.8-IV0", zooKeeper: true, kraft: 2, minMV: 1, minFinalize: 4, parse: parseProductionShort,
		unstable: []unstableRow{{"3.9-IV0", 21, true, "unstable in 3.8: ELR (KIP-966), later moved"}}},
	// 3.9.x (tag 3.9.1): IBP_4_0_IV0(22, …, true) = ELR, IBP_4_0_IV1(23, …,
	// false) = group/transaction version bootstrap; 4.0 swapped their meanings.
	{line: v(3, 9), patches: seq(3), latest: "3.9-IV0", zooKeeper: true, kraft: 2, minMV: 1, minFinalize: 4, features: feat39, parse: parseProductionShort,
		unstable: []unstableRow{
			{"4.0-IV0", 22, true, "unstable in 3.9: ELR (KIP-966); 4.0 gave this level another meaning"},
			{"4.0-IV1", 23, false, "unstable in 3.9: bootstraps group.version and transaction.version; 4.0 gave this level another meaning"},
		}},
	// 4.0.x: MINIMUM_VERSION = IBP_3_3_IV3; IBP_4_1_IV0 unstable.
	{line: v(4, 0), patches: seq(3), latest: "4.0-IV3", kraft: 2, minMV: 7, minFinalize: 7, features: feat40, parse: parseTwoSegments,
		unstable: []unstableRow{{"4.1-IV0", 26, false, "unstable in 4.0: bootstraps eligible.leader.replicas.version 1, as in 4.1"}}},
	// 4.1.x: 4.2-IV0 and 4.2-IV1 unstable. streams.version registered with
	// LATEST_PRODUCTION SV_0, so not advertised.
	{line: v(4, 1), patches: seq(3), latest: "4.1-IV1", kraft: 2, minMV: 7, minFinalize: 7, features: feat41, parse: parseTwoSegments,
		unstable: []unstableRow{
			{"4.2-IV0", 28, false, "unstable in 4.1: bootstraps share.version 1, as in 4.2"},
			{"4.2-IV1", 29, false, "unstable in 4.1: bootstraps streams.version 1, as in 4.2"},
		}},
	// 4.2.x (4.2.0 … 4.2.2): IBP_4_3_IV0(30, …, false) unstable; 4.3 made it true.
	{line: v(4, 2), patches: seq(3), latest: "4.2-IV1", kraft: 2, minMV: 7, minFinalize: 7, features: feat42, parse: parseRejectUnstable,
		unstable: []unstableRow{{"4.3-IV0", 30, false, "unstable in 4.2: new version for 4.3; 4.3 made it a metadata change"}}},
	// 4.3.x (4.3.0 … 4.3.2): LATEST_PRODUCTION = IBP_4_3_IV0; IBP_4_4_IV0 unstable.
	{line: v(4, 3), patches: seq(3), latest: "4.3-IV0", kraft: 2, minMV: 7, minFinalize: 7, features: feat42, parse: parseRejectUnstable,
		unstable: []unstableRow{{"4.4-IV0", 31, false, "unstable in 4.3: new version for 4.4 (no share.version 2 in 4.3)"}}},
	// 4.4.0: LATEST_PRODUCTION = IBP_4_4_IV2; IBP_4_5_IV0(34, …, false) unstable.
	{line: v(4, 4), patches: seq(1), latest: "4.4-IV2", kraft: 2, minMV: 7, minFinalize: 7, features: feat44, parse: parseRejectUnstable,
		unstable: []unstableRow{{"4.5-IV0", 34, false, "unstable in 4.4: new version for 4.5"}}},
}

var (
	// mvIndex maps a name to its index in mvTable.
	mvIndex = func() map[string]int {
		m := make(map[string]int, len(mvTable))
		for i, r := range mvTable {
			m[r.name] = i
		}
		return m
	}()
	// lineIndex maps a line to its index in lines.
	lineIndex = func() map[Release]int {
		m := make(map[Release]int, len(lines))
		for i := range lines {
			m[lines[i].line] = i
		}
		return m
	}()
)

func lineOf(r Release) (*lineFacts, bool) {
	i, ok := lineIndex[r.Line()]
	if !ok {
		return nil, false
	}
	return &lines[i], true
}
