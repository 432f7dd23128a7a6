package benchmarks

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"

	"github.com/fleetnodepool/function-fleetnodepool/fn/compose"
	"github.com/fleetnodepool/function-fleetnodepool/fn/plan"
	"github.com/fleetnodepool/function-fleetnodepool/fn/providers"
	"github.com/fleetnodepool/function-fleetnodepool/test/benchmarks/noop"
)

// withProviders wires the function as fn/main.go does.
var withProviders = compose.WithPlanner(plan.New(plan.WithProviders(providers.All()...)))

var functions = []struct {
	name string
	fn   fnv1.FunctionRunnerServiceServer
	// pkg is the main package of the function's server binary.
	pkg string
	// args are extra server flags.
	args []string
	// changed calls alternate between two versions of the pool, so that
	// every call misses the cache.
	changed bool
}{
	{name: "noop", fn: &noop.Function{}, pkg: "./noop/server"},
	{name: "fleetnodepool", fn: compose.New(withProviders), pkg: "../../fn"},
	// Every call plans: what a changed pool (or a cold cache) costs.
	{name: "fleetnodepool-uncached", fn: compose.New(withProviders, compose.WithCacheSize(0)), pkg: "../../fn", args: []string{"--cache-size=0"}},
	// The function as deployed on a changed pool: the plan cache misses,
	// the policy is still cached.
	{name: "fleetnodepool-changed", fn: compose.New(withProviders), pkg: "../../fn", changed: true},
}

// measure runs op in a benchmark loop and reports, besides wall time and
// allocations, the process's CPU time per op (cpu-ns/op), garbage
// collection included: on a shared machine it moves less than wall time.
func measure(b *testing.B, op func() error) {
	b.Helper()
	b.ReportAllocs()
	cpu0 := processCPU(b)
	for b.Loop() {
		if err := op(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((processCPU(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// processCPU is the user+system CPU time this process has used.
func processCPU(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRunFunction calls RunFunction in process for a typical pool,
// and reports the process's CPU time per call besides wall time.
func BenchmarkRunFunction(b *testing.B) {
	for _, fx := range fixtures {
		req := typicalPool(b, fx)
		for _, f := range functions {
			b.Run(fx.name+"/"+f.name, func(b *testing.B) {
				reqs := requests(req, f.changed)
				i := 0
				measure(b, func() error {
					_, err := f.fn.RunFunction(context.Background(), reqs[i%len(reqs)])
					i++
					return err
				})
			})
		}
	}
}

// BenchmarkGRPC calls each function's real server binary over loopback
// gRPC, one call at a time, and reports the latency median and the server
// process's CPU time per request (from /proc, so client work is excluded).
func BenchmarkGRPC(b *testing.B) {
	for _, fx := range fixtures {
		req := typicalPool(b, fx)
		for _, f := range functions {
			b.Run(fx.name+"/"+f.name, func(b *testing.B) { grpcBench(b, f.pkg, f.args, requests(req, f.changed)) })
		}
	}
}

// requests are what a benchmark sends in turn: req, and with changed also
// req with a changed pool.
func requests(req *fnv1.RunFunctionRequest, changed bool) []*fnv1.RunFunctionRequest {
	if !changed {
		return []*fnv1.RunFunctionRequest{req}
	}
	return []*fnv1.RunFunctionRequest{req, changedPool(req)}
}

func grpcBench(b *testing.B, pkg string, args []string, reqs []*fnv1.RunFunctionRequest) {
	b.Helper()
	srv, client := dial(b, pkg, args, reqs)
	lat := make([]time.Duration, 0, 4096)
	cpu0 := srv.cpu(b)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		t := time.Now()
		if _, err := client.RunFunction(context.Background(), reqs[i%len(reqs)]); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t))
	}
	b.StopTimer()
	cpu := srv.cpu(b) - cpu0
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(cpu.Microseconds())/float64(len(lat)), "server-cpu-µs/op")
}

// dial starts a function's server binary, connects to it and warms the
// connection and the server up with reqs.
func dial(b *testing.B, pkg string, args []string, reqs []*fnv1.RunFunctionRequest) (*server, fnv1.FunctionRunnerServiceClient) {
	b.Helper()
	srv := startServer(b, pkg, args...)
	conn, err := grpc.NewClient(srv.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	client := fnv1.NewFunctionRunnerServiceClient(conn)
	for i := range 200 {
		if _, err := client.RunFunction(context.Background(), reqs[i%len(reqs)]); err != nil {
			b.Fatal(err)
		}
	}
	return srv, client
}

type server struct {
	addr string
	cmd  *exec.Cmd
}

var (
	buildOnce sync.Once
	binDir    string
	errBuild  error
)

// TestMain removes the server binaries the benchmarks built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// startServer builds (once) and starts a function's server binary.
func startServer(b *testing.B, pkg string, extra ...string) *server {
	b.Helper()
	buildOnce.Do(func() {
		binDir, errBuild = os.MkdirTemp("", "fleetnodepool-bench-")
		for _, pkg := range []string{"./noop/server", "../../fn"} {
			if errBuild != nil {
				return
			}
			out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, filepath.Base(pkg)), pkg).CombinedOutput() //nolint:gosec // Our own packages.
			if err != nil {
				errBuild = fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
			}
		}
	})
	if errBuild != nil {
		b.Fatal(errBuild)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	args := []string{"--address=" + addr}
	if filepath.Base(pkg) == "fn" {
		args = append(args, "--insecure", "--metrics-address=")
	}
	args = append(args, extra...)
	cmd := exec.Command(filepath.Join(binDir, filepath.Base(pkg)), args...) //nolint:gosec // Our own binary.
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not listen on %s", pkg, addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &server{addr: addr, cmd: cmd}
}

// cpu is the user+system CPU time the server process has used.
func (s *server) cpu(b *testing.B) time.Duration {
	b.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name (which is in parentheses): utime and
	// stime are the 14th and 15th fields, in clock ticks (100 Hz on Linux).
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}
