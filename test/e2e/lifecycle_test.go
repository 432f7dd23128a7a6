//go:build e2e

package e2e

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

// observedFrom turns a render's composed objects into what Crossplane
// observes next: they exist, and MachineDeployments run replicas nodes.
func observedFrom(t *testing.T, objs []*unstructured.Unstructured, replicas int64) string {
	t.Helper()
	dir := t.TempDir()
	for i, o := range objs {
		o = o.DeepCopy()
		if o.GetKind() == "MachineDeployment" {
			_ = unstructured.SetNestedField(o.Object, map[string]any{
				"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas, "upToDateReplicas": replicas,
				"observedGeneration": int64(1),
				"conditions":         []any{map[string]any{"type": "Available", "status": "True", "reason": "Available", "lastTransitionTime": "2026-01-01T00:00:00Z"}},
			}, "status")
			o.SetGeneration(1)
		}
		writeYAML(t, filepath.Join(dir, o.GetKind()+"-"+string(rune('a'+i))+".yaml"), o.Object)
	}
	return dir
}

func writeYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// machineSet is a live MachineSet of the aws-machinedeployment example's
// MachineDeployment in zone, cloning from the named templates.
func machineSet(zone, infra, bootstrap string) map[string]any {
	md := "prod-eu-1-workers-" + zone
	return map[string]any{
		"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "MachineSet",
		"metadata": map[string]any{"name": md + "-abcde", "namespace": "team-a", "labels": map[string]any{
			"cluster.x-k8s.io/cluster-name": "prod-eu-1", "fleet.nodepool.dev/pool": "workers",
			"cluster.x-k8s.io/deployment-name": md,
		}},
		"spec": map[string]any{"clusterName": "prod-eu-1", "template": map[string]any{"spec": map[string]any{
			"clusterName":       "prod-eu-1",
			"infrastructureRef": map[string]any{"name": infra},
			"bootstrap":         map[string]any{"configRef": map[string]any{"name": bootstrap}},
		}}},
	}
}

// TestRenderLifecycle renders the AWS example at later stages of its life,
// with what Crossplane observes and the pool's live MachineSets.
func TestRenderLifecycle(t *testing.T) {
	dir := filepath.Join(examplesDir, "aws-machinedeployment")
	_, v1, err := render.RenderComposed(t.Context(), tools, fn, render.ExampleCase(dir, xrdPath))
	if err != nil {
		t.Fatal(err)
	}
	var oldInfra, oldBoot string
	for _, o := range v1 {
		switch o.GetKind() {
		case "AWSMachineTemplate":
			oldInfra = o.GetName()
		case "KubeadmConfigTemplate":
			oldBoot = o.GetName()
		}
	}
	running := observedFrom(t, v1, 2)
	newClass := func(xr map[string]any) { render.Spec(xr)["machine"] = map[string]any{"class": "large"} }

	// After the rollout: the MachineDeployments point at the new templates,
	// and the old templates still exist.
	c2 := render.ExampleCase(dir, xrdPath)
	if c2.XR, err = render.EditXR(c2.XR, t.TempDir(), newClass); err != nil {
		t.Fatal(err)
	}
	_, v2, err := render.RenderComposed(t.Context(), tools, fn, c2)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range v1 {
		if strings.HasSuffix(o.GetKind(), "Template") {
			v2 = append(v2, o)
		}
	}
	rolledOut := observedFrom(t, v2, 2)
	oneZone := func(xr map[string]any) { render.Spec(xr)["zones"] = []any{"eu-west-1a"} }

	cases := map[string]struct {
		reason      string
		observed    string
		edit        func(map[string]any)
		machineSets []map[string]any
		wantNames   []string // Composed objects that must be there.
		wantGone    []string // Composed objects that must not.
		wantXR      string   // Text the rendered XR must contain.
	}{
		"TemplateKeptMidRollout": {
			reason:      "After a class change, the old template stays while an old MachineSet still clones from it.",
			edit:        newClass,
			machineSets: []map[string]any{machineSet("eu-west-1a", oldInfra, oldBoot)},
			wantNames:   []string{oldInfra, oldBoot},
		},
		"TemplateDroppedAfterRollout": {
			reason:      "Once the rollout is done (no MachineSet or MachineDeployment uses it), the old template goes.",
			observed:    rolledOut,
			edit:        newClass,
			machineSets: []map[string]any{machineSet("eu-west-1a", "prod-eu-1-workers-new", oldBoot)},
			wantNames:   []string{oldBoot}, // The bootstrap template did not rotate: still used.
			wantGone:    []string{oldInfra},
		},
		"ZoneRemovalRefused": {
			reason:    "Removing a zone whose MachineDeployment runs nodes is refused: both MachineDeployments are kept, and the XR says why and how to opt in.",
			edit:      oneZone,
			wantNames: []string{"prod-eu-1-workers-eu-west-1a", "prod-eu-1-workers-eu-west-1b"},
			wantXR:    "type: ChangeRefused",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := render.ExampleCase(dir, xrdPath)
			c.Observed = running
			if tc.observed != "" {
				c.Observed = tc.observed
			}
			if c.XR, err = render.EditXR(c.XR, t.TempDir(), tc.edit); err != nil {
				t.Fatal(err)
			}
			req := t.TempDir()
			b, _ := os.ReadFile(filepath.Join(dir, "required", "cluster.yaml"))
			if err := os.WriteFile(filepath.Join(req, "cluster.yaml"), b, 0o600); err != nil {
				t.Fatal(err)
			}
			for i, ms := range tc.machineSets {
				writeYAML(t, filepath.Join(req, "machineset-"+string(rune('a'+i))+".yaml"), ms)
			}
			c.Required = req
			out, objs, err := render.RenderComposed(t.Context(), tools, fn, c)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			var names []string
			for _, o := range objs {
				names = append(names, o.GetName())
			}
			for _, n := range tc.wantNames {
				if !slices.Contains(names, n) {
					t.Errorf("%s\n%s is not composed; composed: %v", tc.reason, n, names)
				}
			}
			for _, n := range tc.wantGone {
				if slices.Contains(names, n) {
					t.Errorf("%s\n%s is still composed", tc.reason, n)
				}
			}
			all, err := render.Objects(out)
			if err != nil {
				t.Fatal(err)
			}
			xr, _ := yaml.Marshal(all[0].Object)
			if tc.wantXR != "" && !strings.Contains(string(xr), tc.wantXR) {
				t.Errorf("%s\nthe XR does not contain %q:\n%s", tc.reason, tc.wantXR, xr)
			}
		})
	}
}
