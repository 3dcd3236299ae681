package kafkatest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// The container backend. With [Containers], every Kafka node (and the
// ZooKeeper server) runs in a container of its release's image instead of
// a JVM on this machine; the rest of kafkatest does not change: the same
// generated server.properties and JVM flags, the same readiness checks,
// the same Cluster API. The seam is small: a long-running JVM is started by
// [Cluster.launch], a short tool run by [Cluster.runJava], and a started
// process is signalled through [process.signal]; each goes to a container
// here when the backend is on:
//
//   - start: a container of the release's image (on the cluster's bridge
//     network, or with host networking; see container_bridge.go), the
//     java command line kafkatest would run, the files it names (config,
//     logging) copied in at the same paths, and the node's data volume at
//     /var/lib/kafka/data (log.dirs, or ZooKeeper's dataDir);
//   - SIGTERM and SIGKILL: sent to the container's java (PID 1), which
//     shuts down as a JVM would; SIGSTOP and SIGCONT: docker pause and
//     unpause (the cgroup freezer), a hung node;
//   - end: the container is removed once its java has exited; the data
//     volume stays, so a restart with another release is a new container of
//     the new release's image on the same volume.
//
// Cleanup without Ryuk: every container and volume carries labels naming
// the cluster and the owning process (pid and start time). Close removes
// the cluster's containers and volumes; a process that dies without
// closing (SIGKILL, a test binary's timeout) leaves them behind, and the
// next container cluster on the machine removes them once it holds the
// machine-wide cluster lock (see [Containers]).

// Labels on every container and volume the backend makes.
const (
	labelOwner   = "org.kupgrade.kafkatest.owner"   // "pid/starttime" of the Go process
	labelCluster = "org.kupgrade.kafkatest.cluster" // the cluster's name
)

// dataPath is where a node's data volume is mounted in its container: the
// layout of the official apache/kafka images.
const dataPath = "/var/lib/kafka/data"

// A ContainerOption configures the container backend (see [Containers]).
type ContainerOption interface{ applyContainer(*containers) }

type containerOptionFunc func(*containers)

func (f containerOptionFunc) applyContainer(c *containers) { f(c) }

// ContainerImage sets the image each release runs from, overriding the
// default: the official "apache/kafka:<release>" images. The image needs
// Kafka's jars in /opt/kafka/libs, java on its PATH and a /var/lib/kafka/data
// directory its user can write, as the official images have.
func ContainerImage(image func(release string) string) ContainerOption {
	return containerOptionFunc(func(c *containers) { c.image = image })
}

// Containers runs the cluster's nodes, and its ZooKeeper server, in
// containers through testcontainers-go instead of as JVMs on this machine:
// no JDK or Maven is needed, only a Docker engine (found as testcontainers-go
// finds it: DOCKER_HOST, the Docker context, the default socket). Each node
// gets a data volume; [Cluster.Restart] with a new release replaces the
// node's container by one of the new release's image on the same volume;
// Kill, Pause, Stop and readiness work as with JVMs. [Secure] works with
// Containers unchanged: its stores and JAAS are inline in the generated
// config, and the node certificates name the nodes' aliases too.
//
// Networking: by default each cluster gets a bridge network of its own and
// every node (and ZooKeeper) joins it under an alias ("node-<id>",
// "zookeeper"); the ports clients use are published on 127.0.0.1 only, at
// the same numbers, so [Process.Addr], [Cluster.Addrs] and
// [Cluster.ControllerAddrs] are 127.0.0.1:<port> as with JVMs, and what
// Kafka's metadata advertises to those clients is 127.0.0.1 too. The nodes
// talk among themselves on a second listener by alias (see bridgeConfig).
// In ZooKeeper mode the brokers' zookeeper.connect names the alias, which
// this machine cannot resolve: give kupgrade [Cluster.ZooKeeperConnect]
// (upgrade.ZooKeeperConnect) for its ZooKeeper probe and migration reads.
// [ContainerHostNetwork] runs the containers with host networking instead
// (Linux engines only), for engines that cannot make networks or publish
// ports.
//
// kafkatest removes its own containers and volumes and does not need
// testcontainers-go's Ryuk reaper: Containers sets
// TESTCONTAINERS_RYUK_DISABLED=true unless it is set already. Close removes
// the cluster's containers and volumes; what a process that died without
// closing left behind is removed by the next container cluster that starts
// on the machine (reported on [ProgressOutput]).
func Containers(opts ...ContainerOption) Option {
	return optionFunc(func(c *config) {
		disableRyuk()
		k := &containers{image: func(r string) string { return "apache/kafka:" + r }, images: map[string]string{}}
		for _, o := range opts {
			o.applyContainer(k)
		}
		c.containers = k
	})
}

