// Command resolve makes Kafka releases ready to run for kafkatest: it
// resolves each release's jars with Maven into the cache (see
// kafkatest.Resolve) and prints where they are and how long it took. Run it
// once to warm the cache before tests, for example:
//
//	go run ./examples/resolve 3.6.2 3.9.2 4.1.2
//
// With -check it resolves nothing and instead reports which Kafka releases
// Maven serves (org.apache.kafka:kafka_2.13, from the repositories of the
// user's Maven settings) that compat's catalogue lacks: newer ones, and any
// older patch it misses. It is a reminder to extend compat, not a test:
// it exits 0 whatever it finds, and 1 only if Maven fails.
//
//	go run ./examples/resolve -check
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/kafkatest"
)

func main() {
	check := flag.Bool("check", false, "report the Kafka releases Maven serves that compat does not know, instead of resolving")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: resolve release...\n       resolve -check\n\n"+
			"Resolves Kafka releases (e.g. 3.9.2) for kafkatest and prints their directories.\n"+
			"With -check, reports the releases Maven serves that compat's catalogue lacks.\n")
	}
	flag.Parse()
	if *check == (flag.NArg() > 0) {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *check {
		served, err := servedReleases(ctx)
		if err != nil {
			fmt.Fprintf(os.Stderr, "resolve -check: %v\n", err)
			os.Exit(1)
		}
		fmt.Print(report(served, compat.Releases()))
		return
	}
	failed := false
	for _, rel := range flag.Args() {
		start := time.Now()
		d, err := kafkatest.Resolve(ctx, rel)
		if err != nil {
			fmt.Fprintf(os.Stderr, "resolve %s: %v\n", rel, err)
			failed = true
			continue
		}
		fmt.Printf("%s\t%s\t%s\n", d.Release, d.Dir, time.Since(start).Round(time.Millisecond))
	}
	if failed {
		os.Exit(1)
	}
}

// report says which of the releases Maven serves compat lacks, given the
// releases compat knows (oldest first, as compat.Releases returns them).
func report(served, known []compat.Release) string {
	newest := known[len(known)-1]
	var newer, missing []string
	for _, r := range served {
		switch {
		case newest.Less(r):
			newer = append(newer, r.String())
		case !slices.Contains(known, r):
			missing = append(missing, r.String())
		}
	}
	var b strings.Builder
	if len(newer) == 0 {
		fmt.Fprintf(&b, "compat knows up to %v; Maven serves no newer release\n", newest)
	} else {
		fmt.Fprintf(&b, "compat knows up to %v; Maven serves newer: %s\n", newest, strings.Join(newer, ", "))
	}
	if len(missing) > 0 {
		fmt.Fprintf(&b, "compat lacks older releases Maven serves: %s\n", strings.Join(missing, ", "))
	}
	return b.String()
}

// checkPom is a Maven project whose one dependency is the newest
// kafka_2.13 from a release on: Maven resolves the version range with the
// repositories' metadata, fetching the POM only (no transitive
// dependencies, no jar).
const checkPom = `<project>
  <modelVersion>4.0.0</modelVersion>
  <groupId>kupgrade.check</groupId>
  <artifactId>served-kafka-releases</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>[%s,)</version><type>pom</type>
      <exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion></exclusions>
    </dependency>
  </dependencies>
</project>
`

// servedReleases asks Maven which Kafka releases it serves, oldest first.
// Maven resolves kafka_2.13 in the range [compat.Newest(),) with fresh
// metadata (-U) and lists the POM it chose, which is the newest release
// served; the repository metadata Maven keeps next to it in its local
// repository lists every release. If that metadata cannot be read, the
// newest release alone is returned.
func servedReleases(ctx context.Context) ([]compat.Release, error) {
	dir, err := os.MkdirTemp("", "kupgrade-check-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	pom, list := filepath.Join(dir, "pom.xml"), filepath.Join(dir, "list.txt")
	if err := os.WriteFile(pom, fmt.Appendf(nil, checkPom, compat.Newest()), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "mvn", "-B", "-U", "-q", "-f", pom,
		"org.apache.maven.plugins:maven-dependency-plugin:3.6.1:list",
		"-DoutputAbsoluteArtifactFilename=true", "-DoutputFile="+list)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mvn dependency:list: %v\n%s", err, bytes.TrimSpace(out))
	}
	b, err := os.ReadFile(list)
	if err != nil {
		return nil, err
	}
	newest, pomPath, err := parseList(b)
	if err != nil {
		return nil, err
	}
	versions, err := readMetadata(filepath.Dir(filepath.Dir(pomPath)))
	if err != nil {
		fmt.Fprintf(os.Stderr, "resolve -check: listing only the newest release: %v\n", err)
	}
	return releases(append(versions, newest)), nil
}

// parseList finds kafka_2.13 in the output file of dependency:list with
// absolute file names ("g:a:pom:v:compile:/path/a-v.pom") and returns its
// version and file.
func parseList(b []byte) (version, path string, err error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		fields := strings.SplitN(strings.TrimSpace(sc.Text()), ":", 6)
		if len(fields) == 6 && fields[0] == "org.apache.kafka" && fields[1] == "kafka_2.13" {
			path, _, _ = strings.Cut(fields[5], " ") // Maven may append " -- module …"
			return fields[3], path, nil
		}
	}
	return "", "", fmt.Errorf("Maven listed no org.apache.kafka:kafka_2.13:\n%s", b)
}

// readMetadata returns the versions in the repository metadata in an
// artifact's directory of a local repository: maven-metadata-<repository
// id>.xml, the most recently updated one if there are several.
func readMetadata(dir string) ([]string, error) {
	files, _ := filepath.Glob(filepath.Join(dir, "maven-metadata-*.xml"))
	var newest string
	var newestMod time.Time
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil && fi.ModTime().After(newestMod) {
			newest, newestMod = f, fi.ModTime()
		}
	}
	if newest == "" {
		return nil, fmt.Errorf("no maven-metadata-*.xml in %s", dir)
	}
	b, err := os.ReadFile(newest)
	if err != nil {
		return nil, err
	}
	var md struct {
		Versions []string `xml:"versioning>versions>version"`
	}
	if err := xml.Unmarshal(b, &md); err != nil {
		return nil, fmt.Errorf("%s: %w", newest, err)
	}
	if len(md.Versions) == 0 {
		return nil, errors.New(newest + " lists no versions")
	}
	return md.Versions, nil
}

// releases parses the versions that are Kafka releases, drops the rest
// (such as release candidates) and duplicates, and sorts them.
func releases(versions []string) []compat.Release {
	var out []compat.Release
	for _, v := range versions {
		if r, err := compat.ParseRelease(v); err == nil && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, compat.Release.Compare)
	return out
}
