package reassign

import (
	"fmt"
	"time"
)

// Progress is an [Executor]'s account of a run, delivered to [OnProgress]
// after every poll and once at the end.
type Progress struct {
	// Moves is the number of moves in the run, adopted ones included.
	Moves int
	// Finished counts the moves whose partition has the target replicas, all
	// in sync; Failed those given up (cancelled, rejected, stale) or that
	// completed with an error. Both include moves a crashed run finished.
	Finished, Failed int
	// InFlight counts the moves submitted and not ended, cancellations not
	// yet confirmed included; Pending those not submitted yet.
	InFlight, Pending int
	// Bytes is the data the run copies: each move's replica size (measured
	// with DescribeLogDirs when the run began) once per broker it adds,
	// failed moves excluded. BytesMoved is how much of it is copied: all of
	// a finished move, and for a move in flight the size its new replicas
	// have reached.
	Bytes, BytesMoved int64
	// Rate is the replication throttle now, in bytes per second.
	Rate int64
	// Elapsed is the time since this executor began or resumed the run.
	Elapsed time.Duration
	// ETA estimates the time left: from the copy rate observed once the
	// run has watched it for 10s, before that from the throttle rate on
	// each destination broker. 0 when nothing is left.
	ETA time.Duration
}

// Done returns the number of moves that ended, finished or failed.
func (p Progress) Done() int { return p.Finished + p.Failed }

// String renders the progress on one line: "3/8 moves (1 failed, 2 in
// flight), 12.0 MiB/40.0 MiB copied, ETA 1m10s".
func (p Progress) String() string {
	s := fmt.Sprintf("%d/%d moves (%d failed, %d in flight), %s/%s copied", p.Done(), p.Moves, p.Failed, p.InFlight, mib(p.BytesMoved), mib(p.Bytes))
	if p.ETA > 0 {
		s += ", ETA " + p.ETA.Round(time.Second).String()
	}
	return s
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// eta estimates the time left to copy remaining bytes. Once the run has
// watched for etaWindow and seen at least 1% of the bytes copied, it uses
// the copy rate observed since the first measurement: moved0 bytes at t0,
// moved1 at t1. Before that, it assumes each of dests destination brokers
// copies at the throttle rate, a lower bound. It returns 0 when nothing is
// left or it cannot tell.
func eta(moved0, moved1, remaining int64, t0, t1 time.Time, rate int64, dests int) time.Duration {
	if remaining <= 0 {
		return 0
	}
	copied, dt := moved1-moved0, t1.Sub(t0)
	if dt >= etaWindow && copied > 0 && copied*100 >= copied+remaining {
		return time.Duration(float64(remaining) / (float64(copied) / dt.Seconds()) * float64(time.Second))
	}
	if rate > 0 && dests > 0 {
		return time.Duration(float64(remaining) / (float64(rate) * float64(dests)) * float64(time.Second))
	}
	return 0
}

// etaWindow is how long a run watches the copy rate before trusting it.
const etaWindow = 10 * time.Second

// budget is the time a move may take before it counts as stuck: as Cruise
// Control's expected duration, max(floor, factor × bytes × share / rate),
// where share is the number of moves in flight sharing the busiest of its
// brokers' throttle.
func budget(bytes int64, share int, rate int64, factor float64, floor time.Duration) time.Duration {
	if rate <= 0 || bytes <= 0 {
		return floor
	}
	share = max(share, 1)
	secs := factor * float64(bytes) * float64(share) / float64(rate)
	if secs > float64(1<<62)/float64(time.Second) { // saturate rather than overflow
		return 1 << 62
	}
	return max(floor, time.Duration(secs*float64(time.Second)))
}
