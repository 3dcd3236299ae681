// Package upgrade plans and runs zero-downtime Kafka upgrades.
//
// [Orchestrator] is the interface a user implements to restart a node with a
// new release or configuration on their infrastructure; package kafkatest
// implements it for local test clusters.
package upgrade
