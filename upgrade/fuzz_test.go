package upgrade

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kupgrade/kupgrade/compat"
)

// Fuzz targets for what kupgrade reads back from disk or from a person:
// plans (JSON a user may have kept, reviewed or edited) and journal records
// (JSON a crashed run left). Whatever the bytes, decoding, verifying and
// rendering must not panic, and what decodes must survive a round trip
// unchanged. Seeds are real plans and records, made by NewPlan and by runs
// on the fake cluster.

// seedPlans returns plans of the planner's golden cases and of each option.
func seedPlans(tb testing.TB) []Plan {
	tb.Helper()
	r := compat.MustParseRelease
	kr := func(mv int16, specs ...string) compat.State {
		return compat.State{Mode: compat.ModeKRaft, Finalized: compat.FeatureLevels{"metadata.version": mv}, Nodes: nodes(specs...)}
	}
	zk := func(specs ...string) compat.State {
		return compat.State{Mode: compat.ModeZooKeeper, Finalized: compat.FeatureLevels{}, Nodes: nodes(specs...)}
	}
	six := func(rel string) []string {
		return []string{"1:c:" + rel, "2:c:" + rel, "3:c:" + rel, "4:b:" + rel, "5:b:" + rel, "6:b:" + rel}
	}
	var plans []Plan
	add := func(p Plan, err error) {
		if err != nil {
			tb.Fatal(err)
		}
		plans = append(plans, p)
	}
	add(NewPlan(zk("1:b:3.6.2", "2:b:3.6.2", "3:b:3.6.2"), Target{Version: r("3.9.2")}))
	add(NewPlan(zk("1:b:2.8.2:2.8-IV1", "2:b:2.8.2:2.8-IV1", "3:b:2.8.2:2.8-IV1"), Target{Version: r("3.9.2")}))
	add(NewPlan(zk("1:b:3.6.2", "2:b:3.6.2", "3:b:3.6.2"), Target{Version: r("4.1.2")}))
	add(NewPlan(zk("1:b:3.9.2:3.6-IV2", "2:b:3.6.2", "3:b:3.6.2"), Target{Version: r("3.9.2")}))
	add(NewPlan(kr(19, six("3.7.2")...), Target{Version: r("4.1.2")}))
	add(NewPlan(kr(20, six("3.8.1")...), Target{Version: r("4.1.2"), Via: []compat.Release{r("3.9.2")}}, BakeTime(10*time.Minute), ElectPreferredLeaders(), FinalizeLater()))
	add(NewPlan(kr(7, "1:bc:3.3.2", "2:bc:3.3.2", "3:bc:3.3.2"), Target{Version: r("4.1.2")}))
	add(NewPlan(kr(21, "1:bc:3.9.2", "2:bc:3.9.2", "3:bc:3.9.2"), Target{Version: r("4.1.2"), Features: compat.FeatureLevels{"kraft.version": 1}}, FinalizeReleaseDefaults()))
	add(NewPlan(kr(21, "1:c:4.1.2", "2:c:4.1.2", "3:c:3.9.2", "4:b:3.9.2", "5:b:3.9.2", "6:b:3.9.2"), Target{Version: r("4.1.2")}))
	add(NewPlan(kr(25, six("4.0.2")...), Target{Version: r("4.4.0")}, FinalizeReleaseDefaults()))
	add(NewReplacePlan(kr(21, six("3.9.2")...), Target{Version: r("4.1.2")}))
	zkPlan := plans[0]
	rec := Record{PlanID: zkPlan.ID, Steps: make([]StepRecord, len(zkPlan.Steps))}
	rec.Steps[0].State = StepDone
	rec.Steps[1] = StepRecord{State: StepDone, Restarted: true}
	add(NewRollbackPlan(zkPlan, rec))
	return plans
}

