package compat

import (
	"fmt"
	"slices"
)

// KIP-896 removed the protocol versions that clients older than 2.1 used.
// The minimums below are the lower bounds of validVersions in
// clients/src/main/resources/common/message/*Request.json at tag 4.0.0
// (against 3.9.1, where every one was 0), cross-checked with franz-go
// v1.22.2 pkg/kversion (V4_0_0). Two exceptions to know:
//
//   - Produce: 4.0 rejects v0–v2 but still advertises them in ApiVersions
//     (KAFKA-18659, for librdkafka's compression check), so a client that
//     reads ApiVersions sees min 0. The minimum here is the real one, 3.
//   - JoinGroup: 4.1 accepts v0 and v1 again (KAFKA-19444); 4.0 needs v2.
//
// 4.2–4.4 are taken to keep 4.1's minimums (no further removals are known).

type apiMin struct {
	key  int16
	name string
	min  int16 // -1: the API was removed
}

var kip896Min = []apiMin{
	{0, "Produce", 3},
	{1, "Fetch", 4},
	{2, "ListOffsets", 1},
	{4, "LeaderAndIsr", -1},
	{5, "StopReplica", -1},
	{6, "UpdateMetadata", -1},
	{7, "ControlledShutdown", -1},
	{8, "OffsetCommit", 2},
	{9, "OffsetFetch", 1},
	{11, "JoinGroup", 2},
	{19, "CreateTopics", 2},
	{20, "DeleteTopics", 1},
	{23, "OffsetForLeaderEpoch", 2},
	{27, "WriteTxnMarkers", 1},
	{29, "DescribeAcls", 1},
	{30, "CreateAcls", 1},
	{31, "DeleteAcls", 1},
	{32, "DescribeConfigs", 1},
	{34, "AlterReplicaLogDirs", 1},
	{35, "DescribeLogDirs", 1},
	{38, "CreateDelegationToken", 1},
	{39, "RenewDelegationToken", 1},
	{40, "ExpireDelegationToken", 1},
	{41, "DescribeDelegationToken", 1},
	{56, "AlterPartition", 2},
}

// RemovedAPI is the minimum [MinimumAPIVersions] reports for an API key that a
// release no longer serves at all (the ZooKeeper-era LeaderAndIsr,
// StopReplica, UpdateMetadata and ControlledShutdown in 4.0).
const RemovedAPI int16 = -1

// MinimumAPIVersions returns, for a broker release, the lowest version of
// each API key whose minimum is above 0 ([RemovedAPI] for keys it removed).
// Keys not in the map accept every version from 0 that the release knows.
// Releases before 4.0 return an empty map: they kept every version.
func MinimumAPIVersions(broker Release) (map[int16]int16, error) {
	if _, err := knownOrLine(broker, true); err != nil {
		return nil, err
	}
	out := map[int16]int16{}
	if broker.Less(v(4, 0)) {
		return out, nil
	}
	for _, a := range kip896Min {
		m := a.min
		if a.key == 11 && broker.AtLeast(v(4, 1)) {
			continue // JoinGroup v0 and v1 are back (KAFKA-19444)
		}
		out[a.key] = m
	}
	return out, nil
}

// APIName returns the name of an API key that KIP-896 changed, or "" for
// others.
func APIName(key int16) string {
	for _, a := range kip896Min {
		if a.key == key {
			return a.name
		}
	}
	return ""
}

// An APIVersionProblem is one API that a client cannot use with a broker.
type APIVersionProblem struct {
	Key  int16  `json:"key"`
	Name string `json:"name"`
	// ClientMax is the highest version the client can send.
	ClientMax int16 `json:"clientMax"`
	// BrokerMin is the lowest version the broker accepts, or [RemovedAPI].
	BrokerMin int16 `json:"brokerMin"`
}

// String describes the problem in one line.
func (p APIVersionProblem) String() string {
	if p.BrokerMin == RemovedAPI {
		return fmt.Sprintf("%s (key %d) is removed", p.Name, p.Key)
	}
	return fmt.Sprintf("%s (key %d): client sends at most v%d, broker needs v%d or newer", p.Name, p.Key, p.ClientMax, p.BrokerMin)
}

