package node

import "context"

// Stopper is an optional [Orchestrator] capability for plans that take
// every node down at once (upgrade.NewStopTheWorldPlan): it stops a node
// and starts it again as two calls, so that the caller can have every node
// stopped before any starts. Without it, such a plan restarts every node
// concurrently with Restart, which cannot promise that the last node is
// down before the first is up again.
//
// As with Restart, calls for different nodes may come at once.
type Stopper interface {
	// StopNode stops node id gracefully (a controlled shutdown, as SIGTERM
	// gives) and returns once its process has exited.
	StopNode(ctx context.Context, id int32) error
	// StartStopped applies ch (new release and/or static config) to
	// stopped node id and starts it, returning once its process has
	// started, as Restart does after its stop.
	StartStopped(ctx context.Context, id int32, ch Change) error
}
