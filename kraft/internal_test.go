package kraft

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/node"
)

func replicaState(id int32, leo, fetch, caught int64) kmsg.DescribeQuorumResponseTopicPartitionReplicaState {
	r := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
	r.ReplicaID, r.LogEndOffset, r.LastFetchTimestamp, r.LastCaughtUpTimestamp = id, leo, fetch, caught
	return r
}

func describeQuorumResponse(version int16, leader int32, partErr int16) *kmsg.DescribeQuorumResponse {
	resp := kmsg.NewPtrDescribeQuorumResponse()
	resp.Version = version
	t := kmsg.NewDescribeQuorumResponseTopic()
	t.Topic = MetadataTopic
	p := kmsg.NewDescribeQuorumResponseTopicPartition()
	p.ErrorCode = partErr
	p.LeaderID, p.LeaderEpoch, p.HighWatermark = leader, 4, 120
	p.CurrentVoters = []kmsg.DescribeQuorumResponseTopicPartitionReplicaState{
		replicaState(3, 118, 1000, 900),
		replicaState(2, 121, 2000, 2000),
		replicaState(1, -1, -1, -1),
	}
	p.Observers = []kmsg.DescribeQuorumResponseTopicPartitionReplicaState{replicaState(4, 120, 1990, 1990)}
	p.Observers[0].ReplicaDirectoryID = [16]byte{1, 2, 3}
	t.Partitions = append(t.Partitions, p)
	resp.Topics = append(resp.Topics, t)
	n := kmsg.NewDescribeQuorumResponseNode()
	n.NodeID = 2
	n.Listeners = []kmsg.DescribeQuorumResponseNodeListener{{Name: "CONTROLLER", Host: "127.0.0.1", Port: 9093}}
	resp.Nodes = append(resp.Nodes, n)
	return resp
}

func TestQuorumFromResponse(t *testing.T) {
	q, err := quorumFromResponse(describeQuorumResponse(2, 2, 0))
	if err != nil {
		t.Fatal(err)
	}
	want := Quorum{
		LeaderID: 2, LeaderEpoch: 4, HighWatermark: 120, Version: 2,
		Voters: []Replica{
			{ID: 1, LogEndOffset: -1, Lag: -1},
			{ID: 2, LogEndOffset: 121, Lag: 0, LastFetch: time.UnixMilli(2000), LastCaughtUp: time.UnixMilli(2000)},
			{ID: 3, LogEndOffset: 118, Lag: 3, LastFetch: time.UnixMilli(1000), LastCaughtUp: time.UnixMilli(900)},
		},
		Observers: []Replica{{ID: 4, DirectoryID: UUID{1, 2, 3}, LogEndOffset: 120, Lag: 1, LastFetch: time.UnixMilli(1990), LastCaughtUp: time.UnixMilli(1990)}},
		Nodes:     []QuorumNode{{ID: 2, Listeners: []Listener{{Name: "CONTROLLER", Host: "127.0.0.1", Port: 9093}}}},
	}
	if diff := cmp.Diff(want, q); diff != "" {
		t.Errorf("quorum (-want +got):\n%s", diff)
	}
	if id, ok := q.ActiveController(); id != 2 || !ok {
		t.Errorf("ActiveController() = %d, %v", id, ok)
	}
	if diff := cmp.Diff([]int32{1, 3, 2}, q.RollOrder()); diff != "" {
		t.Errorf("RollOrder (-want +got):\n%s", diff)
	}
	if got := q.MaxFollowerLag(); got != 3 {
		t.Errorf("MaxFollowerLag() = %d, want 3", got)
	}
	if n, ok := q.Node(2); !ok || n.Addr() != "127.0.0.1:9093" {
		t.Errorf("Node(2) = %v, %v", n, ok)
	}
	if got := q.Observers[0].DirectoryID.String(); got != "AQIDAAAAAAAAAAAAAAAAAA" {
		t.Errorf("DirectoryID = %s", got)
	}

	if _, err := quorumFromResponse(describeQuorumResponse(2, 1, kerr.NotLeaderForPartition.Code)); !errors.Is(err, ErrNoLeader) || !errors.Is(err, kerr.NotLeaderForPartition) {
		t.Errorf("NOT_LEADER_OR_FOLLOWER: err = %v, want ErrNoLeader and the kerr error", err)
	}
	q, err = quorumFromResponse(describeQuorumResponse(1, -1, 0))
	if !errors.Is(err, ErrNoLeader) || q.LeaderID != -1 || len(q.Voters) != 3 {
		t.Errorf("leader -1: %v, %v; want ErrNoLeader with the voters kept", q, err)
	}
	empty := kmsg.NewPtrDescribeQuorumResponse()
	if _, err := quorumFromResponse(empty); err == nil || !strings.Contains(err.Error(), "no __cluster_metadata-0") {
		t.Errorf("empty answer: err = %v", err)
	}
}

