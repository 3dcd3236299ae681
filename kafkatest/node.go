package kafkatest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kupgrade/kupgrade/node"
)

// Status is the state of a node's process.
type Status int

// The states of a node's process.
const (
	// NotStarted: the node has not been started yet.
	NotStarted Status = iota
	// Running: the process runs (it may still be starting up).
	Running
	// Paused: the process is stopped with SIGSTOP; it holds its connections
	// and answers nothing until resumed.
	Paused
	// Stopped: the process finished after a graceful stop.
	Stopped
	// Killed: the process was killed with SIGKILL.
	Killed
	// Exited: the process ended by itself (a failed start or a crash).
	Exited
)

// String returns the status in lower case ("running").
func (s Status) String() string {
	switch s {
	case NotStarted:
		return "not started"
	case Running:
		return "running"
	case Paused:
		return "paused"
	case Stopped:
		return "stopped"
	case Killed:
		return "killed"
	case Exited:
		return "exited"
	}
	return "Status(" + strconv.Itoa(int(s)) + ")"
}

// A Process is one Kafka process of a [Cluster]: a broker, a controller or a
// combined node. Its methods are safe for concurrent use.
type Process struct {
	c              *Cluster
	id             int32
	roles          []node.Role
	brokerPort     int
	controllerPort int
	rack           string
	dir            string

	mu       sync.Mutex
	dist     *Distribution
	override map[string]string // user config, incl. restarts' Set
	removed  map[string]bool   // keys unset by restarts
	proc     *process
	status   Status
	starts   int
}

// process is one run of a node's JVM.
type process struct {
	cmd    *exec.Cmd
	log    *os.File
	exited chan struct{} // closed once the process has ended
	err    error         // Wait's result, valid after exited
	ctl    *containerCtl // with Containers: the container it runs in, and cmd is nil
}

// signal sends sig to the process (or its container).
func (p *process) signal(sig syscall.Signal) error {
	if p.ctl != nil {
		return p.ctl.signal(sig)
	}
	return p.cmd.Process.Signal(sig)
}

// pid returns the process id, as this machine sees it.
func (p *process) pid() int {
	if p.ctl != nil {
		return p.ctl.pid
	}
	return p.cmd.Process.Pid
}

// ID returns the node's broker.id (ZooKeeper) or node.id (KRaft).
func (n *Process) ID() int32 { return n.id }

// Roles returns what the node does.
func (n *Process) Roles() []node.Role { return slices.Clone(n.roles) }

// IsBroker reports whether the node has the broker role.
func (n *Process) IsBroker() bool { return slices.Contains(n.roles, node.RoleBroker) }

// IsController reports whether the node has the KRaft controller role.
func (n *Process) IsController() bool { return slices.Contains(n.roles, node.RoleController) }

// Addr returns the broker listener ("127.0.0.1:port") of a broker-role node,
// else the controller listener.
func (n *Process) Addr() string {
	if n.IsBroker() {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.brokerPort))
	}
	return n.ControllerAddr()
}

// ControllerAddr returns the controller listener of a controller-role node,
// or "" for a broker-only node.
func (n *Process) ControllerAddr() string {
	if !n.IsController() {
		return ""
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.controllerPort))
}

// Rack returns the node's broker.rack, "" if none.
func (n *Process) Rack() string { return n.rack }

// Dir returns the node's directory: server.properties, data/ and node.log.
func (n *Process) Dir() string { return n.dir }

// LogPath returns the file that collects the node's output across restarts.
func (n *Process) LogPath() string { return filepath.Join(n.dir, "node.log") }

// Release returns the Kafka release the node runs (or will run at its next start).
func (n *Process) Release() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dist.Release
}

// Status returns the state of the node's process.
func (n *Process) Status() Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.reapLocked()
	return n.status
}

// Starts returns how often the node's process has been started.
func (n *Process) Starts() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.starts
}

// PID returns the process id of the running (or paused) process, or 0.
func (n *Process) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.reapLocked()
	if n.proc == nil || (n.status != Running && n.status != Paused) {
		return 0
	}
	return n.proc.pid()
}

