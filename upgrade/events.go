package upgrade

import (
	"fmt"
	"strings"
	"time"

	"github.com/kupgrade/kupgrade/health"
)

// EventKind says what happened in an [Event].
type EventKind string

// The kinds of event a [Runner] emits, in the order a step produces them.
const (
	// EventRunStarted: Run began (or resumed) a plan.
	EventRunStarted EventKind = "run-started"
	// EventStepStarted: a step began.
	EventStepStarted EventKind = "step-started"
	// EventStepSkipped: a step had nothing to do (already done in an
	// earlier run, or its change was already in effect).
	EventStepSkipped EventKind = "step-skipped"
	// EventGateBlocked: a health or quorum gate refused the step; the Runner
	// waits and checks again. Reasons says what blocks.
	EventGateBlocked EventKind = "gate-blocked"
	// EventGatePassed: the gates allow the step.
	EventGatePassed EventKind = "gate-passed"
	// EventRestarting: the Orchestrator is asked to restart the node.
	EventRestarting EventKind = "restarting"
	// EventRestarted: the Orchestrator's Restart returned.
	EventRestarted EventKind = "restarted"
	// EventWaiting: the Runner waits for the node to catch up (or a
	// feature level to show); Reasons says what is still missing.
	EventWaiting EventKind = "waiting"
	// EventLeadersMoved: while a restarted ZooKeeper-mode broker catches
	// up, the Runner moved the leadership of partitions whose leader did not
	// take it back into their ISR (a leader whose requests to the controller
	// stopped) to other in-sync replicas, or put those partitions' replicas
	// back in their order once the broker was back. Message names them.
	EventLeadersMoved EventKind = "leaders-moved"
	// EventCaughtUp: the restarted node is back: registered, unfenced and
	// in the ISR of every partition it hosts.
	EventCaughtUp EventKind = "caught-up"
	// EventStepDone: a step finished. Like EventStepSkipped,
	// EventStepFailed and EventHeld, it is emitted once the journal
	// records it.
	EventStepDone EventKind = "step-done"
	// EventStepFailed: a step failed; Err says why. The run stops.
	EventStepFailed EventKind = "step-failed"
	// EventHeld: the run stopped before a held step (see [Step.Hold]).
	EventHeld EventKind = "held"
	// EventRunDone: every step of the plan is finished.
	EventRunDone EventKind = "run-done"
)

// An Event reports progress of a [Runner]. Programs act on events; nobody
// needs to parse logs.
type Event struct {
	Time time.Time `json:"time"`
	Kind EventKind `json:"kind"`
	// Step is the index of the step in the plan, -1 for run events.
	Step int `json:"step"`
	// StepKind and Node describe the step (Node is -1 when no node is
	// concerned).
	StepKind StepKind `json:"stepKind,omitempty"`
	Node     int32    `json:"node"`
	// Batch is the number of the batch of restarts the step belongs to,
	// counted from 1 in the journal (see [BatchRestarts]); 0 for a step run
	// on its own.
	Batch int `json:"batch,omitempty"`
	// Elapsed is the time since the step (or the run) started.
	Elapsed time.Duration `json:"elapsed,omitempty"`
	// Reasons explains a blocked gate or a wait.
	Reasons []health.Reason `json:"reasons,omitempty"`
	// Message is a short human description.
	Message string `json:"message,omitempty"`
	// Err is the error of a failed step.
	Err error `json:"-"`
}

// String formats the event on one line, as a progress line.
func (e Event) String() string {
	var b strings.Builder
	b.WriteString(string(e.Kind))
	if e.Step >= 0 {
		fmt.Fprintf(&b, " step %d", e.Step+1)
		if e.StepKind != "" {
			fmt.Fprintf(&b, " (%s", e.StepKind)
			if e.Node >= 0 {
				fmt.Fprintf(&b, " node %d", e.Node)
			}
			if e.Batch > 0 {
				fmt.Fprintf(&b, " batch %d", e.Batch)
			}
			b.WriteString(")")
		}
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.Elapsed > 0 {
		fmt.Fprintf(&b, " [%v]", e.Elapsed.Round(time.Millisecond))
	}
	for i, r := range e.Reasons {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(e.Reasons)-3)
			break
		}
		b.WriteString("; " + r.String())
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}
