package upgrade_test

import (
	"context"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/health"
	"github.com/kupgrade/kupgrade/kafkatest"
	"github.com/kupgrade/kupgrade/kraft"
	"github.com/kupgrade/kupgrade/upgrade"
)

// phaseClock measures how long each migration phase of a plan takes, from
// the run's events.
type phaseClock struct {
	mu    sync.Mutex
	plan  upgrade.Plan
	first map[upgrade.Phase]time.Time
	last  map[upgrade.Phase]time.Time
}

func newPhaseClock(plan upgrade.Plan) *phaseClock {
	return &phaseClock{plan: plan, first: map[upgrade.Phase]time.Time{}, last: map[upgrade.Phase]time.Time{}}
}

func (p *phaseClock) add(e upgrade.Event) {
	if e.Step < 0 || e.Step >= len(p.plan.Steps) {
		return
	}
	ph := p.plan.Steps[e.Step].Phase
	if ph == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.first[ph]; !ok {
		p.first[ph] = e.Time
	}
	p.last[ph] = e.Time
}

func (p *phaseClock) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var parts []string
	for _, ph := range slices.Sorted(maps.Keys(p.first)) {
		parts = append(parts, string(ph)+" "+p.last[ph].Sub(p.first[ph]).Round(100*time.Millisecond).String())
	}
	return strings.Join(parts, ", ")
}

// TestMigrateZooKeeperToKRaft takes a ZooKeeper-mode cluster of three
// brokers from 3.7.2 to 4.4.0 in one plan and one Runner, under traffic
// (RF 3, min ISR 2): onto the 3.9.2 bridge, a KRaft controller provisioned in
// migration mode, the brokers into migration mode, the metadata copied, the
// brokers to KRaft, the controller out of migration mode, then everything to
// 4.4.0 and metadata.version finalized; zero acknowledged records lost.
// migrationPhase is the migration phase Inspect observes now ("" if it
// reported none), within 20 s.
func migrationPhase(t *testing.T, c *kafkatest.Cluster) string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	in, err := upgrade.Inspect(ctx, c.Client(t), upgrade.InspectWith(c), upgrade.InspectControllers(c.ControllerAddrs()...), upgrade.InspectTimeout(5*time.Second))
	if err != nil {
		t.Logf("inspect (for the migration phase): %v", err)
	}
	if in.Migration == nil {
		return ""
	}
	t.Logf("inspect: %v", *in.Migration)
	return string(in.Migration.Phase)
}

func TestMigrateZooKeeperToKRaft(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.ZooKeeper("3.7.2"), kafkatest.Brokers(3))
	tr := withTraffic(t, c)
	in := inspect(t, c)
	plan, err := upgrade.NewPlan(in.State, upgrade.Target{Version: compat.MustParseRelease("4.4.0")}, upgrade.MigrationControllers(3000))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("plan:\n%v", plan)
	rec := newRecorder(t)
	clock := newPhaseClock(plan)
	var completedLogged []bool // at the await step's end: does the controller's log say the metadata was migrated?
	var awaitedPhase []string  // and what Inspect says of the migration then
	rec.onEvent = func(e upgrade.Event) {
		clock.add(e)
		if e.Kind == upgrade.EventStepDone && e.StepKind == upgrade.StepAwaitMigration {
			b, err := os.ReadFile(c.Node(3000).LogPath())
			completedLogged = append(completedLogged, err == nil && strings.Contains(strings.ToLower(string(b)), "completed migration of metadata from zookeeper to kraft")) // "Zookeeper" before 3.7, "ZooKeeper" since
			awaitedPhase = append(awaitedPhase, migrationPhase(t, c))
		}
	}
	if got := migrationPhase(t, c); got != string(upgrade.MigrationPhaseZooKeeper) {
		t.Errorf("Inspect before the migration: migration phase %q, want zookeeper", got)
	}
	cl := c.Client(t)
	// The rolling upgrade's gates hold in every phase: a canary record
	// through every broker before and after each restart, and an
	// independent watcher asking every broker for its own view finds no
	// partition below min ISR or without a leader, from the bridge roll to
	// the last restart onto the target.
	can, err := health.NewCanary(cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := can.Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	stopISR := watchISR(t, c)
	start := time.Now()
	err = mustRunner(t, cl, c, upgrade.PassHolds(), upgrade.OnEvent(rec.add), upgrade.CanaryGate(can, 10*time.Second),
		upgrade.WithLogger(testLogger(t))).Run(t.Context(), plan)
	end := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	isr := stopISR()
	t.Logf("migration and upgrade took %v; phases: %v; ISR watcher: %d reads, %d breaches", end.Sub(start).Round(time.Millisecond), clock, isr.Reads, len(isr.Below()))
	if !slices.Equal(awaitedPhase, []string{string(upgrade.MigrationPhaseDualWrite)}) {
		t.Errorf("Inspect when the await step ended: migration phase %q, want [dual-write]", awaitedPhase)
	}
	if !slices.Equal(completedLogged, []bool{true}) {
		t.Errorf("when the await step ended, the controller's log said the migration had completed: %v (want [true])", completedLogged)
	}
	rep := finishTraffic(t, tr, start, end)
	t.Logf("records acknowledged %d, lost %d", rep.Acknowledged, rep.LostAcknowledged)

	for _, n := range c.All() {
		cfg := n.Config()
		if n.Release() != "4.4.0" {
			t.Errorf("node %d runs %s, want 4.4.0", n.ID(), n.Release())
		}
		if cfg["zookeeper.connect"] != "" || cfg["zookeeper.metadata.migration.enable"] != "" {
			t.Errorf("node %d still has ZooKeeper settings: %v", n.ID(), cfg)
		}
	}
	if got := c.Controllers(); len(got) != 1 || got[0].ID() != 3000 {
		t.Errorf("controllers %v, want node 3000", got)
	}
	fs, err := kraft.DescribeFeatures(context.Background(), cl, kraft.ControllerAddrs(c.ControllerAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	if lvl, agreed, _ := fs.Finalized(compat.FeatureMetadataVersion); !agreed || lvl != 33 {
		t.Errorf("metadata.version %d (agreed %v), want 4.4-IV2 (33) everywhere: %v", lvl, agreed, fs)
	}
	after := inspect(t, c)
	if after.State.Mode != compat.ModeKRaft {
		t.Errorf("mode after the migration %v, want kraft", after.State.Mode)
	}
}
