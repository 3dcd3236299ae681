//go:build unix

package benchratio

import (
	"syscall"
	"time"
)

// CPUTime returns the CPU time the process has used, user and system, all
// threads (garbage collector workers included).
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