// Config returns the node's effective static config: what server.properties
// holds at its next start.
func (n *Process) Config() map[string]string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.configLocked()
}

func (n *Process) configLocked() map[string]string {
	base := n.c.baseConfig(n, n.dist.Release)
	cfg := maps.Clone(base)
	maps.Copy(cfg, n.override)
	for k := range n.removed {
		delete(cfg, k)
	}
	n.c.migrationConfig(n, base, cfg)
	return cfg
}

// reapLocked notices a process that ended on its own.
func (n *Process) reapLocked() {
	if n.proc == nil || (n.status != Running && n.status != Paused) {
		return
	}
	select {
	case <-n.proc.exited:
		n.status = Exited
	default:
	}
}

// apply records a change of release and static config for the next start.
func (n *Process) apply(dist *Distribution, ch node.Change) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if dist != nil {
		n.dist = dist
	}
	for k, v := range ch.Set {
		n.override[k] = v
		delete(n.removed, k)
	}
	for _, k := range ch.Unset {
		delete(n.override, k)
		n.removed[k] = true
	}
}

// start launches the node's JVM; it does not wait for readiness.
func (n *Process) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.reapLocked()
	if n.status == Running || n.status == Paused {
		return fmt.Errorf("kafkatest: node %d is already %v", n.id, n.status)
	}
	cfg := n.configLocked()
	props := filepath.Join(n.dir, "server.properties")
	if err := writeProperties(props, cfg); err != nil {
		return err
	}
	heap := n.c.cfg.brokerHeapMB
	if !n.IsBroker() {
		heap = n.c.cfg.controllerHeap
	}
	args := n.c.jvmArgs(n.dist, heap, n.dir)
	share, exited := cdsFlags(n.dist, "node")
	args = append(args, share...)
	args = append(args, fmt.Sprintf("-Dkupgrade.kafkatest=%s/%d", n.c.name, n.id), "-cp", n.dist.Classpath(), "kafka.Kafka", props)
	p, err := n.c.launch("node-"+strconv.Itoa(int(n.id)), n.dist, args, n.LogPath(),
		fmt.Sprintf("kafkatest: start node %d (%s) with Kafka %s", n.id, joinRoles(n.roles), n.dist.Release), exited)
	if err != nil {
		return fmt.Errorf("kafkatest: start node %d: %w", n.id, err)
	}
	n.proc, n.status = p, Running
	n.starts++
	n.c.cfg.logger.Info("node started", "node", n.id, "release", n.dist.Release, "pid", p.pid())
	return nil
}

// launch starts a JVM whose output goes to logPath (appended), after a
// header line; exited (if not nil) runs once the process has ended.
func launch(java string, args []string, logPath, header string, exited func()) (*process, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "==== %s at %s ====\n", header, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(java, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Stdin = nil
	if err := startProcess(cmd); err != nil {
		f.Close()
		if exited != nil {
			exited()
		}
		return nil, err
	}
	p := &process{cmd: cmd, log: f, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		if exited != nil {
			exited()
		}
		close(p.exited)
	}()
	return p, nil
}

// signal sends sig to the running process and returns it, or nil if none runs.
func (n *Process) signal(sig syscall.Signal, next Status) *process {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.reapLocked()
	if n.proc == nil || (n.status != Running && n.status != Paused) {
		return nil
	}
	if n.status == Paused && sig == syscall.SIGTERM {
		n.proc.signal(syscall.SIGCONT) // a stopped JVM cannot shut down
	}
	n.proc.signal(sig)
	n.status = next
	return n.proc
}

// Stop stops the node gracefully: SIGTERM, then it waits for the controlled
// shutdown to finish. If the process has not ended within the cluster's
// [StopTimeout] (or ctx ends first), it is killed and Stop says so.
func (n *Process) Stop(ctx context.Context) error {
	p := n.signal(syscall.SIGTERM, Stopped)
	if p == nil {
		return nil
	}
	ctx, cancel := context.WithTimeoutCause(ctx, n.c.cfg.stopTimeout,
		fmt.Errorf("kafkatest: node %d did not finish its controlled shutdown within %v of SIGTERM", n.id, n.c.cfg.stopTimeout))
	defer cancel()
	select {
	case <-p.exited:
		n.c.cfg.logger.Info("node stopped", "node", n.id)
		return nil
	case <-ctx.Done():
		p.signal(syscall.SIGKILL)
		<-p.exited
		n.mu.Lock()
		n.status = Killed
		n.mu.Unlock()
		return fmt.Errorf("%w; killed it", context.Cause(ctx))
	}
}

// Kill kills the node's process with SIGKILL (a crash: no controlled
// shutdown) and waits for it to end.
func (n *Process) Kill() error {
	p := n.signal(syscall.SIGKILL, Killed)
	if p == nil {
		return fmt.Errorf("kafkatest: kill node %d: it is not running", n.id)
	}
	<-p.exited // SIGKILL cannot be ignored; the kernel reaps promptly
	n.c.cfg.logger.Info("node killed", "node", n.id)
	return nil
}

// Pause stops the node's process with SIGSTOP: it keeps its sockets open but
// answers nothing, like a hung or partitioned node.
func (n *Process) Pause() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.reapLocked()
	if n.status != Running {
		return fmt.Errorf("kafkatest: pause node %d: it is %v", n.id, n.status)
	}
	if err := n.proc.signal(syscall.SIGSTOP); err != nil {
		return fmt.Errorf("kafkatest: pause node %d: %w", n.id, err)
	}
	n.status = Paused
	return nil
}

