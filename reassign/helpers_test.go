package reassign

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/kupgrade/kupgrade/node"
)

// gen builds a balanced, rack-aware cluster: brokers 1..n, broker b in rack
// "r<b%racks>" (no racks if racks == 0), parts partitions over topics of 100
// partitions each, replication factor rf. Each layer of n partitions puts
// every broker once in every replica position, so replica and leader counts
// are equal when parts is a multiple of n.
func gen(n, racks, parts, rf int) (*Assignment, []node.Node) {
	bs := make([]node.Node, n)
	for i := range bs {
		bs[i].ID = int32(i + 1)
		if racks > 0 {
			bs[i].Rack = "r" + strconv.Itoa((i+1)%racks)
		}
	}
	var strides []int
	for s := 1; s*(rf-1) < n; s++ {
		if racks == 0 || gcd(s%racks, racks) == 1 {
			strides = append(strides, s)
		}
	}
	a := new(Assignment)
	a.Grow(parts, rf)
	reps := make([]int32, rf)
	for p := range parts {
		start, s := p%n, strides[(p/n)%len(strides)]
		for j := range reps {
			reps[j] = int32((start+j*s)%n + 1)
		}
		topic := "t" + strconv.Itoa(p/100)
		if err := a.Add(PartitionAssignment{Topic: topic, Partition: int32(p % 100), Replicas: reps, Leader: reps[0], Bytes: int64(p%7+1) << 20}); err != nil {
			panic(err)
		}
	}
	return a, bs
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// shuffled returns a copy of a with the partitions added in a random order.
func shuffled(a *Assignment, seed uint64) *Assignment {
	idx := rand.New(rand.NewPCG(seed, seed)).Perm(a.Len())
	out := new(Assignment)
	for _, i := range idx {
		if err := out.Add(a.At(i)); err != nil {
			panic(err)
		}
	}
	return out
}

// asg builds an Assignment from lines "topic-p r1,r2,r3 [L=leader] [B=bytes]".
// The leader defaults to the first replica.
func asg(t testing.TB, lines ...string) *Assignment {
	t.Helper()
	a := new(Assignment)
	for _, l := range lines {
		f := strings.Fields(l)
		tp := f[0]
		k := strings.LastIndexByte(tp, '-')
		p, _ := strconv.Atoi(tp[k+1:])
		reps := ids(f[1])
		part := PartitionAssignment{Topic: tp[:k], Partition: int32(p), Replicas: reps, Leader: reps[0]}
		for _, opt := range f[2:] {
			v, _ := strconv.Atoi(opt[2:])
			switch opt[:2] {
			case "L=":
				part.Leader = int32(v)
			case "B=":
				part.Bytes = int64(v)
			}
		}
		if err := a.Add(part); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

// brokerList parses "1:a 2:a 3:b 4" (id:rack, rack optional).
func brokerList(spec string) []node.Node {
	var out []node.Node
	for _, f := range strings.Fields(spec) {
		id, rack, _ := strings.Cut(f, ":")
		n, _ := strconv.Atoi(id)
		out = append(out, node.Node{ID: int32(n), Rack: rack})
	}
	return out
}

// mv parses "topic-p 1,2,3>1,2,4 [B=bytes]".
func mv(spec string) Move {
	f := strings.Fields(spec)
	k := strings.LastIndexByte(f[0], '-')
	p, _ := strconv.Atoi(f[0][k+1:])
	from, to, _ := strings.Cut(f[1], ">")
	m := Move{Topic: f[0][:k], Partition: int32(p), From: ids(from), To: ids(to)}
	if len(f) > 2 {
		b, _ := strconv.Atoi(strings.TrimPrefix(f[2], "B="))
		m.Bytes = int64(b)
	}
	return m
}

func mvs(specs ...string) Moves {
	out := make(Moves, len(specs))
	for i, s := range specs {
		out[i] = mv(s)
	}
	return out
}

func ids(s string) []int32 {
	var out []int32
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(f)
		if err != nil {
			panic(fmt.Sprintf("bad id list %q", s))
		}
		out = append(out, int32(n))
	}
	return out
}

// spread returns max-min of replica and leader counts after the plan over
// brokers that are not retired.
func spread(p MovePlan) (replicas, leaders int) {
	minR, maxR, minL, maxL := 1<<30, -1, 1<<30, -1
	for _, l := range p.Brokers {
		if l.Retired {
			continue
		}
		minR, maxR = min(minR, l.ReplicasAfter), max(maxR, l.ReplicasAfter)
		minL, maxL = min(minL, l.LeadersAfter), max(maxL, l.LeadersAfter)
	}
	return maxR - minR, maxL - minL
}
