//go:build !linux

package host

import "os/exec"

// setProcAttr does nothing here: process groups and Pdeathsig are Linux
// features; go-plugin's Kill still ends the plugin itself.
func setProcAttr(cmd *exec.Cmd) {}

func killGroup(pid int) {}
