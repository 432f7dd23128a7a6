package fleetsim

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
)

func TestApplyReplicas(t *testing.T) {
	bounds := map[string]string{annotationMinSize: "2", annotationMaxSize: "5"}
	cases := map[string]struct {
		reason string
		live   *mdSpec // nil: the MachineDeployment is created.
		spec   *structpb.Struct
		annots map[string]string
		want   int32
	}{
		"FunctionSetsReplicas": {
			reason: "Replicas the function sets overwrite the live ones.",
			live:   &mdSpec{replicas: 4},
			spec:   &structpb.Struct{Fields: map[string]*structpb.Value{"replicas": num(int32(2))}},
			want:   2,
		},
		"CreatedAutoscaled": {
			reason: "An autoscaled MachineDeployment is created at its minimum size.",
			spec:   &structpb.Struct{},
			annots: bounds,
			want:   2,
		},
		"AutoscalerOwnsReplicas": {
			reason: "Replicas the function leaves out keep the autoscaler's value.",
			live:   &mdSpec{replicas: 4},
			spec:   &structpb.Struct{},
			annots: bounds,
			want:   4,
		},
		"ClampedIntoNewBounds": {
			reason: "A live size outside new bounds is clamped into them, as Cluster API's webhook does.",
			live:   &mdSpec{replicas: 9},
			spec:   &structpb.Struct{},
			annots: bounds,
			want:   5,
		},
		"NoBoundsNoReplicas": {
			reason: "Without replicas or autoscaler bounds Cluster API defaults to 1.",
			spec:   &structpb.Struct{},
			want:   1,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			o := &composed{md: tc.live}
			got, ok := int32At(o.replicas(tc.spec, tc.annots), "replicas")
			if !ok || got != tc.want {
				t.Errorf("%s\nreplicas(...): got %d (set %t), want %d", tc.reason, got, ok, tc.want)
			}
		})
	}
}

