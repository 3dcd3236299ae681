package shellnode_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kupgrade/kupgrade/node"
	"github.com/kupgrade/kupgrade/node/shellnode"
)

var nodes = []node.Node{
	{ID: 1, Roles: []node.Role{node.RoleController, node.RoleBroker}, Host: "kafka-1", Port: 9092, Version: "3.9.2"},
	{ID: 2, Roles: []node.Role{node.RoleBroker}, Host: "kafka-2", Port: 9092, Rack: "b", Version: "3.9.2"},
}

func mustNew(t *testing.T, cmds shellnode.Commands, opts ...shellnode.ShellOption) node.Orchestrator {
	t.Helper()
	o, err := shellnode.NewShell(cmds, append([]shellnode.ShellOption{shellnode.StaticNodes(nodes...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestRestartRendersTemplate proves what a restart template sees: the node,
// the target release and the config change, quoted for the shell.
func TestRestartRendersTemplate(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	o := mustNew(t, shellnode.Commands{Restart: `printf '%s\n' {{.ID}} {{.Host}} {{.Port}} {{join "," .Roles}} {{quote .Rack}} {{.Version}} {{.Release}} ` +
		`{{quote (json .Config)}} {{quote (join "," .Unset)}} {{quote (index .Config "inter.broker.protocol.version")}} > ` + out})
	ch := node.Change{Version: "4.1.2", Set: map[string]string{"inter.broker.protocol.version": "3.9", "x": "it's"}, Unset: []string{"log.message.format.version"}}
	if err := o.Restart(t.Context(), 2, ch); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{"2", "kafka-2", "9092", "broker", "b", "3.9.2", "4.1.2",
		`{"inter.broker.protocol.version":"3.9","x":"it's"}`, "log.message.format.version", "3.9"}, "\n") + "\n"
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Errorf("rendered restart (-want +got):\n%s", diff)
	}
	if err := o.Restart(t.Context(), 7, node.Change{}); err == nil || !strings.Contains(err.Error(), "no node 7") {
		t.Errorf("restart of an unknown node: %v, want an error naming it", err)
	}
}

// TestRestartFailureNamesNodeExitCodeAndStderr proves a failed command's
// error: node, exit code, the tail of stderr, secrets redacted.
func TestRestartFailureNamesNodeExitCodeAndStderr(t *testing.T) {
	const secret = "hunter2-very-secret"
	o := mustNew(t, shellnode.Commands{Restart: `echo "first line" >&2; head -c 5000 /dev/zero | tr '\0' x >&2; echo " jaas={{index .Config "sasl.jaas.config"}} failed" >&2; exit 3`},
		shellnode.StderrLimit(100))
	err := o.Restart(t.Context(), 1, node.Change{Set: map[string]string{"sasl.jaas.config": secret}})
	ce, ok := errors.AsType[*shellnode.CommandError](err)
	if !ok {
		t.Fatalf("error %v (%T), want a *CommandError", err, err)
	}
	if ce.Node != 1 || ce.ExitCode != 3 || ce.Command != "restart" {
		t.Errorf("CommandError node %d exit %d command %q, want node 1 exit 3 restart", ce.Node, ce.ExitCode, ce.Command)
	}
	msg := err.Error()
	for _, want := range []string{"restart command for node 1 exited with code 3", "jaas=REDACTED failed"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, secret) || strings.Contains(msg, "first line") {
		t.Errorf("error %q shows the secret or stderr beyond the limit", msg)
	}
	if len(ce.Stderr) > 100+len("…")+len("REDACTED") {
		t.Errorf("stderr quoted is %d bytes, limit 100", len(ce.Stderr))
	}
}

// TestRestartTimeoutKillsTheCommand proves a timeout is honoured: the
// command and its children are killed and the error says it timed out.
func TestRestartTimeoutKillsTheCommand(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "late")
	o := mustNew(t, shellnode.Commands{Restart: `sleep 30 && touch ` + marker}, shellnode.RestartCommandTimeout(300*time.Millisecond))
	start := time.Now()
	err := o.Restart(t.Context(), 1, node.Change{})
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timed out after 300ms") {
		t.Errorf("error %v, want a timeout", err)
	}
	if took > 5*time.Second {
		t.Errorf("restart returned after %v, want soon after its 300ms timeout", took)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command went on after its timeout")
	}

	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(200*time.Millisecond, cancel)
	start = time.Now()
	err = o.Restart(ctx, 1, node.Change{})
	if !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
		t.Errorf("cancelled restart: %v after %v, want context.Canceled soon", err, time.Since(start))
	}
}

