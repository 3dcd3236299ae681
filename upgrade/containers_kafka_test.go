package upgrade_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/kafkatest"
	"github.com/kupgrade/kupgrade/upgrade"
)

// The rolling upgrades of both modes on the container backend: every node
// in a container of its release's image, a restart with a new release
// replacing the node's container by one of the new image on the same data
// volume. Small clusters, releases the JVM tests use (no new downloads).
//
// Each runs on host networking ("containers", as LocalContainers sets up)
// and on bridge networking ("bridge", the default of kafkatest.Containers:
// a network per cluster, the clients' ports published on 127.0.0.1), where
// the engine can make bridge networks (under CI=true it must).
// KUPGRADE_CONTAINERS_COMPARE=1 runs each upgrade once more on JVMs, for
// the container vs JVM figures; CI does not.

// TestContainersRollingUpgradeZooKeeper rolls 1 ZooKeeper and 3 brokers in
// containers from 3.8.1 to 3.9.2 (a binary roll, then the
// inter.broker.protocol.version roll) under traffic, with zero loss.
func TestContainersRollingUpgradeZooKeeper(t *testing.T) {
	for _, name := range []string{"containers", "bridge", "jvm"} {
		t.Run(name, func(t *testing.T) {
			opt := backendOption(t, name, "3.8.1", "3.9.2")
			began := time.Now()
			c := kafkatest.Start(t, kafkatest.ZooKeeper("3.8.1"), kafkatest.Brokers(3), opt, kafkatest.Logger(testLogger(t)))
			t.Logf("%s: 1 ZooKeeper and 3 brokers of 3.8.1 ready %v after Start (the machine-wide lock's wait included)", name, time.Since(began).Round(time.Millisecond))
			tr := withTraffic(t, c)
			in := inspectZK(t, c)
			plan, err := upgrade.NewPlan(in.State, upgrade.Target{Version: compat.MustParseRelease("3.9.2")})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(plan.Restarts()); n != 6 {
				t.Fatalf("%d restarts planned, want two rolls of three:\n%v", n, plan)
			}
			cl := c.Client(t)
			if name == "bridge" {
				// What hung here before ZooKeeperConnect: the brokers name
				// ZooKeeper by its alias, which this machine cannot resolve, so
				// the ZooKeeper probe before every health snapshot fails and the
				// first gate waits out its timeout (10m by default).
				gated := time.Now()
				err := mustRunner(t, cl, c, upgrade.GateTimeout(5*time.Second)).Run(t.Context(), plan)
				if err == nil || !strings.Contains(err.Error(), "ZooKeeper") {
					t.Fatalf("a Runner without ZooKeeperConnect on bridge networking: %v; want the gate to refuse: ZooKeeper does not serve", err)
				}
				t.Logf("without ZooKeeperConnect the first gate refused after %v: %v", time.Since(gated).Round(time.Millisecond), err)
				if n := c.Node(1).Starts() + c.Node(2).Starts() + c.Node(3).Starts(); n != 3 {
					t.Fatalf("nodes started %d times in all after the refused run, want 3", n)
				}
			}
			rec := newRecorder(t)
			start := time.Now()
			// With bridge networking the brokers name ZooKeeper by its alias;
			// the Runner reaches it at its published port.
			err = mustRunner(t, cl, c, upgrade.PassHolds(), upgrade.OnEvent(rec.add), upgrade.WithLogger(testLogger(t)),
				upgrade.ZooKeeperConnect(c.ZooKeeperConnect())).Run(t.Context(), plan)
			end := time.Now()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: upgrade 3.8.1 → 3.9.2 (6 restarts) took %v; restarts (stop → caught up) sum %v, per step %v",
				name, end.Sub(start).Round(time.Millisecond), rec.sumRestarts().Round(time.Millisecond), rec.took)
			rep := finishTraffic(t, tr, start, end)
			t.Logf("%s: acknowledged %d, lost %d", name, rep.Acknowledged, rep.LostAcknowledged)
			after := inspectZK(t, c)
			for _, n := range after.Nodes {
				if n.Release.String() != "3.9.2" || n.IBPV.Value != "3.9-IV0" {
					t.Errorf("node %d after the upgrade: release %q, IBPV %+v; want 3.9.2 at 3.9-IV0", n.ID, n.Release, n.IBPV)
				}
			}
			for _, n := range c.All() {
				if n.Starts() != 3 {
					t.Errorf("node %d started %d times, want 3 (start, two rolls)", n.ID(), n.Starts())
				}
			}
			if after.MidUpgrade {
				t.Errorf("still mid-upgrade: %v", after.MidUpgradeWhy)
			}
		})
	}
}

