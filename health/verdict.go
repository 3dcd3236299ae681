package health

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Sentinel errors that a [*BlockedError] wraps, one per kind of check; test
// for them with [errors.Is].
var (
	// ErrUnsafe reports that restarting the nodes asked about is not safe now.
	ErrUnsafe = errors.New("health: restart is not safe now")
	// ErrNotCaughtUp reports that a restarted node is not back yet.
	ErrNotCaughtUp = errors.New("health: node has not caught up")
	// ErrCanaryFailed reports that some broker did not round-trip a canary
	// record in time.
	ErrCanaryFailed = errors.New("health: canary failed")
)

// A Kind names the question a [Verdict] answers.
type Kind string

// The kinds of verdicts.
const (
	KindCanRestart Kind = "can-restart" // from CanRestart and Gate.CanRestart
	KindCaughtUp   Kind = "caught-up"   // from CaughtUp
	KindCanary     Kind = "canary"      // from ProbeResults.Within
)

// A Rule names why a [Reason] blocks.
type Rule string

// The rules of [CanRestart] and [Gate.CanRestart], per partition hosted by the
// nodes to restart, in the order they are tried (a partition gets one reason,
// the first rule it breaks):
const (
	// RuleGoesOffline: every live in-sync replica is among the nodes; the
	// partition would have no leader. Applies whatever the replication
	// factor; [AllowOfflineRF1] exempts single-replica partitions.
	RuleGoesOffline Rule = "goes-offline"
	// RuleMinISRUnknown: the topic's min.insync.replicas could not be read,
	// so no promise can be made (replication factor above 1 only).
	RuleMinISRUnknown Rule = "min-isr-unknown"
	// RuleUnderMinISR: the live ISR is already below min.insync.replicas and
	// one of the nodes holds a replica; a replica outside the ISR may be
	// the first to catch up. Only when the replication factor exceeds
	// min.insync.replicas (Strimzi's rule).
	RuleUnderMinISR Rule = "under-min-isr"
	// RuleBelowMinISR: the live ISR would drop below min.insync.replicas.
	// Only when the replication factor exceeds min.insync.replicas.
	RuleBelowMinISR Rule = "below-min-isr"
)

// Cluster-wide rules of a [Gate] with limits ([MaxOffline],
// [MaxUnderReplicated], [MaxUnderMinISR], [NoWorseThan]). Their reasons have
// no topic and partition -1.
const (
	RuleClusterOffline         Rule = "cluster-offline"          // too many offline partitions
	RuleClusterUnderReplicated Rule = "cluster-under-replicated" // too many under-replicated partitions
	RuleClusterUnderMinISR     Rule = "cluster-under-min-isr"    // too many partitions under min ISR
)

// The rules of [CaughtUp].
const (
	// RuleNodeDown: the node is not registered, or is fenced.
	RuleNodeDown Rule = "node-down"
	// RuleNotInISR: the node holds a replica that is not in the ISR.
	RuleNotInISR Rule = "not-in-isr"
	// RuleReplicaOffline: the node's replica is on an offline log directory.
	RuleReplicaOffline Rule = "replica-offline"
	// RuleNotPreferredLeader: the node is the preferred leader but does not
	// lead (only with [LeadsPreferred]).
	RuleNotPreferredLeader Rule = "not-preferred-leader"
)

// The rules of [ProbeResults.Within].
const (
	// RuleCanaryFailed: the round trip through a broker failed.
	RuleCanaryFailed Rule = "canary-failed"
	// RuleCanarySlow: the round trip through a broker took too long.
	RuleCanarySlow Rule = "canary-slow"
)

// A Reason is one thing that makes a [Verdict] negative, with the facts it
// rests on. Its slices may share memory with the [Snapshot]; do not modify
// them.
type Reason struct {
	// Rule is which rule was broken.
	Rule Rule `json:"rule"`
	// Topic and Partition locate the partition the reason is about; Topic is
	// empty and Partition -1 for reasons about a node or the whole cluster.
	Topic     string `json:"topic,omitempty"`
	Partition int32  `json:"partition"`
	// Nodes are the nodes the reason is about: those to restart that hold a
	// replica of the partition, the node that has not caught up, or the
	// broker a canary probe went through.
	Nodes []int32 `json:"nodes,omitempty"`
	// Leader, Replicas and ISR are the partition's state in the snapshot;
	// Leader is -1 for reasons not about a partition.
	Leader   int32   `json:"leader"`
	Replicas []int32 `json:"replicas,omitempty"`
	ISR      []int32 `json:"isr,omitempty"`
	// ISRAfter is the live ISR that would remain after the restart
	// (CanRestart only).
	ISRAfter []int32 `json:"isrAfter,omitempty"`
	// MinISR is the partition's effective min.insync.replicas, where it
	// matters.
	MinISR int32 `json:"minIsr,omitempty"`
	// Message says all of the above in one human sentence, for example
	// "orders-3: ISR {1,2} would drop to {2}, below min.insync.replicas 2".
	Message string `json:"message"`
}

