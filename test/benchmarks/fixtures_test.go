package benchmarks

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"

	"github.com/fleetnodepool/function-fleetnodepool/fn/compose"
	"github.com/fleetnodepool/function-fleetnodepool/test/exampleio"
)

// This file builds every request the benchmarks send, in the shape
// Crossplane v2.4 sends it (crossplane/crossplane v2.4.2):
//
//   - the observed XR and composed resources, as the XR controller reads
//     them from its cache (full objects: server metadata, managed fields,
//     statuses);
//   - an empty desired state and an empty context (the first and only
//     pipeline step);
//   - the pool's required resources in required_resources only, seeded
//     from what the function required on the previous reconcile (the
//     dependency tracker of realtime compositions, on by default), so that
//     the first call resolves (internal/xfn/required_resources.go returns
//     after one call when the requirements resolve to what was sent).
//     extra_resources is empty: Crossplane fills it only for the deprecated
//     requirements.extra_resources, which the function does not use;
//   - meta.tag, the SHA-256 of the deterministic encoding of the request
//     (composite.Tag), and the capabilities Crossplane advertises.
//
// The required resources are the pool's Cluster and its control plane,
// found the way Crossplane finds them: by the selectors the function returns
// (fetch below). The world holds the live MachineSets of its
// MachineDeployments too, but a settled pool does not require them
// (plan.Plan.NeedsMachineSets; it did before 2026-11-30).

// exampleDir is the example pool: two zones of an AWS cluster, so two
// MachineDeployments, their AWSMachineTemplate and KubeadmConfigTemplate,
// and a MachineHealthCheck.
const exampleDir = "../../examples/aws-machinedeployment"

// composedObjects is how many objects the example pool composes.
const composedObjects = 5

// A fixture is one request shape.
type fixture struct {
	name string
	// realistic objects carry what the API server and controllers add;
	// otherwise objects are as composed or applied, plus a uid and a
	// resourceVersion: a lower bound on the request.
	realistic bool
}

var fixtures = []fixture{{"realistic", true}, {"minimal", false}}

// An edit changes the example pool's XR or policy before it is composed.
type edit func(xr, policy *structpb.Struct)

