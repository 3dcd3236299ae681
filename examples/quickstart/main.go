// Command quickstart upgrades a real local Kafka cluster with zero downtime
// and proves it: it starts a cluster with kafkatest (local JVMs, no Docker),
// runs traffic through it, inspects it, prints the upgrade plan, executes it
// with kupgrade's Runner (health gates, journal, events) and ends with a
// report: per-node restart time, total time, produce latency before, during
// and after the upgrade, and records produced, acknowledged and lost. It exits
// non-zero if any acknowledged record was lost.
//
//	go run ./examples/quickstart                          # KRaft 3.9.2 → 4.4.0, 3 controllers + 3 brokers
//	go run ./examples/quickstart -combined                # 3 combined nodes instead
//	go run ./examples/quickstart -mode zookeeper          # ZooKeeper 3.6.2 → 3.9.2
//	go run ./examples/quickstart -mode zookeeper -to 4.4.0 # 3.6.2 → 3.9.2, migration to KRaft, → 4.4.0
//	go run ./examples/quickstart -from 3.8.1 -via 3.9.2 -to 4.1.2
//	go run ./examples/quickstart -journal /tmp/qs.json    # resumable: rerun after a crash or Ctrl-C
//
// The latency baseline is taken on a warm cluster: traffic first runs until
// the p99 of consecutive 5 s windows agree (at most 90 s; the report says if
// it never settled), then a 20 s window is measured before the upgrade and
// another after it.
//
// With -journal FILE the Runner keeps its progress in FILE, the cluster lives
// in FILE.cluster/ and the plan is kept beside it. If the program is
// interrupted or killed mid-upgrade, its JVMs die with it (on Linux; see
// kafkatest), but their data stays: running it again with the same -journal
// starts the same nodes again from FILE.cluster/ (each on the release it was
// on, see kafkatest.Reopen) and the Runner resumes the same plan from the
// journal. FILE.cluster/ is removed once the upgrade is finished; FILE stays
// as the record of the run. Against a cluster that outlives the program, the
// same holds with your own Orchestrator: Runner.Run with the same plan and
// the same FileJournal resumes.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/health"
	"github.com/kupgrade/kupgrade/kafkatest"
	"github.com/kupgrade/kupgrade/upgrade"
)

type options struct {
	mode, from, to, via string
	combined            bool
	rate                int
	finalize            bool
	journal             string
}

