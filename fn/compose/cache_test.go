package compose

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"

	"github.com/fleetnodepool/function-fleetnodepool/fn/plan"
	"github.com/fleetnodepool/function-fleetnodepool/fn/providers"
)

// TestCacheIsTransparent drives a cached and an uncached function through
// the same sequence of requests, including repeats, edits and observed
// progress, and requires identical responses.
func TestCacheIsTransparent(t *testing.T) {
	base := newRequest(xrJSON, policyJSON)

	edited := proto.Clone(base).(*fnv1.RunFunctionRequest)
	edited.Observed.Composite.Resource.Fields["spec"].GetStructValue().Fields["machine"] =
		resource.MustStructJSON(`{"m": {"class": "medium", "diskGiB": 200}}`).Fields["m"]

	renamed := proto.Clone(base).(*fnv1.RunFunctionRequest)
	renamed.Observed.Composite.Resource.Fields["metadata"].GetStructValue().Fields["name"] =
		resource.MustStructJSON(`{"n": "other"}`).Fields["n"]

	policyBump := newRequest(xrJSON, `{
		"apiVersion": "fleetnodepool.fn.crossplane.io/v1beta1", "kind": "Policy",
		"catalog": {"medium": {"aws": "m6i.xlarge"}},
		"channels": {"stable": "v1.34.1"}, "defaults": {"channel": "stable"},
		"aws": {"iamInstanceProfile": "nodes.cluster-api-provider-aws.sigs.k8s.io"}}`)

	// The MachineDeployment becomes Available: readiness and status change.
	available := proto.Clone(base).(*fnv1.RunFunctionRequest)
	available.Observed.Resources = map[string]*fnv1.Resource{
		"machinedeployment": {Resource: resource.MustStructJSON(`{
			"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "MachineDeployment",
			"metadata": {"name": "prod-eu-1-workers", "generation": 2},
			"status": {"observedGeneration": 2, "replicas": 3, "readyReplicas": 3,
				"conditions": [{"type": "Available", "status": "True"}]}}`)},
	}
	rolling := proto.Clone(available).(*fnv1.RunFunctionRequest)
	rolling.Observed.Resources["machinedeployment"].Resource.Fields["metadata"].GetStructValue().Fields["generation"] =
		resource.MustStructJSON(`{"g": 3}`).Fields["g"]

	sequence := []*fnv1.RunFunctionRequest{base, base, edited, base, renamed, policyBump, available, rolling, available, base}

	cached, uncached := New(WithPlanner(plan.New(plan.WithProviders(providers.All()...)))), New(WithPlanner(plan.New(plan.WithProviders(providers.All()...))), WithCacheSize(0))
	for i, req := range sequence {
		if _, diff := bothAnswer(t, cached, uncached, req); diff != "" {
			t.Errorf("request %d: the cached function's response differs from the uncached one: -uncached, +cached:\n%s", i, diff)
		}
	}
	// One entry per pool, however often it changed: workers and other.
	if n := cached.cache.plans.len(); n != 2 {
		t.Errorf("want the 2 pools of the sequence cached, got %d entries", n)
	}
}

// bothAnswer asks a cached and an uncached function the same request: the
// cached answer, and how it differs from the uncached one.
func bothAnswer(t *testing.T, cached, uncached *Function, req *fnv1.RunFunctionRequest) (*fnv1.RunFunctionResponse, string) {
	t.Helper()
	want, err := uncached.RunFunction(context.Background(), proto.Clone(req).(*fnv1.RunFunctionRequest))
	if err != nil {
		t.Fatal(err)
	}
	got, err := cached.RunFunction(context.Background(), proto.Clone(req).(*fnv1.RunFunctionRequest))
	if err != nil {
		t.Fatal(err)
	}
	return got, cmp.Diff(want, got, protocmp.Transform())
}

func TestCacheBounded(t *testing.T) {
	c := newBounded[*planned](2)
	a, b, d := fingerprint{1}, fingerprint{2}, fingerprint{3}
	pa := &planned{}
	c.put(a, &planned{})
	c.put(a, pa) // Replaced in place: still one entry.
	c.put(b, &planned{})
	c.put(d, &planned{})
	if n := c.len(); n != 2 {
		t.Errorf("want the cache bounded to 2 entries, got %d", n)
	}
	if _, ok := c.get(d); !ok {
		t.Error("want the newest entry cached")
	}
	kept := 0
	for _, fp := range []fingerprint{a, b} {
		if v, ok := c.get(fp); ok {
			kept++
			if fp == a && v != pa {
				t.Error("want the replaced value of a, got the first one")
			}
		}
	}
	if kept != 1 {
		t.Errorf("want exactly one of the two older entries evicted, %d kept", kept)
	}
}

// TestCacheUnderCyclicAccess asks for more pools than the cache holds, in
// the cycle Crossplane's poll makes. A least-recently-used cache would never
// hit; random replacement keeps a share (about 11% with 2.44 pools per
// entry, the default cache under 10,000 pools, in theory: h = exp(-(N/C)(1-h))).
func TestCacheUnderCyclicAccess(t *testing.T) {
	const size, pools, cycles = 400, 976, 20
	c := newBounded[*planned](size)
	hits := 0
	for cycle := range cycles {
		for p := range pools {
			fp := fingerprint{uint64(p)}
			if _, ok := c.get(fp); ok {
				if cycle > 0 {
					hits++
				}
				continue
			}
			c.put(fp, &planned{})
		}
	}
	if rate := float64(hits) / float64(pools*(cycles-1)); rate < 0.05 {
		t.Errorf("want a share of a cycle %.1fx the cache's size answered from it, got a hit rate of %.3f", float64(pools)/size, rate)
	}
}

