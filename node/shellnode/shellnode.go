// Package shellnode provides [Shell], a [node.Orchestrator] that runs your own shell
// commands per node, rendered from text/template templates: the restart
// command an operator would type (`ssh {{.Host}} sudo systemctl restart
// kafka`), an optional liveness check, and an optional command that lists the
// nodes. It is what the kupgrade command uses, exported for Go programs with
// the same need.
//
// Each command runs as `sh -c <rendered template>` with a timeout; a command
// that fails is reported in an error naming the node, the command's exit code
// and the tail of its stderr, with the values of secret config keys (see
// [node.SecretKey]) redacted.
//
// A template sees a [Data] value: the node (.ID, .Host, .Port, .Roles, .Rack,
// .Version), the release it is to run (.Release, empty to keep its own), and
// the config change (.Change, .Config, .Unset). The functions quote (a
// shell-quoted word), json (a JSON encoding) and join are available:
//
//	ssh {{.Host}} sudo kafka-upgrade --release {{quote .Release}} --set {{quote (json .Config)}}
package shellnode

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/kupgrade/kupgrade/node"
)

// Default timeouts and limits; each has a ShellOption that overrides it.
const (
	DefaultRestartTimeout = 10 * time.Minute
	DefaultAliveTimeout   = 30 * time.Second
	DefaultNodesTimeout   = 30 * time.Second
	DefaultStderrLimit    = 2048
)

// Commands are the templates a Shell renders and runs. Restart is
// required; so is one of Nodes and a static node list ([StaticNodes]).
type Commands struct {
	// Restart stops the node gracefully, applies the change (new release,
	// config keys set and unset) and starts it again; exit 0 means it was
	// started. Example: `ssh {{.Host}} sudo /opt/kafka-switch {{quote .Release}} && ssh {{.Host}} sudo systemctl restart kafka`.
	Restart string `json:"restart"`
	// Alive, if set, exits 0 when the node's process runs and 1 when it
	// does not; any other exit code means it could not tell. With it, the
	// Shell [NewShell] returns implements [node.Liveness].
	Alive string `json:"alive,omitempty"`
	// Nodes, if set, is a command (not a per-node template: it sees no
	// node) printing the nodes as a JSON array of [node.Node] on stdout
	// (id, roles, host, port, rack, version). It overrides a static list.
	Nodes string `json:"nodes,omitempty"`
}

// Data is what a per-node template sees.
type Data struct {
	// ID, Host, Port, Roles, Rack and Version are the node's, as Nodes
	// lists it (Version is the release it runs now, if known).
	ID      int32
	Host    string
	Port    int
	Roles   []node.Role
	Rack    string
	Version string
	// Release is the release the node is to run after the restart, empty
	// to keep its own (Change.Version).
	Release string
	// Change is the whole change; Config (Change.Set, never nil) and Unset
	// (Change.Unset) are its config keys.
	Change node.Change
	Config map[string]string
	Unset  []string
}

// A ShellOption configures a Shell.
type ShellOption interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	nodes          []node.Node
	restartTimeout time.Duration
	aliveTimeout   time.Duration
	nodesTimeout   time.Duration
	stderrLimit    int
	env            []string
	log            *slog.Logger
}

func defaultConfig() config {
	return config{
		restartTimeout: DefaultRestartTimeout,
		aliveTimeout:   DefaultAliveTimeout,
		nodesTimeout:   DefaultNodesTimeout,
		stderrLimit:    DefaultStderrLimit,
		log:            slog.New(slog.DiscardHandler),
	}
}

