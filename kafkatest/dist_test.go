package kafkatest

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

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
			t.Errorf("mavenError(%q) = %v, want ErrUnresolvable with %q", tt.lines, err, tt.want)
		}
	}
	offline := []string{"[ERROR] Failed to execute goal on project kafka-distribution: Could not resolve dependencies for project x: Cannot access central (file:///m2) in offline mode and the artifact org.slf4j:slf4j-api:jar:1.7.36 has not been downloaded from it before. -> [Help 1]"}
	err := mavenError("9.9.9", errors.New("exit status 1"), offline)
	if errors.Is(err, ErrUnresolvable) || !strings.Contains(err.Error(), "offline (-o) and its local repository lacks org.slf4j:slf4j-api:jar:1.7.36") {
		t.Errorf("mavenError(offline) = %v, want the artifact the local repository lacks", err)
	}
}

func TestMavenArgs(t *testing.T) {
	var cfg resolveConfig
	for _, o := range []ResolveOption{MavenArgs("-o"), MavenArgs("-s", "ci.xml"), MavenArgs()} {
		o.applyResolve(&cfg)
	}
	want := []string{"-B", "-U", "-o", "-s", "ci.xml", "-f", "/c/3.9.2/pom.xml",
		"org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies",
		"-DincludeScope=runtime", "-DoutputDirectory=/c/3.9.2/libs.partial"}
	if diff := cmp.Diff(want, cfg.mavenArgs("/c/3.9.2/pom.xml", "/c/3.9.2/libs.partial")); diff != "" {
		t.Errorf("Maven command line (-want +got):\n%s", diff)
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

// TestResolveIncompleteRelease resolves fake releases (3.999.x, which Kafka
// will never publish) from a file repository in a temporary directory, with
// Maven offline, so that neither the network nor what a registry serves
// today decides the outcome. 3.999.0 is published incompletely: its
// kafka-tools depends on a kafka-tools-api that is absent. 3.999.1 is
// complete, which shows that the setup itself resolves.
//
// Maven's plugin (maven-dependency-plugin and its dependencies) comes from
// the user's local repository, read as a second file repository; the local
// repository Maven writes to is temporary, so the fake artifacts never
// reach the user's.
func TestResolveIncompleteRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Maven")
	}
	RequireTools(t)
	userRepo := userMavenRepo(t)
	if _, err := os.Stat(filepath.Join(userRepo, dependencyPluginJar)); err != nil {
		// A real release brings the plugin into the user's local
		// repository; published releases never change.
		t.Logf("no %s yet: resolving Kafka 3.9.2 once to get it", dependencyPluginJar)
		if _, err := Resolve(t.Context(), "3.9.2", CacheDir(t.TempDir()), KafkaHome(""), ResolveProgress(t.Output())); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(userRepo, dependencyPluginJar)); err != nil {
			t.Fatalf("Maven's local repository is not %s, where this test looks for the plugin: %v", userRepo, err)
		}
	}

	fake := t.TempDir()
	dep := func(artifact, version string) string {
		return "<dependency><groupId>org.apache.kafka</groupId><artifactId>" + artifact +
			"</artifactId><version>" + version + "</version></dependency>"
	}
	writeArtifact(t, fake, "kafka_2.13", "3.999.0")
	writeArtifact(t, fake, "kafka-tools", "3.999.0", dep("kafka-tools-api", "3.999.0"))
	writeArtifact(t, fake, "kafka_2.13", "3.999.1")
	writeArtifact(t, fake, "kafka-tools", "3.999.1", dep("kafka-tools-api", "3.999.1"))
	writeArtifact(t, fake, "kafka-tools-api", "3.999.1")
	settings := writeOfflineSettings(t, t.TempDir(), userRepo, fake)
	// Maven runs for seconds only: the JIT's first tier makes it ~40% faster.
	t.Setenv("MAVEN_OPTS", strings.TrimSpace(os.Getenv("MAVEN_OPTS")+" -XX:TieredStopAtLevel=1"))
	resolve := func(release string) (*Distribution, error) {
		start := time.Now()
		defer func() { t.Logf("Resolve(%s) took %v", release, time.Since(start).Round(time.Millisecond)) }()
		// Offline (-o), Maven still reads file repositories when told so;
		// the settings replace the global ones too, whose mirrors could
		// redirect the file repositories.
		return Resolve(t.Context(), release, CacheDir(t.TempDir()), KafkaHome(""), ResolveProgress(io.Discard),
			MavenArgs("-o", "-Daether.offline.protocols=file", "-s", settings, "-gs", settings))
	}

	_, err := resolve("3.999.0")
	if !errors.Is(err, ErrUnresolvable) {
		t.Fatalf("Resolve(3.999.0) = %v, want ErrUnresolvable", err)
	}
	for _, want := range []string{"org.apache.kafka:kafka-tools-api:jar:3.999.0", "published incompletely"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Resolve(3.999.0) error %q lacks %q", err, want)
		}
	}
	t.Logf("Resolve(3.999.0): %v", err)

	d, err := resolve("3.999.1")
	if err != nil {
		t.Fatalf("Resolve(3.999.1) = %v, want the complete fake release", err)
	}
	jars, _ := filepath.Glob(filepath.Join(d.Dir, "libs", "*.jar"))
	for i, j := range jars {
		jars[i] = filepath.Base(j)
	}
	want := []string{"kafka-tools-3.999.1.jar", "kafka-tools-api-3.999.1.jar", "kafka_2.13-3.999.1.jar", "reload4j-1.2.25.jar", "slf4j-api-1.7.36.jar", "slf4j-reload4j-1.7.36.jar"}
	if diff := cmp.Diff(want, jars); diff != "" {
		t.Errorf("libs of 3.999.1 (-want +got):\n%s", diff)
	}

	for _, v := range []string{"3.999.0", "3.999.1"} {
		if _, err := os.Stat(filepath.Join(userRepo, "org", "apache", "kafka", "kafka_2.13", v)); err == nil {
			t.Errorf("fake release %s reached the user's local repository %s", v, userRepo)
		}
	}
}

