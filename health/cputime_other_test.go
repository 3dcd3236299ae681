//go:build !unix

package health_test

import "time"

var start = time.Now()

// cpuTime stands in for the process CPU time where getrusage is missing:
// wall time since the test binary started.
func cpuTime() time.Duration { return time.Since(start) }
