package kafkatest

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// On Linux every JVM is started with a parent-death signal, so it is killed
// even when the Go process dies without running its cleanups (SIGKILL, a
// test binary's timeout panic). The signal fires when the *thread* that
// started the child exits, so all children are started from one goroutine
// locked to a thread that lives as long as the process.

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

var (
	spawnOnce sync.Once
	spawnCh   chan spawnReq
)

func startProcess(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnCh = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread must outlive every child
			for r := range spawnCh {
				r.done <- r.cmd.Start()
			}
		}()
	})
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	done := make(chan error, 1)
	spawnCh <- spawnReq{cmd, done}
	return <-done
}