// typicalPool is the request Crossplane v2.4 sends for the example pool in
// steady state, with the edits applied to the pool.
func typicalPool(tb testing.TB, fx fixture, edits ...edit) *fnv1.RunFunctionRequest {
	tb.Helper()
	xr := yamlStruct(tb, exampleDir+"/xr.yaml", nil)
	input := yamlStruct(tb, exampleDir+"/composition.yaml", []string{"spec", "pipeline", "0", "input"})
	// The shipped policy (package/configuration) has no max node age: a
	// pool with one reads its MachineSets on every reconcile, and its
	// fixed MachineSets' ages would depend on the day the benchmark runs.
	delete(input.GetFields(), "rotation")
	for _, e := range edits {
		e(xr, input)
	}
	var world []*structpb.Struct
	if fx.realistic {
		cl := yamlStruct(tb, "testdata/cluster.yaml", nil)
		serverSide(tb, cl, nil, "argocd-controller", "")
		cp := yamlStruct(tb, "testdata/kubeadmcontrolplane.yaml", nil)
		serverSide(tb, cp, ownerRef(cl, "Cluster"), "argocd-controller", "")
		world = append(world, cl, cp)
	} else {
		cl := yamlStruct(tb, exampleDir+"/required/cluster.yaml", nil)
		cp := resource.MustStructJSON(`{"apiVersion": "controlplane.cluster.x-k8s.io/v1beta2", "kind": "KubeadmControlPlane",
			"metadata": {"name": "prod-eu-1", "namespace": "team-a"}, "spec": {"version": "v1.33.4"}, "status": {"version": "v1.33.4"}}`)
		world = append(world, identity(cl, "cluster"), identity(cp, "controlplane"))
	}
	// The management cluster's CRDs, which the first reconcile reads (the
	// steady state reads none: its objects show their kinds served).
	for _, rs := range exampleio.ServedCRDs() {
		world = append(world, rs.GetItems()[0].GetResource())
	}

	// The pool's first reconcile: Crossplane calls the function until its
	// requirements settle. Nothing of the pool exists yet.
	req := &fnv1.RunFunctionRequest{
		Observed: &fnv1.State{Composite: &fnv1.Resource{Resource: xr}},
		Desired:  &fnv1.State{},
		Input:    input,
		Context:  &structpb.Struct{Fields: map[string]*structpb.Value{}},
	}
	rsp := pipeline(tb, req, world)

	// What the first reconcile created, as the API server returns it, and
	// the MachineSets Cluster API created for the MachineDeployments.
	desired := rsp.GetDesired().GetResources()
	if len(desired) != composedObjects {
		tb.Fatalf("the example pool composes %d objects, want %d", len(desired), composedObjects)
	}
	req.Observed.Resources = map[string]*fnv1.Resource{}
	refs := []any{}
	for _, k := range slices.Sorted(maps.Keys(desired)) {
		o := proto.Clone(desired[k].GetResource()).(*structpb.Struct)
		if fx.realistic {
			serverSide(tb, o, ownerRef(xr, "FleetNodePool"), "apiextensions.crossplane.io/composed/0c0ffee", observedStatus(k))
		} else {
			identity(o, k)
		}
		req.Observed.Resources[k] = &fnv1.Resource{Resource: o}
		refs = append(refs, map[string]any{"apiVersion": str(o, "apiVersion"), "kind": str(o, "kind"), "name": str(o, "metadata", "name")})
		if str(o, "kind") == "MachineDeployment" {
			// The MachineDeployment exists in the API too: the function
			// reads its Cluster's MachineDeployments.
			world = append(world, o, machineSet(tb, o, len(world), fx.realistic))
		}
	}
	if fx.realistic {
		status := `{
			"provider": "aws", "backend": "MachineDeployment", "version": "v1.33.4", "machineType": "m6i.xlarge",
			"replicas": 6, "readyReplicas": 6, "availableReplicas": 6, "upToDateReplicas": 6,
			"conditions": [
				{"type": "Synced", "status": "True", "reason": "ReconcileSuccess", "lastTransitionTime": "2026-01-01T00:00:00Z"},
				{"type": "Ready", "status": "True", "reason": "Available", "lastTransitionTime": "2026-01-01T00:00:00Z"},
				{"type": "PoolAvailable", "status": "True", "reason": "Available", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}`
		serverSide(tb, xr, nil, "apiextensions.crossplane.io/composite", status)
		crossplane, err := structpb.NewValue(map[string]any{
			"compositionRef": map[string]any{"name": "fleetnodepool"}, "compositionRevisionRef": map[string]any{"name": "fleetnodepool-4b2c9"},
			"compositionUpdatePolicy": "Automatic", "resourceRefs": refs,
		})
		if err != nil {
			tb.Fatal(err)
		}
		xr.Fields["spec"].GetStructValue().Fields["crossplane"] = crossplane
	} else {
		identity(xr, "xr")
	}

	// The second reconcile: the objects show their kinds served, and the
	// function stops reading their CRDs (one more call, once per pool).
	rsp = pipeline(tb, req, world)
	// Steady state: Crossplane seeds the resources the function required
	// last time, and the function's first call resolves.
	req.RequiredResources = resolve(tb, rsp.GetRequirements(), world)
	req.Meta = &fnv1.RequestMeta{Tag: tag(tb, req), Capabilities: []fnv1.Capability{
		fnv1.Capability_CAPABILITY_CAPABILITIES,
		fnv1.Capability_CAPABILITY_REQUIRED_RESOURCES,
		fnv1.Capability_CAPABILITY_CREDENTIALS,
		fnv1.Capability_CAPABILITY_CONDITIONS,
		fnv1.Capability_CAPABILITY_REQUIRED_SCHEMAS,
	}}
	rsp = run(tb, req)
	if got := resolve(tb, rsp.GetRequirements(), world); !requiredEqual(got, req.GetRequiredResources()) {
		tb.Fatalf("the steady-state request does not resolve the function's requirements in one call: sent %v, required %v",
			slices.Sorted(maps.Keys(req.GetRequiredResources())), rsp.GetRequirements())
	}
	if n := len(rsp.GetDesired().GetResources()); n != composedObjects || len(rsp.GetResults()) > 0 {
		tb.Fatalf("the steady-state request composes %d objects (want %d), results %v", n, composedObjects, rsp.GetResults())
	}
	return req
}

