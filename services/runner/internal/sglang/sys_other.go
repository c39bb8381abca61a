//go:build unix && !linux

package sglang

import "syscall"

// sysProcAttr puts the server in its own process group so the whole group can
// be signalled at once.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
