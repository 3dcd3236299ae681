package kafkatest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kupgrade/kupgrade/compat"
)

// EnvKafkaHome names an environment variable that points at existing Kafka
// distributions (an unpacked release tarball with libs/*.jar) so that nothing
// is resolved with Maven. It is either one distribution directory, used for the
// release it contains, or a directory holding several, named
// "kafka_2.13-<release>" or "<release>".
const EnvKafkaHome = "KUPGRADE_KAFKA_HOME"

// A Distribution is one Kafka release ready to run: a directory whose libs/
// holds every jar the broker, controller, ZooKeeper and Kafka's tools need.
type Distribution struct {
	// Release is the Kafka release, for example "3.9.1".
	Release string
	// Dir is the distribution directory; its libs/ holds the jars.
	Dir string
	// Java is the java launcher that runs the release.
	Java string
	// JavaMajor is the Java feature release of Java (17 for OpenJDK 17).
	JavaMajor int
}

// Classpath returns the JVM class path of the distribution: a wildcard the
// java launcher expands.
func (d *Distribution) Classpath() string {
	return filepath.Join(d.Dir, "libs") + string(filepath.Separator) + "*"
}

// parseRelease checks that s names a Kafka release as Maven Central publishes
// them: a [compat.Release] written with all three numbers ("3.9.1").
func parseRelease(s string) (major, minor, patch int, err error) {
	r, err := compat.ParseRelease(s)
	if err != nil || strings.Count(s, ".") != 2 {
		return 0, 0, 0, fmt.Errorf("kafkatest: malformed Kafka release %q: want major.minor.patch, like \"3.9.1\"", s)
	}
	return r.Major, r.Minor, r.Patch, nil
}

// A ResolveOption configures [Resolve].
type ResolveOption interface{ applyResolve(*resolveConfig) }

type resolveOptionFunc func(*resolveConfig)

func (f resolveOptionFunc) applyResolve(c *resolveConfig) { f(c) }

type resolveConfig struct {
	cacheDir string
	progress io.Writer
	home     string
	mvn      string
	mvnArgs  []string
	java     string
}

// CacheDir sets where resolved releases are kept, overriding the default of
// os.UserCacheDir()/kupgrade/kafka. Each release gets its own subdirectory.
func CacheDir(dir string) ResolveOption {
	return resolveOptionFunc(func(c *resolveConfig) { c.cacheDir = dir })
}

// ResolveProgress sets where the first, slow resolution of a release reports what it
// is doing, overriding the default of os.Stderr. Use io.Discard to silence it.
func ResolveProgress(w io.Writer) ResolveOption {
	return resolveOptionFunc(func(c *resolveConfig) { c.progress = w })
}

// KafkaHome uses existing Kafka distributions instead of Maven, overriding the
// environment variable [EnvKafkaHome]: dir is one distribution (with libs/) or
// a directory of them named "kafka_2.13-<release>" or "<release>". A release
// not found there is still resolved with Maven.
func KafkaHome(dir string) ResolveOption {
	return resolveOptionFunc(func(c *resolveConfig) { c.home = dir })
}

// MavenCommand sets the Maven launcher, overriding the default: "mvn" on PATH.
func MavenCommand(path string) ResolveOption {
	return resolveOptionFunc(func(c *resolveConfig) { c.mvn = path })
}

// MavenArgs adds command-line arguments to every Maven run, before the goal;
// the default is none. Several MavenArgs add up, in order. Use it for what
// Maven's own settings do not already cover, for example
// MavenArgs("-s", "ci-settings.xml") for a settings file with a corporate
// mirror, MavenArgs("-o") to resolve only from the local repository, or
// MavenArgs("-Dmaven.repo.local=/tmp/m2") for another local repository.
// Releases already in the cache directory are not resolved again, whatever
// the arguments.
func MavenArgs(args ...string) ResolveOption {
	return resolveOptionFunc(func(c *resolveConfig) { c.mvnArgs = append(c.mvnArgs, args...) })
}