// CheckClientAPIVersions reports the APIs a client cannot use with a broker
// of release broker, given the highest version of each API key the client
// can send (what its own ApiVersions table says; keys it never sends can be
// left out). An empty result means every listed API negotiates a version.
// Use it for non-Java clients, whose release numbers say nothing about
// Kafka's protocol.
func CheckClientAPIVersions(broker Release, clientMax map[int16]int16) ([]APIVersionProblem, error) {
	mins, err := MinimumAPIVersions(broker)
	if err != nil {
		return nil, err
	}
	var out []APIVersionProblem
	for key, cmax := range clientMax {
		m, ok := mins[key]
		if !ok || (m != RemovedAPI && cmax >= m) {
			continue
		}
		out = append(out, APIVersionProblem{Key: key, Name: APIName(key), ClientMax: cmax, BrokerMin: m})
	}
	slices.SortFunc(out, func(a, b APIVersionProblem) int { return int(a.Key) - int(b.Key) })
	return out, nil
}

// A ClientSupport grades how well a Java client release works with a broker.
type ClientSupport int

const (
	// ClientUnsupported: the client cannot work with the broker.
	ClientUnsupported ClientSupport = iota
	// ClientPartial: the client connects, but Kafka documents it as only
	// partially compatible (some APIs or features fail).
	ClientPartial
	// ClientSupported: Kafka documents the combination as compatible.
	ClientSupported
)

// String returns "unsupported", "partial" or "supported".
func (s ClientSupport) String() string {
	switch s {
	case ClientSupported:
		return "supported"
	case ClientPartial:
		return "partial"
	default:
		return "unsupported"
	}
}

// A ClientVerdict is the answer of [CheckClient].
type ClientVerdict struct {
	Support ClientSupport `json:"support"`
	Reason  string        `json:"reason"`
}

// CheckClient grades an Apache Kafka Java client (or Streams, or Connect)
// release against a broker release, after Kafka's compatibility notes:
//
//   - 4.x brokers (KIP-896): clients 2.1 and newer work (2.1–2.8 are
//     "partially compatible" in the 4.0 compatibility matrix, 3.x and newer
//     fully); 0.x, 1.x and 2.0 do not.
//   - 4.x Java clients need brokers 2.1 or newer.
//   - Otherwise (KIP-97): clients from 0.10.2 on talk to brokers from 0.10.0
//     on; older clients need a broker at least as new as themselves.
func CheckClient(client, broker Release) (ClientVerdict, error) {
	if _, err := knownOrLine(client, true); err != nil {
		return ClientVerdict{}, err
	}
	if _, err := knownOrLine(broker, true); err != nil {
		return ClientVerdict{}, err
	}
	switch {
	case broker.AtLeast(v(4, 0)) && client.Less(v(2, 1)):
		return ClientVerdict{ClientUnsupported, fmt.Sprintf("%v removed the protocol versions that clients before 2.1 use (KIP-896); upgrade the client to 2.1 or newer first", broker.Short())}, nil
	case client.AtLeast(v(4, 0)) && broker.Less(v(2, 1)):
		return ClientVerdict{ClientUnsupported, fmt.Sprintf("%v clients need brokers 2.1 or newer (KIP-896)", client.Short())}, nil
	case broker.AtLeast(v(4, 0)) && client.Less(v(3, 0)):
		return ClientVerdict{ClientPartial, fmt.Sprintf("the 4.0 compatibility matrix lists %v clients as partially compatible with 4.x brokers; test them, or upgrade them to 3.0 or newer", client.Short())}, nil
	case client.Less(v0(10, 2)) && broker.Less(client.Line()):
		return ClientVerdict{ClientUnsupported, fmt.Sprintf("clients before 0.10.2 need a broker at least as new as themselves; %v is older than %v", broker, client.Short())}, nil
	case client.AtLeast(v0(10, 2)) && broker.Less(v0(10, 0)):
		return ClientVerdict{ClientUnsupported, "clients from 0.10.2 on need brokers 0.10.0 or newer (KIP-97)"}, nil
	}
	return ClientVerdict{ClientSupported, fmt.Sprintf("%v clients work with %v brokers", client.Short(), broker.Short())}, nil
}

// MarshalText implements [encoding.TextMarshaler].
func (s ClientSupport) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements [encoding.TextUnmarshaler].
func (s *ClientSupport) UnmarshalText(b []byte) error {
	for _, c := range []ClientSupport{ClientUnsupported, ClientPartial, ClientSupported} {
		if c.String() == string(b) {
			*s = c
			return nil
		}
	}
	return fmt.Errorf("compat: invalid client support %q", b)
}
