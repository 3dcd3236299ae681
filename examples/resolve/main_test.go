package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kupgrade/kupgrade/compat"
)

func TestReport(t *testing.T) {
	known := []compat.Release{compat.MustParseRelease("4.3.1"), compat.MustParseRelease("4.3.2"), compat.MustParseRelease("4.4.0")}
	for _, tt := range []struct {
		served []string
		want   string
	}{
		{[]string{"4.3.1", "4.3.2", "4.4.0"}, "compat knows up to 4.4.0; Maven serves no newer release\n"},
		{[]string{"4.3.2", "4.4.0", "4.4.1", "4.5.0"}, "compat knows up to 4.4.0; Maven serves newer: 4.4.1, 4.5.0\n"},
		{[]string{"4.3.0", "4.3.3", "4.4.0"}, "compat knows up to 4.4.0; Maven serves no newer release\n" +
			"compat lacks older releases Maven serves: 4.3.0, 4.3.3\n"},
	} {
		if diff := cmp.Diff(tt.want, report(releases(tt.served), known)); diff != "" {
			t.Errorf("report(%v) (-want +got):\n%s", tt.served, diff)
		}
	}
}

func TestReleases(t *testing.T) {
	got := releases([]string{"4.5.0", "4.4.0", "4.5.0-rc1", "4.10.0", "4.4.0", "2.4.0", "SNAPSHOT"})
	want := []compat.Release{compat.MustParseRelease("2.4.0"), compat.MustParseRelease("4.4.0"), compat.MustParseRelease("4.5.0"), compat.MustParseRelease("4.10.0")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("releases (-want +got):\n%s", diff)
	}
}

func TestParseList(t *testing.T) {
	out := "\nThe following files have been resolved:\n" +
		"   org.apache.kafka:kafka_2.13:pom:4.4.0:compile:/m2/org/apache/kafka/kafka_2.13/4.4.0/kafka_2.13-4.4.0.pom -- module kafka\n\n"
	v, path, err := parseList([]byte(out))
	if err != nil || v != "4.4.0" || path != "/m2/org/apache/kafka/kafka_2.13/4.4.0/kafka_2.13-4.4.0.pom" {
		t.Errorf("parseList = %q, %q, %v", v, path, err)
	}
	if _, _, err := parseList([]byte("The following files have been resolved:\n   none\n")); err == nil {
		t.Error("parseList without kafka_2.13 succeeded")
	}
}

func TestReadMetadata(t *testing.T) {
	dir := t.TempDir()
	if _, err := readMetadata(dir); err == nil {
		t.Error("readMetadata of an empty directory succeeded")
	}
	md := `<?xml version="1.0" encoding="UTF-8"?>
<metadata>
  <groupId>org.apache.kafka</groupId>
  <artifactId>kafka_2.13</artifactId>
  <versioning>
    <latest>4.4.0</latest>
    <release>4.4.0</release>
    <versions>
      <version>4.3.2</version>
      <version>4.4.0</version>
    </versions>
  </versioning>
</metadata>
`
	if err := os.WriteFile(filepath.Join(dir, "maven-metadata-central.xml"), []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readMetadata(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"4.3.2", "4.4.0"}, got); diff != "" {
		t.Errorf("readMetadata (-want +got):\n%s", diff)
	}
}
