package compat

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

// TestParseShortForms checks the short-form table of the Kafka reference
// (section 1.4): the 3.9.x column matches MetadataVersionTest at tag 3.9.1.
func TestParseShortForms(t *testing.T) {
	tests := []struct {
		in       string
		by39     string // "" = error
		by42     string
		level39  int16
		unstable bool
	}{
		{"0.8.0", "0.8.0", "", -1, false},
		{"0.8.1", "0.8.1", "", -1, false},
		{"0.8.2", "0.8.2", "", -1, false},
		{"0.9.0", "0.9.0", "", -1, false},
		{"0.10.0", "0.10.0-IV1", "", -1, false},
		{"0.10.1", "0.10.1-IV2", "", -1, false},
		{"0.10.2", "0.10.2-IV0", "", -1, false},
		{"0.11.0", "0.11.0-IV2", "", -1, false},
		{"1.0", "1.0-IV0", "", -1, false},
		{"1.1", "1.1-IV0", "", -1, false},
		{"2.0", "2.0-IV1", "", -1, false},
		{"2.1", "2.1-IV2", "", -1, false},
		{"2.2", "2.2-IV1", "", -1, false},
		{"2.3", "2.3-IV1", "", -1, false},
		{"2.4", "2.4-IV1", "", -1, false},
		{"2.5", "2.5-IV0", "", -1, false},
		{"2.6", "2.6-IV0", "", -1, false},
		{"2.7", "2.7-IV2", "", -1, false},
		{"2.8", "2.8-IV1", "", -1, false},
		{"3.0", "3.0-IV1", "", 1, false},
		{"3.1", "3.1-IV0", "", 2, false},
		{"3.2", "3.2-IV0", "", 3, false},
		{"3.3", "3.3-IV3", "3.3-IV3", 7, false},
		{"3.4", "3.4-IV0", "3.4-IV0", 8, false},
		{"3.5", "3.5-IV2", "3.5-IV2", 11, false},
		{"3.6", "3.6-IV2", "3.6-IV2", 14, false},
		{"3.7", "3.7-IV4", "3.7-IV4", 19, false},
		{"3.8", "3.8-IV0", "3.8-IV0", 20, false},
		{"3.9", "3.9-IV0", "3.9-IV0", 21, false},
		{"4.0", "", "4.0-IV3", 0, false},
		{"4.1", "", "4.1-IV1", 0, false},
		{"4.2", "", "4.2-IV1", 0, false},
		{"4.3", "", "", 0, false}, // unstable in 4.2: the short form maps production versions only
	}
	r39, r42 := rel("3.9.1"), rel("4.2.1")
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseMetadataVersion(tt.in, r39)
			switch {
			case tt.by39 == "" && err == nil:
				t.Errorf("3.9 parsed %q as %v, want an error", tt.in, got)
			case tt.by39 != "" && (err != nil || got.Name != tt.by39 || got.Level != tt.level39):
				t.Errorf("3.9 parsed %q as %v (level %d), %v; want %v (level %d)", tt.in, got, got.Level, err, tt.by39, tt.level39)
			}
			got, err = ParseMetadataVersion(tt.in, r42)
			switch {
			case tt.by42 == "" && err == nil:
				t.Errorf("4.2 parsed %q as %v, want an error", tt.in, got)
			case tt.by42 != "" && (err != nil || got.Name != tt.by42):
				t.Errorf("4.2 parsed %q as %v, %v; want %v", tt.in, got, err, tt.by42)
			}
		})
	}
}

