package upgrade_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/kafkatest"
	"github.com/kupgrade/kupgrade/node"
	"github.com/kupgrade/kupgrade/upgrade"
)

func TestInspectZooKeeperPins(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.ZooKeeper("3.6.2"), kafkatest.Brokers(3),
		kafkatest.BrokerConfig(map[string]string{"inter.broker.protocol.version": "3.5", "log.message.format.version": "2.8"}))
	in := inspect(t, c)
	if in.State.Mode != compat.ModeZooKeeper {
		t.Errorf("mode %v, want zookeeper", in.State.Mode)
	}
	if len(in.Nodes) != 3 {
		t.Fatalf("nodes %v", in.Nodes)
	}
	for _, n := range in.Nodes {
		if n.Release.String() != "3.6.2" || n.Line != "v3.6" {
			t.Errorf("node %d: release %q line %q, want 3.6.2 / v3.6", n.ID, n.Release, n.Line)
		}
		if n.IBPV != compat.Static("3.5") {
			t.Errorf("node %d IBPV %+v, want 3.5 from server.properties", n.ID, n.IBPV)
		}
		if n.LMFV != compat.Static("2.8") {
			t.Errorf("node %d LMFV %+v, want 2.8 from server.properties", n.ID, n.LMFV)
		}
		if !slices.Equal(n.Roles, []node.Role{node.RoleBroker}) {
			t.Errorf("node %d roles %v", n.ID, n.Roles)
		}
	}
	if !in.MidUpgrade || !strings.Contains(strings.Join(in.MidUpgradeWhy, ";"), "pins inter.broker.protocol.version 3.5") {
		t.Errorf("mid-upgrade %v %v, want the 3.5 pin below 3.6 reported", in.MidUpgrade, in.MidUpgradeWhy)
	}
	if in.Controller < 1 || in.Controller > 3 {
		t.Errorf("controller %d", in.Controller)
	}
	// The planner continues from the pins: the first roll keeps 3.5.
	plan, err := upgrade.NewPlan(in.State, upgrade.Target{Version: compat.MustParseRelease("3.9.2")})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("plan:\n%v", plan)
}

func TestInspectKRaft(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.KRaft("3.9.2"), kafkatest.Controllers(3), kafkatest.Brokers(3), kafkatest.FormatMetadataVersion("3.8"))
	cl := c.Client(t)
	var took []time.Duration
	var in upgrade.Inspection
	for range 5 {
		start := time.Now()
		var err error
		in, err = upgrade.Inspect(t.Context(), cl, upgrade.InspectWith(c), upgrade.InspectControllers(c.ControllerAddrs()...))
		took = append(took, time.Since(start))
		if err != nil {
			t.Fatalf("inspect: %v", err)
		}
	}
	slices.Sort(took)
	t.Logf("Inspect of a 6-node KRaft cluster: min %v, median %v, max %v", took[0], took[2], took[4])
	t.Logf("inspection:\n%v", in)
	if in.State.Mode != compat.ModeKRaft {
		t.Errorf("mode %v", in.State.Mode)
	}
	if got := in.State.Finalized[compat.FeatureMetadataVersion]; got != 20 {
		t.Errorf("finalized metadata.version %d, want 20 (3.8-IV0)", got)
	}
	if in.Quorum == nil || len(in.Quorum.Voters) != 3 || in.Controller != in.Quorum.LeaderID {
		t.Errorf("quorum %v, controller %d", in.Quorum, in.Controller)
	}
	if len(in.Nodes) != 6 {
		t.Fatalf("%d nodes, want 6", len(in.Nodes))
	}
	for _, n := range in.Nodes {
		wantRole := node.RoleBroker
		if n.ID <= 3 {
			wantRole = node.RoleController
		}
		if !slices.Equal(n.Roles, []node.Role{wantRole}) || n.Release.String() != "3.9.2" {
			t.Errorf("node %d: roles %v release %q", n.ID, n.Roles, n.Release)
		}
		if r := n.SupportedFeatures[compat.FeatureMetadataVersion]; r.Max != 21 {
			t.Errorf("node %d supports metadata.version up to %d, want 21 (3.9-IV0)", n.ID, r.Max)
		}
	}
	if !in.MidUpgrade || !strings.Contains(strings.Join(in.MidUpgradeWhy, ";"), "finalizing is pending") {
		t.Errorf("mid-upgrade %v %v: metadata.version 3.8 under 3.9 software is pending finalization", in.MidUpgrade, in.MidUpgradeWhy)
	}

	// A half-finished upgrade: broker 6 on 4.1.2, the rest on 3.9.2.
	if err := c.Restart(t.Context(), 6, node.Change{Version: "4.1.2"}); err != nil {
		t.Fatal(err)
	}
	in = inspect(t, c)
	why := strings.Join(in.MidUpgradeWhy, ";")
	if !in.MidUpgrade || !strings.Contains(why, "mixed releases") || !strings.Contains(why, "4.1.2 on [6]") {
		t.Errorf("mid-upgrade %v %q, want mixed releases with 6 on 4.1.2", in.MidUpgrade, why)
	}
	for _, n := range in.Nodes {
		want, line := "3.9.2", "v3.9"
		if n.ID == 6 {
			want, line = "4.1.2", "v4.1"
		}
		if n.Release.String() != want || (n.ID > 3 && n.Line != line) {
			t.Errorf("node %d: release %q line %q, want %s / %s", n.ID, n.Release, n.Line, want, line)
		}
	}
	// The planner continues the half-finished upgrade: node 6 is not restarted again.
	plan, err := upgrade.NewPlan(in.State, upgrade.Target{Version: compat.MustParseRelease("4.1.2")})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range plan.Restarts() {
		if s.Node == 6 && s.Change.Version != "" {
			t.Errorf("plan restarts node 6 onto %s again:\n%v", s.Change.Version, plan)
		}
	}

	// A node that does not answer is named, and the rest is still reported.
	if err := c.Node(5).Pause(); err != nil {
		t.Fatal(err)
	}
	in, err = upgrade.Inspect(t.Context(), c.Client(t), upgrade.InspectWith(c), upgrade.InspectControllers(c.ControllerAddrs()...), upgrade.InspectTimeout(5*time.Second))
	c.Node(5).Resume()
	ne, ok := errors.AsType[*upgrade.NodeError](err)
	if !ok || ne.Node != 5 {
		t.Errorf("Inspect with broker 5 paused = %v, want a NodeError naming node 5", err)
	}
	if len(in.Nodes) < 5 {
		t.Errorf("Inspect with broker 5 paused reported %d nodes", len(in.Nodes))
	}
}

func TestInspectUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err = upgrade.Inspect(ctx, cl, upgrade.InspectTimeout(3*time.Second))
	if !errors.Is(err, upgrade.ErrUnreachable) {
		t.Fatalf("Inspect of a closed port = %v, want ErrUnreachable", err)
	}
}
