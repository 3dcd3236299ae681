package upgrade_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/kafkatest"
	"github.com/kupgrade/kupgrade/upgrade"
)

// migrationCluster starts a ZooKeeper-mode cluster of three 3.9.2 brokers
// (the bridge: no roll before the migration) with traffic, and plans its
// migration to 4.4.0 with one KRaft controller, node 3000.
func migrationCluster(t *testing.T) (*kafkatest.Cluster, *kafkatest.Traffic, upgrade.Plan) {
	t.Helper()
	c := kafkatest.Start(t, kafkatest.ZooKeeper("3.9.2"), kafkatest.Brokers(3))
	tr := withTraffic(t, c)
	in := inspect(t, c)
	plan, err := upgrade.NewPlan(in.State, upgrade.Target{Version: compat.MustParseRelease("4.4.0")}, upgrade.MigrationControllers(3000))
	if err != nil {
		t.Fatal(err)
	}
	if plan.Steps[1].Kind != upgrade.StepProvisionController {
		t.Fatalf("plan does not start with the migration:\n%v", plan)
	}
	t.Logf("plan:\n%v", plan)
	return c, tr, plan
}

// zkMode checks that every broker runs as a ZooKeeper-mode broker again: its
// static config has broker.id and zookeeper.connect and none of the KRaft
// or migration settings, and the cluster has no KRaft controller.
func zkMode(t *testing.T, c *kafkatest.Cluster) {
	t.Helper()
	for _, n := range c.All() {
		cfg := n.Config()
		if n.IsController() {
			t.Errorf("node %d is still a KRaft controller", n.ID())
			continue
		}
		if cfg["broker.id"] != strconv.Itoa(int(n.ID())) || cfg["zookeeper.connect"] == "" {
			t.Errorf("broker %d: broker.id %q, zookeeper.connect %q", n.ID(), cfg["broker.id"], cfg["zookeeper.connect"])
		}
		for _, k := range []string{"process.roles", "node.id", "zookeeper.metadata.migration.enable", "controller.quorum.voters"} {
			if v, ok := cfg[k]; ok {
				t.Errorf("broker %d still has %s=%s", n.ID(), k, v)
			}
		}
	}
}