func TestParseMetadataVersionEdgeCases(t *testing.T) {
	tests := []struct {
		in, reader string
		want       string // "" = error
		unstable   bool
	}{
		// 3.x keeps three segments for "0.": the fourth, with its -IV0, is dropped.
		{"0.10.0.0-IV0", "3.9.1", "0.10.0-IV1", false},
		{"0.10.0-IV0", "3.9.1", "0.10.0-IV0", false},
		{"0.10.0.0", "3.9.1", "0.10.0-IV1", false},
		{"0.9.0.1", "3.9.1", "0.9.0", false},
		// …and two otherwise: "1.0.1" is 1.0.
		{"1.0.1", "3.9.1", "1.0-IV0", false},
		{"2.8.2", "3.9.1", "2.8-IV1", false},
		{"3.6-IV2.5", "3.9.1", "3.6-IV2", false}, // Java keeps "3.6-IV2" as the first two segments
		{"3.6.", "3.9.1", "", false},             // Java's split drops the trailing empty part: the key stays "3.6."
		{"3.6-IV9", "3.9.1", "", false},
		{"", "3.9.1", "", false},
		{".", "3.9.1", "", false},
		{"...", "3.9.1", "", false},
		{"3", "3.9.1", "", false},
		// 3.9 reads "4.0" as an error but its unstable full names, with 3.9's meaning.
		{"4.0", "3.9.1", "", false},
		{"4.0-IV0", "3.9.1", "4.0-IV0", true},
		{"4.0-IV1", "3.9.1", "4.0-IV1", true},
		{"4.0-IV2", "3.9.1", "", false},
		// 3.6 and older: the short form maps to the newest constant of the line.
		{"3.6", "3.6.2", "3.6-IV2", false},
		{"3.7", "3.6.2", "", false},
		{"3.7", "3.7.2", "3.7-IV4", false},
		{"3.8", "3.7.2", "", false}, // 3.8-IV0 is unstable in 3.7
		{"3.8-IV0", "3.7.2", "3.8-IV0", true},
		{"2.8", "2.8.0", "2.8-IV1", false},
		{"3.0", "2.8.0", "", false},
		{"0.10.2", "0.10.2.1", "0.10.2-IV0", false},
		{"0.11.0", "0.10.2.1", "", false},
		// 4.x: two segments always, nothing below 3.3-IV3.
		{"0.10.0", "4.0.0", "", false},
		{"3.3-IV2", "4.0.0", "", false},
		{"3.3-IV3", "4.0.0", "3.3-IV3", false},
		{"3.3", "4.0.0", "3.3-IV3", false},
		{"3.9.1", "4.0.0", "3.9-IV0", false},
		{"4.1-IV0", "4.0.0", "4.1-IV0", true}, // 4.0/4.1 still parse unstable full names
		{"4.1", "4.0.0", "", false},
		{"4.2-IV1", "4.1.1", "4.2-IV1", true},
		{"4.3-IV0", "4.2.1", "", false}, // 4.2+ refuse unstable versions (KAFKA-19544)
		{"4.3-IV0", "4.3.0", "4.3-IV0", false},
		{"4.3", "4.3.0", "4.3-IV0", false},
		{"4.4", "4.4.0", "4.4-IV2", false},
		{"4.4-IV0", "4.4.0", "4.4-IV0", false},
		{"4.5-IV0", "4.4.0", "", false},
		{"4.4-IV0", "4.3.1", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.reader+"/"+tt.in, func(t *testing.T) {
			got, err := ParseMetadataVersion(tt.in, rel(tt.reader))
			if tt.want == "" {
				if err == nil {
					t.Fatalf("parsed as %v, want an error", got)
				}
				if !errors.Is(err, ErrInvalidMetadataVersion) {
					t.Errorf("error %v does not wrap ErrInvalidMetadataVersion", err)
				}
				if !strings.Contains(err.Error(), strconv.Quote(tt.in)) {
					t.Errorf("error %q does not quote the input", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if got.Name != tt.want || got.Unstable != tt.unstable {
				t.Errorf("got %v (unstable %v), want %v (unstable %v)", got, got.Unstable, tt.want, tt.unstable)
			}
			// parse → String → parse round-trips.
			again, err := ParseMetadataVersion(got.String(), rel(tt.reader))
			if err != nil || again != got {
				t.Errorf("round trip: %v, %v", again, err)
			}
		})
	}
	if _, err := ParseMetadataVersion("3.9", rel("4.5.0")); !errors.Is(err, ErrUnknownRelease) {
		t.Errorf("unknown reader: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Errorf("MustParseMetadataVersion did not panic")
		}
	}()
	MustParseMetadataVersion("nope", rel("3.9.1"))
}

// TestParseEveryName checks that every reader parses the full name of every
// constant it defines back to itself.
func TestParseEveryName(t *testing.T) {
	for _, r := range Releases() {
		l, _ := lineOf(r)
		for _, mv := range l.definedBy() {
			got, err := ParseMetadataVersion(mv.Name, r)
			if mv.Unstable && l.parse == parseRejectUnstable {
				if err == nil {
					t.Errorf("%v accepted unstable %v", r, mv)
				}
				continue
			}
			if err != nil || got != mv {
				t.Errorf("%v: ParseMetadataVersion(%q) = %v, %v", r, mv.Name, got, err)
			}
		}
	}
}
