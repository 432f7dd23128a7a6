package compose

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"

	"github.com/fleetnodepool/function-fleetnodepool/fn/plan"
)

// policyCellsJSON is policyJSON with two cells.
const policyCellsJSON = `{
	"apiVersion": "fleetnodepool.fn.crossplane.io/v1beta1",
	"kind": "Policy",
	"catalog": {"medium": {"aws": "m6i.xlarge", "azure": "Standard_D4s_v5"}, "large": {"aws": "m6i.2xlarge"}},
	"channels": {"stable": "v1.33.4"},
	"defaults": {"channel": "stable"},
	"aws": {"iamInstanceProfile": "nodes.cluster-api-provider-aws.sigs.k8s.io"},
	"rollouts": {"concurrency": 1},
	"cells": {"eu-1": {"providerConfigRef": {"name": "eu-1-admin"}}, "us-1": {"providerConfigRef": {"kind": "ProviderConfig", "name": "us-1"}, "watch": true}}
}`

// cellPool is the pool of xrJSON in cell eu-1, as Crossplane first calls
// for it: nothing observed, and no required resources (a pool in a cell
// reads its Cluster from the cell, not from Crossplane's API server).
func cellPool(t *testing.T, cell string) *fnv1.RunFunctionRequest {
	t.Helper()
	return cellPoolOf(t, xrJSON, cell)
}

// cellPoolOf is cellPool of another XR (the legacy one).
func cellPoolOf(t *testing.T, xr, cell string) *fnv1.RunFunctionRequest {
	t.Helper()
	req := newRequest(xr, policyCellsJSON)
	req.Observed.Composite.Resource.Fields["spec"].GetStructValue().Fields["cell"] = structpb.NewStringValue(cell)
	req.RequiredResources = nil
	return req
}

// A fakeCell stands in for provider-kubernetes and a cell's API server:
// it applies what each Object sends, and reports the object back.
type fakeCell struct {
	objects map[string]map[string]any // by kind/name
	down    bool
	// others are other pools' Objects, which Crossplane sends where the
	// function requires them.
	others []*fnv1.Resource
}

func newFakeCell() *fakeCell {
	c := &fakeCell{objects: map[string]map[string]any{}}
	c.put(resource.MustStructJSON(kubeadmCluster).AsMap())
	c.put(map[string]any{"apiVersion": "controlplane.cluster.x-k8s.io/v1beta2", "kind": "KubeadmControlPlane",
		"metadata": map[string]any{"name": "prod-eu-1", "namespace": "team-a"}, "status": map[string]any{"version": "v1.33.4"}})
	return c
}

func cellKey(m map[string]any) string {
	return m["kind"].(string) + "/" + m["metadata"].(map[string]any)["name"].(string)
}

func (c *fakeCell) put(m map[string]any) { c.objects[cellKey(m)] = m }

// reconcile is the request after rsp: every desired Object applied (or
// observed) in the cell and reported back, as provider-kubernetes does.
func (c *fakeCell) reconcile(t *testing.T, req *fnv1.RunFunctionRequest, rsp *fnv1.RunFunctionResponse) *fnv1.RunFunctionRequest {
	t.Helper()
	next := reconciled(req, rsp)
	next.Observed.Resources = map[string]*fnv1.Resource{}
	for k, r := range rsp.GetDesired().GetResources() {
		o := proto.CloneOf(r.GetResource()).AsMap()
		if o["kind"] != objectKind {
			next.Observed.Resources[k] = &fnv1.Resource{Resource: mustStruct(o)}
			continue
		}
		spec := o["spec"].(map[string]any)
		m := spec["forProvider"].(map[string]any)["manifest"].(map[string]any)
		synced := map[string]any{"type": "Synced", "status": "True", "reason": "ReconcileSuccess"}
		var seen map[string]any
		switch {
		case c.down:
			synced = map[string]any{"type": "Synced", "status": "False", "reason": "ReconcileError", "message": "connect: connection refused"}
		case slices.Equal(anySlice(spec["managementPolicies"]), []any{"Observe"}):
			if seen = c.objects[cellKey(m)]; seen == nil {
				synced = map[string]any{"type": "Synced", "status": "False", "reason": "ReconcileError", "message": "external resource does not exist"}
			}
		default:
			seen = proto.CloneOf(mustStruct(m)).AsMap()
			if was := c.objects[cellKey(m)]; was != nil {
				seen["status"] = was["status"]
				md := seen["metadata"].(map[string]any)
				md["generation"] = was["metadata"].(map[string]any)["generation"]
			}
			c.put(seen)
		}
		o["status"] = map[string]any{"conditions": []any{synced}}
		if seen != nil {
			o["status"].(map[string]any)["atProvider"] = map[string]any{"manifest": seen}
		}
		next.Observed.Resources[k] = &fnv1.Resource{Resource: mustStruct(o)}
	}
	// Crossplane sends the Objects the function requires.
	next.RequiredResources = map[string]*fnv1.Resources{}
	for k, sel := range rsp.GetRequirements().GetResources() {
		rs := &fnv1.Resources{}
		for _, r := range append(slices.Collect(maps.Values(next.Observed.Resources)), c.others...) {
			labels := field(r.GetResource().GetFields(), "metadata", "labels").GetStructValue().AsMap()
			match := r.GetResource().GetFields()["kind"].GetStringValue() == sel.GetKind()
			for l, v := range sel.GetMatchLabels().GetLabels() {
				match = match && labels[l] == v
			}
			if match {
				rs.Items = append(rs.Items, r)
			}
		}
		next.RequiredResources[k] = rs
	}
	return next
}

func anySlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// settle has Cluster API roll out every MachineDeployment in the cell.
func (c *fakeCell) settle(generation float64) {
	for k, m := range c.objects {
		if !strings.HasPrefix(k, "MachineDeployment/") {
			continue
		}
		m["metadata"].(map[string]any)["generation"] = generation
		m["status"] = map[string]any{"observedGeneration": generation, "replicas": 3, "upToDateReplicas": 3, "availableReplicas": 3, "readyReplicas": 3,
			"conditions": []any{map[string]any{"type": "Available", "status": "True"}}}
	}
}

