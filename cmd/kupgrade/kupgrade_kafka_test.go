package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kupgrade/kupgrade/kafkatest"
	"github.com/kupgrade/kupgrade/node"
	"github.com/kupgrade/kupgrade/upgrade"
)

// controlServer is the test's stand-in for ssh and systemd: the kupgrade
// process's command templates run nodectl, which asks this server (in the
// test process, on 127.0.0.1) to restart a node of the kafkatest cluster.
// A restart it was asked for goes on even if the kupgrade process that
// asked dies, as a systemctl restart on a remote host would.
type controlServer struct {
	c        *kafkatest.Cluster
	mu       sync.Mutex
	asked    map[int32]int
	inFlight map[int32]bool
	overlaps []string
	onAsk    func(id int32, total int) // called with mu held
	restarts sync.WaitGroup
	url      string
}

func newControlServer(t *testing.T, c *kafkatest.Cluster) *controlServer {
	s := &controlServer{c: c, asked: map[int32]int{}, inFlight: map[int32]bool{}}
	t.Cleanup(s.restarts.Wait) // before the cluster closes
	mux := http.NewServeMux()
	mux.HandleFunc("GET /nodes", func(w http.ResponseWriter, r *http.Request) {
		ns, err := c.Nodes(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(ns)
	})
	mux.HandleFunc("GET /alive", func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.Atoi(r.URL.Query().Get("id"))
		alive, err := c.Alive(r.Context(), int32(id))
		switch {
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
		case !alive:
			w.WriteHeader(http.StatusGone)
		}
	})
	mux.HandleFunc("POST /restart", func(w http.ResponseWriter, r *http.Request) {
		id64, _ := strconv.Atoi(r.URL.Query().Get("id"))
		id := int32(id64)
		var ch node.Change
		if err := json.NewDecoder(r.Body).Decode(&ch); err != nil {
			http.Error(w, "change: "+err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.asked[id]++
		if s.inFlight[id] {
			s.overlaps = append(s.overlaps, fmt.Sprintf("node %d asked to restart again while its restart was under way", id))
			s.mu.Unlock()
			http.Error(w, "a restart of this node is under way", http.StatusConflict)
			return
		}
		s.inFlight[id] = true
		total := 0
		for _, n := range s.asked {
			total += n
		}
		if s.onAsk != nil {
			s.onAsk(id, total)
		}
		s.mu.Unlock()
		done := make(chan error, 1)
		s.restarts.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			err := c.Restart(ctx, id, ch)
			s.mu.Lock()
			s.inFlight[id] = false
			s.mu.Unlock()
			done <- err
		})
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
	s.url = srv.URL
	return s
}

// reset forgets the restarts counted so far and sets the ask hook.
func (s *controlServer) reset(onAsk func(id int32, total int)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked, s.overlaps, s.onAsk = map[int32]int{}, nil, onAsk
}

// buildBinaries builds kupgrade and nodectl into dir.
func buildBinaries(t *testing.T, dir string) (kupgrade, nodectl string) {
	t.Helper()
	kupgrade, nodectl = filepath.Join(dir, "kupgrade"), filepath.Join(dir, "nodectl")
	for bin, pkg := range map[string]string{kupgrade: ".", nodectl: "./testdata/nodectl"} {
		out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	return kupgrade, nodectl
}

// cli is the kupgrade binary under test with its config.
type cli struct {
	t        *testing.T
	bin, cfg string

	mu   sync.Mutex
	proc *os.Process // the running kupgrade process, for SIGKILL
}

// run runs kupgrade args, bounded by timeout, and returns its exit code and
// output (stdout and stderr together).
func (c *cli) run(timeout time.Duration, args ...string) (int, string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), timeout)
	defer cancel()
	if args[0] != "status" { // the one command without a config
		args = append([]string{args[0], "-config", c.cfg}, args[1:]...)
	}
	cmd := exec.CommandContext(ctx, c.bin, args...)
	var out bytes.Buffer
	pr, pw, err := os.Pipe()
	if err != nil {
		c.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	c.mu.Lock()
	err = cmd.Start()
	c.proc = cmd.Process
	c.mu.Unlock()
	pw.Close()
	if err != nil {
		c.t.Fatal(err)
	}
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
	}
	pr.Close()
	err = cmd.Wait()
	if ctx.Err() != nil {
		c.t.Fatalf("kupgrade %s did not end within %v:\n%s", strings.Join(args, " "), timeout, out.String())
	}
	code := 0
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		code = ee.ExitCode()
		if !ee.Exited() {
			code = -1 // killed
		}
	} else if err != nil {
		c.t.Fatal(err)
	}
	return code, out.String()
}

// kill SIGKILLs the running kupgrade process.
func (c *cli) kill() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.proc.Kill()
}

