package reassign

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
)

func sp(s string) *string { return &s }

func strs(cs ConfigChanges) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.String())
	}
	return out
}

// Config changes in the notation of ConfigChange.String, shortened.
const (
	lr   = "leader.replication.throttled.rate"
	fr   = "follower.replication.throttled.rate"
	lrep = "leader.replication.throttled.replicas"
	frep = "follower.replication.throttled.replicas"
)

func setB(b, name, v string) string { return "broker " + b + ": set " + name + "=\"" + v + "\"" }
func delB(b, name string) string    { return "broker " + b + ": delete " + name }
func setT(t, name, v string) string { return "topic " + t + ": set " + name + "=\"" + v + "\"" }
func delT(t, name string) string    { return "topic " + t + ": delete " + name }

// rates are the changes that set (or delete) both rates on brokers.
func rates(set bool, brokers ...string) []string {
	var out []string
	for _, b := range brokers {
		if set {
			out = append(out, setB(b, lr, "100"), setB(b, fr, "100"))
		} else {
			out = append(out, delB(b, lr), delB(b, fr))
		}
	}
	return out
}

func cat(parts ...any) []string {
	var out []string
	for _, p := range parts {
		switch p := p.(type) {
		case string:
			out = append(out, p)
		case []string:
			out = append(out, p...)
		}
	}
	return out
}

type ledgerStep struct {
	op    string // "begin", "finish", "close"
	moves Moves
	want  []string
}

func TestLedger(t *testing.T) {
	tests := []struct {
		name     string
		existing throttles
		steps    []ledgerStep
	}{
		{
			name: "nothing before: set, then delete",
			steps: []ledgerStep{
				{"begin", mvs("a-0 1,2>3,2"), cat(rates(true, "1", "2", "3"), setT("a", lrep, "0:1,0:2"), setT("a", frep, "0:3"))},
				{"finish", mvs("a-0 1,2>3,2"), cat(rates(false, "1", "2", "3"), delT("a", lrep), delT("a", frep))},
			},
		},
		{
			name:     "a list that is * is left alone",
			existing: throttles{Topics: map[string]topicThrottle{"a": {LeaderReplicas: sp("*")}}},
			steps: []ledgerStep{
				{"begin", mvs("a-0 1>2"), cat(rates(true, "1", "2"), setT("a", frep, "0:2"))},
				{"finish", mvs("a-0 1>2"), cat(rates(false, "1", "2"), delT("a", frep))},
			},
		},
		{
			name:     "foreign entries are kept and the raw value restored exactly",
			existing: throttles{Topics: map[string]topicThrottle{"a": {LeaderReplicas: sp(" 5:9 , 6:9"), FollowerReplicas: sp("")}}},
			steps: []ledgerStep{
				{"begin", mvs("a-0 1,2>3,2"), cat(rates(true, "1", "2", "3"), setT("a", lrep, "5:9,6:9,0:1,0:2"), setT("a", frep, "0:3"))},
				{"finish", mvs("a-0 1,2>3,2"), cat(rates(false, "1", "2", "3"), setT("a", lrep, " 5:9 , 6:9"), setT("a", frep, ""))},
			},
		},
		{
			name:     "an entry someone else set is not ours to remove",
			existing: throttles{Topics: map[string]topicThrottle{"a": {FollowerReplicas: sp("0:3")}}},
			steps: []ledgerStep{
				{"begin", mvs("a-0 1>3"), cat(rates(true, "1", "3"), setT("a", lrep, "0:1"))},
				{"finish", mvs("a-0 1>3"), cat(rates(false, "1", "3"), delT("a", lrep))},
			},
		},
		{
			name: "earlier rates are overridden, then restored",
			existing: throttles{Brokers: map[int32]brokerThrottle{
				1: {LeaderRate: sp("50")},
				2: {LeaderRate: sp("100"), FollowerRate: sp("100")}, // already ours
			}},
			steps: []ledgerStep{
				{"begin", mvs("a-0 1>2"), cat(setB("1", lr, "100"), setB("1", fr, "100"), setT("a", lrep, "0:1"), setT("a", frep, "0:2"))},
				{"finish", mvs("a-0 1>2"), cat(setB("1", lr, "50"), delB("1", fr), delT("a", lrep), delT("a", frep))},
			},
		},
		{
			name: "a broker's rate stays while any move in flight involves it",
			steps: []ledgerStep{
				{"begin", mvs("a-0 1>2", "b-0 1>3"), cat(rates(true, "1", "2", "3"), setT("a", lrep, "0:1"), setT("a", frep, "0:2"), setT("b", lrep, "0:1"), setT("b", frep, "0:3"))},
				{"finish", mvs("a-0 1>2"), cat(rates(false, "2"), delT("a", lrep), delT("a", frep))},
				{"begin", mvs("a-1 2>1"), cat(rates(true, "2"), setT("a", lrep, "1:2"), setT("a", frep, "1:1"))},
				{"finish", mvs("b-0 1>3"), cat(rates(false, "3"), delT("b", lrep), delT("b", frep))},
				{"finish", mvs("a-1 2>1"), cat(rates(false, "1", "2"), delT("a", lrep), delT("a", frep))},
			},
		},
		{
			name:     "entries of several partitions merge in partition order",
			existing: throttles{Topics: map[string]topicThrottle{"a": {LeaderReplicas: sp("9:9")}}},
			steps: []ledgerStep{
				{"begin", mvs("a-2 1>2"), cat(rates(true, "1", "2"), setT("a", lrep, "9:9,2:1"), setT("a", frep, "2:2"))},
				{"begin", mvs("a-1 3>4"), cat(rates(true, "3", "4"), setT("a", lrep, "9:9,1:3,2:1"), setT("a", frep, "1:4,2:2"))},
				{"finish", mvs("a-2 1>2"), cat(rates(false, "1", "2"), setT("a", lrep, "9:9,1:3"), setT("a", frep, "1:4"))},
			},
		},
		{
			name:     "close restores everything, once",
			existing: throttles{Brokers: map[int32]brokerThrottle{2: {FollowerRate: sp("7")}}},
			steps: []ledgerStep{
				{"begin", mvs("a-0 1>2", "b-0 3>4"), cat(rates(true, "1", "2", "3", "4"), setT("a", lrep, "0:1"), setT("a", frep, "0:2"), setT("b", lrep, "0:3"), setT("b", frep, "0:4"))},
				{"close", nil, cat(rates(false, "1"), delB("2", lr), setB("2", fr, "7"), rates(false, "3", "4"), delT("a", lrep), delT("a", frep), delT("b", lrep), delT("b", frep))},
				{"close", nil, nil},
			},
		},
		{
			name: "finishing a move not in flight changes nothing",
			steps: []ledgerStep{
				{"finish", mvs("a-0 1>2"), nil},
			},
		},
		{
			name: "beginning a partition again replaces its move",
			steps: []ledgerStep{
				{"begin", mvs("a-0 1>2"), cat(rates(true, "1", "2"), setT("a", lrep, "0:1"), setT("a", frep, "0:2"))},
				{"begin", mvs("a-0 1>3"), cat(rates(false, "2"), rates(true, "3"), setT("a", frep, "0:3"))},
				{"finish", mvs("a-0 1>3"), cat(rates(false, "1", "3"), delT("a", lrep), delT("a", frep))},
			},
		},
		{
			name: "a change of replica order copies nothing and is not throttled",
			steps: []ledgerStep{
				{"begin", mvs("a-0 1,2>2,1"), nil},
				{"finish", mvs("a-0 1,2>2,1"), nil},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := newLedger(tt.existing, 100)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tt.steps {
				var got ConfigChanges
				switch s.op {
				case "begin":
					got = l.Begin(s.moves...)
				case "finish":
					got = l.Finish(s.moves...)
				case "close":
					got = l.Close()
				}
				if diff := cmp.Diff(s.want, strs(got)); diff != "" {
					t.Fatalf("step %d %s %v (-want +got):\n%s", i, s.op, s.moves, diff)
				}
			}
			// After every move finished, nothing is owned any more.
			l.Finish(l.InFlight()...)
			if owned := l.Owned(); len(owned.Brokers)+len(owned.Topics) != 0 || len(l.Close()) != 0 {
				t.Errorf("ledger still owns %+v after every move finished", owned)
			}
		})
	}
}

