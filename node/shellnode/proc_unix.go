//go:build unix

package shellnode

import (
	"os/exec"
	"syscall"
)

// setProcessGroup runs cmd in its own process group and makes a timeout kill
// the whole group, so that `sh -c "ssh …"` does not leave its children behind.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
