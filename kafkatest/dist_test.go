package kafkatest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseRelease(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    [3]int
		wantErr bool
	}{
		{"3.9.1", [3]int{3, 9, 1}, false},
		{"4.1.0", [3]int{4, 1, 0}, false},
		{"10.20.30", [3]int{10, 20, 30}, false},
		{"3.9", [3]int{}, true},
		{"3.9.1.0", [3]int{}, true},
		{"v3.9.1", [3]int{}, true},
		{"3.09.1", [3]int{}, true},
		{"3.9.1-rc1", [3]int{}, true},
		{"", [3]int{}, true},
		{" 3.9.1", [3]int{}, true},
	} {
		a, b, c, err := parseRelease(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseRelease(%q) err = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if err != nil {
			if !strings.Contains(err.Error(), `"`+tt.in+`"`) {
				t.Errorf("parseRelease(%q) error %q does not quote the input", tt.in, err)
			}
			continue
		}
		if diff := cmp.Diff(tt.want, [3]int{a, b, c}); diff != "" {
			t.Errorf("parseRelease(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestPomAddsTheLoggingBackendOfTheReleaseLine(t *testing.T) {
	for _, tt := range []struct {
		release      string
		major, minor int
		want, notIn  []string
	}{
		{"3.6.2", 3, 6, []string{"<artifactId>kafka_2.13</artifactId><version>3.6.2<", "slf4j-reload4j", "<artifactId>reload4j</artifactId>", "kafka-tools</artifactId><version>3.6.2<"}, []string{"log4j-core"}},
		{"4.1.2", 4, 1, []string{"log4j-slf4j-impl</artifactId><version>2.24.3<", "log4j-core</artifactId><version>2.24.3<", "log4j-api"}, []string{"reload4j"}},
		{"4.3.1", 4, 3, []string{"log4j-slf4j-impl</artifactId><version>2.25.4<", "log4j-core</artifactId><version>2.25.4<"}, []string{"reload4j", "2.24.3"}},
	} {
		p := pom(tt.release, tt.major, tt.minor)
		for _, w := range tt.want {
			if !strings.Contains(p, w) {
				t.Errorf("pom(%s) lacks %q:\n%s", tt.release, w, p)
			}
		}
		for _, n := range tt.notIn {
			if strings.Contains(p, n) {
				t.Errorf("pom(%s) has %q:\n%s", tt.release, n, p)
			}
		}
	}
}

func TestResolveErrors(t *testing.T) {
	ctx := context.Background()
	cache := t.TempDir()
	if _, err := Resolve(ctx, "3.9", CacheDir(cache)); err == nil || !strings.Contains(err.Error(), `malformed Kafka release "3.9"`) {
		t.Errorf("Resolve(3.9) = %v, want a malformed-release error", err)
	}
	if _, err := Resolve(ctx, "2.8.2", CacheDir(cache)); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("Resolve(2.8.2) = %v, want not supported", err)
	}
	if _, err := Resolve(ctx, "3.9.1", CacheDir(cache), JavaCommand(filepath.Join(t.TempDir(), "no-java"))); !errors.Is(err, ErrJavaMissing) {
		t.Errorf("Resolve with no java = %v, want ErrJavaMissing", err)
	}
	if _, _, err := findJava(ctx, ""); err != nil {
		t.Skipf("no java here: %v", err)
	}
	_, err := Resolve(ctx, "3.9.1", CacheDir(cache), MavenCommand(filepath.Join(t.TempDir(), "no-mvn")), KafkaHome(""), ResolveProgress(ioDiscard{}))
	if !errors.Is(err, ErrMavenMissing) {
		t.Errorf("Resolve with no mvn = %v, want ErrMavenMissing", err)
	}
}

func TestResolveOldJava(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "java")
	os.WriteFile(fake, []byte("#!/bin/sh\necho 'openjdk version \"11.0.21\" 2023-10-17' >&2\n"), 0o755)
	_, err := Resolve(context.Background(), "4.1.1", CacheDir(t.TempDir()), JavaCommand(fake))
	if err == nil || !strings.Contains(err.Error(), "needs Java 17 or newer") || !strings.Contains(err.Error(), "Java 11") {
		t.Errorf("Resolve(4.1.1) with Java 11 = %v, want a Java version error", err)
	}
	os.WriteFile(fake, []byte("#!/bin/sh\necho 'java version \"1.8.0_392\"' >&2\n"), 0o755)
	_, err = Resolve(context.Background(), "3.9.1", CacheDir(t.TempDir()), JavaCommand(fake))
	if err == nil || !strings.Contains(err.Error(), "Java 8") {
		t.Errorf("Resolve(3.9.1) with Java 8 = %v, want a Java version error", err)
	}
}

func TestResolveUsesKafkaHome(t *testing.T) {
	if _, _, err := findJava(context.Background(), ""); err != nil {
		t.Skipf("no java here: %v", err)
	}
	home := t.TempDir()
	dist := filepath.Join(home, "kafka_2.13-3.8.1")
	os.MkdirAll(filepath.Join(dist, "libs"), 0o755)
	os.WriteFile(filepath.Join(dist, "libs", "kafka_2.13-3.8.1.jar"), nil, 0o644)
	d, err := Resolve(context.Background(), "3.8.1", KafkaHome(home), MavenCommand("/nonexistent/mvn"))
	if err != nil {
		t.Fatal(err)
	}
	if d.Dir != dist || d.Classpath() != filepath.Join(dist, "libs")+"/*" {
		t.Errorf("Dir %q Classpath %q, want %q", d.Dir, d.Classpath(), dist)
	}
	t.Setenv(EnvKafkaHome, dist) // a single distribution directory works too
	if d, err = Resolve(context.Background(), "3.8.1", MavenCommand("/nonexistent/mvn")); err != nil || d.Dir != dist {
		t.Errorf("Resolve via %s = %v, %v", EnvKafkaHome, d, err)
	}
}

func TestMavenError(t *testing.T) {
	for _, tt := range []struct {
		lines []string
		want  string
	}{
		{[]string{"[ERROR] Failed to execute goal on project kafka-distribution: Could not resolve dependencies for project x: Could not find artifact org.apache.kafka:kafka_2.13:jar:9.9.9 in central"},
			"unknown Kafka release 9.9.9: Maven cannot find org.apache.kafka:kafka_2.13:9.9.9"},
		{[]string{"[ERROR] Failed ...: The following artifacts could not be resolved: org.apache.kafka:kafka-tools-api:jar:4.4.0, org.apache.kafka:kafka-tools:jar:4.4.0: org.apache.kafka:kafka-tools-api:jar:4.4.0 was not found"},
			"Maven cannot find org.apache.kafka:kafka-tools-api:jar:4.4.0, which Kafka 9.9.9 depends on"},
	} {
		err := mavenError("9.9.9", errors.New("exit status 1"), tt.lines)
		if !errors.Is(err, ErrUnresolvable) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("mavenError(%q) = %v, want ErrUnknownRelease with %q", tt.lines, err, tt.want)
		}
	}
}

