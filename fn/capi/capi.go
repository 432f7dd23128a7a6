// Package capi builds the provider-neutral Cluster API objects of a node
// pool (MachineDeployments, MachinePools, kubeadm bootstrap configuration,
// MachineHealthChecks) from the upstream v1beta2 types, and knows Cluster
// API's own control plane, kubeadm's.
package capi

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"
	controlplanev1 "sigs.k8s.io/cluster-api/api/controlplane/kubeadm/v1beta2"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/provider"
)

// PoolLabel is set on every object composed for a FleetNodePool and on its
// Machines, naming the pool.
const PoolLabel = v1alpha1.Group + "/pool"

// KubeadmControlPlane is Cluster API's own control plane. Kubeadm joins
// only nodes of the control plane's minor (Cluster API's KubeadmVersionSkew
// preflight).
var KubeadmControlPlane = provider.ControlPlaneKind{
	Kind:       "KubeadmControlPlane",
	APIVersion: controlplanev1.GroupVersion.String(),
	Platform:   provider.PlatformKubeadm,
	MaxSkew:    0,
	Skew:       "kubeadm joins only nodes of the control plane's minor",
}

// A Ref names an object a MachineDeployment references.
type Ref struct {
	APIGroup string
	Kind     string
	Name     string
}

// RefTo returns a reference to obj, which must have its TypeMeta and name set.
func RefTo(obj provider.Object) Ref {
	gvk := obj.GetObjectKind().GroupVersionKind()
	return Ref{APIGroup: gvk.Group, Kind: gvk.Kind, Name: obj.GetName()}
}

func (r Ref) contract() clusterv1.ContractVersionedObjectReference {
	return clusterv1.ContractVersionedObjectReference{APIGroup: r.APIGroup, Kind: r.Kind, Name: r.Name}
}

// KubeadmConfigTemplate builds the bootstrap template of worker nodes of a
// MachineDeployment: the provider's join settings plus the pool's node
// labels and taints, applied through kubeadm's node registration.
func KubeadmConfigTemplate(j provider.Join, n provider.Node) *bootstrapv1.KubeadmConfigTemplate {
	return &bootstrapv1.KubeadmConfigTemplate{
		TypeMeta: metav1.TypeMeta{APIVersion: bootstrapv1.GroupVersion.String(), Kind: "KubeadmConfigTemplate"},
		Spec: bootstrapv1.KubeadmConfigTemplateSpec{Template: bootstrapv1.KubeadmConfigTemplateResource{
			Spec: kubeadmSpec(j, n),
		}},
	}
}

// KubeadmConfig builds the bootstrap configuration of a MachinePool's
// nodes. Its name must change with its content (the caller hashes it):
// a MachinePool only rolls its nodes when its bootstrap config's name
// changes (cluster-api#8858, cluster-api-provider-aws#4071).
func KubeadmConfig(j provider.Join, n provider.Node) *bootstrapv1.KubeadmConfig {
	return &bootstrapv1.KubeadmConfig{
		TypeMeta: metav1.TypeMeta{APIVersion: bootstrapv1.GroupVersion.String(), Kind: "KubeadmConfig"},
		Spec:     kubeadmSpec(j, n),
	}
}

func kubeadmSpec(j provider.Join, n provider.Node) bootstrapv1.KubeadmConfigSpec {
	args := append([]bootstrapv1.Arg{}, j.KubeletArgs...)
	if l := n.LabelsFlag(); l != "" {
		args = append(args, bootstrapv1.Arg{Name: "node-labels", Value: ptr.To(l)})
	}
	reg := bootstrapv1.NodeRegistrationOptions{Name: j.NodeName, KubeletExtraArgs: args}
	if len(n.Taints) > 0 {
		taints := make([]corev1.Taint, 0, len(n.Taints))
		for _, t := range n.Taints {
			taints = append(taints, corev1.Taint{Key: t.Key, Value: t.Value, Effect: corev1.TaintEffect(t.Effect)})
		}
		reg.Taints = &taints
	}
	return bootstrapv1.KubeadmConfigSpec{
		JoinConfiguration: bootstrapv1.JoinConfiguration{NodeRegistration: reg},
		Files:             j.Files,
	}
}

