package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/node"
	"github.com/kupgrade/kupgrade/upgrade"
)

// connect loads the config file and opens a client (it connects lazily).
func connect(path string) (*config, *kgo.Client, error) {
	cfg, err := loadConfig(path)
	if err != nil {
		return nil, nil, usageError{err}
	}
	opts, err := cfg.clientOpts()
	if err != nil {
		return nil, nil, usageError{err}
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("client: %w", err)
	}
	return cfg, cl, nil
}

// inspect inspects the cluster, asking the orchestrator for releases.
func inspect(ctx context.Context, cfg *config, cl *kgo.Client) (upgrade.Inspection, error) {
	var opts []upgrade.InspectOption
	orch, err := cfg.orchestrator()
	if err != nil {
		return upgrade.Inspection{}, usageError{err}
	}
	if orch != nil {
		opts = append(opts, upgrade.InspectWith(orch))
	}
	if len(cfg.Controllers) > 0 {
		opts = append(opts, upgrade.InspectControllers(cfg.Controllers...))
	}
	return upgrade.Inspect(ctx, cl, opts...)
}

func cmdInspect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("inspect", "[-config FILE] [-json]", stderr)
	cfgPath := configFlag(fs)
	asJSON := fs.Bool("json", false, "print the inspection as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, cl, err := connect(*cfgPath)
	if err != nil {
		return err
	}
	defer cl.Close()
	in, err := inspect(ctx, cfg, cl)
	if err != nil {
		return err
	}
	if *asJSON {
		b, err := in.JSON()
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	_, err = fmt.Fprintln(stdout, in)
	return err
}

func cmdPlan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("plan", "[-config FILE] -to RELEASE [-via R,…] [-finalize-later] [-o plan.json] [-json]", stderr)
	cfgPath := configFlag(fs)
	to := fs.String("to", "", "the `release` every node runs at the end (required)")
	via := fs.String("via", "", "comma-separated `releases` to stop at on the way")
	later := fs.Bool("finalize-later", false, "hold the finalize steps (metadata.version), so apply stops before them until -pass-holds")
	out := fs.String("o", "", "write the plan as JSON to `file`, for apply")
	asJSON := fs.Bool("json", false, "print the plan as JSON instead of a table")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *to == "" {
		return usageError{errors.New("-to is required (the target release, e.g. -to 4.1.2)")}
	}
	target := upgrade.Target{}
	var err error
	if target.Version, err = compat.ParseRelease(*to); err != nil {
		return usageError{fmt.Errorf("-to: %w", err)}
	}
	if *via != "" {
		for _, v := range strings.Split(*via, ",") {
			r, err := compat.ParseRelease(strings.TrimSpace(v))
			if err != nil {
				return usageError{fmt.Errorf("-via: %w", err)}
			}
			target.Via = append(target.Via, r)
		}
	}
	cfg, cl, err := connect(*cfgPath)
	if err != nil {
		return err
	}
	defer cl.Close()
	in, err := inspect(ctx, cfg, cl)
	if err != nil {
		return err
	}
	var popts []upgrade.PlanOption
	if *later {
		popts = append(popts, upgrade.FinalizeLater())
	}
	plan, err := upgrade.NewPlan(in.State, target, popts...)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(plan, "", "  ")
	if err != nil {
		return err
	}
	if *out != "" {
		if err := writeNew(*out, b); err != nil {
			return err
		}
	}
	if *asJSON {
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	fmt.Fprintln(stdout, plan)
	if *out != "" {
		fmt.Fprintf(stdout, "\nplan %s written to %s; carry it out with: kupgrade apply -plan %s\n", plan.ID, *out, *out)
	}
	return nil
}

// writeNew writes b to path, refusing to replace a plan file: a journal may
// belong to it.
func writeNew(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return usageError{fmt.Errorf("%s exists: a plan file is never replaced (its journal may belong to it); choose another name", path)}
		}
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readPlan reads a plan file.
func readPlan(path string) (upgrade.Plan, error) {
	var p upgrade.Plan
	b, err := os.ReadFile(path)
	if err != nil {
		return p, usageError{err}
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, usageError{fmt.Errorf("plan %s: %w", path, err)}
	}
	return p, nil
}

// runFlags are the flags apply and rollback share.
type runFlags struct {
	cfg, plan, journal *string
	passHolds, plain   *bool
	verbose            *bool
}

func addRunFlags(fs *flag.FlagSet) runFlags {
	return runFlags{
		cfg:       configFlag(fs),
		plan:      fs.String("plan", "", "the plan `file` written by kupgrade plan -o (required)"),
		journal:   fs.String("journal", "", "the journal `file` (default PLAN.journal); the same journal resumes a run"),
		passHolds: fs.Bool("pass-holds", false, "run held steps (irreversible ones, and finalize steps planned with -finalize-later)"),
		plain:     fs.Bool("plain", false, "print plain lines even on a terminal"),
		verbose:   fs.Bool("v", false, "log the Runner's and the commands' details to stderr"),
	}
}

// execute runs plan with journal path jpath, showing progress on stdout.
func execute(ctx context.Context, rf runFlags, plan upgrade.Plan, jpath string, stdout, stderr io.Writer) error {
	cfg, cl, err := connect(*rf.cfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	orch, err := cfg.orchestrator()
	if err != nil {
		return usageError{err}
	}
	if orch == nil {
		return usageError{errors.New(`config: "commands": "restart" is not set: apply needs it`)}
	}
	level := slog.LevelWarn
	if *rf.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	disp := newProgress(stdout, plan, !*rf.plain && isTerminal(stdout))
	defer disp.close()
	opts := []upgrade.RunnerOption{
		upgrade.WithJournal(upgrade.NewFileJournal(jpath)),
		upgrade.OnEvent(disp.event),
		upgrade.WithLogger(log),
	}
	if *rf.passHolds {
		opts = append(opts, upgrade.PassHolds())
	}
	if len(cfg.Controllers) > 0 {
		opts = append(opts, upgrade.KRaftControllers(cfg.Controllers...))
	}
	r, err := upgrade.NewRunner(cl, orch, opts...)
	if err != nil {
		return err
	}
	err = r.Run(ctx, plan)
	disp.close()
	if he, ok := errors.AsType[*upgrade.HeldError](err); ok {
		return heldError{fmt.Errorf("%w\nreview step %d, then run again with -pass-holds (same plan and journal %s)", he, he.Index+1, jpath)}
	}
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w\nstopped; the journal %s records where: run the same command again to resume", err, jpath)
	}
	if err != nil {
		return fmt.Errorf("%w\nthe journal %s records where it stopped: fix the cause and run the same command again to resume, or roll back", err, jpath)
	}
	return nil
}

// heldError marks a run stopped before a held step.
type heldError struct{ err error }

func (e heldError) Error() string { return e.err.Error() }
func (e heldError) Unwrap() error { return e.err }

func journalPath(plan, journal string) string {
	if journal != "" {
		return journal
	}
	return plan + ".journal"
}

func cmdApply(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("apply", "[-config FILE] -plan plan.json [-journal FILE] [-pass-holds] [-plain] [-v]", stderr)
	rf := addRunFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *rf.plan == "" {
		return usageError{errors.New("-plan is required (write one with kupgrade plan -o plan.json)")}
	}
	plan, err := readPlan(*rf.plan)
	if err != nil {
		return err
	}
	return execute(ctx, rf, plan, journalPath(*rf.plan, *rf.journal), stdout, stderr)
}

func cmdRollback(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("rollback", "[-config FILE] -plan plan.json [-journal FILE] [-dry-run] [-pass-holds] [-plain] [-v]", stderr)
	rf := addRunFlags(fs)
	dry := fs.Bool("dry-run", false, "print the rollback plan and stop")
	snap := fs.Duration("snapshot-interval", 0, "the brokers' metadata.log.max.snapshot.interval.ms, which sizes the bake after lowering feature levels (default: the library's, "+upgrade.DefaultMetadataSnapshotInterval.String()+")")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *rf.plan == "" {
		return usageError{errors.New("-plan is required: the plan whose run to undo")}
	}
	plan, err := readPlan(*rf.plan)
	if err != nil {
		return err
	}
	jpath := journalPath(*rf.plan, *rf.journal)
	rec, err := upgrade.NewFileJournal(jpath).Load(ctx)
	if errors.Is(err, upgrade.ErrNoRecord) {
		return fmt.Errorf("journal %s is empty: plan %s never ran, nothing to roll back", jpath, plan.ID)
	}
	if err != nil {
		return err
	}
	var popts []upgrade.PlanOption
	if *snap > 0 {
		popts = append(popts, upgrade.MetadataSnapshotInterval(*snap))
	}
	rb, err := upgrade.NewRollbackPlan(plan, rec, popts...)
	if err != nil {
		return err
	}
	if *dry {
		_, err := fmt.Fprintln(stdout, rb)
		return err
	}
	rbPath := strings.TrimSuffix(*rf.plan, ".json") + ".rollback.json"
	if old, err := readPlan(rbPath); err == nil {
		if old.ID != rb.ID {
			return fmt.Errorf("%s holds rollback plan %s, but the journal now calls for %s: remove it only if that rollback never ran", rbPath, old.ID, rb.ID)
		}
	} else {
		b, err := json.MarshalIndent(rb, "", "  ")
		if err != nil {
			return err
		}
		if err := writeNew(rbPath, b); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "rollback plan %s (written to %s):\n%v\n\n", rb.ID, rbPath, rb)
	return execute(ctx, rf, rb, rbPath+".journal", stdout, stderr)
}

// stepStatus is one line of kupgrade status -json.
type stepStatus struct {
	Index    int               `json:"index"`
	Step     string            `json:"step"`
	Kind     upgrade.StepKind  `json:"kind"`
	Node     int32             `json:"node"`
	State    upgrade.StepState `json:"state"`
	Started  time.Time         `json:"started,omitzero"`
	Finished time.Time         `json:"finished,omitzero"`
	Err      string            `json:"err,omitempty"`
}

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", "-plan plan.json [-journal FILE] [-json]", stderr)
	planPath := fs.String("plan", "", "the plan `file` (required)")
	journal := fs.String("journal", "", "the journal `file` (default PLAN.journal)")
	asJSON := fs.Bool("json", false, "print the steps as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *planPath == "" {
		return usageError{errors.New("-plan is required")}
	}
	plan, err := readPlan(*planPath)
	if err != nil {
		return err
	}
	jpath := journalPath(*planPath, *journal)
	rec, err := upgrade.NewFileJournal(jpath).Load(ctx)
	switch {
	case errors.Is(err, upgrade.ErrNoRecord):
		rec = upgrade.Record{PlanID: plan.ID}
	case err != nil:
		return err
	case rec.PlanID != plan.ID:
		return fmt.Errorf("journal %s belongs to plan %s, not %s (%s)", jpath, rec.PlanID, plan.ID, *planPath)
	}
	var rows []stepStatus
	done := 0
	next := -1
	for i, s := range plan.Steps {
		row := stepStatus{Index: i + 1, Step: s.String(), Kind: s.Kind, Node: s.Node, State: upgrade.StepPending}
		if i < len(rec.Steps) {
			sr := rec.Steps[i]
			row.State, row.Started, row.Finished, row.Err = sr.State, sr.Started, sr.Finished, sr.Err
		}
		switch row.State {
		case upgrade.StepDone, upgrade.StepSkipped:
			done++
		default:
			if next < 0 {
				next = i
			}
		}
		rows = append(rows, row)
	}
	if *asJSON {
		b, err := json.MarshalIndent(struct {
			PlanID  string       `json:"planId"`
			Journal string       `json:"journal"`
			Updated time.Time    `json:"updated,omitzero"`
			Done    bool         `json:"done"`
			Steps   []stepStatus `json:"steps"`
		}{plan.ID, jpath, rec.Updated, done == len(plan.Steps), rows}, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tSTATE\tSTEP\tSTARTED\tTOOK")
	for _, r := range rows {
		state := string(r.State)
		if state == "" {
			state = "pending"
		}
		took := ""
		if !r.Started.IsZero() && !r.Finished.IsZero() {
			took = r.Finished.Sub(r.Started).Round(time.Second).String()
		}
		started := ""
		if !r.Started.IsZero() {
			started = r.Started.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", r.Index, state, r.Step, started, took)
		if r.Err != "" {
			fmt.Fprintf(tw, "\t\terror: %s\t\t\n", r.Err)
		}
	}
	tw.Flush()
	switch {
	case rec.Updated.IsZero():
		fmt.Fprintf(stdout, "\nplan %s has not run (no journal at %s)\n", plan.ID, jpath)
	case next < 0:
		fmt.Fprintf(stdout, "\nplan %s: all %d steps finished (journal updated %s)\n", plan.ID, len(rows), rec.Updated.Local().Format(time.DateTime))
	default:
		fmt.Fprintf(stdout, "\nplan %s: %d of %d steps finished; next: step %d %s (journal updated %s)\n", plan.ID, done, len(rows), next+1, plan.Steps[next], rec.Updated.Local().Format(time.DateTime))
	}
	return nil
}

var _ node.Orchestrator = staticNodes(nil)
