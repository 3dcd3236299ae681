package kraft

import (
	"fmt"
	"strings"
	"time"
)

// A Rule names why a [Reason] blocks or warns.
type Rule string

// The rules of [CanRestartController]. Blocking reasons:
const (
	// RuleNoLeader: the quorum has no leader (or its leader is not among
	// the voters); nothing can be judged until one is elected.
	RuleNoLeader Rule = "no-leader"
	// RuleNotCaughtUp: a voter other than the one to restart is not caught
	// up: its last caught-up time is controller.quorum.fetch.timeout.ms or
	// more behind the leader's, or unknown. It is a warning when enough
	// other voters are caught up.
	RuleNotCaughtUp Rule = "not-caught-up"
	// RuleNoMajority: without the node, fewer caught-up voters than a
	// majority of the whole quorum would remain.
	RuleNoMajority Rule = "no-majority"
)

// Warnings of [CanRestartController] (the verdict stays OK):
const (
	// RuleNotVoter: the node is not a voter; restarting it does not touch
	// the quorum's majority.
	RuleNotVoter Rule = "not-voter"
	// RuleSingleVoter: the node is the only voter; the quorum has no leader
	// until it is back, and cannot have one any other way.
	RuleSingleVoter Rule = "single-voter"
	// RuleTwoVoters: a two-voter quorum loses its majority while either
	// voter restarts; allowed when the other voter is caught up, since no
	// order of restarts does better.
	RuleTwoVoters Rule = "two-voters"
	// RuleActiveController: the node is the active controller; restarting
	// it forces an election, so roll it last ([Quorum.RollOrder]).
	RuleActiveController Rule = "active-controller"
)

// DefaultFetchTimeout is Kafka's default controller.quorum.fetch.timeout.ms.
const DefaultFetchTimeout = 2 * time.Second

// A Reason is one thing that blocks a [Verdict], or that it warns about.
type Reason struct {
	// Rule is which rule the reason is about.
	Rule Rule `json:"rule"`
	// Nodes are the voters the reason is about: the one not caught up, the
	// one to restart.
	Nodes []int32 `json:"nodes,omitempty"`
	// Message says it in one sentence, for example "voter 2 last caught up
	// 9.1s before the leader (controller.quorum.fetch.timeout.ms 2s): it is
	// down or lagging".
	Message string `json:"message"`
}

// String returns the message.
func (r Reason) String() string { return r.Message }

// A Verdict answers "can this controller be restarted now?".
type Verdict struct {
	// Node is the controller asked about.
	Node int32 `json:"node"`
	// OK is true if nothing blocks (Reasons is empty).
	OK bool `json:"ok"`
	// Leader is the active controller, -1 if none.
	Leader int32 `json:"leader"`
	// Voters are every voter's id.
	Voters []int32 `json:"voters"`
	// CaughtUp are the voters other than Node that count as caught up.
	CaughtUp []int32 `json:"caughtUp"`
	// Needed is how many of them a restart of Node needs.
	Needed int `json:"needed"`
	// FetchTimeout is the controller.quorum.fetch.timeout.ms used.
	FetchTimeout time.Duration `json:"fetchTimeout"`
	// Reasons are why Node cannot be restarted now; empty if OK.
	Reasons []Reason `json:"reasons,omitempty"`
	// Warnings are things to know even though Node may be restarted.
	Warnings []Reason `json:"warnings,omitempty"`
}

// Err returns nil if v is OK, else a [*BlockedError] carrying v.
func (v Verdict) Err() error {
	if v.OK {
		return nil
	}
	return &BlockedError{Verdict: v}
}

// String renders the verdict in one line with its reasons (or warnings).
func (v Verdict) String() string {
	var b strings.Builder
	list := v.Warnings
	if v.OK {
		fmt.Fprintf(&b, "controller %d can restart", v.Node)
	} else {
		fmt.Fprintf(&b, "cannot restart controller %d", v.Node)
		list = v.Reasons
	}
	for i, r := range list {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(r.Message)
	}
	return b.String()
}

// A BlockedError is a negative [Verdict] as an error. It unwraps to
// [ErrQuorumUnsafe], and also to [ErrNoLeader] when the quorum has no
// leader.
type BlockedError struct {
	Verdict Verdict
}

// Error renders the verdict with its reasons.
func (e *BlockedError) Error() string { return "kraft: " + e.Verdict.String() }

// Unwrap returns [ErrQuorumUnsafe], plus [ErrNoLeader] when that is why.
func (e *BlockedError) Unwrap() []error {
	errs := []error{ErrQuorumUnsafe}
	for _, r := range e.Verdict.Reasons {
		if r.Rule == RuleNoLeader {
			errs = append(errs, ErrNoLeader)
			break
		}
	}
	return errs
}

