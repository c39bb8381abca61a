package sglang

import "syscall"

// sysProcAttr puts the server in its own process group so the whole group
// (SGLang forks scheduler and detokenizer processes) can be signalled at once,
// and asks the kernel to kill the leader if the runner dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
