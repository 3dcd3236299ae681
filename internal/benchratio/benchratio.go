// Package benchratio measures a benchmark against a baseline in the same
// run: the ratio of two costs taken side by side stays meaningful on a
// loaded machine, where absolute timings do not.
package benchratio

import (
	"runtime"
	"slices"
	"testing"
	"time"
)

// Loop runs bare and f alternately once per b.Loop iteration, so that both
// see the same machine load, and reports the median over iterations of f's
// cost ÷ bare's cost: "x-bare" by process CPU time (user and system, all
// threads, so the garbage collector's background work counts) and
// "x-bare-wall" by wall time. Each of the two starts after a full collection
// (not timed), so that neither pays for collecting the other's garbage: each
// pays for the collections its own allocations trigger. Only f counts in
// ns/op. On a shared, loaded machine, CPU time is barely affected by other
// processes while wall time includes waiting for a core: x-bare is the
// figure to compare across runs.
func Loop(b *testing.B, bare, f func()) {
	b.Helper()
	var cpu, wall []float64
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		c0, t0 := CPUTime(), time.Now()
		bare()
		cb, tb := CPUTime()-c0, time.Since(t0)
		runtime.GC()
		b.StartTimer()
		c1, t1 := CPUTime(), time.Now()
		f()
		cf, tf := CPUTime()-c1, time.Since(t1)
		cpu = append(cpu, float64(cf)/float64(max(cb, time.Microsecond)))
		wall = append(wall, float64(tf)/float64(tb))
	}
	b.ReportMetric(Median(cpu), "x-bare")
	b.ReportMetric(Median(wall), "x-bare-wall")
}

// Median returns the median of xs (the upper one of an even count), sorting
// xs in place. xs must not be empty.
func Median(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}
