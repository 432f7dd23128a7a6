package plan

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/apis/input/v1beta1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/capi"
)

// withCapacity declares the capacity of class medium on AWS.
func withCapacity(in *Input) {
	c := in.Policy.Catalog["medium"]
	c.Capacity = &v1beta1.ClassCapacity{AWS: &v1beta1.NodeCapacity{CPU: resource.MustParse("4"), Memory: resource.MustParse("16Gi")}}
	in.Policy.Catalog["medium"] = c
}

func fromZero(in *Input) { in.Spec.Scaling.Min = ptr.To[int32](0) }

func TestScaleFromZero(t *testing.T) {
	cases := map[string]struct {
		reason     string
		edit       func(*Input)
		wantReason string
		wantOK     bool
		wantMsg    string // A substring of the message.
		// wantCapacity: the MachineDeployments carry the class's cpu.
		wantCapacity bool
	}{
		"Fixed": {
			reason: "A fixed pool never scales to zero.", wantOK: true, wantReason: ReasonNotScaledToZero,
			edit: func(in *Input) { in.Spec.Scaling = v1alpha1.Scaling{Replicas: ptr.To[int32](0)} },
		},
		"MinAboveZones": {
			reason: "Min 2 over two zones keeps a node in each: no part scales to zero.", wantOK: true, wantReason: ReasonNotScaledToZero,
		},
		"MinBelowZones": {
			reason: "Min 1 over two zones leaves one zone's MachineDeployment at min 0: it must scale from zero.",
			edit:   func(in *Input) { in.Spec.Scaling.Min = ptr.To[int32](1) }, wantReason: ReasonCapacityUnknown,
			wantMsg: "input.catalog.medium.capacity.aws.cpu and .memory",
		},
		"Declared": {
			reason: "A class declaring its capacity scales from zero, and its MachineDeployments say what a node has.",
			edit:   func(in *Input) { fromZero(in); withCapacity(in) }, wantOK: true, wantReason: ReasonCapacityDeclared, wantCapacity: true,
		},
		"Undeclared": {
			reason: "A class declaring nothing for the pool's provider leaves the autoscaler blind: a False condition names the fields.",
			edit:   fromZero, wantReason: ReasonCapacityUnknown,
			wantMsg: "the platform catalog declares no aws capacity for class medium. The platform team sets input.catalog.medium.capacity.aws.cpu",
		},
		"OtherProviderDeclared": {
			reason: "Capacity declared for Azure says nothing of AWS nodes.",
			edit: func(in *Input) {
				fromZero(in)
				c := in.Policy.Catalog["medium"]
				c.Capacity = &v1beta1.ClassCapacity{Azure: &v1beta1.NodeCapacity{CPU: resource.MustParse("4"), Memory: resource.MustParse("16Gi")}}
				in.Policy.Catalog["medium"] = c
			},
			wantReason: ReasonCapacityUnknown,
		},
		"ProviderCapacity": {
			reason: "A provider whose controller reports its templates' status.capacity needs no catalog capacity for MachineDeployments.",
			edit: func(in *Input) {
				fromZero(in)
				in.Policy.ScaleFromZero = &v1beta1.ScaleFromZeroPolicy{ProviderCapacity: []v1alpha1.Provider{v1alpha1.ProviderAWS}}
			},
			wantOK: true, wantReason: ReasonProviderCapacity,
		},
		"MachineType": {
			reason: "A pool naming a machine type has no catalog capacity: the message says to use a class.",
			edit: func(in *Input) {
				fromZero(in)
				in.Policy.Limits.AllowMachineTypes, in.Spec.Machine = true, v1alpha1.Machine{Type: "g5.xlarge"}
			},
			wantReason: ReasonCapacityUnknown, wantMsg: "spec.machine.type g5.xlarge has no catalog capacity",
		},
		"AKS": {
			reason: "AKS scales its agent pools itself: nothing for the cluster-autoscaler to know.",
			edit:   func(in *Input) { onAzure(in); in.Cluster = aks; fromZero(in) }, wantOK: true, wantReason: ReasonExternalAutoscaler,
		},
		"ExternalASG": {
			reason: "An Auto Scaling group sized by the autoscaler's AWS provider is read from the group, not from Cluster API.",
			edit:   func(in *Input) { in.Spec.Backend = v1alpha1.BackendMachinePool; fromZero(in) }, wantOK: true, wantReason: ReasonExternalAutoscaler,
		},
		"AzureScaleSet": {
			reason: "A scale set sized by the clusterapi autoscaler needs catalog capacity: status.capacity does not cover MachinePools.",
			edit: func(in *Input) {
				onAzure(in)
				fromZero(in)
				in.Spec.Backend = v1alpha1.BackendMachinePool
				in.Policy.ScaleFromZero = &v1beta1.ScaleFromZeroPolicy{ProviderCapacity: []v1alpha1.Provider{v1alpha1.ProviderAzure}}
			},
			wantReason: ReasonCapacityUnknown, wantMsg: "input.catalog.medium.capacity.azure.cpu",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := testPlanner().Plan(input(tc.edit))
			if err != nil {
				t.Fatalf("%s\nPlan(...): %v", tc.reason, err)
			}
			got := p.ScaleFromZero
			if got.OK != tc.wantOK || got.Reason != tc.wantReason || !strings.Contains(got.Message, tc.wantMsg) {
				t.Errorf("%s\nPlan(...).ScaleFromZero = %+v, want OK %t, reason %s, a message containing %q", tc.reason, got, tc.wantOK, tc.wantReason, tc.wantMsg)
			}
			for _, r := range p.Resources {
				if md, ok := r.Object.(*clusterv1.MachineDeployment); ok {
					if has := md.Annotations[capi.AnnotationCPU] == "4"; has != tc.wantCapacity {
						t.Errorf("%s\nMachineDeployment %s carries the class's cpu: %t, want %t", tc.reason, md.Name, has, tc.wantCapacity)
					}
				}
			}
		})
	}
}