// rolling has every MachineDeployment in the cell replace its machines.
func (c *fakeCell) rolling(generation float64) {
	c.settle(generation)
	for k, m := range c.objects {
		if strings.HasPrefix(k, "MachineDeployment/") {
			m["status"].(map[string]any)["upToDateReplicas"] = 1
		}
	}
}

// desiredKinds are the kinds of the answer's desired resources, by key,
// each Object's as Object(its manifest's kind).
func desiredKinds(rsp *fnv1.RunFunctionResponse) map[string]string {
	out := map[string]string{}
	for k, r := range rsp.GetDesired().GetResources() {
		f := r.GetResource().GetFields()
		kind := f["kind"].GetStringValue()
		if kind == objectKind {
			kind += "(" + field(f, "spec", "forProvider", "manifest", "kind").GetStringValue() + ")"
		}
		out[k] = kind
	}
	return out
}

// TestCellPoolLifecycle: a pool in a cell reads its Cluster and control
// plane from the cell, through observe-only Objects, before it composes
// anything; then every object is sent in an Object of the cell. A cell that
// cannot be read holds the pool as it is.
func TestCellPoolLifecycle(t *testing.T) {
	f := newFunction(WithCacheSize(0))
	cell := newFakeCell()

	// 1. A new pool asks the cell for its Cluster only.
	rsp := answer(t, f, cellPool(t, "eu-1"))
	if diff := cmp.Diff(map[string]string{keyRemoteCluster: "Object(Cluster)"}, desiredKinds(rsp)); diff != "" {
		t.Errorf("A new pool in a cell reads its Cluster from the cell first: -want +got:\n%s", diff)
	}
	wantObserver := resource.MustStructJSON(`{"apiVersion": "kubernetes.m.crossplane.io/v1alpha1", "kind": "Object",
		"metadata": {"name": "workers-cluster", "namespace": "team-a", "labels": {"fleet.nodepool.dev/pool": "workers", "cluster.x-k8s.io/cluster-name": "prod-eu-1", "fleet.nodepool.dev/cell": "eu-1"}},
		"spec": {"managementPolicies": ["Observe"], "providerConfigRef": {"kind": "ClusterProviderConfig", "name": "eu-1-admin"},
			"forProvider": {"manifest": {"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster", "metadata": {"name": "prod-eu-1", "namespace": "team-a"}}}}}`)
	if diff := cmp.Diff(wantObserver, rsp.GetDesired().GetResources()[keyRemoteCluster].GetResource(), protocmp.Transform()); diff != "" {
		t.Errorf("The Cluster's observer only observes, through the cell's provider config: -want +got:\n%s", diff)
	}
	if c := condition(rsp, TypePoolAvailable); c.GetReason() != ReasonReadingCell {
		t.Errorf("A pool reading its cell says so: got condition %v", c)
	}

	// 2. With the Cluster read, it reads the control plane.
	req := cell.reconcile(t, cellPool(t, "eu-1"), rsp)
	rsp = answer(t, f, req)
	if diff := cmp.Diff(map[string]string{keyRemoteCluster: "Object(Cluster)", keyRemoteControlPlane: "Object(KubeadmControlPlane)"}, desiredKinds(rsp)); diff != "" {
		t.Errorf("With its Cluster read, the pool reads its control plane: -want +got:\n%s", diff)
	}

	// 3. With both read, every object is sent in an Object of the cell: the
	// same objects a local pool composes, byte for byte, but for the record
	// of when each MachineDeployment's machines were sent (a cell's
	// MachineSets cannot be read to date them).
	req = cell.reconcile(t, req, rsp)
	rsp = answer(t, f, req)
	local := answer(t, newFunction(WithCacheSize(0)), newRequest(xrJSON, policyCellsJSON))
	if len(local.GetDesired().GetResources()) < 3 {
		t.Fatalf("the local pool composes %d objects", len(local.GetDesired().GetResources()))
	}
	for k, r := range local.GetDesired().GetResources() {
		w := rsp.GetDesired().GetResources()[k]
		if w == nil {
			t.Errorf("%s: composed locally, not in the cell", k)
			continue
		}
		wf := w.GetResource().GetFields()
		inner := proto.CloneOf(r.GetResource())
		meta := inner.Fields["metadata"].GetStructValue()
		meta.Fields["namespace"] = structpb.NewStringValue("team-a")
		if ts := field(inner.GetFields(), "spec", "template", "spec").GetStructValue().GetFields(); inner.GetFields()["kind"].GetStringValue() == "MachineDeployment" {
			meta.Fields["annotations"] = structpb.NewStructValue(mustStruct(map[string]any{plan.AnnotationRevision: strings.Join([]string{
				sunday2300.UTC().Format(time.RFC3339), sunday2300.UTC().Format(time.RFC3339), ts["version"].GetStringValue(), field(ts, "infrastructureRef", "name").GetStringValue(),
				field(ts, "bootstrap", "configRef", "name").GetStringValue(), "-"}, " ")}))
		}
		if diff := cmp.Diff(inner, field(wf, "spec", "forProvider", "manifest").GetStructValue(), protocmp.Transform()); diff != "" {
			t.Errorf("%s: the cell gets what a local pool composes, in the pool's namespace: -want +got:\n%s", k, diff)
		}
		kind := r.GetResource().GetFields()["kind"].GetStringValue()
		name := field(r.GetResource().GetFields(), "metadata", "name").GetStringValue()
		if got, want := field(wf, "metadata", "name").GetStringValue(), strings.ToLower(kind)+"-"+name; got != want {
			t.Errorf("%s: Object named %q, want %q", k, got, want)
		}
		if got := field(wf, "spec", "providerConfigRef", "name").GetStringValue(); got != "eu-1-admin" {
			t.Errorf("%s: provider config %q, want the cell's", k, got)
		}
		cel := field(wf, "spec", "readiness", "celQuery").GetStringValue()
		if (kind == "MachineDeployment") != (cel == celAvailable) {
			t.Errorf("%s: a MachineDeployment's Object is ready when it is Available (got readiness query %q)", k, cel)
		}
		if w.GetReady() != r.GetReady() {
			t.Errorf("%s: ready %v, want %v as the local pool's", k, w.GetReady(), r.GetReady())
		}
	}

	// 4. The cell stops answering: the pool is held as it is.
	req = cell.reconcile(t, req, rsp)
	cell.down = true
	held := cell.reconcile(t, req, answer(t, f, req))
	rsp = answer(t, f, held)
	want := "cannot read the Cluster team-a/prod-eu-1 from cell eu-1 (connect: connection refused): nothing is composed, changed or deleted until the cell answers; " +
		"check that its API server is up and that provider-kubernetes reaches it (Object team-a/workers-cluster)"
	if got := rsp.GetResults(); len(got) != 1 || got[0].GetSeverity() != fnv1.Severity_SEVERITY_FATAL || got[0].GetMessage() != want {
		t.Errorf("An unreadable cell holds the pool with a Fatal result naming the Cluster and the cell: got %v, want %q", got, want)
	}
	if rsp.GetDesired() != nil {
		t.Errorf("A Fatal result has Crossplane apply and delete nothing: got desired %v", desiredKinds(rsp))
	}
}

