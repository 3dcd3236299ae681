package upgrade_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/health"
	"github.com/kupgrade/kupgrade/kafkatest"
	"github.com/kupgrade/kupgrade/upgrade"
)

// Passwords of the secured tests' users: fixed, so that the leak scan
// looks for exactly these strings too (kafkatest's own are random).
const (
	kupgradePassword = "kupgrade-Pw-7f3c19a2"
	wrongPassword    = "not-the-Pw-0b8e44d1"
)

// leakScan collects what kupgrade writes during a secured test (logs,
// events, errors, plans, journal files) and checks that no secret is in it.
type leakScan struct {
	mu       sync.Mutex
	logs     bytes.Buffer
	texts    map[string]*strings.Builder // source → what it said
	journals []string
}

func newLeakScan() *leakScan { return &leakScan{texts: map[string]*strings.Builder{}} }

func (s *leakScan) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.Write(p)
}

// add records text from a source ("events", "errors", "plans").
func (s *leakScan) add(source string, v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.texts[source]
	if b == nil {
		b = &strings.Builder{}
		s.texts[source] = b
	}
	fmt.Fprintf(b, "%v\n%+v\n", v, v)
	if j, err := json.Marshal(v); err == nil {
		b.Write(j)
		b.WriteByte('\n')
	}
}

// logger returns a logger whose text goes to the scan and to the test log.
func (s *leakScan) logger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(ioMulti{s, tWriter{t}}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type ioMulti [2]interface{ Write([]byte) (int, error) }

func (m ioMulti) Write(p []byte) (int, error) {
	m[0].Write(p)
	return m[1].Write(p)
}

// check fails the test for every secret found in any source, and logs how
// much it scanned.
func (s *leakScan) check(t *testing.T, secrets []string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	sources := map[string]string{"logs": s.logs.String()}
	for k, b := range s.texts {
		sources[k] = b.String()
	}
	for _, j := range s.journals {
		b, err := os.ReadFile(j)
		if err != nil {
			t.Fatalf("journal %s: %v", j, err)
		}
		sources["journal "+filepath.Base(j)] = string(b)
	}
	total := 0
	for name, text := range sources {
		total += len(text)
		if len(text) == 0 {
			t.Errorf("leak scan: %s is empty: the scan would prove nothing", name)
		}
		for _, sec := range secrets {
			if sec != "" && strings.Contains(text, sec) {
				t.Errorf("leak scan: a secret (%d bytes, starting %.4q) is in %s", len(sec), sec, name)
			}
		}
	}
	t.Logf("leak scan: %d secrets, none in %d sources (%d bytes: %v)", len(secrets), len(sources), total, keys(sources))
}

func keys(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s %dB", k, len(v)))
	}
	return out
}

// permissions turns kupgrade's ACLs into kafkatest's for principal.
func permissions(principal string, acls []upgrade.ACL) []kafkatest.Permission {
	var out []kafkatest.Permission
	for _, a := range acls {
		out = append(out, kafkatest.Permission{Principal: principal, Resource: a.Resource, Name: a.Name, Operation: a.Operation})
	}
	return out
}

