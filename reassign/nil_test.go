package reassign

import (
	"errors"
	"testing"
)

// TestLoadAssignmentNilClient proves that a nil client is refused with
// ErrInvalid rather than a panic.
func TestLoadAssignmentNilClient(t *testing.T) {
	_, _, err := LoadAssignment(t.Context(), nil)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("LoadAssignment(ctx, nil) = %v, want ErrInvalid", err)
	}
}
