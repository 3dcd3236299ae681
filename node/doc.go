// Package node is what kupgrade asks of your infrastructure: the
// [Orchestrator] interface that restarts one Kafka node, its optional
// capabilities ([Liveness], [Provisioner]) and the few types they use
// ([Node], [Role], [Change], [Spec]).
//
// It stands apart from the engine (packages upgrade, health, kraft, reassign)
// as database/sql/driver stands apart from database/sql: it imports nothing
// of kupgrade, so an Orchestrator (yours, or package kafkatest's) imports
// only this package, and the engine finds the optional capabilities by type
// assertion.
//
// # Writing an Orchestrator
//
// kupgrade never assumes an infrastructure. [Orchestrator] has two methods:
// Nodes lists the Kafka nodes you manage (with the release each runs, if you
// know it: upgrade.Inspect can then report exact releases), and Restart stops
// one node gracefully, applies a [Change] and starts it again. For systemd
// over SSH, Restart is roughly: edit server.properties (apply Change.Set and
// Change.Unset), point the unit at the new release's directory if
// Change.Version is set, `systemctl restart kafka`, and return once the unit
// is active. On Kubernetes: patch the pod's image and config, delete the
// pod, wait until it runs. Honour ctx; return an error saying why if the node
// does not start. Restart need not wait for the node to catch up: the
// upgrade Runner does, with its own gates.
//
// Optional capabilities are separate interfaces; assert them at compile
// time so a missing method breaks the build, not the run:
//
//	var (
//		_ node.Orchestrator = (*MyOrchestrator)(nil)
//		_ node.Liveness     = (*MyOrchestrator)(nil)
//	)
package node