// TestCapacityLabelsAgreeWithNodes checks that what the autoscaler is told
// a new node carries is what the node gets: kubelet's --node-labels and
// registration taints, plus the labels Cluster API syncs from the Machine.
func TestCapacityLabelsAgreeWithNodes(t *testing.T) {
	in := input(fromZero, withCapacity, func(in *Input) {
		in.Spec.Labels = map[string]string{"team": "a", "node-role.kubernetes.io/gpu": "", "node.kubernetes.io/tier": "gold"}
		in.Spec.Taints = []v1alpha1.Taint{{Key: "dedicated", Value: "gpu", Effect: "NoSchedule"}, {Key: "spot", Effect: "NoExecute"}}
	})
	p, err := testPlanner().Plan(in)
	if err != nil {
		t.Fatal(err)
	}
	var kubelet, taints, synced string
	for _, r := range p.Resources {
		if kct, ok := r.Object.(*bootstrapv1.KubeadmConfigTemplate); ok {
			reg := kct.Spec.Template.Spec.JoinConfiguration.NodeRegistration
			for _, a := range reg.KubeletExtraArgs {
				if a.Name == "node-labels" {
					kubelet = ptr.Deref(a.Value, "")
				}
			}
			var ts []string
			for _, tn := range ptr.Deref(reg.Taints, nil) {
				ts = append(ts, tn.Key+"="+tn.Value+":"+string(tn.Effect))
			}
			taints = strings.Join(ts, ",")
		}
	}
	for _, r := range p.Resources {
		md, ok := r.Object.(*clusterv1.MachineDeployment)
		if !ok {
			continue
		}
		if v, ok := md.Spec.Template.Labels["node-role.kubernetes.io/gpu"]; ok {
			synced = "node-role.kubernetes.io/gpu=" + v
		}
		// Every label is one kubelet sets or one Cluster API syncs, and
		// every one of those is there.
		want := strings.Split(kubelet+","+synced, ",")
		got := strings.Split(md.Annotations[capi.AnnotationCapacityLabels], ",")
		if diff := cmp.Diff(sortedStrings(want), sortedStrings(got)); diff != "" {
			t.Errorf("MachineDeployment %s: capacity labels -kubelet and synced labels, +annotation:\n%s", md.Name, diff)
		}
		if got := md.Annotations[capi.AnnotationCapacityTaints]; got != taints {
			t.Errorf("MachineDeployment %s: capacity taints %q, want the registration taints %q", md.Name, got, taints)
		}
	}
	if kubelet == "" || synced == "" || taints == "" {
		t.Fatalf("the fixture must exercise kubelet labels (%q), synced labels (%q) and taints (%q)", kubelet, synced, taints)
	}
}

func sortedStrings(s []string) []string { return slices.Sorted(slices.Values(s)) }
