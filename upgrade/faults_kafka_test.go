package upgrade_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/health"
	"github.com/kupgrade/kupgrade/kafkatest"
	"github.com/kupgrade/kupgrade/kraft"
	"github.com/kupgrade/kupgrade/upgrade"
)

// The fault matrix of issue 12: each fault injected mid-roll on real Kafka
// under traffic (acks=all, idempotent), each asserting zero acknowledged
// records lost, zero produce failures and no partition below min ISR (or
// without a leader) as an independent ISR watcher sees it, besides what the
// Runner must do about the fault. TestFaultMatrix shares one KRaft cluster
// (3 controllers, 3 brokers) between four faults, one hop each; the ZooKeeper
// restart needs a ZooKeeper cluster of its own. The other faults of the
// matrix live with the tests that first proved them: a paused broker
// (TestHungBrokerBlocksByDefault), a target that fails to start
// (TestNodeFailsToStart) and a Runner process SIGKILLed and rerun
// (TestRerunRightAfterKill).

// watchISR starts kafkatest's ISR watcher on the topic "orders" of c. The
// func it returns stops the watcher, logs its report and fails the test on
// any breach (a partition below its min.insync.replicas or without a leader
// in any broker's view) or if it read nothing; it runs at cleanup if the
// test does not call it.
func watchISR(t *testing.T, c *kafkatest.Cluster) func() kafkatest.ISRReport {
	t.Helper()
	w, err := c.WatchISR(context.Background(), kafkatest.WatchInterval(250*time.Millisecond), kafkatest.WatchTopics("orders"))
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	var rep kafkatest.ISRReport
	stop := func() kafkatest.ISRReport {
		once.Do(func() {
			rep = w.Stop()
			t.Logf("ISR watcher: %v", rep)
			if b := rep.Below(); len(b) > 0 {
				t.Errorf("%d ISR breaches (a partition below min.insync.replicas, or without a leader) while the fault was on:\n%v", len(b), rep)
			}
			if rep.Reads == 0 || rep.Partitions == 0 {
				t.Errorf("the ISR watcher read %d answers about %d partitions: it watched nothing", rep.Reads, rep.Partitions)
			}
		})
		return rep
	}
	t.Cleanup(func() { stop() })
	return stop
}

// faultTraffic starts a new traffic run (its records told apart from older
// runs' in the same topic) on "orders", which must exist, with a baseline
// of about 2 s.
func faultTraffic(t *testing.T, c *kafkatest.Cluster) *kafkatest.Traffic {
	t.Helper()
	tr := c.Traffic(t, "orders", kafkatest.Rate(500))
	if err := tr.WaitAcknowledged(t.Context(), 500); err != nil {
		t.Fatal(err)
	}
	baseline[tr] = time.Now()
	if err := tr.WaitAcknowledged(t.Context(), 1500); err != nil {
		t.Fatal(err)
	}
	return tr
}

// matrixRow is one line of the fault matrix's table.
type matrixRow struct {
	fault, test string
	took        time.Duration
	traffic     kafkatest.TrafficReport
	isr         kafkatest.ISRReport
}

func logMatrix(t *testing.T, rows []matrixRow) {
	var b strings.Builder
	b.WriteString("| fault | test | run | acked | lost | produce failures | ISR breaches (reads) |\n|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %v | %d | %d | %d | %d (%d) |\n", r.fault, r.test, r.took.Round(time.Second),
			r.traffic.Acknowledged, r.traffic.LostAcknowledged, r.traffic.Failed, len(r.isr.Below()), r.isr.Reads)
	}
	t.Logf("fault matrix:\n%s", b.String())
}

