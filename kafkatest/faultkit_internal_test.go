package kafkatest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// What ZooKeeper 3.8.4 (Kafka 3.9.2) answered to dump and cons after a
// restart: three brokers, broker 1 the controller, and a fourth connection
// (the asking one) without a session.
const (
	zkDump = `SessionTracker dump:
Session Sets (1)/(3):
3 expire at Thu Dec 03 14:17:00 UTC 2026:
	0x1000010d3530005
	0x1000010d3530003
	0x1000010d3530004
ephemeral nodes dump:
Sessions with Ephemerals (3):
0x1000010d3530003:
	/kt-1/brokers/ids/2
0x1000010d3530005:
	/kt-1/brokers/ids/3
0x1000010d3530004:
	/kt-1/brokers/ids/1
	/kt-1/controller
Connections dump:
Connections Sets (1)/(4):
4 expire at Thu Dec 03 14:17:04 UTC 2026:
	ip: /127.0.0.1:34616 sessionId: 0x1000010d3530003
	ip: /127.0.0.1:34608 sessionId: 0x1000010d3530005
	ip: /127.0.0.1:34576 sessionId: 0x1000010d3530004
	ip: /127.0.0.1:34632 sessionId: 0x0
`
	zkCons = ` /127.0.0.1:34616[1](queued=0,recved=2,sent=2,sid=0x1000010d3530003,lop=SETW,est=1796307408220,to=12000,lcxid=0x48,lzxid=0x7c,lresp=1113622,llat=0,minlat=0,avglat=0,maxlat=0)
 /127.0.0.1:34608[1](queued=0,recved=2,sent=2,sid=0x1000010d3530005,lop=SETW,est=1796307408197,to=12000,lcxid=0x39,lzxid=0x7c,lresp=1113604,llat=4,minlat=0,avglat=4,maxlat=4)
 /127.0.0.1:34576[1](queued=0,recved=2,sent=2,sid=0x1000010d3530004,lop=SETW,est=1796307407951,to=12000,lcxid=0x9c,lzxid=0x7c,lresp=1113360,llat=1,minlat=0,avglat=1,maxlat=1)
 /127.0.0.1:34644[0](queued=0,recved=1,sent=0)

`
)

func TestZooKeeperFourLetterParsing(t *testing.T) {
	wantOwners := map[string]string{
		"/kt-1/brokers/ids/1": "0x1000010d3530004",
		"/kt-1/brokers/ids/2": "0x1000010d3530003",
		"/kt-1/brokers/ids/3": "0x1000010d3530005",
		"/kt-1/controller":    "0x1000010d3530004",
	}
	if diff := cmp.Diff(wantOwners, ephemeralOwners(zkDump)); diff != "" {
		t.Errorf("ephemeralOwners (-want +got):\n%s", diff)
	}
	wantLive := map[string]bool{"0x1000010d3530003": true, "0x1000010d3530004": true, "0x1000010d3530005": true}
	if diff := cmp.Diff(wantLive, connectedSessions(zkCons)); diff != "" {
		t.Errorf("connectedSessions (-want +got):\n%s", diff)
	}
	if got := ephemeralOwners("SessionTracker dump:\nSession Sets (0)/(0):\n"); len(got) != 0 {
		t.Errorf("ephemeralOwners of a dump without ephemerals = %v", got)
	}
}

// metadata builds a Metadata answer: per topic, partitions as
// {leader, isr...}.
func metadata(topics map[string][][]int32, internal ...string) *kmsg.MetadataResponse {
	resp := kmsg.NewPtrMetadataResponse()
	for name, parts := range topics {
		rt := kmsg.NewMetadataResponseTopic()
		rt.Topic = kmsg.StringPtr(name)
		for _, in := range internal {
			rt.IsInternal = rt.IsInternal || in == name
		}
		for i, p := range parts {
			rp := kmsg.NewMetadataResponseTopicPartition()
			rp.Partition, rp.Leader, rp.ISR = int32(i), p[0], p[1:]
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// The watcher merges samples per (topic, partition, broker) into intervals:
// a healthy answer of that broker ends one, failed reads do not, another
// broker's disagreeing view is its own, internal topics are left out, and a
// topic of unknown min.insync.replicas asks for a refresh.
func TestISRWatcherMergesSamplesIntoIntervals(t *testing.T) {
	w := &ISRWatcher{parts: map[topicPartition]bool{}, minISR: map[string]int{"orders": 2}, open: map[breachKey]int{}}
	t0 := time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	steps := []struct {
		broker int32
		resp   *kmsg.MetadataResponse
		at     time.Time
		ask    bool
	}{
		{1, metadata(map[string][][]int32{"orders": {{1, 1, 2}, {1, 1}, {-1}}, "__consumer_offsets": {{-1}}}, "__consumer_offsets"), at(0), false},
		{2, metadata(map[string][][]int32{"orders": {{1, 1, 2}, {1, 1, 2}, {2, 2, 3}}}), at(0), false},
		{1, metadata(map[string][][]int32{"orders": {{1, 1, 2}, {2, 2}, {1, 1, 2}}}), at(time.Second), false},
		{1, metadata(map[string][][]int32{"orders": {{1, 1, 2}, {1, 1, 2}, {1, 1, 2}}}), at(2 * time.Second), false},
		{1, metadata(map[string][][]int32{"orders": {{1, 1, 2}, {1, 1}, {1, 1, 2}}, "fresh": {{3, 3}, {-1}}}), at(3 * time.Second), true},
	}
	for i, s := range steps {
		if ask := w.record(s.broker, s.resp, s.at); ask != s.ask {
			t.Errorf("step %d: record asked for a config refresh %v, want %v", i, ask, s.ask)
		}
	}
	want := ISRReport{Reads: 5, Partitions: 5, Breaches: []ISRBreach{
		{Topic: "orders", Partition: 1, Broker: 1, ISR: []int32{1}, Leader: 1, MinISR: 2, First: at(0), Last: at(time.Second), Samples: 2},
		{Topic: "orders", Partition: 2, Broker: 1, ISR: []int32{}, Leader: -1, MinISR: 2, First: at(0), Last: at(0), Samples: 1},
		{Topic: "fresh", Partition: 1, Broker: 1, ISR: []int32{}, Leader: -1, MinISR: 1, First: at(3 * time.Second), Last: at(3 * time.Second), Samples: 1, Ongoing: true},
		{Topic: "orders", Partition: 1, Broker: 1, ISR: []int32{1}, Leader: 1, MinISR: 2, First: at(3 * time.Second), Last: at(3 * time.Second), Samples: 1, Ongoing: true},
	}}
	got := w.Report()
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b []int32) bool { return len(a) == len(b) && (len(a) == 0 || cmp.Equal(a, b)) })); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	if n := len(got.Below()); n != 4 {
		t.Errorf("Below has %d breaches, want 4", n)
	}
}
