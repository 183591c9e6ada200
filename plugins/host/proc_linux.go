package host

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the plugin in its own process group, so that shutdown
// can kill whatever it started (ffmpeg under a transcriber, say), and asks
// the kernel to kill it if attachd dies without cleaning up. Pdeathsig
// fires when the thread that forked exits, which is why supervisors start
// plugins from a goroutine locked to its thread for the plugin's life.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills the process group led by pid; a group already gone is fine.
func killGroup(pid int) {
	if pid > 0 {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}