// TestCellTemplateRetention: the cell's MachineSets cannot be listed, so a
// pool in a cell keeps its old templates while its MachineDeployments
// report a rollout (or nothing), and releases them once they run every
// machine up to date, as a local pool does once no MachineSet uses them.
func TestCellTemplateRetention(t *testing.T) {
	now := sunday2300
	f := newFunction(WithCacheSize(0), WithClock(func() time.Time { return now }))
	cell := newFakeCell()
	req := cellPool(t, "eu-1")
	for range 3 { // Cluster, control plane, objects.
		req = cell.reconcile(t, req, answer(t, f, req))
	}
	cell.settle(1)
	req = cell.reconcile(t, req, answer(t, f, req))
	before := desiredKinds(answer(t, f, req))

	// The class changes: new templates, and a rollout.
	spec := req.Observed.Composite.Resource.Fields["spec"].GetStructValue()
	spec.Fields["machine"] = mustValue(map[string]any{"class": "large"})
	rsp := answer(t, f, req)
	var old []string
	for k := range before {
		if strings.HasPrefix(k, "infra-") && desiredKinds(rsp)[k] != "" {
			old = append(old, k)
		}
	}
	if len(old) == 0 {
		t.Fatalf("the class change did not keep the old template while the MachineDeployments are not known to have rolled: before %v, after %v", before, desiredKinds(rsp))
	}
	// Crossplane fetches the Cluster's pools, and the rollout starts: the
	// MachineDeployment is sent with the new template.
	for range 2 {
		req = cell.reconcile(t, req, rsp)
		rsp = answer(t, f, req)
	}
	for k, r := range rsp.GetDesired().GetResources() {
		if strings.HasPrefix(k, "machinedeployment-") {
			ref := field(r.GetResource().GetFields(), "spec", "forProvider", "manifest", "spec", "template", "spec", "infrastructureRef", "name").GetStringValue()
			if strings.HasSuffix(ref, strings.TrimPrefix(old[0], "infra-")) {
				t.Fatalf("%s still uses %s: the rollout did not start", k, ref)
			}
		}
	}

	cases := []struct {
		reason string
		state  func()
		after  time.Duration
		kept   bool
	}{
		{"The MachineDeployments roll: their old MachineSets use the old templates.", func() { cell.rolling(2) }, time.Minute, true},
		{"Still rolling long after: still kept.", func() {}, 10 * plan.ReleaseAfter, true},
		{"A report that counts every machine up to date (a rollout Cluster API has just begun may look so): unused from now.", func() { cell.settle(2) }, 0, true},
		{"The next report shows the rollout again: in use, the wait starts anew.", func() { cell.rolling(2) }, 10 * time.Minute, true},
		{"Rolled out: unused from now.", func() { cell.settle(2) }, 0, true},
		{"Longer than the local wait, shorter than the cell's (it outlasts provider-kubernetes' poll): kept.", func() {}, 10 * plan.ReleaseAfter, true},
		{"The cell's wait since it was last seen in use: released.", func() {}, plan.CellReleaseAfter - 10*plan.ReleaseAfter, false},
	}
	for _, tc := range cases {
		tc.state()
		now = now.Add(tc.after)
		req = cell.reconcile(t, req, rsp)
		rsp = answer(t, f, req)
		for _, k := range old {
			if _, kept := rsp.GetDesired().GetResources()[k]; kept != tc.kept {
				t.Errorf("%s\n%s: kept %v, want %v", tc.reason, k, kept, tc.kept)
			}
		}
	}
}

// TestCellInput: a cell the policy does not define, and a move between the
// local management cluster and a cell, are refused with what to do.
func TestCellInput(t *testing.T) {
	cases := map[string]struct {
		reason string
		req    func(t *testing.T) *fnv1.RunFunctionRequest
		want   string
	}{
		"UnknownCell": {
			reason: "A cell the policy does not name is a Fatal result naming spec.cell and the cells there are.",
			req:    func(t *testing.T) *fnv1.RunFunctionRequest { return cellPool(t, "ap-1") },
			want:   `spec.cell: Unsupported value: "ap-1": supported values: "eu-1", "us-1"`,
		},
		"NoCells": {
			reason: "A policy without cells: spec.cell says how to fix it.",
			req: func(t *testing.T) *fnv1.RunFunctionRequest {
				req := cellPool(t, "eu-1")
				req.Input = resource.MustStructJSON(policyJSON)
				return req
			},
			want: `spec.cell: Invalid value: "eu-1": the platform policy defines no cells: ask the platform team to add the cell to the Composition's input.cells, ` +
				`or leave spec.cell out if the pool's Cluster is in the management cluster Crossplane runs in`,
		},
		"NoProviderConfig": {
			reason: "A cell of the policy that names no provider config: the field to fix.",
			req: func(t *testing.T) *fnv1.RunFunctionRequest {
				req := cellPool(t, "eu-1")
				req.Input.Fields["cells"] = mustValue(map[string]any{"eu-1": map[string]any{"providerConfigRef": map[string]any{"kind": "ClusterProviderConfig"}}})
				return req
			},
			want: `input.cells[eu-1].providerConfigRef.name: Required value: name the provider-kubernetes provider config whose kubeconfig reaches the cell's API server`,
		},
		"ProviderConfigKind": {
			reason: "A provider config of a kind provider-kubernetes does not have.",
			req: func(t *testing.T) *fnv1.RunFunctionRequest {
				req := cellPool(t, "eu-1")
				req.Input.Fields["cells"] = mustValue(map[string]any{"eu-1": map[string]any{"providerConfigRef": map[string]any{"kind": "Secret", "name": "eu-1"}}})
				return req
			},
			want: `input.cells[eu-1].providerConfigRef.kind: Unsupported value: "Secret": supported values: "ClusterProviderConfig", "ProviderConfig"`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			rsp := answer(t, newFunction(), tc.req(t))
			got := ""
			for _, r := range rsp.GetResults() {
				if r.GetSeverity() == fnv1.Severity_SEVERITY_FATAL {
					got = r.GetMessage()
				}
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("%s\ngot Fatal %q, want it to say %q", tc.reason, got, tc.want)
			}
		})
	}
}

