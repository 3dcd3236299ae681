package upgrade_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/kafkatest"
	"github.com/kupgrade/kupgrade/node"
	"github.com/kupgrade/kupgrade/upgrade"
)

// httpOrchestrator is an Orchestrator in another process, reached over
// HTTP, as systemd over SSH or a Kubernetes operator would be: a restart it
// was asked for goes on even if the Runner that asked dies.
type httpOrchestrator struct{ url string }

func (o httpOrchestrator) Nodes(ctx context.Context) ([]node.Node, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, o.url+"/nodes", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var ns []node.Node
	return ns, json.NewDecoder(resp.Body).Decode(&ns)
}

func (o httpOrchestrator) Restart(ctx context.Context, id int32, ch node.Change) error {
	b, _ := json.Marshal(ch)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, o.url+"/restart?id="+strconv.Itoa(int(id)), bytes.NewReader(b))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("orchestrator: %s", strings.TrimSpace(string(msg)))
	}
	return nil
}

// TestRerunRightAfterKill reproduces issue 12.2 on real Kafka: the Runner's
// process is SIGKILLed the moment its first restart reaches the
// Orchestrator (which lives on, in this process, and finishes the restart),
// and a new Runner process on the same journal starts at once. The new run
// must let that restart finish rather than ask for it again: every node is
// restarted exactly once, and no restart of a node is asked for while
// another is under way.
//
// The fault matrix's "Runner SIGKILLed at several points": each rerun is
// SIGKILLed in turn at another point of the same roll (see rerunKillPoints)
// and rerun at once, until the last run finishes; the rule stays the same,
// and an independent ISR watcher must see no partition below min ISR.
func TestRerunRightAfterKill(t *testing.T) {
	if os.Getenv("KUPGRADE_RERUN_CHILD") != "" {
		rerunChild(t)
		return
	}
	c := kafkatest.Start(t, kafkatest.KRaft("3.9.2"), kafkatest.Combined(3))
	tr := withTraffic(t, c)
	in := inspect(t, c)
	plan, err := upgrade.NewPlan(in.State, upgrade.Target{Version: compat.MustParseRelease("4.1.2")})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	planFile, journalFile := filepath.Join(dir, "plan.json"), filepath.Join(dir, "journal.json")
	b, _ := json.Marshal(plan)
	if err := os.WriteFile(planFile, b, 0o644); err != nil {
		t.Fatal(err)
	}

	var (
		mu       sync.Mutex
		asked    = map[int32]int{}
		inFlight = map[int32]bool{}
		overlaps []string
		child    *exec.Cmd
		killed   bool
		restarts sync.WaitGroup
	)
	t.Cleanup(restarts.Wait) // before the cluster closes
	mux := http.NewServeMux()
	mux.HandleFunc("GET /nodes", func(w http.ResponseWriter, r *http.Request) {
		ns, err := c.Nodes(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(ns)
	})
	mux.HandleFunc("POST /restart", func(w http.ResponseWriter, r *http.Request) {
		id64, _ := strconv.Atoi(r.URL.Query().Get("id"))
		id := int32(id64)
		var ch node.Change
		if err := json.NewDecoder(r.Body).Decode(&ch); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		asked[id]++
		if inFlight[id] {
			overlaps = append(overlaps, fmt.Sprintf("node %d asked to restart again while its restart was under way", id))
			mu.Unlock()
			http.Error(w, "a restart of this node is under way", http.StatusConflict)
			return
		}
		inFlight[id] = true
		kill := !killed
		killed = true
		mu.Unlock()
		done := make(chan error, 1)
		restarts.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			err := c.Restart(ctx, id, ch)
			mu.Lock()
			inFlight[id] = false
			mu.Unlock()
			done <- err
		})
		if kill {
			t.Logf("restart of node %d reached the orchestrator: SIGKILL to the Runner (pid %d)", id, child.Process.Pid)
			child.Process.Kill()
		}
		select {
		case err := <-done:
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
			}
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	runChild := func(name string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRerunRightAfterKill$", "-test.v")
		cmd.Env = append(os.Environ(), "KUPGRADE_RERUN_CHILD="+name, "KUPGRADE_RERUN_URL="+srv.URL,
			"KUPGRADE_RERUN_SEEDS="+strings.Join(c.Addrs(), ","), "KUPGRADE_RERUN_PLAN="+planFile, "KUPGRADE_RERUN_JOURNAL="+journalFile)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		mu.Lock()
		child = cmd
		err := cmd.Start()
		mu.Unlock()
		if err != nil {
			return "", err
		}
		err = cmd.Wait()
		return out.String(), err
	}
	stopISR := watchISR(t, c)
	start := time.Now()
	out, err := runChild("first")
	t.Logf("first Runner process:\n%s", out)
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("first Runner process ended with %v, want it killed", err)
	}
	for _, p := range rerunKillPoints { // each at once, while what the last began goes on
		out, err = runChild(p.name)
		t.Logf("Runner process to be killed %s:\n%s", p.what, out)
		if err == nil || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("Runner process %q ended with %v, want it SIGKILLed %s", p.name, err, p.what)
		}
		if !strings.Contains(out, rerunKillMark) {
			t.Fatalf("Runner process %q was killed, but not by itself %s", p.name, p.what)
		}
	}
	out, err = runChild("last")
	t.Logf("last Runner process:\n%s", out)
	if err != nil {
		t.Fatalf("last Runner process: %v", err)
	}
	end := time.Now()
	restarts.Wait()
	stopISR()
	t.Logf("%d Runner processes (%d SIGKILLed) took %v", len(rerunKillPoints)+2, len(rerunKillPoints)+1, end.Sub(start).Round(time.Second))
	mu.Lock()
	defer mu.Unlock()
	for _, o := range overlaps {
		t.Error(o)
	}
	for _, n := range c.All() {
		if asked[n.ID()] != 1 {
			t.Errorf("node %d: restart asked for %d times, want once", n.ID(), asked[n.ID()])
		}
		if got := n.Starts(); got != 2 {
			t.Errorf("node %d started %d times, want 2 (the first start and one restart)", n.ID(), got)
		}
		if n.Release() != "4.1.2" {
			t.Errorf("node %d runs %s", n.ID(), n.Release())
		}
	}
	finishTraffic(t, tr, start, end)
}