// hopPlan plans the next hop of the matrix's cluster, checking that it
// starts where the last subtest left it.
func hopPlan(t *testing.T, c *kafkatest.Cluster, from, to string) upgrade.Plan {
	t.Helper()
	for _, n := range c.All() {
		if n.Release() != from || n.Status() != kafkatest.Running {
			t.Fatalf("node %d is %v on %s, want running %s: an earlier fault left the cluster so", n.ID(), n.Status(), n.Release(), from)
		}
	}
	in := inspect(t, c)
	plan, err := upgrade.NewPlan(in.State, upgrade.Target{Version: compat.MustParseRelease(to)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("plan:\n%v", plan)
	return plan
}

// starts returns how often each node of c has started.
func starts(c *kafkatest.Cluster) map[int32]int {
	m := map[int32]int{}
	for _, n := range c.All() {
		m[n.ID()] = n.Starts()
	}
	return m
}

// wantRestartedOnce fails the test unless every node started exactly once
// more than in before and runs release.
func wantRestartedOnce(t *testing.T, c *kafkatest.Cluster, before map[int32]int, release string) {
	t.Helper()
	for _, n := range c.All() {
		if got := n.Starts() - before[n.ID()]; got != 1 {
			t.Errorf("node %d started %d times in this hop, want once", n.ID(), got)
		}
		if n.Release() != release || n.Status() != kafkatest.Running {
			t.Errorf("node %d is %v on %s, want running %s", n.ID(), n.Status(), n.Release(), release)
		}
	}
}

// runAsync runs r in a goroutine that the test waits for before its
// cleanups close the cluster.
func runAsync(t *testing.T, r *upgrade.Runner, plan upgrade.Plan) <-chan error {
	done := make(chan error, 1)
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	wg.Go(func() { done <- r.Run(t.Context(), plan) })
	return done
}

// TestFaultMatrix takes one KRaft cluster of 3 controllers and 3 brokers
// from 3.8.1 through 3.9.2, 4.0.2 and 4.1.2 to 4.4.0, each hop finalized and
// under its own traffic, with one fault injected in each hop's roll.
func TestFaultMatrix(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.KRaft("3.8.1"), kafkatest.Controllers(3), kafkatest.Brokers(3))
	if err := c.CreateTopic(t.Context(), "orders", 6, 3, map[string]string{"min.insync.replicas": "2"}); err != nil {
		t.Fatal(err)
	}
	var rows []matrixRow
	defer func() { logMatrix(t, rows) }()
	opts := func(rec *recorder) []upgrade.RunnerOption {
		return []upgrade.RunnerOption{upgrade.PassHolds(), upgrade.OnEvent(rec.add), upgrade.KRaftControllers(c.ControllerAddrs()...),
			upgrade.WithLogger(testLogger(t))}
	}
	subtests := []struct {
		name, fault string
		from, to    string
		// run injects the fault into a run of plan and returns the run's
		// duration and the starts the test itself made (a dead node started
		// again), which are not restarts of the Runner's.
		run func(t *testing.T, plan upgrade.Plan, rec *recorder) (time.Duration, map[int32]int)
	}{
		{"ActiveControllerKilled", "active controller SIGKILLed mid-roll", "3.8.1", "3.9.2", func(t *testing.T, plan upgrade.Plan, rec *recorder) (time.Duration, map[int32]int) {
			return activeControllerKilled(t, c, plan, rec, opts(rec))
		}},
		{"NonTargetBrokerKilled", "non-target broker SIGKILLed mid-roll", "3.9.2", "4.0.2", func(t *testing.T, plan upgrade.Plan, rec *recorder) (time.Duration, map[int32]int) {
			return nonTargetBrokerKilled(t, c, plan, rec, opts(rec))
		}},
		{"JournalDiskFull", "journal disk full (twice) mid-roll", "4.0.2", "4.1.2", func(t *testing.T, plan upgrade.Plan, rec *recorder) (time.Duration, map[int32]int) {
			return journalDiskFull(t, c, plan, rec, opts(rec))
		}},
		{"SlowLink", "slow network Runner ↔ broker 5 (200 ms each way)", "4.1.2", "4.4.0", func(t *testing.T, plan upgrade.Plan, rec *recorder) (time.Duration, map[int32]int) {
			return slowLink(t, c, plan, rec, opts(rec))
		}},
	}
	for _, st := range subtests {
		ok := t.Run(st.name, func(t *testing.T) {
			plan := hopPlan(t, c, st.from, st.to)
			before := starts(c)
			tr := faultTraffic(t, c)
			stop := watchISR(t, c)
			rec := newRecorder(t)
			start := time.Now()
			took, extra := st.run(t, plan, rec)
			end := time.Now()
			isr := stop()
			rep := finishTraffic(t, tr, start, end)
			for id, n := range extra {
				before[id] += n
			}
			wantRestartedOnce(t, c, before, st.to)
			rows = append(rows, matrixRow{fault: st.fault, test: "TestFaultMatrix/" + st.name, took: took, traffic: rep, isr: isr})
		})
		if !ok {
			t.Fatalf("%s failed: the later hops would start from a cluster the fault left behind", st.name)
		}
	}
}

// activeControllerKilled SIGKILLs the active controller as soon as the first
// controller of the roll is done. The quorum is then two of three voters:
// restarting any other controller before the killed one is back would leave
// it without a majority. The Runner must restart the dead controller first
// (a node that is down costs nothing to restart, and the others' gates need
// it back), and no controller restart may begin while another controller is
// not running.
func activeControllerKilled(t *testing.T, c *kafkatest.Cluster, plan upgrade.Plan, rec *recorder, opts []upgrade.RunnerOption) (time.Duration, map[int32]int) {
	cl := c.Client(t)
	var (
		mu         sync.Mutex
		victim     int32 = -1
		killErr    error
		unsafe     []string
		afterKill  []int32 // controllers restarted after the kill, in order
		quorumSeen []string
	)
	rec.onEvent = func(e upgrade.Event) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case e.Kind == upgrade.EventStepDone && e.StepKind == upgrade.StepRestart && c.Node(e.Node).IsController() && victim < 0:
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			leader, err := activeController(ctx, c)
			if err != nil {
				killErr = err
				victim = -2
				return
			}
			victim = leader
			killErr = c.Node(leader).Kill()
			t.Logf("controller %d done: SIGKILL to the active controller %d", e.Node, leader)
		case e.Kind == upgrade.EventRestarting && c.Node(e.Node).IsController():
			if victim >= 0 {
				afterKill = append(afterKill, e.Node)
			}
			for _, o := range c.Controllers() {
				if o.ID() != e.Node && o.Status() != kafkatest.Running {
					unsafe = append(unsafe, fmt.Sprintf("controller %d restart began while controller %d was %v", e.Node, o.ID(), o.Status()))
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if q, err := kraft.DescribeQuorum(ctx, cl); err == nil {
				quorumSeen = append(quorumSeen, fmt.Sprintf("restart of %d: leader %d epoch %d", e.Node, q.LeaderID, q.LeaderEpoch))
			} else {
				quorumSeen = append(quorumSeen, fmt.Sprintf("restart of %d: %v", e.Node, err))
			}
		}
	}
	start := time.Now()
	err := mustRunner(t, cl, c, opts...).Run(t.Context(), plan)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if killErr != nil || victim < 0 {
		t.Fatalf("killing the active controller: victim %d, %v", victim, killErr)
	}
	t.Logf("quorum at each controller restart: %v", quorumSeen)
	for _, u := range unsafe {
		t.Error(u)
	}
	if len(afterKill) == 0 || afterKill[0] != victim {
		t.Errorf("controllers restarted after the kill of %d: %v; want the dead one first", victim, afterKill)
	}
	return took, nil
}

// activeController asks the cluster for the KRaft quorum leader.
func activeController(ctx context.Context, c *kafkatest.Cluster) (int32, error) {
	cl, err := c.NewClient()
	if err != nil {
		return -1, err
	}
	defer cl.Close()
	q, err := kraft.DescribeQuorum(ctx, cl)
	if err != nil {
		return -1, err
	}
	return q.LeaderID, nil
}

// nonTargetBrokerKilled SIGKILLs the first broker of the roll right after
// its step is done: it is no target any more, and its partitions sit at
// min ISR. The Runner must block the next broker's restart, naming
// partitions that would drop below min ISR, until the test starts the dead
// broker again; no broker restart may begin while it is down.
func nonTargetBrokerKilled(t *testing.T, c *kafkatest.Cluster, plan upgrade.Plan, rec *recorder, opts []upgrade.RunnerOption) (time.Duration, map[int32]int) {
	cl := c.Client(t)
	var (
		mu     sync.Mutex
		victim int32 = -1
		unsafe []string
	)
	killed := make(chan error, 1)
	blocked := make(chan upgrade.Event, 1)
	rec.onEvent = func(e upgrade.Event) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case e.Kind == upgrade.EventStepDone && e.StepKind == upgrade.StepRestart && c.Node(e.Node).IsBroker() && victim < 0:
			victim = e.Node
			killed <- c.Node(e.Node).Kill()
		case e.Kind == upgrade.EventGateBlocked && victim >= 0 && e.Node != victim && minISRReason(e) >= 0:
			select {
			case blocked <- e:
			default:
			}
		case e.Kind == upgrade.EventRestarting && victim >= 0:
			if s := c.Node(victim).Status(); s != kafkatest.Running {
				unsafe = append(unsafe, fmt.Sprintf("node %d restart began while broker %d was %v", e.Node, victim, s))
			}
		}
	}
	start := time.Now()
	done := runAsync(t, mustRunner(t, cl, c, opts...), plan)
	select {
	case err := <-killed:
		if err != nil {
			t.Fatal(err)
		}
	case err := <-done:
		t.Fatalf("run ended before a broker's step was done: %v", err)
	}
	killedAt := time.Now()
	var e upgrade.Event
	select {
	case e = <-blocked:
	case err := <-done:
		t.Fatalf("run ended while broker %d was dead, without blocking: %v", victim, err)
	case <-time.After(3 * time.Minute):
		t.Fatalf("no gate blocked on partitions at min ISR within 3m of broker %d's death", victim)
	}
	t.Logf("blocked %v after the kill: %v (%s)", time.Since(killedAt).Round(time.Millisecond), e, e.Reasons[minISRReason(e)].Message)
	ctx, cancel := context.WithTimeoutCause(t.Context(), 3*time.Minute, fmt.Errorf("broker %d not ready within 3m of its start", victim))
	defer cancel()
	if err := c.StartNode(ctx, victim); err != nil {
		t.Fatal(err)
	}
	t.Logf("broker %d back after %v dead", victim, time.Since(killedAt).Round(time.Millisecond))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	mu.Lock()
	defer mu.Unlock()
	for _, u := range unsafe {
		t.Error(u)
	}
	// The test's start of the dead broker is one more start, not the
	// Runner's: count it out.
	return took, map[int32]int{victim: 1}
}

