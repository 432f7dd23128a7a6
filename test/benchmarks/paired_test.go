package benchmarks

import (
	"context"
	"slices"
	"testing"
	"time"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
)

// BenchmarkVsNoop measures the ratios the targets are set on, robustly on
// a shared machine: each iteration calls the no-op and the function once
// each, in alternating order, on the same request, so that both meet the
// same load. It reports the function's per-call median as a multiple of
// the no-op's (p50-x-noop), in process and over gRPC, and over gRPC also
// the servers' CPU per call as a multiple of the no-op server's
// (cpu-x-noop). The medians themselves are p50-µs and noop-p50-µs.
func BenchmarkVsNoop(b *testing.B) {
	noop := functions[0]
	for _, fx := range fixtures {
		req := typicalPool(b, fx)
		base := []*fnv1.RunFunctionRequest{req}
		for _, f := range functions[1:] {
			reqs := requests(req, f.changed)
			b.Run(fx.name+"/"+f.name+"/in-process", func(b *testing.B) {
				paired(b, func(i int) error {
					_, err := noop.fn.RunFunction(context.Background(), req)
					return err
				}, func(i int) error {
					_, err := f.fn.RunFunction(context.Background(), reqs[i%len(reqs)])
					return err
				}, nil, nil)
			})
			b.Run(fx.name+"/"+f.name+"/grpc", func(b *testing.B) {
				ns, nc := dial(b, noop.pkg, noop.args, base)
				fs, fc := dial(b, f.pkg, f.args, reqs)
				paired(b, func(i int) error {
					_, err := nc.RunFunction(context.Background(), req)
					return err
				}, func(i int) error {
					_, err := fc.RunFunction(context.Background(), reqs[i%len(reqs)])
					return err
				}, ns, fs)
			})
		}
	}
}

// paired calls base and op in turn and reports op's median wall time per
// call as a multiple of base's; given their servers, also op's server CPU
// per call as a multiple of base's.
func paired(b *testing.B, base, op func(i int) error, baseSrv, opSrv *server) {
	b.Helper()
	var tBase, tOp []time.Duration
	var cpuBase, cpuOp time.Duration
	if baseSrv != nil {
		cpuBase, cpuOp = baseSrv.cpu(b), opSrv.cpu(b)
	}
	timed := func(call func(int) error, i int, into *[]time.Duration) {
		t := time.Now()
		if err := call(i); err != nil {
			b.Fatal(err)
		}
		*into = append(*into, time.Since(t))
	}
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			timed(base, i, &tBase)
			timed(op, i, &tOp)
		} else {
			timed(op, i, &tOp)
			timed(base, i, &tBase)
		}
	}
	b.StopTimer()
	mBase, mOp := median(tBase), median(tOp)
	b.ReportMetric(float64(mOp)/float64(mBase), "p50-x-noop")
	b.ReportMetric(float64(mOp.Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(mBase.Nanoseconds())/1e3, "noop-p50-µs")
	if baseSrv != nil {
		cpuBase, cpuOp = baseSrv.cpu(b)-cpuBase, opSrv.cpu(b)-cpuOp
		b.ReportMetric(float64(cpuOp)/float64(cpuBase), "cpu-x-noop")
	}
}

func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}