// JavaCommand sets the java launcher, overriding the default: $JAVA_HOME/bin/java
// when JAVA_HOME is set, else "java" on PATH.
func JavaCommand(path string) ResolveOption {
	return resolveOptionFunc(func(c *resolveConfig) { c.java = path })
}

// ErrJavaMissing reports that no java launcher was found.
var ErrJavaMissing = errors.New("kafkatest: java not found: install a JDK (17 or newer) or set JAVA_HOME")

// ErrMavenMissing reports that no Maven launcher was found.
var ErrMavenMissing = errors.New("kafkatest: mvn not found: install Maven 3.8+ (it resolves the Kafka jars), or point " + EnvKafkaHome + " at unpacked Kafka distributions")

// ErrUnresolvable reports a release that Maven could not resolve: not a real
// release, or one published incompletely.
var ErrUnresolvable = errors.New("kafkatest: unknown Kafka release")

// Resolve returns a runnable distribution of a Kafka release. The first call
// for a release resolves org.apache.kafka:kafka_2.13 and kafka-tools with their
// runtime dependencies, plus the logging backend that release line needs, with
// Maven into the cache directory; later calls (from any process) find it there.
// Two processes resolving the same release at once wait for each other.
func Resolve(ctx context.Context, release string, opts ...ResolveOption) (*Distribution, error) {
	major, minor, _, err := parseRelease(release)
	if err != nil {
		return nil, err
	}
	if major < 3 {
		return nil, fmt.Errorf("kafkatest: Kafka %s is not supported: kafkatest runs 3.0.0 and newer (older releases do not run on Java 17)", release)
	}
	cfg := resolveConfig{progress: os.Stderr, home: os.Getenv(EnvKafkaHome)}
	for _, o := range opts {
		o.applyResolve(&cfg)
	}
	java, javaMajor, err := findJava(ctx, cfg.java)
	if err != nil {
		return nil, err
	}
	if need := minJava(major, minor); javaMajor < need {
		return nil, fmt.Errorf("kafkatest: Kafka %s needs Java %d or newer, but %s is Java %d", release, need, java, javaMajor)
	}
	d := &Distribution{Release: release, Java: java, JavaMajor: javaMajor}
	if cfg.home != "" {
		if dir, ok := findInHome(cfg.home, release); ok {
			d.Dir = dir
			return d, nil
		}
	}
	if cfg.cacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("kafkatest: no cache directory for Kafka jars (set CacheDir): %w", err)
		}
		cfg.cacheDir = filepath.Join(base, "kupgrade", "kafka")
	}
	d.Dir = filepath.Join(cfg.cacheDir, release)
	if complete(d.Dir) {
		return d, nil
	}
	if err := os.MkdirAll(cfg.cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("kafkatest: cache directory: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(cfg.cacheDir, release+".lock"), "resolve Kafka "+release)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if complete(d.Dir) { // another process finished it while we waited
		return d, nil
	}
	if err := mavenResolve(ctx, &cfg, release, major, minor, d.Dir); err != nil {
		return nil, err
	}
	return d, nil
}

const completeMarker = ".complete"

func complete(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, completeMarker))
	return err == nil
}

// minJava is the oldest Java a release's broker runs on.
func minJava(major, minor int) int {
	if major >= 4 {
		return 17
	}
	return 11
}

func findJava(ctx context.Context, java string) (string, int, error) {
	if java == "" {
		if home := os.Getenv("JAVA_HOME"); home != "" {
			java = filepath.Join(home, "bin", "java")
		} else {
			java = "java"
		}
	}
	path, err := exec.LookPath(java)
	if err != nil {
		return "", 0, fmt.Errorf("%w (looked for %q)", ErrJavaMissing, java)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "-version").CombinedOutput()
	if err != nil {
		return "", 0, fmt.Errorf("kafkatest: %s -version: %v: %s", path, err, strings.TrimSpace(string(out)))
	}
	m := javaVersionRE.FindSubmatch(out)
	if m == nil {
		return "", 0, fmt.Errorf("kafkatest: cannot tell the Java version from %s -version: %q", path, firstLine(string(out)))
	}
	major, _ := strconv.Atoi(string(m[1]))
	if major == 1 && m[2] != nil { // "1.8.0_392"
		major, _ = strconv.Atoi(string(m[2]))
	}
	return path, major, nil
}