// fullDisk is where a journal lives whose disk can be filled: a 64 KiB
// tmpfs if this process may mount one, else a [upgrade.FileJournal] whose
// Save fails with ENOSPC while the disk is "full".
type fullDisk struct {
	dir    string
	tmpfs  bool
	filler string
	full   atomic.Bool // the fallback's state
}

func newFullDisk(t *testing.T) *fullDisk {
	d := &fullDisk{dir: filepath.Join(t.TempDir(), "journal")}
	if err := os.Mkdir(d.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", d.dir).CombinedOutput()
	if err != nil {
		t.Logf("journal disk: cannot mount a tmpfs (%v: %s); using a journal whose Save fails with ENOSPC instead", err, strings.TrimSpace(string(out)))
		return d
	}
	d.tmpfs = true
	d.filler = filepath.Join(d.dir, "filler")
	t.Cleanup(func() {
		if out, err := exec.Command("umount", d.dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", d.dir, err, out)
		}
	})
	t.Logf("journal disk: a 64 KiB tmpfs at %s", d.dir)
	return d
}

// journal returns the run's journal on the disk.
func (d *fullDisk) journal() upgrade.Journal {
	j := upgrade.NewFileJournal(filepath.Join(d.dir, "journal.json"))
	if d.tmpfs {
		return j
	}
	return enospcJournal{j, d}
}

// fill fills the disk up.
func (d *fullDisk) fill() error {
	if !d.tmpfs {
		d.full.Store(true)
		return nil
	}
	f, err := os.OpenFile(d.filler, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for range 1 << 10 {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return nil
			}
			return err
		}
	}
	return errors.New("the 64 KiB tmpfs took 4 MiB without filling up")
}

