package testenv

import (
	"os/exec"
	"syscall"
)

// killWithParent makes the kernel kill the child if the test binary dies
// before its Cleanup runs (panic, timeout), so no server outlives a test run.
func killWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
