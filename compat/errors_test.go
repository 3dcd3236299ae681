package compat

import (
	"errors"
	"strings"
	"testing"
)

// TestErrorMessages checks that every typed error says what it is about and
// unwraps to its sentinel.
func TestErrorMessages(t *testing.T) {
	tests := []struct {
		err      error
		sentinel error
		want     []string
	}{
		{&ReleaseError{Input: "3.x", Reason: "bad", Err: ErrInvalidRelease}, ErrInvalidRelease, []string{`"3.x"`, "invalid release", "bad"}},
		{&ReleaseError{Input: "4.7.0", Reason: "unknown line", Err: ErrUnknownRelease}, ErrUnknownRelease, []string{`"4.7.0"`, "unknown release"}},
		{&MetadataVersionError{Input: "4.0", Reader: rel("3.9.1"), Reason: "no", Err: ErrInvalidMetadataVersion}, ErrInvalidMetadataVersion, []string{`"4.0"`, "3.9.1"}},
		{&DowngradeError{From: mvNamed("3.9-IV0"), To: mvNamed("4.0-IV0"), Err: ErrNotDowngrade}, ErrNotDowngrade, []string{"not a downgrade"}},
		{&DowngradeError{From: mvNamed("4.2-IV1"), To: mvNamed("3.9-IV0"), Blocker: mvNamed("4.0-IV1"), Floor: mvNamed("4.0-IV1"), Err: ErrDowngradePastMetadataChange},
			ErrDowngradePastMetadataChange, []string{"4.0-IV1 (level 23)", "lowest safe target is 4.0-IV1"}},
		{&FeatureError{Feature: "share.version", Level: 2, Reason: "later", Err: ErrUnknownFeature}, ErrUnknownFeature, []string{"share.version=2", "later"}},
		{&MessageFormatError{IBPV: mvNamed("0.10.2-IV0"), LMFV: mvNamed("0.11.0-IV0"), Reader: rel("2.8.2"), Reason: "v2", Err: ErrInvalidMessageFormat},
			ErrInvalidMessageFormat, []string{"0.11.0-IV0", "0.10.2-IV0", "2.8.2"}},
		{&RouteError{Reason: "why", Err: ErrUnsupportedRoute}, ErrUnsupportedRoute, []string{"no route: why"}},
		{&RouteError{Reason: "why", Suggestion: "this", Err: ErrUnsupportedRoute}, ErrUnsupportedRoute, []string{"instead: this"}},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.sentinel) {
			t.Errorf("%v does not wrap %v", tt.err, tt.sentinel)
		}
		msg := tt.err.Error()
		if !strings.HasPrefix(msg, "compat: ") {
			t.Errorf("%q does not start with the package name", msg)
		}
		for _, w := range tt.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%q does not contain %q", msg, w)
			}
		}
	}
	if StaticQuorum.String() != "static" || DynamicQuorum.String() != "dynamic" {
		t.Errorf("Quorum.String")
	}
	if b, _ := ClientPartial.MarshalText(); string(b) != "partial" {
		t.Errorf("ClientSupport.MarshalText = %s", b)
	}
}