func (c *config) validate(cmds Commands) error {
	switch {
	case strings.TrimSpace(cmds.Restart) == "":
		return errors.New("shellnode: Commands.Restart is empty")
	case cmds.Nodes == "" && len(c.nodes) == 0:
		return errors.New("shellnode: no nodes: set Commands.Nodes or StaticNodes")
	case c.restartTimeout <= 0:
		return fmt.Errorf("shellnode: RestartCommandTimeout %v is not positive", c.restartTimeout)
	case c.aliveTimeout <= 0:
		return fmt.Errorf("shellnode: AliveCommandTimeout %v is not positive", c.aliveTimeout)
	case c.nodesTimeout <= 0:
		return fmt.Errorf("shellnode: NodesCommandTimeout %v is not positive", c.nodesTimeout)
	case c.stderrLimit <= 0:
		return fmt.Errorf("shellnode: StderrLimit %d is not positive", c.stderrLimit)
	}
	seen := map[int32]bool{}
	for _, n := range c.nodes {
		if seen[n.ID] {
			return fmt.Errorf("shellnode: StaticNodes lists node %d twice", n.ID)
		}
		seen[n.ID] = true
	}
	return nil
}

// StaticNodes is the node list Nodes returns when Commands.Nodes is empty.
func StaticNodes(nodes ...node.Node) ShellOption {
	return optionFunc(func(c *config) { c.nodes = slices.Clone(nodes) })
}

// RestartCommandTimeout bounds one run of the restart command, overriding the
// default of [DefaultRestartTimeout]. On timeout the command's process group
// is killed.
func RestartCommandTimeout(d time.Duration) ShellOption {
	return optionFunc(func(c *config) { c.restartTimeout = d })
}

// AliveCommandTimeout bounds one run of the alive command, overriding the default
// of [DefaultAliveTimeout].
func AliveCommandTimeout(d time.Duration) ShellOption {
	return optionFunc(func(c *config) { c.aliveTimeout = d })
}

// NodesCommandTimeout bounds one run of the nodes command, overriding the default
// of [DefaultNodesTimeout].
func NodesCommandTimeout(d time.Duration) ShellOption {
	return optionFunc(func(c *config) { c.nodesTimeout = d })
}

// StderrLimit is how many bytes of a failed command's stderr (its tail) an
// error quotes, overriding the default of [DefaultStderrLimit].
func StderrLimit(n int) ShellOption { return optionFunc(func(c *config) { c.stderrLimit = n }) }

// Env adds "KEY=value" entries to the commands' environment, which is
// otherwise the current process's.
func ShellEnv(kv ...string) ShellOption {
	return optionFunc(func(c *config) { c.env = append(c.env, kv...) })
}

// ShellLogger logs each command (rendered with secret values redacted), its
// exit code and duration at debug level, and failures at warn level;
// by default nothing is logged.
func ShellLogger(l *slog.Logger) ShellOption { return optionFunc(func(c *config) { c.log = l }) }

// A Shell runs shell commands rendered from templates to restart
// nodes and list them. Create one with [NewShell]; it is safe for concurrent use.
type Shell struct {
	cfg                  config
	restart, alive, list *template.Template
	cmds                 Commands
}

// LiveShell is a [Shell] with an alive command: it also implements
// [node.Liveness].
type LiveShell struct{ *Shell }

var (
	_ node.Orchestrator = (*Shell)(nil)
	_ node.Liveness     = LiveShell{}
)

// funcs are the functions templates may call.
var funcs = template.FuncMap{
	"quote": Quote,
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"join": func(sep string, v any) string {
		var parts []string
		switch v := v.(type) {
		case []string:
			parts = v
		case []node.Role:
			for _, r := range v {
				parts = append(parts, string(r))
			}
		default:
			return fmt.Sprint(v)
		}
		return strings.Join(parts, sep)
	},
}

// NewShell parses the templates of cmds and returns a Shell: a
// *Shell, or a [LiveShell] when cmds.Alive is set, so that a Runner finds
// [node.Liveness] only when there is a command to answer it. A template that
// does not parse, or refers to a field [Data] lacks, is an error here, before
// any node is touched.
func NewShell(cmds Commands, opts ...ShellOption) (node.Orchestrator, error) {
	o, err := newOrchestrator(cmds, opts...)
	if err != nil {
		return nil, err
	}
	if o.alive != nil {
		return LiveShell{o}, nil
	}
	return o, nil
}