func main() {
	var o options
	flag.StringVar(&o.mode, "mode", "kraft", "cluster mode: kraft or zookeeper")
	flag.StringVar(&o.from, "from", "", "release to start on (default 3.9.2 for KRaft, 3.6.2 for ZooKeeper)")
	flag.StringVar(&o.to, "to", "", "release to upgrade to (default 4.4.0 for KRaft, 3.9.2 for ZooKeeper)")
	flag.StringVar(&o.via, "via", "", "comma-separated releases to stop at on the way (each fully upgraded and finalized)")
	flag.BoolVar(&o.combined, "combined", false, "KRaft: 3 combined nodes instead of 3 controllers + 3 brokers")
	flag.IntVar(&o.rate, "rate", 500, "records per second of traffic")
	flag.BoolVar(&o.finalize, "finalize", true, "run irreversible steps (the IBPV raise, finalizing metadata.version); false stops before them")
	flag.StringVar(&o.journal, "journal", "", "keep the Runner's journal in this file and the cluster in FILE.cluster/, so that a rerun with the same -journal resumes an interrupted upgrade (default: a journal inside a temporary cluster directory, removed at the end)")
	flag.Parse()

	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// session is what a -journal run keeps beside its cluster, so that a rerun
// can reopen the cluster and resume the same plan.
type session struct {
	ClusterDir string         `json:"clusterDir"`
	Mode       string         `json:"mode"`
	From       string         `json:"from"`
	Releases   []string       `json:"releases"` // every release the plan uses
	Plan       upgrade.Plan   `json:"plan"`
	Target     upgrade.Target `json:"target"`
}

const sessionFile = "quickstart.json"

func loadSession(root string) (*session, error) {
	b, err := os.ReadFile(filepath.Join(root, sessionFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s session
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s is damaged: %w", filepath.Join(root, sessionFile), err)
	}
	return &s, nil
}

func (s *session) save(root string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(root, sessionFile)
	if err := os.WriteFile(path+".tmp", append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

func run(o options) (err error) {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		s := <-sigs
		signal.Stop(sigs) // a second Ctrl-C kills at once
		fmt.Printf("\n%v: stopping safely between actions (again to kill at once)\n", s)
		cancel(fmt.Errorf("interrupted by %v", s))
	}()

	var opts []kafkatest.Option
	switch o.mode {
	case "kraft":
		o.from, o.to = or(o.from, "3.9.2"), or(o.to, "4.4.0")
		opts = append(opts, kafkatest.KRaft(o.from))
		if o.combined {
			opts = append(opts, kafkatest.Combined(3))
		}
	case "zookeeper":
		o.from, o.to = or(o.from, "3.6.2"), or(o.to, "3.9.2")
		opts = append(opts, kafkatest.ZooKeeper(o.from))
	default:
		return fmt.Errorf("unknown -mode %q: want kraft or zookeeper", o.mode)
	}
	if o.rate <= 0 {
		return fmt.Errorf("-rate %d: must be positive", o.rate)
	}
	toRelease, err := compat.ParseRelease(o.to)
	if err != nil {
		return fmt.Errorf("-to: %w", err)
	}
	target := upgrade.Target{Version: toRelease}
	var vias []string
	if o.via != "" {
		vias = strings.Split(o.via, ",")
	}
	for _, v := range vias {
		r, err := compat.ParseRelease(v)
		if err != nil {
			return fmt.Errorf("-via: %w", err)
		}
		target.Via = append(target.Via, r)
	}
	releases := append(append([]string{o.from}, vias...), o.to)

	// With -journal, everything of this run lives at paths derived from it.
	var root string // FILE.cluster: the cluster's parent directory and the session
	var sess *session
	if o.journal != "" {
		if o.journal, err = filepath.Abs(o.journal); err != nil {
			return err
		}
		root = o.journal + ".cluster"
		if sess, err = loadSession(root); err != nil {
			return fmt.Errorf("%w (remove %s and %s to start afresh)", err, root, o.journal)
		}
		if sess == nil {
			if _, err := os.Stat(root); err == nil {
				fmt.Printf("removing %s: left by a run that ended before its plan was made, so there is nothing to resume\n", root)
				if err := os.RemoveAll(root); err != nil {
					return err
				}
			}
			if _, err := os.Stat(o.journal); err == nil {
				fmt.Printf("journal %s belongs to an earlier run whose cluster is gone (finished or removed): starting a new run and a new journal\n", o.journal)
				if err := os.Remove(o.journal); err != nil {
					return err
				}
			}
		} else {
			releases = sess.Releases
			fmt.Printf("resuming the upgrade journaled in %s: %s cluster in %s, plan %s (%s → %s); -mode, -from, -to, -via and -combined of the first run apply\n",
				o.journal, sess.Mode, sess.ClusterDir, sess.Plan.ID, sess.From, sess.Target.Version)
			o.mode, o.from, target = sess.Mode, sess.From, sess.Target
		}
	}

	// Resolve every release up front (with Maven, the first time), so the
	// upgrade itself does not wait on downloads.
	for _, r := range releases {
		if _, err := kafkatest.Resolve(ctx, r); err != nil {
			return err
		}
	}

	resumed := sess != nil
	var c *kafkatest.Cluster
	began := time.Now()
	if resumed {
		section("Starting the %s cluster in %s again, each node on the release it was on", o.mode, sess.ClusterDir)
		if c, err = kafkatest.Reopen(ctx, sess.ClusterDir); err != nil {
			return fmt.Errorf("%w\nto start afresh instead: rm -r %s %s", err, root, o.journal)
		}
	} else {
		section("Starting a %s cluster on Kafka %s", o.mode, o.from)
		if root != "" {
			opts = append(opts, kafkatest.Dir(root))
		}
		if c, err = kafkatest.New(ctx, opts...); err != nil {
			if root != "" {
				os.RemoveAll(root)
			}
			return err
		}
	}
	// resumable says whether an interrupted upgrade could be resumed from
	// root (a plan is kept there): then the cluster's directory stays;
	// otherwise it goes.
	resumable := resumed
	defer func() {
		c.Close() // kills the JVMs; removes the directory if kafkatest made it
		switch {
		case root == "":
			fmt.Printf("cluster stopped; removed its directory %s\n", c.Dir())
		case resumable:
			fmt.Printf("\nthe upgrade is not finished; the cluster's processes are gone but its data stays in %s\n"+
				"  resume:          go run ./examples/quickstart -journal %s\n"+
				"  or start afresh: rm -r %s %s\n", c.Dir(), o.journal, root, o.journal)
		default:
			if rerr := os.RemoveAll(root); rerr != nil && err == nil {
				err = rerr
			}
			fmt.Printf("cluster stopped; removed %s (the journal %s stays)\n", root, o.journal)
		}
	}()
	fmt.Printf("cluster %s ready in %v: brokers %v\n", c.Name(), time.Since(began).Round(time.Millisecond), c.Addrs())
	if root == "" {
		fmt.Printf("cluster directory %s (removed at the end; if this program is killed, remove it by hand)\n", c.Dir())
	} else {
		fmt.Printf("cluster directory %s, journal %s\n"+
			"  (kept if the upgrade is interrupted, so that a rerun with the same -journal resumes it; removed once it is finished)\n", c.Dir(), o.journal)
	}

	if !resumed {
		if err := c.CreateTopic(ctx, "orders", 6, 3, map[string]string{"min.insync.replicas": "2"}); err != nil {
			return err
		}
	}
	traffic, err := kafkatest.StartTraffic(ctx, c.Addrs(), "orders", kafkatest.Rate(o.rate))
	if err != nil {
		return err
	}
	defer traffic.Stop(context.Background())
	fmt.Printf("traffic: %d records/s to topic orders (6 partitions, RF 3, min.insync.replicas 2), read back by a consumer group\n", o.rate)
	if resumed {
		fmt.Println("  (records of the interrupted run are not counted: their producer died with it)")
	}

	section("Warming up, then measuring a baseline")
	warm, err := warmUp(ctx, traffic)
	if err != nil {
		return err
	}
	before, err := measure(ctx, traffic, baselineWindow)
	if err != nil {
		return err
	}
	fmt.Printf("baseline (%v): %v\n", baselineWindow, before)

	cl, err := c.NewClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	section("Inspecting")
	in, err := upgrade.Inspect(ctx, cl, upgrade.InspectWith(c), upgrade.InspectControllers(c.ControllerAddrs()...))
	if err != nil {
		return err
	}
	fmt.Print(in)

	var plan upgrade.Plan
	if resumed {
		section("Plan (of the first run, kept in %s)", filepath.Join(root, sessionFile))
		plan = sess.Plan
	} else {
		section("Plan (the dry run)")
		if plan, err = upgrade.NewPlan(in.State, target); err != nil {
			return err
		}
	}
	fmt.Print(plan)

	section("Upgrading")
	// Besides the health gates (partitions, quorum), a canary: before and
	// after each restart every broker must round-trip a record.
	can, err := health.NewCanary(cl)
	if err != nil {
		return err
	}
	if err := can.Ensure(ctx); err != nil {
		return err
	}
	const canaryWithin = 5 * time.Second
	fmt.Printf("canary gate: every broker round-trips a record through topic %s within %v before and after each restart\n", can.Topic(), canaryWithin)
	journal := filepath.Join(c.Dir(), "upgrade-journal.json")
	if root != "" {
		journal = o.journal
		if !resumed {
			sess = &session{ClusterDir: c.Dir(), Mode: o.mode, From: o.from, Releases: releases, Plan: plan, Target: target}
			if err := sess.save(root); err != nil {
				return fmt.Errorf("save the plan for a resumption: %w", err)
			}
		}
		resumable = true
	}
	fmt.Printf("journal %s\n", journal)
	prog := newProgress(plan)
	ropts := []upgrade.RunnerOption{
		upgrade.CanaryGate(can, canaryWithin),
		upgrade.OnEvent(prog.event),
		upgrade.WithJournal(upgrade.NewFileJournal(journal)),
		upgrade.KRaftControllers(c.ControllerAddrs()...),
	}
	if o.finalize {
		ropts = append(ropts, upgrade.PassHolds())
	}
	start := time.Now()
	runner, err := upgrade.NewRunner(cl, c, ropts...)
	if err != nil {
		return err
	}
	runErr := runner.Run(ctx, plan)
	end := time.Now()
	if held, ok := errors.AsType[*upgrade.HeldError](runErr); ok {
		fmt.Printf("stopped before step %d as asked (-finalize=false): %v\n", held.Index+1, held.Step)
		if root != "" {
			fmt.Println("  (rerun with the same -journal and -finalize=true to go on)")
		}
		runErr = nil
	} else if runErr == nil {
		resumable = false
	}

	var after latency
	if ctx.Err() == nil {
		fmt.Printf("\nmeasuring latency after the upgrade (%v)\n", afterWindow)
		if after, err = measure(ctx, traffic, afterWindow); err != nil && runErr == nil {
			runErr = err
		}
	}
	rep, trafficErr := traffic.Stop(context.Background())

	section("Report")
	if ctx.Err() == nil {
		if in, err := upgrade.Inspect(ctx, cl, upgrade.InspectWith(c), upgrade.InspectControllers(c.ControllerAddrs()...)); err == nil {
			fmt.Print(in)
			fmt.Println()
		}
	}
	prog.report(start, end)
	during := traffic.Latency(start, end)
	if warm.steady {
		fmt.Printf("warm-up: latency steady after %v (two consecutive %v windows with p99 within %.0f%%)\n", warm.took.Round(time.Second), warmWindow, 100*steadyTolerance)
	} else {
		fmt.Printf("warm-up: latency NOT steady after %v (last %v windows: p99 %v); the baseline was measured anyway\n", warm.took.Round(time.Second), warmWindow, warm.last)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "produce latency\twindow\trecords\tp50\tp99\tmax")
	row := func(name string, l latency) {
		fmt.Fprintf(w, "%s\t%v\t%d\t%v\t%v\t%v\n", name, l.took.Round(time.Second), l.Count, ms(l.P50), ms(l.P99), ms(l.Max))
	}
	if resumed {
		row("before resuming", before)
	} else {
		row("before the upgrade", before)
	}
	row("during the upgrade", latency{during, end.Sub(start)})
	if after.Count > 0 {
		row("after the upgrade", after)
	}
	w.Flush()
	if before.P99 > 0 {
		fmt.Printf("p99 during ÷ before: %.2f\n", float64(during.P99)/float64(before.P99))
	}
	fmt.Printf("\nrecords: produced %d, acknowledged %d, failed %d, consumed by the group %d, duplicated %d, LOST %d\n",
		rep.Produced, rep.Acknowledged, rep.Failed, rep.Consumed, rep.Duplicated, rep.LostAcknowledged)

	switch {
	case runErr != nil && ctx.Err() != nil:
		return fmt.Errorf("upgrade interrupted: %w", runErr)
	case runErr != nil:
		return fmt.Errorf("upgrade failed: %w", runErr)
	case trafficErr != nil:
		return trafficErr
	case rep.LostAcknowledged > 0:
		return rep.Err()
	}
	if resumed {
		fmt.Printf("\nzero acknowledged records lost since resuming (those of the interrupted run are not verified): the rest of the upgrade %v → %v had no downtime for this topic\n", o.from, target.Version)
		return nil
	}
	fmt.Printf("\nzero acknowledged records lost: the upgrade %v → %v had no downtime for this topic\n", o.from, target.Version)
	return nil
}

// Latency measurement: warm-up windows, and the windows before and after.
const (
	warmWindow      = 5 * time.Second
	warmUpBound     = 90 * time.Second
	steadyTolerance = 0.25                 // p99 of two consecutive windows agree within 25%…
	steadyFloor     = 2 * time.Millisecond // …or within 2 ms, below which differences are noise
	baselineWindow  = 20 * time.Second
	afterWindow     = 20 * time.Second
	answeredWithin  = 30 * time.Second
)

// latency is the produce latency of the records sent in a window of length took.
type latency struct {
	kafkatest.LatencyStats
	took time.Duration
}

func (l latency) String() string {
	return fmt.Sprintf("%d records, p50 %v, p99 %v, max %v", l.Count, ms(l.P50), ms(l.P99), ms(l.Max))
}

// measure lets traffic flow for d (a measurement window, so a fixed length)
// and returns the latency of the records sent in it, once every record sent
// by its end has been answered (so slow ones are not left out).
func measure(ctx context.Context, tr *kafkatest.Traffic, d time.Duration) (latency, error) {
	from := time.Now()
	t := time.NewTimer(d)
	select {
	case <-ctx.Done():
		t.Stop()
		return latency{}, context.Cause(ctx)
	case <-t.C:
	}
	to := time.Now()
	sent := tr.Progress().Produced
	actx, cancel := context.WithTimeoutCause(ctx, answeredWithin,
		fmt.Errorf("records sent in a %v latency window not all answered within %v of its end", d, answeredWithin))
	defer cancel()
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 250*time.Millisecond) {
		if p := tr.Progress(); p.Acknowledged+p.Failed >= sent {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-actx.Done():
			t.Stop()
			return latency{}, context.Cause(actx)
		case <-t.C:
		}
	}
	return latency{tr.Latency(from, to), to.Sub(from)}, nil
}

// warmth is how the warm-up ended.
type warmth struct {
	steady bool
	took   time.Duration
	last   []string // p99 of the last windows, for the report
}

// warmUp lets traffic flow until produce latency is steady: two consecutive
// windows whose p99 agree within steadyTolerance (or steadyFloor). It gives
// up after warmUpBound and says so; the caller measures a baseline anyway.
func warmUp(ctx context.Context, tr *kafkatest.Traffic) (warmth, error) {
	start := time.Now()
	fctx, cancel := context.WithTimeoutCause(ctx, time.Minute, errors.New("no record acknowledged within 1m of starting the traffic"))
	err := tr.WaitAcknowledged(fctx, 1)
	cancel()
	if err != nil {
		return warmth{}, err
	}
	var w warmth
	var prev *latency
	for i := 1; time.Since(start) < warmUpBound; i++ {
		l, err := measure(ctx, tr, warmWindow)
		if err != nil {
			return warmth{}, err
		}
		w.last = append(w.last, ms(l.P99))
		if len(w.last) > 3 {
			w.last = w.last[1:]
		}
		fmt.Printf("warm-up window %d (%v): %v\n", i, warmWindow, l)
		if prev != nil && steady(prev.P99, l.P99) && l.Count > 0 && prev.Count > 0 {
			w.steady, w.took = true, time.Since(start)
			return w, nil
		}
		prev = &l
	}
	w.took = time.Since(start)
	fmt.Printf("latency not steady after %v; measuring the baseline anyway\n", w.took.Round(time.Second))
	return w, nil
}

func steady(a, b time.Duration) bool {
	diff := time.Duration(math.Abs(float64(a - b)))
	return diff <= steadyFloor || float64(diff) <= steadyTolerance*float64(max(a, b))
}

// progress prints one live line per step and keeps per-node restart times.
type progress struct {
	plan     upgrade.Plan
	restart  map[int]time.Time
	restarts []nodeTime
	// The first and last event of each migration phase (plans that
	// migrate from ZooKeeper to KRaft).
	phaseFirst, phaseLast map[upgrade.Phase]time.Time
}

type nodeTime struct {
	step int
	node int32
	took time.Duration
}

func newProgress(p upgrade.Plan) *progress {
	return &progress{plan: p, restart: map[int]time.Time{}, phaseFirst: map[upgrade.Phase]time.Time{}, phaseLast: map[upgrade.Phase]time.Time{}}
}

func (p *progress) event(e upgrade.Event) {
	n := len(p.plan.Steps)
	prefix := ""
	if e.Step >= 0 {
		prefix = fmt.Sprintf("[%2d/%d] ", e.Step+1, n)
		if ph := p.plan.Steps[e.Step].Phase; ph != "" {
			if _, ok := p.phaseFirst[ph]; !ok {
				p.phaseFirst[ph] = e.Time
				fmt.Printf("-- migration phase %s --\n", ph)
			}
			p.phaseLast[ph] = e.Time
		}
	}
	switch e.Kind {
	case upgrade.EventRunStarted:
		fmt.Println(e.Message)
	case upgrade.EventStepStarted:
		if strings.HasPrefix(e.Message, "resuming") {
			fmt.Printf("%s%s\n", prefix, e.Message)
		}
	case upgrade.EventRestarting:
		p.restart[e.Step] = e.Time
		fmt.Printf("%srestarting node %d…\n", prefix, e.Node)
	case upgrade.EventCaughtUp:
		if s, ok := p.restart[e.Step]; ok {
			p.restarts = append(p.restarts, nodeTime{e.Step, e.Node, e.Time.Sub(s)})
		}
	case upgrade.EventStepDone:
		fmt.Printf("%s%-70s done in %v\n", prefix, p.plan.Steps[e.Step], e.Elapsed.Round(100*time.Millisecond))
	case upgrade.EventStepSkipped:
		fmt.Printf("%s%-70s skipped: %s\n", prefix, p.plan.Steps[e.Step], e.Message)
	case upgrade.EventGateBlocked:
		fmt.Printf("%swaiting: %s", prefix, e.Message)
		for i, r := range e.Reasons {
			if i == 2 {
				fmt.Printf("; +%d more", len(e.Reasons)-2)
				break
			}
			fmt.Printf("; %s", r.Message)
		}
		fmt.Println()
	case upgrade.EventStepFailed:
		fmt.Printf("%sFAILED: %v\n", prefix, e.Err)
	}
}

func (p *progress) report(start, end time.Time) {
	var sum time.Duration
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "step\tnode\trestart (stop → caught up)")
	for _, r := range p.restarts {
		fmt.Fprintf(w, "%d\t%d\t%v\n", r.step+1, r.node, r.took.Round(time.Millisecond))
		sum += r.took
	}
	w.Flush()
	total := end.Sub(start)
	fmt.Printf("\ntotal upgrade time %v for %d restarts (sum %v)", total.Round(time.Millisecond), len(p.restarts), sum.Round(time.Millisecond))
	if sum > 0 {
		fmt.Printf("; Runner overhead ratio %.2f", float64(total)/float64(sum))
	}
	fmt.Print("\n\n")
	if len(p.phaseFirst) > 0 {
		fmt.Println("migration phases (first to last event):")
		for _, ph := range slices.Sorted(maps.Keys(p.phaseFirst)) {
			fmt.Printf("  %-14s %v\n", ph, p.phaseLast[ph].Sub(p.phaseFirst[ph]).Round(100*time.Millisecond))
		}
		fmt.Println()
	}
}

func section(format string, args ...any) {
	fmt.Printf("\n== "+format+" ==\n", args...)
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