// TestMigrationRollback migrates a ZooKeeper cluster until the controllers
// would leave migration mode (the brokers are KRaft brokers, the controller
// writes to both: dual-write; the Runner holds there), then plans the revert
// with NewRollbackPlan and runs it under traffic: back to ZooKeeper mode with
// a broker as controller, the migration's znodes gone, zero acknowledged
// records lost. The ZooKeeper-mode cluster then takes a new topic, which
// needs its controller.
func TestMigrationRollback(t *testing.T) {
	c, tr, plan := migrationCluster(t)
	cl := c.Client(t)
	j := upgrade.NewFileJournal(filepath.Join(t.TempDir(), "journal.json"))
	start := time.Now()
	err := mustRunner(t, cl, c, upgrade.WithJournal(j), upgrade.OnEvent(newRecorder(t).add)).Run(t.Context(), plan)
	if he, ok := errors.AsType[*upgrade.HeldError](err); !ok || he.Index != plan.PointOfNoReturn() {
		t.Fatalf("Run = %v, want held at the point of no return (step %d)", err, plan.PointOfNoReturn()+1)
	}
	dualWrite := time.Now()
	if got := migrationPhase(t, c); got != string(upgrade.MigrationPhaseKRaft) {
		t.Errorf("Inspect at the hold: migration phase %q, want kraft (every broker in KRaft mode)", got)
	}
	for _, b := range c.Brokers() {
		if b.Config()["process.roles"] != "broker" {
			t.Fatalf("broker %d is not a KRaft broker at the hold: %v", b.ID(), b.Config())
		}
	}
	zkEpoch, kraftEpoch := controllerEpochs(t, c)
	rec, err := j.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	rb, err := upgrade.NewRollbackPlan(plan, rec)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rollback plan:\n%v", rb)
	rbRec := newRecorder(t)
	var retirePhase []string // what Inspect says when the controller is about to be retired
	var clearNotes []string  // what the clear step says of the epochs
	rbRec.onEvent = func(e upgrade.Event) {
		if e.Kind == upgrade.EventStepStarted && e.StepKind == upgrade.StepRetireController {
			retirePhase = append(retirePhase, migrationPhase(t, c))
		}
		if e.Kind == upgrade.EventWaiting && e.StepKind == upgrade.StepClearMigration && strings.Contains(e.Message, "controller epoch") {
			clearNotes = append(clearNotes, e.Message)
		}
	}
	if err := mustRunner(t, cl, c, upgrade.OnEvent(rbRec.add)).Run(t.Context(), rb); err != nil {
		t.Fatal(err)
	}
	end := time.Now()
	if !slices.Equal(retirePhase, []string{string(upgrade.MigrationPhaseDualWrite)}) {
		t.Errorf("Inspect before the controller's retirement (brokers back in ZooKeeper mode, migration mode): phase %q, want [dual-write]", retirePhase)
	}
	t.Logf("to dual-write %v, back to ZooKeeper mode %v", dualWrite.Sub(start).Round(time.Millisecond), end.Sub(dualWrite).Round(time.Millisecond))
	want := fmt.Sprintf("ZooKeeper controller epoch %d, KRaft controller epoch %d", zkEpoch, kraftEpoch)
	if len(clearNotes) != 1 || !strings.Contains(clearNotes[0], want) {
		t.Errorf("the clear step said %q, want one message saying %q", clearNotes, want)
	}
	zkMode(t, c)
	if err := c.CreateTopic(t.Context(), "after-revert", 3, 3, nil); err != nil {
		t.Errorf("the reverted cluster cannot create a topic: %v", err)
	}
	meta, err := kmsg.NewPtrMetadataRequest().RequestWith(t.Context(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if c.Node(meta.ControllerID) == nil || !c.Node(meta.ControllerID).IsBroker() {
		t.Errorf("controller %d after the revert, want a broker", meta.ControllerID)
	}
	rep := finishTraffic(t, tr, start, end)
	t.Logf("records acknowledged %d, lost %d", rep.Acknowledged, rep.LostAcknowledged)
	after := inspect(t, c)
	if after.State.Mode != compat.ModeZooKeeper {
		t.Errorf("mode after the revert %v, want zookeeper", after.State.Mode)
	}
	if after.Migration == nil || after.Migration.Phase != upgrade.MigrationPhaseZooKeeper {
		t.Errorf("migration after the revert %v, want phase zookeeper", after.Migration)
	}
}

// controllerEpochs reads the ZooKeeper controller epoch (/controller_epoch)
// and the KRaft controller's epoch (its registration in /controller) of a
// cluster in dual-write. A revert must elect a ZooKeeper controller whose
// epoch is above the KRaft one (KAFKA-20488). Every KRaft registration
// bumps /controller_epoch too, so a test cluster cannot reach the state
// where it is not without losing its quorum; the clear step's raising is
// unit-tested (TestClearMigrationRaisesEpoch), and this test checks that
// the step reads the two epochs as they are.
func controllerEpochs(t *testing.T, c *kafkatest.Cluster) (zk, kraft int) {
	t.Helper()
	connect := c.Node(3000).Config()["zookeeper.connect"] // the brokers run in KRaft mode at the hold
	raw, err := upgrade.ZooKeeperGet(t.Context(), connect, "/controller_epoch")
	if err != nil {
		t.Fatal(err)
	}
	if zk, err = strconv.Atoi(strings.TrimSpace(string(raw))); err != nil {
		t.Fatalf("/controller_epoch %q: %v", raw, err)
	}
	raw, err = upgrade.ZooKeeperGet(t.Context(), connect, "/controller")
	if err != nil {
		t.Fatal(err)
	}
	var reg struct {
		KRaftEpoch int `json:"kraftControllerEpoch"`
	}
	if err := json.Unmarshal(raw, &reg); err != nil {
		t.Fatalf("/controller %q: %v", raw, err)
	}
	t.Logf("at the hold: ZooKeeper controller epoch %d, KRaft controller epoch %d", zk, reg.KRaftEpoch)
	return zk, reg.KRaftEpoch
}

// freezingJournal is a journal that stops saving once frozen: what a
// SIGKILLed Runner leaves behind (the last record saved before the kill).
type freezingJournal struct {
	upgrade.Journal
	mu     sync.Mutex
	frozen bool
}

func (j *freezingJournal) freeze() { j.mu.Lock(); j.frozen = true; j.mu.Unlock() }

func (j *freezingJournal) Save(ctx context.Context, r upgrade.Record) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.frozen {
		return nil
	}
	return j.Journal.Save(ctx, r)
}

// TestMigrationResume kills the Runner in the middle of the migration (the
// second broker restarted into KRaft mode, not yet caught up; the journal
// frozen as a SIGKILL leaves it), then runs the plan again with the journal: the new
// Runner finishes the migration and the upgrade to 4.4.0 without
// provisioning the controller again, under traffic, zero acknowledged records
// lost.
func TestMigrationResume(t *testing.T) {
	c, tr, plan := migrationCluster(t)
	cl := c.Client(t)
	fj := upgrade.NewFileJournal(filepath.Join(t.TempDir(), "journal.json"))
	j := &freezingJournal{Journal: fj}
	ctx, kill := context.WithCancel(t.Context())
	defer kill()
	killAt := -1
	for i, s := range plan.Steps {
		if s.Phase == upgrade.PhaseKRaftBrokers && s.Kind == upgrade.StepRestart && s.Node == 2 {
			killAt = i
		}
	}
	var killedAfter time.Duration
	start := time.Now()
	rec1 := newRecorder(t)
	killed := make(chan string, 1)
	rec1.onEvent = func(e upgrade.Event) {
		// The Orchestrator has restarted broker 2 as a KRaft broker; the
		// Runner dies before it sees it catch up. (kafkatest restarts
		// nodes in this process: killed earlier, the restart itself would
		// die with the Runner, which a real Orchestrator's would not.)
		if e.Kind == upgrade.EventRestarted && e.Step == killAt {
			j.freeze() // from here on the journal is what a SIGKILL leaves
			killedAfter = time.Since(start)
			killed <- fmt.Sprintf("broker 2 %v, process started %d times", c.Node(2).Status(), c.Node(2).Starts())
			kill()
		}
	}
	err := mustRunner(t, cl, c, upgrade.WithJournal(j), upgrade.PassHolds(), upgrade.OnEvent(rec1.add)).Run(ctx, plan)
	if err == nil || ctx.Err() == nil {
		t.Fatalf("first run = %v, want it killed at step %d", err, killAt+1)
	}
	how := <-killed
	t.Logf("first run killed after %v at step %d (%s): %v", killedAfter.Round(time.Millisecond), killAt+1, how, err)
	saved, err := fj.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st := saved.Steps[killAt].State; st != upgrade.StepStarted {
		t.Fatalf("the journal left by the kill has step %d %q, want started", killAt+1, st)
	}
	starts := c.Node(3000).Starts()
	starts2 := c.Node(2).Starts()
	rec2 := newRecorder(t)
	clock := newPhaseClock(plan)
	rec2.onEvent = clock.add
	resumed := time.Now()
	if err := mustRunner(t, cl, c, upgrade.WithJournal(fj), upgrade.PassHolds(), upgrade.OnEvent(rec2.add), upgrade.WithLogger(testLogger(t))).Run(t.Context(), plan); err != nil {
		t.Fatal(err)
	}
	end := time.Now()
	t.Logf("second run took %v; phases: %v", end.Sub(resumed).Round(time.Millisecond), clock)
	rep := finishTraffic(t, tr, start, end)
	t.Logf("records acknowledged %d, lost %d", rep.Acknowledged, rep.LostAcknowledged)
	if got := len(c.Controllers()); got != 1 {
		t.Errorf("%d controllers, want 1 (provisioned once)", got)
	}
	// The controller restarted twice in the second run (out of migration
	// mode, onto 4.4.0), not provisioned again.
	if got := c.Node(3000).Starts() - starts; got != 2 {
		t.Errorf("controller 3000 started %d times in the second run, want 2", got)
	}
	// Broker 2's restart into KRaft mode took effect before the kill: the
	// second run waits for it to catch up, and restarts it once (onto 4.4.0).
	if got := c.Node(2).Starts() - starts2; got != 1 {
		t.Errorf("broker 2 started %d times in the second run, want 1 (onto 4.4.0)", got)
	}
	for _, n := range c.All() {
		if n.Release() != "4.4.0" || n.Config()["zookeeper.connect"] != "" {
			t.Errorf("node %d: %s, zookeeper.connect %q", n.ID(), n.Release(), n.Config()["zookeeper.connect"])
		}
	}
	// Nothing the journal records as finished is done again (within a roll
	// the Runner picks the order, so these are not simply the steps before
	// killAt).
	finished := 0
	for _, sr := range saved.Steps {
		if sr.State.Finished() {
			finished++
		}
	}
	if finished < 4 { // preflight, provision, three migration-mode restarts, the wait, ...
		t.Errorf("only %d steps finished before the kill", finished)
	}
	for _, e := range rec2.events {
		if e.Step >= 0 && e.Kind == upgrade.EventRestarting && saved.Steps[e.Step].State.Finished() {
			t.Errorf("the second run redid step %d (%v), finished before the kill", e.Step+1, plan.Steps[e.Step])
		}
	}
}
