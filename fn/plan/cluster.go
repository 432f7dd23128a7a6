package plan

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/provider"
)

// A Cluster is what planning reads of the pool's Cluster API Cluster.
type Cluster struct {
	// InfrastructureKind is the kind of spec.infrastructureRef, e.g. AWSCluster.
	InfrastructureKind string
	// ControlPlaneKind and ControlPlaneName name spec.controlPlaneRef, e.g.
	// KubeadmControlPlane prod-eu-1.
	ControlPlaneKind, ControlPlaneName string
}

// platforms maps a Cluster's infrastructure and control-plane kinds to the
// provider and platform they mean. A control-plane kind decides the
// platform where it is a managed one.
var (
	infraProviders = map[string]v1alpha1.Provider{
		"AWSCluster":             v1alpha1.ProviderAWS,
		"AWSManagedCluster":      v1alpha1.ProviderAWS,
		"AWSManagedControlPlane": v1alpha1.ProviderAWS, // Older EKS clusters use it as infrastructure too.
		"AzureCluster":           v1alpha1.ProviderAzure,
		"AzureManagedCluster":    v1alpha1.ProviderAzure,
		"AzureASOManagedCluster": v1alpha1.ProviderAzure,
		"DevCluster":             v1alpha1.ProviderSim, // Cluster API's in-memory (simulated) infrastructure.
	}
	managedControlPlanes = map[string]provider.Platform{
		"AWSManagedControlPlane":      provider.PlatformEKS,
		"AzureASOManagedControlPlane": provider.PlatformAKS,
		"AzureManagedControlPlane":    provider.PlatformAKS,
	}
)

// platform is the provider and platform a Cluster runs on.
func (c *Cluster) platform(path *field.Path) (v1alpha1.Provider, provider.Platform, *field.Error) {
	p, ok := infraProviders[c.InfrastructureKind]
	if !ok {
		return "", "", field.Invalid(path, c.InfrastructureKind, fmt.Sprintf(
			"the Cluster's infrastructure kind %q is not one this function composes for (AWS, Azure, or sim: DevCluster)", c.InfrastructureKind))
	}
	if pl, ok := managedControlPlanes[c.ControlPlaneKind]; ok {
		return p, pl, nil
	}
	return p, provider.PlatformKubeadm, nil
}
