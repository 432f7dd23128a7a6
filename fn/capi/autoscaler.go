package capi

import (
	"fmt"
	"maps"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"

	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/fleetnodepool/function-fleetnodepool/apis/input/v1beta1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/provider"
)

// The cluster-autoscaler's clusterapi provider reads what a node of a node
// group with no nodes would have from these annotations of its
// MachineDeployment, MachineSet or MachinePool (they win over the
// infrastructure template's status.capacity).
const (
	capacityPrefix           = "capacity.cluster-autoscaler.kubernetes.io/"
	AnnotationCPU            = capacityPrefix + "cpu"
	AnnotationMemory         = capacityPrefix + "memory"
	AnnotationEphemeralDisk  = capacityPrefix + "ephemeral-disk"
	AnnotationMaxPods        = capacityPrefix + "maxPods"
	AnnotationGPUType        = capacityPrefix + "gpu-type"
	AnnotationGPUCount       = capacityPrefix + "gpu-count"
	AnnotationDRADriver      = capacityPrefix + "dra-driver"
	AnnotationCapacityLabels = capacityPrefix + "labels"
	AnnotationCapacityTaints = capacityPrefix + "taints"
)

// A NodeShape is what a new node of an autoscaled pool looks like: what the
// cluster-autoscaler simulates a pending pod on when the pool has no
// nodes.
type NodeShape struct {
	// Capacity of the node, nil when the catalog declares none.
	Capacity *v1beta1.NodeCapacity
	// DiskGiB is the node's root disk: its ephemeral disk unless the
	// capacity says otherwise.
	DiskGiB int32
	// Node is the labels and taints the node carries once it has joined:
	// those kubelet registers it with, and those Cluster API syncs to it.
	Node provider.Node
}

// autoscalerAnnotations are the cluster-autoscaler's annotations of an
// autoscaled size (its bounds, and what a new node looks like), none for a
// fixed one.
func autoscalerAnnotations(s Size) map[string]string {
	if s.Min == nil || s.Max == nil {
		return map[string]string{}
	}
	ann := map[string]string{
		clusterv1.AutoscalerMinSizeAnnotation: strconv.Itoa(int(*s.Min)),
		clusterv1.AutoscalerMaxSizeAnnotation: strconv.Itoa(int(*s.Max)),
	}
	if s.Shape != nil {
		maps.Copy(ann, s.Shape.annotations())
	}
	return ann
}

// annotations renders a node's shape in the cluster-autoscaler's formats:
// quantities, "key=value,..." labels and "key=value:Effect,..." taints.
func (n *NodeShape) annotations() map[string]string {
	ann := map[string]string{}
	if c := n.Capacity; c != nil {
		ann[AnnotationCPU] = c.CPU.String()
		ann[AnnotationMemory] = c.Memory.String()
		disk := resource.MustParse(fmt.Sprintf("%dGi", n.DiskGiB))
		if c.EphemeralDisk != nil {
			disk = *c.EphemeralDisk
		}
		ann[AnnotationEphemeralDisk] = disk.String()
		if c.MaxPods != nil {
			ann[AnnotationMaxPods] = strconv.Itoa(int(*c.MaxPods))
		}
		if g := c.GPU; g != nil {
			ann[AnnotationGPUType] = g.Type
			ann[AnnotationGPUCount] = strconv.Itoa(int(g.Count))
		}
		if c.DRADriver != "" {
			ann[AnnotationDRADriver] = c.DRADriver
		}
	}
	if l := n.Node.LabelsFlag(); l != "" {
		ann[AnnotationCapacityLabels] = l // kubelet's --node-labels format.
	}
	if len(n.Node.Taints) > 0 {
		ts := make([]string, 0, len(n.Node.Taints))
		for _, t := range n.Node.Taints {
			ts = append(ts, t.Key+"="+t.Value+":"+string(t.Effect))
		}
		ann[AnnotationCapacityTaints] = strings.Join(ts, ",")
	}
	return ann
}
