package kraft

import (
	"fmt"
	"strings"
	"time"

	"github.com/kupgrade/kupgrade/health"
)

// The rules of [CanRestartController], in the vocabulary of package health
// (a [health.Reason] names its rule). Blocking reasons:
const (
	// RuleNoLeader: the quorum has no leader (or its leader is not among
	// the voters); nothing can be judged until one is elected.
	RuleNoLeader health.Rule = "no-leader"
	// RuleNotCaughtUp: a voter other than the one to restart is not caught
	// up: its last caught-up time is controller.quorum.fetch.timeout.ms or
	// more behind the leader's, or unknown. It is a warning when enough
	// other voters are caught up.
	RuleNotCaughtUp health.Rule = "not-caught-up"
	// RuleNoMajority: without the node, fewer caught-up voters than a
	// majority of the whole quorum would remain.
	RuleNoMajority health.Rule = "no-majority"
)

// Warnings of [CanRestartController] (the verdict stays OK):
const (
	// RuleNotVoter: the node is not a voter; restarting it does not touch
	// the quorum's majority.
	RuleNotVoter health.Rule = "not-voter"
	// RuleSingleVoter: the node is the only voter; the quorum has no leader
	// until it is back, and cannot have one any other way.
	RuleSingleVoter health.Rule = "single-voter"
	// RuleTwoVoters: a two-voter quorum loses its majority while either
	// voter restarts; allowed when the other voter is caught up, since no
	// order of restarts does better.
	RuleTwoVoters health.Rule = "two-voters"
	// RuleActiveController: the node is the active controller; restarting
	// it forces an election, so roll it last ([Quorum.RollOrder]).
	RuleActiveController health.Rule = "active-controller"
)

// DefaultFetchTimeout is Kafka's default controller.quorum.fetch.timeout.ms.
const DefaultFetchTimeout = 2 * time.Second

// A QuorumVerdict answers "can this controller be restarted now?": a
// [health.Verdict] (kind [health.KindCanRestart], the controller in Nodes,
// reasons in the vocabulary of package health) with the facts about the
// quorum it rests on.
type QuorumVerdict struct {
	health.Verdict
	// Leader is the active controller, -1 if none.
	Leader int32 `json:"leader"`
	// Voters are every voter's id.
	Voters []int32 `json:"voters"`
	// CaughtUp are the voters other than the controller asked about that
	// count as caught up.
	CaughtUp []int32 `json:"caughtUp"`
	// Needed is how many of them a restart needs.
	Needed int `json:"needed"`
	// FetchTimeout is the controller.quorum.fetch.timeout.ms used.
	FetchTimeout time.Duration `json:"fetchTimeout"`
	// Warnings are things to know even though the controller may be
	// restarted.
	Warnings []health.Reason `json:"warnings,omitempty"`
}

// node is the controller asked about.
func (v QuorumVerdict) node() int32 { return v.Nodes[0] }

// Err returns nil if v is OK, else an error that unwraps to
// [ErrQuorumUnsafe] (and [ErrNoLeader] when the quorum has no leader) and to
// a [*health.BlockedError] carrying v's reasons.
func (v QuorumVerdict) Err() error {
	if v.OK {
		return nil
	}
	return &blockedError{v: v}
}

// String renders the verdict in one line with its reasons (or warnings).
func (v QuorumVerdict) String() string {
	var b strings.Builder
	list := v.Warnings
	if v.OK {
		fmt.Fprintf(&b, "controller %d can restart", v.node())
	} else {
		fmt.Fprintf(&b, "cannot restart controller %d", v.node())
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

// blockedError is a negative [QuorumVerdict] as an error.
type blockedError struct{ v QuorumVerdict }

func (e *blockedError) Error() string { return "kraft: " + e.v.String() }

// Unwrap returns [ErrQuorumUnsafe], [ErrNoLeader] when that is why, and the
// verdict as a [*health.BlockedError].
func (e *blockedError) Unwrap() []error {
	errs := []error{ErrQuorumUnsafe}
	for _, r := range e.v.Reasons {
		if r.Rule == RuleNoLeader {
			errs = append(errs, ErrNoLeader)
			break
		}
	}
	return append(errs, &health.BlockedError{Verdict: e.v.Verdict})
}

// reason is a quorum reason about nodes: no topic, no partition, no leader.
func reason(rule health.Rule, nodes []int32, msg string) health.Reason {
	return health.Reason{Rule: rule, Partition: -1, Leader: -1, Nodes: nodes, Message: msg}
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
func CanRestartController(q Quorum, id int32, fetchTimeout time.Duration) QuorumVerdict {
	if fetchTimeout <= 0 {
		fetchTimeout = DefaultFetchTimeout
	}
	v := QuorumVerdict{Verdict: health.Verdict{Kind: health.KindCanRestart, Nodes: []int32{id}}, Leader: q.LeaderID, Voters: q.VoterIDs(), FetchTimeout: fetchTimeout, CaughtUp: []int32{}}
	leader, hasLeader := q.Leader()
	switch {
	case q.LeaderID < 0:
		v.Reasons = append(v.Reasons, reason(RuleNoLeader, []int32{id}, fmt.Sprintf("the quorum has no leader (epoch %d): wait for an election before restarting a controller", q.LeaderEpoch)))
		return v
	case !hasLeader:
		v.Reasons = append(v.Reasons, reason(RuleNoLeader, []int32{q.LeaderID}, fmt.Sprintf("the leader %d is not among the voters %v: the answer is inconsistent, ask again", q.LeaderID, v.Voters)))
		return v
	}
	if !q.IsVoter(id) {
		v.OK = true
		v.Warnings = append(v.Warnings, reason(RuleNotVoter, []int32{id}, fmt.Sprintf("node %d is not a voter of %v: restarting it does not touch the quorum's majority", id, v.Voters)))
		return v
	}

	var lagging []health.Reason
	for _, r := range q.Voters {
		if r.ID == id {
			continue
		}
		if why, ok := caughtUp(leader, r, fetchTimeout); ok {
			v.CaughtUp = append(v.CaughtUp, r.ID)
		} else {
			lagging = append(lagging, reason(RuleNotCaughtUp, []int32{r.ID}, why))
		}
	}
	n := len(q.Voters)
	switch n {
	case 1:
		v.Needed = 0
		v.Warnings = append(v.Warnings, reason(RuleSingleVoter, []int32{id}, fmt.Sprintf("controller %d is the only voter: the quorum has no leader and metadata cannot change until it is back (3 voters tolerate one down)", id)))
	case 2:
		v.Needed = 1
		if len(v.CaughtUp) == v.Needed {
			v.Warnings = append(v.Warnings, reason(RuleTwoVoters, v.Voters, fmt.Sprintf("a two-voter quorum %v has no majority while controller %d restarts: metadata cannot change until it is back (3 voters tolerate one down)", v.Voters, id)))
		}
	default:
		v.Needed = n/2 + 1
	}
	v.OK = len(v.CaughtUp) >= v.Needed
	if !v.OK {
		v.Reasons = append(lagging, reason(RuleNoMajority, []int32{id}, fmt.Sprintf("restarting controller %d would leave %d caught-up voter(s) %v of %d, and the quorum needs %d",
			id, len(v.CaughtUp), v.CaughtUp, n, v.Needed)))
		return v
	}
	v.Warnings = append(v.Warnings, lagging...)
	if id == q.LeaderID {
		v.Warnings = append(v.Warnings, reason(RuleActiveController, []int32{id}, fmt.Sprintf("controller %d is the active controller: restarting it forces an election, so roll it last", id)))
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
