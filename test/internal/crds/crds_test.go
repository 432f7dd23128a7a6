package crds

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/fleetnodepool/function-fleetnodepool/fn/plan"
	"github.com/fleetnodepool/function-fleetnodepool/fn/providers"
)

// TestEveryComposedKindServed: the generated CRDs serve every kind the
// function composes (so render and the in-process tests see them as a
// management cluster with the pinned releases installed), each at a
// version, and a provider's with a contract label.
func TestEveryComposedKindServed(t *testing.T) {
	objs, err := Objects()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]map[string]any{}
	for _, o := range objs {
		byName[o["metadata"].(map[string]any)["name"].(string)] = o
	}
	kinds := []schema.GroupKind{
		{Group: "cluster.x-k8s.io", Kind: "MachineDeployment"},
		{Group: "cluster.x-k8s.io", Kind: "MachinePool"},
		{Group: "cluster.x-k8s.io", Kind: "MachineHealthCheck"},
		{Group: "bootstrap.cluster.x-k8s.io", Kind: "KubeadmConfig"},
		{Group: "bootstrap.cluster.x-k8s.io", Kind: "KubeadmConfigTemplate"},
		{Group: "bootstrap.cluster.x-k8s.io", Kind: "NodeadmConfigTemplate"},
	}
	for _, p := range providers.All() {
		for _, k := range p.ComposedKinds() {
			kinds = append(kinds, schema.GroupKind{Group: "infrastructure.cluster.x-k8s.io", Kind: k})
		}
	}
	for _, gk := range kinds {
		crd, ok := byName[plan.CRDName(gk)]
		if !ok {
			t.Errorf("no CRD %s for %s: regenerate (go generate ./test/internal/crds), or add its module to upstream.Modules", plan.CRDName(gk), gk)
			continue
		}
		if gk.Group != "cluster.x-k8s.io" {
			labels, _ := crd["metadata"].(map[string]any)["labels"].(map[string]any)
			if !slices.ContainsFunc([]string{"cluster.x-k8s.io/v1beta1", "cluster.x-k8s.io/v1beta2"}, func(l string) bool { return labels[l] != nil }) {
				t.Errorf("CRD %s has no contract label: %v", plan.CRDName(gk), labels)
			}
		}
	}
}
