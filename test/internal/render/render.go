// Package render runs FleetNodePool examples through the real Crossplane
// render engine: the pinned crossplane CLI with the pinned core binary
// (--crossplane-binary), against the function binary served locally.
package render

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/fleetnodepool/function-fleetnodepool/test/internal/crds"
)

// Annotations of a Function that render reads.
const (
	annotationRuntime = "render.crossplane.io/runtime"
	annotationTarget  = "render.crossplane.io/runtime-development-target"
	runtimeDev        = "Development"
)

// Tools are the binaries render needs.
type Tools struct {
	// CLI is the crossplane CLI (github.com/crossplane/cli/v2).
	CLI string
	// Core is the Crossplane core binary (github.com/crossplane/crossplane/v2).
	Core string
	// Function is the function binary.
	Function string
}

// The variables ToolsFromEnv reads, which the Makefile sets: the paths of
// the crossplane CLI, the Crossplane core and the function binary.
const (
	EnvCLI      = "CROSSPLANE_CLI"
	EnvCore     = "CROSSPLANE_CORE"
	EnvFunction = "FUNCTION_BIN"
	// FixedTime is the instant renders plan at: the time Crossplane's render
	// gives conditions.
	FixedTime = "2024-01-01T00:00:00Z"
)

// Env are the variables ToolsFromEnv reads.
func Env() []string { return []string{EnvCLI, EnvCore, EnvFunction} }

// ToolsFromEnv reads the tool paths from the variables of Env.
func ToolsFromEnv() (Tools, error) {
	t := Tools{CLI: os.Getenv(EnvCLI), Core: os.Getenv(EnvCore), Function: os.Getenv(EnvFunction)}
	for i, p := range []string{t.CLI, t.Core, t.Function} {
		if p == "" {
			return t, fmt.Errorf("%s is not set: run this through make (make render, or a test tier's target), which builds the tools", Env()[i])
		}
		if _, err := os.Stat(p); err != nil {
			return t, fmt.Errorf("%s: %w", Env()[i], err)
		}
	}
	return t, nil
}

// A Function is the function binary running locally, insecure, on a free
// loopback port: what render's Development runtime connects to.
type Function struct {
	Addr string
	cmd  *exec.Cmd
	log  bytes.Buffer
}

// StartFunction starts the function and waits until it accepts connections.
func StartFunction(ctx context.Context, bin string) (*Function, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	f := &Function{Addr: addr}
	// The clock stops where Crossplane's render stops it: golden files do not
	// depend on when they are rendered.
	f.cmd = exec.Command(bin, "--insecure", "--address="+addr, "--metrics-address=", "--fixed-time="+FixedTime) //nolint:gosec // The test's own function binary.
	f.cmd.Stdout, f.cmd.Stderr = &f.log, &f.log
	if err := f.cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start the function %s: %w", bin, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return f, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			f.Stop()
			return nil, fmt.Errorf("the function did not listen on %s: %w\n%s", addr, err, f.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the function.
func (f *Function) Stop() {
	if f.cmd.Process == nil {
		return
	}
	_ = f.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = f.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = f.cmd.Process.Kill()
		<-done
	}
}

// Log is what the function wrote.
func (f *Function) Log() string { return f.log.String() }

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("cannot find a free port: %w", err)
	}
	defer l.Close() //nolint:errcheck // Only used to find a free port.
	return l.Addr().String(), nil
}

// A Case is one render: a composite resource with its Composition and
// functions, and optionally observed and required resources.
type Case struct {
	XR, Composition, Functions string
	// XRD applies the XRD's defaults and scope.
	XRD string
	// Observed is a file or directory of observed composed resources.
	Observed string
	// Required is a file or directory of required resources.
	Required string
}

// ExampleCase is the Case of an example directory: xr.yaml,
// composition.yaml, functions.yaml, and observed/ and required/ if present.
func ExampleCase(dir, xrd string) Case {
	c := Case{
		XR:          filepath.Join(dir, "xr.yaml"),
		Composition: filepath.Join(dir, "composition.yaml"),
		Functions:   filepath.Join(dir, "functions.yaml"),
		XRD:         xrd,
	}
	if _, err := os.Stat(filepath.Join(dir, "observed")); err == nil {
		c.Observed = filepath.Join(dir, "observed")
	}
	if _, err := os.Stat(filepath.Join(dir, "required")); err == nil {
		c.Required = filepath.Join(dir, "required")
	}
	return c
}