func TestClassifyUpdateError(t *testing.T) {
	tests := []struct {
		name    string
		feature string
		code    int16
		msg     string
		kind    error
		hint    string // substring
	}{
		{"safe downgrade across a metadata change (3.9)", "metadata.version", kerr.InvalidUpdateVersion.Code,
			"Invalid metadata.version 14. Refusing to perform the requested downgrade because it might delete metadata information.",
			ErrUnsafeDowngrade, "safe-downgrade floor"},
		{"unsafe downgrade", "metadata.version", kerr.InvalidUpdateVersion.Code,
			"Invalid metadata.version 14. Unsafe metadata downgrade is not supported in this version.", ErrUnsafeDowngrade, "no Kafka release"},
		{"4.2 prefix on unsafe downgrade", "metadata.version", kerr.InvalidUpdateVersion.Code,
			"Unsupported metadata.version downgrade from 29 to 14. Unsafe metadata downgrade is not supported in this version.", ErrUnsafeDowngrade, "no Kafka release"},
		{"local controller lacks support", "metadata.version", kerr.InvalidUpdateVersion.Code,
			"Invalid update version 22 for feature metadata.version. Local controller 3 only supports versions 1-21", ErrUnsupportedLevel, "upgrade every broker"},
		{"4.x whole-request prefix", "share.version", kerr.InvalidUpdateVersion.Code,
			"The update failed for all features since the following feature had an error: Invalid update version 9 for feature share.version. Local controller 1 only supports versions 0-1",
			ErrUnsupportedLevel, "upgrade every broker"},
		{"controller not registered", "metadata.version", kerr.InvalidUpdateVersion.Code,
			"Invalid update version 21 for feature metadata.version. controller 3 has not registered, and may not support this feature", ErrUnsupportedLevel, "register"},
		{"broker lacks feature", "group.version", kerr.InvalidUpdateVersion.Code,
			"Invalid update version 1 for feature group.version. broker 4 does not support this feature.", ErrUnsupportedLevel, "upgrade every broker"},
		{"downgrade sent as upgrade", "transaction.version", kerr.InvalidUpdateVersion.Code,
			"Invalid update version 0 for feature transaction.version. Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade.",
			ErrInvalidUpdate, "safe downgrade"},
		{"kraft.version downgrade", "kraft.version", kerr.InvalidUpdateVersion.Code,
			"Invalid update version 0 for feature kraft.version. Can't downgrade the version of this feature.", ErrInvalidUpdate, "never be downgraded"},
		{"below the minimum", "metadata.version", kerr.InvalidUpdateVersion.Code,
			"Invalid metadata.version 3. Unable to set a metadata.version less than 3.3-IV0", ErrInvalidUpdate, "outside"},
		{"migration", "metadata.version", kerr.InvalidUpdateVersion.Code,
			"Invalid metadata.version 21. Unable to modify metadata.version while a ZK migration is in progress.", ErrInvalidUpdate, "migration"},
		{"not authorized", "metadata.version", kerr.ClusterAuthorizationFailed.Code, "", ErrNotAuthorized, "ALTER on the CLUSTER"},
		{"failed", "metadata.version", kerr.FeatureUpdateFailed.Code, "boom", ErrUpdateFailed, "retry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := classifyUpdateError(tt.feature, 14, SafeDowngrade, tt.code, tt.msg)
			if !errors.Is(e, tt.kind) {
				t.Errorf("kind = %v, want %v", e.Kind, tt.kind)
			}
			if !errors.Is(e, kerr.ErrorForCode(tt.code)) {
				t.Errorf("%v does not wrap the Kafka error", e)
			}
			if !strings.Contains(e.Hint, tt.hint) {
				t.Errorf("hint %q does not contain %q", e.Hint, tt.hint)
			}
			if tt.msg != "" && !strings.Contains(e.Error(), tt.msg) {
				t.Errorf("Error() %q lacks Kafka's message", e.Error())
			}
		})
	}
}