// Size is a MachineDeployment's share of the pool's size: a fixed replica
// count or autoscaler bounds.
type Size struct {
	Replicas *int32
	Min      *int32
	Max      *int32
	// Shape is what a new node of an autoscaled size looks like.
	Shape *NodeShape
}

// MachineDeploymentParams describe one MachineDeployment of a pool.
type MachineDeploymentParams struct {
	Name        string
	Namespace   string
	ClusterName string
	Version     string
	Zone        string
	Size        Size
	Rollout     v1alpha1.Rollout
	// Labels go on the MachineDeployment and its Machines.
	Labels map[string]string
	// MachineLabels go on the Machines only; Cluster API syncs the ones in
	// its node label domains to the Nodes, in place.
	MachineLabels map[string]string
	Bootstrap     Ref
	Infra         Ref
}

// MachineDeployment builds a MachineDeployment. An autoscaled one leaves
// spec.replicas unset, so the cluster-autoscaler is its only owner, and
// carries the autoscaler's min and max size annotations; a fixed one sets
// replicas and no annotations.
func MachineDeployment(p MachineDeploymentParams) *clusterv1.MachineDeployment {
	selector := map[string]string{
		clusterv1.ClusterNameLabel:           p.ClusterName,
		clusterv1.MachineDeploymentNameLabel: p.Name,
	}
	machineLabels := merge(p.Labels, p.MachineLabels, selector)
	md := &clusterv1.MachineDeployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: clusterv1.GroupVersion.String(), Kind: "MachineDeployment"},
		ObjectMeta: objectMeta(p.Name, p.Namespace, p.ClusterName, p.Labels),
		Spec: clusterv1.MachineDeploymentSpec{
			ClusterName: p.ClusterName,
			Replicas:    p.Size.Replicas,
			Selector:    metav1.LabelSelector{MatchLabels: selector},
			Rollout: clusterv1.MachineDeploymentRolloutSpec{Strategy: clusterv1.MachineDeploymentRolloutStrategy{
				Type: clusterv1.RollingUpdateMachineDeploymentStrategyType,
				RollingUpdate: clusterv1.MachineDeploymentRolloutStrategyRollingUpdate{
					MaxSurge:       p.Rollout.MaxSurge,
					MaxUnavailable: p.Rollout.MaxUnavailable,
				},
			}},
			Template: clusterv1.MachineTemplateSpec{
				ObjectMeta: clusterv1.ObjectMeta{Labels: machineLabels},
				Spec: clusterv1.MachineSpec{
					ClusterName:       p.ClusterName,
					Version:           p.Version,
					Bootstrap:         clusterv1.Bootstrap{ConfigRef: p.Bootstrap.contract()},
					InfrastructureRef: p.Infra.contract(),
					FailureDomain:     p.Zone,
				},
			},
		},
	}
	if ann := autoscalerAnnotations(p.Size); len(ann) > 0 {
		md.Annotations = ann
	}
	return md
}

// MachinePoolParams describe a pool's MachinePool.
type MachinePoolParams struct {
	Name        string
	Namespace   string
	ClusterName string
	Version     string
	Zones       []string
	Size        Size
	// Autoscaler carries the cluster-autoscaler's size annotations when the
	// pool is autoscaled.
	Autoscaler bool
	// ReplicasManagedBy names the external scaler that owns the size of an
	// autoscaled pool, if any.
	ReplicasManagedBy string
	Labels            map[string]string
	MachineLabels     map[string]string
	// Bootstrap is the bootstrap config; nil for managed pools, which get
	// their bootstrap data from the cloud (dataSecretName "").
	Bootstrap *Ref
	Infra     Ref
}

