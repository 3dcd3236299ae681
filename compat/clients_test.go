package compat

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMinimumAPIVersions(t *testing.T) {
	m39, err := MinimumAPIVersions(rel("3.9.1"))
	if err != nil || len(m39) != 0 {
		t.Errorf("MinimumAPIVersions(3.9.1) = %v, %v; want empty", m39, err)
	}
	m40, _ := MinimumAPIVersions(rel("4.0.0"))
	m41, _ := MinimumAPIVersions(rel("4.1.0"))
	spot := []struct {
		key      int16
		min40    int16
		min41    int16
		inBoth41 bool
	}{
		{0, 3, 3, true},                    // Produce: v0-2 rejected (though advertised, KAFKA-18659)
		{1, 4, 4, true},                    // Fetch
		{2, 1, 1, true},                    // ListOffsets
		{3, 0, 0, false},                   // Metadata unchanged
		{4, RemovedAPI, RemovedAPI, true},  // LeaderAndIsr
		{7, RemovedAPI, RemovedAPI, true},  // ControlledShutdown
		{11, 2, 0, false},                  // JoinGroup: back to v0 in 4.1 (KAFKA-19444)
		{18, 0, 0, false},                  // ApiVersions unchanged
		{56, 2, 2, true},                   // AlterPartition
		{41, 1, 1, true},                   // DescribeDelegationToken
		{35, 1, 1, true},                   // DescribeLogDirs
		{23, 2, 2, true},                   // OffsetForLeaderEpoch
		{27, 1, 1, true},                   // WriteTxnMarkers
		{32, 1, 1, true},                   // DescribeConfigs
		{9, 1, 1, true},                    // OffsetFetch
		{8, 2, 2, true},                    // OffsetCommit
		{19, 2, 2, true},                   // CreateTopics
		{20, 1, 1, true},                   // DeleteTopics
		{29, 1, 1, true}, {30, 1, 1, true}, // ACLs
	}
	for _, s := range spot {
		if got := m40[s.key]; got != s.min40 {
			t.Errorf("4.0 key %d min = %d, want %d", s.key, got, s.min40)
		}
		got, ok := m41[s.key]
		if got != s.min41 || ok != s.inBoth41 {
			t.Errorf("4.1 key %d min = %d (%v), want %d", s.key, got, ok, s.min41)
		}
	}
	if APIName(0) != "Produce" || APIName(18) != "" {
		t.Errorf("APIName")
	}
}

func TestCheckClientAPIVersions(t *testing.T) {
	// What a 2.0 Java producer/consumer can send at most (its ApiVersions).
	client20 := map[int16]int16{0: 6, 1: 8, 2: 3, 3: 6, 8: 4, 9: 4, 11: 3, 18: 2}
	got, err := CheckClientAPIVersions(rel("4.0.0"), client20)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("2.0-era max versions flagged: %v", got)
	}
	// A very old client (0.10.0-era maxima).
	old := map[int16]int16{0: 2, 1: 2, 2: 0, 3: 1, 11: 0, 18: 0, 4: 0}
	got, _ = CheckClientAPIVersions(rel("4.0.0"), old)
	want := []APIVersionProblem{
		{Key: 0, Name: "Produce", ClientMax: 2, BrokerMin: 3},
		{Key: 1, Name: "Fetch", ClientMax: 2, BrokerMin: 4},
		{Key: 2, Name: "ListOffsets", ClientMax: 0, BrokerMin: 1},
		{Key: 4, Name: "LeaderAndIsr", ClientMax: 0, BrokerMin: RemovedAPI},
		{Key: 11, Name: "JoinGroup", ClientMax: 0, BrokerMin: 2},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CheckClientAPIVersions(4.0.0, old) (-want +got):\n%s", diff)
	}
	got, _ = CheckClientAPIVersions(rel("4.1.1"), old)
	if len(got) != 4 || got[3].Key != 4 {
		t.Errorf("4.1 should accept JoinGroup v0 again: %v", got)
	}
	if got, _ := CheckClientAPIVersions(rel("3.9.1"), old); len(got) != 0 {
		t.Errorf("3.9 kept every version: %v", got)
	}
	if s := want[0].String(); s != "Produce (key 0): client sends at most v2, broker needs v3 or newer" {
		t.Errorf("String() = %q", s)
	}
	if s := want[3].String(); s != "LeaderAndIsr (key 4) is removed" {
		t.Errorf("String() = %q", s)
	}
	if _, err := CheckClientAPIVersions(rel("9.0.0"), old); !errors.Is(err, ErrUnknownRelease) {
		t.Errorf("unknown broker: %v", err)
	}
}

func TestCheckClient(t *testing.T) {
	tests := []struct {
		client, broker string
		want           ClientSupport
	}{
		{"2.0.1", "4.0.0", ClientUnsupported},
		{"1.1.1", "4.2.1", ClientUnsupported},
		{"0.11.0.3", "4.1.0", ClientUnsupported},
		{"2.1.0", "4.0.0", ClientPartial},
		{"2.8.2", "4.4.0", ClientPartial},
		{"3.0.0", "4.0.0", ClientSupported},
		{"3.9.1", "4.2.1", ClientSupported},
		{"4.1.0", "2.0.1", ClientUnsupported}, // 4.x clients need 2.1+ brokers
		{"4.1.0", "2.1.0", ClientSupported},
		{"2.0.1", "3.9.2", ClientSupported},
		{"0.10.2.1", "0.10.0.1", ClientSupported}, // KIP-97
		{"0.10.2.1", "0.9.0.1", ClientUnsupported},
		{"0.10.1.1", "0.10.0.1", ClientUnsupported}, // old clients need a newer broker
		{"0.10.1.1", "2.8.2", ClientSupported},
	}
	for _, tt := range tests {
		got, err := CheckClient(rel(tt.client), rel(tt.broker))
		if err != nil {
			t.Fatal(err)
		}
		if got.Support != tt.want || got.Reason == "" {
			t.Errorf("CheckClient(%v, %v) = %v (%s), want %v", tt.client, tt.broker, got.Support, got.Reason, tt.want)
		}
	}
	if _, err := CheckClient(rel("4.9.0"), rel("4.0.0")); !errors.Is(err, ErrUnknownRelease) {
		t.Errorf("unknown client: %v", err)
	}
	var s ClientSupport
	if err := s.UnmarshalText([]byte("partial")); err != nil || s != ClientPartial {
		t.Errorf("UnmarshalText: %v %v", s, err)
	}
	if err := s.UnmarshalText([]byte("maybe")); err == nil {
		t.Errorf("UnmarshalText accepted garbage")
	}
}
