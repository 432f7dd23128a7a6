package plan

import (
	"fmt"
	"maps"
	"slices"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/capi"
	"github.com/fleetnodepool/function-fleetnodepool/fn/provider"
)

// Reasons of the ScaleFromZero condition.
const (
	// ReasonCapacityDeclared: the catalog declares the capacity of the
	// pool's nodes, and the autoscaler is told it.
	ReasonCapacityDeclared = "CapacityDeclared"
	// ReasonProviderCapacity: the provider's controller reports the
	// capacity of the pool's machine template (input.scaleFromZero).
	ReasonProviderCapacity = "ProviderCapacity"
	// ReasonNotScaledToZero: no part of the pool scales to zero nodes.
	ReasonNotScaledToZero = "NotScaledToZero"
	// ReasonExternalAutoscaler: another autoscaler than the
	// cluster-autoscaler's clusterapi provider sizes the pool (AKS's own,
	// or the cluster-autoscaler's AWS provider for an Auto Scaling group or
	// EKS node group), from the cloud's group, not these annotations.
	ReasonExternalAutoscaler = "ExternalAutoscaler"
	// ReasonCapacityUnknown: a part of the pool may scale to zero nodes,
	// and the cluster-autoscaler cannot know what a new node would have.
	ReasonCapacityUnknown = "CapacityUnknown"
)

// ScaleFromZero says whether the cluster-autoscaler can grow the pool from
// zero nodes.
type ScaleFromZero struct {
	// OK is false when a part of the pool may scale to zero and the
	// autoscaler cannot know what a new node would have.
	OK      bool
	Reason  string
	Message string
}

// resolveShape is what a new node of an autoscaled pool looks like (nil
// for a fixed size), and whether the cluster-autoscaler can grow it from
// zero. Its labels are the node's labels from the same resolution as
// kubelet's --node-labels and the Machines' labels, so the two agree.
func (r *resolved) resolveShape(in Input) {
	r.scaleFromZero = ScaleFromZero{OK: true, Reason: ReasonNotScaledToZero}
	if r.scaling.Replicas != nil || r.scaling.Min == nil || r.provider == nil {
		return
	}
	shape := &capi.NodeShape{DiskGiB: r.pool.DiskGiB, Node: provider.Node{Taints: r.pool.Node.Taints}}
	if len(r.pool.Node.Labels)+len(r.machineLabels) > 0 {
		shape.Node.Labels = make(map[string]string, len(r.pool.Node.Labels)+len(r.machineLabels))
		maps.Copy(shape.Node.Labels, r.pool.Node.Labels)
		maps.Copy(shape.Node.Labels, r.machineLabels)
	}
	class, hasClass := in.Policy.Catalog[in.Spec.Machine.Class]
	if hasClass {
		shape.Capacity = r.provider.CatalogCapacity(class)
	}
	r.shape = shape

	zones := max(len(in.Spec.Zones), 1)
	if r.pool.Backend != v1alpha1.BackendMachineDeployment {
		zones = 1
	}
	if int(*r.scaling.Min) >= zones {
		return // Every part keeps a node.
	}
	if !r.clusterAPIAutoscaled() {
		r.scaleFromZero = ScaleFromZero{OK: true, Reason: ReasonExternalAutoscaler}
		return
	}
	name := r.provider.Name()
	switch {
	case shape.Capacity != nil:
		r.scaleFromZero = ScaleFromZero{OK: true, Reason: ReasonCapacityDeclared}
	case r.pool.Backend == v1alpha1.BackendMachineDeployment && in.Policy.ScaleFromZero != nil &&
		slices.Contains(in.Policy.ScaleFromZero.ProviderCapacity, name):
		r.scaleFromZero = ScaleFromZero{OK: true, Reason: ReasonProviderCapacity}
	case hasClass:
		r.scaleFromZero = ScaleFromZero{Reason: ReasonCapacityUnknown, Message: fmt.Sprintf(
			"the pool may scale to zero nodes, and the cluster-autoscaler cannot grow it from zero: the platform catalog declares no %s capacity "+
				"for class %s. The platform team sets input.catalog.%s.capacity.%s.cpu and .memory (and .gpu, .maxPods where they apply)%s",
			name, in.Spec.Machine.Class, in.Spec.Machine.Class, name, providerCapacityHint(r.pool.Backend, name))}
	default:
		r.scaleFromZero = ScaleFromZero{Reason: ReasonCapacityUnknown, Message: fmt.Sprintf(
			"the pool may scale to zero nodes, and the cluster-autoscaler cannot grow it from zero: spec.machine.type %s has no catalog capacity. "+
				"Use spec.machine.class, a class whose input.catalog.<class>.capacity.%s the platform team declares%s",
			in.Spec.Machine.Type, name, providerCapacityHint(r.pool.Backend, name))}
	}
}

// providerCapacityHint names the other way out, where there is one.
func providerCapacityHint(b v1alpha1.Backend, name v1alpha1.Provider) string {
	if b != v1alpha1.BackendMachineDeployment {
		return ""
	}
	return fmt.Sprintf("; or, if %s's controller reports status.capacity of its machine templates, lists %s in input.scaleFromZero.providerCapacity", name, name)
}

// clusterAPIAutoscaled reports whether the cluster-autoscaler's clusterapi
// provider sizes the pool, and so reads its annotations. AKS scales its
// agent pools itself; an Auto Scaling group sized by an external scaler is
// the autoscaler's AWS provider's, which reads the group, not Cluster API.
func (r *resolved) clusterAPIAutoscaled() bool {
	switch {
	case r.pool.Backend == v1alpha1.BackendMachineDeployment:
		return true
	case r.pool.Platform == provider.PlatformAKS:
		return false
	}
	return r.provider.ReplicasManagedBy(&r.pool) == ""
}
