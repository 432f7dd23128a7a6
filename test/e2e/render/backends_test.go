//go:build render

package render

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/fleetnodepool/function-fleetnodepool/test/internal/render"
)

// composedKinds renders c and returns the kinds it composes and the objects.
func composedKinds(t *testing.T, c render.Case) ([]string, []*unstructured.Unstructured) {
	t.Helper()
	_, objs, err := render.RenderComposed(t.Context(), tools, fn, c)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.GetKind())
	}
	slices.Sort(kinds)
	return slices.Compact(kinds), objs
}

// TestRenderAutoBackend renders the same FleetNodePool (backend Auto)
// against two Cluster fixtures: on EKS it is a managed node group, on a
// self-managed AWS cluster the policy's default, a MachineDeployment.
func TestRenderAutoBackend(t *testing.T) {
	dir := filepath.Join(examplesDir, "eks-managed")
	cases := map[string]struct {
		reason   string
		required string
		want     []string
	}{
		"EKS": {
			reason:   "On an EKS Cluster (AWSManagedControlPlane), Auto is an EKS managed node group.",
			required: filepath.Join(dir, "required"),
			want:     []string{"AWSManagedMachinePool", "MachinePool"},
		},
		"Kubeadm": {
			reason:   "On a kubeadm Cluster, Auto is the policy's default backend, MachineDeployment.",
			required: "testdata/auto-kubeadm",
			want:     []string{"AWSMachineTemplate", "KubeadmConfigTemplate", "MachineDeployment", "MachineHealthCheck"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := render.ExampleCase(dir, xrdPath)
			c.Required = tc.required
			got, _ := composedKinds(t, c)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\ncomposed kinds: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestRenderMachinePoolBootstrapChange changes only what the nodes'
// bootstrap config holds (a kubelet label) on the Auto Scaling group
// example: the MachinePool must point at a new KubeadmConfig (the only way
// it rolls its nodes) and keep its infrastructure; autoscaled, it never sets
// spec.replicas.
func TestRenderMachinePoolBootstrapChange(t *testing.T) {
	dir := filepath.Join(examplesDir, "aws-machinepool")
	refs := func(edit func(map[string]any)) (bootstrap, infra string) {
		c := render.ExampleCase(dir, xrdPath)
		if edit != nil {
			var err error
			if c.XR, err = render.EditXR(c.XR, t.TempDir(), edit); err != nil {
				t.Fatal(err)
			}
		}
		_, objs := composedKinds(t, c)
		for _, o := range objs {
			if o.GetKind() != "MachinePool" {
				continue
			}
			if _, ok, _ := unstructured.NestedFieldNoCopy(o.Object, "spec", "replicas"); ok {
				t.Errorf("the autoscaled MachinePool %s sets spec.replicas", o.GetName())
			}
			bootstrap, _, _ = unstructured.NestedString(o.Object, "spec", "template", "spec", "bootstrap", "configRef", "name")
			infra, _, _ = unstructured.NestedString(o.Object, "spec", "template", "spec", "infrastructureRef", "name")
			return bootstrap, infra
		}
		t.Fatal("no MachinePool rendered")
		return "", ""
	}
	b1, i1 := refs(nil)
	b2, i2 := refs(func(xr map[string]any) { render.Spec(xr)["labels"] = map[string]any{"workload": "batch-v2"} })
	if b1 == b2 {
		t.Errorf("a bootstrap-only change must give a new KubeadmConfig name, both are %s", b1)
	}
	if i1 != i2 {
		t.Errorf("a bootstrap-only change must keep the AWSMachinePool, %s became %s", i1, i2)
	}
}