// containers is the backend's configuration and, once connected, its
// engine connection. One per cluster: [Containers] makes a new one each
// time it is applied.
type containers struct {
	image       func(release string) string
	hostNetwork bool // ContainerHostNetwork; else a bridge network per cluster

	mu       sync.Mutex
	provider *testcontainers.DockerProvider
	cli      *testcontainers.DockerClient
	images   map[string]string // release → image, once checked
	watchdog *os.File          // its stdin's write end; see startWatchdog
	network  string            // the cluster's bridge network, once made
}

// ownerLabel identifies this process: pid and kernel start time, so that a
// reused pid is not taken for the owner.
var ownerLabel = sync.OnceValue(func() string {
	return strconv.Itoa(os.Getpid()) + "/" + procStart(os.Getpid())
})

// procStart returns a process's start time in clock ticks since boot
// (field 22 of /proc/pid/stat), "" if unknown.
func procStart(pid int) string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return ""
	}
	i := bytes.LastIndexByte(b, ')') // the command name may hold spaces
	if i < 0 {
		return ""
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// ownerAlive reports whether the process a label names still runs.
func ownerAlive(owner string) bool {
	pid, start, ok := strings.Cut(owner, "/")
	if !ok {
		return false
	}
	p, err := strconv.Atoi(pid)
	if err != nil {
		return false
	}
	return procStart(p) == start && start != ""
}

// tcLogger sends testcontainers-go's messages to the cluster's logger.
type tcLogger struct{ c *Cluster }

func (l tcLogger) Printf(format string, v ...any) {
	l.c.cfg.logger.Debug(strings.TrimSpace(fmt.Sprintf(format, v...)), "from", "testcontainers")
}

// disableRyuk turns testcontainers-go's reaper off unless the user chose.
// testcontainers-go reads its configuration once per process, at its first
// use, so this runs as early as possible: when [Containers] is applied.
func disableRyuk() {
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "" {
		os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true") // kafkatest removes what it makes
	}
}

// engine connects to the container engine once.
func (c *Cluster) engine() (*containers, error) {
	k := c.cfg.containers
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cli != nil {
		return k, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// "host" as the default network: testcontainers-go then attaches
	// containers to no network of its own (and creates none).
	p, err := testcontainers.NewDockerProvider(testcontainers.WithLogger(tcLogger{c}), testcontainers.WithDefaultBridgeNetwork("host"))
	if err != nil {
		return nil, fmt.Errorf("kafkatest: containers: no container engine: %w", err)
	}
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("kafkatest: containers: no container engine: %w", err)
	}
	k.provider, k.cli = p, cli
	return k, nil
}

// containerDistribution checks that release's image is there (pulling it if
// not) and returns a Distribution that names the paths inside the image.
func (c *Cluster) containerDistribution(ctx context.Context, release string) (*Distribution, error) {
	if _, _, _, err := parseRelease(release); err != nil {
		return nil, err
	}
	k, err := c.engine()
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	_, ok := k.images[release]
	k.mu.Unlock()
	if !ok {
		image := k.image(release)
		if _, err := k.cli.ImageInspect(ctx, image); err != nil {
			if !cerrdefs.IsNotFound(err) {
				return nil, fmt.Errorf("kafkatest: containers: image %s of Kafka %s: %w", image, release, err)
			}
			fmt.Fprintf(c.cfg.progress, "kafkatest: pulling %s (first use)\n", image)
			rc, err := k.cli.ImagePull(ctx, image, client.ImagePullOptions{})
			if err == nil {
				_, err = io.Copy(io.Discard, rc)
				rc.Close()
			}
			if err != nil {
				return nil, fmt.Errorf("kafkatest: containers: no image %s for Kafka %s, and pulling it failed: %w", image, release, err)
			}
		}
		k.mu.Lock()
		k.images[release] = image
		k.mu.Unlock()
	}
	return &Distribution{Release: release, Dir: "/opt/kafka", Java: "java"}, nil
}

// dataDir returns where a node's (or ZooKeeper's) data lives as its own
// config names it: host, on this machine; the data volume in a container.
func (c *Cluster) dataDir(host string) string {
	if c.cfg.containers != nil {
		return dataPath
	}
	return host
}

// launch starts a long-running JVM (role "node-<id>" or "zookeeper") whose
// output goes to logPath, as a process on this machine or, with
// [Containers], in a container with role's data volume.
func (c *Cluster) launch(role string, d *Distribution, args []string, logPath, header string, exited func()) (*process, error) {
	if c.cfg.containers == nil {
		return launch(d.Java, args, logPath, header, exited)
	}
	return c.launchContainer(role, d, args, logPath, header, exited)
}

// runJava runs a short java command (a Kafka tool) to its end: a JVM on
// this machine, or a container of d's image; with n, one that mounts n's
// data volume (the storage tool formats it).
func (c *Cluster) runJava(ctx context.Context, d *Distribution, n *Process, args []string, stdout, stderr io.Writer) error {
	if c.cfg.containers == nil {
		cmd := exec.CommandContext(ctx, d.Java, args...)
		cmd.Stdout, cmd.Stderr = stdout, stderr
		return runProcess(cmd)
	}
	role := ""
	if n != nil {
		role = "node-" + strconv.Itoa(int(n.id))
	}
	return c.runContainer(ctx, role, d, args, stdout, stderr)
}

// containerSeq numbers containers, so that every run gets its own name.
var containerSeq atomic.Int64

// create makes (but does not start) a container that runs java with args
// in d's image, with role's data volume if role is not "". With bridge
// networking it joins the cluster's network under role's alias, and, if
// publish is set, role's ports are published on 127.0.0.1.
func (c *Cluster) create(ctx context.Context, role string, d *Distribution, args []string, publish bool) (*testcontainers.DockerContainer, *containers, error) {
	k, err := c.engine()
	if err != nil {
		return nil, nil, err
	}
	k.mu.Lock()
	image, ok := k.images[d.Release]
	k.mu.Unlock()
	if !ok {
		return nil, nil, fmt.Errorf("kafkatest: containers: Kafka %s was not prepared", d.Release)
	}
	labels := map[string]string{labelOwner: ownerLabel(), labelCluster: c.name}
	args = containerArgs(args)
	var files []testcontainers.ContainerFile
	for _, f := range hostFiles(args) {
		files = append(files, testcontainers.ContainerFile{HostFilePath: f, ContainerFilePath: f, FileMode: 0o644})
	}
	name := fmt.Sprintf("%s-%s-%d", c.name, cmp.Or(role, "tool"), containerSeq.Add(1))
	req := testcontainers.ContainerRequest{
		Image:      image,
		Name:       name,
		Entrypoint: []string{"java"},
		Cmd:        args,
		Labels:     labels,
		Files:      files,
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.NetworkMode = "host"
		},
	}
	if c.bridged() {
		netName, err := c.clusterNetwork(ctx, k)
		if err != nil {
			return nil, nil, err
		}
		c.bridgeRequest(&req, netName, role, publish)
	}
	if role != "" {
		vol := c.name + "-" + role
		if _, err := k.cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: vol, Labels: labels}); err != nil {
			return nil, nil, fmt.Errorf("kafkatest: containers: create volume %s: %w", vol, err)
		}
		req.Mounts = testcontainers.Mounts(testcontainers.VolumeMount(vol, dataPath))
	}
	ctr, err := k.provider.CreateContainer(ctx, req)
	if err != nil {
		return nil, nil, fmt.Errorf("kafkatest: containers: create %s from %s: %w", name, image, err)
	}
	return ctr.(*testcontainers.DockerContainer), k, nil
}

