//go:build !linux

package kafkatest

import "os/exec"

// startProcess starts cmd. Outside Linux there is no parent-death signal:
// processes end with Close, the test's cleanups or the signal handlers only.
func startProcess(cmd *exec.Cmd) error { return cmd.Start() }
