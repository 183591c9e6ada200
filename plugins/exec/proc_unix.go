//go:build unix && !linux

package main

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the command in a process group of its own, so that a
// timeout kills everything it started.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killGroup kills the process group led by pid; a group already gone is
// fine.
func killGroup(pid int) error {
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
		return err
	}
	return nil
}
