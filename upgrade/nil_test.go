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
	f := newFakeCluster(compat.ModeKRaft, "3.9.2", 3, 3)
	var nilCanary *health.Canary
	for _, tt := range []struct {
		name, want string
		call       func() error
	}{
		{"Inspect", "Inspect needs a client", func() error { _, err := Inspect(t.Context(), nil); return err }},
		{"WithLogger(nil)", "WithLogger(nil)", func() error {
			_, err := NewRunner(nil, f, withOps(f), WithLogger(nil))
			return err
		}},
		{"CanaryGate(nil *Canary)", "Canary is nil", func() error {
			_, err := NewRunner(nil, f, withOps(f), CanaryGate(nilCanary, time.Second))
			return err
		}},
		{"nil client", "needs a client", func() error { _, err := NewRunner(nil, f); return err }},
		{"nil Orchestrator", "needs an Orchestrator", func() error {
			_, err := NewRunner(nil, nil, withOps(f))
			return err
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
	if _, err := NewRunner(nil, f, withOps(f), WithLogger(slog.New(slog.DiscardHandler))); err != nil {
		t.Errorf("NewRunner with a logger: %v", err)
	}
}