// rerunChild is TestRerunRightAfterKill's Runner process.
func rerunChild(t *testing.T) {
	b, err := os.ReadFile(os.Getenv("KUPGRADE_RERUN_PLAN"))
	if err != nil {
		t.Fatal(err)
	}
	var plan upgrade.Plan
	if err := json.Unmarshal(b, &plan); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(os.Getenv("KUPGRADE_RERUN_SEEDS"), ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelDebug}))
	name := os.Getenv("KUPGRADE_RERUN_CHILD")
	i := slices.IndexFunc(rerunKillPoints, func(p rerunKillPoint) bool { return p.name == name })
	onEvent := func(upgrade.Event) {}
	if i >= 0 {
		p := rerunKillPoints[i]
		onEvent = func(e upgrade.Event) {
			if p.at(e) {
				// Stdout is the parent's pipe, unbuffered: the mark is
				// there before the signal is.
				fmt.Printf("%s %s: %v\n", rerunKillMark, p.what, e)
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		}
	}
	r := mustRunner(t, cl, httpOrchestrator{os.Getenv("KUPGRADE_RERUN_URL")}, upgrade.PassHolds(), upgrade.WithLogger(log),
		upgrade.WithJournal(upgrade.NewFileJournal(os.Getenv("KUPGRADE_RERUN_JOURNAL"))), upgrade.OnEvent(onEvent))
	if err := r.Run(t.Context(), plan); err != nil {
		t.Fatal(err)
	}
}

// rerunKillMark is what a Runner process of TestRerunRightAfterKill prints
// right before it SIGKILLs itself.
const rerunKillMark = "SIGKILL to myself"

// A rerunKillPoint is where a Runner process of TestRerunRightAfterKill
// SIGKILLs itself: at the first event of its run for which at is true.
type rerunKillPoint struct {
	name, what string
	at         func(upgrade.Event) bool
}

// rerunKillPoints are the kill points of the Runner processes after the
// first, in the order the processes run. With the plan of 3 nodes restarted
// and a finalize step, each lands in the step the last process left: the
// first process dies in restart 1 (its restart asked for), the next settles
// it and dies as restart 2 begins, and so on.
var rerunKillPoints = []rerunKillPoint{
	{"gate", "with a restart journaled started, its gate not passed yet", func(e upgrade.Event) bool {
		return e.Kind == upgrade.EventStepStarted && e.StepKind == upgrade.StepRestart && !strings.HasPrefix(e.Message, "resuming")
	}},
	{"catchup", "while a restarted node catches up", func(e upgrade.Event) bool { return e.Kind == upgrade.EventRestarted }},
	{"journaled", "right after a restart is journaled done", func(e upgrade.Event) bool {
		return e.Kind == upgrade.EventStepDone && e.StepKind == upgrade.StepRestart
	}},
	{"finalize", "as the finalize step begins", func(e upgrade.Event) bool {
		return e.Kind == upgrade.EventStepStarted && e.StepKind == upgrade.StepFinalize
	}},
}
