package upgrade

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/node"
)

// TestSecretsNeverRendered proves that a secret in a restart's config
// change (sasl.jaas.config, a key store password) shows in no plan table,
// step description, event, log line or error of a run, while the
// Orchestrator receives it as it is.
func TestSecretsNeverRendered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const jaas = `org.apache.kafka.common.security.scram.ScramLoginModule required username="kupgrade" password="s3cr3t-jaas";`
		const pass = "s3cr3t-pass"
		f := newFakeCluster(compat.ModeKRaft, "3.9.2", 3, 3)
		f.levels["metadata.version"] = 21
		f.failNode = 6 // the last broker fails, so a StepError is rendered too
		plan := kraftPlan(t, f, "4.1.2")
		for i, s := range plan.Steps {
			if s.Kind == StepRestart && slices.Contains(s.Roles, node.RoleBroker) {
				plan.Steps[i].Change.Set = map[string]string{"sasl.jaas.config": jaas, "ssl.keystore.password": pass}
			}
		}
		plan.ID = planID(plan)

		var logs bytes.Buffer
		var events []string
		r := mustRunner(t, nil, f, withOps(f), PassHolds(),
			WithLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
			OnEvent(func(e Event) { events = append(events, e.String()) }))
		err := r.Run(t.Context(), plan)
		if _, ok := errors.AsType[*StepError](err); !ok {
			t.Fatalf("Run = %v, want the StepError of node 6", err)
		}
		rendered := map[string]string{
			"plan table": plan.String(),
			"steps":      fmt.Sprint(plan.Steps),
			"error":      err.Error(),
			"events":     strings.Join(events, "\n"),
			"logs":       logs.String(),
		}
		for what, s := range rendered {
			if strings.Contains(s, "s3cr3t") {
				t.Errorf("the %s show a secret:\n%s", what, s)
			}
		}
		if !strings.Contains(rendered["plan table"], "sasl.jaas.config=REDACTED") || !strings.Contains(rendered["events"], "ssl.keystore.password=REDACTED") {
			t.Errorf("the plan table and events should name the redacted keys:\n%s\n%s", rendered["plan table"], rendered["events"])
		}
		f.mu.Lock()
		got := f.nodes[4].config["sasl.jaas.config"]
		f.mu.Unlock()
		if got != jaas {
			t.Errorf("the Orchestrator got sasl.jaas.config %q, want the real value", got)
		}
	})
}