var javaVersionRE = regexp.MustCompile(`version "(\d+)(?:\.(\d+))?`)

func findInHome(home, release string) (string, bool) {
	for _, dir := range []string{home, filepath.Join(home, "kafka_2.13-"+release), filepath.Join(home, release)} {
		if _, err := os.Stat(filepath.Join(dir, "libs", "kafka_2.13-"+release+".jar")); err == nil {
			return dir, true
		}
	}
	return "", false
}

// log4j2For is the Log4j 2 version whose SLF4J binding a 4.x release line
// runs with (Kafka's release tarballs ship the same).
func log4j2For(minor int) string {
	if minor >= 2 {
		return "2.25.4"
	}
	return "2.24.3"
}

// pom renders the Maven project whose runtime dependencies are a complete
// classpath of the release. Kafka's own POMs leave the logging backend out
// (the tarball adds it), so the pom adds the one each release line ships.
func pom(release string, major, minor int) string {
	dep := func(g, a, v string) string {
		return fmt.Sprintf("    <dependency><groupId>%s</groupId><artifactId>%s</artifactId><version>%s</version></dependency>\n", g, a, v)
	}
	var b strings.Builder
	b.WriteString("<project>\n  <modelVersion>4.0.0</modelVersion>\n")
	b.WriteString("  <groupId>kupgrade.kafkatest</groupId>\n  <artifactId>kafka-distribution</artifactId>\n")
	fmt.Fprintf(&b, "  <version>%s</version>\n  <packaging>pom</packaging>\n  <dependencies>\n", release)
	b.WriteString(dep("org.apache.kafka", "kafka_2.13", release))
	b.WriteString(dep("org.apache.kafka", "kafka-tools", release))
	if major >= 4 {
		v := log4j2For(minor)
		b.WriteString(dep("org.apache.logging.log4j", "log4j-slf4j-impl", v))
		b.WriteString(dep("org.apache.logging.log4j", "log4j-api", v))
		b.WriteString(dep("org.apache.logging.log4j", "log4j-core", v))
	} else {
		b.WriteString(dep("org.slf4j", "slf4j-reload4j", "1.7.36"))
		b.WriteString(dep("ch.qos.reload4j", "reload4j", "1.2.25"))
	}
	b.WriteString("  </dependencies>\n</project>\n")
	return b.String()
}

func mavenResolve(ctx context.Context, cfg *resolveConfig, release string, major, minor int, dir string) error {
	mvn := cfg.mvn
	if mvn == "" {
		mvn = "mvn"
	}
	mvnPath, err := exec.LookPath(mvn)
	if err != nil {
		return fmt.Errorf("%w (looked for %q)", ErrMavenMissing, mvn)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("kafkatest: clear %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("kafkatest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pom.xml"), []byte(pom(release, major, minor)), 0o644); err != nil {
		return fmt.Errorf("kafkatest: %w", err)
	}
	start := time.Now()
	fmt.Fprintf(cfg.progress, "kafkatest: resolving Kafka %s with Maven into %s (first use only)\n", release, dir)
	tmp := filepath.Join(dir, "libs.partial")
	cmd := exec.CommandContext(ctx, mvnPath, cfg.mavenArgs(filepath.Join(dir, "pom.xml"), tmp)...)
	cmd.Dir = dir
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("kafkatest: %w", err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("kafkatest: start maven: %w", err)
	}
	var errLines []string
	downloaded := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "Downloaded from"), strings.Contains(line, "] Downloaded from"):
			downloaded++
			if downloaded%25 == 0 {
				fmt.Fprintf(cfg.progress, "kafkatest: Kafka %s: %d files downloaded (%s)\n", release, downloaded, time.Since(start).Round(time.Second))
			}
		case strings.Contains(line, "[ERROR]"), strings.Contains(line, "[WARNING] The POM for"):
			errLines = append(errLines, strings.TrimSpace(line))
		}
	}
	if err := cmd.Wait(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("kafkatest: resolving Kafka %s: %w", release, context.Cause(ctx))
		}
		return mavenError(release, err, errLines)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "libs")); err != nil {
		return fmt.Errorf("kafkatest: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "libs", "kafka_2.13-"+release+".jar")); err != nil {
		return fmt.Errorf("kafkatest: Maven finished but kafka_2.13-%s.jar is not in %s", release, dir)
	}
	marker := fmt.Sprintf("resolved %s in %s\n", release, time.Since(start).Round(time.Millisecond))
	if err := os.WriteFile(filepath.Join(dir, completeMarker), []byte(marker), 0o644); err != nil {
		return fmt.Errorf("kafkatest: %w", err)
	}
	fmt.Fprintf(cfg.progress, "kafkatest: Kafka %s ready in %s (%d files downloaded)\n", release, time.Since(start).Round(time.Second), downloaded)
	return nil
}

