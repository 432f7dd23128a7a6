// Package sim builds the objects of node pools on simulated clusters: Cluster
// API's in-memory infrastructure, the inMemory backend of CAPD's
// DevMachineTemplate, where machines and their nodes exist only as API
// objects served by a fake workload API server. It exists for simulation,
// demos and tests (the CAPI sandbox and the fleet e2e run real Cluster API
// controllers on it); no workload ever runs on a sim pool.
package sim

import (
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	devv1 "sigs.k8s.io/cluster-api/test/infrastructure/docker/api/v1beta2"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/apis/input/v1beta1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/provider"
)

const (
	// MachineTypeLabel carries the simulated machine type on the template's
	// machines: a change of type changes the template, as on a real cloud.
	MachineTypeLabel = v1alpha1.Group + "/sim-machine-type"
	// DefaultStartupSeconds is how long a simulated machine boots, and its
	// node then takes to become ready, unless the policy says otherwise.
	DefaultStartupSeconds = 2
	// startupJitter spreads startups by up to a fifth of their duration.
	startupJitter = "0.2"
	// nodeName is the kubeadm node name of a simulated machine.
	nodeName = "{{ ds.meta_data.hostname }}"
)

// Provider is the simulated provider.
type Provider struct{}

// New returns the simulated provider.
func New() *Provider { return &Provider{} }

var _ provider.Provider = &Provider{}

// Name of the provider.
func (*Provider) Name() v1alpha1.Provider { return v1alpha1.ProviderSim }

// InfrastructureKinds: Cluster API's in-memory (simulated) clusters.
func (*Provider) InfrastructureKinds() []string { return []string{"DevCluster"} }

// ControlPlaneKinds: none; simulated clusters run kubeadm.
func (*Provider) ControlPlaneKinds() []provider.ControlPlaneKind { return nil }

// ComposedKinds: the in-memory machine template.
func (*Provider) ComposedKinds() []string { return []string{"DevMachineTemplate"} }

// CatalogType returns the simulated machine type of a catalog class.
func (*Provider) CatalogType(c v1beta1.MachineClass) string { return c.Sim }

// CatalogCapacity returns what a node of a catalog class has on Sim.
func (*Provider) CatalogCapacity(c v1beta1.MachineClass) *v1beta1.NodeCapacity {
	if c.Capacity == nil {
		return nil
	}
	return c.Capacity.Sim
}

// CannotRotate is "": simulated pools are MachineDeployments, which
// spec.rollout.after rolls.
func (*Provider) CannotRotate(*provider.Pool) string { return "" }

// ServedBy names CAPD, whose in-memory backend runs simulated machines.
func (*Provider) ServedBy(kind string) string {
	if kind == "DevMachineTemplate" {
		return "Cluster API's test infrastructure provider (CAPD)"
	}
	return ""
}

// Backends is MachineDeployment only, on self-managed clusters: the
// in-memory backend has no machine pools.
func (*Provider) Backends(pf provider.Platform) []v1alpha1.Backend {
	if pf != provider.PlatformKubeadm {
		return nil
	}
	return []v1alpha1.Backend{v1alpha1.BackendMachineDeployment}
}

// Validate checks a simulated pool: in the policy's zones, with a machine
// type that can label its machines.
func (*Provider) Validate(p *provider.Pool) field.ErrorList {
	var errs field.ErrorList
	if msgs := validation.IsValidLabelValue(p.MachineType); len(msgs) > 0 {
		errs = append(errs, field.Invalid(field.NewPath("spec", "machine"), p.MachineType,
			"a simulated machine type must be a label value: "+strings.Join(msgs, "; ")))
	}
	if pol := p.Policy.Sim; pol != nil && len(pol.Zones) > 0 {
		for i, z := range p.Spec.Zones {
			if !slices.Contains(pol.Zones, z) {
				errs = append(errs, field.NotSupported(field.NewPath("spec", "zones").Index(i), z, pol.Zones))
			}
		}
	}
	return errs
}

// MachineTemplate builds the in-memory DevMachineTemplate of one
// MachineDeployment. The zone is the MachineDeployment's failureDomain.
func (*Provider) MachineTemplate(p *provider.Pool, _ string) provider.Object {
	meta := clusterv1.ObjectMeta{Labels: map[string]string{MachineTypeLabel: p.MachineType}}
	d := devv1.CommonProvisioningSettings{StartupDuration: metav1.Duration{Duration: startupDuration(p)}, StartupJitter: startupJitter}
	return &devv1.DevMachineTemplate{
		TypeMeta: metav1.TypeMeta{APIVersion: devv1.GroupVersion.String(), Kind: "DevMachineTemplate"},
		Spec: devv1.DevMachineTemplateSpec{Template: devv1.DevMachineTemplateResource{
			ObjectMeta: meta,
			Spec: devv1.DevMachineSpec{Backend: devv1.DevMachineBackendSpec{InMemory: &devv1.InMemoryMachineBackendSpec{
				VM:   &devv1.InMemoryVMSpec{Provisioning: d},
				Node: &devv1.InMemoryNodeSpec{Provisioning: d},
			}}},
		}},
	}
}

func startupDuration(p *provider.Pool) time.Duration {
	s := int32(DefaultStartupSeconds)
	if p.Policy.Sim != nil {
		s = ptr.Deref(p.Policy.Sim.MachineStartupSeconds, s)
	}
	return time.Duration(s) * time.Second
}

// MachinePool is never called: Backends offers MachineDeployments only.
func (*Provider) MachinePool(p *provider.Pool) provider.Object {
	panic(fmt.Sprintf("sim: pool %s has backend %s, which Backends does not offer", p.Name, p.Backend))
}

// ReplicasManagedBy is empty: Cluster API's autoscaler scales simulated
// MachineDeployments like any other.
func (*Provider) ReplicasManagedBy(*provider.Pool) string { return "" }

// KeepImmutable keeps nothing: a simulated pool has no machine pool.
func (*Provider) KeepImmutable(*provider.Pool, provider.Object) field.ErrorList { return nil }

// Join is the kubeadm join of a simulated node. Nothing runs kubeadm on
// it; the configuration is what CAPD's own templates set, and kubeadm's
// schema needs a non-empty node registration.
func (*Provider) Join(*provider.Pool, string) provider.Join {
	return provider.Join{
		NodeName:    nodeName,
		KubeletArgs: []bootstrapv1.Arg{{Name: "eviction-hard", Value: ptr.To("nodefs.available<0%,imagefs.available<0%")}},
	}
}

// ParentFirst is false: a simulated pool has no machine pool.
func (*Provider) ParentFirst(*provider.Pool) bool { return false }
