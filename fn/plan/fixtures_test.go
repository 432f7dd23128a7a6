package plan

import (
	"errors"
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/apis/input/v1beta1"
)

// policy is a realistic platform policy for tests.
func policy() *v1beta1.Policy {
	return &v1beta1.Policy{
		Catalog: map[string]v1beta1.MachineClass{
			"small":  {AWS: "m6i.large", Azure: "Standard_D2s_v5", Sim: "sim.small"},
			"medium": {AWS: "m6i.xlarge", Azure: "Standard_D4s_v5", Sim: "sim.medium"},
			"large":  {AWS: "m6i.2xlarge"},
		},
		Channels: map[string]string{"stable": "v1.33.4", "rapid": "v1.34.1"},
		Defaults: v1beta1.Defaults{Channel: "stable", DiskGiB: ptr.To[int32](80)},
		Limits:   v1beta1.Limits{MaxReplicas: ptr.To[int32](50)},
		AWS: &v1beta1.AWSPolicy{
			IAMInstanceProfile: "nodes.cluster-api-provider-aws.sigs.k8s.io",
			RootVolumeType:     "gp3",
			AMIs:               map[string]string{"v1.33.4": "ami-0a1b2c3d4e5f67890", "v1.34.1": "ami-0f9e8d7c6b5a43210"},
		},
		Azure: &v1beta1.AzurePolicy{Location: "westeurope", SSHPublicKey: "c3NoLWVkMjU1MTkgQUFBQQ=="},
	}
}

// input is a valid autoscaled AWS pool over two zones, with mods applied;
// nil mods are skipped, so a table case without an edit can pass its nil one.
func input(mods ...func(*Input)) Input {
	in := Input{
		Name:      "workers",
		Namespace: "team-a",
		Spec: v1alpha1.FleetNodePoolSpec{
			ClusterName: "prod-eu-1",
			Provider:    v1alpha1.ProviderAWS,
			Backend:     v1alpha1.BackendAuto,
			Machine:     v1alpha1.Machine{Class: "medium"},
			Scaling:     v1alpha1.Scaling{Min: ptr.To[int32](2), Max: ptr.To[int32](10)},
			Zones:       []string{"eu-west-1a", "eu-west-1b"},
			Labels:      map[string]string{"team": "a"},
		},
		Policy:  policy(),
		Cluster: &Cluster{InfrastructureKind: "AWSCluster", ControlPlaneKind: "KubeadmControlPlane"},
		// The pool is alone in its Cluster, planned at a fixed instant.
		Siblings: []Sibling{},
		Now:      testNow,
	}
	for _, m := range mods {
		if m != nil {
			m(&in)
		}
	}
	return in
}

// testNow is the instant tests plan at: Sunday 2026-11-29 23:00 UTC.
var testNow = time.Date(2026, time.November, 29, 23, 0, 0, 0, time.UTC)

func intOrStr(s string) *intstr.IntOrString { v := intstr.Parse(s); return &v }

// onAzure moves a pool to a self-managed Azure cluster.
func onAzure(in *Input) {
	in.Cluster.InfrastructureKind = "AzureCluster"
	in.Spec.Provider, in.Spec.Zones = v1alpha1.ProviderAzure, nil
}

// onSim moves a pool to a simulated (in-memory) cluster.
func onSim(in *Input) {
	in.Cluster.InfrastructureKind = "DevCluster"
	in.Spec.Provider, in.Spec.Zones = v1alpha1.ProviderSim, []string{"zone-a", "zone-b"}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
