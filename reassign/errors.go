package reassign

import (
	"errors"
	"fmt"
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

// A BrokerError says why a broker named in a [Change] or a broker list is
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

// A ConfigError says why an existing throttle config given to [NewLedger]
// cannot be merged with. It unwraps to [ErrInvalid].
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
