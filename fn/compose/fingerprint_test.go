package compose

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

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
// so the cache can never answer for another request. The request is a
// rolling pool (a class change, the old templates kept while MachineSets
// use them) with its Cluster, control plane and MachineSets, and no
// resourceVersions, so that the fingerprint hashes content rather than
// versions.
func TestFingerprintCoversDecode(t *testing.T) {
	f := New(WithPlanner(plan.New(plan.WithProviders(providers.All()...))), WithCacheSize(0))
	req := rollingPool(t, f)
	cache := newPlanCache(1)
	_, base := cache.fingerprint(req)
	baseOut := answer(t, f, req)

	perturbed, missed := 0, 0
	for _, leaf := range leaves(req) {
		r := proto.Clone(req).(*fnv1.RunFunctionRequest)
		leaf.set(r)
		out := answer(t, f, r)
		if proto.Equal(out, baseOut) {
			continue // The function does not read it, or it changes nothing.
		}
		perturbed++
		if _, fp := cache.fingerprint(r); fp == base {
			missed++
			t.Errorf("%s: changing it changes the answer, but not the fingerprint: the cache would answer for another request", leaf.path)
		}
	}
	if perturbed < 50 {
		t.Errorf("only %d perturbations changed the answer: the request does not exercise the decoder", perturbed)
	}
	t.Logf("%d of %d values change the answer; %d not fingerprinted", perturbed, len(leaves(req)), missed)
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
	spec := req.Observed.Composite.Resource.Fields["spec"].GetStructValue()
	spec.Fields["machine"].GetStructValue().Fields["class"] = structpb.NewStringValue("large")
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
