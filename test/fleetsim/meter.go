package fleetsim

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"syscall"
	"time"

	"github.com/crossplane/function-sdk-go/errors"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
)

// A runner runs a composition function: compose.Function in process.
type runner interface {
	RunFunction(ctx context.Context, req *fnv1.RunFunctionRequest) (*fnv1.RunFunctionResponse, error)
}

// A meter measures the function alone. It calls RunFunction for a whole
// batch of reconciles back to back and reads the process's CPU time
// (getrusage) and allocation counters (runtime.MemStats) only around the
// batch, so the model's own work between batches is never counted.
type meter struct {
	calls          int
	wall, cpu      time.Duration
	mallocs, bytes uint64
	// Latencies of the calls answered with the objects of the previous
	// answer (the function's cache) and of the others.
	cached, planned samples
	unchangedAnswer int
	batch           []time.Duration
	// sizes are the requests' sizes, measured after each batch if
	// sizeRequests.
	sizes        requestSizes
	sizeRequests bool
}

// samples are call latencies.
type samples []time.Duration

// latencies summarize samples.
type latencies struct {
	N        int
	P50, P99 time.Duration
}

func (l latencies) String() string {
	return fmt.Sprintf("%d, %d ns, %d ns", l.N, l.P50.Nanoseconds(), l.P99.Nanoseconds())
}

func (s samples) summary() latencies {
	if len(s) == 0 {
		return latencies{}
	}
	slices.Sort(s)
	at := func(p float64) time.Duration { return s[min(int(p*float64(len(s))), len(s)-1)] }
	return latencies{N: len(s), P50: at(0.5), P99: at(0.99)}
}

// run calls the function once for every reconcile of the batch.
func (m *meter) run(ctx context.Context, fn runner, batch []*reconcile) error {
	m.batch = slices.Grow(m.batch[:0], len(batch))
	var ms0, ms1 runtime.MemStats
	var ru0, ru1 syscall.Rusage
	runtime.ReadMemStats(&ms0)
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru0); err != nil {
		return errors.Wrap(err, "cannot read the process's CPU time")
	}
	start := time.Now()
	var err error
	for _, r := range batch {
		t := time.Now()
		if r.rsp, err = fn.RunFunction(ctx, r.req); err != nil {
			return errors.Wrapf(err, "cannot run the function for %s", r.pool)
		}
		m.batch = append(m.batch, time.Since(t))
	}
	m.wall += time.Since(start)
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru1); err != nil {
		return errors.Wrap(err, "cannot read the process's CPU time")
	}
	runtime.ReadMemStats(&ms1)
	m.cpu += cpuTime(&ru1) - cpuTime(&ru0)
	m.mallocs += ms1.Mallocs - ms0.Mallocs
	m.bytes += ms1.TotalAlloc - ms0.TotalAlloc
	m.calls += len(batch)
	for _, r := range batch {
		if m.sizeRequests {
			m.sizes.measure(r)
		}
	}
	for i, r := range batch {
		if r.calls == 0 && sameAnswer(r) {
			m.unchangedAnswer++
			m.cached = append(m.cached, m.batch[i])
			continue
		}
		m.planned = append(m.planned, m.batch[i])
	}
	return nil
}

func cpuTime(ru *syscall.Rusage) time.Duration {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sameAnswer reports whether the response desires exactly the objects last
// applied for the pool, pointer for pointer: the function answered from its
// cache without planning.
func sameAnswer(r *reconcile) bool {
	rs := r.rsp.GetDesired().GetResources()
	if len(rs) == 0 || len(rs) != len(r.pool.composed) {
		return false
	}
	for k, d := range rs {
		if o := r.pool.composed[k]; o == nil || o.applied != d {
			return false
		}
	}
	return true
}