type ioDiscard struct{}

func (ioDiscard) Write(p []byte) (int, error) { return len(p), nil }

// TestResolveConcurrently resolves one release into a fresh cache from two
// goroutines at once (separate file locks, as two test binaries would have):
// Maven runs once and both get the same, complete distribution.
func TestResolveConcurrently(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Maven")
	}
	RequireTools(t)
	cache := t.TempDir()
	var outs [2]strings.Builder
	var dists [2]*Distribution
	var errs [2]error
	done := make(chan int)
	for i := range 2 {
		go func() {
			dists[i], errs[i] = Resolve(t.Context(), "3.9.2", CacheDir(cache), ResolveProgress(&outs[i]), KafkaHome(""))
			done <- i
		}()
	}
	<-done
	<-done
	for i := range 2 {
		if errs[i] != nil {
			t.Fatalf("resolver %d: %v", i, errs[i])
		}
	}
	if dists[0].Dir != dists[1].Dir || !complete(dists[0].Dir) {
		t.Fatalf("dirs %q and %q, complete %v", dists[0].Dir, dists[1].Dir, complete(dists[0].Dir))
	}
	runs := strings.Count(outs[0].String()+outs[1].String(), "resolving Kafka 3.9.2 with Maven")
	if runs != 1 {
		t.Errorf("Maven ran %d times, want 1; progress:\n%s\n%s", runs, outs[0].String(), outs[1].String())
	}
	jars, _ := filepath.Glob(filepath.Join(dists[0].Dir, "libs", "*.jar"))
	if len(jars) < 50 {
		t.Errorf("%d jars in libs, want a full classpath", len(jars))
	}
}
