//go:build !unix

package benchratio

import "time"

var start = time.Now()

// CPUTime stands in for the process CPU time where getrusage is missing:
// wall time since the test binary started.
func CPUTime() time.Duration { return time.Since(start) }