// changedPool is req after a change of the pool: Cluster API moved the
// status of a MachineDeployment, so its resourceVersion is new.
func changedPool(req *fnv1.RunFunctionRequest) *fnv1.RunFunctionRequest {
	c := proto.Clone(req).(*fnv1.RunFunctionRequest)
	for _, r := range c.GetObserved().GetResources() {
		if str(r.GetResource(), "kind") == "MachineDeployment" {
			r.GetResource().GetFields()["metadata"].GetStructValue().Fields["resourceVersion"] = structpb.NewStringValue("1234568")
			break
		}
	}
	return c
}

// run calls the function without a cache.
func run(tb testing.TB, req *fnv1.RunFunctionRequest) *fnv1.RunFunctionResponse {
	tb.Helper()
	rsp, err := compose.New(withProviders, compose.WithCacheSize(0)).RunFunction(context.Background(), req)
	if err != nil {
		tb.Fatal(err)
	}
	for _, r := range rsp.GetResults() {
		if r.GetSeverity() == fnv1.Severity_SEVERITY_FATAL {
			tb.Fatalf("the function returned a Fatal result: %s", r.GetMessage())
		}
	}
	return rsp
}

// pipeline calls the function the way Crossplane's FetchingFunctionRunner
// does: until its requirements settle, each time with what they resolve to.
func pipeline(tb testing.TB, req *fnv1.RunFunctionRequest, world []*structpb.Struct) *fnv1.RunFunctionResponse {
	tb.Helper()
	var last *fnv1.Requirements
	for range 6 {
		rsp := run(tb, req)
		if proto.Equal(rsp.GetRequirements(), last) {
			return rsp
		}
		last = rsp.GetRequirements()
		req.RequiredResources = resolve(tb, last, world)
	}
	tb.Fatal("the function's requirements did not settle")
	return nil
}

// resolve fetches what requirements select from world.
func resolve(tb testing.TB, rq *fnv1.Requirements, world []*structpb.Struct) map[string]*fnv1.Resources {
	tb.Helper()
	if len(rq.GetExtraResources()) > 0 { //nolint:staticcheck // Checking the deprecated field is unused.
		tb.Fatal("the function asks for extra resources; the fixture resolves required resources only")
	}
	out := map[string]*fnv1.Resources{}
	for n, sel := range rq.GetResources() {
		out[n] = fetch(sel, world)
	}
	return out
}

// fetch is Crossplane's ExistingRequiredResourcesFetcher over world: one
// object by name (nil when there is none), or every object with the labels,
// sorted by namespace and name.
func fetch(sel *fnv1.ResourceSelector, world []*structpb.Struct) *fnv1.Resources {
	var items []*fnv1.Resource
	for _, o := range world {
		if str(o, "apiVersion") != sel.GetApiVersion() || str(o, "kind") != sel.GetKind() || str(o, "metadata", "namespace") != sel.GetNamespace() {
			continue
		}
		labels := o.GetFields()["metadata"].GetStructValue().GetFields()["labels"].GetStructValue().GetFields()
		match := true
		switch m := sel.GetMatch().(type) {
		case *fnv1.ResourceSelector_MatchName:
			match = str(o, "metadata", "name") == m.MatchName
		case *fnv1.ResourceSelector_MatchLabels:
			for k, v := range m.MatchLabels.GetLabels() {
				match = match && labels[k].GetStringValue() == v
			}
		}
		if match {
			items = append(items, &fnv1.Resource{Resource: o})
		}
	}
	if _, byName := sel.GetMatch().(*fnv1.ResourceSelector_MatchName); byName && len(items) == 0 {
		return nil
	}
	slices.SortFunc(items, func(a, b *fnv1.Resource) int {
		return cmp.Compare(str(a.GetResource(), "metadata", "name"), str(b.GetResource(), "metadata", "name"))
	})
	return &fnv1.Resources{Items: items}
}

func requiredEqual(a, b map[string]*fnv1.Resources) bool {
	return maps.EqualFunc(a, b, func(x, y *fnv1.Resources) bool { return proto.Equal(x, y) })
}