func (c *Cluster) launchContainer(role string, d *Distribution, args []string, logPath, header string, exited func()) (p *process, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			f.Close()
			if exited != nil {
				exited()
			}
		}
	}()
	ctr, k, err := c.create(ctx, role, d, args, true)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "==== %s in container %s (%s) at %s ====\n", header, ctr.GetContainerID()[:12], ctr.Image, time.Now().Format(time.RFC3339Nano))
	if err := ctr.Start(ctx); err != nil {
		remove(k, ctr.GetContainerID())
		return nil, fmt.Errorf("kafkatest: containers: start %s: %w", role, err)
	}
	id := ctr.GetContainerID()
	ins, err := k.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		remove(k, id)
		return nil, fmt.Errorf("kafkatest: containers: inspect %s: %w", role, err)
	}
	logs, err := k.cli.ContainerLogs(context.Background(), id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: true})
	if err != nil {
		remove(k, id)
		return nil, fmt.Errorf("kafkatest: containers: logs of %s: %w", role, err)
	}
	ctl := &containerCtl{cli: k.cli, id: id}
	p = &process{log: f, exited: make(chan struct{}), ctl: ctl}
	if ins.Container.State != nil {
		ctl.pid = ins.Container.State.Pid
	}
	go func() {
		copied := make(chan struct{})
		go func() {
			stdcopy.StdCopy(f, f, logs) // ends when the container stops
			close(copied)
		}()
		p.err = waitContainer(k, id)
		select {
		case <-copied:
		case <-time.After(10 * time.Second): // the stream should end at once; never hang on it
		}
		logs.Close()
		remove(k, id)
		f.Close()
		if exited != nil {
			exited()
		}
		close(p.exited)
	}()
	return p, nil
}