// features builds a Features value: every node supports metadata.version
// 1..max and reports it finalized at fin.
func features(fin int16, maxes ...int16) ClusterFeatures {
	var fs ClusterFeatures
	for i, max := range maxes {
		role := node.RoleController
		if i == len(maxes)-1 {
			role = node.RoleBroker
		}
		fs = append(fs, NodeFeatures{
			NodeRef:        NodeRef{Role: role, ID: int32(i + 1)},
			APIVersion:     4,
			Supported:      map[string]compat.LevelRange{"metadata.version": {Min: 1, Max: max}, "kraft.version": {Min: 0, Max: 1}},
			Finalized:      map[string]int16{"metadata.version": fin},
			FinalizedEpoch: 10,
		})
	}
	return fs
}

func TestPlan(t *testing.T) {
	type want struct {
		from      int16
		typ       UpgradeType
		unchanged bool
		errs      []error // every one must be wrapped by PreCheck
		none      bool    // PreCheck must be nil
	}
	down := func(err error) bool { _, ok := errors.AsType[*compat.DowngradeError](err); return ok }
	tests := []struct {
		name string
		u    FeatureUpdate
		fs   ClusterFeatures
		cfg  finalizeConfig
		want want
	}{
		{"upgrade", FeatureUpdate{Feature: "metadata.version", Level: 21}, features(20, 21, 21, 21, 21), finalizeConfig{}, want{from: 20, typ: Upgrade, none: true}},
		{"unchanged", FeatureUpdate{Feature: "metadata.version", Level: 20}, features(20, 21, 21), finalizeConfig{}, want{from: 20, typ: UpgradeAuto, unchanged: true, none: true}},
		{"safe downgrade", FeatureUpdate{Feature: "metadata.version", Level: 17}, features(21, 21, 21), finalizeConfig{}, want{from: 21, typ: SafeDowngrade, none: true}},
		{"downgrade across a metadata change", FeatureUpdate{Feature: "metadata.version", Level: 14}, features(20, 21, 21), finalizeConfig{}, want{from: 20, typ: SafeDowngrade, errs: []error{ErrUnsafeDowngrade}}},
		{"unsafe downgrade allowed", FeatureUpdate{Feature: "metadata.version", Level: 14}, features(20, 21, 21), finalizeConfig{allowUnsafeDowngrade: true}, want{from: 20, typ: UnsafeDowngrade, none: true}},
		{"one node too old", FeatureUpdate{Feature: "metadata.version", Level: 21}, features(20, 21, 20, 21), finalizeConfig{}, want{from: 20, typ: Upgrade, errs: []error{ErrUnsupportedLevel}}},
		{"kraft.version on 3.9", FeatureUpdate{Feature: "kraft.version", Level: 1}, features(21, 21, 21), finalizeConfig{}, want{from: 0, typ: Upgrade, errs: []error{ErrInvalidUpdate}}},
		{"kraft.version on 4.1", FeatureUpdate{Feature: "kraft.version", Level: 1}, features(27, 27, 27), finalizeConfig{}, want{from: 0, typ: Upgrade, none: true}},
		{"kraft.version downgrade", FeatureUpdate{Feature: "kraft.version", Level: 0, Type: SafeDowngrade}, func() ClusterFeatures {
			fs := features(21, 21, 21)
			for i := range fs {
				fs[i].Finalized["kraft.version"] = 1
			}
			return fs
		}(), finalizeConfig{}, want{from: 1, typ: SafeDowngrade, errs: []error{ErrInvalidUpdate}}},
		{"explicit upgrade below the finalized level", FeatureUpdate{Feature: "metadata.version", Level: 17, Type: Upgrade}, features(21, 21), finalizeConfig{}, want{from: 21, typ: Upgrade, errs: []error{ErrInvalidUpdate}}},
		{"unknown feature", FeatureUpdate{Feature: "no.such.version", Level: 1}, features(21, 21), finalizeConfig{}, want{from: 0, typ: Upgrade, errs: []error{ErrUnsupportedLevel}}},
		{"a node did not answer", FeatureUpdate{Feature: "metadata.version", Level: 21}, append(features(20, 21, 21), NodeFeatures{NodeRef: NodeRef{Role: node.RoleController, ID: 3}, Err: errors.New("dial: refused")}),
			finalizeConfig{}, want{from: 20, typ: Upgrade, errs: []error{ErrUnverified}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := plan(tt.u, tt.fs, tt.cfg)
			if f.From != tt.want.from || f.Type != tt.want.typ || f.Unchanged != tt.want.unchanged {
				t.Errorf("plan = from %d type %v unchanged %v, want from %d type %v unchanged %v", f.From, f.Type, f.Unchanged, tt.want.from, tt.want.typ, tt.want.unchanged)
			}
			if tt.want.none != (f.PreCheck == nil) {
				t.Errorf("PreCheck = %v", f.PreCheck)
			}
			for _, e := range tt.want.errs {
				if !errors.Is(f.PreCheck, e) {
					t.Errorf("PreCheck = %v, want it to wrap %v", f.PreCheck, e)
				}
			}
		})
	}
	f := plan(FeatureUpdate{Feature: "metadata.version", Level: 14}, features(20, 21), finalizeConfig{})
	de, ok := errors.AsType[*compat.DowngradeError](f.PreCheck)
	if !ok || !down(f.PreCheck) {
		t.Fatalf("PreCheck = %v, want a *DowngradeError", f.PreCheck)
	}
	if de.Blocker.Level != 17 || de.Floor.Level != 17 || de.From.Level != 20 || de.To.Level != 14 {
		t.Errorf("DowngradeError = %+v, want blocking and floor 17 (3.7-IV2)", de)
	}
	wantMsg := "kraft: refusing to downgrade metadata.version from 3.8-IV0 (20) to 3.6-IV2 (14): 3.7-IV2 (17) changed the metadata format"
	if !strings.HasPrefix(f.PreCheck.Error(), wantMsg) {
		t.Errorf("Error() = %q, want prefix %q", f.PreCheck.Error(), wantMsg)
	}
	f = plan(FeatureUpdate{Feature: "metadata.version", Level: 21}, nil, finalizeConfig{})
	if f.Err == nil || !errors.Is(f.Err, ErrUnverified) {
		t.Errorf("no features and an auto type: Err = %v, want ErrUnverified (nothing to guess from)", f.Err)
	}
}

