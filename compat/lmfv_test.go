package compat

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCheckMessageFormat(t *testing.T) {
	tests := []struct {
		ibpv, lmfv, reader string
		wantErr            error
	}{
		// Record-format rule, 1.1 to 3.9.
		{"0.10.2", "0.10.0", "2.8.2", nil},
		{"0.10.2", "0.11.0", "2.8.2", ErrInvalidMessageFormat},
		{"0.10.2", "2.8", "2.8.2", ErrInvalidMessageFormat}, // the new default next to an old pin
		{"0.11.0", "2.8", "2.8.2", nil},                     // same record format v2
		{"0.9.0", "0.10.0", "3.5.2", ErrInvalidMessageFormat},
		{"2.8", "0.10.0", "3.9.1", nil},
		// Before 1.1: the IBPV must be at least the LMFV.
		{"0.10.2", "0.10.0", "1.0.2", nil},
		{"0.11.0", "1.0", "1.0.2", ErrInvalidMessageFormat},
		{"1.0", "0.11.0", "1.0.2", nil},
		// Ignored from IBPV 3.0-IV1 on.
		{"3.0", "0.8.0", "3.9.1", nil},
		{"3.0-IV0", "0.10.0", "3.9.1", nil},
		{"3.0-IV0", "3.0", "3.9.1", nil},
		// Removed in 4.0.
		{"3.9", "3.0", "4.0.0", ErrRemovedConfig},
	}
	for _, tt := range tests {
		r := rel(tt.reader)
		reader := r
		if r.AtLeast(v(4, 0)) {
			reader = rel("3.9.1") // 4.x cannot parse these; the check refuses anyway
		}
		ibpv := MustParseMetadataVersion(tt.ibpv, reader)
		lmfv := MustParseMetadataVersion(tt.lmfv, reader)
		err := CheckMessageFormat(ibpv, lmfv, r)
		if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
			t.Errorf("CheckMessageFormat(%v, %v, %v) = %v, want %v", ibpv, lmfv, r, err, tt.wantErr)
		}
	}
}

func TestDefaultMessageFormat(t *testing.T) {
	tests := []struct {
		rel, want string
		wantErr   error
	}{
		{"0.9.0.1", "", ErrRemovedConfig},
		{"0.10.2.1", "0.10.2-IV0", nil},
		{"2.8.2", "2.8-IV1", nil},
		{"3.0.0", "3.0-IV1", nil},
		{"3.9.1", "3.0-IV1", nil},
		{"4.0.0", "", ErrRemovedConfig},
	}
	for _, tt := range tests {
		got, err := DefaultMessageFormat(rel(tt.rel))
		if !errors.Is(err, tt.wantErr) || got.Name != tt.want {
			t.Errorf("DefaultMessageFormat(%v) = %v, %v; want %v, %v", tt.rel, got, err, tt.want, tt.wantErr)
		}
	}
	if !MessageFormatIgnored(mvNamed("3.0-IV1")) || MessageFormatIgnored(mvNamed("3.0-IV0")) {
		t.Errorf("MessageFormatIgnored boundary is not 3.0-IV1")
	}
}

func zkState(release string, ibpv, lmfv ConfigValue, ids ...int32) State {
	s := State{Mode: ModeZooKeeper}
	for _, id := range ids {
		s.Nodes = append(s.Nodes, NodeState{ID: id, Release: rel(release), IBPV: ibpv, LMFV: lmfv})
	}
	return s
}

func TestAdviseMessageFormat(t *testing.T) {
	tests := []struct {
		name  string
		state State
		to    string
		want  MessageFormatAdvice // Reason is not compared
	}{
		{"2.4 default to 2.8: no pin", zkState("2.4.1", Default(), Default(), 1, 2), "2.8.2", MessageFormatAdvice{}},
		{"2.4 default to 3.9: no pin", zkState("2.4.1", Default(), Default(), 1, 2), "3.9.2", MessageFormatAdvice{}},
		{"overridden, target below 3.0: pin and third roll to the new version",
			zkState("2.4.1", Default(), Static("2.1"), 1, 2), "2.8.2",
			MessageFormatAdvice{Pin: "2.1-IV2", ThirdRoll: true, ThirdRollValue: "2.8-IV1"}},
		{"overridden, target 3.x: pin, then clear with the IBPV raise",
			zkState("2.4.1", Default(), Static("2.1"), 1, 2), "3.5.2",
			MessageFormatAdvice{Pin: "2.1-IV2", Clear: true}},
		{"from 0.10: pin the v1 format, third roll unsets it",
			zkState("0.10.2.1", Default(), Default(), 1, 2), "2.8.2",
			MessageFormatAdvice{Pin: "0.10.2-IV0", ThirdRoll: true}},
		{"from 0.9 (no LMFV setting yet): pin the v0 format",
			zkState("0.9.0.1", Default(), Default(), 1), "0.11.0.3",
			MessageFormatAdvice{Pin: "0.9.0", ThirdRoll: true}},
		{"IBPV already 3.x, LMFV set: clear it",
			zkState("3.5.2", Default(), Static("2.8"), 1, 2), "3.9.2",
			MessageFormatAdvice{Clear: true}},
		{"IBPV pinned at 2.8 on 3.5, format default: no pin",
			zkState("3.5.2", Static("2.8"), Default(), 1, 2), "3.9.2",
			MessageFormatAdvice{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AdviseMessageFormat(tt.state, rel(tt.to))
			if err != nil {
				t.Fatal(err)
			}
			if got.Reason == "" {
				t.Errorf("no reason")
			}
			got.Reason = ""
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("AdviseMessageFormat (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := AdviseMessageFormat(zkState("2.4.1", Default(), ConfigValue{}, 1), rel("2.8.2")); !errors.Is(err, ErrIncompleteState) {
		t.Errorf("unknown LMFV: %v, want ErrIncompleteState", err)
	}
}

func TestParseMessageFormat(t *testing.T) {
	tests := []struct {
		in, reader, want string
		wantErr          error
	}{
		{"0.10.2", "2.8.2", "0.10.2-IV0", nil},
		{"2.8", "3.9.1", "2.8-IV1", nil},
		{"3.0", "3.9.1", "3.0-IV1", nil},
		{"3.0", "4.0.0", "", ErrRemovedConfig},
		{"0.9.0", "0.9.0.1", "", ErrRemovedConfig},
		{"nope", "3.9.1", "", ErrInvalidMetadataVersion},
	}
	for _, tt := range tests {
		got, err := ParseMessageFormat(tt.in, rel(tt.reader))
		if !errors.Is(err, tt.wantErr) || got.Name != tt.want {
			t.Errorf("ParseMessageFormat(%q, %v) = %v, %v; want %v, %v", tt.in, tt.reader, got, err, tt.want, tt.wantErr)
		}
	}
}
