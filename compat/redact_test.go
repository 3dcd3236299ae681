package compat

import (
	"strings"
	"testing"
)

// TestStepStringRedactsSecrets proves a route step renders the values of
// secret keys redacted and keeps the step itself intact.
func TestStepStringRedactsSecrets(t *testing.T) {
	s := Action{Kind: RollConfig, Nodes: []int32{1}, Set: map[string]string{
		"sasl.jaas.config": "s3cr3t", "inter.broker.protocol.version": "3.9"}}
	got := s.String()
	if strings.Contains(got, "s3cr3t") || !strings.Contains(got, "sasl.jaas.config=REDACTED") || !strings.Contains(got, "inter.broker.protocol.version=3.9") {
		t.Errorf("String() = %q", got)
	}
	if s.Set["sasl.jaas.config"] != "s3cr3t" {
		t.Error("String changed the step")
	}
}