// TestCellChangeRefused: a running local pool whose spec now names a cell
// (spec.cell is immutable once set, but may be added) keeps its objects
// where they run, as they are: the new cell's Cluster API would make new
// nodes, and Crossplane would delete the running ones with their objects.
func TestCellChangeRefused(t *testing.T) {
	f := newFunction(WithCacheSize(0))
	local := runningPool(t, f)
	req := proto.CloneOf(local)
	req.Observed.Composite.Resource.Fields["spec"].GetStructValue().Fields["cell"] = structpb.NewStringValue("eu-1")
	req.Input = resource.MustStructJSON(policyCellsJSON)
	cell := newFakeCell()
	cell.put(map[string]any{"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
		"metadata": map[string]any{"name": "prod-eu-1", "namespace": "team-a"}, "spec": resource.MustStructJSON(kubeadmCluster).AsMap()["spec"]})
	withStatus(req, map[string]any{"version": "v1.33.4", "rollout": map[string]any{"state": "UpToDate"}})
	// Its observers read the cell first, and keep all as it is meanwhile,
	// status included.
	for i := range 3 {
		rsp := answer(t, f, req)
		if st := rsp.GetDesired().GetComposite().GetResource().GetFields()["status"].GetStructValue().AsMap(); i == 0 && st["version"] != "v1.33.4" {
			t.Errorf("A pool reading its cell keeps its status: got %v", st)
		}
		observers := map[string]*fnv1.Resource{}
		for k, r := range rsp.GetDesired().GetResources() {
			if k == keyRemoteCluster || k == keyRemoteControlPlane {
				observers[k] = r
			} else if diff := cmp.Diff(keepable(local.GetObserved().GetResources()[k].GetResource().GetFields()), r.GetResource().AsMap()); diff != "" {
				t.Fatalf("%s: a pool moving to a cell changed a running object: -observed +desired:\n%s", k, diff)
			}
		}
		next := cell.reconcile(t, req, &fnv1.RunFunctionResponse{Desired: &fnv1.State{Resources: observers}})
		for k, r := range next.GetObserved().GetResources() {
			req.Observed.Resources[k] = r
		}
	}
	rsp := answer(t, f, req)
	c := condition(rsp, TypeChangeRefused)
	if c.GetReason() != plan.ReasonCellChanged || !strings.Contains(c.GetMessage(), "a pool cannot move between management clusters") {
		t.Errorf("Moving a running pool to a cell is refused: got %v", c)
	}
	for k, r := range local.GetObserved().GetResources() {
		got := rsp.GetDesired().GetResources()[k]
		if diff := cmp.Diff(keepable(r.GetResource().GetFields()), got.GetResource().AsMap()); diff != "" {
			t.Errorf("%s: a refused move keeps the object as it runs: -observed +desired:\n%s", k, diff)
		}
	}
}

// clockedCellPool is a function whose clock reads *now, a fake cell, and
// the pool settled in it.
func clockedCellPool(t *testing.T, now *time.Time) (*Function, *fakeCell, *fnv1.RunFunctionRequest) {
	t.Helper()
	f := newFunction(WithCacheSize(0), WithClock(func() time.Time { return *now }))
	cell := newFakeCell()
	return f, cell, settledCellPool(t, f, cell)
}

// toLargeBeside moves the pool to class large while the cell holds the
// other pools' Objects others.
func toLargeBeside(others ...*fnv1.Resource) func(req *fnv1.RunFunctionRequest, cell *fakeCell) {
	return func(req *fnv1.RunFunctionRequest, cell *fakeCell) {
		toLarge(req)
		cell.others = append(cell.others, others...)
	}
}

// toLarge moves the pool to class large: other templates.
func toLarge(req *fnv1.RunFunctionRequest) {
	req.Observed.Composite.Resource.Fields["spec"].GetStructValue().Fields["machine"] = mustValue(map[string]any{"class": "large"})
}

// settledCellPool is the pool of xrJSON in cell eu-1, composed and rolled
// out there.
func settledCellPool(t *testing.T, f *Function, cell *fakeCell) *fnv1.RunFunctionRequest {
	t.Helper()
	req := cellPool(t, "eu-1")
	for range 3 { // Cluster, control plane, objects.
		req = cell.reconcile(t, req, answer(t, f, req))
	}
	cell.settle(1)
	return cell.reconcile(t, req, answer(t, f, req))
}

