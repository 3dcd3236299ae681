package health_test

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/health"
	"github.com/kupgrade/kupgrade/node"
)

// snap builds a Snapshot from lines in the test notation, one fact per line:
//
//	brokers=1,2,3 fenced=3                  registered brokers (omit: liveness unknown)
//	orders-0 r=1,2,3 isr=1,2 min=2          a partition: replicas, ISR, topic min ISR
//	orders-1 r=1,2,3 isr=1 leader=-1        leader defaults to the first ISR member, else -1
//	orders-2 r=1,2,3 isr=1,2 offline=3      offline replicas
//	secret-0 r=1,2 isr=1,2 unknown          min.insync.replicas could not be read
//
// The result is not indexed; use .Indexed() for that.
func snap(t testing.TB, lines ...string) health.Snapshot {
	t.Helper()
	var s health.Snapshot
	topics := map[string]*health.Topic{}
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if strings.HasPrefix(f[0], "brokers=") {
			fenced := map[int32]bool{}
			for _, kv := range f[1:] {
				k, v, _ := strings.Cut(kv, "=")
				if k != "fenced" {
					t.Fatalf("snap: %q: unknown broker field %q", line, k)
				}
				for _, id := range ids(t, v) {
					fenced[id] = true
				}
			}
			for _, id := range ids(t, strings.TrimPrefix(f[0], "brokers=")) {
				s.Brokers = append(s.Brokers, health.Broker{Node: node.Node{ID: id}, Fenced: fenced[id]})
			}
			continue
		}
		i := strings.LastIndex(f[0], "-")
		if i < 0 {
			t.Fatalf("snap: %q: want topic-partition first", line)
		}
		name := f[0][:i]
		pn, err := strconv.Atoi(f[0][i+1:])
		if err != nil {
			t.Fatalf("snap: %q: %v", line, err)
		}
		tp := topics[name]
		if tp == nil {
			tp = &health.Topic{Name: name}
			topics[name] = tp
		}
		p := health.Partition{Partition: int32(pn), Leader: -2}
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "r":
				p.Replicas = ids(t, v)
			case "isr":
				p.ISR = ids(t, v)
			case "offline":
				p.Offline = ids(t, v)
			case "leader":
				n, err := strconv.Atoi(v)
				if err != nil {
					t.Fatalf("snap: %q: %v", line, err)
				}
				p.Leader = int32(n)
			case "min":
				n, err := strconv.Atoi(v)
				if err != nil {
					t.Fatalf("snap: %q: %v", line, err)
				}
				tp.MinISR, tp.MinISRSource = int32(n), compat.SourceTopic
			case "unknown":
				tp.MinISRSource, tp.MinISRError = compat.SourceUnknown, "TOPIC_AUTHORIZATION_FAILED"
			default:
				t.Fatalf("snap: %q: unknown field %q", line, k)
			}
		}
		if p.Leader == -2 {
			p.Leader = -1
			if len(p.ISR) > 0 {
				p.Leader = p.ISR[0]
			}
		}
		if p.ISR == nil {
			p.ISR = []int32{}
		}
		tp.Partitions = append(tp.Partitions, p)
	}
	for _, name := range slices.Sorted(maps.Keys(topics)) {
		tp := topics[name]
		slices.SortFunc(tp.Partitions, func(a, b health.Partition) int { return cmp.Compare(a.Partition, b.Partition) })
		s.Topics = append(s.Topics, *tp)
	}
	return s
}

func ids(t testing.TB, s string) []int32 {
	t.Helper()
	out := []int32{}
	if s == "" {
		return out
	}
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("snap: bad id %q: %v", f, err)
		}
		out = append(out, int32(n))
	}
	return out
}

// brief renders a verdict's reasons as "topic-partition rule nodes", or
// just the rule for reasons without a partition.
func brief(v health.Verdict) []string {
	out := []string{}
	for _, r := range v.Reasons {
		if r.Topic == "" {
			out = append(out, string(r.Rule))
			continue
		}
		out = append(out, fmt.Sprintf("%s-%d %s %v", r.Topic, r.Partition, r.Rule, r.Nodes))
	}
	return out
}
