package reassign

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
)

// journalVersion is the version of the journal form; a newer one is refused.
const journalVersion = 1

// The states of a move in the journal.
const (
	statePending    = "pending"    // not submitted
	stateSubmitted  = "submitted"  // AlterPartitionAssignments sent (or about to be)
	stateCancelling = "cancelling" // cancel sent, not yet confirmed
	stateReverting  = "reverting"  // cancelled; original replica order being restored
	stateFinished   = "finished"   // target replicas in sync (Kind set: with an error)
	stateFailed     = "failed"     // given up
)

// A record is one move of a run as the journal keeps it.
type record struct {
	Move Move   `json:"move"`
	St   string `json:"state"`
	// Foreign marks a reassignment someone else started that the run
	// adopted: watched, never throttled, never resubmitted.
	Foreign bool `json:"foreign,omitempty"`
	// Kind and Reason describe the failure: Kind names the sentinel.
	Kind   string `json:"kind,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Resubmits counts how often the cluster dropped the move and it was
	// sent again.
	Resubmits int `json:"resubmits,omitempty"`
}

func (r *record) inFlight() bool {
	return r.St == stateSubmitted || r.St == stateCancelling || r.St == stateReverting
}

func (r *record) ended() bool { return r.St == stateFinished || r.St == stateFailed }

var kinds = map[string]error{
	"dead":     ErrDeadBroker,
	"slow":     ErrTooSlow,
	"stale":    ErrStale,
	"rejected": ErrRejected,
	"aborted":  ErrAborted,
}

func kindOf(err error) string {
	for k, v := range kinds {
		if v == err {
			return k
		}
	}
	return "stale"
}

// result returns the record's outcome.
func (r *record) result() MoveResult {
	res := MoveResult{Move: r.Move}
	if r.Kind != "" {
		res.Err = &MoveError{Move: r.Move, Reason: r.Reason, Err: kinds[r.Kind]}
	}
	return res
}

// A journal is an Executor's state in its Store.
type journal struct {
	Version int    `json:"version"`
	ID      string `json:"id"`
	// Done: every move ended and every throttle is restored.
	Done   bool    `json:"done"`
	Ledger *ledger `json:"ledger"`
	// Unapplied are throttle changes journaled and not known to be applied:
	// the last ledger call's, and any that failed (a broker down). The
	// latest change of each config wins.
	Unapplied []change `json:"unapplied,omitempty"`
	// Excluded are brokers whose throttles the run never touches: they were
	// down when it began, so their existing configs could not be read.
	Excluded []int32  `json:"excluded,omitempty"`
	Moves    []record `json:"moves"`
}

// change is a ConfigChange in journal form.
type change struct {
	Topic  string `json:"topic,omitempty"`
	Broker *int32 `json:"broker,omitempty"`
	Name   string `json:"name"`
	Value  string `json:"value,omitempty"`
	Delete bool   `json:"delete,omitempty"`
}

func toChange(c ConfigChange) change {
	ch := change{Name: c.Name, Value: c.Value, Delete: c.Op == kadm.DeleteConfig}
	if c.Resource == BrokerResource {
		b := c.Broker
		ch.Broker = &b
	} else {
		ch.Topic = c.Topic
	}
	return ch
}

func (c change) configChange() ConfigChange {
	cc := ConfigChange{Resource: TopicResource, Topic: c.Topic, Name: c.Name, Op: kadm.SetConfig, Value: c.Value}
	if c.Broker != nil {
		cc.Resource, cc.Broker, cc.Topic = BrokerResource, *c.Broker, ""
	}
	if c.Delete {
		cc.Op, cc.Value = kadm.DeleteConfig, ""
	}
	return cc
}

func (c change) key() string {
	if c.Broker != nil {
		return "b" + strconv.Itoa(int(*c.Broker)) + "/" + c.Name
	}
	return "t" + c.Topic + "/" + c.Name
}

// addUnapplied merges cs into the unapplied changes: a later change of a
// config replaces an earlier one.
func (j *journal) addUnapplied(cs ConfigChanges) {
	if len(cs) == 0 {
		return
	}
	byKey := make(map[string]int, len(j.Unapplied))
	for i, c := range j.Unapplied {
		byKey[c.key()] = i
	}
	for _, c := range cs {
		ch := toChange(c)
		if i, ok := byKey[ch.key()]; ok {
			j.Unapplied[i] = ch
			continue
		}
		byKey[ch.key()] = len(j.Unapplied)
		j.Unapplied = append(j.Unapplied, ch)
	}
}

func (j *journal) unapplied() ConfigChanges {
	out := make(ConfigChanges, len(j.Unapplied))
	for i, c := range j.Unapplied {
		out[i] = c.configChange()
	}
	return out
}

func (j *journal) results() MoveResults {
	var rs MoveResults
	for i := range j.Moves {
		if j.Moves[i].ended() {
			rs.Add(j.Moves[i].result())
		}
	}
	return rs
}

func decodeJournal(b []byte) (*journal, error) {
	var j journal
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("reassign: stored state is damaged: %w", err)
	}
	if j.Version > journalVersion {
		return nil, fmt.Errorf("reassign: stored state has version %d, newer than this executor's %d", j.Version, journalVersion)
	}
	if j.Ledger == nil {
		return nil, fmt.Errorf("reassign: stored state has no throttle ledger")
	}
	return &j, nil
}

// runID identifies a list of moves: the digest of their topics, partitions
// and replicas, in order. Bytes do not count: they are re-measured.
func runID(ms Moves) string {
	h := sha256.New()
	for _, m := range ms {
		fmt.Fprintf(h, "%q %d %v %v\n", m.Topic, m.Partition, m.From, m.To)
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

func sortedInt32(m map[int32]bool) []int32 { return slices.Sorted(maps.Keys(m)) }
