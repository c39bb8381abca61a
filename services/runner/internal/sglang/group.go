package sglang

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// GroupAlive reports whether any live (non-zombie) process is in group pgid.
// kill(-pgid, 0) alone also counts zombies, which an init that does not reap
// (a container's PID 1) can leave behind; on Linux /proc tells them apart.
func GroupAlive(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); err == syscall.ESRCH {
		return false
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return true // no /proc: trust kill
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// /proc/<pid>/stat: "pid (comm) state ppid pgrp ..."; comm may hold spaces and parens.
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 3 {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g == pgid && f[0] != "Z" && pid > 0 {
			return true
		}
	}
	return false
}