// String returns the reason's message.
func (r Reason) String() string { return r.Message }

// A Verdict is the answer to a check: OK, or every reason why not.
type Verdict struct {
	// Kind is the question answered.
	Kind Kind `json:"kind"`
	// Nodes are the nodes asked about, sorted and without duplicates.
	Nodes []int32 `json:"nodes"`
	// OK is true if nothing blocks (Reasons is empty).
	OK bool `json:"ok"`
	// Checked is how many partitions (or, for a canary, brokers) were
	// examined.
	Checked int `json:"checked"`
	// Reasons are every blocking reason, sorted by topic, partition and
	// rule (node- and cluster-level reasons first).
	Reasons []Reason `json:"reasons,omitempty"`
}

// Err returns nil if v is OK, or a [*BlockedError] carrying v.
func (v Verdict) Err() error {
	if v.OK {
		return nil
	}
	return &BlockedError{Verdict: v}
}

// Rules returns how many reasons break each rule.
func (v Verdict) Rules() map[Rule]int {
	m := make(map[Rule]int)
	for _, r := range v.Reasons {
		m[r.Rule]++
	}
	return m
}

// String renders the verdict with at most three reasons, for example
// "cannot restart node 2: orders-3: ISR {1,2} would drop to {2}, below
// min.insync.replicas 2".
func (v Verdict) String() string { return v.summary(3) }

func (v Verdict) summary(max int) string {
	var b strings.Builder
	b.WriteString(v.headline())
	if v.OK {
		fmt.Fprintf(&b, " (%d checked)", v.Checked)
		return b.String()
	}
	b.WriteString(": ")
	for i, r := range v.Reasons {
		if i == max {
			fmt.Fprintf(&b, "; and %d more", len(v.Reasons)-max)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(r.Message)
	}
	return b.String()
}

func (v Verdict) headline() string {
	who := nodeWord(v.Nodes)
	switch v.Kind {
	case KindCanRestart:
		if v.OK {
			return who + " can restart"
		}
		return "cannot restart " + who
	case KindCaughtUp:
		if v.OK {
			return who + " caught up"
		}
		return who + " not caught up"
	case KindCanary:
		if v.OK {
			return "canary ok through " + strings.Replace(who, "node", "broker", 1)
		}
		return "canary failed"
	}
	if v.OK {
		return "ok"
	}
	return "blocked"
}

// nodeWord renders "node 2" or "nodes {1,2}".
func nodeWord(nodes []int32) string {
	if len(nodes) == 1 {
		return "node " + strconv.Itoa(int(nodes[0]))
	}
	return "nodes " + fmtSet(nodes)
}

// A BlockedError is a negative [Verdict] as an error. It unwraps to
// [ErrUnsafe], [ErrNotCaughtUp] or [ErrCanaryFailed], after the verdict's kind.
type BlockedError struct {
	Verdict Verdict // the negative verdict, with every reason
}

// Error renders the verdict with its first three reasons.
func (e *BlockedError) Error() string { return "health: " + e.Verdict.summary(3) }

// Unwrap returns the sentinel for the verdict's kind.
func (e *BlockedError) Unwrap() error {
	switch e.Verdict.Kind {
	case KindCaughtUp:
		return ErrNotCaughtUp
	case KindCanary:
		return ErrCanaryFailed
	default:
		return ErrUnsafe
	}
}

// sortReasons orders reasons by topic, partition and rule.
func sortReasons(rs []Reason) {
	slices.SortFunc(rs, func(a, b Reason) int {
		return cmp.Or(
			strings.Compare(a.Topic, b.Topic),
			cmp.Compare(a.Partition, b.Partition),
			strings.Compare(string(a.Rule), string(b.Rule)),
			slices.Compare(a.Nodes, b.Nodes),
		)
	})
}

// normNodes returns nodes sorted, without duplicates, in a new slice.
func normNodes(nodes []int32) []int32 {
	out := slices.Clone(nodes)
	slices.Sort(out)
	return slices.Compact(out)
}

// fmtSet renders ids as "{1,2,3}".
func fmtSet(ids []int32) string {
	b := make([]byte, 0, 2+4*len(ids))
	b = appendSet(b, ids)
	return string(b)
}

func appendSet(b []byte, ids []int32) []byte {
	b = append(b, '{')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(id), 10)
	}
	return append(b, '}')
}

// tp renders "topic-partition".
func tp(topic string, p int32) string { return topic + "-" + strconv.Itoa(int(p)) }
