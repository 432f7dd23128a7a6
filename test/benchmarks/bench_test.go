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
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"

	"github.com/fleetnodepool/function-fleetnodepool/fn/compose"
	"github.com/fleetnodepool/function-fleetnodepool/fn/plan"
	"github.com/fleetnodepool/function-fleetnodepool/fn/providers"
	"github.com/fleetnodepool/function-fleetnodepool/test/benchmarks/noop"
)

// typicalPool is the request Crossplane sends for the AWS example (two
// zones) in steady state: the FleetNodePool, the policy input, the pool's
// Cluster and its five observed composed objects. realistic adds what the
// API server returns on top of what the function composed: server
// metadata, managed fields and statuses; without it the objects are as
// composed plus a uid and resourceVersion (a lower bound).
func typicalPool(b *testing.B, realistic bool) *fnv1.RunFunctionRequest {
	b.Helper()
	xr := yamlStruct(b, "../../examples/aws-machinedeployment/xr.yaml", nil)
	input := yamlStruct(b, "../../examples/aws-machinedeployment/composition.yaml", []string{"spec", "pipeline", "0", "input"})
	cluster := yamlStruct(b, "../../examples/aws-machinedeployment/required/cluster.yaml", nil)
	req := &fnv1.RunFunctionRequest{
		Meta:              &fnv1.RequestMeta{Tag: "bench"},
		Observed:          &fnv1.State{Composite: &fnv1.Resource{Resource: xr}},
		Input:             input,
		RequiredResources: map[string]*fnv1.Resources{"cluster": {Items: []*fnv1.Resource{{Resource: cluster}}}},
	}
	rsp, err := compose.New(compose.WithPlanner(plan.New(plan.WithProviders(providers.All()...)))).RunFunction(context.Background(), req)
	if err != nil || len(rsp.GetResults()) > 0 || len(rsp.GetDesired().GetResources()) != 5 {
		b.Fatalf("cannot compose the typical pool (want 5 objects): %v %v %d", err, rsp.GetResults(), len(rsp.GetDesired().GetResources()))
	}
	if !realistic {
		// The least the API server adds to every object: a uid and a
		// resourceVersion.
		req.Observed.Resources = map[string]*fnv1.Resource{}
		for k, r := range rsp.GetDesired().GetResources() {
			o := proto.Clone(r.GetResource()).(*structpb.Struct)
			md := o.Fields["metadata"].GetStructValue()
			md.Fields["uid"] = structpb.NewStringValue("3f1c1d2e-8b7a-4c55-9e0f-" + k)
			md.Fields["resourceVersion"] = structpb.NewStringValue("1234567")
			req.Observed.Resources[k] = &fnv1.Resource{Resource: o}
		}
		return req
	}
	serverSide(b, xr, "apiextensions.crossplane.io/composite", `{
		"crossplane": {"compositionRef": {"name": "fleetnodepool"}, "compositionRevisionRef": {"name": "fleetnodepool-4b2c9"},
			"compositionUpdatePolicy": "Automatic", "resourceRefs": []}}`, `{
		"provider": "aws", "backend": "MachineDeployment", "version": "v1.33.4", "machineType": "m6i.xlarge",
		"replicas": 6, "readyReplicas": 6, "availableReplicas": 6, "upToDateReplicas": 6,
		"conditions": [
			{"type": "Synced", "status": "True", "reason": "ReconcileSuccess", "lastTransitionTime": "2026-01-01T00:00:00Z"},
			{"type": "Ready", "status": "True", "reason": "Available", "lastTransitionTime": "2026-01-01T00:00:00Z"},
			{"type": "PoolAvailable", "status": "True", "reason": "Available", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}`)
	req.Observed.Resources = map[string]*fnv1.Resource{}
	for k, r := range rsp.GetDesired().GetResources() {
		o := proto.Clone(r.GetResource()).(*structpb.Struct)
		status := ""
		if strings.HasPrefix(k, "machinedeployment") {
			status = `{"observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "availableReplicas": 3, "upToDateReplicas": 3,
				"phase": "Running", "selector": "cluster.x-k8s.io/cluster-name=prod-eu-1",
				"conditions": [
					{"type": "Available", "status": "True", "reason": "Available", "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1},
					{"type": "MachinesReady", "status": "True", "reason": "Ready", "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1},
					{"type": "MachinesUpToDate", "status": "True", "reason": "UpToDate", "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}]}`
		}
		serverSide(b, o, "apiextensions.crossplane.io/composed/0c0ffee", "", status)
		req.Observed.Resources[k] = &fnv1.Resource{Resource: o}
	}
	return req
}

