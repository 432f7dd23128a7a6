package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// processAPIServer names kube-apiserver for Kill.
const processAPIServer = "kube-apiserver"

// Restart stops a process of the sandbox (SIGTERM, SIGKILL after 10 s)
// and starts it again as it was started: "function", "crossplane" or a
// Cluster API manager ("capi-core", ...). It returns once the process
// serves again.
func (s *Sandbox) Restart(ctx context.Context, name string) error {
	return s.relaunch(ctx, name, "", stop)
}

// Kill is Restart without warning (SIGKILL), as a crashed pod is, and
// also takes "kube-apiserver" (etcd keeps the data); for it, it returns
// once a list succeeds.
func (s *Sandbox) Kill(ctx context.Context, name string) error {
	if name == processAPIServer {
		return s.killAPIServer(ctx)
	}
	return s.relaunch(ctx, name, "", kill)
}

// SwapFunction stops the function and serves the same address with
// another build of it.
func (s *Sandbox) SwapFunction(ctx context.Context, bin string) error {
	return s.relaunch(ctx, "function", bin, stop)
}

// relaunch ends a process with end and starts it again with its command
// line, from bin if set, and waits until it serves: the function's
// address, a manager's webhooks. Crossplane starts anew, on new ports.
func (s *Sandbox) relaunch(ctx context.Context, name, bin string, end func(*exec.Cmd)) error {
	cmd, ok := s.procs[name]
	if !ok || cmd.Process == nil {
		return fmt.Errorf("no process %q", name)
	}
	end(cmd)
	delete(s.procs, name)
	if name == "crossplane" {
		return s.crossplaneStart(ctx)
	}
	if bin == "" {
		bin = cmd.Path
	}
	if err := s.start(name, cmd.Env, bin, cmd.Args[1:]...); err != nil {
		return err
	}
	if name == "function" {
		return waitTCP(ctx, s.fnAddr)
	}
	for _, a := range cmd.Args {
		if port, ok := strings.CutPrefix(a, "--webhook-port="); ok {
			return WaitTLS(ctx, "127.0.0.1:"+port)
		}
	}
	return nil
}

// kill ends a process and its group at once.
func kill(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
}

// killAPIServer kills envtest's kube-apiserver and starts it again with the
// same command line, its output in the sandbox's kube-apiserver.log.
func (s *Sandbox) killAPIServer(ctx context.Context) error {
	args, err := s.endAPIServer(ctx, syscall.SIGKILL, 0)
	if err != nil {
		return err
	}
	return s.serveAPIServer(ctx, s.bins.APIServer, args, 90*time.Second)
}

// apiServerGrace is how long StopAPIServer lets kube-apiserver shut down
// before it is killed: it waits for its watches to drain, which can take a
// minute, and an outage is all the cells need.
const apiServerGrace = 5 * time.Second

// StopAPIServer stops kube-apiserver (SIGTERM, SIGKILL after
// apiServerGrace; etcd keeps the data) and keeps its command line for
// StartAPIServer: the cells' outages.
func (s *Sandbox) StopAPIServer(ctx context.Context) error {
	if s.stoppedAPIServer != nil {
		return nil
	}
	args, err := s.endAPIServer(ctx, syscall.SIGTERM, apiServerGrace)
	if err != nil {
		return err
	}
	s.stoppedAPIServer = args
	return nil
}

// StartAPIServer starts the kube-apiserver StopAPIServer stopped, on its
// port, and returns once it serves.
func (s *Sandbox) StartAPIServer(ctx context.Context) error {
	if s.stoppedAPIServer == nil {
		return errors.New("cannot start kube-apiserver: it was not stopped")
	}
	if err := s.serveAPIServer(ctx, s.bins.APIServer, s.stoppedAPIServer, 90*time.Second); err != nil {
		return err
	}
	s.stoppedAPIServer = nil
	return nil
}

