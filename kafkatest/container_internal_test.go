package kafkatest

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestContainerArgsDropClassDataSharing(t *testing.T) {
	in := []string{"-Xmx512m", "-Xlog:cds=off,cds+dynamic=off", "-XX:SharedArchiveFile=/root/.cache/a.jsa",
		"-XX:ArchiveClassesAtExit=/tmp/b.tmp", "-cp", "/opt/kafka/libs/*", "kafka.Kafka", "/x/server.properties"}
	want := []string{"-Xmx512m", "-cp", "/opt/kafka/libs/*", "kafka.Kafka", "/x/server.properties"}
	if diff := cmp.Diff(want, containerArgs(in)); diff != "" {
		t.Errorf("containerArgs (-want +got):\n%s", diff)
	}
}

func TestHostFilesNamedByArgs(t *testing.T) {
	dir := t.TempDir()
	props := filepath.Join(dir, "server.properties")
	log4j := filepath.Join(dir, "log4j.properties")
	log4j2 := filepath.Join(dir, "log4j2.properties")
	for _, f := range []string{props, log4j, log4j2} {
		if err := os.WriteFile(f, []byte("x=1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{
		"-Dlog4j.configuration=file:" + log4j,            // file: URL in a -D value
		"-Dlog4j2.configurationFile=" + log4j2,           // plain path in a -D value
		"-Dkafka.logs.dir=" + filepath.Join(dir, "logs"), // no such file: not copied
		"-cp", "/opt/kafka/libs/*", // inside the image
		"kafka.Kafka", props, props, // the same file once
		"relative.properties",
	}
	want := []string{log4j, log4j2, props}
	if diff := cmp.Diff(want, hostFiles(args)); diff != "" {
		t.Errorf("hostFiles (-want +got):\n%s", diff)
	}
}

func TestOwnerAlive(t *testing.T) {
	me := ownerLabel()
	if !ownerAlive(me) {
		t.Errorf("ownerAlive(%q) = false for this very process", me)
	}
	pid := strconv.Itoa(os.Getpid())
	for _, owner := range []string{
		pid + "/1",    // this pid, another start time: a reused pid
		"999999999/1", // no such process
		pid,           // malformed
		"x/1",
		"",
	} {
		if ownerAlive(owner) {
			t.Errorf("ownerAlive(%q) = true", owner)
		}
	}
}

func TestContainersOption(t *testing.T) {
	cfg := defaultConfig()
	KRaft("3.9.2").apply(&cfg)
	if cfg.containers != nil {
		t.Fatal("containers on without the option")
	}
	Containers().apply(&cfg)
	if got := cfg.containers.image("4.0.2"); got != "apache/kafka:4.0.2" {
		t.Errorf("default image %q, want apache/kafka:4.0.2", got)
	}
	Containers(ContainerImage(func(r string) string { return "local/kafka:" + r })).apply(&cfg)
	if got := cfg.containers.image("4.0.2"); got != "local/kafka:4.0.2" {
		t.Errorf("ContainerImage: image %q", got)
	}
	c := &Cluster{cfg: cfg}
	if got := c.dataDir("/tmp/x/node-1/data"); got != dataPath {
		t.Errorf("dataDir with containers = %q, want %q", got, dataPath)
	}
	c.cfg.containers = nil
	if got := c.dataDir("/tmp/x/node-1/data"); got != "/tmp/x/node-1/data" {
		t.Errorf("dataDir without containers = %q", got)
	}
}
