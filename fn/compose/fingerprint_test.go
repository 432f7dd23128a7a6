package compose

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"

	"github.com/fleetnodepool/function-fleetnodepool/fn/plan"
	"github.com/fleetnodepool/function-fleetnodepool/fn/providers"
	"github.com/fleetnodepool/function-fleetnodepool/test/exampleio"
)

// TestFingerprintCoversDecode perturbs every value of a request, one at a
// time, and requires a cache miss wherever the perturbation changes what
// the function answers: whatever the decoder reads, the fingerprint covers,
// so the cache can never answer for another request. The requests carry no
// resourceVersions, so that the fingerprint hashes content rather than
// versions.
func TestFingerprintCoversDecode(t *testing.T) {
	cases := map[string]struct {
		reason string
		req    func(*testing.T) *fnv1.RunFunctionRequest
		// atLeast is how many perturbations must change the answer: a
		// request that exercises the decoder; some of them under each of
		// reads.
		atLeast int
		reads   []string
	}{
		"RollingPool": {
			reason: "A rolling pool (a class change, the old templates kept while MachineSets use them) with its Cluster, control plane and MachineSets.",
			req: func(t *testing.T) *fnv1.RunFunctionRequest {
				return rollingPool(t, New(WithPlanner(plan.New(plan.WithProviders(providers.All()...)))))
			},
			atLeast: 50,
		},
		"WaitingForWaves": {
			reason:  "A pool with a change to start, behind a canary wave soaking at the target with one pool failed within the tolerance: the markers are fingerprinted by what they say (Function.waves), not whole.",
			req:     soakingPool,
			atLeast: 60,
			reads:   []string{"required.wave-canary[0]", "required.wave-canary[1]"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := New(WithPlanner(plan.New(plan.WithProviders(providers.All()...))), WithCacheSize(0), clockAt(sunday2300))
			req := tc.req(t)
			cache := newPlanCache(1)
			_, base := cache.fingerprint(req, f.waves(req))
			baseOut := answer(t, f, req)

			perturbed, missed := 0, 0
			under := map[string]int{}
			for _, leaf := range leaves(req) {
				r := proto.Clone(req).(*fnv1.RunFunctionRequest)
				leaf.set(r)
				out := answer(t, f, r)
				if proto.Equal(out, baseOut) {
					continue // The function does not read it, or it changes nothing.
				}
				perturbed++
				for _, p := range tc.reads {
					if strings.HasPrefix(leaf.path, p+".") {
						under[p]++
					}
				}
				if _, fp := cache.fingerprint(r, f.waves(r)); fp == base {
					missed++
					t.Errorf("%s\n%s: changing it changes the answer, but not the fingerprint: the cache would answer for another request", tc.reason, leaf.path)
				}
			}
			if perturbed < tc.atLeast {
				t.Errorf("%s\nonly %d perturbations changed the answer, want at least %d: the request does not exercise the decoder", tc.reason, perturbed, tc.atLeast)
			}
			for _, p := range tc.reads {
				if under[p] == 0 {
					t.Errorf("%s\nno value under %s changes the answer: the request does not exercise its reading", tc.reason, p)
				}
			}
			t.Logf("%d of %d values change the answer (%v under the reads); %d not fingerprinted", perturbed, len(leaves(req)), under, missed)
		})
	}
}

// soakingPool is the rolling pool with a policy of a canary wave soaking an
// hour, and the canary's markers: one settled 10 minutes ago at the target,
// one failed at it (within a tolerance of one).
func soakingPool(t *testing.T) *fnv1.RunFunctionRequest {
	t.Helper()
	req := gatedPool(t, map[string]any{
		"waves": []any{map[string]any{"name": "canary", "soak": "1h", "poolSelector": map[string]any{"matchLabels": map[string]any{"ring": "0"}}}},
		"halt":  map[string]any{"tolerance": 1},
	})
	pol, err := New().policy(req.GetInput())
	if err != nil {
		t.Fatal(err)
	}
	m := func(pool string, data map[string]any) *fnv1.Resource {
		return &fnv1.Resource{Resource: mustStruct(map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": "c-" + pool + "-rollout", "namespace": "team-b", "labels": map[string]any{"fleet.nodepool.dev/pool": pool}},
			"data":     data,
		})}
	}
	req.RequiredResources[requirementWavePrefix+"canary"] = &fnv1.Resources{Items: []*fnv1.Resource{
		m("a", map[string]any{"target": pol.target, "state": "Settled", "since": sunday2300.Add(-10 * time.Minute).Format(time.RFC3339)}),
		m("b", map[string]any{"target": pol.target, "state": "Failed", "startedAt": sunday2300.Add(-2 * time.Hour).Format(time.RFC3339)}),
	}}
	return req
}

// answer is what a response says, without its meta (which echoes the
// request's tag).
func answer(t *testing.T, f *Function, req *fnv1.RunFunctionRequest) *fnv1.RunFunctionResponse {
	t.Helper()
	rsp, err := f.RunFunction(context.Background(), proto.Clone(req).(*fnv1.RunFunctionRequest))
	if err != nil {
		t.Fatal(err)
	}
	rsp.Meta = nil
	return rsp
}

// rollingPool is the AWS example mid-rollout: planned at class medium,
// observed with statuses, then changed to class large while the old
// MachineSets still run.
func rollingPool(t *testing.T, f *Function) *fnv1.RunFunctionRequest {
	t.Helper()
	req := runningPool(t, f)
	spec := req.Observed.Composite.Resource.Fields["spec"].GetStructValue()
	spec.Fields["machine"].GetStructValue().Fields["class"] = structpb.NewStringValue("large")
	return req
}

