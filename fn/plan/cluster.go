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
	// Annotations and Labels of the Cluster: the rollout gates read its
	// concurrency and maintenance window there.
	Annotations, Labels map[string]string
}

// platform is the provider and platform a Cluster runs on: the provider
// whose infrastructure kind it names, and the platform of its control plane
// where that is a managed one, kubeadm otherwise.
func (pl *Planner) platform(c *Cluster, path *field.Path) (v1alpha1.Provider, provider.Platform, *field.Error) {
	p, ok := pl.infra[c.InfrastructureKind]
	if !ok {
		return "", "", field.Invalid(path, c.InfrastructureKind, fmt.Sprintf(
			"the Cluster's infrastructure kind %q is not one this function composes for (%s)", c.InfrastructureKind, quoted(sortedKeys(pl.infra))))
	}
	if cp, ok := pl.controlPlanes[c.ControlPlaneKind]; ok {
		return p, cp.Platform, nil
	}
	return p, provider.PlatformKubeadm, nil
}
