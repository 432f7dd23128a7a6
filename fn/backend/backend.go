// Package backend builds the provider-neutral Cluster API objects of a node
// pool (MachineDeployments and kubeadm bootstrap templates) from the upstream
// v1beta2 types.
package backend

import (
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/provider"
)

// PoolLabel is set on every object composed for a FleetNodePool and on its
// Machines, naming the pool.
const PoolLabel = v1alpha1.Group + "/pool"

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

// Node is what a pool's nodes are given when they join.
type Node struct {
	// Labels are set by kubelet (--node-labels) when the node registers.
	Labels map[string]string
	// Taints are set by kubeadm when the node registers.
	Taints []v1alpha1.Taint
}

// KubeadmConfigTemplate builds the bootstrap template of worker nodes: the
// provider's join settings plus the pool's node labels and taints, applied
// through kubeadm's node registration.
func KubeadmConfigTemplate(j provider.Join, n Node) *bootstrapv1.KubeadmConfigTemplate {
	args := append([]bootstrapv1.Arg{}, j.KubeletArgs...)
	if l := nodeLabels(n.Labels); l != "" {
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
	return &bootstrapv1.KubeadmConfigTemplate{
		TypeMeta: metav1.TypeMeta{APIVersion: bootstrapv1.GroupVersion.String(), Kind: "KubeadmConfigTemplate"},
		Spec: bootstrapv1.KubeadmConfigTemplateSpec{Template: bootstrapv1.KubeadmConfigTemplateResource{
			Spec: bootstrapv1.KubeadmConfigSpec{
				JoinConfiguration: bootstrapv1.JoinConfiguration{NodeRegistration: reg},
				Files:             j.Files,
			},
		}},
	}
}

// nodeLabels renders labels as kubelet's --node-labels value, sorted.
func nodeLabels(labels map[string]string) string {
	if len(labels) == 0 {
		return ""
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(labels[k])
	}
	return b.String()
}

// Size is a MachineDeployment's share of the pool's size: a fixed replica
// count or autoscaler bounds.
type Size struct {
	Replicas *int32
	Min      *int32
	Max      *int32
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
		TypeMeta: metav1.TypeMeta{APIVersion: clusterv1.GroupVersion.String(), Kind: "MachineDeployment"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      p.Name,
			Namespace: p.Namespace,
			Labels:    merge(p.Labels, map[string]string{clusterv1.ClusterNameLabel: p.ClusterName}),
		},
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
	if p.Size.Min != nil && p.Size.Max != nil {
		md.Annotations = map[string]string{
			clusterv1.AutoscalerMinSizeAnnotation: strconv.Itoa(int(*p.Size.Min)),
			clusterv1.AutoscalerMaxSizeAnnotation: strconv.Itoa(int(*p.Size.Max)),
		}
	}
	return md
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

// IntOrPercent is a convenience for rollout bounds.
func IntOrPercent(i int32) *intstr.IntOrString { v := intstr.FromInt32(i); return &v }
