//go:build render

package render

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/fleetnodepool/function-fleetnodepool/fn/plan"
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
	v2Fresh, v2Old := v2, slices.Clone(v2)
	for _, o := range v1 {
		if strings.HasSuffix(o.GetKind(), "Template") {
			v2Fresh = append(v2Fresh, o)
			// The function recorded it unused an hour before the render's
			// clock: longer ago than ReleaseAfter.
			old := o.DeepCopy()
			a := old.GetAnnotations()
			a[plan.AnnotationUnusedSince] = "2023-12-31T23:00:00Z"
			old.SetAnnotations(a)
			v2Old = append(v2Old, old)
		}
	}
	rolledOut, rolledOutLongAgo := observedFrom(t, v2Fresh, 2), observedFrom(t, v2Old, 2)
	oneZone := func(xr map[string]any) { render.Spec(xr)["zones"] = []any{"eu-west-1a"} }

	pinned := func(v string) func(map[string]any) {
		return func(xr map[string]any) { delete(render.Spec(xr), "channel"); render.Spec(xr)["version"] = v }
	}
	cases := map[string]struct {
		reason      string
		observed    string
		edit        func(map[string]any)
		machineSets []map[string]any
		// controlPlane is the version the Cluster's control plane runs.
		controlPlane string
		// cluster replaces the example's Cluster fixture, and composition
		// its Composition.
		cluster, composition string
		wantNames            []string // Composed objects that must be there.
		wantGone             []string // Composed objects that must not.
		wantXR               string   // Text the rendered XR must contain.
	}{
		"TemplateKeptMidRollout": {
			reason:      "After a class change, the old template stays while an old MachineSet still clones from it.",
			edit:        newClass,
			machineSets: []map[string]any{machineSet("eu-west-1a", oldInfra, oldBoot)},
			wantNames:   []string{oldInfra, oldBoot},
		},
		"TemplateKeptJustAfterRollout": {
			reason: "Just after the rollout (no MachineSet or MachineDeployment uses it) the old template stays ReleaseAfter more: " +
				"Crossplane's caches may not show a MachineSet Cluster API just made.",
			observed:    rolledOut,
			edit:        newClass,
			machineSets: []map[string]any{machineSet("eu-west-1a", "prod-eu-1-workers-new", oldBoot)},
			wantNames:   []string{oldBoot, oldInfra},
		},
		"TemplateDroppedAfterRollout": {
			reason:      "Once nothing has used it for ReleaseAfter (recorded on it), the old template goes.",
			observed:    rolledOutLongAgo,
			edit:        newClass,
			machineSets: []map[string]any{machineSet("eu-west-1a", "prod-eu-1-workers-new", oldBoot)},
			wantNames:   []string{oldBoot}, // The bootstrap template did not rotate: still used.
			wantGone:    []string{oldInfra},
		},
		"UpgradeHeldWhileControlPlaneBehind": {
			reason:       "A version the control plane does not run yet is held: the MachineDeployments stay at v1.33.4, and the XR says what it waits for.",
			edit:         pinned("v1.34.1"),
			controlPlane: "v1.33.4",
			wantNames:    []string{oldInfra},
			wantXR:       "holding the pool at v1.33.4 until the control plane KubeadmControlPlane/prod-eu-1 runs v1.34.1",
		},
		"UpgradeReleasedWithPreview": {
			reason:       "Once the control plane runs it, the pool moves, and the status previews the blast radius: both MachineDeployments replace their nodes, and why.",
			edit:         pinned("v1.34.1"),
			controlPlane: "v1.34.1",
			wantXR:       "version v1.33.4 -> v1.34.1",
		},
		"BackendSwitchRefused": {
			reason:    "Moving running MachineDeployments to a MachinePool without the opt-in is refused: they are kept, nothing new is composed.",
			edit:      func(xr map[string]any) { render.Spec(xr)["backend"] = "MachinePool" },
			wantNames: []string{"prod-eu-1-workers-eu-west-1a", "prod-eu-1-workers-eu-west-1b", oldInfra},
			wantGone:  []string{"MachinePool/prod-eu-1-workers"},
			wantXR:    `"reason":"BackingReplaced"`,
		},
		"ProviderSwitchRefused": {
			reason: "A Cluster that now says Azure cannot move running AWS machines: refused, the running objects kept.",
			edit: func(xr map[string]any) {
				delete(render.Spec(xr), "provider")
				render.Spec(xr)["zones"] = []any{"1", "2"}
			},
			cluster:     "testdata/lifecycle/azure-cluster.yaml",
			composition: "../../../package/configuration/composition.yaml",
			wantNames:   []string{"prod-eu-1-workers-eu-west-1a", "prod-eu-1-workers-eu-west-1b", oldInfra},
			wantXR:      `"reason":"ProviderChanged"`,
		},
		"ZoneRemovalRefused": {
			reason:    "Removing a zone whose MachineDeployment runs nodes is refused: both MachineDeployments are kept, and the XR says why and how to opt in.",
			edit:      oneZone,
			wantNames: []string{"prod-eu-1-workers-eu-west-1a", "prod-eu-1-workers-eu-west-1b"},
			wantXR:    `"reason":"BackingReplaced","status":"True","type":"ChangeRefused"`,
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
			clusterFile := filepath.Join(dir, "required", "cluster.yaml")
			if tc.cluster != "" {
				clusterFile = tc.cluster
			}
			if tc.composition != "" {
				c.Composition = tc.composition
			}
			b, _ := os.ReadFile(clusterFile)                                                   //nolint:gosec // A fixture path of this test.
			if err := os.WriteFile(filepath.Join(req, "cluster.yaml"), b, 0o600); err != nil { //nolint:gosec // Into the test's own temporary directory.
				t.Fatal(err)
			}
			cp := tc.controlPlane
			if cp == "" {
				cp = "v1.33.4"
			}
			writeYAML(t, filepath.Join(req, "controlplane.yaml"), map[string]any{
				"apiVersion": "controlplane.cluster.x-k8s.io/v1beta2", "kind": "KubeadmControlPlane",
				"metadata": map[string]any{"name": "prod-eu-1", "namespace": "team-a"},
				"status":   map[string]any{"version": cp},
			})
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
				names = append(names, o.GetName(), o.GetKind()+"/"+o.GetName())
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
			var buf bytes.Buffer // Not YAML: it folds long messages.
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(all[0].Object)
			xr := buf.Bytes()
			if tc.wantXR != "" && !strings.Contains(string(xr), tc.wantXR) {
				t.Errorf("%s\nthe XR does not contain %q:\n%s\n%s", tc.reason, tc.wantXR, xr, out)
			}
		})
	}
}