func newOrchestrator(cmds Commands, opts ...ShellOption) (*Shell, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o.apply(&cfg)
	}
	if err := cfg.validate(cmds); err != nil {
		return nil, err
	}
	o := &Shell{cfg: cfg, cmds: cmds}
	var err error
	if o.restart, err = parse("restart", cmds.Restart); err != nil {
		return nil, err
	}
	if cmds.Alive != "" {
		if o.alive, err = parse("alive", cmds.Alive); err != nil {
			return nil, err
		}
	}
	if cmds.Nodes != "" {
		if o.list, err = parse("nodes", cmds.Nodes); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// parse parses a template and renders it once with sample data, so that a
// field Data lacks is reported before the first restart.
func parse(name, text string) (*template.Template, error) {
	t, err := template.New(name).Funcs(funcs).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("shellnode: %s command: %w", name, err)
	}
	sample := Data{ID: 1, Host: "h", Port: 9092, Roles: []node.Role{node.RoleBroker}, Release: "4.1.2",
		Change: node.Change{Version: "4.1.2"}, Config: map[string]string{}}
	if err := t.Execute(&bytes.Buffer{}, sample); err != nil {
		return nil, fmt.Errorf("shellnode: %s command: %w", name, err)
	}
	return t, nil
}

// Nodes runs the nodes command and decodes its JSON output, or returns the
// static list.
func (o *Shell) Nodes(ctx context.Context) ([]node.Node, error) {
	if o.list == nil {
		return slices.Clone(o.cfg.nodes), nil
	}
	var script bytes.Buffer
	if err := o.list.Execute(&script, Data{Config: map[string]string{}}); err != nil {
		return nil, fmt.Errorf("shellnode: nodes command: %w", err)
	}
	out, err := o.run(ctx, "nodes", -1, script.String(), o.cfg.nodesTimeout, nil)
	if err != nil {
		return nil, err
	}
	var ns []node.Node
	if err := json.Unmarshal(out, &ns); err != nil {
		return nil, fmt.Errorf("shellnode: nodes command printed no JSON array of nodes: %w (output %q)", err, clip(out, 200))
	}
	return ns, nil
}

// Restart renders the restart command for node id and ch, and runs it.
func (o *Shell) Restart(ctx context.Context, id int32, ch node.Change) error {
	if err := ch.Validate(); err != nil {
		return err
	}
	d, err := o.data(ctx, id, ch)
	if err != nil {
		return err
	}
	script, shown, err := render(o.restart, d)
	if err != nil {
		return fmt.Errorf("shellnode: restart node %d: %w", id, err)
	}
	o.cfg.log.Debug("restart command", "node", id, "command", shown)
	_, err = o.run(ctx, "restart", id, script, o.cfg.restartTimeout, ch.Set)
	return err
}

// Alive runs the alive command for node id: exit 0 is alive, exit 1 is not,
// anything else is an error (the Runner then keeps waiting).
func (l LiveShell) Alive(ctx context.Context, id int32) (bool, error) {
	d, err := l.data(ctx, id, node.Change{})
	if err != nil {
		return false, err
	}
	script, _, err := render(l.alive, d)
	if err != nil {
		return false, fmt.Errorf("shellnode: alive node %d: %w", id, err)
	}
	_, err = l.run(ctx, "alive", id, script, l.cfg.aliveTimeout, nil)
	if err == nil {
		return true, nil
	}
	if ce, ok := errors.AsType[*CommandError](err); ok && ce.ExitCode == 1 {
		return false, nil
	}
	return false, err
}

// data finds node id and builds its template data.
func (o *Shell) data(ctx context.Context, id int32, ch node.Change) (Data, error) {
	ns, err := o.Nodes(ctx)
	if err != nil {
		return Data{}, err
	}
	i := slices.IndexFunc(ns, func(n node.Node) bool { return n.ID == id })
	if i < 0 {
		return Data{}, fmt.Errorf("shellnode: no node %d among %d listed", id, len(ns))
	}
	n := ns[i]
	cfg := ch.Set
	if cfg == nil {
		cfg = map[string]string{}
	}
	return Data{ID: n.ID, Host: n.Host, Port: n.Port, Roles: n.Roles, Rack: n.Rack, Version: n.Version,
		Release: ch.Version, Change: ch, Config: cfg, Unset: ch.Unset}, nil
}

