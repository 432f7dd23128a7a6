package compose

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"
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

	cached, uncached := New(), New(WithCacheSize(0))
	for i, req := range sequence {
		want, err := uncached.RunFunction(context.Background(), proto.Clone(req).(*fnv1.RunFunctionRequest))
		if err != nil {
			t.Fatal(err)
		}
		got, err := cached.RunFunction(context.Background(), proto.Clone(req).(*fnv1.RunFunctionRequest))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
			t.Errorf("request %d: the cached function's response differs from the uncached one: -uncached, +cached:\n%s", i, diff)
		}
	}
	if n := cached.cache.plans.len(); n != 6 {
		t.Errorf("want 6 distinct fingerprints cached for the sequence, got %d", n)
	}
}

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	c := newLRU[*planned](2)
	a, b, d := fingerprint{1}, fingerprint{2}, fingerprint{3}
	c.put(a, &planned{})
	c.put(b, &planned{})
	c.get(a) // a is now the most recently used.
	c.put(d, &planned{})
	for fp, want := range map[fingerprint]bool{a: true, b: false, d: true} {
		if _, got := c.get(fp); got != want {
			t.Errorf("get(%v): want cached %t, got %t", fp, want, got)
		}
	}
}
