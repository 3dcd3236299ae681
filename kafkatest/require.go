package kafkatest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// EnvRequireKafka names an environment variable that, when "1" or "true",
// makes [RequireTools] fail a test instead of skipping it when Java or Maven
// is missing. CI=true has the same effect.
const EnvRequireKafka = "KUPGRADE_REQUIRE_KAFKA"

// RequireTools checks that this machine can run real Kafka: a java launcher,
// and Maven unless [EnvKafkaHome] points at distributions. When they are
// missing it skips the test with the reason, or fails it when CI=true or
// KUPGRADE_REQUIRE_KAFKA is set, so that real-Kafka tests never silently skip
// in CI. [Start] calls it.
func RequireTools(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var problem error
	if _, _, err := findJava(ctx, ""); err != nil {
		problem = err
	} else if os.Getenv(EnvKafkaHome) == "" {
		if _, err := exec.LookPath("mvn"); err != nil {
			problem = ErrMavenMissing
		}
	}
	if problem == nil {
		return
	}
	if mustRunKafka() {
		t.Fatalf("real-Kafka test cannot run: %v", problem)
	}
	t.Skipf("real-Kafka test skipped: %v (CI=true or %s=1 turns this into a failure)", problem, EnvRequireKafka)
}

func mustRunKafka() bool {
	for _, v := range []string{os.Getenv("CI"), os.Getenv(EnvRequireKafka)} {
		if v == "1" || v == "true" || v == "TRUE" || v == "True" {
			return true
		}
	}
	return false
}