// TestCellLegacyClaim: a legacy cluster-scoped XR (created for a claim) in
// a cell composes, at every step from new to settled, the same Objects as
// the namespaced form: in the claim's namespace, named after the claim,
// reading the Cluster's other pools in that namespace.
func TestCellLegacyClaim(t *testing.T) {
	settle := func(xr string) []*fnv1.RunFunctionResponse {
		f, cell := newFunction(WithCacheSize(0)), newFakeCell()
		req := cellPoolOf(t, xr, "eu-1")
		var rsps []*fnv1.RunFunctionResponse
		for i := range 5 { // Cluster, control plane, objects, settled.
			rsp := answer(t, f, req)
			rsps = append(rsps, rsp)
			if i == 3 {
				cell.settle(1)
			}
			req = cell.reconcile(t, req, rsp)
		}
		return rsps
	}
	want, got := settle(xrJSON), settle(legacyXRJSON)
	for i := range want {
		if diff := cmp.Diff(want[i].GetDesired().GetResources(), got[i].GetDesired().GetResources(), protocmp.Transform()); diff != "" {
			t.Errorf("step %d: the legacy XR composes other Objects than the namespaced form: -namespaced +legacy:\n%s", i, diff)
		}
		if diff := cmp.Diff(want[i].GetRequirements(), got[i].GetRequirements(), protocmp.Transform()); diff != "" {
			t.Errorf("step %d: the legacy XR requires other resources than the namespaced form: -namespaced +legacy:\n%s", i, diff)
		}
	}
	if n := len(got[len(got)-1].GetDesired().GetResources()); n < 5 {
		t.Errorf("the settled legacy pool composes %d Objects, want the observers, templates, MachineDeployment and health check", n)
	}
}

// TestCellChangeNotReported: a change sent to a cell that has not
// reported it yet is sent again as it was (its spec, and the record of when
// its machines were sent, plan.AnnotationRevision), however many times the
// pool is planned meanwhile, and when another change is held then: the
// function reads what it sent, not only what the cell reports.
func TestCellChangeNotReported(t *testing.T) {
	cases := map[string]struct {
		reason string
		// change is sent to the settled pool; then edits the pool before
		// the cell reports it.
		change, then func(req *fnv1.RunFunctionRequest, cell *fakeCell)
	}{
		"ClassChange": {
			reason: "A class change the cell has not reported is sent again as it was.",
			change: func(req *fnv1.RunFunctionRequest, _ *fakeCell) { toLarge(req) },
		},
		"Rotation": {
			reason: "A rotation (spec.rollout.after, the pool's nodes past their max age) the cell has not reported is sent again as it was: " +
				"not taken back, nor dated again.",
			change: func(req *fnv1.RunFunctionRequest, _ *fakeCell) {
				req.Input.Fields["rotation"] = mustValue(map[string]any{"maxNodeAge": "2m", "spread": "0s"})
			},
		},
		"VersionThenControlPlaneBehind": {
			reason: "A patch version the cell has not reported, then a channel move past the control plane: the pool waits for its control plane " +
				"at the version sent, not the one the cell reports.",
			change: func(req *fnv1.RunFunctionRequest, cell *fakeCell) {
				cell.objects["KubeadmControlPlane/prod-eu-1"]["status"] = map[string]any{"version": "v1.33.5"}
				req.Input.Fields["channels"] = mustValue(map[string]any{"stable": "v1.33.5"})
			},
			then: func(req *fnv1.RunFunctionRequest, _ *fakeCell) {
				req.Input.Fields["channels"] = mustValue(map[string]any{"stable": "v1.34.1"})
			},
		},
		"VersionThenHeldClassChange": {
			reason: "A version change the cell has not reported, then a class change the paused policy holds: the held pool keeps the version sent.",
			change: func(req *fnv1.RunFunctionRequest, cell *fakeCell) {
				cell.objects["KubeadmControlPlane/prod-eu-1"]["status"] = map[string]any{"version": "v1.34.1"}
				req.Input.Fields["channels"] = mustValue(map[string]any{"stable": "v1.34.1"})
			},
			then: func(req *fnv1.RunFunctionRequest, _ *fakeCell) {
				toLarge(req)
				req.Input.Fields["rollouts"] = mustValue(map[string]any{"paused": true})
			},
		},
	}
	sent := func(rsp *fnv1.RunFunctionResponse) map[string]any {
		md := manifests(rsp)["machinedeployment"]
		return map[string]any{"spec": md["spec"], "revision": field(mustStruct(md).GetFields(), "metadata", "annotations", plan.AnnotationRevision).GetStringValue()}
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			now := sunday2300
			f, cell, req := clockedCellPool(t, &now)
			was := sent(answer(t, f, req))
			tc.change(req, cell)
			// The pool reads its control plane, queues, then starts: the
			// first answer that sends other machines.
			var first *fnv1.RunFunctionResponse
			for range 6 {
				rsp := answer(t, f, req)
				if cmp.Diff(was["spec"], sent(rsp)["spec"]) != "" {
					first = rsp
					break
				}
				req = cell.reconcile(t, req, rsp)
				now = now.Add(time.Minute)
			}
			if first == nil {
				t.Fatal("the change never started")
			}
			// provider-kubernetes has applied nothing yet: the Objects say
			// what was sent, their status what the cell reported before.
			for k, r := range first.GetDesired().GetResources() {
				o := req.GetObserved().GetResources()[k]
				if o == nil {
					req.Observed.Resources[k] = &fnv1.Resource{Resource: proto.CloneOf(r.GetResource())}
					continue
				}
				o.Resource.Fields["spec"] = proto.CloneOf(r.GetResource().GetFields()["spec"])
			}
			if tc.then != nil {
				tc.then(req, cell)
			}
			want := sent(first)
			for i := range 3 {
				now = now.Add(time.Minute)
				if diff := cmp.Diff(want, sent(answer(t, f, req))); diff != "" {
					t.Errorf("%s\nplanned %d more time(s) before the cell reports the change, the MachineDeployment sent changed: -first sent +now:\n%s", tc.reason, i+1, diff)
				}
			}
		})
	}
}

