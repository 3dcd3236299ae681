package upgrade

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/health"
)

// TestNilInputsAreErrors proves that Inspect and NewRunner refuse nil
// inputs with an error that names them: Inspect(ctx, nil) used to panic in
// one of its request goroutines, where the caller cannot recover.
func TestNilInputsAreErrors(t *testing.T) {
	f := newFakeCluster(compat.KRaft, "3.9.2", 3, 3)
	var nilCanary *health.Canary
	for _, tt := range []struct {
		name, want string
		call       func() error
	}{
		{"Inspect", "Inspect needs a client", func() error { _, err := Inspect(t.Context(), nil); return err }},
		{"WithLogger(nil)", "WithLogger(nil)", func() error {
			return NewRunner(nil, f, withOps(f), WithLogger(nil)).Run(t.Context(), Plan{})
		}},
		{"CanaryGate(nil *Canary)", "Canary is nil", func() error {
			return NewRunner(nil, f, withOps(f), CanaryGate(nilCanary, time.Second)).Run(t.Context(), Plan{})
		}},
		{"nil client", "needs a client", func() error { return NewRunner(nil, f).Run(t.Context(), Plan{}) }},
		{"nil Orchestrator", "needs an Orchestrator", func() error {
			return NewRunner(nil, nil, withOps(f)).Run(t.Context(), Plan{})
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one saying %q", err, tt.want)
			}
		})
	}
	// A logger that is set is used, and nothing refuses it.
	if err := NewRunner(nil, f, withOps(f), WithLogger(slog.New(slog.DiscardHandler))).err; err != nil {
		t.Errorf("NewRunner with a logger: %v", err)
	}
}