// TestContainersRollingUpgradeKRaft rolls 3 combined KRaft nodes in
// containers from 3.9.2 to 4.0.2 and finalizes metadata.version, under
// traffic, with zero loss.
func TestContainersRollingUpgradeKRaft(t *testing.T) {
	for _, name := range []string{"containers", "bridge", "jvm"} {
		t.Run(name, func(t *testing.T) {
			opt := backendOption(t, name, "3.9.2", "4.0.2")
			began := time.Now()
			c := kafkatest.Start(t, kafkatest.KRaft("3.9.2"), kafkatest.Combined(3), opt, kafkatest.Logger(testLogger(t)))
			t.Logf("%s: 3 combined nodes of 3.9.2 ready %v after Start (the machine-wide lock's wait included)", name, time.Since(began).Round(time.Millisecond))
			tr := withTraffic(t, c)
			in := inspect(t, c)
			plan, err := upgrade.NewPlan(in.State, upgrade.Target{Version: compat.MustParseRelease("4.0.2")})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(plan.Restarts()); n != 3 {
				t.Fatalf("%d restarts planned, want one roll of three:\n%v", n, plan)
			}
			rec := newRecorder(t)
			cl := c.Client(t)
			start := time.Now()
			err = mustRunner(t, cl, c, upgrade.PassHolds(), upgrade.OnEvent(rec.add), upgrade.KRaftControllers(c.ControllerAddrs()...),
				upgrade.WithLogger(testLogger(t))).Run(t.Context(), plan)
			end := time.Now()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: upgrade 3.9.2 → 4.0.2 (3 restarts, finalize) took %v; restarts (stop → caught up) sum %v, per step %v",
				name, end.Sub(start).Round(time.Millisecond), rec.sumRestarts().Round(time.Millisecond), rec.took)
			rep := finishTraffic(t, tr, start, end)
			t.Logf("%s: acknowledged %d, lost %d", name, rep.Acknowledged, rep.LostAcknowledged)
			after := inspect(t, c)
			want, err := compat.LatestProduction(compat.MustParseRelease("4.0.2"))
			if err != nil {
				t.Fatal(err)
			}
			if got := after.State.Finalized[compat.FeatureMetadataVersion]; got != want.Level {
				t.Errorf("metadata.version %d after the upgrade, want %d", got, want.Level)
			}
			for _, n := range after.Nodes {
				if n.Release.String() != "4.0.2" {
					t.Errorf("node %d runs %q after the upgrade", n.ID, n.Release)
				}
			}
		})
	}
}

// backendOption returns the option of a backend, or skips the JVM run when
// no comparison is asked for.
func backendOption(t *testing.T, name string, releases ...string) kafkatest.Option {
	t.Helper()
	switch name {
	case "containers":
		return kafkatest.LocalContainers(t, releases...)
	case "bridge":
		return kafkatest.LocalBridgeContainers(t, releases...)
	}
	if os.Getenv("KUPGRADE_CONTAINERS_COMPARE") != "1" {
		t.Skip("the same upgrade on JVMs, for comparison: set KUPGRADE_CONTAINERS_COMPARE=1")
	}
	return kafkatest.HeapMB(512) // the default: JVMs on this machine
}

// inspectZK is inspect for a ZooKeeper-mode cluster, with the ZooKeeper
// address of this machine's side (the brokers' own with host networking).
func inspectZK(t *testing.T, c *kafkatest.Cluster) upgrade.Inspection {
	t.Helper()
	in, err := upgrade.Inspect(t.Context(), c.Client(t), upgrade.InspectWith(c), upgrade.ZooKeeperConnect(c.ZooKeeperConnect()))
	if err != nil {
		t.Fatalf("inspect: %v\n%v", err, in)
	}
	t.Logf("inspection:\n%v", in)
	return in
}