// TestCacheMetrics checks the cache's metrics: a pool asked twice is a miss,
// then a hit.
func TestCacheMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	f := New(WithPlanner(plan.New(plan.WithProviders(providers.All()...))), WithCacheSize(8), WithMetrics(reg))
	req := newRequest(xrJSON, policyJSON)
	for range 2 {
		if _, err := f.RunFunction(context.Background(), proto.Clone(req).(*fnv1.RunFunctionRequest)); err != nil {
			t.Fatal(err)
		}
	}
	want := `
# HELP function_fleetnodepool_plan_cache_hits_total Requests answered from the plan cache: the pool was planned from the same request before.
# TYPE function_fleetnodepool_plan_cache_hits_total counter
function_fleetnodepool_plan_cache_hits_total 1
# HELP function_fleetnodepool_plan_cache_misses_total Requests the function decoded, planned and encoded: a new or changed pool, or one the cache had dropped.
# TYPE function_fleetnodepool_plan_cache_misses_total counter
function_fleetnodepool_plan_cache_misses_total 1
# HELP function_fleetnodepool_plan_cache_pools Pools whose last plan the cache holds.
# TYPE function_fleetnodepool_plan_cache_pools gauge
function_fleetnodepool_plan_cache_pools 1
# HELP function_fleetnodepool_plan_cache_pools_max Pools the cache can hold (--cache-size): size it to the pools one replica serves.
# TYPE function_fleetnodepool_plan_cache_pools_max gauge
function_fleetnodepool_plan_cache_pools_max 8
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "function_fleetnodepool_plan_cache_hits_total", "function_fleetnodepool_plan_cache_misses_total",
		"function_fleetnodepool_plan_cache_pools", "function_fleetnodepool_plan_cache_pools_max"); err != nil {
		t.Errorf("after a miss and a hit: %v", err)
	}
}

// TestWaitingPoolCachedWhileEarlierWavesRoll: a pool waiting for an earlier
// wave is answered from the cache while that wave's markers change without
// changing what they say of the target (plan.WaveView), and is planned again
// as soon as they say something new; the cached answers equal the uncached
// function's.
func TestWaitingPoolCachedWhileEarlierWavesRoll(t *testing.T) {
	base := soakingPool(t)
	pol, err := New().policy(base.GetInput())
	if err != nil {
		t.Fatal(err)
	}
	// withCanary is the request with the canary markers in these states, at
	// these resourceVersions.
	withCanary := func(states ...string) *fnv1.RunFunctionRequest {
		req := proto.CloneOf(base)
		items := make([]*fnv1.Resource, 0, len(states)/2)
		for i := 0; i < len(states); i += 2 {
			items = append(items, &fnv1.Resource{Resource: mustStruct(map[string]any{
				"apiVersion": "v1", "kind": "ConfigMap",
				"metadata": map[string]any{"name": fmt.Sprintf("c-%d-rollout", i), "namespace": "team-b", "uid": fmt.Sprintf("uid-%d", i),
					"resourceVersion": states[i+1], "labels": map[string]any{"fleet.nodepool.dev/pool": fmt.Sprint(i)}},
				"data": map[string]any{"target": pol.target, "state": states[i], "since": "2026-11-29T22:30:00Z", "startedAt": "2026-11-29T20:50:00Z"},
			})})
		}
		req.RequiredResources[requirementWavePrefix+"canary"] = &fnv1.Resources{Items: items}
		return req
	}
	steps := []struct {
		reason string
		req    *fnv1.RunFunctionRequest
		hit    bool
	}{
		{reason: "The first request is planned.", req: withCanary("Rolling", "1", "Held", "2")},
		{reason: "A canary marker moved (Held to Rolling), the wave still waits: the same answer, from the cache.", req: withCanary("Rolling", "1", "Rolling", "3"), hit: true},
		{reason: "Another one moved (Rolling to Held): still waiting, from the cache.", req: withCanary("Held", "4", "Rolling", "3"), hit: true},
		{reason: "One settled, one still rolling: still waiting, from the cache.", req: withCanary("Settled", "5", "Rolling", "3"), hit: true},
		{reason: "The last one settled: the wave soaks, the pool is planned again.", req: withCanary("Settled", "5", "Settled", "6")},
		{reason: "One failed, within the tolerance of one: the pool is planned again, and still soaks.", req: withCanary("Settled", "5", "Failed", "7")},
		{reason: "Both failed, over the tolerance: the wave halts.", req: withCanary("Failed", "8", "Failed", "7")},
	}
	cached, uncached := New(WithPlanner(plan.New(plan.WithProviders(providers.All()...))), clockAt(sunday2300)),
		New(WithPlanner(plan.New(plan.WithProviders(providers.All()...))), WithCacheSize(0), clockAt(sunday2300))
	reasons := map[string]bool{}
	for i, s := range steps {
		hits := cached.cache.hits.Load()
		rsp, diff := bothAnswer(t, cached, uncached, s.req)
		if diff != "" {
			t.Errorf("step %d: %s\nthe cached function's response differs from the uncached one: -uncached, +cached:\n%s", i, s.reason, diff)
		}
		if got := cached.cache.hits.Load() > hits; got != s.hit {
			t.Errorf("step %d: %s\nanswered from the cache: %t, want %t", i, s.reason, got, s.hit)
		}
		reasons[condition(rsp, TypeRolloutHeld).GetReason()] = true
	}
	for _, want := range []string{plan.HoldWave, plan.HoldSoak, plan.HoldHalted} {
		if !reasons[want] {
			t.Errorf("no step held the pool for %s: the steps do not move the view as they say (held for %v)", want, reasons)
		}
	}
}