// TestAlive proves the alive command's contract: 0 alive, 1 dead, other
// codes an error; and that Liveness is there only with an alive command.
func TestAlive(t *testing.T) {
	if _, ok := mustNew(t, shellnode.Commands{Restart: "true"}).(node.Liveness); ok {
		t.Error("an Shell without an alive command implements node.Liveness")
	}
	o := mustNew(t, shellnode.Commands{Restart: "true", Alive: `exit $(( {{.ID}} - 1 ))`})
	l, ok := o.(node.Liveness)
	if !ok {
		t.Fatal("an Shell with an alive command does not implement node.Liveness")
	}
	for _, tt := range []struct {
		id      int32
		alive   bool
		wantErr bool
	}{{1, true, false}, {2, false, false}} {
		alive, err := l.Alive(t.Context(), tt.id)
		if alive != tt.alive || (err != nil) != tt.wantErr {
			t.Errorf("Alive(%d) = %v, %v; want %v, error %v", tt.id, alive, err, tt.alive, tt.wantErr)
		}
	}
	o = mustNew(t, shellnode.Commands{Restart: "true", Alive: `exit 2`})
	if alive, err := o.(node.Liveness).Alive(t.Context(), 1); alive || err == nil {
		t.Errorf("Alive with exit 2 = %v, %v; want an error", alive, err)
	}
}

// TestNodesCommand proves nodes from a command's JSON, and a clear error on
// output that is not.
func TestNodesCommand(t *testing.T) {
	o, err := shellnode.NewShell(shellnode.Commands{Restart: "true",
		Nodes: `echo '[{"id":3,"roles":["broker"],"host":"k3","port":9093,"version":"4.0.2"}]'`})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := o.Nodes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []node.Node{{ID: 3, Roles: []node.Role{node.RoleBroker}, Host: "k3", Port: 9093, Version: "4.0.2"}}
	if diff := cmp.Diff(want, ns); diff != "" {
		t.Errorf("nodes (-want +got):\n%s", diff)
	}
	o, _ = shellnode.NewShell(shellnode.Commands{Restart: "true", Nodes: `echo not json`})
	if _, err := o.Nodes(t.Context()); err == nil || !strings.Contains(err.Error(), "no JSON array") {
		t.Errorf("nodes from non-JSON: %v, want an error saying so", err)
	}
}

// TestNewRefusesBadInput proves that bad templates and options fail in New.
func TestNewRefusesBadInput(t *testing.T) {
	for _, tt := range []struct {
		name string
		cmds shellnode.Commands
		opts []shellnode.ShellOption
		want string
	}{
		{"no restart", shellnode.Commands{Nodes: "x"}, nil, "Restart is empty"},
		{"no nodes", shellnode.Commands{Restart: "true"}, nil, "no nodes"},
		{"unparsable", shellnode.Commands{Restart: "{{.ID", Nodes: "x"}, nil, "restart command"},
		{"unknown field", shellnode.Commands{Restart: "echo {{.Hostname}}", Nodes: "x"}, nil, "Hostname"},
		{"bad alive", shellnode.Commands{Restart: "true", Alive: "{{nope}}", Nodes: "x"}, nil, "alive command"},
		{"timeout", shellnode.Commands{Restart: "true", Nodes: "x"}, []shellnode.ShellOption{shellnode.RestartCommandTimeout(0)}, "RestartCommandTimeout 0s"},
		{"twice", shellnode.Commands{Restart: "true"}, []shellnode.ShellOption{shellnode.StaticNodes(nodes[0], nodes[0])}, "node 1 twice"},
	} {
		_, err := shellnode.NewShell(tt.cmds, tt.opts...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: New = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{"4.1.2": "4.1.2", "": "''", "a b": "'a b'", "it's": `'it'\''s'`, "$(x)": "'$(x)'"} {
		if got := shellnode.Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestLogsAreRedacted proves that the logged command shows secret config
// values as REDACTED, while the command itself receives them.
func TestLogsAreRedacted(t *testing.T) {
	const secret = "hunter2-in-jaas"
	out := filepath.Join(t.TempDir(), "out")
	var logs strings.Builder
	o := mustNew(t, shellnode.Commands{Restart: `echo {{quote (json .Config)}} > ` + out},
		shellnode.ShellLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err := o.Restart(t.Context(), 1, node.Change{Set: map[string]string{"sasl.jaas.config": secret, "broker.rack": "a"}}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if !strings.Contains(string(b), secret) {
		t.Errorf("the command received %q, not the secret value", b)
	}
	if strings.Contains(logs.String(), secret) || !strings.Contains(logs.String(), `\"sasl.jaas.config\":\"REDACTED\"`) {
		t.Errorf("logs show the secret, or not its key redacted:\n%s", logs.String())
	}
}