// render renders t with d, and again with d's secret values redacted (for
// logs).
func render(t *template.Template, d Data) (script, shown string, err error) {
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return "", "", err
	}
	r := d
	r.Change = d.Change.Redacted()
	r.Config = r.Change.Set
	if r.Config == nil {
		r.Config = map[string]string{}
	}
	var s bytes.Buffer
	if err := t.Execute(&s, r); err != nil {
		return "", "", err
	}
	return b.String(), s.String(), nil
}

// A CommandError reports a command that failed: it exited non-zero, timed
// out, or could not be started.
type CommandError struct {
	// Command is "restart", "alive" or "nodes".
	Command string
	// Node is the node the command ran for, -1 for the nodes command.
	Node int32
	// ExitCode is the command's exit code, -1 if it did not exit by itself
	// (killed on timeout or by a signal, or never started).
	ExitCode int
	// Stderr is the tail of its stderr (at most StderrLimit bytes), with
	// secret values redacted.
	Stderr string
	// Err is the cause: an *exec.ExitError, context.DeadlineExceeded on
	// timeout, or the error starting the shell.
	Err error
}

func (e *CommandError) Error() string {
	var b strings.Builder
	b.WriteString("shellnode: " + e.Command + " command")
	if e.Node >= 0 {
		b.WriteString(" for node " + strconv.Itoa(int(e.Node)))
	}
	if e.ExitCode >= 0 {
		b.WriteString(" exited with code " + strconv.Itoa(e.ExitCode))
	} else {
		b.WriteString(": " + e.Err.Error())
	}
	if e.Stderr != "" {
		b.WriteString(": " + e.Stderr)
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *CommandError) Unwrap() error { return e.Err }

// run runs script with sh -c under a timeout and returns its stdout.
// secrets are config values to redact from stderr.
func (o *Shell) run(ctx context.Context, what string, id int32, script string, timeout time.Duration, set map[string]string) ([]byte, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("%s command timed out after %v", what, timeout))
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", script)
	setProcessGroup(cmd)
	cmd.WaitDelay = 5 * time.Second // pipes held by orphaned grandchildren
	if len(o.cfg.env) > 0 {
		cmd.Env = append(cmd.Environ(), o.cfg.env...)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	o.cfg.log.Debug("command ran", "command", what, "node", id, "took", time.Since(start).Round(time.Millisecond), "err", err)
	if err == nil {
		return stdout.Bytes(), nil
	}
	ce := &CommandError{Command: what, Node: id, ExitCode: -1, Stderr: redact(clip(stderr.Bytes(), o.cfg.stderrLimit), set), Err: err}
	if ctx.Err() != nil {
		ce.Err = context.Cause(ctx)
		if ctx.Err() == context.DeadlineExceeded && !errors.Is(ce.Err, context.DeadlineExceeded) {
			ce.Err = fmt.Errorf("%w (%w)", ce.Err, context.DeadlineExceeded)
		}
	} else if ee, ok := errors.AsType[*exec.ExitError](err); ok && ee.Exited() {
		ce.ExitCode = ee.ExitCode()
	}
	if what != "alive" || ce.ExitCode != 1 {
		o.cfg.log.Warn("command failed", "command", what, "node", id, "err", ce)
	}
	return nil, ce
}

// clip returns the last n bytes of b, trimmed, marked when clipped.
func clip(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}

// redact replaces the values of secret keys in set found in s.
func redact(s string, set map[string]string) string {
	for k, v := range set {
		if node.SecretKey(k) && v != "" {
			s = strings.ReplaceAll(s, v, node.Redacted)
		}
	}
	return s
}

// Quote returns s as one shell word (single-quoted when it needs to be), for
// templates: {{quote .Release}}.
func Quote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@,+%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