// required is a temporary folder of the case's required resources and the
// management cluster's CRDs (test/internal/crds): the function reads the
// CRD of each kind it composes that nothing observed shows served, as it
// does from Crossplane.
func required(c Case) (string, error) {
	dir, err := os.MkdirTemp("", "render-required-")
	if err != nil {
		return "", err
	}
	files := map[string][]byte{"crds.yaml": crds.YAML()}
	if c.Required != "" {
		paths := []string{c.Required}
		if fi, err := os.Stat(c.Required); err == nil && fi.IsDir() {
			paths, _ = filepath.Glob(filepath.Join(c.Required, "*.yaml"))
		}
		for i, p := range paths {
			b, err := os.ReadFile(p) //nolint:gosec // A test case's file.
			if err != nil {
				return "", errors.Join(err, os.RemoveAll(dir))
			}
			files[fmt.Sprintf("case-%d-%s", i, filepath.Base(p))] = b
		}
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return "", errors.Join(err, os.RemoveAll(dir))
		}
	}
	return dir, nil
}

// An Error is a failed render, with what the CLI wrote.
type Error struct {
	ExitCode int
	Stderr   string
}

func (e *Error) Error() string {
	return fmt.Sprintf("crossplane composition render exited %d: %s", e.ExitCode, strings.TrimSpace(e.Stderr))
}

// Render renders c against f and returns the rendered YAML. A render that
// fails returns an *Error.
func Render(ctx context.Context, t Tools, f *Function, c Case) ([]byte, error) {
	fns, err := pointFunctions(c.Functions, f.Addr)
	if err != nil {
		return nil, err
	}
	defer os.Remove(fns) //nolint:errcheck // A temporary file.

	args := []string{"composition", "render", c.XR, c.Composition, fns,
		"--crossplane-binary=" + t.Core, "--include-function-results", "--timeout=1m"}
	if c.XRD != "" {
		args = append(args, "--xrd="+c.XRD)
	}
	if c.Observed != "" {
		args = append(args, "--observed-resources="+c.Observed)
	}
	req, err := required(c)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(req) //nolint:errcheck // A temporary folder.
	args = append(args, "--required-resources="+req)
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, t.CLI, args...) //nolint:gosec // The pinned crossplane CLI.
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, &Error{ExitCode: ee.ExitCode(), Stderr: stderr.String()}
		}
		return nil, fmt.Errorf("cannot run %s: %w", t.CLI, err)
	}
	return Canonical(stdout.Bytes()), nil
}

// Canonical orders a render's output deterministically. Crossplane emits its
// own events (kind Result, e.g. "Composed resource X is not yet ready") in
// map order; they are sorted after the objects, which render already orders.
func Canonical(out []byte) []byte {
	docs := strings.Split(strings.TrimRight(string(out), "\n"), "\n---\n")
	var objects, results []string
	for _, d := range docs {
		if strings.Contains(d, "\nkind: Result\n") {
			results = append(results, d)
			continue
		}
		objects = append(objects, d)
	}
	sort.Strings(results)
	return []byte(strings.Join(append(objects, results...), "\n---\n") + "\n")
}

// pointFunctions writes a copy of the functions file whose Development
// runtime functions connect to addr.
func pointFunctions(path, addr string) (string, error) {
	b, err := os.ReadFile(path) //nolint:gosec // An example's functions file.
	if err != nil {
		return "", fmt.Errorf("cannot read functions: %w", err)
	}
	var out []string
	for _, doc := range strings.Split(string(b), "\n---") {
		fn := map[string]any{}
		if err := yaml.Unmarshal([]byte(doc), &fn); err != nil {
			return "", fmt.Errorf("cannot parse functions %s: %w", path, err)
		}
		if len(fn) == 0 {
			continue
		}
		md, _ := fn["metadata"].(map[string]any)
		ann, _ := md["annotations"].(map[string]any)
		if ann[annotationRuntime] == runtimeDev {
			ann[annotationTarget] = "dns:///" + addr
		}
		y, err := yaml.Marshal(fn)
		if err != nil {
			return "", fmt.Errorf("cannot write functions: %w", err)
		}
		out = append(out, string(y))
	}
	tmp, err := os.CreateTemp("", "functions-*.yaml")
	if err != nil {
		return "", fmt.Errorf("cannot write functions: %w", err)
	}
	defer tmp.Close() //nolint:errcheck // Closed after writing.
	_, err = tmp.WriteString(strings.Join(out, "---\n"))
	return tmp.Name(), err
}