// free frees the disk.
func (d *fullDisk) free() error {
	if !d.tmpfs {
		d.full.Store(false)
		return nil
	}
	return os.Remove(d.filler)
}

// enospcJournal is the fallback: a FileJournal (locks included) whose Save
// fails as a full disk would while the disk is "full".
type enospcJournal struct {
	*upgrade.FileJournal
	d *fullDisk
}

func (j enospcJournal) Save(ctx context.Context, r upgrade.Record) error {
	if j.d.full.Load() {
		return fmt.Errorf("upgrade: write journal: %w", &os.PathError{Op: "write", Path: j.Path(), Err: syscall.ENOSPC})
	}
	return j.FileJournal.Save(ctx, r)
}

// journalDiskFull fills the journal's disk twice: once as the second restart
// step starts (its "started" is journaled, its "restarted" cannot be), once
// right after the fourth restart is journaled done. Each time the Runner
// must stop before it restarts the next node, with an error naming the full
// disk, and after space is freed a rerun on the same journal resumes: every
// node restarted exactly once in the hop.
func journalDiskFull(t *testing.T, c *kafkatest.Cluster, plan upgrade.Plan, rec *recorder, opts []upgrade.RunnerOption) (time.Duration, map[int32]int) {
	cl := c.Client(t)
	disk := newFullDisk(t)
	var (
		mu       sync.Mutex
		restarts int // restart steps started, over all runs
		done     int // restart steps done, over all runs
		fillAt   string
		filled   bool
		fillErr  error
		after    []string // what the Runner did after the fill
	)
	rec.onEvent = func(e upgrade.Event) {
		mu.Lock()
		defer mu.Unlock()
		if filled && (e.Kind == upgrade.EventRestarting || e.Kind == upgrade.EventStepStarted || e.Kind == upgrade.EventStepDone) {
			after = append(after, e.String())
		}
		if e.StepKind != upgrade.StepRestart {
			return
		}
		fill := false
		switch e.Kind {
		case upgrade.EventStepStarted:
			restarts++
			fill = fillAt == "started" && restarts == 2
		case upgrade.EventStepDone:
			done++
			fill = fillAt == "done" && done == 4
		}
		if fill {
			filled = true
			fillErr = disk.fill()
			t.Logf("journal disk filled at %v", e)
		}
	}
	runs := []struct {
		fillAt string
		want   bool // the run must end with a full disk
	}{{"started", true}, {"done", true}, {"", false}}
	start := time.Now()
	for i, rn := range runs {
		mu.Lock()
		fillAt, filled, after = rn.fillAt, false, nil
		mu.Unlock()
		before := starts(c)
		err := mustRunner(t, cl, c, append(opts, upgrade.WithJournal(disk.journal()))...).Run(t.Context(), plan)
		mu.Lock()
		ferr, didFill, did := fillErr, filled, slices.Clone(after)
		mu.Unlock()
		if ferr != nil {
			t.Fatalf("filling the journal disk: %v", ferr)
		}
		if !rn.want {
			if err != nil {
				t.Fatalf("run %d, with space again: %v", i+1, err)
			}
			break
		}
		if !didFill {
			t.Fatalf("run %d ended (%v) before the disk was filled", i+1, err)
		}
		t.Logf("run %d with the disk full: %v", i+1, err)
		if err == nil || !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "journal") {
			t.Errorf("run %d = %v, want an error naming the journal and ENOSPC", i+1, err)
		}
		for _, d := range did {
			if strings.HasPrefix(d, string(upgrade.EventRestarting)) {
				t.Errorf("run %d went on after the journal disk was full: %s", i+1, d)
			}
		}
		if got := starts(c); !mapsEqual(got, before) && len(did) > 0 {
			t.Logf("run %d: starts %v → %v (events after the fill: %v)", i+1, before, got, did)
		}
		if err := disk.free(); err != nil {
			t.Fatal(err)
		}
	}
	return time.Since(start), nil
}

