// Package upgrade proves that upgrading the function never renames, so
// never rolls, what runs: the function is run on every example with, as
// observed state, what an earlier version of the function composed for it.
// It also pins the names a new pool gets, so that no change of the function
// renames them unnoticed.
package upgrade

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"

	"github.com/fleetnodepool/function-fleetnodepool/fn/compose"
	"github.com/fleetnodepool/function-fleetnodepool/fn/plan"
	"github.com/fleetnodepool/function-fleetnodepool/fn/providers"
	"github.com/fleetnodepool/function-fleetnodepool/test/exampleio"
)

// examples are the examples that compose: those with a recorded earlier
// composition in testdata/v0.
func examples(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "v0", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded compositions in testdata/v0: %v", err)
	}
	out := make([]string, 0, len(files))
	for _, f := range files {
		out = append(out, strings.TrimSuffix(filepath.Base(f), ".yaml"))
	}
	return out
}

// names runs the function on the example with what is observed, and
// returns the name of every desired composed resource by its key.
func names(t *testing.T, example string, observed []*unstructured.Unstructured) map[string]string {
	t.Helper()
	req, err := exampleio.ForExample(filepath.Join("..", "..", "examples", example), observed...)
	if err != nil {
		t.Fatal(err)
	}
	f := compose.New(compose.WithPlanner(plan.New(plan.WithProviders(providers.All()...))), compose.WithCacheSize(0))
	rsp, err := f.RunFunction(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rsp.GetResults() {
		if r.GetSeverity() == fnv1.Severity_SEVERITY_FATAL {
			t.Fatalf("RunFunction(%s): %s", example, r.GetMessage())
		}
	}
	out := map[string]string{}
	for k, r := range rsp.GetDesired().GetResources() {
		out[k] = r.GetResource().GetFields()["metadata"].GetStructValue().GetFields()["name"].GetStringValue()
	}
	return out
}

// TestUpgradeKeepsNames runs the function on what earlier versions of it
// composed for every example: every object keeps its key and name. v0 is
// the function before template names hashed the wire encoding (commit
// e7cf86f), whose render golden files are recorded in testdata/v0.
func TestUpgradeKeepsNames(t *testing.T) {
	for _, version := range []string{"v0"} {
		for _, e := range examples(t) {
			t.Run(version+"/"+e, func(t *testing.T) {
				objs, err := exampleio.Objects(filepath.Join("testdata", version, e+".yaml"))
				if err != nil {
					t.Fatal(err)
				}
				var composed []*unstructured.Unstructured
				want := map[string]string{}
				for _, o := range objs {
					if k := o.GetAnnotations()[exampleio.AnnotationResourceName]; k != "" {
						composed = append(composed, o)
						want[k] = o.GetName()
					}
				}
				if len(want) == 0 {
					t.Fatalf("testdata/%s/%s.yaml has no composed resources", version, e)
				}
				// Objects the new function adds (a rollout marker) are no
				// rename: only what ran before is compared.
				got := names(t, e, composed)
				for k := range got {
					if _, ran := want[k]; !ran && !strings.HasPrefix(k, "infra-") && !strings.HasPrefix(k, "bootstrap-") {
						delete(got, k)
					}
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("the function upgraded from %s must keep every running object's key and name (a renamed template rolls nodes): -%s, +now:\n%s", version, version, diff)
				}
			})
		}
	}
}

// newPool is the names of what a new pool of the example composes over its
// first two reconciles, the second observing what the first composed (a
// Flexible scale set follows its MachinePool).
func newPool(t *testing.T, example string) map[string]string {
	t.Helper()
	var observed []*unstructured.Unstructured
	for k, n := range names(t, example, nil) {
		u := &unstructured.Unstructured{}
		u.SetName(n)
		u.SetAnnotations(map[string]string{exampleio.AnnotationResourceName: k})
		observed = append(observed, u)
	}
	return names(t, example, observed)
}

// TestNamePins pins the names a new pool of every example gets. Template
// names are content hashes of what is sent: a change here renames the
// templates of new pools (running pools keep theirs: TestUpgradeKeepsNames).
// Change a pin only on purpose, and say why in the commit.
func TestNamePins(t *testing.T) {
	for _, e := range examples(t) {
		t.Run(e, func(t *testing.T) {
			if diff := cmp.Diff(pins[e], newPool(t, e)); diff != "" {
				t.Errorf("the names of a new %s pool changed: -pinned, +now:\n%s", e, diff)
			}
		})
	}
}

// pins are the names of every object a new pool of each example composes,
// by composition resource key.
var pins = map[string]map[string]string{
	"aks-managed": {
		"infrapool":   "aks-weu-1-services",
		"machinepool": "aks-weu-1-services",
	},
	"aws-machinedeployment": {
		"bootstrap-f2a11038":           "prod-eu-1-workers-f2a11038",
		"infra-10e3d30a":               "prod-eu-1-workers-10e3d30a",
		"machinedeployment-eu-west-1a": "prod-eu-1-workers-eu-west-1a",
		"machinedeployment-eu-west-1b": "prod-eu-1-workers-eu-west-1b",
		"machinehealthcheck":           "prod-eu-1-workers",
	},
	"aws-machinepool": {
		"bootstrap-cefd113d": "prod-us-1-batch-cefd113d",
		"infrapool":          "prod-us-1-batch",
		"machinepool":        "prod-us-1-batch",
	},
	"azure-machinedeployment": {
		"bootstrap-2ad11878":  "prod-weu-2-batch-2ad11878",
		"infra-5e9f2c41":      "prod-weu-2-batch-5e9f2c41",
		"machinedeployment-1": "prod-weu-2-batch-1",
		"machinedeployment-2": "prod-weu-2-batch-2",
		"machinedeployment-3": "prod-weu-2-batch-3",
		"machinehealthcheck":  "prod-weu-2-batch",
	},
	"azure-machinepool": {
		"bootstrap-1aea3c53": "prod-weu-3-web-1aea3c53",
		"infrapool":          "prod-weu-3-web",
		"machinepool":        "prod-weu-3-web",
	},
	"eks-machinedeployment": {
		"bootstrap-7c0026c2": "eks-eu-2-jobs-7c0026c2",
		"infra-0405ed9a":     "eks-eu-2-jobs-0405ed9a",
		"machinedeployment":  "eks-eu-2-jobs",
		"machinehealthcheck": "eks-eu-2-jobs",
	},
	"eks-managed": {
		"infrapool":   "eks-eu-1-apps",
		"machinepool": "eks-eu-1-apps",
	},
	"sim-machinedeployment": {
		"bootstrap-a8285a39": "sim-1-workers-a8285a39",
		"infra-0811c40a":     "sim-1-workers-0811c40a",
		"machinedeployment":  "sim-1-workers",
		"machinehealthcheck": "sim-1-workers",
		// The policy has waves: the pool's rollout marker (#14).
		"rollout": "sim-1-workers-rollout",
	},
}
