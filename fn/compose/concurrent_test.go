package compose

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"

	"github.com/fleetnodepool/function-fleetnodepool/fn/plan"
	"github.com/fleetnodepool/function-fleetnodepool/fn/providers"
	"github.com/fleetnodepool/function-fleetnodepool/test/exampleio"
)

// TestConcurrentRuns drives one function from many goroutines at once, as
// the gRPC server does: many pools, their policies and one plan cache
// shared. Every answer must equal the one a fresh, uncached function gives
// the same request alone. make test-unit runs it under the race detector,
// so it is also the proof that what the calls share is race-free.
func TestConcurrentRuns(t *testing.T) {
	reqs := concurrentPools(t)
	planner := plan.New(plan.WithProviders(providers.All()...))
	alone := New(WithPlanner(planner), WithCacheSize(0), clockAt(sunday2300))
	want := make([]*fnv1.RunFunctionResponse, len(reqs))
	for i, req := range reqs {
		want[i] = answer(t, alone, req)
	}
	cases := map[string]struct {
		reason string
		cache  int
	}{
		"NoCache": {
			reason: "Without a cache the calls share only the planner and the providers.",
			cache:  0,
		},
		"CacheSmallerThanThePools": {
			reason: "Entries are evicted and replaced while other calls read them.",
			cache:  len(reqs) / 4,
		},
		"CacheHoldsEveryPool": {
			reason: "Most answers come from the cache, read by many calls at once.",
			cache:  2 * len(reqs),
		},
	}
	const workers, passes = 4, 2
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			shared := New(WithPlanner(planner), WithCacheSize(tc.cache), clockAt(sunday2300))
			var mu sync.Mutex
			var diffs []string
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					order := rand.New(rand.NewPCG(uint64(w), 0)) //nolint:gosec // A reproducible order, not a secret.
					for range passes {
						for _, i := range order.Perm(len(reqs)) {
							got, err := shared.RunFunction(context.Background(), proto.Clone(reqs[i]).(*fnv1.RunFunctionRequest))
							if err == nil {
								got.Meta = nil
							}
							if d := cmp.Diff(want[i], got, protocmp.Transform()); d != "" || err != nil {
								mu.Lock()
								diffs = append(diffs, fmt.Sprintf("pool %d, worker %d: %v: -alone, +concurrent:\n%s", i, w, err, d))
								mu.Unlock()
							}
						}
					}
				})
			}
			wg.Wait()
			if len(diffs) > 0 {
				t.Errorf("%s\n%d of %d concurrent answers differ from the function's answer alone; the first:\n%s",
					tc.reason, len(diffs), workers*passes*len(reqs), diffs[0])
			}
		})
	}
}

// concurrentPools are many pools: every example new, the AWS example
// running, rolling and soaking in a wave, each under several names.
func concurrentPools(t *testing.T) []*fnv1.RunFunctionRequest {
	t.Helper()
	f := New(WithPlanner(plan.New(plan.WithProviders(providers.All()...))), clockAt(sunday2300))
	base := []*fnv1.RunFunctionRequest{runningPool(t, f), rollingPool(t, f), soakingPool(t)}
	dirs, err := filepath.Glob(filepath.Join("..", "..", "examples", "*", "xr.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range dirs {
		req, err := exampleio.ForExample(filepath.Dir(x))
		if err != nil {
			t.Fatal(err)
		}
		base = append(base, req)
	}
	const names = 2
	out := make([]*fnv1.RunFunctionRequest, 0, names*len(base))
	for _, req := range base {
		for n := range names {
			r := proto.Clone(req).(*fnv1.RunFunctionRequest)
			meta := r.GetObserved().GetComposite().GetResource().GetFields()["metadata"].GetStructValue()
			meta.Fields["name"] = structpb.NewStringValue(fmt.Sprintf("%s-%d", meta.GetFields()["name"].GetStringValue(), n))
			out = append(out, r)
		}
	}
	return out
}