func TestFeaturesFinalized(t *testing.T) {
	fs := features(20, 21, 21, 21)
	fs[0].Finalized["metadata.version"], fs[0].FinalizedEpoch = 21, 11 // a controller already has the change
	fs[2].Finalized["metadata.version"], fs[2].FinalizedEpoch = 21, 99 // a broker too, with its own kind of epoch
	if level, agreed, ok := fs.Finalized("metadata.version"); level != 21 || agreed || !ok {
		t.Errorf("Finalized = %d, %v, %v; want 21 from the newest controller, not agreed", level, agreed, ok)
	}
	fs[1].Finalized["metadata.version"] = 21
	if level, agreed, ok := fs.Finalized("metadata.version"); level != 21 || !agreed || !ok {
		t.Errorf("Finalized = %d, %v, %v; want 21, agreed", level, agreed, ok)
	}
	if level, _, ok := fs.Finalized("group.version"); level != 0 || !ok {
		t.Errorf("a feature nobody finalized is at level 0, got %d %v", level, ok)
	}
	if _, _, ok := (ClusterFeatures{{NodeRef: NodeRef{Role: node.RoleBroker, ID: 1}, Err: errors.New("x")}}).Finalized("metadata.version"); ok {
		t.Error("no node answered, yet ok")
	}
}

func TestUUIDTextRoundTrip(t *testing.T) {
	u := UUID{0: 0xfb, 7: 0x01, 15: 0xff}
	b, err := u.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	var got UUID
	if err := got.UnmarshalText(b); err != nil || got != u {
		t.Fatalf("UnmarshalText(%q) = %v, %v; want %v", b, got, err, u)
	}
	for _, bad := range []string{"", "AAAA", "AAAAAAAAAAAAAAAAAAAAAA==", "!AAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAAAA"} {
		if err := got.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) accepted it", bad)
		}
	}
}