// waitContainer waits for a container to stop and returns its exit as
// exec.Cmd.Wait would (nil for status 0).
func waitContainer(k *containers, id string) error {
	res := k.cli.ContainerWait(context.Background(), id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case r := <-res.Result:
		if r.Error != nil && r.Error.Message != "" {
			return errors.New(r.Error.Message)
		}
		if r.StatusCode != 0 {
			return fmt.Errorf("exit status %d", r.StatusCode)
		}
		return nil
	case err := <-res.Error:
		return fmt.Errorf("kafkatest: containers: wait for %s: %w", id[:12], err)
	}
}

// remove removes a container (its data volume stays).
func remove(k *containers, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	k.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true})
}

// runContainer runs a short java command in a container to its end.
func (c *Cluster) runContainer(ctx context.Context, role string, d *Distribution, args []string, stdout, stderr io.Writer) error {
	if role == "" && c.bridged() {
		args = c.networkArgs(args)
	}
	ctr, k, err := c.create(ctx, role, d, args, false)
	if err != nil {
		return err
	}
	id := ctr.GetContainerID()
	defer remove(k, id)
	if err := ctr.Start(ctx); err != nil {
		return fmt.Errorf("kafkatest: containers: start: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- waitContainer(k, id) }()
	var werr error
	select {
	case werr = <-done:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	logs, err := k.cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return fmt.Errorf("kafkatest: containers: logs: %w", err)
	}
	defer logs.Close()
	stdcopy.StdCopy(stdout, stderr, logs)
	return werr
}

// containerCtl signals a container's process.
type containerCtl struct {
	cli *testcontainers.DockerClient
	id  string
	pid int // the container's PID 1 as this machine sees it

	mu     sync.Mutex
	paused bool
}

// signal delivers sig: SIGSTOP and SIGCONT pause and unpause the container,
// other signals go to its java. A paused container is unpaused after a
// SIGKILL, so that it can end.
func (k *containerCtl) signal(sig syscall.Signal) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	k.mu.Lock()
	defer k.mu.Unlock()
	var err error
	switch sig {
	case syscall.SIGSTOP:
		if _, err = k.cli.ContainerPause(ctx, k.id, client.ContainerPauseOptions{}); err == nil {
			k.paused = true
		}
	case syscall.SIGCONT:
		if _, err = k.cli.ContainerUnpause(ctx, k.id, client.ContainerUnpauseOptions{}); err == nil {
			k.paused = false
		}
	default:
		_, err = k.cli.ContainerKill(ctx, k.id, client.ContainerKillOptions{Signal: strconv.Itoa(int(sig))})
		if sig == syscall.SIGKILL && k.paused {
			k.cli.ContainerUnpause(ctx, k.id, client.ContainerUnpauseOptions{})
			k.paused = false
		}
	}
	if err != nil {
		return fmt.Errorf("kafkatest: containers: signal %v to %s: %w", sig, k.id[:12], err)
	}
	return nil
}

// containerArgs drops the class-data sharing flags: their archives belong
// to this machine's JVM, not the image's.
func containerArgs(args []string) []string {
	var out []string
	for _, a := range args {
		if strings.HasPrefix(a, "-XX:SharedArchiveFile=") || strings.HasPrefix(a, "-XX:ArchiveClassesAtExit=") || strings.HasPrefix(a, "-Xlog:cds") {
			continue
		}
		out = append(out, a)
	}
	return out
}

// hostFiles returns the files of this machine that a java command line
// names (an argument, or the value of -Dkey=value, with or without
// "file:"), to be copied into the container at the same paths.
func hostFiles(args []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range args {
		cands := []string{a}
		if _, v, ok := strings.Cut(a, "="); ok {
			cands = append(cands, v)
		}
		for _, p := range cands {
			p = strings.TrimPrefix(p, "file:")
			if !filepath.IsAbs(p) || seen[p] {
				continue
			}
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// sweepContainers removes the containers and volumes that processes which
// died without closing their clusters left behind. It runs while the
// cluster holds the machine-wide lock.
func (c *Cluster) sweepContainers(ctx context.Context) error {
	k, err := c.engine()
	if err != nil {
		return err
	}
	f := client.Filters{}.Add("label", labelOwner)
	list, err := k.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("kafkatest: containers: list: %w", err)
	}
	var ctrs, vols int
	for _, s := range list.Items {
		if ownerAlive(s.Labels[labelOwner]) {
			continue
		}
		if _, err := k.cli.ContainerRemove(ctx, s.ID, client.ContainerRemoveOptions{Force: true}); err == nil {
			ctrs++
		}
	}
	vl, err := k.cli.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		return fmt.Errorf("kafkatest: containers: list volumes: %w", err)
	}
	for _, v := range vl.Items {
		if ownerAlive(v.Labels[labelOwner]) {
			continue
		}
		if _, err := k.cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err == nil {
			vols++
		}
	}
	nets := sweepNetworks(ctx, k)
	if ctrs+vols+nets > 0 {
		fmt.Fprintf(c.cfg.progress, "kafkatest: removed %d containers, %d volumes and %d networks left by kafkatest processes that ended without closing their clusters\n", ctrs, vols, nets)
	}
	c.startWatchdog(k)
	return nil
}

// startWatchdog starts a helper that removes the cluster's containers,
// volumes and network once this process ends, however it ends: a shell, in
// a session of its own (so that it outlives this process), blocks reading a
// pipe whose write end only this process holds; when the kernel closes it (exit,
// SIGKILL, a test binary's timeout), the read ends and the shell removes
// what carries the cluster's label with the docker command. Without a
// docker command on the PATH there is no watchdog, and what a dead process
// left is removed by the next container cluster (see sweepContainers).
func (c *Cluster) startWatchdog(k *containers) {
	docker, err := exec.LookPath("docker")
	if err != nil {
		return
	}
	r, w, err := os.Pipe()
	if err != nil {
		return
	}
	defer r.Close()
	f := "label=" + labelCluster + "=" + c.name
	script := `cat >/dev/null
ids=$("$0" ps -aq --filter "$1")
[ -z "$ids" ] || "$0" rm -f $ids >/dev/null 2>&1
vols=$("$0" volume ls -q --filter "$1")
[ -z "$vols" ] || "$0" volume rm -f $vols >/dev/null 2>&1
nets=$("$0" network ls -q --filter "$1")
[ -z "$nets" ] || "$0" network rm $nets >/dev/null 2>&1`
	cmd := exec.Command("sh", "-c", script, docker, f)
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return
	}
	go cmd.Wait() // reaped when it ends, after Close or at this process's end
	k.watchdog = w
}

// closeContainers removes the cluster's remaining containers and its
// volumes, and closes the engine connection. Close calls it once every
// node has ended.
func (c *Cluster) closeContainers() {
	if c.cfg.containers == nil {
		return
	}
	k := c.cfg.containers
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cli == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f := client.Filters{}.Add("label", labelCluster+"="+c.name)
	if list, err := k.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f}); err == nil {
		for _, s := range list.Items {
			k.cli.ContainerRemove(ctx, s.ID, client.ContainerRemoveOptions{Force: true})
		}
	}
	if vl, err := k.cli.VolumeList(ctx, client.VolumeListOptions{Filters: f}); err == nil {
		for _, v := range vl.Items {
			k.cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true})
		}
	}
	if k.network != "" {
		k.cli.NetworkRemove(ctx, k.network, client.NetworkRemoveOptions{})
		k.network = ""
	}
	if k.watchdog != nil {
		k.watchdog.Close() // nothing left for it to remove
		k.watchdog = nil
	}
	k.cli.Close()
	k.provider.Close()
	k.cli, k.provider = nil, nil
}
