// Package kfaketest starts franz-go's in-process fake Kafka (kfake) for the
// unit tests of kupgrade's packages, with a client on it: plumbing tests
// only; claims about upgrade behaviour are proven against real Kafka.
package kfaketest

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// New starts a kfake cluster with opts and a client seeded with every one of
// its brokers; both are closed when the test ends.
func New(t testing.TB, opts ...kfake.Opt) (*kfake.Cluster, *kgo.Client) {
	t.Helper()
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return c, cl
}