// endAPIServer ends kube-apiserver with sig (SIGKILL if it still runs after
// grace) and returns its arguments once it is gone.
func (s *Sandbox) endAPIServer(ctx context.Context, sig syscall.Signal, grace time.Duration) ([]string, error) {
	bin, args := s.bins.APIServer, []string(nil)
	pid := 0
	if cmd, ok := s.procs[processAPIServer]; ok && cmd.Process != nil {
		pid, args = cmd.Process.Pid, cmd.Args[1:] // Killed before: ours.
	} else if pid = pidOf(bin); pid != 0 {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if err != nil {
			return nil, err
		}
		args = strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")[1:]
	}
	if pid == 0 {
		return nil, fmt.Errorf("no %s running %s", processAPIServer, bin)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return nil, err
	}
	if cmd, ok := s.procs[processAPIServer]; ok {
		go func() { _ = cmd.Wait() }()
	}
	// envtest reaps its own child; wait until it is gone, so its port is
	// free. A graceful stop that takes too long is cut short.
	gone := func() error {
		if alive(pid) {
			return fmt.Errorf("%s %d still running", processAPIServer, pid)
		}
		return nil
	}
	if err := eventually(ctx, grace, gone); err != nil || grace == 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		if err := eventually(ctx, 30*time.Second, gone); err != nil {
			return nil, err
		}
	}
	delete(s.procs, processAPIServer)
	return args, nil
}

// serveAPIServer starts kube-apiserver again on its port, and again while
// it exits before it serves: every client of the sandbox reconnects to
// that port at once, and one may be given it as its own port for a moment
// (a TCP connection to itself, while nothing listens), so that the bind
// fails with "address already in use" until that client lets go.
func (s *Sandbox) serveAPIServer(ctx context.Context, bin string, args []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for starts := 1; ; starts++ {
		if err := s.start(processAPIServer, os.Environ(), bin, args...); err != nil {
			return err
		}
		exited := make(chan struct{})
		go func(cmd *exec.Cmd) { _ = cmd.Wait(); close(exited) }(s.procs[processAPIServer])
		for err := s.Client.List(ctx, &corev1.NamespaceList{}); err != nil; err = s.Client.List(ctx, &corev1.NamespaceList{}) {
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("%w (started %d times); the last lines of its log (%s):\n%s", err, starts, s.Log(processAPIServer), tail(s.Log(processAPIServer), 30))
			}
			select {
			case <-exited:
				err = nil
			case <-time.After(200 * time.Millisecond):
			}
			if err == nil {
				break // It exited: start it again.
			}
		}
		select {
		case <-exited:
			if time.Now().After(deadline) {
				return fmt.Errorf("kube-apiserver exits as it starts (started %d times); the last lines of its log (%s):\n%s", starts, s.Log(processAPIServer), tail(s.Log(processAPIServer), 30))
			}
			time.Sleep(500 * time.Millisecond)
			continue
		default:
			return nil
		}
	}
}

// tail is the last n lines of a file, or why it cannot be read.
func tail(path string, n int) string {
	b, err := os.ReadFile(path) //nolint:gosec // A log of the sandbox's own.
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

// pidOf is the pid of the test's own child running bin (envtest's), 0 if
// none: another sandbox's may run on the machine.
func pidOf(bin string) int {
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		if exe, err := os.Readlink(filepath.Join("/proc", d.Name(), "exe")); err == nil && exe == bin {
			if pid, err := strconv.Atoi(d.Name()); err == nil && alive(pid) && parent(pid) == os.Getpid() {
				return pid
			}
		}
	}
	return 0
}

// stat is the fields of /proc/<pid>/stat after the command (which is in
// parentheses): state, ppid, ...; nil if the process is gone.
func stat(pid int) []string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// alive reports whether a process runs: it exists and is not a zombie.
func alive(pid int) bool {
	f := stat(pid)
	return len(f) > 0 && f[0] != "Z"
}

// parent is a process's parent pid, 0 if unknown.
func parent(pid int) int {
	f := stat(pid)
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}
