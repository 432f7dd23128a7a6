package providers

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"k8s.io/utils/ptr"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/apis/input/v1beta1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/provider"
)

// TestProviderContract is the contract every provider the function ships
// keeps: what the provider-neutral core relies on. A new cloud passes it
// by being listed in All.
func TestProviderContract(t *testing.T) {
	owner := map[string]v1alpha1.Provider{} // Every kind tells one cloud.
	claim := func(p provider.Provider, what, kind string) {
		t.Helper()
		if prev, ok := owner[kind]; ok && prev != p.Name() {
			t.Errorf("%s: %s kind %s is already %s's: a kind tells one cloud", p.Name(), what, kind, prev)
		}
		owner[kind] = p.Name()
	}
	names := map[v1alpha1.Provider]bool{}
	for _, p := range All() {
		t.Run(string(p.Name()), func(t *testing.T) {
			if p.Name() == "" || names[p.Name()] {
				t.Fatalf("provider name %q: want a unique, non-empty name", p.Name())
			}
			names[p.Name()] = true
			if len(p.InfrastructureKinds()) == 0 {
				t.Errorf("InfrastructureKinds(): want the Cluster infrastructure kinds of the provider's clusters, got none")
			}
			for _, k := range p.InfrastructureKinds() {
				claim(p, "infrastructure", k)
			}
			platforms := []provider.Platform{provider.PlatformKubeadm}
			for _, cp := range p.ControlPlaneKinds() {
				claim(p, "control plane", cp.Kind)
				if gv := strings.Split(cp.APIVersion, "/"); len(gv) != 2 || !strings.Contains(gv[0], ".") {
					t.Errorf("control plane %s: APIVersion %q: want group/version", cp.Kind, cp.APIVersion)
				}
				if cp.Platform == "" || cp.Platform == provider.PlatformKubeadm {
					t.Errorf("control plane %s: want the managed platform it runs, got %q", cp.Kind, cp.Platform)
				}
				if cp.MaxSkew < 0 || cp.MaxSkew > 3 || cp.Skew == "" {
					t.Errorf("control plane %s: want a skew of 0 to 3 minors (upstream kubelet's limit) and who sets it, got %d %q", cp.Kind, cp.MaxSkew, cp.Skew)
				}
				platforms = append(platforms, cp.Platform)
			}
			if len(p.ComposedKinds()) == 0 {
				t.Errorf("ComposedKinds(): want the kinds the provider composes, got none")
			}
			for _, k := range p.ComposedKinds() {
				claim(p, "composed", k)
			}
			for _, pf := range platforms {
				backends := p.Backends(pf)
				if pf != provider.PlatformKubeadm && len(backends) == 0 {
					t.Errorf("Backends(%s): a platform the provider declares must run some backend", pf)
				}
				for _, b := range backends {
					t.Run(fmt.Sprintf("%s/%s", pf, b), func(t *testing.T) { checkBackend(t, p, pf, b) })
				}
			}
		})
	}
}

// checkBackend checks the objects a provider builds for one backend: typed,
// unnamed (the core names them), of a kind the provider says it composes.
func checkBackend(t *testing.T, p provider.Provider, pf provider.Platform, b v1alpha1.Backend) {
	t.Helper()
	pool := &provider.Pool{
		Name: "workers", ClusterName: "c", Platform: pf, Backend: b, Version: "v1.33.4", MachineType: "t", DiskGiB: 100,
		Min: ptr.To[int32](1), Max: ptr.To[int32](3),
		Spec:   &v1alpha1.FleetNodePoolSpec{ClusterName: "c", Zones: []string{"1"}},
		Policy: &v1beta1.Policy{AWS: &v1beta1.AWSPolicy{}, Azure: &v1beta1.AzurePolicy{Location: "l"}, Sim: &v1beta1.SimPolicy{}},
		Node:   provider.Node{Labels: map[string]string{"team": "a"}},
	}
	var objs []provider.Object
	switch b {
	case v1alpha1.BackendMachineDeployment:
		objs = append(objs, p.MachineTemplate(pool, "1"))
	default:
		objs = append(objs, p.MachinePool(pool))
	}
	for _, o := range objs {
		gvk := o.GetObjectKind().GroupVersionKind()
		if gvk.Kind == "" || gvk.Version == "" || o.GetName() != "" {
			t.Errorf("want a typed object with apiVersion and kind and no name (the core names it by its content), got %s named %q", gvk, o.GetName())
		}
		if !slices.Contains(p.ComposedKinds(), gvk.Kind) {
			t.Errorf("built a %s, which ComposedKinds() %v does not list: the core could not tell its cloud", gvk.Kind, p.ComposedKinds())
		}
	}
	if b == v1alpha1.BackendManaged {
		return // The cloud bootstraps its own nodes.
	}
	j := p.Join(pool, "infra")
	switch {
	case b == v1alpha1.BackendMachinePool && j.Template != nil:
		t.Errorf("Join(): a MachinePool's nodes are bootstrapped by the core's hashed KubeadmConfig, want no provider template")
	case j.Template != nil && (j.Template.GetObjectKind().GroupVersionKind().Kind == "" || j.Template.GetName() != ""):
		t.Errorf("Join(): a provider's bootstrap template must be typed and unnamed (the core names it by its content)")
	}
}