// TestRolloutModel repoints a MachineDeployment of three machines and
// follows Cluster API's model until it settles: one machine per step, never
// fewer than three available (maxUnavailable 0) nor more than four machines
// (maxSurge 1), the old MachineSet deleted once empty.
func TestRolloutModel(t *testing.T) {
	w, p := handMade(t, false)
	o := p.composed["machinedeployment-eu-west-1a"]
	o.md.replicas, o.md.maxSurge, o.md.maxUnv = 3, num(int32(1)), num(int32(0))
	onlySet(w).replicas, onlySet(w).ready = 3, 3
	o.md.template.infra.name = "c-0000-pool-00-9a8b7c6d" // A new class.
	o.generation++

	type step struct {
		Total, Available, UpToDate int32
		Sets                       int
	}
	var got []step
	for range 8 {
		w.rolloutMD(o)
		got = append(got, step{o.status.replicas, o.status.available, o.status.upToDate, len(w.machineSets(ns, mdName))})
	}
	want := []step{
		{4, 3, 1, 2}, // A new machine; not ready yet.
		{4, 3, 2, 2}, // It joined: an old one goes, another new one comes.
		{4, 3, 3, 2},
		{3, 3, 3, 1}, // The last old one goes, and its empty MachineSet.
		{3, 3, 3, 1},
		{3, 3, 3, 1},
		{3, 3, 3, 1},
		{3, 3, 3, 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rolloutMD(...) step by step: -want, +got:\n%s", diff)
	}
}

// TestFetchByLabels checks the Crossplane model's required resources by
// labels: the rollout gates select a Cluster's MachineDeployments,
// MachinePools and MachineSets by its name alone, and read the queue
// annotation the function set on the MachineDeployments.
func TestFetchByLabels(t *testing.T) {
	type item struct{ Kind, Name, Queued string }
	cases := map[string]struct {
		reason    string
		kind      string
		namespace string
		labels    map[string]string
		want      []item
	}{
		"MachineDeployments": {
			reason: "Every MachineDeployment of the Cluster's pools, sorted by name, with the annotations the function set.",
			kind:   kindMachineDeployment, namespace: ns, labels: map[string]string{labelClusterName: "c-0000"},
			want: []item{{kindMachineDeployment, mdName, "2026-03-02T06:00:00Z"}, {kindMachineDeployment, "c-0000-pool-01-eu-west-1a", ""}},
		},
		"MachineDeploymentsOfAPool": {
			reason: "A selector with the pool label too selects that pool's.",
			kind:   kindMachineDeployment, namespace: ns, labels: map[string]string{labelClusterName: "c-0000", labelPool: "pool-01"},
			want: []item{{kindMachineDeployment, "c-0000-pool-01-eu-west-1a", ""}},
		},
		"OtherCluster": {
			reason: "Another Cluster's name selects none of them.",
			kind:   kindMachineDeployment, namespace: ns, labels: map[string]string{labelClusterName: "c-0001"},
			want: []item{},
		},
		"OtherNamespace": {
			reason: "Nor does another namespace.",
			kind:   kindMachineDeployment, namespace: "fleet-0001", labels: map[string]string{labelClusterName: "c-0000"},
			want: []item{},
		},
		"MachinePools": {
			reason: "No MachinePool exists in the model: an empty list, which the function reads as none.",
			kind:   "MachinePool", namespace: ns, labels: map[string]string{labelClusterName: "c-0000"},
			want: []item{},
		},
		"MachineSets": {
			reason: "The Cluster's MachineSets by its name alone.",
			kind:   kindMachineSet, namespace: ns, labels: map[string]string{labelClusterName: "c-0000"},
			want: []item{{kindMachineSet, msName, ""}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			w, p := handMade(t, false)
			md := p.composed["machinedeployment-eu-west-1a"]
			md.labels = strMap(map[string]string{labelClusterName: "c-0000", labelPool: "pool-00"})
			md.annots = strMap(map[string]string{annotationQueued: "2026-03-02T06:00:00Z"})
			q := w.addPool(w.clusters[0], "pool-01", p.spec)
			addComposed(w, q, "machinedeployment-eu-west-1a", kindMachineDeployment, "c-0000-pool-01-eu-west-1a", &mdSpec{}).labels =
				strMap(map[string]string{labelClusterName: "c-0000", labelPool: "pool-01"})
			rs := w.fetch(&fnv1.ResourceSelector{
				ApiVersion: apiVersionCluster, Kind: tc.kind, Namespace: &tc.namespace,
				Match: &fnv1.ResourceSelector_MatchLabels{MatchLabels: &fnv1.MatchLabels{Labels: tc.labels}},
			})
			if rs == nil {
				t.Fatalf("%s\nfetch(...): nil, want a list", tc.reason)
			}
			got := []item{}
			for _, r := range rs.GetItems() {
				o := r.GetResource()
				got = append(got, item{stringAt(o, "kind"), stringAt(o, "metadata", "name"), stringAt(o, "metadata", "annotations", annotationQueued)})
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nfetch(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestEqualValue holds the model's Struct comparison to proto.Equal's.
func TestEqualValue(t *testing.T) {
	v := func(j string) *structpb.Value {
		var x structpb.Value
		if err := x.UnmarshalJSON([]byte(j)); err != nil {
			t.Fatal(err)
		}
		return &x
	}
	cases := map[string]struct {
		reason string
		a, b   *structpb.Value
	}{
		"Same":          {reason: "Equal objects.", a: v(`{"a": [1, "x", true, null, {"b": {}}]}`), b: v(`{"a": [1, "x", true, null, {"b": {}}]}`)},
		"Number":        {reason: "Another number.", a: v(`{"a": 1}`), b: v(`{"a": 2}`)},
		"Kind":          {reason: "A number is not its string.", a: v(`{"a": 1}`), b: v(`{"a": "1"}`)},
		"MissingField":  {reason: "A field more.", a: v(`{"a": 1}`), b: v(`{"a": 1, "b": 1}`)},
		"OtherField":    {reason: "Another field of as many.", a: v(`{"a": 1}`), b: v(`{"b": 1}`)},
		"ListLength":    {reason: "A longer list.", a: v(`[1, 2]`), b: v(`[1, 2, 3]`)},
		"ListOrder":     {reason: "A list in another order.", a: v(`[1, 2]`), b: v(`[2, 1]`)},
		"Nested":        {reason: "A difference deep down.", a: v(`{"a": {"b": [{"c": false}]}}`), b: v(`{"a": {"b": [{"c": true}]}}`)},
		"NullAndEmpty":  {reason: "null is not an empty object.", a: v(`null`), b: v(`{}`)},
		"NilAndNothing": {reason: "A nil Value is not a null one.", a: nil, b: v(`null`)},
		"BothNil":       {reason: "Two nil Values.", a: nil, b: nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			want := proto.Equal(tc.a, tc.b)
			if got := equalValue(tc.a, tc.b); got != want {
				t.Errorf("%s\nequalValue(...): got %t, proto.Equal says %t", tc.reason, got, want)
			}
			if got := equalValue(tc.b, tc.a); got != want {
				t.Errorf("%s\nequalValue(b, a): got %t, proto.Equal says %t", tc.reason, got, want)
			}
		})
	}
}