// slowLink slows the Runner's link to broker 5: first beyond what the
// liveness probe allows (1 s each way, probe timeout 500 ms), where the run
// must stop before its first restart naming broker 5 as unresponsive; then
// to 200 ms each way, under the default probe timeout, where the run must
// finish.
func slowLink(t *testing.T, c *kafkatest.Cluster, plan upgrade.Plan, rec *recorder, opts []upgrade.RunnerOption) (time.Duration, map[int32]int) {
	const slow = 5
	p, dial, err := c.SlowLink(slow, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cl := c.Client(t, dial)

	before := starts(c)
	err = mustRunner(t, cl, c, append(opts, upgrade.BrokerProbeTimeout(500*time.Millisecond), upgrade.GateTimeout(15*time.Second))...).Run(t.Context(), plan)
	t.Logf("with 1 s each way and a 500 ms probe: %v", err)
	if _, ok := errors.AsType[*upgrade.StepError](err); !ok || !strings.Contains(err.Error(), fmt.Sprintf("%d", slow)) {
		t.Errorf("run over a link slower than the probe allows = %v, want a StepError naming broker %d", err, slow)
	}
	if !rec.blockedOn(upgrade.RuleBrokerUnresponsive, slow) {
		t.Errorf("no gate blocked naming broker %d as unresponsive", slow)
	}
	if got := starts(c); !mapsEqual(got, before) {
		t.Fatalf("nodes restarted although the probe never passed: starts %v → %v", before, got)
	}

	p.SetLatency(200 * time.Millisecond)
	start := time.Now()
	err = mustRunner(t, cl, c, opts...).Run(t.Context(), plan)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	t.Logf("proxy in front of broker %d: %+v", slow, st)
	if st.FromTarget == 0 || st.Accepted == 0 {
		t.Errorf("the Runner's client never went through the slow link: %+v", st)
	}
	return took, nil
}

func mapsEqual(a, b map[int32]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// blockedOn reports whether a gate-blocked event had a reason of rule naming
// node.
func (r *recorder) blockedOn(rule health.Rule, node int32) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.ContainsFunc(r.events, func(e upgrade.Event) bool {
		return e.Kind == upgrade.EventGateBlocked && slices.ContainsFunc(e.Reasons, func(rs health.Reason) bool {
			return rs.Rule == rule && slices.Contains(rs.Nodes, node)
		})
	})
}

// TestZooKeeperRestartMidRoll stops ZooKeeper as soon as the first broker of
// a ZooKeeper-mode roll (3.8.1 → 3.9.2, 3 brokers) is done, and starts it
// again once the Runner has said that it waits for ZooKeeper and 5000 more
// records (10 s of traffic) were acknowledged meanwhile. While ZooKeeper is
// down no controller can move leaders or change an ISR, and a restarted
// broker cannot register: a restart then takes its partitions' leaders
// away with nobody to elect new ones. So no restart may begin while
// ZooKeeper is down (asked of ZooKeeper itself as each restart begins); the
// run must finish once it is back, with zero loss, zero produce failures
// and no ISR breach.
//
// And the Runner must not stall the brokers while it waits: they answer a
// topic's DescribeConfigs from ZooKeeper, each such request holding one of
// their request handler threads (num.io.threads, 2 in kafkatest) until
// ZooKeeper is back. Before the ZooKeeper probe ([upgrade.NoZooKeeperProbe])
// the gate's snapshots did just that: produce p99 went from 0.2 s to 68 s
// during a 74 s outage, and when ZooKeeper came back the leaders, whose
// followers had not been served, shrank two partitions' ISRs to one replica.
func TestZooKeeperRestartMidRoll(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.ZooKeeper("3.8.1"), kafkatest.Brokers(3))
	if err := c.CreateTopic(t.Context(), "orders", 6, 3, map[string]string{"min.insync.replicas": "2"}); err != nil {
		t.Fatal(err)
	}
	tr := faultTraffic(t, c)
	stopISR := watchISR(t, c)
	in := inspect(t, c)
	plan, err := upgrade.NewPlan(in.State, upgrade.Target{Version: compat.MustParseRelease("3.9.2")})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("plan:\n%v", plan)
	cl := c.Client(t)
	rec := newRecorder(t)
	var (
		mu      sync.Mutex
		asked   bool
		unsafe  []string
		stopped = make(chan error, 1)
		waits   = make(chan upgrade.Event, 1)
	)
	rec.onEvent = func(e upgrade.Event) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case e.Kind == upgrade.EventStepDone && e.StepKind == upgrade.StepRestart && !asked:
			asked = true
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			stopped <- c.StopZooKeeper(ctx)
		case e.Kind == upgrade.EventRestarting && asked:
			// Whatever the test believes: does ZooKeeper answer now?
			if err := zkAnswers(c.ZooKeeperAddr()); err != nil {
				unsafe = append(unsafe, fmt.Sprintf("node %d restart began while ZooKeeper did not answer (%v)", e.Node, err))
			}
		case e.Kind == upgrade.EventWaiting && strings.Contains(e.Message, "ZooKeeper does not serve"):
			select {
			case waits <- e:
			default:
			}
		}
	}
	start := time.Now()
	done := runAsync(t, mustRunner(t, cl, c, upgrade.PassHolds(), upgrade.OnEvent(rec.add), upgrade.WithLogger(testLogger(t))), plan)
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("stop ZooKeeper: %v", err)
		}
	case err := <-done:
		t.Fatalf("run ended before the first broker was done: %v", err)
	}
	stoppedAt := time.Now()
	acked := tr.Progress().Acknowledged
	select {
	case e := <-waits:
		t.Logf("%v after ZooKeeper stopped, the Runner: %v", time.Since(stoppedAt).Round(time.Millisecond), e)
	case err := <-done:
		t.Fatalf("run ended while ZooKeeper was down: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the Runner did not say within 1m that it waits for ZooKeeper")
	}
	ctx, cancel := context.WithTimeoutCause(t.Context(), time.Minute, errors.New("traffic stalled while ZooKeeper was down"))
	if err := tr.WaitAcknowledged(ctx, acked+5000); err != nil {
		t.Error(err)
	}
	cancel()
	ctx, cancel = context.WithTimeoutCause(t.Context(), 3*time.Minute, errors.New("ZooKeeper and the brokers' registrations not back within 3m"))
	defer cancel()
	if err := c.StartZooKeeper(ctx); err != nil {
		t.Fatal(err)
	}
	backAt := time.Now()
	down := tr.Latency(stoppedAt, backAt)
	t.Logf("ZooKeeper down for %v; produce latency of records sent meanwhile: %v", backAt.Sub(stoppedAt).Round(time.Millisecond), down)
	if down.P99 > 5*time.Second {
		t.Errorf("produce p99 %v while ZooKeeper was down: the brokers stalled", down.P99)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	end := time.Now()
	mu.Lock()
	for _, u := range unsafe {
		t.Error(u)
	}
	mu.Unlock()
	stopISR()
	rep := finishTraffic(t, tr, start, end)
	t.Logf("fault matrix row: ZooKeeper restarted mid-roll | TestZooKeeperRestartMidRoll | run %v | acked %d lost %d failed %d",
		end.Sub(start).Round(time.Second), rep.Acknowledged, rep.LostAcknowledged, rep.Failed)
	for _, n := range c.All() {
		if n.Release() != "3.9.2" || n.Starts() != 3 {
			t.Errorf("node %d runs %s after %d starts, want 3.9.2 after 3 (two rolls)", n.ID(), n.Release(), n.Starts())
		}
	}
}

// zkAnswers asks the ZooKeeper server at addr "ruok", within a second.
func zkAnswers(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("ruok")); err != nil {
		return err
	}
	b, err := io.ReadAll(conn)
	if string(b) != "imok" {
		return fmt.Errorf("ruok answered %q (%v)", b, err)
	}
	return nil
}
