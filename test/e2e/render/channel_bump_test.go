//go:build render

package render

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/fleetnodepool/function-fleetnodepool/test/internal/render"
)

// controlPlaneAPIVersions are the API versions of the examples' control
// planes.
var controlPlaneAPIVersions = map[string]string{
	"KubeadmControlPlane":         "controlplane.cluster.x-k8s.io/v1beta2",
	"AWSManagedControlPlane":      "controlplane.cluster.x-k8s.io/v1beta2",
	"AzureASOManagedControlPlane": "infrastructure.cluster.x-k8s.io/v1beta1",
}

// withControlPlane writes the example's Cluster and its control plane,
// running version, into a required-resources directory.
func withControlPlane(t *testing.T, dir, version string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "required", "cluster.yaml")) //nolint:gosec // An example's fixture.
	if err != nil {
		t.Fatal(err)
	}
	cluster := map[string]any{}
	if err := yaml.Unmarshal(b, &cluster); err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: cluster}
	kind, _, _ := unstructured.NestedString(cluster, "spec", "controlPlaneRef", "kind")
	name, _, _ := unstructured.NestedString(cluster, "spec", "controlPlaneRef", "name")
	out := t.TempDir()
	writeYAML(t, filepath.Join(out, "cluster.yaml"), cluster)
	writeYAML(t, filepath.Join(out, "controlplane.yaml"), map[string]any{
		"apiVersion": controlPlaneAPIVersions[kind], "kind": kind,
		"metadata": map[string]any{"name": name, "namespace": u.GetNamespace()},
		"status":   map[string]any{"version": version},
	})
	return out
}

// bumped writes a copy of a Composition whose policy's stable channel is
// version.
func bumped(t *testing.T, composition, version string) string {
	t.Helper()
	b, err := os.ReadFile(composition) //nolint:gosec // An example's Composition.
	if err != nil {
		t.Fatal(err)
	}
	comp := map[string]any{}
	if err := yaml.Unmarshal(b, &comp); err != nil {
		t.Fatal(err)
	}
	steps := comp["spec"].(map[string]any)["pipeline"].([]any) // Not NestedSlice: it copies.
	input := steps[0].(map[string]any)["input"].(map[string]any)
	input["channels"].(map[string]any)["stable"] = version
	out := filepath.Join(t.TempDir(), "composition.yaml")
	writeYAML(t, out, comp)
	return out
}

// poolState is what a channel bump changes: each MachineDeployment's or
// MachinePool's version and the templates it uses.
type poolState struct {
	versions  map[string]string
	templates []string
}

func stateOf(t *testing.T, objs []*unstructured.Unstructured) poolState {
	t.Helper()
	s := poolState{versions: map[string]string{}}
	for _, o := range objs {
		switch k := o.GetKind(); {
		case k == "MachineDeployment" || k == "MachinePool":
			v, _, _ := unstructured.NestedString(o.Object, "spec", "template", "spec", "version")
			s.versions[o.GetName()] = v
		case strings.HasSuffix(k, "Template") || k == "KubeadmConfig":
			s.templates = append(s.templates, o.GetName())
		}
	}
	slices.Sort(s.templates)
	return s
}

// TestRenderChannelBump is the platform team's version bump, through the
// render engine, for every example: the stable channel moves from v1.33.4
// to v1.34.1 in the Composition's function input. While the control plane
// runs v1.33.4 the pools hold (UpgradePending); once it runs v1.34.1 every
// pool on the channel moves, with new templates where the policy pins an
// image per version. A kubeadm pool that pins its own v1.33 version is
// refused once its control plane runs v1.34.
func TestRenderChannelBump(t *testing.T) {
	xrs, err := filepath.Glob(filepath.Join(examplesDir, "*", "xr.yaml"))
	if err != nil || len(xrs) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, xr := range xrs {
		dir := filepath.Dir(xr)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			b, _ := os.ReadFile(xr) //nolint:gosec // An example's XR.
			pinned := strings.Contains(string(b), "\n  version:")
			stage := func(composition, cp string) (poolState, string, error) {
				c := render.ExampleCase(dir, xrdPath)
				c.Composition, c.Required = composition, withControlPlane(t, dir, cp)
				out, objs, err := render.RenderComposed(t.Context(), tools, fn, c)
				return stateOf(t, objs), string(out), err
			}
			base := filepath.Join(dir, "composition.yaml")
			before, _, err1 := stage(base, "v1.33.4")
			held, heldOut, err2 := stage(bumped(t, base, "v1.34.1"), "v1.33.4")
			after, _, err3 := stage(bumped(t, base, "v1.34.1"), "v1.34.1")
			if err1 != nil || err2 != nil {
				t.Fatalf("render: %v %v", err1, err2)
			}
			if pinned {
				// A kubeadm pool pinned to v1.33 cannot follow a control
				// plane on v1.34: kubeadm joins only nodes of its minor.
				if err3 == nil || !strings.Contains(err3.Error(), "kubeadm joins only nodes of the control plane's minor") {
					t.Errorf("a pool pinned to an older minor than its kubeadm control plane must be refused, got %v", err3)
				}
				return
			}
			if err3 != nil {
				t.Fatalf("render: %v", err3)
			}

			for pool, v := range before.versions {
				if v != "v1.33.4" {
					t.Fatalf("%s runs %s before the bump, want v1.33.4", pool, v)
				}
				if held.versions[pool] != v {
					t.Errorf("%s moved to %s while the control plane runs v1.33.4", pool, held.versions[pool])
				}
				if after.versions[pool] != "v1.34.1" {
					t.Errorf("%s runs %s after the control plane moved, want v1.34.1", pool, after.versions[pool])
				}
				t.Logf("%s: %s -> %s (templates %v -> %v)", pool, v, after.versions[pool], before.templates, after.templates)
			}
			if !slices.Equal(before.templates, held.templates) {
				t.Errorf("held pools must keep their templates: %v became %v", before.templates, held.templates)
			}
			if !strings.Contains(heldOut, "holding the pool at v1.33.4") {
				t.Errorf("a held pool must say so in UpgradePending")
			}
		})
	}
}
