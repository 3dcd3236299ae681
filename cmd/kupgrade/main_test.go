package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kupgrade/kupgrade/node"
	"github.com/kupgrade/kupgrade/upgrade"
)

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigRefusesBadInput proves that each mistake in a config file is
// refused with an error that says what is wrong, and where.
func TestConfigRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, text, want string
	}{
		{"not json", "{\n\"seeds\": [\"a:1\"],\n oops\n}", "line 3"},
		{"unknown key", `{"seeds":["a:1"],"seed":["b:2"]}`, `unknown field "seed"`},
		{"no seeds", `{}`, `"seeds" is empty`},
		{"no port", `{"seeds":["kafka-1"]}`, `"kafka-1" has no port`},
		{"password in file", `{"seeds":["a:1"],"sasl":{"mechanism":"PLAIN","username":"u","password":"hunter2"}}`, `"password" is not accepted`},
		{"two passwords", `{"seeds":["a:1"],"sasl":{"mechanism":"PLAIN","username":"u","password_file":"f","password_env":"E"}}`, "exactly one"},
		{"no password", `{"seeds":["a:1"],"sasl":{"mechanism":"PLAIN","username":"u"}}`, "exactly one"},
		{"mechanism", `{"seeds":["a:1"],"sasl":{"mechanism":"GSSAPI","username":"u","password_env":"E"}}`, `"GSSAPI" is not`},
		{"cert without key", `{"seeds":["a:1"],"tls":{"cert":"c.pem"}}`, `"cert" and "key" go together`},
		{"bad duration", `{"seeds":["a:1"],"timeouts":{"restart":"10 minutes"}}`, "10 minutes"},
		{"number duration", `{"seeds":["a:1"],"timeouts":{"restart":600}}`, `a duration is a string such as "10m"`},
	} {
		_, err := loadConfig(writeFile(t, dir, "c.json", tt.text))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: loadConfig = %v, want an error containing %q", tt.name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error %q shows the password", tt.name, err)
		}
	}
	if _, err := loadConfig(filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing file: %v", err)
	}
}