// CanRestartController reports whether controller id can be restarted
// without costing the quorum its majority, and why not. No I/O: q is a
// [DescribeQuorum] answer and fetchTimeout the quorum's
// controller.quorum.fetch.timeout.ms ([QuorumFetchTimeout] reads it;
// zero or less means Kafka's default, 2s).
//
// The rule is Strimzi's (KafkaQuorumCheck): with no leader, refuse. A voter
// other than id counts as caught up if it is the leader, or if the leader's
// last caught-up time minus the voter's is less than fetchTimeout (both
// times are the leader's clock, so no clock skew enters). At least a
// majority of the whole quorum, N/2+1 voters, must be caught up without id.
// A one-voter quorum may restart its voter, with a warning; so may a
// two-voter quorum when the other voter is caught up, because no order of
// restarts keeps a majority there. A node that is not a voter may always
// restart. Restarting the active controller is allowed, with a warning to
// roll it last.
func CanRestartController(q Quorum, id int32, fetchTimeout time.Duration) Verdict {
	if fetchTimeout <= 0 {
		fetchTimeout = DefaultFetchTimeout
	}
	v := Verdict{Node: id, Leader: q.LeaderID, Voters: q.VoterIDs(), FetchTimeout: fetchTimeout, CaughtUp: []int32{}}
	leader, hasLeader := q.Leader()
	switch {
	case q.LeaderID < 0:
		v.Reasons = append(v.Reasons, Reason{Rule: RuleNoLeader, Nodes: []int32{id},
			Message: fmt.Sprintf("the quorum has no leader (epoch %d): wait for an election before restarting a controller", q.LeaderEpoch)})
		return v
	case !hasLeader:
		v.Reasons = append(v.Reasons, Reason{Rule: RuleNoLeader, Nodes: []int32{q.LeaderID},
			Message: fmt.Sprintf("the leader %d is not among the voters %v: the answer is inconsistent, ask again", q.LeaderID, v.Voters)})
		return v
	}
	if !q.IsVoter(id) {
		v.OK = true
		v.Warnings = append(v.Warnings, Reason{Rule: RuleNotVoter, Nodes: []int32{id},
			Message: fmt.Sprintf("node %d is not a voter of %v: restarting it does not touch the quorum's majority", id, v.Voters)})
		return v
	}

	var lagging []Reason
	for _, r := range q.Voters {
		if r.ID == id {
			continue
		}
		if why, ok := caughtUp(leader, r, fetchTimeout); ok {
			v.CaughtUp = append(v.CaughtUp, r.ID)
		} else {
			lagging = append(lagging, Reason{Rule: RuleNotCaughtUp, Nodes: []int32{r.ID}, Message: why})
		}
	}
	n := len(q.Voters)
	switch n {
	case 1:
		v.Needed = 0
		v.Warnings = append(v.Warnings, Reason{Rule: RuleSingleVoter, Nodes: []int32{id},
			Message: fmt.Sprintf("controller %d is the only voter: the quorum has no leader and metadata cannot change until it is back (3 voters tolerate one down)", id)})
	case 2:
		v.Needed = 1
		if len(v.CaughtUp) == v.Needed {
			v.Warnings = append(v.Warnings, Reason{Rule: RuleTwoVoters, Nodes: v.Voters,
				Message: fmt.Sprintf("a two-voter quorum %v has no majority while controller %d restarts: metadata cannot change until it is back (3 voters tolerate one down)", v.Voters, id)})
		}
	default:
		v.Needed = n/2 + 1
	}
	v.OK = len(v.CaughtUp) >= v.Needed
	if !v.OK {
		v.Reasons = append(lagging, Reason{Rule: RuleNoMajority, Nodes: []int32{id},
			Message: fmt.Sprintf("restarting controller %d would leave %d caught-up voter(s) %v of %d, and the quorum needs %d",
				id, len(v.CaughtUp), v.CaughtUp, n, v.Needed)})
		return v
	}
	v.Warnings = append(v.Warnings, lagging...)
	if id == q.LeaderID {
		v.Warnings = append(v.Warnings, Reason{Rule: RuleActiveController, Nodes: []int32{id},
			Message: fmt.Sprintf("controller %d is the active controller: restarting it forces an election, so roll it last", id)})
	}
	return v
}

// caughtUp applies the caught-up rule to voter r, and says why not.
func caughtUp(leader, r Replica, fetchTimeout time.Duration) (string, bool) {
	if r.ID == leader.ID {
		return "", true
	}
	switch {
	case leader.LastCaughtUp.IsZero():
		return fmt.Sprintf("voter %d: the leader %d reports no caught-up times (DescribeQuorum v0, Kafka before 3.3), so no voter can be judged caught up", r.ID, leader.ID), false
	case r.LastCaughtUp.IsZero():
		return fmt.Sprintf("voter %d has never caught up with the leader %d since it became leader: it is down or still starting", r.ID, leader.ID), false
	}
	behind := leader.LastCaughtUp.Sub(r.LastCaughtUp)
	if behind < fetchTimeout {
		return "", true
	}
	return fmt.Sprintf("voter %d last caught up %v before the leader %d (controller.quorum.fetch.timeout.ms %v): it is down or lagging",
		r.ID, behind.Round(time.Millisecond), leader.ID, fetchTimeout), false
}

// VoterCaughtUp reports whether voter id is caught up with the quorum
// leader, by the rule [CanRestartController] applies to the other voters: it
// is the leader, or its last caught-up time is less than fetchTimeout behind
// the leader's (zero or less means Kafka's default, 2s). If not, the string
// says why. A runner asks it after restarting a controller, before going on.
// No I/O.
func VoterCaughtUp(q Quorum, id int32, fetchTimeout time.Duration) (bool, string) {
	if fetchTimeout <= 0 {
		fetchTimeout = DefaultFetchTimeout
	}
	leader, ok := q.Leader()
	if !ok {
		return false, fmt.Sprintf("the quorum has no leader (epoch %d)", q.LeaderEpoch)
	}
	r, ok := q.Voter(id)
	if !ok {
		return false, fmt.Sprintf("node %d is not among the voters %v", id, q.VoterIDs())
	}
	why, ok := caughtUp(leader, r, fetchTimeout)
	return ok, why
}