func FuzzPlanJSON(f *testing.F) {
	for _, p := range seedPlans(f) {
		b, err := json.MarshalIndent(p, "", "  ")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{`{}`, `null`, `{"version":1,"id":"x","steps":[{"kind":"restart","node":7}]}`,
		`{"version":1,"mode":"kraft","target":"4.1.2","nodes":[{"id":1}],"steps":[{"kind":"finalize","node":-1,"features":{"metadata.version":27}}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Plan
		if err := json.Unmarshal(b, &p); err != nil {
			return
		}
		verr := p.Verify()
		_ = p.String()
		for _, s := range p.Steps {
			_ = s.String()
		}
		_ = p.Restarts()
		_ = p.Reversible()
		m1, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("a plan that decodes does not encode: %v", err)
		}
		var back Plan
		if err := json.Unmarshal(m1, &back); err != nil {
			t.Fatalf("a plan's own encoding does not decode: %v\n%s", err, m1)
		}
		m2, err := json.Marshal(back)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m1, m2) {
			t.Fatalf("round trip changed the plan:\n%s\n%s", m1, m2)
		}
		if planID(p) != planID(back) {
			t.Errorf("round trip changed the plan's hash: %s → %s", planID(p), planID(back))
		}
		if got, want := errString(back.Verify()), errString(verr); got != want {
			t.Errorf("Verify after a round trip = %q, before %q", got, want)
		}
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// recordingJournal is a MemoryJournal that keeps every record saved.
type recordingJournal struct {
	MemoryJournal
	saved []Record
}

func (j *recordingJournal) Save(ctx context.Context, r Record) error {
	j.saved = append(j.saved, cloneRecord(r))
	return j.MemoryJournal.Save(ctx, r)
}

// fuzzPlan is the plan the record fuzzer resumes: 4.0.2 → 4.1.2 on the
// fake cluster of kraft402, with its reversible finalize step held.
func fuzzPlan(tb testing.TB) Plan {
	tb.Helper()
	p, err := NewPlan(kraft402().state(), Target{Version: compat.MustParseRelease("4.1.2")}, FinalizeLater())
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// seedRecords returns every record a run of the fuzz plan saves (with a
// hold, a resumption with PassHolds and a failed step), as FileJournal
// writes them, and a record of a replacement run.
func seedRecords(f *testing.F) [][]byte {
	f.Helper()
	plan := fuzzPlan(f)
	j := &recordingJournal{}
	fc := kraft402()
	fc.catchUp = 0 // no waiting in real time
	if err := mustRunner(f, nil, fc, withOps(fc), WithJournal(j)).Run(f.Context(), plan); !errors.Is(err, ErrHeld) {
		f.Fatalf("first run = %v, want it held", err)
	}
	if err := mustRunner(f, nil, fc, withOps(fc), WithJournal(j), PassHolds()).Run(f.Context(), plan); err != nil {
		f.Fatal(err)
	}
	fc = kraft402()
	fc.catchUp = 0
	fc.failNode = 5
	j2 := &recordingJournal{}
	if err := mustRunner(f, nil, fc, withOps(fc), WithJournal(j2)).Run(f.Context(), plan); err == nil {
		f.Fatal("run with a failing node succeeded")
	}
	new7 := int32(7)
	replace := Record{PlanID: "0123456789ab", Steps: []StepRecord{{State: StepDone}, {State: StepDone, Restarted: true, Provisioned: &new7}, {State: StepStarted}},
		Data:    map[string]json.RawMessage{"reassign/2": json.RawMessage(`{"version":1,"id":"abc","done":false,"ledger":{"rate":1048576,"before":{},"owned":{},"inFlight":[]},"moves":[]}`)},
		Updated: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)}
	var out [][]byte
	for _, r := range append(append(j.saved, j2.saved...), replace) {
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, append(b, '\n'))
	}
	return out
}

func FuzzRecordJSON(f *testing.F) {
	for _, b := range seedRecords(f) {
		f.Add(b)
	}
	for _, s := range []string{`{}`, `null`, `{"planId":"x","steps":[{"state":"bogus","restarted":true,"provisioned":-1}]}`, "\x00", `{"steps":null,"data":{"k":null}}`} {
		f.Add([]byte(s))
	}
	plan := fuzzPlan(f)
	path := filepath.Join(f.TempDir(), "journal.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		// FileJournal.Load of whatever the file holds: a record or an
		// error, the same record json.Unmarshal decodes.
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		j := NewFileJournal(path)
		rec, lerr := j.Load(t.Context())
		var direct Record
		derr := json.Unmarshal(b, &direct)
		if (lerr == nil) != (derr == nil) {
			t.Fatalf("FileJournal.Load error %v, json.Unmarshal error %v", lerr, derr)
		}
		if lerr != nil {
			if errors.Is(lerr, ErrNoRecord) {
				t.Fatalf("Load of an existing file = %v", lerr)
			}
			return
		}
		if diff := cmp.Diff(direct, rec); diff != "" {
			t.Fatalf("Load and json.Unmarshal differ (-unmarshal +load):\n%s", diff)
		}
		_ = rec.Done()
		// What loads, saves and loads again as the same record.
		m1, err := json.Marshal(rec)
		if err != nil {
			t.Fatalf("a record that loads does not encode: %v", err)
		}
		if err := j.Save(t.Context(), rec); err != nil {
			t.Fatalf("a record that loads does not save: %v", err)
		}
		again, err := j.Load(t.Context())
		if err != nil {
			t.Fatalf("a saved record does not load: %v", err)
		}
		m2, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m1, m2) {
			t.Fatalf("save and load changed the record:\n%s\n%s", m1, m2)
		}
		if c := cloneRecord(rec); !cmp.Equal(c, rec) {
			t.Fatalf("cloneRecord changed the record: %s", cmp.Diff(rec, c))
		}
		// A Runner resuming from this record (made to fit the plan, as
		// a journal of it would) ends, without panicking, and restarts
		// no node more than once: each step runs at most once per run.
		rec.PlanID = plan.ID
		steps := make([]StepRecord, len(plan.Steps))
		copy(steps, rec.Steps)
		rec.Steps = steps
		synctest.Test(t, func(t *testing.T) {
			fc := kraft402()
			mj := &MemoryJournal{}
			mj.Save(t.Context(), rec)
			_ = mustRunner(t, nil, fc, withOps(fc), WithJournal(mj), PassHolds()).Run(t.Context(), plan)
			for id, n := range fc.restartCounts() {
				if n > 1 {
					t.Errorf("node %d restarted %d times in one run", id, n)
				}
			}
		})
	})
}
