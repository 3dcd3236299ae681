package upgrade

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/kupgrade/kupgrade/internal/atomicfile"
)

// A Journal keeps a [Runner]'s progress through a plan so that a Runner given
// the journal of an interrupted run continues where that run stopped. Save
// must replace the record atomically: after a crash, Load returns either the
// previous record or the new one, never a mix. A Journal is used by one
// Runner at a time.
type Journal interface {
	// Load returns the saved record, or ErrNoRecord if nothing was saved.
	Load(ctx context.Context) (Record, error)
	// Save replaces the saved record.
	Save(ctx context.Context, r Record) error
}

// ErrNoRecord reports that a [Journal] holds nothing yet.
var ErrNoRecord = errors.New("upgrade: journal is empty")

// StepState is where a step of a plan stands in a [Record].
type StepState string

// The states of a step.
const (
	// StepPending: not started.
	StepPending StepState = ""
	// StepStarted: started but not known to be finished. A Runner resuming
	// a run re-verifies such a step before doing anything.
	StepStarted StepState = "started"
	// StepDone: finished and verified.
	StepDone StepState = "done"
	// StepSkipped: nothing to do (the change was already in effect).
	StepSkipped StepState = "skipped"
	// StepFailed: the step failed; Err says why. A later run retries it.
	StepFailed StepState = "failed"
)

// Finished reports whether the step needs no more work.
func (s StepState) Finished() bool { return s == StepDone || s == StepSkipped }

// A StepRecord is the journal's entry for one step.
type StepRecord struct {
	State    StepState `json:"state,omitempty"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	// Restarted reports that the Orchestrator was asked to restart the node
	// during this step (so a resumed run knows a restart may have happened).
	Restarted bool `json:"restarted,omitempty"`
	// Err is the error of a failed step.
	Err string `json:"err,omitempty"`
	// Provisioned is the node a provision step started.
	Provisioned *int32 `json:"provisioned,omitempty"`
	// Batch is the number of the batch of restarts the step ran in (see
	// [BatchRestarts]), 0 if it ran on its own.
	Batch int `json:"batch,omitempty"`
	// Outage is the outage a stop-the-world step caused, as measured (see
	// [StepStopWorld]).
	Outage *OutageWindow `json:"outage,omitempty"`
}

// A Record is what a [Journal] keeps: the plan it belongs to and the state of
// each of its steps.
type Record struct {
	// PlanID identifies the plan (see [Plan.ID]); a Runner refuses a journal
	// of another plan.
	PlanID string `json:"planId"`
	// Steps holds one entry per step of the plan, by index.
	Steps []StepRecord `json:"steps"`
	// Data holds the state of components a step drives, such as the
	// partition mover's moves and throttle ledger, by key.
	Data map[string]json.RawMessage `json:"data,omitempty"`
	// Updated is when the record was last saved.
	Updated time.Time `json:"updated"`
}

// Done reports whether every step is finished.
func (r Record) Done() bool {
	for _, s := range r.Steps {
		if !s.State.Finished() {
			return false
		}
	}
	return len(r.Steps) > 0
}

// FileJournal is a [Journal] kept in one JSON file. Save writes a temporary
// file beside it, syncs it and renames it over the old one, so a crash leaves
// either the old record or the new one.
type FileJournal struct {
	path string
}

// NewFileJournal returns a journal kept at path; the file is created by the
// first Save.
func NewFileJournal(path string) *FileJournal { return &FileJournal{path: path} }

// Path returns the journal's file.
func (j *FileJournal) Path() string { return j.path }

// Load implements [Journal].
func (j *FileJournal) Load(ctx context.Context) (Record, error) {
	b, err := os.ReadFile(j.path)
	if errors.Is(err, os.ErrNotExist) {
		return Record{}, ErrNoRecord
	}
	if err != nil {
		return Record{}, fmt.Errorf("upgrade: read journal: %w", err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, fmt.Errorf("upgrade: journal %s is damaged: %w", j.path, err)
	}
	return r, nil
}

// Save implements [Journal].
func (j *FileJournal) Save(ctx context.Context, r Record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("upgrade: journal: %w", err)
	}
	if err := atomicfile.Write(j.path, append(b, '\n')); err != nil {
		return fmt.Errorf("upgrade: write journal: %w", err)
	}
	return nil
}

// MemoryJournal is a [Journal] held in memory, for tests and for runs that
// need no resumption across processes. It is safe for concurrent use.
type MemoryJournal struct {
	mu  sync.Mutex
	rec *Record
}

// Load implements [Journal].
func (j *MemoryJournal) Load(ctx context.Context) (Record, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.rec == nil {
		return Record{}, ErrNoRecord
	}
	return cloneRecord(*j.rec), nil
}

// Save implements [Journal].
func (j *MemoryJournal) Save(ctx context.Context, r Record) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	c := cloneRecord(r)
	j.rec = &c
	return nil
}

// cloneRecord returns a deep copy of r: what a [MemoryJournal] keeps and
// returns is the record as saved (an empty Steps stays empty, not nil) and
// shares nothing with the caller's.
func cloneRecord(r Record) Record {
	r.Steps = slices.Clone(r.Steps)
	for i, s := range r.Steps {
		if s.Provisioned != nil {
			id := *s.Provisioned
			r.Steps[i].Provisioned = &id
		}
	}
	if r.Data != nil {
		d := make(map[string]json.RawMessage, len(r.Data))
		for k, v := range r.Data {
			d[k] = slices.Clone(v)
		}
		r.Data = d
	}
	return r
}