// userClient is a client of c's brokers as user, with the given password.
func userClient(t *testing.T, c *kafkatest.Cluster, user, password string) *kgo.Client {
	t.Helper()
	opts := c.Security().ClientOpts(kafkatest.User{Name: user, Password: password, Mechanism: kafkatest.SCRAMSHA512})
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Addrs()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// TestSecuredRollingUpgradeKRaft upgrades a SASL_SSL KRaft cluster (one
// controller, three brokers, StandardAuthorizer) with kupgrade's client as a
// SCRAM-SHA-512 user that holds only [upgrade.ACLs]: first it proves that
// auth failures are clear (TestAuthFailureIsClear), then it rolls 3.9.2 →
// 4.0.2 and finalizes under traffic with a canary gate
// (TestLeastPrivilegeUpgrade, adding [upgrade.CanaryACLs]), then it
// replaces every broker with a 4.1.2 one (partition moves, retirements,
// finalize), and last it scans everything kupgrade wrote for secrets.
func TestSecuredRollingUpgradeKRaft(t *testing.T) {
	startAt := time.Now()
	c := kafkatest.Start(t, kafkatest.KRaft("3.9.2"), kafkatest.Controllers(1), kafkatest.Brokers(3),
		kafkatest.Secure(kafkatest.User{Name: "kupgrade", Password: kupgradePassword, Mechanism: kafkatest.SCRAMSHA512}))
	t.Logf("secured cluster (1 controller + 3 brokers, SCRAM user created) ready in %v", time.Since(startAt).Round(time.Millisecond))
	sec := c.Security()
	scan := newLeakScan()
	journalDir := t.TempDir() // the parent's: the leak scan reads the journals after the subtests
	principal := "User:kupgrade"
	needed := upgrade.ACLs(upgrade.OpInspect, upgrade.OpRollingUpgrade, upgrade.OpFinalize)
	t.Logf("ACLs of inspect + rolling upgrade + finalize:")
	for _, a := range needed {
		t.Logf("  %v", a)
	}
	tr := withTraffic(t, c)

	t.Run("TestAuthFailureIsClear", func(t *testing.T) {
		in := inspect(t, c) // as admin
		plan, err := upgrade.NewPlan(in.State, upgrade.Target{Version: compat.MustParseRelease("4.0.2")})
		if err != nil {
			t.Fatal(err)
		}
		// A wrong password: an authentication failure, not "unreachable".
		bad := userClient(t, c, "kupgrade", wrongPassword)
		start := time.Now()
		_, err = upgrade.Inspect(t.Context(), bad, upgrade.InspectControllers(c.ControllerAddrs()...))
		scan.add("errors", err)
		t.Logf("Inspect with a wrong password (%v): %v", time.Since(start).Round(time.Millisecond), err)
		if !errors.Is(err, upgrade.ErrUnauthenticated) || errors.Is(err, upgrade.ErrUnreachable) {
			t.Errorf("Inspect with a wrong password: %v; want ErrUnauthenticated, not ErrUnreachable", err)
		}
		start = time.Now()
		rec := newRecorder(t)
		err = mustRunner(t, bad, c, upgrade.OnEvent(rec.add), upgrade.GateTimeout(2*time.Minute), upgrade.WithLogger(scan.logger(t)),
			upgrade.KRaftControllers(c.ControllerAddrs()...)).Run(t.Context(), plan)
		took := time.Since(start)
		scan.add("errors", err)
		t.Logf("Run with a wrong password (%v): %v", took.Round(time.Millisecond), err)
		if !errors.Is(err, upgrade.ErrUnauthenticated) {
			t.Errorf("Run with a wrong password: %v; want ErrUnauthenticated", err)
		}
		if took > time.Minute {
			t.Errorf("Run with a wrong password took %v: it waited for the gate's timeout instead of failing at once", took)
		}
		if o := rec.restartOrder(); len(o) > 0 {
			t.Errorf("Run with a wrong password restarted nodes %v", o)
		}

		// Every ACL but one: a typed error naming the operation and the
		// resource, at once.
		var missing upgrade.ACL
		var rest []upgrade.ACL
		for _, a := range needed {
			if a.Resource.String() == "TOPIC" && a.Operation.String() == "DESCRIBE_CONFIGS" {
				missing = a
				continue
			}
			rest = append(rest, a)
		}
		if missing.Name == "" {
			t.Fatalf("ACLs lack DESCRIBE_CONFIGS on every topic: %v", needed)
		}
		if err := sec.Grant(t.Context(), c, permissions(principal, rest)...); err != nil {
			t.Fatal(err)
		}
		cl := userClient(t, c, "kupgrade", kupgradePassword)
		start = time.Now()
		rec = newRecorder(t)
		err = mustRunner(t, cl, c, upgrade.OnEvent(rec.add), upgrade.GateTimeout(2*time.Minute), upgrade.WithLogger(scan.logger(t)),
			upgrade.KRaftControllers(c.ControllerAddrs()...)).Run(t.Context(), plan)
		took = time.Since(start)
		scan.add("errors", err)
		t.Logf("Run without %v (%v): %v", missing, took.Round(time.Millisecond), err)
		de, ok := errors.AsType[*upgrade.DeniedError](err)
		if !ok || !errors.Is(err, upgrade.ErrDenied) {
			t.Fatalf("Run without %v: %v; want a *DeniedError", missing, err)
		}
		if de.Operation != missing.Operation || de.Resource != missing.Resource {
			t.Errorf("DeniedError names %v on %v, want %v on %v", de.Operation, de.Resource, missing.Operation, missing.Resource)
		}
		if took > time.Minute {
			t.Errorf("Run without an ACL took %v: it waited for the gate's timeout instead of failing at once", took)
		}
		if o := rec.restartOrder(); len(o) > 0 {
			t.Errorf("Run without an ACL restarted nodes %v", o)
		}
		if err := sec.Grant(t.Context(), c, permissions(principal, []upgrade.ACL{missing})...); err != nil {
			t.Fatal(err)
		}
	})
	if t.Failed() {
		return
	}

	// TestLeastPrivilegeUpgrade: the whole upgrade as kupgrade, holding only
	// the ACLs listed.
	t.Run("TestLeastPrivilegeUpgrade", func(t *testing.T) {
		cl := userClient(t, c, "kupgrade", kupgradePassword)
		// The ACLs listed (again: each subtest can run alone), and a canary
		// gate's on its topic.
		if err := sec.Grant(t.Context(), c, permissions(principal, append(needed, upgrade.CanaryACLs("kupgrade-canary")...))...); err != nil {
			t.Fatal(err)
		}
		can, err := health.NewCanary(cl, health.CanaryTopic("kupgrade-canary"))
		if err != nil {
			t.Fatal(err)
		}
		if err := can.Ensure(t.Context()); err != nil {
			t.Fatalf("canary topic as kupgrade: %v", err)
		}
		in, err := upgrade.Inspect(t.Context(), cl, upgrade.InspectWith(c), upgrade.InspectControllers(c.ControllerAddrs()...))
		if err != nil {
			t.Fatalf("inspect as kupgrade: %v", err)
		}
		plan, err := upgrade.NewPlan(in.State, upgrade.Target{Version: compat.MustParseRelease("4.0.2")})
		if err != nil {
			t.Fatal(err)
		}
		scan.add("plans", plan)
		journal := filepath.Join(journalDir, "rolling.json")
		scan.journals = append(scan.journals, journal)
		rec := newRecorder(t)
		rec.onEvent = func(e upgrade.Event) { scan.add("events", e) }
		start := time.Now()
		err = mustRunner(t, cl, c, upgrade.PassHolds(), upgrade.OnEvent(rec.add), upgrade.WithJournal(upgrade.NewFileJournal(journal)),
			upgrade.CanaryGate(can, 10*time.Second), upgrade.KRaftControllers(c.ControllerAddrs()...), upgrade.WithLogger(scan.logger(t))).Run(t.Context(), plan)
		end := time.Now()
		scan.add("errors", err)
		if err != nil {
			t.Fatalf("upgrade as kupgrade: %v", err)
		}
		t.Logf("rolling upgrade 3.9.2 → 4.0.2 with finalize as kupgrade took %v; restarts %v", end.Sub(start).Round(time.Millisecond), rec.restartOrder())
		offs, err := kadm.NewClient(c.Client(t)).ListEndOffsets(t.Context(), "kupgrade-canary")
		if err != nil {
			t.Fatal(err)
		}
		var probes int64
		offs.Each(func(o kadm.ListedOffset) { probes += o.Offset })
		t.Logf("canary records written by kupgrade's probes: %d", probes)
		if probes == 0 {
			t.Error("the canary topic is empty: the canary gate never probed")
		}
		after, err := upgrade.Inspect(t.Context(), cl, upgrade.InspectWith(c), upgrade.InspectControllers(c.ControllerAddrs()...))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range after.Nodes {
			if n.Release.String() != "4.0.2" {
				t.Errorf("node %d runs %v after the upgrade", n.ID, n.Release)
			}
		}
		mv, _ := compat.LatestProduction(compat.MustParseRelease("4.0.2"))
		if got := after.State.Finalized[compat.FeatureMetadataVersion]; got != mv.Level {
			t.Errorf("metadata.version %d after the upgrade, want %d", got, mv.Level)
		}
	})
	if t.Failed() {
		return
	}

	// Node replacement 4.0.2 → 4.1.2 as kupgrade, with the replace ACLs
	// added: the controller rolls in place, every broker gets a 4.1.2
	// replacement, partitions move (package reassign, throttled), the old
	// brokers retire and are unregistered, and features are finalized.
	t.Run("Replace", func(t *testing.T) {
		replaceACLs := upgrade.ACLs(upgrade.OpReplace)
		t.Logf("ACLs of replace: %v", replaceACLs)
		if err := sec.Grant(t.Context(), c, permissions(principal, append(needed, replaceACLs...))...); err != nil {
			t.Fatal(err)
		}
		cl := userClient(t, c, "kupgrade", kupgradePassword)
		in, err := upgrade.Inspect(t.Context(), cl, upgrade.InspectWith(c), upgrade.InspectControllers(c.ControllerAddrs()...))
		if err != nil {
			t.Fatalf("inspect as kupgrade: %v", err)
		}
		plan, err := upgrade.NewReplacePlan(in.State, upgrade.Target{Version: compat.MustParseRelease("4.1.2")})
		if err != nil {
			t.Fatal(err)
		}
		scan.add("plans", plan)
		journal := filepath.Join(journalDir, "replace.json")
		scan.journals = append(scan.journals, journal)
		rec := newRecorder(t)
		rec.onEvent = func(e upgrade.Event) { scan.add("events", e) }
		start := time.Now()
		err = mustRunner(t, cl, c, upgrade.PassHolds(), upgrade.OnEvent(rec.add), upgrade.WithJournal(upgrade.NewFileJournal(journal)),
			upgrade.KRaftControllers(c.ControllerAddrs()...), upgrade.WithLogger(scan.logger(t))).Run(t.Context(), plan)
		scan.add("errors", err)
		if err != nil {
			t.Fatalf("replace as kupgrade: %v", err)
		}
		t.Logf("node replacement 4.0.2 → 4.1.2 with finalize as kupgrade took %v", time.Since(start).Round(time.Millisecond))
		after, err := upgrade.Inspect(t.Context(), cl, upgrade.InspectWith(c), upgrade.InspectControllers(c.ControllerAddrs()...))
		if err != nil {
			t.Fatal(err)
		}
		var ids []int32
		for _, n := range after.Nodes {
			ids = append(ids, n.ID)
			if n.Release.String() != "4.1.2" {
				t.Errorf("node %d runs %v after the replacement", n.ID, n.Release)
			}
		}
		if want := []int32{1, 5, 6, 7}; !slices.Equal(ids, want) {
			t.Errorf("nodes %v after the replacement, want %v (controller 1, brokers 5–7 replacing 2–4)", ids, want)
		}
		mv, _ := compat.LatestProduction(compat.MustParseRelease("4.1.2"))
		if got := after.State.Finalized[compat.FeatureMetadataVersion]; got != mv.Level {
			t.Errorf("metadata.version %d after the replacement, want %d", got, mv.Level)
		}
	})
	rep, err := tr.Stop(context.Background())
	if err != nil {
		t.Fatalf("traffic: %v", err)
	}
	t.Logf("traffic: %v", rep)
	if err := rep.Err(); err != nil {
		t.Error(err)
	}
	t.Run("NoSecretsLeak", func(t *testing.T) {
		secrets := append(sec.Secrets(), kupgradePassword, wrongPassword)
		scan.check(t, secrets)
	})
}

// TestSecuredRollingUpgradeZooKeeper rolls a SASL_SSL ZooKeeper-mode cluster
// (three brokers, AclAuthorizer, PLAIN between brokers) from 3.8.1 to 3.9.2
// under traffic, with kupgrade's client as a SCRAM-SHA-512 user (created
// through the brokers with AlterUserScramCredentials) that holds only the
// ACLs of inspect and a rolling upgrade: two rolls (binary with
// inter.broker.protocol.version pinned, then the pin raised).
func TestSecuredRollingUpgradeZooKeeper(t *testing.T) {
	startAt := time.Now()
	c := kafkatest.Start(t, kafkatest.ZooKeeper("3.8.1"), kafkatest.Brokers(3),
		kafkatest.Secure(kafkatest.User{Name: "kupgrade", Password: kupgradePassword, Mechanism: kafkatest.SCRAMSHA512}))
	t.Logf("secured cluster (ZooKeeper + 3 brokers, SCRAM user created) ready in %v", time.Since(startAt).Round(time.Millisecond))
	acls := upgrade.ACLs(upgrade.OpInspect, upgrade.OpRollingUpgrade)
	if err := c.Security().Grant(t.Context(), c, permissions("User:kupgrade", acls)...); err != nil {
		t.Fatal(err)
	}
	tr := withTraffic(t, c)
	cl := userClient(t, c, "kupgrade", kupgradePassword)
	in, err := upgrade.Inspect(t.Context(), cl, upgrade.InspectWith(c))
	if err != nil {
		t.Fatalf("inspect as kupgrade: %v", err)
	}
	plan, err := upgrade.NewPlan(in.State, upgrade.Target{Version: compat.MustParseRelease("3.9.2")})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(plan.Restarts()); n != 6 {
		t.Fatalf("%d restarts planned, want two rolls of three:\n%v", n, plan)
	}
	scan := newLeakScan()
	journal := filepath.Join(t.TempDir(), "journal.json")
	scan.journals = append(scan.journals, journal)
	scan.add("plans", plan)
	rec := newRecorder(t)
	rec.onEvent = func(e upgrade.Event) { scan.add("events", e) }
	start := time.Now()
	err = mustRunner(t, cl, c, upgrade.PassHolds(), upgrade.OnEvent(rec.add), upgrade.WithJournal(upgrade.NewFileJournal(journal)),
		upgrade.WithLogger(scan.logger(t))).Run(t.Context(), plan)
	end := time.Now()
	scan.add("errors", err)
	if err != nil {
		t.Fatalf("upgrade as kupgrade: %v", err)
	}
	t.Logf("rolling upgrade 3.8.1 → 3.9.2 (two rolls) as kupgrade took %v; restarts %v", end.Sub(start).Round(time.Millisecond), rec.restartOrder())
	finishTraffic(t, tr, start, end)
	after, err := upgrade.Inspect(t.Context(), cl, upgrade.InspectWith(c))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range after.Nodes {
		if n.Release.String() != "3.9.2" || n.IBPV.Value != "3.9-IV0" {
			t.Errorf("node %d after the upgrade: release %v, IBPV %+v; want 3.9.2 at 3.9-IV0", n.ID, n.Release, n.IBPV)
		}
	}
	scan.check(t, append(c.Security().Secrets(), kupgradePassword))
}
