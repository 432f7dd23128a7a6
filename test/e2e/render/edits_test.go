//go:build render

package render

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/fleetnodepool/function-fleetnodepool/test/internal/render"
)

// rendered is what the edit tests look at in a render: the template names,
// and each MachineDeployment's version and references.
type rendered struct {
	Templates []string
	MDs       map[string]md
}

type md struct {
	Version, Infra, Bootstrap string
	HasReplicas               bool
	Annotations               map[string]string
}

func parse(t *testing.T, out []byte) rendered {
	t.Helper()
	objs, err := render.Composed(out)
	if err != nil {
		t.Fatal(err)
	}
	r := rendered{MDs: map[string]md{}}
	for _, u := range objs {
		switch k := u.GetKind(); {
		case k == "MachineDeployment":
			_, hasReplicas, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "replicas")
			infra, _, _ := unstructured.NestedString(u.Object, "spec", "template", "spec", "infrastructureRef", "name")
			boot, _, _ := unstructured.NestedString(u.Object, "spec", "template", "spec", "bootstrap", "configRef", "name")
			v, _, _ := unstructured.NestedString(u.Object, "spec", "template", "spec", "version")
			ann := map[string]string{}
			for k, v := range u.GetAnnotations() {
				if strings.HasPrefix(k, "cluster.x-k8s.io/") {
					ann[k] = v
				}
			}
			r.MDs[u.GetName()] = md{Version: v, Infra: infra, Bootstrap: boot, HasReplicas: hasReplicas, Annotations: ann}
		case strings.HasSuffix(k, "Template"):
			r.Templates = append(r.Templates, u.GetName())
		}
	}
	slices.Sort(r.Templates)
	return r
}

// renderEdited renders an example with its XR edited by edit.
func renderEdited(t *testing.T, example string, edit func(xr map[string]any)) rendered {
	t.Helper()
	c := render.ExampleCase(filepath.Join(examplesDir, example), xrdPath)
	if edit != nil {
		var err error
		if c.XR, err = render.EditXR(c.XR, t.TempDir(), edit); err != nil {
			t.Fatal(err)
		}
	}
	out, err := render.Render(t.Context(), tools, fn, c)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return parse(t, out)
}

// TestRenderEdits edits the AWS example the way users do and checks, through
// the real render engine, which edits rotate templates (and so roll nodes).
func TestRenderEdits(t *testing.T) {
	const example = "aws-machinedeployment"
	before := renderEdited(t, example, nil)

	type want struct {
		NewInfra, NewBootstrap bool
		Version                string
		Annotations            map[string]string
	}
	cases := map[string]struct {
		reason string
		edit   func(xr map[string]any)
		want   want
	}{
		"MachineClass": {
			reason: "A new machine class gives new infrastructure templates, and the MachineDeployments point at them.",
			edit:   func(xr map[string]any) { render.Spec(xr)["machine"] = map[string]any{"class": "large"} },
			want:   want{NewInfra: true, Version: "v1.33.4", Annotations: autoscaler("1", "5")},
		},
		"Version": {
			reason: "A new version changes the MachineDeployments' version and the infrastructure templates, whose AMI the policy pins per version.",
			edit:   func(xr map[string]any) { delete(render.Spec(xr), "channel"); render.Spec(xr)["version"] = "v1.34.1" },
			want:   want{NewInfra: true, Version: "v1.34.1", Annotations: autoscaler("1", "5")},
		},
		"MetadataLabels": {
			reason: "The FleetNodePool's own metadata labels touch no template.",
			edit: func(xr map[string]any) {
				xr["metadata"].(map[string]any)["labels"] = map[string]any{"cost-center": "42"}
			},
			want: want{Version: "v1.33.4", Annotations: autoscaler("1", "5")},
		},
		"Scaling": {
			reason: "New autoscaler bounds touch no template: only the MachineDeployments' annotations change.",
			edit:   func(xr map[string]any) { render.Spec(xr)["scaling"] = map[string]any{"min": 4, "max": 20} },
			want:   want{Version: "v1.33.4", Annotations: autoscaler("2", "10")},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			after := renderEdited(t, example, tc.edit)
			if len(after.MDs) != len(before.MDs) {
				t.Fatalf("%s\nMachineDeployments changed: before %v, after %v", tc.reason, before.MDs, after.MDs)
			}
			for n, a := range after.MDs {
				b := before.MDs[n]
				got := want{NewInfra: a.Infra != b.Infra, NewBootstrap: a.Bootstrap != b.Bootstrap, Version: a.Version, Annotations: a.Annotations}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("%s\n%s: -want, +got:\n%s", tc.reason, n, diff)
				}
				if a.HasReplicas {
					t.Errorf("%s\n%s: an autoscaled MachineDeployment must not set spec.replicas", tc.reason, n)
				}
				for _, ref := range []string{a.Infra, a.Bootstrap} {
					if !slices.Contains(after.Templates, ref) {
						t.Errorf("%s\n%s references %s, which the render does not compose", tc.reason, n, ref)
					}
				}
			}
		})
	}
}

func autoscaler(minSize, maxSize string) map[string]string {
	return map[string]string{
		"cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size": minSize,
		"cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size": maxSize,
	}
}