func TestLedgerJSONResume(t *testing.T) {
	existing := throttles{
		Brokers: map[int32]brokerThrottle{1: {LeaderRate: sp("50")}},
		Topics:  map[string]topicThrottle{"a": {LeaderReplicas: sp("9:9")}, "b": {FollowerReplicas: sp("*")}},
	}
	l, err := newLedger(existing, 100)
	if err != nil {
		t.Fatal(err)
	}
	l.Begin(mvs("a-0 1,2>3,2", "a-1 2,4>2,5", "b-0 1>6")...)
	l.Finish(mv("a-1 2,4>2,5"))
	js, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	var back ledger
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	again, err := json.Marshal(&back)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(js) {
		t.Errorf("round trip changed the journal:\n%s\n%s", js, again)
	}
	// The resumed ledger behaves as the original.
	if diff := cmp.Diff(strs(l.Finish(mv("a-0 1,2>3,2"))), strs(back.Finish(mv("a-0 1,2>3,2")))); diff != "" {
		t.Errorf("Finish after resume (-original +resumed):\n%s", diff)
	}
	if diff := cmp.Diff(strs(l.Close()), strs(back.Close())); diff != "" {
		t.Errorf("Close after resume (-original +resumed):\n%s", diff)
	}
}

func TestLedgerJournalForm(t *testing.T) {
	l, err := newLedger(throttles{Topics: map[string]topicThrottle{"a": {LeaderReplicas: sp("9:9")}}}, 100)
	if err != nil {
		t.Fatal(err)
	}
	l.Begin(mv("a-0 1>2"))
	js, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"rate":100,"before":{"topics":{"a":{"leaderReplicas":"9:9"}}},` +
		`"owned":{"brokers":{"1":{"leaderRate":"100","followerRate":"100"},"2":{"leaderRate":"100","followerRate":"100"}},` +
		`"topics":{"a":{"leaderReplicas":"9:9,0:1","followerReplicas":"0:2"}}},` +
		`"inFlight":[{"topic":"a","partition":0,"from":[1],"to":[2]}]}`
	if string(js) != want {
		t.Errorf("journal form:\n got %s\nwant %s", js, want)
	}
}

func TestLedgerSetRate(t *testing.T) {
	l, err := newLedger(throttles{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	l.Begin(mv("a-0 1>2"))
	got, err := l.SetRate(200)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{setB("1", lr, "200"), setB("1", fr, "200"), setB("2", lr, "200"), setB("2", fr, "200")}
	if diff := cmp.Diff(want, strs(got)); diff != "" {
		t.Errorf("SetRate (-want +got):\n%s", diff)
	}
	if _, err := l.SetRate(0); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetRate(0) = %v, want ErrInvalid", err)
	}
}

func TestNewLedgerErrors(t *testing.T) {
	tests := []struct {
		name     string
		existing throttles
		rate     int64
	}{
		{"zero rate", throttles{}, 0},
		{"entry without broker", throttles{Topics: map[string]topicThrottle{"a": {LeaderReplicas: sp("0:1,2")}}}, 1},
		{"entry not numeric", throttles{Topics: map[string]topicThrottle{"a": {FollowerReplicas: sp("0:x")}}}, 1},
		{"star among entries", throttles{Topics: map[string]topicThrottle{"a": {FollowerReplicas: sp("*,0:1")}}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newLedger(tt.existing, tt.rate)
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("NewLedger = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestConfigChangesForKadm(t *testing.T) {
	cs := ConfigChanges{
		{Resource: BrokerResource, Broker: 1, Op: kadm.SetConfig, Name: lr, Value: "100"},
		{Resource: BrokerResource, Broker: 1, Op: kadm.DeleteConfig, Name: fr},
		{Resource: TopicResource, Topic: "a", Op: kadm.SetConfig, Name: lrep, Value: "0:1"},
	}
	wantB := map[int32][]kadm.AlterConfig{1: {
		{Op: kadm.SetConfig, Name: lr, Value: sp("100")},
		{Op: kadm.DeleteConfig, Name: fr},
	}}
	wantT := map[string][]kadm.AlterConfig{"a": {{Op: kadm.SetConfig, Name: lrep, Value: sp("0:1")}}}
	if diff := cmp.Diff(wantB, cs.ByBroker()); diff != "" {
		t.Errorf("ByBroker (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantT, cs.ByTopic()); diff != "" {
		t.Errorf("ByTopic (-want +got):\n%s", diff)
	}
}

// TestLedgerRestoresForeignThrottle throttles a move on a topic that already
// has a throttled replica someone else set, then restores it.
func TestLedgerRestoresForeignThrottle(t *testing.T) {
	var got strings.Builder
	before := "7:9"
	l, err := newLedger(throttles{
		Topics: map[string]topicThrottle{"orders": {LeaderReplicas: &before}},
	}, 50_000_000)
	if err != nil {
		t.Fatal(err)
	}
	m := Move{Topic: "orders", Partition: 0, From: []int32{1, 2}, To: []int32{1, 3}}
	fmt.Fprintln(&got, "begin:")
	for _, c := range l.Begin(m) {
		fmt.Fprintln(&got, c)
	}
	fmt.Fprintln(&got, "finish:")
	for _, c := range l.Finish(m) {
		fmt.Fprintln(&got, c)
	}
	want := `begin:
broker 1: set leader.replication.throttled.rate="50000000"
broker 1: set follower.replication.throttled.rate="50000000"
broker 2: set leader.replication.throttled.rate="50000000"
broker 2: set follower.replication.throttled.rate="50000000"
broker 3: set leader.replication.throttled.rate="50000000"
broker 3: set follower.replication.throttled.rate="50000000"
topic orders: set leader.replication.throttled.replicas="7:9,0:1,0:2"
topic orders: set follower.replication.throttled.replicas="0:3"
finish:
broker 1: delete leader.replication.throttled.rate
broker 1: delete follower.replication.throttled.rate
broker 2: delete leader.replication.throttled.rate
broker 2: delete follower.replication.throttled.rate
broker 3: delete leader.replication.throttled.rate
broker 3: delete follower.replication.throttled.rate
topic orders: set leader.replication.throttled.replicas="7:9"
topic orders: delete follower.replication.throttled.replicas
`
	if diff := cmp.Diff(want, got.String()); diff != "" {
		t.Errorf("config changes (-want +got):\n%s", diff)
	}
}