// mavenArgs is the Maven command line (after the launcher) that copies the
// runtime dependencies of pom into out: the user's [MavenArgs] go before the
// goal.
func (c *resolveConfig) mavenArgs(pom, out string) []string {
	args := append([]string{"-B", "-U"}, c.mvnArgs...)
	return append(args, "-f", pom,
		"org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies",
		"-DincludeScope=runtime", "-DoutputDirectory="+out)
}

// mavenError turns Maven's failure into one that says what is missing.
func mavenError(release string, err error, lines []string) error {
	detail := strings.Join(lines, "\n")
	if m := offlineRE.FindStringSubmatch(detail); m != nil {
		return fmt.Errorf("kafkatest: Maven is offline (-o) and its local repository lacks %s, which resolving Kafka %s needs (resolve once online, or drop -o from MavenArgs)", m[1], release)
	}
	for _, l := range lines {
		if m := missingRE.FindStringSubmatch(l); m != nil {
			if strings.HasPrefix(m[1], "org.apache.kafka:kafka_2.13:") || strings.HasPrefix(m[1], "org.apache.kafka:kafka-tools:") && strings.Contains(detail, "kafka_2.13:jar:"+release+" was not found") {
				return fmt.Errorf("%w %s: Maven cannot find org.apache.kafka:kafka_2.13:%s (is it a real release?)", ErrUnresolvable, release, release)
			}
			return fmt.Errorf("%w %s: Maven cannot find %s, which Kafka %s depends on (the release is published incompletely)", ErrUnresolvable, release, m[1], release)
		}
	}
	if strings.Contains(detail, "Could not transfer") || strings.Contains(detail, "Unknown host") {
		return fmt.Errorf("kafkatest: Maven could not download Kafka %s (network or repository unreachable; set %s to use local distributions): %v\n%s", release, EnvKafkaHome, err, detail)
	}
	return fmt.Errorf("kafkatest: Maven failed to resolve Kafka %s: %v\n%s", release, err, detail)
}

// missingRE finds the artifact Maven could not find, in the words of Maven
// 3.8 ("Could not find artifact g:a:jar:v") and 3.9 ("artifacts could not be
// resolved: g:a:jar:v, …").
var missingRE = regexp.MustCompile(`(?:Could not find artifact|could not be resolved:) ([\w.-]+:[\w.-]+:[\w.-]+:[\w.-]+)`)

// offlineRE finds the artifact an offline Maven (-o) lacks: "Cannot access
// central (…) in offline mode and the artifact g:a:jar:v has not been
// downloaded from it before".
var offlineRE = regexp.MustCompile(`in offline mode and the artifact ([\w.-]+:[\w.-]+:[\w.-]+:[\w.-]+) has not been downloaded`)

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
