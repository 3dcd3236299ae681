package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kupgrade/kupgrade/kafkatest"
	"github.com/kupgrade/kupgrade/upgrade"
)

// TestCLISecured runs kupgrade inspect against a SASL_SSL KRaft node (one
// combined node, StandardAuthorizer) as a SCRAM-SHA-512 user that holds only
// upgrade.ACLs(OpInspect), with the CA and the password read as a user
// would give them (a PEM file, an environment variable); then with a wrong
// password, which must fail as an authentication failure without printing
// the password.
func TestCLISecured(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Kafka cluster")
	}
	kafkatest.RequireTools(t)
	dir := t.TempDir()
	bin, nodectl := buildBinaries(t, dir)
	const password = "cli-Pw-5e0a7d13"
	c := kafkatest.Start(t, kafkatest.KRaft("3.9.2"), kafkatest.Combined(1),
		kafkatest.Secure(kafkatest.User{Name: "kupgrade", Password: password, Mechanism: kafkatest.SCRAMSHA512}))
	var perms []kafkatest.Permission
	for _, a := range upgrade.ACLs(upgrade.OpInspect) {
		perms = append(perms, kafkatest.Permission{Principal: "User:kupgrade", Resource: a.Resource, Name: a.Name, Operation: a.Operation})
	}
	if err := c.Security().Grant(t.Context(), c, perms...); err != nil {
		t.Fatal(err)
	}
	srv := newControlServer(t, c)
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, c.Security().CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{
		"seeds":       c.Addrs(),
		"controllers": c.ControllerAddrs(),
		"tls":         map[string]string{"ca": ca},
		"sasl":        map[string]string{"mechanism": "SCRAM-SHA-512", "username": "kupgrade", "password_env": "KUPGRADE_TEST_PASSWORD"},
		"commands": map[string]string{
			"restart": nodectl + " -url " + srv.url + " restart {{.ID}} {{quote (json .Change)}}",
			"nodes":   nodectl + " -url " + srv.url + " nodes",
		},
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	cfgPath := filepath.Join(dir, "kupgrade.json")
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	k := &cli{t: t, bin: bin, cfg: cfgPath}

	t.Setenv("KUPGRADE_TEST_PASSWORD", password)
	code, out := k.run(time.Minute, "inspect", "-json")
	if code != 0 {
		t.Fatalf("inspect as kupgrade exited %d:\n%s", code, out)
	}
	var in inspected
	if err := json.Unmarshal([]byte(out), &in); err != nil {
		t.Fatalf("inspect -json: %v\n%s", err, out)
	}
	if got := releases(in); !slices.Equal(got, []string{"3.9.2"}) {
		t.Errorf("inspect: releases %v, want [3.9.2]", got)
	}
	if strings.Contains(out, password) {
		t.Error("inspect printed the password")
	}

	const wrong = "wrong-Pw-9c21fe04"
	t.Setenv("KUPGRADE_TEST_PASSWORD", wrong)
	start := time.Now()
	code, out = k.run(time.Minute, "inspect")
	t.Logf("inspect with a wrong password (%v, exit %d):\n%s", time.Since(start).Round(time.Millisecond), code, out)
	if code == 0 || !strings.Contains(out, "refused the client's credentials") {
		t.Errorf("inspect with a wrong password exited %d; want a failure saying the credentials were refused", code)
	}
	if strings.Contains(out, "unreachable") {
		t.Error("a wrong password is reported as an unreachable cluster")
	}
	if strings.Contains(out, wrong) || strings.Contains(out, password) {
		t.Error("inspect printed a password")
	}
}