// TestCellReportedSpec: what the cell reports of a MachineDeployment's
// spec where the function did not send it, or where the cell refused what
// it sent.
func TestCellReportedSpec(t *testing.T) {
	restart := "2026-11-29T22:00:00Z"
	reported := func(req *fnv1.RunFunctionRequest) map[string]*structpb.Value {
		return field(req.GetObserved().GetResources()["machinedeployment"].GetResource().GetFields(), "status", "atProvider", "manifest").GetStructValue().GetFields()
	}
	cases := map[string]struct {
		reason string
		edit   func(req *fnv1.RunFunctionRequest)
		check  func(rsp *fnv1.RunFunctionResponse) string
	}{
		"RolloutRestartInTheCell": {
			reason: "A rollout restart in the cell (spec.rollout.after, which the function did not send) is the cell's, as it is a local pool's: " +
				"kept, and the MachineDeployment is not taken for one whose spec the cell has not acted on.",
			edit: func(req *fnv1.RunFunctionRequest) {
				reported(req)["spec"].GetStructValue().Fields["rollout"].GetStructValue().Fields["after"] = structpb.NewStringValue(restart)
			},
			check: func(rsp *fnv1.RunFunctionResponse) string {
				md := mustStruct(manifests(rsp)["machinedeployment"]).GetFields()
				if got := field(md, "spec", "rollout", "after").GetStringValue(); got != restart {
					return fmt.Sprintf("spec.rollout.after sent: got %q, want the cell's %q", got, restart)
				}
				if r := rsp.GetDesired().GetResources()["machinedeployment"]; r.GetReady() != fnv1.Ready_READY_TRUE {
					return fmt.Sprintf("the MachineDeployment is ready in the cell: got %v", r.GetReady())
				}
				return ""
			},
		},
		"ChangeRefusedByTheCell": {
			reason: "A version the cell refuses to apply (its Object Synced False, the old version reported) is not read as sent: " +
				"when the control plane falls behind the target, the pool holds at the version its machines run.",
			edit: func(req *fnv1.RunFunctionRequest) {
				o := req.GetObserved().GetResources()["machinedeployment"].GetResource().GetFields()
				field(o, "spec", "forProvider", "manifest", "spec", "template", "spec").GetStructValue().Fields["version"] = structpb.NewStringValue("v1.33.5")
				o["status"].GetStructValue().Fields["conditions"] = mustValue([]any{map[string]any{"type": "Synced", "status": "False", "reason": "ReconcileError",
					"message": "admission webhook denied the request"}})
				req.Input.Fields["channels"] = mustValue(map[string]any{"stable": "v1.34.1"})
			},
			check: func(rsp *fnv1.RunFunctionResponse) string {
				md := mustStruct(manifests(rsp)["machinedeployment"]).GetFields()
				if got := field(md, "spec", "template", "spec", "version").GetStringValue(); got != "v1.33.4" {
					return fmt.Sprintf("held at %q, want v1.33.4, the version the cell runs", got)
				}
				return ""
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			now := sunday2300
			f, _, req := clockedCellPool(t, &now)
			tc.edit(req)
			if msg := tc.check(answer(t, f, req)); msg != "" {
				t.Errorf("%s\n%s", tc.reason, msg)
			}
		})
	}
}

// manifests are the manifests of the answer's Objects, by key.
func manifests(rsp *fnv1.RunFunctionResponse) map[string]map[string]any {
	out := map[string]map[string]any{}
	for k, r := range rsp.GetDesired().GetResources() {
		if m := field(r.GetResource().GetFields(), "spec", "forProvider", "manifest").GetStructValue(); m != nil {
			out[k] = m.AsMap()
		}
	}
	return out
}

