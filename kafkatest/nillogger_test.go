package kafkatest

import (
	"strings"
	"testing"
)

// TestNilLoggerRefused proves Logger(nil) is refused before any process
// starts, not found out by a panic at the first log line.
func TestNilLoggerRefused(t *testing.T) {
	cfg := defaultConfig()
	for _, o := range []Option{KRaft("4.1.1"), Logger(nil)} {
		o.apply(&cfg)
	}
	if err := cfg.finish(); err == nil || !strings.Contains(err.Error(), "Logger(nil)") {
		t.Fatalf("finish() = %v, want the Logger(nil) refusal", err)
	}
}