// runningPool is the AWS example running as planned: its
// MachineDeployments rolled out and Available, on MachineSets of their
// templates, its control plane at its version.
func runningPool(t *testing.T, f *Function) *fnv1.RunFunctionRequest {
	t.Helper()
	req, err := exampleio.ForExample(filepath.Join("..", "..", "examples", "aws-machinedeployment"))
	if err != nil {
		t.Fatal(err)
	}
	first := answer(t, f, req)
	var sets []*fnv1.Resource
	for k, r := range first.GetDesired().GetResources() {
		o := proto.Clone(r.GetResource()).(*structpb.Struct)
		o.Fields["metadata"].GetStructValue().Fields["generation"] = structpb.NewNumberValue(1)
		if strings.HasPrefix(k, "machinedeployment-") {
			o.Fields["status"] = mustValue(map[string]any{
				"observedGeneration": 1, "replicas": 2, "readyReplicas": 2, "availableReplicas": 2, "upToDateReplicas": 2,
				"conditions": []any{map[string]any{"type": "Available", "status": "True"}},
			})
			ts := o.Fields["spec"].GetStructValue().Fields["template"].GetStructValue().Fields["spec"].GetStructValue().AsMap()
			sets = append(sets, &fnv1.Resource{Resource: mustStruct(map[string]any{
				"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "MachineSet",
				"metadata": map[string]any{"name": k + "-abcde", "namespace": "team-a", "labels": map[string]any{
					"cluster.x-k8s.io/deployment-name": o.Fields["metadata"].GetStructValue().Fields["name"].GetStringValue()}},
				"spec": map[string]any{"template": map[string]any{"spec": ts}},
			})})
		}
		req.Observed.Resources[k] = &fnv1.Resource{Resource: o}
	}
	req.RequiredResources["machinesets"] = &fnv1.Resources{Items: sets}
	req.RequiredResources["controlplane"] = &fnv1.Resources{Items: []*fnv1.Resource{{Resource: mustStruct(map[string]any{
		"apiVersion": "controlplane.cluster.x-k8s.io/v1beta2", "kind": "KubeadmControlPlane",
		"metadata": map[string]any{"name": "prod-eu-1", "namespace": "team-a"},
		"status":   map[string]any{"version": "v1.33.4"},
	})}}}
	return req
}

// A leaf is one value of a request, and how to perturb it.
type leaf struct {
	path string
	set  func(*fnv1.RunFunctionRequest)
}

// leaves lists every value of the request's composite, input, observed and
// required resources, each with a perturbation.
func leaves(req *fnv1.RunFunctionRequest) []leaf {
	var out []leaf
	add := func(root string, get func(*fnv1.RunFunctionRequest) *structpb.Struct) {
		walk(get(req), nil, func(path []string, v *structpb.Value) {
			p := append([]string{}, path...)
			out = append(out, leaf{path: root + "." + strings.Join(p, "."), set: func(r *fnv1.RunFunctionRequest) {
				perturb(at(get(r), p))
			}})
		})
	}
	add("observed.composite", func(r *fnv1.RunFunctionRequest) *structpb.Struct { return r.GetObserved().GetComposite().GetResource() })
	add("input", func(r *fnv1.RunFunctionRequest) *structpb.Struct { return r.GetInput() })
	for k := range req.GetObserved().GetResources() {
		add("observed."+k, func(r *fnv1.RunFunctionRequest) *structpb.Struct {
			return r.GetObserved().GetResources()[k].GetResource()
		})
	}
	for k, rs := range req.GetRequiredResources() {
		for i := range rs.GetItems() {
			add(fmt.Sprintf("required.%s[%d]", k, i), func(r *fnv1.RunFunctionRequest) *structpb.Struct {
				return r.GetRequiredResources()[k].GetItems()[i].GetResource()
			})
		}
	}
	return out
}

// walk calls fn on every scalar value below s, with its path.
func walk(s *structpb.Struct, path []string, fn func([]string, *structpb.Value)) {
	for k, v := range s.GetFields() {
		walkValue(v, append(path, k), fn)
	}
}

func walkValue(v *structpb.Value, path []string, fn func([]string, *structpb.Value)) {
	switch k := v.GetKind().(type) {
	case *structpb.Value_StructValue:
		walk(k.StructValue, path, fn)
	case *structpb.Value_ListValue:
		for i, item := range k.ListValue.GetValues() {
			walkValue(item, append(path, fmt.Sprint(i)), fn)
		}
	default:
		fn(path, v)
	}
}

// at finds the value at path.
func at(s *structpb.Struct, path []string) *structpb.Value {
	v := structpb.NewStructValue(s)
	for _, p := range path {
		if l := v.GetListValue(); l != nil {
			var i int
			_, _ = fmt.Sscan(p, &i)
			v = l.GetValues()[i]
			continue
		}
		v = v.GetStructValue().GetFields()[p]
	}
	return v
}

// perturb changes a scalar value in place.
func perturb(v *structpb.Value) {
	switch k := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		v.Kind = &structpb.Value_StringValue{StringValue: k.StringValue + "x"}
	case *structpb.Value_NumberValue:
		v.Kind = &structpb.Value_NumberValue{NumberValue: k.NumberValue + 1}
	case *structpb.Value_BoolValue:
		v.Kind = &structpb.Value_BoolValue{BoolValue: !k.BoolValue}
	default:
		v.Kind = &structpb.Value_StringValue{StringValue: "x"}
	}
}

func mustStruct(m map[string]any) *structpb.Struct {
	s, err := structpb.NewStruct(m)
	if err != nil {
		panic(err)
	}
	return s
}

func mustValue(v any) *structpb.Value {
	s, err := structpb.NewValue(v)
	if err != nil {
		panic(err)
	}
	return s
}
