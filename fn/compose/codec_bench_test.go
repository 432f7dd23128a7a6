package compose

import (
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"k8s.io/utils/ptr"

	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/fleetnodepool/function-fleetnodepool/fn/wire"
)

func mdObj() *clusterv1.MachineDeployment {
	md := &clusterv1.MachineDeployment{}
	md.APIVersion, md.Kind, md.Name, md.Namespace = "cluster.x-k8s.io/v1beta2", "MachineDeployment", "prod-eu-1-workers-eu-west-1a", "team-a"
	md.Labels = map[string]string{"a": "b", "cluster.x-k8s.io/cluster-name": "prod"}
	md.Spec.ClusterName = "prod"
	md.Spec.Replicas = ptr.To[int32](3)
	md.Spec.Selector.MatchLabels = map[string]string{"x": "y", "z": "w"}
	md.Spec.Template.Labels = map[string]string{"x": "y", "z": "w", "q": "r"}
	md.Spec.Template.Spec.ClusterName = "prod"
	md.Spec.Template.Spec.Version = "v1.33.4"
	md.Spec.Template.Spec.InfrastructureRef = clusterv1.ContractVersionedObjectReference{APIGroup: "infrastructure.cluster.x-k8s.io", Kind: "AWSMachineTemplate", Name: "prod-workers-abcdef12"}
	md.Spec.Template.Spec.Bootstrap.ConfigRef = clusterv1.ContractVersionedObjectReference{APIGroup: "bootstrap.cluster.x-k8s.io", Kind: "KubeadmConfigTemplate", Name: "prod-workers-abcdef12"}
	return md
}

// BenchmarkToStruct compares encoding a MachineDeployment for a response:
// ToStruct against what the SDK's resource.AsStruct does (JSON, then
// protojson).
func BenchmarkToStruct(b *testing.B) {
	md := mdObj()
	b.Run("ToStruct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ToStruct(md); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("protojson", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			j, _ := wire.Marshal(md)
			s := &structpb.Struct{}
			if err := protojson.Unmarshal(j, s); err != nil {
				b.Fatal(err)
			}
		}
	})
}
