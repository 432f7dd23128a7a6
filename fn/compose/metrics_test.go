package compose

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
)

func newRegistry() *prometheus.Registry { return prometheus.NewPedanticRegistry() }

func testutilCompare(reg prometheus.Gatherer, want string, names ...string) error {
	return testutil.GatherAndCompare(reg, strings.NewReader(want), names...)
}

// fatalCounts are the Fatal results counted, by reason, the zeros left out.
func fatalCounts(f *Function) map[string]float64 {
	out := map[string]float64{}
	for _, r := range fatalReasons {
		if n := testutil.ToFloat64(f.metrics.fatal.WithLabelValues(r)); n > 0 {
			out[r] = n
		}
	}
	return out
}

// TestFatalResultReasons: every path to a Fatal result is counted under the
// reason that says whose mistake it is.
func TestFatalResultReasons(t *testing.T) {
	spec := func(s string) string {
		return `{"apiVersion": "fleet.nodepool.dev/v1alpha1", "kind": "FleetNodePool", "metadata": {"name": "workers", "namespace": "team-a"}, "spec": ` + s + `}`
	}
	withRollouts := func(r string) string {
		return strings.Replace(policyJSON, `"defaults"`, `"rollouts": `+r+`, "defaults"`, 1)
	}
	noCluster := newRequest(xrJSON, policyJSON)
	noCluster.RequiredResources = map[string]*fnv1.Resources{requirementCluster: {}}
	noCapability := newRequest(xrJSON, policyJSON)
	noCapability.RequiredResources = nil
	noCapability.Meta.Capabilities = []fnv1.Capability{fnv1.Capability_CAPABILITY_CAPABILITIES}
	cases := map[string]struct {
		reason string
		req    *fnv1.RunFunctionRequest
		o      []Option
		want   string
	}{
		"SpecDoesNotDecode": {
			reason: "A spec field of the wrong type is the pool's.",
			req:    newRequest(spec(`{"clusterName": "prod-eu-1", "scaling": {"replicas": "three"}}`), policyJSON),
			want:   FatalInvalidPool,
		},
		"SpecInvalid": {
			reason: "A spec that fails validation is the pool's.",
			req:    newRequest(spec(`{"clusterName": "prod-eu-1", "provider": "aws", "machine": {"class": "huge"}, "scaling": {"min": 3, "max": 2}}`), policyJSON),
			want:   FatalInvalidPool,
		},
		"NoNamespace": {
			reason: "A legacy XR created without its claim has no namespace: the pool's.",
			req:    newRequest(`{"apiVersion": "fleet.nodepool.dev/v1alpha1", "kind": "XFleetNodePool", "metadata": {"name": "w"}, "spec": {}}`, policyJSON),
			want:   FatalInvalidPool,
		},
		"NoInput": {
			reason: "A step without its input is the policy's.",
			req:    newRequest(xrJSON, ""),
			want:   FatalInvalidPolicy,
		},
		"WrongInputKind": {
			reason: "An input of another kind is the policy's.",
			req:    newRequest(xrJSON, `{"apiVersion": "pt.fn.crossplane.io/v1beta1", "kind": "Resources"}`),
			want:   FatalInvalidPolicy,
		},
		"InputDoesNotDecode": {
			reason: "A misspelt field of the input is the policy's.",
			req:    newRequest(xrJSON, `{"apiVersion": "fleetnodepool.fn.crossplane.io/v1beta1", "kind": "Policy", "chanels": {}}`),
			want:   FatalInvalidPolicy,
		},
		"PolicyInvalid": {
			reason: "A policy that fails validation (a window that never opens) is the policy's.",
			req:    newRequest(xrJSON, withRollouts(`{"maintenanceWindows": [{"name": "w", "start": "25:00", "duration": "1h"}]}`)),
			want:   FatalInvalidPolicy,
		},
		"PolicyAndSpecInvalid": {
			reason: "The policy's mistakes decide beside the pool's: they stop every pool of the Composition.",
			req: newRequest(spec(`{"clusterName": "prod-eu-1", "provider": "aws", "machine": {"class": "medium"}, "scaling": {"min": 3, "max": 2}}`),
				withRollouts(`{"maintenanceWindows": [{"name": "w", "start": "25:00", "duration": "1h"}]}`)),
			want: FatalInvalidPolicy,
		},
		"ClusterNotFound": {
			reason: "The pool's Cluster does not exist.",
			req:    noCluster,
			want:   FatalClusterNotFound,
		},
		"UnsupportedCrossplane": {
			reason: "A Crossplane that cannot resolve required resources.",
			req:    noCapability,
			want:   FatalUnsupportedCrossplane,
		},
		"NoXR": {
			reason: "A request without the observed XR.",
			req:    &fnv1.RunFunctionRequest{Meta: &fnv1.RequestMeta{Tag: "hello"}, Input: newRequest(xrJSON, policyJSON).GetInput()},
			want:   FatalInvalidRequest,
		},
		"Panic": {
			reason: "A bug (here, no planner) is recovered from and counted as one.",
			req:    newRequest(xrJSON, policyJSON),
			o:      []Option{WithPlanner(nil)},
			want:   FatalInternalError,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFunction(append([]Option{WithMetrics(newRegistry())}, tc.o...)...)
			rsp, err := f.RunFunction(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if r := rsp.GetResults(); len(r) != 1 || r[0].GetSeverity() != fnv1.Severity_SEVERITY_FATAL {
				t.Fatalf("%s\nwant one Fatal result, got %v", tc.reason, r)
			}
			if diff := cmp.Diff(map[string]float64{tc.want: 1}, fatalCounts(f)); diff != "" {
				t.Errorf("%s\nfatal results counted: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestMetrics: the function's metrics after a sequence of runs: each miss
// planned and timed, each hit not; each Fatal result counted by its
// reason; a refused change counted once, however often it is reconciled.
func TestMetrics(t *testing.T) {
	reg := newRegistry()
	f := newFunction(WithMetrics(reg))
	refused := refusedPool(t)
	again := reconciled(refused, answer(t, newFunction(WithCacheSize(0)), refused))
	noCluster := newRequest(xrJSON, policyJSON)
	noCluster.RequiredResources = map[string]*fnv1.Resources{requirementCluster: {}}
	runs := []*fnv1.RunFunctionRequest{
		refused,                        // A miss: the refusal starts, counted.
		again,                          // A hit: still refused, not counted again.
		again,                          // A hit.
		newRequest(xrJSON, policyJSON), // A miss: the same pool, changed.
		newRequest(xrJSON, policyJSON), // A hit.
		newRequest(xrJSON, ""),         // A miss: InvalidPolicy.
		newRequest(xrJSON, ""),         // A miss again: Fatal results are never cached.
		noCluster,                      // A miss: ClusterNotFound.
	}
	for _, r := range runs {
		if _, err := f.RunFunction(context.Background(), proto.CloneOf(r)); err != nil {
			t.Fatal(err)
		}
	}
	const want = `
# HELP function_fleetnodepool_changes_refused_total Changes refused because they would delete the backing of a running pool or move it, or its running machine pool cannot make them in place, by reason (BackingReplaced, ClusterChanged, ProviderChanged, CellChanged, ImmutableField): counted when a pool's refusal starts or another change is refused (its ChangeRefused event), not on each reconcile while it lasts.
# TYPE function_fleetnodepool_changes_refused_total counter
function_fleetnodepool_changes_refused_total{reason="BackingReplaced"} 1
function_fleetnodepool_changes_refused_total{reason="CellChanged"} 0
function_fleetnodepool_changes_refused_total{reason="ClusterChanged"} 0
function_fleetnodepool_changes_refused_total{reason="ImmutableField"} 0
function_fleetnodepool_changes_refused_total{reason="ProviderChanged"} 0
# HELP function_fleetnodepool_events_total Events of pools returned as results, by reason (RolloutStarted, RolloutFinished, RolloutHeld, WaveHalted, ChangeRefused): one per transition of a pool's state. Crossplane records each as a Kubernetes Event, which its event recorder may drop (client-go's spam filter: 25 events of a type per XR, then one per 5 minutes); this count is not.
# TYPE function_fleetnodepool_events_total counter
function_fleetnodepool_events_total{reason="ChangeRefused"} 1
function_fleetnodepool_events_total{reason="RolloutFinished"} 0
function_fleetnodepool_events_total{reason="RolloutHeld"} 0
function_fleetnodepool_events_total{reason="RolloutStarted"} 0
function_fleetnodepool_events_total{reason="WaveHalted"} 0
# HELP function_fleetnodepool_fatal_results_total Fatal results returned, by reason: InvalidPool (the FleetNodePool's spec), InvalidPolicy (the Composition step's input), ClusterNotFound, KindNotServed (a kind it composes, at its version, per the management cluster's CRDs), CellUnreachable (its cell's Cluster or control plane cannot be read), UnsupportedCrossplane (no required resources: older than v2.2), InvalidRequest (no observed XR), InternalError (a bug: see the log). Crossplane applies nothing for a Fatal result, and calls again.
# TYPE function_fleetnodepool_fatal_results_total counter
function_fleetnodepool_fatal_results_total{reason="CellUnreachable"} 0
function_fleetnodepool_fatal_results_total{reason="ClusterNotFound"} 1
function_fleetnodepool_fatal_results_total{reason="InternalError"} 0
function_fleetnodepool_fatal_results_total{reason="InvalidPolicy"} 2
function_fleetnodepool_fatal_results_total{reason="InvalidPool"} 0
function_fleetnodepool_fatal_results_total{reason="InvalidRequest"} 0
function_fleetnodepool_fatal_results_total{reason="KindNotServed"} 0
function_fleetnodepool_fatal_results_total{reason="UnsupportedCrossplane"} 0
# HELP function_fleetnodepool_plan_cache_hits_total Requests answered from the plan cache: the pool was planned from the same request before.
# TYPE function_fleetnodepool_plan_cache_hits_total counter
function_fleetnodepool_plan_cache_hits_total 3
# HELP function_fleetnodepool_plan_cache_misses_total Requests the function decoded, planned and encoded: a new or changed pool, or one the cache had dropped.
# TYPE function_fleetnodepool_plan_cache_misses_total counter
function_fleetnodepool_plan_cache_misses_total 5
`
	if err := testutilCompare(reg, want, "function_fleetnodepool_changes_refused_total", "function_fleetnodepool_events_total", "function_fleetnodepool_fatal_results_total",
		"function_fleetnodepool_plan_cache_hits_total", "function_fleetnodepool_plan_cache_misses_total"); err != nil {
		t.Errorf("after the runs: %v", err)
	}
	// Durations vary: every miss is observed, no hit is.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var planned uint64
	for _, mf := range mfs {
		if mf.GetName() == "function_fleetnodepool_plan_duration_seconds" {
			h := mf.GetMetric()[0].GetHistogram()
			planned = h.GetSampleCount()
			if got := len(h.GetBucket()); got != len(planBuckets) {
				t.Errorf("plan duration: %d buckets, want %d", got, len(planBuckets))
			}
		}
	}
	if planned != 5 {
		t.Errorf("plan duration observed %d times, want 5: once per miss, never for a hit", planned)
	}
}

// TestMetricsWithoutRegistry: a Function without WithMetrics counts all
// the same, and registers nothing anywhere.
func TestMetricsWithoutRegistry(t *testing.T) {
	f := newFunction()
	if _, err := f.RunFunction(context.Background(), newRequest(xrJSON, "")); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(f.metrics.fatal.WithLabelValues(FatalInvalidPolicy)); got != 1 {
		t.Errorf("InvalidPolicy counted %v times, want 1", got)
	}
	// Two Functions register with two registries without a clash: each has
	// its own metrics, no global state.
	newFunction(WithMetrics(newRegistry()))
	newFunction(WithMetrics(newRegistry()))
}
