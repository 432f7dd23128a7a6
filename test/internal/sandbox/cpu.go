package sandbox

import (
	"strconv"
)

// clockTicks is the kernel's USER_HZ, the unit of /proc/<pid>/stat's CPU
// times: 100 on every Linux the sandboxes run on.
const clockTicks = 100

// CPUSeconds is the CPU time (user and system) the process pid has used,
// 0 if it cannot be read.
func CPUSeconds(pid int) float64 {
	f := stat(pid)
	// After the command: state is field 0, utime 11 and stime 12.
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / clockTicks
}

// CPU is the CPU time each of the processes has used, by name.
func CPU(pids map[string]int) map[string]float64 {
	out := make(map[string]float64, len(pids))
	for name, pid := range pids {
		out[name] = CPUSeconds(pid)
	}
	return out
}