// tag is Crossplane's composite.Tag: the SHA-256 of the request's
// deterministic encoding, taken before meta is set.
func tag(tb testing.TB, req *fnv1.RunFunctionRequest) string {
	tb.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		tb.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// machineSet is the MachineSet Cluster API's MachineDeployment controller
// creates for md (core/reconcilers/machinedeployment, computeDesiredMS),
// running three machines: the template's labels plus the unique hash label,
// the MachineDeployment's selector, annotations and machine spec.
func machineSet(tb testing.TB, md *structpb.Struct, i int, realistic bool) *structpb.Struct {
	tb.Helper()
	m := md.AsMap()
	spec := m["spec"].(map[string]any)
	tmpl := spec["template"].(map[string]any)
	tmd, _ := tmpl["metadata"].(map[string]any)
	suffix := fmt.Sprintf("x%dk2p", i%10)
	hash := "3512863752-" + suffix
	tmplLabels := map[string]any{"cluster.x-k8s.io/deployment-name": str(md, "metadata", "name")}
	if l, ok := tmd["labels"].(map[string]any); ok {
		maps.Copy(tmplLabels, l)
	}
	tmplLabels["machine-template-hash"] = hash
	labels := maps.Clone(tmplLabels)
	labels["cluster.x-k8s.io/deployment-name"] = str(md, "metadata", "name")
	meta := map[string]any{"name": str(md, "metadata", "name") + "-" + suffix, "namespace": str(md, "metadata", "namespace"), "labels": labels}
	msSpec := map[string]any{"template": map[string]any{"spec": tmpl["spec"]}}
	if realistic {
		meta["finalizers"] = []any{"cluster.x-k8s.io/machineset"}
		meta["annotations"] = map[string]any{
			"machinedeployment.clusters.x-k8s.io/desired-replicas": "3",
			"machinedeployment.clusters.x-k8s.io/max-replicas":     "4",
			"machinedeployment.clusters.x-k8s.io/revision":         "1",
		}
		selector := map[string]any{"machine-template-hash": hash}
		if sel, ok := spec["selector"].(map[string]any)["matchLabels"].(map[string]any); ok {
			maps.Copy(selector, sel)
		}
		tmeta := map[string]any{"labels": tmplLabels}
		if a, ok := tmd["annotations"].(map[string]any); ok {
			tmeta["annotations"] = a
		}
		msSpec = map[string]any{
			"clusterName": spec["clusterName"],
			"replicas":    3,
			"selector":    map[string]any{"matchLabels": selector},
			"deletion":    map[string]any{"order": "Random"},
			"template": map[string]any{
				"metadata": tmeta,
				"spec":     tmpl["spec"],
			},
		}
	}
	s, err := structpb.NewStruct(map[string]any{
		"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "MachineSet", "metadata": meta, "spec": msSpec,
	})
	if err != nil {
		tb.Fatal(err)
	}
	if !realistic {
		return identity(s, meta["name"].(string))
	}
	var sel []string
	for _, k := range slices.Sorted(maps.Keys(msSpec["selector"].(map[string]any)["matchLabels"].(map[string]any))) {
		sel = append(sel, k+"="+msSpec["selector"].(map[string]any)["matchLabels"].(map[string]any)[k].(string))
	}
	serverSide(tb, s, ownerRef(md, "MachineDeployment"), "capi-machinedeployment", `{
		"observedGeneration": 1, "selector": "`+strings.Join(sel, ",")+`",
		"replicas": 3, "readyReplicas": 3, "availableReplicas": 3, "upToDateReplicas": 3,
		"conditions": [
			{"type": "MachinesReady", "status": "True", "reason": "Ready", "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1},
			{"type": "MachinesUpToDate", "status": "True", "reason": "UpToDate", "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1},
			{"type": "ScalingUp", "status": "False", "reason": "NotScalingUp", "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1},
			{"type": "ScalingDown", "status": "False", "reason": "NotScalingDown", "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1},
			{"type": "Remediating", "status": "False", "reason": "NotRemediating", "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1},
			{"type": "Deleting", "status": "False", "reason": "NotDeleting", "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1},
			{"type": "Paused", "status": "False", "reason": "NotPaused", "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}],
		"deprecated": {"v1beta1": {"fullyLabeledReplicas": 3, "readyReplicas": 3, "availableReplicas": 3, "conditions": [
			{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
			{"type": "MachinesCreated", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
			{"type": "MachinesReady", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
			{"type": "Resized", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}}`)
	return s
}

// observedStatus is the status Cluster API writes on the composed object k.
func observedStatus(k string) string {
	if !strings.HasPrefix(k, "machinedeployment") {
		return ""
	}
	return `{"observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "availableReplicas": 3, "upToDateReplicas": 3,
		"phase": "Running", "selector": "cluster.x-k8s.io/cluster-name=prod-eu-1",
		"conditions": [
			{"type": "Available", "status": "True", "reason": "Available", "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1},
			{"type": "MachinesReady", "status": "True", "reason": "Ready", "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1},
			{"type": "MachinesUpToDate", "status": "True", "reason": "UpToDate", "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}]}`
}

// identity adds the least the API server adds to every object: a uid and a
// resourceVersion.
func identity(o *structpb.Struct, id string) *structpb.Struct {
	md := o.GetFields()["metadata"].GetStructValue()
	md.Fields["uid"] = structpb.NewStringValue(uid(id))
	md.Fields["resourceVersion"] = structpb.NewStringValue("1234567")
	return o
}

// uid is a stable uid for the object named id.
func uid(id string) string {
	h := sha256.Sum256([]byte(id))
	x := hex.EncodeToString(h[:16])
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// ownerRef is a controller reference to o, of kind kind.
func ownerRef(o *structpb.Struct, kind string) map[string]any {
	return map[string]any{
		"apiVersion": str(o, "apiVersion"), "kind": kind, "name": str(o, "metadata", "name"),
		"uid": uid(kind + "/" + str(o, "metadata", "name")), "controller": true, "blockOwnerDeletion": true,
	}
}

// str is the string at path in o.
func str(o *structpb.Struct, path ...string) string {
	f := o.GetFields()
	for _, k := range path[:len(path)-1] {
		f = f[k].GetStructValue().GetFields()
	}
	return f[path[len(path)-1]].GetStringValue()
}

// serverSide adds to o what the API server and controllers add: metadata,
// the owner (when not nil), managed fields of manager's apply and a
// status, status when not empty. A status already in o is kept.
func serverSide(tb testing.TB, o *structpb.Struct, owner map[string]any, manager, status string) {
	tb.Helper()
	md := o.Fields["metadata"].GetStructValue()
	kind := str(o, "kind")
	add := map[string]any{
		"uid": uid(kind + "/" + str(o, "metadata", "name")), "resourceVersion": "1234567", "generation": 1,
		"creationTimestamp": "2026-01-01T00:00:00Z",
	}
	if owner != nil {
		add["ownerReferences"] = []any{owner}
	}
	for k, v := range add {
		val, err := structpb.NewValue(v)
		if err != nil {
			tb.Fatal(err)
		}
		md.Fields[k] = val
	}
	if status != "" {
		o.Fields["status"] = structpb.NewStructValue(resource.MustStructJSON(status))
	}
	applied, err := structpb.NewValue(fieldsV1(o.AsMap()))
	if err != nil {
		tb.Fatal(err)
	}
	entries := []any{map[string]any{"manager": manager, "operation": "Apply", "apiVersion": str(o, "apiVersion"),
		"time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1"}}
	if st := o.Fields["status"].GetStructValue(); st != nil {
		entries = append(entries, map[string]any{"manager": "manager", "operation": "Update", "subresource": "status",
			"apiVersion": str(o, "apiVersion"), "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1",
			"fieldsV1": fieldsV1(map[string]any{"status": st.AsMap()})})
	}
	mf, err := structpb.NewList(entries)
	if err != nil {
		tb.Fatal(err)
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

func yamlStruct(tb testing.TB, path string, at []string) *structpb.Struct {
	tb.Helper()
	y, err := os.ReadFile(path) //nolint:gosec // A file of this repository.
	if err != nil {
		tb.Fatal(err)
	}
	var v any
	if err := yaml.Unmarshal(y, &v); err != nil {
		tb.Fatal(err)
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
		tb.Fatal(err)
	}
	return s
}

// TestTypicalPool holds the fixtures to the shape Crossplane v2.4 sends:
// typicalPool fails when a fixture's requirements do not resolve in one
// call. It also reports the size of each request.
func TestTypicalPool(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			req := typicalPool(t, fx)
			if len(req.GetExtraResources()) > 0 { //nolint:staticcheck // Checking the deprecated field is unused.
				t.Errorf("extra_resources: got %d entries, want none", len(req.GetExtraResources())) //nolint:staticcheck // As above.
			}
			// A settled pool: no MachineSets (plan.Plan.NeedsMachineSets).
			want := map[string]int{"cluster": 1, "controlplane": 1}
			got := map[string]int{}
			for n, rs := range req.GetRequiredResources() {
				got[n] = len(rs.GetItems())
			}
			if !maps.Equal(got, want) {
				t.Errorf("required resources: got %v, want %v", got, want)
			}
			t.Logf("%s: request %d bytes", fx.name, proto.Size(req))
		})
	}
}