// TestCellSafetyRules: the rules that keep a local pool's nodes hold on
// what a cell reports: workers wait for their control plane, a change that
// would delete running nodes is refused, and the Cluster's pools roll one
// at a time.
func TestCellSafetyRules(t *testing.T) {
	type safetyCase struct {
		reason string
		// edit changes the settled pool (and its cell), check the answer
		// after the cell reported it.
		edit  func(req *fnv1.RunFunctionRequest, cell *fakeCell)
		check func(t *testing.T, before, after *fnv1.RunFunctionResponse)
	}
	cases := map[string]safetyCase{
		"ControlPlaneFirst": {
			reason: "The channel moves to v1.34.1 while the cell's control plane runs v1.33.4: the workers stay, UpgradePending says why.",
			edit: func(req *fnv1.RunFunctionRequest, _ *fakeCell) {
				req.Input.Fields["channels"] = mustValue(map[string]any{"stable": "v1.34.1"})
			},
			check: func(t *testing.T, _, after *fnv1.RunFunctionResponse) {
				md := manifests(after)["machinedeployment"]
				if v := md["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["version"]; v != "v1.33.4" {
					t.Errorf("workers went to %v before their control plane", v)
				}
				if c := condition(after, TypeUpgradePending); c.GetStatus() != fnv1.Status_STATUS_CONDITION_TRUE {
					t.Errorf("UpgradePending: got %v", c)
				}
			},
		},
		"BackingGuard": {
			reason: "Another backend would delete the running MachineDeployment in the cell: refused, every Object kept as it is.",
			edit: func(req *fnv1.RunFunctionRequest, _ *fakeCell) {
				req.Observed.Composite.Resource.Fields["spec"].GetStructValue().Fields["backend"] = structpb.NewStringValue("MachinePool")
			},
			check: func(t *testing.T, before, after *fnv1.RunFunctionResponse) {
				if c := condition(after, TypeChangeRefused); c.GetReason() != plan.ReasonBackingReplaced {
					t.Errorf("ChangeRefused: got %v", c)
				}
				if diff := cmp.Diff(manifests(before), manifests(after)); diff != "" {
					t.Errorf("a refused change changed what the cell runs: -before +after:\n%s", diff)
				}
			},
		},
		"OnePoolAtATime": {
			reason: "Another pool of the Cluster rolls in the cell: the class change waits its turn, and the MachineDeployment keeps its template.",
			edit:   toLargeBeside(cellSibling("v1.33.4", "v1.33.4", 1)),
			check: func(t *testing.T, before, after *fnv1.RunFunctionResponse) {
				if c := condition(after, TypeRolloutHeld); c.GetReason() != plan.HoldConcurrency {
					t.Errorf("RolloutHeld: got %v", c)

				}
				if diff := cmp.Diff(manifests(before)["machinedeployment"]["spec"], manifests(after)["machinedeployment"]["spec"]); diff != "" {
					t.Errorf("the MachineDeployment's spec changed while another pool rolls: -before +after:\n%s", diff)
				}
			},
		},
	}
	cases["OnePoolAtATimeJustStarted"] = safetyCase{
		reason: "Another pool of the Cluster was just sent a new version, which the cell does not report yet (it reports the old one, rolled out): " +
			"it is rolling all the same, and the class change waits its turn.",
		edit:  toLargeBeside(cellSibling("v1.34.1", "v1.33.4", 3)),
		check: cases["OnePoolAtATime"].check,
	}
	cases["OnePoolAtATimeVersions"] = safetyCase{
		reason: "Another pool of the Cluster reports every machine up to date (its MachineSets have not caught up) but one of them at the old version: " +
			"it is rolling, and the class change waits its turn.",
		edit: toLargeBeside(cellSibling("v1.34.1", "v1.34.1", 3,
			map[string]any{"version": "v1.33.4", "replicas": 1}, map[string]any{"version": "v1.34.1", "replicas": 2})),
		check: cases["OnePoolAtATime"].check,
	}
	cases["OnePoolAtATimeTemplateChange"] = safetyCase{
		reason: "Another pool of the Cluster reports every machine up to date on its new template (its cell's report came before its MachineSets caught up) " +
			"but still keeps its old template: it has just changed templates, is rolling, and the class change waits its turn.",
		edit:  toLargeBeside(cellSibling("v1.33.4", "v1.33.4", 3), cellSiblingTemplate("prod-eu-1-other-0"), cellSiblingTemplate("prod-eu-1-other-1")),
		check: cases["OnePoolAtATime"].check,
	}
	cases["SiblingSettled"] = safetyCase{
		reason: "Another pool of the Cluster runs every machine up to date and keeps only the templates it references, and its health check: " +
			"it is not rolling, and the class change starts.",
		edit: toLargeBeside(cellSibling("v1.33.4", "v1.33.4", 3), cellSiblingTemplate("prod-eu-1-other-1"),
			cellSiblingObject("bootstrap-b0075", "KubeadmConfigTemplate", "prod-eu-1-other-b0075"),
			cellSiblingObject("machinehealthcheck", "MachineHealthCheck", "prod-eu-1-other")),
		check: func(t *testing.T, before, after *fnv1.RunFunctionResponse) {
			if c := condition(after, TypeRolloutHeld); c.GetStatus() == fnv1.Status_STATUS_CONDITION_TRUE {
				t.Errorf("RolloutHeld: got %v", c)
			}
			if diff := cmp.Diff(manifests(before)["machinedeployment"]["spec"], manifests(after)["machinedeployment"]["spec"]); diff == "" {
				t.Errorf("the MachineDeployment's spec did not change: the class change did not start")
			}
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			now := sunday2300
			f, cell, req := clockedCellPool(t, &now)
			before := answer(t, f, req)
			tc.edit(req, cell)
			after := answer(t, f, req)
			// Crossplane fetches what the answer requires, and calls again;
			// a pool queued to roll looks for others that queued with it
			// for a few seconds, then starts if its turn.
			for range 3 {
				req = cell.reconcile(t, req, after)
				after = answer(t, f, req)
				now = now.Add(time.Minute)
			}
			tc.check(t, before, after)
		})
	}
}