// TestConfigConnection proves what a good config gives: paths relative to
// the file, passwords from a file or the environment, and errors that name
// where a password was looked for without showing one.
func TestConfigConnection(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "pw", "s3cret-from-file\n")
	c, err := loadConfig(writeFile(t, dir, "c.json", `{"seeds":["127.0.0.1:9092"],
		"sasl":{"mechanism":"scram-sha-512","username":"admin","password_file":"pw"},
		"nodes":[{"id":1,"host":"k1","port":9092,"roles":["broker"],"version":"3.9.2"}],
		"commands":{"restart":"true"},"timeouts":{"restart":"90s"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := time.Duration(c.Timeouts.Restart); got != 90*time.Second {
		t.Errorf("restart timeout %v", got)
	}
	pw, err := c.SASL.password(c)
	if err != nil || pw != "s3cret-from-file" {
		t.Errorf("password from file: %q, %v", pw, err)
	}
	if _, err := c.clientOpts(); err != nil {
		t.Error(err)
	}
	orch, err := c.orchestrator()
	if err != nil {
		t.Fatal(err)
	}
	ns, err := orch.Nodes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]node.Node{{ID: 1, Host: "k1", Port: 9092, Roles: []node.Role{node.RoleBroker}, Version: "3.9.2"}}, ns); diff != "" {
		t.Errorf("nodes (-want +got):\n%s", diff)
	}

	c.SASL.PasswordFile, c.SASL.PasswordEnv = "", "KUPGRADE_TEST_PASSWORD"
	t.Setenv("KUPGRADE_TEST_PASSWORD", "s3cret-from-env")
	if pw, err := c.SASL.password(c); err != nil || pw != "s3cret-from-env" {
		t.Errorf("password from env: %q, %v", pw, err)
	}
	os.Unsetenv("KUPGRADE_TEST_PASSWORD")
	if _, err := c.clientOpts(); err == nil || !strings.Contains(err.Error(), "KUPGRADE_TEST_PASSWORD") {
		t.Errorf("unset password variable: %v, want an error naming it", err)
	}
	c.SASL.PasswordEnv, c.SASL.PasswordFile = "", "nope"
	if _, err := c.clientOpts(); err == nil || !strings.Contains(err.Error(), "password_file") {
		t.Errorf("missing password file: %v", err)
	}
	c.SASL = nil
	c.TLS = &tlsConfig{CA: writeFile(t, dir, "ca.pem", "not a certificate")}
	if _, err := c.clientOpts(); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("bad CA file: %v", err)
	}
}

// TestUsage proves the help text, usage errors and their exit codes.
func TestUsage(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"help"}, exitOK, "kupgrade apply"},
		{[]string{"--help"}, exitOK, "password_env"},
		{nil, exitUsage, "Usage:"},
		{[]string{"upgrade"}, exitUsage, `unknown command "upgrade"`},
		{[]string{"plan", "-h"}, exitOK, "-to release"},
		{[]string{"apply", "-h"}, exitOK, "-pass-holds"},
		{[]string{"plan", "-config", "/nonexistent.json"}, exitUsage, "-to is required"},
		{[]string{"plan", "-to", "4.1.2", "-config", "/nonexistent.json"}, exitUsage, "nonexistent.json"},
		{[]string{"plan", "-to", "banana"}, exitUsage, "-to"},
		{[]string{"apply"}, exitUsage, "-plan is required"},
		{[]string{"apply", "-plan", "p.json", "hunter2"}, exitUsage, `unexpected argument "hunter2"`},
		{[]string{"status", "-plan", "/nonexistent-plan.json"}, exitUsage, "nonexistent-plan.json"},
		{[]string{"inspect", "-password", "x"}, exitUsage, "flag provided but not defined: -password"},
	} {
		var out, errOut bytes.Buffer
		code := run(ctx, tt.args, &out, &errOut)
		got := out.String() + errOut.String()
		if code != tt.code || !strings.Contains(got, tt.want) {
			t.Errorf("kupgrade %q: exit %d, output %q; want exit %d and %q", tt.args, code, got, tt.code, tt.want)
		}
	}
}

// TestStatus proves what status reports from a plan and its journal, and
// that it refuses a journal of another plan.
func TestStatus(t *testing.T) {
	dir := t.TempDir()
	plan := upgrade.Plan{Version: upgrade.PlanVersion, ID: "abc123", Steps: []upgrade.Step{
		{Kind: upgrade.StepPreflight, Node: -1},
		{Kind: upgrade.StepRestart, Node: 1, Change: node.Change{Version: "4.1.2"}},
		{Kind: upgrade.StepRestart, Node: 2, Change: node.Change{Version: "4.1.2"}},
	}}
	b, _ := json.Marshal(plan)
	planPath := writeFile(t, dir, "plan.json", string(b))
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	rec := upgrade.Record{PlanID: "abc123", Updated: t0.Add(time.Minute), Steps: []upgrade.StepRecord{
		{State: upgrade.StepDone, Started: t0, Finished: t0.Add(time.Second)},
		{State: upgrade.StepFailed, Started: t0, Finished: t0.Add(30 * time.Second), Err: "shellnode: restart command for node 1 exited with code 3: no such unit"},
	}}
	var out, errOut bytes.Buffer
	if code := run(t.Context(), []string{"status", "-plan", planPath}, &out, &errOut); code != 0 {
		t.Fatalf("status without a journal: exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "has not run") {
		t.Errorf("status without a journal:\n%s", out.String())
	}
	if err := upgrade.NewFileJournal(planPath+".journal").Save(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := run(t.Context(), []string{"status", "-plan", planPath}, &out, &errOut); code != 0 {
		t.Fatalf("status: exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"failed", "exited with code 3: no such unit", "1 of 3 steps finished; next: step 2 restart node 1", "30s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
	rec.PlanID = "other"
	upgrade.NewFileJournal(planPath+".journal").Save(t.Context(), rec)
	errOut.Reset()
	if code := run(t.Context(), []string{"status", "-plan", planPath}, &out, &errOut); code != exitFail || !strings.Contains(errOut.String(), "belongs to plan other") {
		t.Errorf("status of another plan's journal: exit %d, %q", code, errOut.String())
	}
}

// TestProgress proves both displays: plain lines, one per event, and on a
// terminal finished steps as lines under a redrawn status line.
func TestProgress(t *testing.T) {
	plan := upgrade.Plan{Steps: []upgrade.Step{{Kind: upgrade.StepPreflight, Node: -1}, {Kind: upgrade.StepRestart, Node: 2, Change: node.Change{Version: "4.1.2"}}}}
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	events := []upgrade.Event{
		{Time: at, Kind: upgrade.EventRunStarted, Step: -1, Node: -1, Message: "plan x: 2 steps"},
		{Time: at, Kind: upgrade.EventStepStarted, Step: 1, StepKind: upgrade.StepRestart, Node: 2},
		{Time: at, Kind: upgrade.EventWaiting, Step: 1, StepKind: upgrade.StepRestart, Node: 2, Message: "node 2 catching up"},
		{Time: at, Kind: upgrade.EventStepDone, Step: 1, StepKind: upgrade.StepRestart, Node: 2, Elapsed: 12 * time.Second},
		{Time: at, Kind: upgrade.EventRunDone, Step: -1, Node: -1, Message: "every step finished"},
	}
	var plain bytes.Buffer
	p := newProgress(&plain, plan, false)
	for _, e := range events {
		p.event(e)
	}
	p.close()
	if lines := strings.Split(strings.TrimSpace(plain.String()), "\n"); len(lines) != len(events) || !strings.HasPrefix(lines[2], "10:00:00 waiting step 2 (restart node 2): node 2 catching up") {
		t.Errorf("plain display: %d lines, want one per event (%d):\n%s", len(lines), len(events), plain.String())
	}
	if strings.Contains(plain.String(), "\033") {
		t.Error("plain display has terminal escapes")
	}
	var tty bytes.Buffer
	p = newProgress(&tty, plan, true)
	for _, e := range events {
		p.event(e)
	}
	p.close()
	s := tty.String()
	for _, want := range []string{"\r\033[K[2/2] step 2/2 restart node 2", "waiting: node 2 catching up", "✓ step 2/2 restart node 2 (broker): version=4.1.2 [12s]\n", "run-done: every step finished\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("terminal display lacks %q:\n%q", want, s)
		}
	}
}
