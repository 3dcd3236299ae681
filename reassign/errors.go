package reassign

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors, for errors.Is. The typed errors below unwrap to them.
var (
	// ErrInvalid reports input that cannot be planned, batched or throttled
	// as given: an unknown broker, a partition added twice, a malformed
	// throttle config. Nothing was computed.
	ErrInvalid = errors.New("reassign: invalid input")

	// ErrUnplaceable reports a partition whose replication factor cannot be
	// kept on the brokers that remain.
	ErrUnplaceable = errors.New("reassign: not enough brokers to keep the replication factor")

	// ErrUnknownMove reports a move given to a [Batcher] that is not in the
	// moves it was built with.
	ErrUnknownMove = errors.New("reassign: move is not in the batcher's plan")
)

// A BrokerError says why a broker named in a [BrokerChange] or a broker list is
// unusable. It unwraps to [ErrInvalid].
type BrokerError struct {
	Broker int32
	Reason string // e.g. "is both retired and added"
}

// Error returns "reassign: broker <id> <reason>".
func (e *BrokerError) Error() string {
	return fmt.Sprintf("reassign: broker %d %s", e.Broker, e.Reason)
}

// Unwrap returns [ErrInvalid].
func (e *BrokerError) Unwrap() error { return ErrInvalid }

// A PartitionError says why one partition cannot be planned or moved. Err is
// the sentinel it unwraps to: [ErrInvalid], [ErrUnplaceable] or
// [ErrUnknownMove].
type PartitionError struct {
	Topic     string
	Partition int32
	Reason    string
	Err       error
}

// Error returns "reassign: <topic>-<partition>: <reason>".
func (e *PartitionError) Error() string {
	return fmt.Sprintf("reassign: %s-%d: %s", e.Topic, e.Partition, e.Reason)
}

// Unwrap returns e.Err.
func (e *PartitionError) Unwrap() error { return e.Err }

// A ConfigError says why a throttle config the cluster already has cannot
// be merged with the executor's own. It unwraps to [ErrInvalid].
type ConfigError struct {
	Resource string // "broker 3" or "topic orders"
	Name     string // the config key
	Value    string
	Reason   string
}

// Error returns the resource, the config and its value, and the reason.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("reassign: %s: %s=%q: %s", e.Resource, e.Name, e.Value, e.Reason)
}

// Unwrap returns [ErrInvalid].
func (e *ConfigError) Unwrap() error { return ErrInvalid }

// Sentinel errors of an [Executor], for errors.Is. A failed move's
// [MoveError] unwraps to one of the first four; the others come from the
// executor's methods themselves.
var (
	// ErrDeadBroker reports a move whose destination broker left the
	// cluster: the executor cancelled it (or did not submit it), and the
	// partition went back to its original replicas.
	ErrDeadBroker = errors.New("reassign: destination broker is down")

	// ErrTooSlow reports a move that exceeded its time budget (see
	// [MoveBudget]); the executor cancelled it.
	ErrTooSlow = errors.New("reassign: move exceeded its time budget")

	// ErrStale reports a move whose partition is not as the plan assumed:
	// it no longer exists, its replicas changed, or someone else reassigned
	// it. The executor left it alone.
	ErrStale = errors.New("reassign: partition is not as the plan assumed")

	// ErrRejected reports a move Kafka refused to start.
	ErrRejected = errors.New("reassign: Kafka rejected the reassignment")

	// ErrAborted reports a move that [Executor.Abort] cancelled or never
	// started.
	ErrAborted = errors.New("reassign: run aborted")

	// ErrForeign reports reassignments in flight that this executor did not
	// start; see [ForeignError] and [AdoptForeign].
	ErrForeign = errors.New("reassign: reassignments this executor did not start are in flight")

	// ErrOtherRun reports that the executor's [Store] holds an unfinished
	// run of other moves: resume it with [Executor.Resume] or cancel it with
	// [Executor.Abort] first.
	ErrOtherRun = errors.New("reassign: store holds an unfinished run of other moves")

	// ErrThrottlesLeft reports throttle configs the executor could not
	// restore yet; see [ThrottleError].
	ErrThrottlesLeft = errors.New("reassign: throttles not restored")
)

// A MoveError says why one move of an execution failed. Err is the sentinel
// it unwraps to: [ErrDeadBroker], [ErrTooSlow], [ErrStale], [ErrRejected] or
// [ErrAborted].
type MoveError struct {
	Move   Move
	Reason string // e.g. "cancelled: destination broker 4 is down"
	Err    error
}

// Error returns "reassign: <move>: <reason>".
func (e *MoveError) Error() string {
	return fmt.Sprintf("reassign: %v: %s", e.Move, e.Reason)
}

// Unwrap returns e.Err.
func (e *MoveError) Unwrap() error { return e.Err }

// A ForeignError lists the reassignments in flight that an [Executor] did
// not start, which it refuses to run beside unless told to adopt them with
// [AdoptForeign], as Cruise Control refuses "ongoing reassignments by an
// external agent". Each is given as a [Move] from the replicas before it
// (in no known order) to its target. It unwraps to [ErrForeign].
type ForeignError struct {
	Reassignments Moves
}

// Error names up to five of the reassignments.
func (e *ForeignError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "reassign: %d reassignment(s) this executor did not start are in flight: ", len(e.Reassignments))
	for i, m := range e.Reassignments {
		if i == 5 {
			b.WriteString(", …")
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(m.String())
	}
	b.WriteString("; wait for them, or adopt them with AdoptForeign")
	return b.String()
}

// Unwrap returns [ErrForeign].
func (e *ForeignError) Unwrap() error { return ErrForeign }

// A ThrottleError lists throttle config changes an [Executor] could not
// apply at the end of a run, typically because their broker is down (a
// broker's dynamic config can only be changed through that broker). Its
// [Store] keeps them: call [Executor.Resume] once the brokers are back, and
// it applies them and finishes the run. It unwraps to [ErrThrottlesLeft].
type ThrottleError struct {
	Changes ConfigChanges
	Err     error // the last error applying them
}

// Error names the changes left and why.
func (e *ThrottleError) Error() string {
	return fmt.Sprintf("reassign: %d throttle change(s) not applied (%v): %v; Resume once the brokers are back", len(e.Changes), e.Err, e.Changes)
}

// Unwrap returns [ErrThrottlesLeft].
func (e *ThrottleError) Unwrap() error { return ErrThrottlesLeft }