// MachinePool builds a MachinePool. Like a MachineDeployment, an autoscaled
// one leaves spec.replicas unset.
func MachinePool(p MachinePoolParams) *clusterv1.MachinePool {
	boot := clusterv1.Bootstrap{DataSecretName: ptr.To("")}
	if p.Bootstrap != nil {
		boot = clusterv1.Bootstrap{ConfigRef: p.Bootstrap.contract()}
	}
	mp := &clusterv1.MachinePool{
		TypeMeta:   metav1.TypeMeta{APIVersion: clusterv1.GroupVersion.String(), Kind: "MachinePool"},
		ObjectMeta: objectMeta(p.Name, p.Namespace, p.ClusterName, p.Labels),
		Spec: clusterv1.MachinePoolSpec{
			ClusterName:    p.ClusterName,
			Replicas:       p.Size.Replicas,
			FailureDomains: p.Zones,
			Template: clusterv1.MachineTemplateSpec{
				ObjectMeta: clusterv1.ObjectMeta{Labels: merge(p.Labels, p.MachineLabels, map[string]string{clusterv1.ClusterNameLabel: p.ClusterName})},
				Spec: clusterv1.MachineSpec{
					ClusterName:       p.ClusterName,
					Version:           p.Version,
					Bootstrap:         boot,
					InfrastructureRef: p.Infra.contract(),
				},
			},
		},
	}
	ann := map[string]string{}
	if p.Autoscaler {
		ann = autoscalerAnnotations(p.Size)
	}
	if p.Size.Replicas == nil && p.ReplicasManagedBy != "" {
		ann[clusterv1.ReplicasManagedByAnnotation] = p.ReplicasManagedBy
	}
	if len(ann) > 0 {
		mp.Annotations = ann
	}
	return mp
}

// HealthCheckParams describe a pool's MachineHealthCheck.
type HealthCheckParams struct {
	Name, Namespace, ClusterName string
	// Selector selects the pool's Machines (over all its zones).
	Selector                  map[string]string
	NodeStartupTimeoutSeconds int32
	UnhealthyNodeConditions   []clusterv1.UnhealthyNodeCondition
	MaxUnhealthy              *intstr.IntOrString
}

// MachineHealthCheck builds the health check of a pool's Machines: Cluster
// API replaces a machine whose Node does not start, or stays unhealthy, in
// time, unless too many are unhealthy at once.
func MachineHealthCheck(p HealthCheckParams) *clusterv1.MachineHealthCheck {
	return &clusterv1.MachineHealthCheck{
		TypeMeta:   metav1.TypeMeta{APIVersion: clusterv1.GroupVersion.String(), Kind: "MachineHealthCheck"},
		ObjectMeta: objectMeta(p.Name, p.Namespace, p.ClusterName, nil),
		Spec: clusterv1.MachineHealthCheckSpec{
			ClusterName: p.ClusterName,
			Selector:    metav1.LabelSelector{MatchLabels: p.Selector},
			Checks: clusterv1.MachineHealthCheckChecks{
				NodeStartupTimeoutSeconds: ptr.To(p.NodeStartupTimeoutSeconds),
				UnhealthyNodeConditions:   p.UnhealthyNodeConditions,
			},
			Remediation: clusterv1.MachineHealthCheckRemediation{
				TriggerIf: clusterv1.MachineHealthCheckRemediationTriggerIf{UnhealthyLessThanOrEqualTo: p.MaxUnhealthy},
			},
		},
	}
}

// objectMeta is the metadata of a pool's MachineDeployment or MachinePool.
func objectMeta(name, namespace, cluster string, labels map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:      name,
		Namespace: namespace,
		Labels:    merge(labels, map[string]string{clusterv1.ClusterNameLabel: cluster}),
	}
}

// merge returns the union of maps, later ones winning.
func merge(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}