// TestCellWatch: a cell whose policy asks for watches has provider-kubernetes
// watch what the pool reads there (its Cluster, control plane and
// MachineDeployments), not the templates, through the cell's provider
// config of the kind the policy names.
func TestCellWatch(t *testing.T) {
	f := newFunction(WithCacheSize(0))
	cell := newFakeCell()
	req := cellPool(t, "us-1")
	var rsp *fnv1.RunFunctionResponse
	for range 3 {
		rsp = answer(t, f, req)
		req = cell.reconcile(t, req, rsp)
	}
	got := map[string]string{}
	for k, r := range rsp.GetDesired().GetResources() {
		spec := r.GetResource().GetFields()["spec"].GetStructValue().GetFields()
		got[k] = fmt.Sprintf("watch=%v %s/%s", spec["watch"].GetBoolValue(), field(spec, "providerConfigRef", "kind").GetStringValue(), field(spec, "providerConfigRef", "name").GetStringValue())
	}
	want := map[string]string{
		keyRemoteCluster: "watch=true ProviderConfig/us-1", keyRemoteControlPlane: "watch=true ProviderConfig/us-1",
		"machinedeployment": "watch=true ProviderConfig/us-1", "machinehealthcheck": "watch=false ProviderConfig/us-1",
	}
	for k := range got {
		if strings.HasPrefix(k, "infra-") || strings.HasPrefix(k, "bootstrap-") {
			want[k] = "watch=false ProviderConfig/us-1"
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("watched Objects: -want +got:\n%s", diff)
	}
}

// cellSibling is the Object of another pool's MachineDeployment on the same
// Cluster and cell: sent at a version, reported at another with upToDate of
// its 3 machines up to date, and the versions its machines run.
func cellSibling(sent, seen string, upToDate int, versions ...any) *fnv1.Resource {
	md := func(version string) map[string]any {
		return map[string]any{"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "MachineDeployment",
			"metadata": map[string]any{"name": "prod-eu-1-other", "namespace": "team-a", "generation": 3, "labels": map[string]any{"fleet.nodepool.dev/pool": "other"}},
			"spec": map[string]any{"replicas": 3, "template": map[string]any{"spec": map[string]any{"version": version,
				"infrastructureRef": map[string]any{"name": "prod-eu-1-other-1"}, "bootstrap": map[string]any{"configRef": map[string]any{"name": "prod-eu-1-other-b0075"}}}}}}
	}
	reported := md(seen)
	reported["status"] = map[string]any{"observedGeneration": 3, "replicas": 3, "upToDateReplicas": upToDate, "versions": versions}
	return &fnv1.Resource{Resource: mustStruct(map[string]any{"apiVersion": "kubernetes.m.crossplane.io/v1alpha1", "kind": "Object",
		"metadata": map[string]any{"name": "machinedeployment-prod-eu-1-other", "namespace": "team-a",
			"labels": map[string]any{"cluster.x-k8s.io/cluster-name": "prod-eu-1", "fleet.nodepool.dev/cell": "eu-1", "fleet.nodepool.dev/pool": "other"}},
		"spec":   map[string]any{"forProvider": map[string]any{"manifest": md(sent)}},
		"status": map[string]any{"atProvider": map[string]any{"manifest": reported}},
	})}
}

// cellSiblingTemplate is the Object of another pool's infrastructure
// template named name, on the same Cluster and cell, as the cell reports it.
func cellSiblingTemplate(name string) *fnv1.Resource {
	return cellSiblingObject("infra-"+name, "DevMachineTemplate", name)
}

// cellSiblingObject is the Object, under the composition resource name
// key, of another pool's object of kind named name, on the same Cluster and
// cell, as the cell reports it.
func cellSiblingObject(key, kind, name string) *fnv1.Resource {
	labels := map[string]any{"cluster.x-k8s.io/cluster-name": "prod-eu-1", "fleet.nodepool.dev/cell": "eu-1", "fleet.nodepool.dev/pool": "other"}
	m := map[string]any{"apiVersion": "example.x-k8s.io/v1beta2", "kind": kind,
		"metadata": map[string]any{"name": name, "namespace": "team-a", "labels": map[string]any{"fleet.nodepool.dev/pool": "other"}}}
	return &fnv1.Resource{Resource: mustStruct(map[string]any{"apiVersion": "kubernetes.m.crossplane.io/v1alpha1", "kind": "Object",
		"metadata": map[string]any{"name": strings.ToLower(kind) + "-" + name, "namespace": "team-a", "labels": labels,
			"annotations": map[string]any{"crossplane.io/composition-resource-name": key}},
		"spec":   map[string]any{"forProvider": map[string]any{"manifest": m}},
		"status": map[string]any{"atProvider": map[string]any{"manifest": m}},
	})}
}

// TestCellRemovedRefused: a pool in a cell whose spec.cell is removed (CEL
// cannot stop removing an optional field) keeps every Object as it is:
// planned locally, Crossplane would replace each with a local object of
// another kind under the same key, and provider-kubernetes would delete
// what runs in the cell.
func TestCellRemovedRefused(t *testing.T) {
	f := newFunction(WithCacheSize(0))
	cell := newFakeCell()
	req := settledCellPool(t, f, cell)
	delete(req.Observed.Composite.Resource.Fields["spec"].GetStructValue().Fields, "cell")
	req.RequiredResources = map[string]*fnv1.Resources{"cluster": {Items: []*fnv1.Resource{{Resource: resource.MustStructJSON(kubeadmCluster)}}}}
	rsp := answer(t, f, req)
	if c := condition(rsp, TypeChangeRefused); c.GetReason() != plan.ReasonCellChanged {
		t.Errorf("Moving a pool out of its cell is refused: got %v", c)
	}
	for k, r := range req.GetObserved().GetResources() {
		got := rsp.GetDesired().GetResources()[k]
		if diff := cmp.Diff(keepable(r.GetResource().GetFields()), got.GetResource().AsMap()); diff != "" {
			t.Errorf("%s: a refused move keeps the Object as it is: -observed +desired:\n%s", k, diff)
		}
	}
}

// TestCellHolds: what the function cannot trust of a cell holds the pool as
// it is: Objects that reach the cell through another provider config than
// the policy now names, and an observer that reports another object than
// the one it asks for.
func TestCellHolds(t *testing.T) {
	cases := map[string]struct {
		reason string
		edit   func(req *fnv1.RunFunctionRequest)
		// fatal is the Fatal result's message; "" for an answer that keeps
		// every Object as observed, reading the cell again.
		fatal string
	}{
		"ProviderConfigMoved": {
			reason: "The policy names another provider config for the pool's cell: it may reach another cluster, where the pool would be created anew.",
			edit: func(req *fnv1.RunFunctionRequest) {
				req.Input.Fields["cells"] = mustValue(map[string]any{"eu-1": map[string]any{"providerConfigRef": map[string]any{"name": "eu-1-other"}}})
			},
			fatal: "cannot move the pool's Objects from provider config ClusterProviderConfig eu-1-admin to ClusterProviderConfig eu-1-other (input.cells.eu-1.providerConfigRef): " +
				"another provider config may reach another cluster, where the pool would be created anew; nothing was changed. " +
				"Revert the policy; or, if both reach the same cluster, set spec.providerConfigRef of each of the pool's Objects to the new one (kubectl patch)",
		},
		"ObserverReportsAnotherObject": {
			reason: "The Cluster's observer still reports another Cluster (what it was asked before): the pool waits for the one it asks for.",
			edit: func(req *fnv1.RunFunctionRequest) {
				m := field(req.Observed.Resources[keyRemoteCluster].GetResource().GetFields(), "status", "atProvider", "manifest", "metadata").GetStructValue()
				m.Fields["name"] = structpb.NewStringValue("prod-eu-2")
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFunction(WithCacheSize(0))
			req := settledCellPool(t, f, newFakeCell())
			tc.edit(req)
			rsp := answer(t, f, req)
			got := ""
			for _, r := range rsp.GetResults() {
				if r.GetSeverity() == fnv1.Severity_SEVERITY_FATAL {
					got = r.GetMessage()
				}
			}
			if got != tc.fatal {
				t.Errorf("%s\nFatal: got %q, want %q", tc.reason, got, tc.fatal)
			}
			if tc.fatal != "" {
				return
			}
			if c := condition(rsp, TypePoolAvailable); c.GetReason() != ReasonReadingCell {
				t.Errorf("%s\nPoolAvailable: got %v", tc.reason, c)
			}
			for k, r := range req.GetObserved().GetResources() {
				if k == keyRemoteCluster || k == keyRemoteControlPlane {
					continue
				}
				if diff := cmp.Diff(keepable(r.GetResource().GetFields()), rsp.GetDesired().GetResources()[k].GetResource().AsMap()); diff != "" {
					t.Errorf("%s\n%s: changed while the pool reads its cell: -observed +desired:\n%s", tc.reason, k, diff)
				}
			}
		})
	}
}