// Resume continues a paused node with SIGCONT.
func (n *Process) Resume() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.reapLocked()
	if n.status != Paused {
		return fmt.Errorf("kafkatest: resume node %d: it is %v", n.id, n.status)
	}
	if err := n.proc.signal(syscall.SIGCONT); err != nil {
		return fmt.Errorf("kafkatest: resume node %d: %w", n.id, err)
	}
	n.status = Running
	return nil
}

// exitedChan returns a channel closed when the current process ends.
func (n *Process) exitedChan() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return n.proc.exited
}

// LogTail returns the last lines of the node's log.
func (n *Process) LogTail(lines int) string { return tail(n.LogPath(), lines) }

func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	b = bytes.TrimRight(b, "\n")
	i := len(b)
	for k := 0; k < lines && i > 0; k++ {
		i = bytes.LastIndexByte(b[:i], '\n')
		if i < 0 {
			i = 0
			break
		}
	}
	return strings.TrimLeft(string(b[i:]), "\n")
}

// clipLines cuts every line of s to at most n bytes.
func clipLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if len(l) > n {
			lines[i] = l[:n] + "…"
		}
	}
	return strings.Join(lines, "\n")
}

// lastErrorLines picks the lines that explain a failed start.
func lastErrorLines(path string, max int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var keep []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "==== ") {
			keep = keep[:0] // only the latest run
			continue
		}
		if strings.Contains(l, "ERROR") || strings.Contains(l, "Exception") || strings.Contains(l, "FATAL") || strings.HasPrefix(l, "Caused by") {
			keep = append(keep, l)
		}
	}
	if len(keep) > max {
		keep = keep[len(keep)-max:]
	}
	return strings.Join(keep, "\n")
}

func joinRoles(roles []node.Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, ",")
}

func writeProperties(path string, cfg map[string]string) error {
	var b strings.Builder
	b.WriteString("# written by kafkatest\n")
	for _, k := range slices.Sorted(maps.Keys(cfg)) {
		fmt.Fprintf(&b, "%s=%s\n", k, escapeProperty(cfg[k]))
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("kafkatest: write %s: %w", path, err)
	}
	return nil
}

func escapeProperty(v string) string {
	r := strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\r", `\r`)
	return r.Replace(v)
}

// PeakRSS returns the peak resident memory of the running process (VmHWM
// from /proc on Linux), or 0 if it is not running or the figure is not
// available.
func (n *Process) PeakRSS() int64 {
	pid := n.PID()
	if pid == 0 {
		return 0
	}
	return peakRSS(pid)
}

func peakRSS(pid int) int64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}
