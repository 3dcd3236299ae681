package upgrade_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/kafkatest"
	"github.com/kupgrade/kupgrade/kraft"
	"github.com/kupgrade/kupgrade/upgrade"
)

// levelsOf reads the finalized levels of features from every node (brokers
// and controllers) and fails the test unless every node agrees; a feature
// no node reports is at 0.
func levelsOf(ctx context.Context, t *testing.T, c *kafkatest.Cluster, cl *kgo.Client, features ...string) compat.FeatureLevels {
	t.Helper()
	fs, err := kraft.DescribeFeatures(ctx, cl, kraft.ControllerAddrs(c.ControllerAddrs()...))
	if err != nil {
		t.Fatalf("describe features: %v", err)
	}
	out := compat.FeatureLevels{}
	for _, f := range features {
		lvl, agreed, ok := fs.Finalized(f)
		if !ok || !agreed {
			t.Fatalf("nodes do not agree on %s (answered: %v):\n%v", f, ok, fs)
		}
		out[f] = lvl
	}
	return out
}

// firstRestartLevels records the finalized levels, read from the cluster,
// when a run asks for its first restart: proof of what came before it. It
// also records which nodes had then written a metadata snapshot since the
// last finalize step finished.
type firstRestartLevels struct {
	mu        sync.Mutex
	finalized time.Time // when the last finalize step finished
	levels    compat.FeatureLevels
	snapshots map[int32]time.Time // node -> its newest metadata snapshot file's time
	err       error
}

func (f *firstRestartLevels) hook(c *kafkatest.Cluster, cl *kgo.Client, features ...string) func(upgrade.Event) {
	return func(e upgrade.Event) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if e.Kind == upgrade.EventStepDone && e.StepKind == upgrade.StepFinalize {
			f.finalized = time.Now()
		}
		if e.Kind != upgrade.EventRestarting || f.levels != nil || f.err != nil {
			return
		}
		f.snapshots = map[int32]time.Time{}
		for _, n := range c.All() {
			files, _ := filepath.Glob(filepath.Join(n.Dir(), "data", "__cluster_metadata-0", "*.checkpoint"))
			for _, name := range files {
				if fi, err := os.Stat(name); err == nil && fi.ModTime().After(f.snapshots[n.ID()]) {
					f.snapshots[n.ID()] = fi.ModTime()
				}
			}
		}
		fs, err := kraft.DescribeFeatures(context.Background(), cl, kraft.ControllerAddrs(c.ControllerAddrs()...))
		if err != nil {
			f.err = err
			return
		}
		f.levels = compat.FeatureLevels{}
		for _, name := range features {
			lvl, _, _ := fs.Finalized(name)
			f.levels[name] = lvl
		}
	}
}

// snapshotsAfterFinalize checks that every node had written a metadata
// snapshot after the last finalize step when the first restart began.
func (f *firstRestartLevels) snapshotsAfterFinalize(t *testing.T, c *kafkatest.Cluster) {
	t.Helper()
	for _, n := range c.All() {
		at, ok := f.snapshots[n.ID()]
		if !ok || !at.After(f.finalized) {
			t.Errorf("node %d: newest metadata snapshot %v, not after the last downgrade (%v) when the first restart began", n.ID(), at, f.finalized)
			continue
		}
		t.Logf("node %d wrote a metadata snapshot %v after the last downgrade", n.ID(), at.Sub(f.finalized).Round(time.Millisecond))
	}
}

// restartsStartWith checks that every step before the first restart of p
// is the preflight, a safe-downgrade finalize step or a bake, and returns
// the finalize steps' levels and "bake", in order.
func restartsStartWith(t *testing.T, p upgrade.Plan) []string {
	t.Helper()
	var before []string
	for _, s := range p.Steps {
		if s.Kind == upgrade.StepRestart {
			break
		}
		switch {
		case s.Kind == upgrade.StepPreflight:
		case s.Kind == upgrade.StepFinalize && s.Downgrade:
			before = append(before, s.Features.String())
		case s.Kind == upgrade.StepBake:
			before = append(before, "bake")
		default:
			t.Errorf("step %v comes before the first restart of plan %s", s, p.ID)
		}
	}
	return before
}

