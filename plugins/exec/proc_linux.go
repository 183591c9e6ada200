package main

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the command in a process group of its own, so that a
// timeout kills everything it started, and has the kernel kill it should
// the plugin die first. (Pdeathsig follows the thread that forked; Go
// keeps its threads for the life of the process unless a goroutine locked
// to one exits, which the plugin never does.)
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills the process group led by pid; a group already gone is
// fine.
func killGroup(pid int) error {
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
		return err
	}
	return nil
}
