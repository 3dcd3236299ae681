package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/kupgrade/kupgrade/upgrade"
)

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progress shows a run's events: on a terminal, a line per finished step
// under a status line redrawn every second (step, what it waits for, for how
// long); otherwise one plain, timestamped line per event, for logs and CI.
type progress struct {
	w    io.Writer
	plan upgrade.Plan
	tty  bool

	mu       sync.Mutex
	status   string    // what the current step does
	since    time.Time // when status began
	step     int       // current step index, -1 for none
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

func newProgress(w io.Writer, plan upgrade.Plan, tty bool) *progress {
	p := &progress{w: w, plan: plan, tty: tty, step: -1, stop: make(chan struct{})}
	if tty {
		p.wg.Go(p.redraw)
	}
	return p
}

// redraw refreshes the status line every second until close.
func (p *progress) redraw() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			p.drawLocked()
			p.mu.Unlock()
		}
	}
}

// drawLocked redraws the status line.
func (p *progress) drawLocked() {
	if p.status == "" {
		return
	}
	line := fmt.Sprintf("[%d/%d] %s (%v)", p.step+1, len(p.plan.Steps), p.status, time.Since(p.since).Round(time.Second))
	if r := []rune(line); len(r) > 160 { // one terminal line, cut on a rune
		line = string(r[:157]) + "..."
	}
	fmt.Fprintf(p.w, "\r\033[K%s", line)
}

// event shows one Runner event.
func (p *progress) event(e upgrade.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.tty {
		fmt.Fprintf(p.w, "%s %s\n", e.Time.Format("15:04:05"), e)
		return
	}
	permanent := func(s string) {
		fmt.Fprintf(p.w, "\r\033[K%s\n", s)
	}
	stepName := func() string {
		if e.Step >= 0 && e.Step < len(p.plan.Steps) {
			return fmt.Sprintf("step %d/%d %s", e.Step+1, len(p.plan.Steps), p.plan.Steps[e.Step])
		}
		return ""
	}
	switch e.Kind {
	case upgrade.EventRunStarted, upgrade.EventHeld:
		permanent(e.String())
	case upgrade.EventRunDone:
		p.status = ""
		permanent(e.String())
	case upgrade.EventStepStarted:
		p.step, p.since, p.status = e.Step, time.Now(), stepName()
	case upgrade.EventStepDone, upgrade.EventStepSkipped:
		p.status = ""
		mark := "✓"
		if e.Kind == upgrade.EventStepSkipped {
			mark = "-"
		}
		permanent(fmt.Sprintf("%s %s [%v]", mark, stepName(), e.Elapsed.Round(time.Second)))
	case upgrade.EventStepFailed:
		p.status = ""
		permanent(fmt.Sprintf("✗ %s: %v", stepName(), e.Err))
	default: // gate-blocked, restarting, waiting, …: the status line says it
		what := string(e.Kind)
		if e.Message != "" {
			what += ": " + e.Message
		}
		if len(e.Reasons) > 0 {
			what += " (" + e.Reasons[0].String() + ")"
		}
		p.status = stepName() + " — " + strings.ReplaceAll(what, "\n", " ")
	}
	p.drawLocked()
}

// close stops the redraw and ends the status line.
func (p *progress) close() {
	p.stopOnce.Do(func() {
		close(p.stop)
		p.wg.Wait()
		p.mu.Lock()
		if p.tty && p.status != "" {
			fmt.Fprintln(p.w)
		}
		p.status = ""
		p.mu.Unlock()
	})
}