// TestDowngradeAndRollbackKafka proves on real Kafka, under traffic, both
// ways back from Kafka 4.1.2 to 4.0.2 on one cluster (three combined nodes:
// RF 3 with min ISR 2 needs three brokers, and each roll is three restarts):
//
//   - KRaftDowngrade: NewPlan of a cluster formatted on 4.1.2
//     (metadata.version 4.1-IV1, 27) with target 4.0.2 lowers
//     metadata.version to 4.0-IV3 (25) before any restart, and the run
//     leaves every node on 4.0.2 with 25 finalized.
//   - RollbackAfterFinalize: the cluster is upgraded to 4.1.2 again with
//     its finalize steps run (metadata.version 27, and share.version 1, not
//     finalized before), then NewRollbackPlan of that plan and its journal
//     lowers share.version to 0 (disabled) and metadata.version to 25
//     before any restart, and leaves every node on 4.0.2.
//
// Zero acknowledged records may be lost and no produce may fail, across
// all three runs.
//
// Between lowering the levels and the first restart each plan bakes for
// upgrade.SnapshotWait of the cluster's metadata.log.max.snapshot.interval.ms
// (set to 2s here, from Kafka's 1h): without a metadata snapshot written
// after the downgrade, a node on 4.0.2 cannot replay the log and stops at
// start ("Tried to apply FeatureLevelRecord … featureLevel=27").
func TestDowngradeAndRollbackKafka(t *testing.T) {
	const interval = 2 * time.Second
	began := time.Now()
	c := kafkatest.Start(t, kafkatest.KRaft("4.1.2"), kafkatest.Combined(3),
		kafkatest.BrokerConfig(map[string]string{"metadata.log.max.snapshot.interval.ms": "2000"}))
	t.Logf("cluster started in %v (any wait for another test's cluster included)", time.Since(began).Round(time.Millisecond))
	tr := withTraffic(t, c)
	cl := c.Client(t)
	mv, share := compat.FeatureMetadataVersion, "share.version"
	runner := func(t *testing.T, rec *recorder, opts ...upgrade.RunnerOption) *upgrade.Runner {
		return mustRunner(t, cl, c, append([]upgrade.RunnerOption{upgrade.OnEvent(rec.add), upgrade.KRaftControllers(c.ControllerAddrs()...),
			upgrade.WithLogger(testLogger(t))}, opts...)...)
	}
	onRelease := func(t *testing.T, want string) {
		t.Helper()
		for _, n := range c.All() {
			if n.Release() != want || n.Status() != kafkatest.Running {
				t.Errorf("node %d runs %s (%v), want %s", n.ID(), n.Release(), n.Status(), want)
			}
		}
	}
	start := time.Now()

	ok := t.Run("KRaftDowngrade", func(t *testing.T) {
		in := inspect(t, c)
		if got := in.State.Finalized[mv]; got != 27 {
			t.Fatalf("a cluster formatted on 4.1.2 has metadata.version %d, want 27 (4.1-IV1)", got)
		}
		plan, err := upgrade.NewPlan(in.State, upgrade.Target{Version: compat.MustParseRelease("4.0.2")}, upgrade.MetadataSnapshotInterval(interval))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("downgrade plan:\n%v", plan)
		if diff := cmp.Diff([]string{"metadata.version=25", "bake"}, restartsStartWith(t, plan)); diff != "" {
			t.Errorf("steps before the first restart (-want +got):\n%s", diff)
		}
		rec := newRecorder(t)
		var first firstRestartLevels
		rec.onEvent = first.hook(c, cl, mv)
		began, acked := time.Now(), tr.Progress().Acknowledged
		// No PassHolds: nothing in a safe downgrade is held.
		if err := runner(t, rec).Run(t.Context(), plan); err != nil {
			t.Fatal(err)
		}
		t.Logf("downgrade 4.1.2 → 4.0.2 took %v (restarts sum %v), %d records acknowledged meanwhile",
			time.Since(began).Round(time.Millisecond), rec.sumRestarts().Round(time.Millisecond), tr.Progress().Acknowledged-acked)
		if first.err != nil || first.levels[mv] != 25 {
			t.Errorf("metadata.version when the first node restarted: %v (err %v), want 25: the downgrade must come first", first.levels, first.err)
		}
		first.snapshotsAfterFinalize(t, c)
		if n := len(rec.restartOrder()); n != 3 {
			t.Errorf("%d restarts, want 3", n)
		}
		onRelease(t, "4.0.2")
		got := levelsOf(t.Context(), t, c, cl, mv)
		t.Logf("after the downgrade: %v", got)
		if got[mv] != 25 {
			t.Errorf("metadata.version read back %d, want 25 (4.0-IV3)", got[mv])
		}
	})
	if !ok {
		t.Fatal("the downgrade failed: the rollback needs the cluster on 4.0.2")
	}

	t.Run("RollbackAfterFinalize", func(t *testing.T) {
		in := inspect(t, c)
		plan, err := upgrade.NewPlan(in.State, upgrade.Target{Version: compat.MustParseRelease("4.1.2"), Features: compat.FeatureLevels{share: 1}})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("upgrade plan:\n%v", plan)
		if plan.Finalized[mv] != 25 || plan.Finalized[share] != 0 {
			t.Fatalf("plan records finalized %v, want metadata.version 25 and no share.version", plan.Finalized)
		}
		journal := &upgrade.MemoryJournal{}
		rec := newRecorder(t)
		began, acked := time.Now(), tr.Progress().Acknowledged
		if err := runner(t, rec, upgrade.WithJournal(journal), upgrade.PassHolds()).Run(t.Context(), plan); err != nil {
			t.Fatal(err)
		}
		t.Logf("upgrade 4.0.2 → 4.1.2 with finalize took %v, %d records acknowledged meanwhile",
			time.Since(began).Round(time.Millisecond), tr.Progress().Acknowledged-acked)
		onRelease(t, "4.1.2")
		if got := levelsOf(t.Context(), t, c, cl, mv, share); !cmp.Equal(got, compat.FeatureLevels{mv: 27, share: 1}) {
			t.Fatalf("after the upgrade: finalized %v, want metadata.version 27 and share.version 1", got)
		}

		jrec, err := journal.Load(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		rb, err := upgrade.NewRollbackPlan(plan, jrec, upgrade.MetadataSnapshotInterval(interval))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("rollback plan:\n%v", rb)
		if diff := cmp.Diff([]string{"share.version=0", "metadata.version=25", "bake"}, restartsStartWith(t, rb)); diff != "" {
			t.Errorf("rollback steps before the first restart (-want +got):\n%s", diff)
		}
		rec = newRecorder(t)
		var first firstRestartLevels
		rec.onEvent = first.hook(c, cl, mv, share)
		began, acked = time.Now(), tr.Progress().Acknowledged
		if err := runner(t, rec).Run(t.Context(), rb); err != nil {
			t.Fatal(err)
		}
		t.Logf("rollback took %v (restarts sum %v), %d records acknowledged meanwhile",
			time.Since(began).Round(time.Millisecond), rec.sumRestarts().Round(time.Millisecond), tr.Progress().Acknowledged-acked)
		if first.err != nil || !cmp.Equal(first.levels, compat.FeatureLevels{mv: 25, share: 0}) {
			t.Errorf("levels when the rollback's first node restarted: %v (err %v), want metadata.version 25 and share.version 0", first.levels, first.err)
		}
		first.snapshotsAfterFinalize(t, c)
		if order := rec.restartOrder(); len(order) != 3 || !slices.Equal(slices.Sorted(slices.Values(order)), []int32{1, 2, 3}) {
			t.Errorf("rollback restarted %v, want each of the three nodes once", order)
		}
		onRelease(t, "4.0.2")
		got := levelsOf(t.Context(), t, c, cl, mv, share)
		t.Logf("after the rollback: %v", got)
		if !cmp.Equal(got, compat.FeatureLevels{mv: 25, share: 0}) {
			t.Errorf("after the rollback: finalized %v, want metadata.version 25 (4.0-IV3) and share.version 0", got)
		}
	})
	end := time.Now()
	rep := finishTraffic(t, tr, start, end)
	t.Logf("all three runs took %v; traffic: %d acknowledged, %d lost", end.Sub(start).Round(time.Millisecond), rep.Acknowledged, rep.LostAcknowledged)
}
