// Command quickstart upgrades a real local Kafka cluster with zero downtime
// and proves it: it starts a cluster with kafkatest (local JVMs, no Docker),
// runs traffic through it, inspects it, prints the upgrade plan, executes it
// with kupgrade's Runner (health gates, journal, events) and ends with a
// report: per-node restart time, total time, produce latency before and
// during the upgrade, and records produced, acknowledged and lost. It exits
// non-zero if any acknowledged record was lost.
//
//	go run ./examples/quickstart                          # KRaft 3.9.2 → 4.4.0, 3 controllers + 3 brokers
//	go run ./examples/quickstart -combined                # 3 combined nodes instead
//	go run ./examples/quickstart -mode zookeeper          # ZooKeeper 3.6.2 → 3.9.2
//	go run ./examples/quickstart -from 3.8.1 -via 3.9.2 -to 4.1.2
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/kupgrade/kupgrade/health"
	"github.com/kupgrade/kupgrade/kafkatest"
	"github.com/kupgrade/kupgrade/upgrade"
)

func main() {
	mode := flag.String("mode", "kraft", "cluster mode: kraft or zookeeper")
	from := flag.String("from", "", "release to start on (default 3.9.2 for KRaft, 3.6.2 for ZooKeeper)")
	to := flag.String("to", "", "release to upgrade to (default 4.4.0 for KRaft, 3.9.2 for ZooKeeper)")
	via := flag.String("via", "", "comma-separated releases to stop at on the way (each fully upgraded and finalized)")
	combined := flag.Bool("combined", false, "KRaft: 3 combined nodes instead of 3 controllers + 3 brokers")
	rate := flag.Int("rate", 500, "records per second of traffic")
	finalize := flag.Bool("finalize", true, "run irreversible steps (the IBPV raise, finalizing metadata.version); false stops before them")
	flag.Parse()

	if err := run(*mode, *from, *to, *via, *combined, *rate, *finalize); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(mode, from, to, via string, combined bool, rate int, finalize bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var opts []kafkatest.Option
	switch mode {
	case "kraft":
		from, to = or(from, "3.9.2"), or(to, "4.4.0")
		opts = append(opts, kafkatest.KRaft(from))
		if combined {
			opts = append(opts, kafkatest.Combined(3))
		}
	case "zookeeper":
		from, to = or(from, "3.6.2"), or(to, "3.9.2")
		opts = append(opts, kafkatest.ZooKeeper(from))
	default:
		return fmt.Errorf("unknown -mode %q: want kraft or zookeeper", mode)
	}
	if rate <= 0 {
		return fmt.Errorf("-rate %d: must be positive", rate)
	}
	target := upgrade.Target{Version: to}
	if via != "" {
		target.Via = strings.Split(via, ",")
	}
	// Resolve every release up front (with Maven, the first time), so the
	// upgrade itself does not wait on downloads.
	for _, r := range append(append([]string{from}, target.Via...), to) {
		if _, err := kafkatest.Resolve(ctx, r); err != nil {
			return err
		}
	}

	section("Starting a %s cluster on Kafka %s", mode, from)
	began := time.Now()
	c, err := kafkatest.New(ctx, opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Printf("cluster %s ready in %v: brokers %v\n", c.Name(), time.Since(began).Round(time.Millisecond), c.Addrs())

	if err := c.CreateTopic(ctx, "orders", 6, 3, map[string]string{"min.insync.replicas": "2"}); err != nil {
		return err
	}
	traffic, err := kafkatest.StartTraffic(ctx, c.Addrs(), "orders", kafkatest.Rate(rate))
	if err != nil {
		return err
	}
	defer traffic.Stop(context.Background())
	fmt.Printf("traffic: %d records/s to topic orders (6 partitions, RF 3, min.insync.replicas 2), read back by a consumer group\n", rate)
	// Warm up (the producer's first metadata and id), then measure a
	// baseline of about 5 s.
	if err := traffic.WaitAcknowledged(ctx, int64(rate)); err != nil {
		return err
	}
	baseline := time.Now()
	if err := traffic.WaitAcknowledged(ctx, int64(rate*6)); err != nil {
		return err
	}

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

	section("Plan (the dry run)")
	plan, err := upgrade.NewPlan(in.State, target)
	if err != nil {
		return err
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
	prog := newProgress(plan)
	ropts := []upgrade.Option{
		upgrade.CanaryGate(can, canaryWithin),
		upgrade.OnEvent(prog.event),
		upgrade.WithJournal(upgrade.NewFileJournal(filepath.Join(c.Dir(), "upgrade-journal.json"))),
		upgrade.ControllerAddrs(c.ControllerAddrs()...),
	}
	if finalize {
		ropts = append(ropts, upgrade.PassHolds())
	}
	start := time.Now()
	runErr := upgrade.NewRunner(cl, c, ropts...).Run(ctx, plan)
	end := time.Now()
	if held, ok := errors.AsType[*upgrade.HeldError](runErr); ok {
		fmt.Printf("stopped before step %d as asked (-finalize=false): %v\n", held.Index+1, held.Step)
		runErr = nil
	}

	if err := traffic.WaitAcknowledged(ctx, traffic.Progress().Acknowledged+int64(rate)); err != nil && runErr == nil {
		runErr = err
	}
	rep, trafficErr := traffic.Stop(context.Background())

	section("Report")
	if after, err := upgrade.Inspect(ctx, cl, upgrade.InspectWith(c), upgrade.InspectControllers(c.ControllerAddrs()...)); err == nil {
		fmt.Print(after)
		fmt.Println()
	}
	prog.report(start, end)
	before, during := traffic.Latency(baseline, start), traffic.Latency(start, end)
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "produce latency\trecords\tp50\tp99\tmax")
	fmt.Fprintf(w, "before the upgrade\t%d\t%v\t%v\t%v\n", before.Count, ms(before.P50), ms(before.P99), ms(before.Max))
	fmt.Fprintf(w, "during the upgrade\t%d\t%v\t%v\t%v\n", during.Count, ms(during.P50), ms(during.P99), ms(during.Max))
	w.Flush()
	fmt.Printf("\nrecords: produced %d, acknowledged %d, failed %d, consumed by the group %d, duplicated %d, LOST %d\n",
		rep.Produced, rep.Acknowledged, rep.Failed, rep.Consumed, rep.Duplicated, rep.LostAcknowledged)

	switch {
	case runErr != nil:
		return fmt.Errorf("upgrade failed: %w", runErr)
	case trafficErr != nil:
		return trafficErr
	case rep.LostAcknowledged > 0:
		return rep.Err()
	}
	fmt.Printf("\nzero acknowledged records lost: the upgrade %v → %v had no downtime for this topic\n", from, to)
	return nil
}

// progress prints one live line per step and keeps per-node restart times.
type progress struct {
	plan     upgrade.Plan
	restart  map[int]time.Time
	restarts []nodeTime
}

type nodeTime struct {
	step int
	node int32
	took time.Duration
}

func newProgress(p upgrade.Plan) *progress { return &progress{plan: p, restart: map[int]time.Time{}} }

func (p *progress) event(e upgrade.Event) {
	n := len(p.plan.Steps)
	prefix := ""
	if e.Step >= 0 {
		prefix = fmt.Sprintf("[%2d/%d] ", e.Step+1, n)
	}
	switch e.Kind {
	case upgrade.EventRestarting:
		p.restart[e.Step] = e.Time
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
