package health_test

import (
	"strings"
	"testing"
	"time"

	"github.com/kupgrade/kupgrade/health"
)

// TestNilInputsAreErrors proves that nil clients, conditions and Canaries
// give an error naming what is missing instead of a panic (some of them
// would panic in a goroutine of the library, where no caller can recover).
func TestNilInputsAreErrors(t *testing.T) {
	ctx := t.Context()
	var nilCanary *health.Canary
	for _, tt := range []struct {
		name, want string
		call       func() error
	}{
		{"Take", "Take needs a client", func() error { _, err := health.Take(ctx, nil); return err }},
		{"Until", "Until needs a client", func() error {
			_, err := health.Until(ctx, nil, func(health.Snapshot) health.Verdict { return health.Verdict{OK: true} }, time.Second)
			return err
		}},
		{"NewCanary", "NewCanary needs a client", func() error { _, err := health.NewCanary(nil); return err }},
		{"nil Canary Probe", "nil *Canary", func() error { _, err := nilCanary.Probe(ctx); return err }},
		{"nil Canary Ensure", "nil *Canary", func() error { return nilCanary.Ensure(ctx) }},
		{"ElectPreferred", "ElectPreferred needs a client", func() error {
			_, err := health.ElectPreferred(ctx, nil, health.Snapshot{}, 1)
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
	if got := nilCanary.Topic(); got != "" {
		t.Errorf("nil Canary's Topic() = %q, want empty", got)
	}
}
