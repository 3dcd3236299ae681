package kafkatest

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// requireFor is [RequireTools] for a cluster made with opts: a cluster of
// containers needs no JDK or Maven here (the engine is checked when it
// starts, and a missing one fails the test).
func requireFor(t testing.TB, opts []Option) {
	t.Helper()
	cfg := defaultConfig() // options such as NodeConfig write into its maps
	for _, o := range opts {
		o.apply(&cfg)
	}
	if cfg.containers == nil {
		RequireTools(t)
	}
}

// localImages remembers which stand-in images this process has checked.
var localImages sync.Map // release → image

// LocalContainers prepares this machine's own container engine for a test
// and returns the [Containers] option that uses it. It is for machines with
// no engine and no image registry, as kupgrade's CI: it runs the script
// testdata/containers.sh beside this package, which installs Debian's
// docker.io if dockerd is missing, starts (or reuses) a private dockerd
// listening on a socket in the user cache directory (no default bridge, no
// iptables), and builds for each release a stand-in image
// "kupgrade-kafkatest/kafka:<release>" with the layout of the official
// apache/kafka images, from the release's jars (which [Resolve] fetches with
// Maven) and a debootstrapped Java 17. Everything is cached: a second run
// builds nothing. It sets DOCKER_HOST for the test.
// Its containers use host networking ([ContainerHostNetwork]), loopback
// only; [LocalBridgeContainers] is the same engine with bridge networking.
//
// When the engine or an image cannot be set up, the test is skipped with
// the reason, or fails under CI=true or KUPGRADE_REQUIRE_KAFKA=1. With
// -short it is skipped.
func LocalContainers(t testing.TB, releases ...string) Option {
	t.Helper()
	localSetup(t, releases)
	return Containers(ContainerImage(localImage), ContainerHostNetwork())
}

// LocalBridgeContainers is [LocalContainers] with the default networking of
// [Containers]: a bridge network per cluster, the clients' ports published
// on 127.0.0.1. Before it returns, it checks that the engine can make a
// bridge network (it makes one, labelled as kafkatest's, and removes it);
// if the engine refuses, the test is skipped with the engine's reason, or
// fails under CI=true or KUPGRADE_REQUIRE_KAFKA=1.
func LocalBridgeContainers(t testing.TB, releases ...string) Option {
	t.Helper()
	localSetup(t, releases)
	if err := probeBridge(t.Context()); err != nil {
		if mustRunKafka() {
			t.Fatalf("kafkatest: the container engine cannot run bridge networking: %v", err)
		}
		t.Skipf("kafkatest: the container engine cannot run bridge networking: %v", err)
	}
	return Containers(ContainerImage(localImage))
}

// localImage is the stand-in image of release r that localSetup built.
func localImage(r string) string {
	if image, ok := localImages.Load(r); ok {
		return image.(string)
	}
	return "kupgrade-kafkatest/kafka:" + r
}

// localSetup prepares the engine and the images of releases for t (see
// [LocalContainers]).
func localSetup(t testing.TB, releases []string) {
	t.Helper()
	if testing.Short() {
		t.Skip("kafkatest: starts Kafka containers; skipped with -short")
	}
	fail := t.Skipf
	if mustRunKafka() {
		fail = t.Fatalf
	}
	disableRyuk() // before the test's own first use of testcontainers-go
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "testdata", "containers.sh")
	ctx, cancel := context.WithTimeoutCause(t.Context(), 10*time.Minute, fmt.Errorf("kafkatest: %s took longer than 10m", script))
	defer cancel()
	run := func(args ...string) (string, error) {
		start := time.Now()
		var out, errb bytes.Buffer
		cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if s := strings.TrimSpace(errb.String()); s != "" {
			t.Logf("%s", s)
		}
		t.Logf("kafkatest: containers.sh %s: %v", args[0], time.Since(start).Round(time.Millisecond))
		if err != nil {
			if c := context.Cause(ctx); c != nil {
				err = c
			}
			return "", fmt.Errorf("containers.sh %s: %w", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(out.String()), nil
	}
	out, err := run("engine")
	if err != nil {
		fail("container test cannot run: no container engine: %v", err)
	}
	host, ok := strings.CutPrefix(out[strings.LastIndexByte(out, '\n')+1:], "DOCKER_HOST=")
	if !ok {
		t.Fatalf("kafkatest: containers.sh engine printed %q, want DOCKER_HOST=…", out)
	}
	t.Setenv("DOCKER_HOST", host)
	for _, r := range releases {
		if _, ok := localImages.Load(r); ok {
			continue
		}
		d, err := Resolve(ctx, r, ResolveProgress(testWriter{t}))
		if err != nil {
			fail("container test cannot run: the jars of Kafka %s: %v", r, err)
		}
		image, err := run("image", r, filepath.Join(d.Dir, "libs"))
		if err != nil {
			fail("container test cannot run: image of Kafka %s: %v", r, err)
		}
		localImages.Store(r, image)
	}
}
