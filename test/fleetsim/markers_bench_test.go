package fleetsim

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
)

// markerCapture keeps a copy of the request with the most rollout markers
// the function received.
type markerCapture struct {
	fn      runner
	markers int
	req     *fnv1.RunFunctionRequest
}

func (c *markerCapture) RunFunction(ctx context.Context, req *fnv1.RunFunctionRequest) (*fnv1.RunFunctionResponse, error) {
	if n := len(requiredOf(req, kindConfigMap)); n > c.markers {
		c.markers, c.req = n, proto.CloneOf(req)
	}
	return c.fn.RunFunction(ctx, req)
}

// withMarkers is a copy of a request of a pool in no wave with its staging
// markers replaced by n copies of its first, each of a pool of its own
// namespace: the request of a pool behind n pools of earlier waves.
func withMarkers(b *testing.B, req *fnv1.RunFunctionRequest, n int) *fnv1.RunFunctionRequest {
	b.Helper()
	out := proto.CloneOf(req)
	rs := out.GetRequiredResources()["wave-staging"]
	if len(rs.GetItems()) == 0 {
		b.Fatalf("the request has no staging markers: %v", out.GetRequiredResources())
	}
	first := rs.GetItems()[0].GetResource()
	items := make([]*fnv1.Resource, n)
	for i := range items {
		m := proto.CloneOf(first)
		md := at(m, "metadata").GetStructValue().GetFields()
		md["namespace"] = str(fmt.Sprintf("fleet-%05d", i))
		md["name"] = str(fmt.Sprintf("c-%05d-pool-00-rollout", i))
		md["uid"] = str(fmt.Sprintf("uid-%d", 1_000_000+i))
		labels := md["labels"].GetStructValue().GetFields()
		labels[labelClusterName] = str(fmt.Sprintf("c-%05d", i))
		items[i] = &fnv1.Resource{Resource: m}
	}
	out.RequiredResources["wave-staging"] = &fnv1.Resources{Items: items}
	return out
}

// BenchmarkMarkers measures what a pool in the last wave costs the function
// per reconcile while it has a change to start, by the number of markers of
// the earlier waves it reads, and its request's size (bytes/request): the
// request the waves' schedule gave such a pool with the most markers,
// its staging markers replaced by n. Planned: the function uncached, as
// for a pool whose Cluster moved since its last reconcile; cached: the
// function as deployed, asked the same again; moved: as deployed, asked
// with one marker moved each time (a new resourceVersion) while the wave
// still waits, as while the earlier waves roll.
//
//	go test ./test/fleetsim -run '^$' -bench Markers -benchtime 2s
func BenchmarkMarkers(b *testing.B) {
	c := &markerCapture{}
	cfg := Config{Clusters: 11, PoolsPerCluster: 3, Seed: 1, MaxSteps: 25, Lag: 0.2, CacheSize: 0}
	if _, err := run(context.Background(), cfg, wavesSchedule(), func(fn runner) runner { c.fn = fn; return c }); err != nil {
		b.Fatalf("run(...): %v", err)
	}
	if c.req == nil {
		b.Fatal("no request had rollout markers")
	}
	now := epoch().Add(25 * stepEvery)
	for _, n := range []int{0, 100, 1000, 5000} {
		for _, how := range []string{"planned", "cached", "moved"} {
			req := withMarkers(b, c.req, n)
			reqs := []*fnv1.RunFunctionRequest{req}
			if how == "moved" && n > 0 {
				reqs = append(reqs, proto.CloneOf(req))
				first := reqs[1].GetRequiredResources()["wave-staging"].GetItems()[0].GetResource()
				at(first, "metadata").GetStructValue().GetFields()["resourceVersion"] = str("moved")
			}
			cache := -1 // The function's default.
			if how == "planned" {
				cache = 0
			}
			fn := function(Config{CacheSize: cache}, func() time.Time { return now })
			b.Run(fmt.Sprintf("markers=%d/%s", n, how), func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, err := fn.RunFunction(context.Background(), reqs[i%len(reqs)]); err != nil {
						b.Fatal(err)
					}
					i++
				}
				b.ReportMetric(float64(proto.Size(req)), "bytes/request")
			})
		}
	}
}
