package upgrade

import (
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"

	"github.com/kupgrade/kupgrade/compat"
)

// TestEventsAfterJournal proves that when a step's outcome is announced
// (done, skipped, failed, held) the journal already records it, so that a
// program acting on the event (stopping the process, say) loses nothing.
func TestEventsAfterJournal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeCluster(compat.ModeKRaft, "3.9.2", 3, 3)
		f.levels["metadata.version"] = 21
		f.failNode = 5
		plan := kraftPlan(t, f, "4.1.2")
		j := &MemoryJournal{}
		want := map[EventKind]StepState{EventStepDone: StepDone, EventStepSkipped: StepSkipped, EventStepFailed: StepFailed}
		var got, saw []string
		r := mustRunner(t, nil, f, withOps(f), WithJournal(j), OnEvent(func(e Event) {
			st, ok := want[e.Kind]
			if !ok {
				return
			}
			rec, err := j.Load(t.Context())
			if err != nil {
				t.Errorf("%v: journal: %v", e, err)
				return
			}
			got = append(got, string(rec.Steps[e.Step].State))
			saw = append(saw, string(st))
		}))
		if err := r.Run(t.Context(), plan); err == nil {
			t.Fatal("Run succeeded, want node 5 to fail")
		}
		if len(saw) < 2 {
			t.Fatalf("only %d step outcomes seen", len(saw))
		}
		if diff := cmp.Diff(saw, got); diff != "" {
			t.Errorf("journal state when each outcome was announced (-announced +journal):\n%s", diff)
		}
	})
}