// serverSide adds to o what the API server and controllers add: metadata,
// managed fields mirroring the applied fields, and a status.
func serverSide(b *testing.B, o *structpb.Struct, manager, extraSpec, status string) {
	b.Helper()
	md := o.Fields["metadata"].GetStructValue()
	add := resource.MustStructJSON(`{
		"uid": "3f1c1d2e-8b7a-4c55-9e0f-1a2b3c4d5e6f", "resourceVersion": "1234567", "generation": 1,
		"creationTimestamp": "2026-01-01T00:00:00Z",
		"ownerReferences": [{"apiVersion": "fleet.nodepool.dev/v1alpha1", "kind": "FleetNodePool", "name": "workers",
			"uid": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d", "controller": true, "blockOwnerDeletion": true}]}`)
	for k, v := range add.GetFields() {
		md.Fields[k] = v
	}
	if extraSpec != "" {
		for k, v := range resource.MustStructJSON(extraSpec).GetFields() {
			o.Fields["spec"].GetStructValue().Fields[k] = v
		}
	}
	applied, err := structpb.NewValue(fieldsV1(o.AsMap()))
	if err != nil {
		b.Fatal(err)
	}
	entries := []any{map[string]any{"manager": manager, "operation": "Apply", "apiVersion": o.Fields["apiVersion"].GetStringValue(),
		"time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1"}}
	if status != "" {
		o.Fields["status"] = structpb.NewStructValue(resource.MustStructJSON(status))
		entries = append(entries, map[string]any{"manager": "manager", "operation": "Update", "subresource": "status",
			"apiVersion": o.Fields["apiVersion"].GetStringValue(), "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1",
			"fieldsV1": fieldsV1(map[string]any{"status": o.Fields["status"].GetStructValue().AsMap()})})
	}
	mf, err := structpb.NewList(entries)
	if err != nil {
		b.Fatal(err)
	}
	mf.Values[0].GetStructValue().Fields["fieldsV1"] = applied
	md.Fields["managedFields"] = structpb.NewListValue(mf)
}

// fieldsV1 renders v's fields the way managed fields record them.
func fieldsV1(v any) any {
	out := map[string]any{}
	switch t := v.(type) {
	case map[string]any:
		for k, c := range t {
			if k == "status" || k == "managedFields" {
				continue
			}
			out["f:"+k] = fieldsV1(c)
		}
	case []any:
		for i, c := range t {
			out[fmt.Sprintf("i:%d", i)] = fieldsV1(c)
		}
	}
	return out
}

func yamlStruct(b *testing.B, path string, at []string) *structpb.Struct {
	b.Helper()
	y, err := os.ReadFile(path) //nolint:gosec // An example file of this repository.
	if err != nil {
		b.Fatal(err)
	}
	var v any
	if err := yaml.Unmarshal(y, &v); err != nil {
		b.Fatal(err)
	}
	for _, k := range at {
		switch t := v.(type) {
		case map[string]any:
			v = t[k]
		case []any:
			i, _ := strconv.Atoi(k)
			v = t[i]
		}
	}
	s, err := structpb.NewStruct(v.(map[string]any))
	if err != nil {
		b.Fatal(err)
	}
	return s
}

var functions = []struct {
	name string
	fn   fnv1.FunctionRunnerServiceServer
	// pkg is the main package of the function's server binary.
	pkg string
	// args are extra server flags.
	args []string
}{
	{name: "noop", fn: &noop.Function{}, pkg: "./noop/server"},
	{name: "fleetnodepool", fn: compose.New(compose.WithPlanner(plan.New(plan.WithProviders(providers.All()...)))), pkg: "../../fn"},
	// Every call plans: what a changed pool (or a cold cache) costs.
	{name: "fleetnodepool-uncached", fn: compose.New(compose.WithPlanner(plan.New(plan.WithProviders(providers.All()...))), compose.WithCacheSize(0)), pkg: "../../fn", args: []string{"--cache-size=0"}},
}

var fixtures = []struct {
	name      string
	realistic bool
}{{"realistic", true}, {"minimal", false}}

// BenchmarkRunFunction calls RunFunction in process for a typical pool.
func BenchmarkRunFunction(b *testing.B) {
	for _, fx := range fixtures {
		req := typicalPool(b, fx.realistic)
		for _, f := range functions {
			b.Run(fx.name+"/"+f.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := f.fn.RunFunction(context.Background(), req); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkGRPC calls each function's real server binary over loopback
// gRPC, one call at a time, and reports the latency median and the server
// process's CPU time per request (from /proc, so client work is excluded).
func BenchmarkGRPC(b *testing.B) {
	for _, fx := range fixtures {
		req := typicalPool(b, fx.realistic)
		for _, f := range functions {
			b.Run(fx.name+"/"+f.name, func(b *testing.B) { grpcBench(b, f.pkg, f.args, req) })
		}
	}
}

func grpcBench(b *testing.B, pkg string, args []string, req *fnv1.RunFunctionRequest) {
	b.Helper()
	srv := startServer(b, pkg, args...)
	conn, err := grpc.NewClient(srv.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close() //nolint:errcheck // Benchmark teardown.
	client := fnv1.NewFunctionRunnerServiceClient(conn)
	for range 200 { // Warm up the connection and the server.
		if _, err := client.RunFunction(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, 0, 4096)
	cpu0 := srv.cpu(b)
	b.ResetTimer()
	for b.Loop() {
		t := time.Now()
		if _, err := client.RunFunction(context.Background(), req); err != nil {
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

type server struct {
	addr string
	cmd  *exec.Cmd
}

var (
	buildOnce sync.Once
	binDir    string
	errBuild  error
)

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
