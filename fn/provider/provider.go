// Package provider defines what a cloud contributes to a node pool. Each cloud
// lives in its own package (aws, azure) behind the Provider interface, so
// adding a cloud is one new folder plus a catalog column in the policy.
package provider

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/apis/input/v1beta1"
)

// An Object is a typed Kubernetes object with metadata.
type Object interface {
	metav1.Object
	runtime.Object
}

// A Pool is a FleetNodePool after the provider-neutral defaults and checks:
// what a provider builds its objects from.
type Pool struct {
	// Spec is the FleetNodePool's spec as written.
	Spec *v1alpha1.FleetNodePoolSpec
	// Policy is the platform policy.
	Policy *v1beta1.Policy
	// Version is the resolved Kubernetes version, e.g. v1.33.4.
	Version string
	// MachineType is the resolved provider instance type.
	MachineType string
	// DiskGiB is the resolved root disk size.
	DiskGiB int32
	// Spot is true for pools on spot capacity.
	Spot bool
}

// Join is what a provider adds to the kubeadm join configuration of a node.
type Join struct {
	// NodeName is the kubeadm node name template.
	NodeName string
	// KubeletArgs are kubelet flags, e.g. cloud-provider=external.
	KubeletArgs []bootstrapv1.Arg
	// Files are written on the node before kubeadm runs.
	Files []bootstrapv1.File
}

// A Provider builds the cloud-specific objects of a pool.
type Provider interface {
	// Name of the provider, as written in spec.provider.
	Name() v1alpha1.Provider

	// CatalogType returns the provider's instance type for a catalog class,
	// or "" when the class has none for this provider.
	CatalogType(c v1beta1.MachineClass) string

	// Validate checks the pool's provider-specific settings against the
	// policy. Errors name the field to fix (spec.* or input.*).
	Validate(p *Pool) field.ErrorList

	// MachineTemplate builds the infrastructure machine template of the
	// MachineDeployment for one zone ("" for none), without name or
	// namespace: the caller names it by a hash of its spec.
	MachineTemplate(p *Pool, zone string) Object

	// KubeadmJoin is the provider's part of the kubeadm join configuration
	// of nodes built from the named infrastructure machine template.
	KubeadmJoin(p *Pool, machineTemplateName string) Join
}
