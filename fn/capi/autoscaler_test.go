package capi

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/apis/input/v1beta1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/provider"
)

func TestAutoscalerAnnotations(t *testing.T) {
	bounds := func(extra map[string]string) map[string]string {
		out := map[string]string{clusterv1.AutoscalerMinSizeAnnotation: "0", clusterv1.AutoscalerMaxSizeAnnotation: "5"}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	gpu := &v1beta1.NodeCapacity{
		CPU: resource.MustParse("8"), Memory: resource.MustParse("61Gi"), MaxPods: ptr.To[int32](58),
		GPU: &v1beta1.GPUCapacity{Type: "nvidia.com/gpu", Count: 1}, DRADriver: "gpu.nvidia.com",
	}
	cases := map[string]struct {
		reason string
		size   Size
		want   map[string]string
	}{
		"Fixed": {
			reason: "A fixed size carries no autoscaler annotations, whatever its shape.",
			size:   Size{Replicas: ptr.To[int32](3), Shape: &NodeShape{Capacity: gpu}},
			want:   map[string]string{},
		},
		"BoundsOnly": {
			reason: "An autoscaled size with no shape carries its bounds only.",
			size:   Size{Min: ptr.To[int32](0), Max: ptr.To[int32](5)},
			want:   bounds(nil),
		},
		"Capacity": {
			reason: "Declared capacity becomes quantities and integers; the ephemeral disk defaults to the root disk.",
			size: Size{Min: ptr.To[int32](0), Max: ptr.To[int32](5), Shape: &NodeShape{DiskGiB: 200, Capacity: gpu, Node: provider.Node{
				Labels: map[string]string{"node-role.kubernetes.io/gpu": "", "team": "ml", "cluster-api/accelerator": "nvidia-a10g"},
				Taints: []v1alpha1.Taint{{Key: "nvidia.com/gpu", Value: "present", Effect: "NoSchedule"}, {Key: "dedicated", Effect: "NoExecute"}},
			}}},
			want: bounds(map[string]string{
				AnnotationCPU: "8", AnnotationMemory: "61Gi", AnnotationEphemeralDisk: "200Gi", AnnotationMaxPods: "58",
				AnnotationGPUType: "nvidia.com/gpu", AnnotationGPUCount: "1", AnnotationDRADriver: "gpu.nvidia.com",
				AnnotationCapacityLabels: "cluster-api/accelerator=nvidia-a10g,node-role.kubernetes.io/gpu=,team=ml",
				AnnotationCapacityTaints: "nvidia.com/gpu=present:NoSchedule,dedicated=:NoExecute",
			}),
		},
		"DeclaredEphemeralDisk": {
			reason: "A declared ephemeral disk (instance storage) wins over the root disk.",
			size: Size{Min: ptr.To[int32](0), Max: ptr.To[int32](5), Shape: &NodeShape{DiskGiB: 100, Capacity: &v1beta1.NodeCapacity{
				CPU: resource.MustParse("3920m"), Memory: resource.MustParse("15Gi"), EphemeralDisk: ptr.To(resource.MustParse("1900Gi")),
			}}},
			want: bounds(map[string]string{AnnotationCPU: "3920m", AnnotationMemory: "15Gi", AnnotationEphemeralDisk: "1900Gi"}),
		},
		"LabelsWithoutCapacity": {
			reason: "Without capacity (a provider reporting status.capacity), the labels and taints still tell the autoscaler what a node carries.",
			size: Size{Min: ptr.To[int32](0), Max: ptr.To[int32](5), Shape: &NodeShape{DiskGiB: 100, Node: provider.Node{
				Labels: map[string]string{"team": "a"},
			}}},
			want: bounds(map[string]string{AnnotationCapacityLabels: "team=a"}),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, autoscalerAnnotations(tc.size)); diff != "" {
				t.Errorf("%s\nautoscalerAnnotations(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}