// dependencyPluginJar is where the plugin Resolve runs lies in a Maven
// repository.
var dependencyPluginJar = filepath.Join("org", "apache", "maven", "plugins", "maven-dependency-plugin", "3.6.1", "maven-dependency-plugin-3.6.1.jar")

// userMavenRepo returns the user's local Maven repository: the
// localRepository of ~/.m2/settings.xml, else ~/.m2/repository.
func userMavenRepo(t *testing.T) string {
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(home, ".m2", "settings.xml")); err == nil {
		uncommented := regexp.MustCompile(`(?s)<!--.*?-->`).ReplaceAll(b, nil)
		if m := regexp.MustCompile(`<localRepository>\s*([^<]*?)\s*</localRepository>`).FindSubmatch(uncommented); m != nil && len(m[1]) > 0 {
			return string(m[1])
		}
	}
	return filepath.Join(home, ".m2", "repository")
}

// writeArtifact writes the POM, with dependencies, and an empty jar of
// org.apache.kafka:artifact:version into the Maven repository repo.
func writeArtifact(t *testing.T, repo, artifact, version string, dependencies ...string) {
	t.Helper()
	dir := filepath.Join(repo, "org", "apache", "kafka", artifact, version)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pom := "<project><modelVersion>4.0.0</modelVersion><groupId>org.apache.kafka</groupId><artifactId>" + artifact +
		"</artifactId><version>" + version + "</version><dependencies>" + strings.Join(dependencies, "") + "</dependencies></project>\n"
	var jar bytes.Buffer
	if err := zip.NewWriter(&jar).Close(); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, artifact+"-"+version)
	if err := os.WriteFile(base+".pom", []byte(pom), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(base+".jar", jar.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeOfflineSettings writes a Maven settings.xml into dir that keeps the
// local repository in dir and replaces every remote repository by two file
// repositories: plugins, read in place of "central", and fake. It returns
// the file's path.
func writeOfflineSettings(t *testing.T, dir, plugins, fake string) string {
	t.Helper()
	fileURL := func(p string) string { return (&url.URL{Scheme: "file", Path: filepath.ToSlash(p)}).String() }
	settings := fmt.Sprintf(`<settings>
  <localRepository>%s</localRepository>
  <profiles>
    <profile>
      <id>hermetic</id>
      <repositories>
        <repository><id>central</id><url>%s</url></repository>
        <repository><id>fake</id><url>%s</url></repository>
      </repositories>
      <pluginRepositories>
        <pluginRepository><id>central</id><url>%[2]s</url></pluginRepository>
      </pluginRepositories>
    </profile>
  </profiles>
  <activeProfiles><activeProfile>hermetic</activeProfile></activeProfiles>
</settings>
`, filepath.Join(dir, "repository"), fileURL(plugins), fileURL(fake))
	path := filepath.Join(dir, "settings.xml")
	if err := os.WriteFile(path, []byte(settings), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