// TestCLIKafka drives the kupgrade command end to end on a real KRaft
// cluster of three combined nodes (3.9.2), whose nodes the config's
// templates restart through nodectl, under traffic for the whole test:
// inspect; plan and apply 3.9.2 → 4.0.2, which rolls every node and stops
// before the held (irreversible) finalize step with exit code 3; rollback,
// which rolls them back to 3.9.2; then plan and apply 3.9.2 → 4.1.2 with
// -pass-holds, its kupgrade process SIGKILLed while its second restart is
// under way, run again on the same journal until done. Every node is
// restarted exactly once per run of a plan, never twice at a time, no
// partition goes below min ISR, and no acknowledged record is lost.
func TestCLIKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Kafka cluster")
	}
	kafkatest.RequireTools(t) // skips (or fails in CI) before building anything
	dir := t.TempDir()
	bin, nodectl := buildBinaries(t, dir)
	start := time.Now()
	c := kafkatest.Start(t, kafkatest.KRaft("3.9.2"), kafkatest.Combined(3))
	t.Logf("cluster started in %v", time.Since(start).Round(time.Second))
	srv := newControlServer(t, c)

	cfg := map[string]any{
		"seeds":       c.Addrs(),
		"controllers": c.ControllerAddrs(),
		"commands": map[string]string{
			"restart": nodectl + " -url " + srv.url + " restart {{.ID}} {{quote (json .Change)}}",
			"alive":   nodectl + " -url " + srv.url + " alive {{.ID}}",
			"nodes":   nodectl + " -url " + srv.url + " nodes",
		},
		"timeouts": map[string]string{"restart": "5m", "alive": "10s", "nodes": "10s"},
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	cfgPath := filepath.Join(dir, "kupgrade.json")
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	k := &cli{t: t, bin: bin, cfg: cfgPath}

	if err := c.CreateTopic(t.Context(), "orders", 6, 3, map[string]string{"min.insync.replicas": "2"}); err != nil {
		t.Fatal(err)
	}
	tr := c.Traffic(t, "orders", kafkatest.Rate(500))
	if err := tr.WaitAcknowledged(t.Context(), 1000); err != nil {
		t.Fatal(err)
	}
	isr, err := c.WatchISR(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	upgradeStart := time.Now()

	code, out := k.run(time.Minute, "inspect", "-json")
	if code != 0 {
		t.Fatalf("inspect exited %d:\n%s", code, out)
	}
	// Only the nodes' releases: an Inspection's JSON does not decode back
	// whole (kraft.UUID marshals as text but does not unmarshal from it).
	var in inspected
	if err := json.Unmarshal([]byte(out), &in); err != nil {
		t.Fatalf("inspect -json: %v\n%s", err, out)
	}
	if got := releases(in); !slices.Equal(got, []string{"3.9.2", "3.9.2", "3.9.2"}) {
		t.Fatalf("inspect: releases %v, want 3.9.2 on each node\n%s", got, out)
	}

	t.Run("held-rollback", func(t *testing.T) {
		plan := filepath.Join(dir, "to-4.0.2.json")
		p := makePlan(t, k, "4.0.2", plan)
		if !slices.ContainsFunc(p.Steps, func(s upgrade.Step) bool { return s.Hold && s.Kind == upgrade.StepFinalize }) {
			t.Fatalf("plan 3.9.2 → 4.0.2 holds no finalize step (metadata.version 4.0-IV3 crosses a metadata change)")
		}
		srv.reset(nil)
		t0 := time.Now()
		code, out := k.run(5*time.Minute, "apply", "-plan", plan)
		t.Logf("apply (%v, exit %d):\n%s", time.Since(t0).Round(time.Second), code, out)
		if code != exitHeld || !strings.Contains(out, "-pass-holds") {
			t.Fatalf("apply of a plan with a held step exited %d, want %d (held) and a hint to -pass-holds", code, exitHeld)
		}
		checkOnceEach(t, srv, c, 2, "4.0.2")
		t.Logf("rolling restart to 4.0.2 through the CLI, up to its held finalize: %v", time.Since(t0).Round(time.Second))

		srv.reset(nil)
		t0 = time.Now()
		code, out = k.run(5*time.Minute, "rollback", "-plan", plan)
		t.Logf("rollback (%v, exit %d):\n%s", time.Since(t0).Round(time.Second), code, out)
		if code != 0 {
			t.Fatalf("rollback exited %d", code)
		}
		checkOnceEach(t, srv, c, 3, "3.9.2")
		rb := strings.TrimSuffix(plan, ".json") + ".rollback.json"
		checkStatusDone(t, k, rb, 4) // preflight and three restarts
		code, out = k.run(time.Minute, "rollback", "-plan", plan)
		if code != 0 || !strings.Contains(out, "nothing to do") {
			t.Errorf("rollback run again exited %d, want 0 and nothing done:\n%s", code, out)
		}
	})

	t.Run("kill-resume", func(t *testing.T) {
		plan := filepath.Join(dir, "to-4.1.2.json")
		p := makePlan(t, k, "4.1.2", plan) // from 3.9.2 again
		var killedAt int32 = -1
		srv.reset(func(id int32, total int) {
			if total == 2 && killedAt < 0 { // the second restart reached the "host": kill kupgrade
				killedAt = id
				k.kill()
			}
		})
		t0 := time.Now()
		code, out := k.run(5*time.Minute, "apply", "-plan", plan, "-pass-holds")
		t.Logf("first apply (exit %d):\n%s", code, out)
		if code != -1 || killedAt < 0 {
			t.Fatalf("first apply exited %d (killed at node %d), want it SIGKILLed during its second restart", code, killedAt)
		}
		code, out = k.run(time.Minute, "status", "-plan", plan)
		t.Logf("status after the SIGKILL:\n%s", out)
		if code != 0 || !strings.Contains(out, "started") {
			t.Errorf("status after the SIGKILL exited %d and shows no step started", code)
		}
		runs := 1
		for ; runs < 4; runs++ {
			code, out = k.run(5*time.Minute, "apply", "-plan", plan, "-pass-holds")
			t.Logf("apply run %d (exit %d):\n%s", runs+1, code, out)
			if code == 0 {
				break
			}
		}
		if code != 0 {
			t.Fatalf("apply did not finish in %d runs", runs)
		}
		t.Logf("upgrade to 4.1.2 with kupgrade SIGKILLed during the restart of node %d: %d runs, %v", killedAt, runs+1, time.Since(t0).Round(time.Second))
		checkOnceEach(t, srv, c, 4, "4.1.2")
		checkStatusDone(t, k, plan, len(p.Steps))
	})
	upgradeEnd := time.Now()

	if err := tr.WaitAcknowledged(t.Context(), tr.Progress().Acknowledged+1000); err != nil {
		t.Fatal(err)
	}
	rep, err := tr.Stop(context.Background())
	if err != nil {
		t.Fatalf("traffic: %v", err)
	}
	t.Logf("traffic: %v", rep)
	t.Logf("produce latency during the upgrades: %v", tr.Latency(upgradeStart, upgradeEnd))
	if err := rep.Err(); err != nil {
		t.Error(err)
	}
	if rep.Failed > 0 || rep.Consumed == 0 {
		t.Errorf("%d produce requests failed, %d records consumed: %v", rep.Failed, rep.Consumed, rep.Errors)
	}
	ir := isr.Stop()
	t.Logf("ISR watcher: %v", ir)
	if below := ir.Below(); len(below) > 0 {
		t.Errorf("partitions below min ISR: %v", below)
	}
}

// makePlan runs kupgrade plan -to release -o path and reads the plan back.
func makePlan(t *testing.T, k *cli, release, path string) upgrade.Plan {
	t.Helper()
	code, out := k.run(time.Minute, "plan", "-to", release, "-o", path)
	t.Logf("plan (exit %d):\n%s", code, out)
	if code != 0 {
		t.Fatalf("plan exited %d", code)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var p upgrade.Plan
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	if n := len(p.Restarts()); n != 3 {
		t.Fatalf("plan to %s has %d restarts, want one per node", release, n)
	}
	if !strings.Contains(out, p.ID) {
		t.Errorf("plan's table does not name its id %s", p.ID)
	}
	return p
}

// checkOnceEach requires each node restarted exactly once since the last
// reset, never while it was restarting already, to have started starts
// times in all, and to run release.
func checkOnceEach(t *testing.T, srv *controlServer, c *kafkatest.Cluster, starts int, release string) {
	t.Helper()
	srv.restarts.Wait()
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for _, o := range srv.overlaps {
		t.Error(o)
	}
	want, got := map[int32]int{}, map[int32]int{}
	for _, n := range c.All() {
		want[n.ID()] = 1
		got[n.ID()] = srv.asked[n.ID()]
		if n.Starts() != starts || n.Release() != release {
			t.Errorf("node %d: started %d times, runs %s; want %d and %s", n.ID(), n.Starts(), n.Release(), starts, release)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("restarts asked per node (-want +got):\n%s", diff)
	}
}

// checkStatusDone requires kupgrade status to say every step finished.
func checkStatusDone(t *testing.T, k *cli, plan string, steps int) {
	t.Helper()
	code, out := k.run(time.Minute, "status", "-plan", plan, "-json")
	var st struct {
		Done  bool
		Steps []stepStatus
	}
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		t.Fatalf("status -json exited %d (%v):\n%s", code, err, out)
	}
	if !st.Done || len(st.Steps) != steps {
		t.Errorf("status: done %v, %d steps; want done, %d steps\n%s", st.Done, len(st.Steps), steps, out)
	}
}

// inspected is what the test reads of kupgrade inspect -json.
type inspected struct {
	State struct {
		Nodes []struct {
			ID      int32  `json:"id"`
			Release string `json:"release"`
		} `json:"nodes"`
	} `json:"state"`
}

// releases are the nodes' releases an inspection found.
func releases(in inspected) []string {
	var rs []string
	for _, n := range in.State.Nodes {
		rs = append(rs, n.Release)
	}
	return rs
}
