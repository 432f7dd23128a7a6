package plan

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"

	awsexpv1 "sigs.k8s.io/cluster-api-provider-aws/v2/exp/api/v1beta2"
	infrav1 "sigs.k8s.io/cluster-api-provider-azure/api/v1beta1"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/apis/input/v1beta1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/capi"
	"github.com/fleetnodepool/function-fleetnodepool/fn/provider"
)

var (
	eks = &Cluster{InfrastructureKind: "AWSManagedCluster", ControlPlaneKind: "AWSManagedControlPlane"}
	aks = &Cluster{InfrastructureKind: "AzureASOManagedCluster", ControlPlaneKind: "AzureASOManagedControlPlane"}
)

func kinds(p *Plan) []string {
	var out []string
	for _, r := range p.Resources {
		out = append(out, r.Object.GetObjectKind().GroupVersionKind().Kind)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestBackendSelection checks which objects each platform and backend give.
func TestBackendSelection(t *testing.T) {
	cases := map[string]struct {
		reason      string
		edit        func(*Input)
		wantBackend v1alpha1.Backend
		wantKinds   []string
	}{
		"AutoOnKubeadm": {
			reason:      "Auto on a self-managed cluster is the policy's default, MachineDeployment when it sets none.",
			wantBackend: v1alpha1.BackendMachineDeployment,
			wantKinds:   []string{"AWSMachineTemplate", "KubeadmConfigTemplate", "MachineDeployment", "MachineHealthCheck"},
		},
		"AutoOnKubeadmPolicyMachinePool": {
			reason:      "The policy can make Auto mean an Auto Scaling group on self-managed clusters.",
			edit:        func(in *Input) { in.Policy.Defaults.Backend = v1alpha1.BackendMachinePool },
			wantBackend: v1alpha1.BackendMachinePool,
			wantKinds:   []string{"AWSMachinePool", "KubeadmConfig", "MachinePool"},
		},
		"AutoOnEKS": {
			reason:      "Auto on EKS is a managed node group.",
			edit:        func(in *Input) { in.Cluster = eks },
			wantBackend: v1alpha1.BackendManaged,
			wantKinds:   []string{"AWSManagedMachinePool", "MachinePool"},
		},
		"MachineDeploymentOnEKS": {
			reason:      "Self-managed EKS nodes bootstrap with nodeadm (AL2023).",
			edit:        func(in *Input) { in.Cluster, in.Spec.Backend = eks, v1alpha1.BackendMachineDeployment },
			wantBackend: v1alpha1.BackendMachineDeployment,
			wantKinds:   []string{"AWSMachineTemplate", "MachineDeployment", "MachineHealthCheck", "NodeadmConfigTemplate"},
		},
		"AutoOnAKS": {
			reason:      "Auto on AKS is an ASO agent pool.",
			edit:        func(in *Input) { onAzure(in); in.Cluster = aks },
			wantBackend: v1alpha1.BackendManaged,
			wantKinds:   []string{"AzureASOManagedMachinePool", "MachinePool"},
		},
		"MachinePoolOnAzure": {
			reason:      "A MachinePool on a self-managed Azure cluster is a scale set.",
			edit:        func(in *Input) { onAzure(in); in.Spec.Backend = v1alpha1.BackendMachinePool },
			wantBackend: v1alpha1.BackendMachinePool,
			wantKinds:   []string{"AzureMachinePool", "KubeadmConfig", "MachinePool"},
		},
		"AutoOnSim": {
			reason:      "A simulated cluster (DevCluster) runs in-memory machines from a DevMachineTemplate, one MachineDeployment per zone.",
			edit:        func(in *Input) { onSim(in); in.Spec.Provider = "" },
			wantBackend: v1alpha1.BackendMachineDeployment,
			wantKinds:   []string{"DevMachineTemplate", "KubeadmConfigTemplate", "MachineDeployment", "MachineHealthCheck"},
		},
		"AutoOnSimPolicyMachinePool": {
			reason:      "Where the policy makes Auto mean MachinePool, a simulated cluster still gets the one backend it has.",
			edit:        func(in *Input) { onSim(in); in.Policy.Defaults.Backend = v1alpha1.BackendMachinePool },
			wantBackend: v1alpha1.BackendMachineDeployment,
			wantKinds:   []string{"DevMachineTemplate", "KubeadmConfigTemplate", "MachineDeployment", "MachineHealthCheck"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := mustPlan(t, input(tc.edit))
			if diff := cmp.Diff(tc.wantBackend, p.Status.Backend); diff != "" {
				t.Errorf("%s\nbackend: -want, +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.wantKinds, kinds(p)); diff != "" {
				t.Errorf("%s\nkinds: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func machinePool(t *testing.T, p *Plan) *clusterv1.MachinePool {
	t.Helper()
	for _, r := range p.Resources {
		if mp, ok := r.Object.(*clusterv1.MachinePool); ok {
			return mp
		}
	}
	t.Fatal("the plan has no MachinePool")
	return nil
}

// TestMachinePoolReplicaOwner checks there is one owner of a MachinePool's
// size per backend.
func TestMachinePoolReplicaOwner(t *testing.T) {
	cases := map[string]struct {
		reason          string
		edit            func(*Input)
		wantReplicas    *int32
		wantAnnotations map[string]string
	}{
		"AutoscaledASG": {
			reason:       "An autoscaled Auto Scaling group: no replicas, the autoscaler's bounds, and the ASG marked as the owner.",
			edit:         func(in *Input) { in.Spec.Backend = v1alpha1.BackendMachinePool },
			wantReplicas: nil,
			wantAnnotations: map[string]string{
				clusterv1.AutoscalerMinSizeAnnotation: "2", clusterv1.AutoscalerMaxSizeAnnotation: "10",
				clusterv1.ReplicasManagedByAnnotation: "external-autoscaler",
				capi.AnnotationCapacityLabels:         "team=a",
			},
		},
		"FixedASG": {
			reason: "A fixed Auto Scaling group sets replicas and no annotations.",
			edit: func(in *Input) {
				in.Spec.Backend, in.Spec.Scaling = v1alpha1.BackendMachinePool, v1alpha1.Scaling{Replicas: ptr.To[int32](4)}
			},
			wantReplicas: ptr.To[int32](4),
		},
		"AutoscaledAKS": {
			reason:       "AKS scales with the agent pool's own autoscaler: no replicas, no annotations (CAPZ writes replicas-managed-by itself).",
			edit:         func(in *Input) { onAzure(in); in.Cluster = aks },
			wantReplicas: nil,
		},
		"AutoscaledEKS": {
			reason:       "An autoscaled EKS managed node group is sized outside Cluster API.",
			edit:         func(in *Input) { in.Cluster = eks },
			wantReplicas: nil,
			wantAnnotations: map[string]string{
				clusterv1.AutoscalerMinSizeAnnotation: "2", clusterv1.AutoscalerMaxSizeAnnotation: "10",
				clusterv1.ReplicasManagedByAnnotation: "external-autoscaler",
				capi.AnnotationCapacityLabels:         "team=a",
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			mp := machinePool(t, mustPlan(t, input(tc.edit)))
			if diff := cmp.Diff(tc.wantReplicas, mp.Spec.Replicas); diff != "" {
				t.Errorf("%s\nspec.replicas: -want, +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.wantAnnotations, mp.Annotations); diff != "" {
				t.Errorf("%s\nannotations: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestMachinePoolBootstrapRotation checks that a bootstrap-only change gives
// the MachinePool a new KubeadmConfig name, so its nodes roll.
func TestMachinePoolBootstrapRotation(t *testing.T) {
	asg := func(in *Input) { in.Spec.Backend = v1alpha1.BackendMachinePool }
	before := machinePool(t, mustPlan(t, input(asg)))
	after := machinePool(t, mustPlan(t, input(asg, func(in *Input) { in.Spec.Labels["team"] = "b" })))
	b, a := before.Spec.Template.Spec.Bootstrap.ConfigRef.Name, after.Spec.Template.Spec.Bootstrap.ConfigRef.Name
	if a == b {
		t.Errorf("a new kubelet label must give a new KubeadmConfig name, both are %s", a)
	}
	if before.Spec.Template.Spec.InfrastructureRef != after.Spec.Template.Spec.InfrastructureRef {
		t.Errorf("a bootstrap-only change must keep the infrastructure machine pool: %v became %v",
			before.Spec.Template.Spec.InfrastructureRef, after.Spec.Template.Spec.InfrastructureRef)
	}
}

// TestMixedInstances checks spot and extra instance types on an ASG: spot
// goes into the mixed instances policy, never both ways.
func TestMixedInstances(t *testing.T) {
	p := mustPlan(t, input(func(in *Input) {
		in.Spec.Backend = v1alpha1.BackendMachinePool
		in.Spec.Machine.Spot = ptr.To(true)
		in.Spec.AWS = &v1alpha1.AWSOptions{ExtraInstanceTypes: []string{"m5.xlarge"}}
	}))
	for _, r := range p.Resources {
		amp, ok := r.Object.(*awsexpv1.AWSMachinePool)
		if !ok {
			continue
		}
		if amp.Spec.AWSLaunchTemplate.SpotMarketOptions != nil {
			t.Errorf("spotMarketOptions cannot be combined with a mixed instances policy")
		}
		got := amp.Spec.MixedInstancesPolicy
		if got == nil || ptr.Deref(got.InstancesDistribution.OnDemandPercentageAboveBaseCapacity, -1) != 0 || len(got.Overrides) != 2 {
			t.Errorf("want a mixed instances policy of 2 types, all spot above base, got %+v", got)
		}
		return
	}
	t.Fatal("the plan has no AWSMachinePool")
}

func TestProviderRules(t *testing.T) {
	cases := map[string]struct {
		reason string
		edit   func(*Input)
		want   string
	}{
		"FlexibleNeeds126": {
			reason: "Flexible orchestration needs Kubernetes 1.26.",
			edit: func(in *Input) {
				onAzure(in)
				in.Spec.Backend, in.Spec.Version = v1alpha1.BackendMachinePool, "v1.25.9"
				in.Policy.Azure.OrchestrationMode = "Flexible"
			},
			want: `input.azure.orchestrationMode: Invalid value: "Flexible": Flexible orchestration needs Kubernetes v1.26 or later, the pool runs v1.25.9`,
		},
		"AKSPoolName": {
			reason: "An AKS agent pool name it cannot derive must be set.",
			edit: func(in *Input) {
				onAzure(in)
				in.Cluster, in.Name = aks, "42"
			},
			want: `spec.azure.agentPoolName: Invalid value: "": an AKS agent pool name is 1-12 lowercase letters and digits starting with a letter`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := testPlanner().Plan(input(tc.edit))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s\nPlan(...): want an error containing %q, got %v", tc.reason, tc.want, err)
			}
		})
	}
}

// TestEKSImmutableEdits checks that an edit EKS cannot make to a running
// managed node group is refused on its own: the node group keeps what it
// runs, the rest of the pool is reconciled, and the pool is not failed.
func TestEKSImmutableEdits(t *testing.T) {
	running := map[string]any{
		"eksNodegroupName": "prod-eu-1-workers", "instanceType": "m6i.xlarge", "diskSize": float64(80),
		"capacityType": "onDemand", "amiType": "AL2023_x86_64_STANDARD", "availabilityZones": []any{"eu-west-1a", "eu-west-1b"},
		"scaling": map[string]any{"minSize": float64(2), "maxSize": float64(10)},
	}
	const eksTail = ", which EKS cannot do in place: the change waits, and the rest of the pool is reconciled. Revert it, or create a new FleetNodePool and delete this one when its nodes are ready"
	observed := func(in *Input) {
		in.Cluster = eks
		in.Observed = map[string]Observed{keyInfraPool: {Kind: "AWSManagedMachinePool", Spec: running}}
	}
	type want struct {
		Refused *Refusal
		// Of the node group sent.
		InstanceType, CapacityType string
		DiskSize, MaxSize          int32
	}
	cases := map[string]struct {
		reason string
		edit   func(*Input)
		want   want
	}{
		"Unchanged": {
			reason: "The running node group as it is: nothing refused.",
			want:   want{InstanceType: "m6i.xlarge", CapacityType: "onDemand", DiskSize: 80, MaxSize: 10},
		},
		"ScalingOnly": {
			reason: "A new max reaches the node group.",
			edit:   func(in *Input) { in.Spec.Scaling.Max = ptr.To[int32](20) },
			want:   want{InstanceType: "m6i.xlarge", CapacityType: "onDemand", DiskSize: 80, MaxSize: 20},
		},
		"Disk": {
			reason: "A new disk size would need a new node group: the old one is kept, naming the field.",
			edit:   func(in *Input) { in.Spec.Machine.DiskGiB = ptr.To[int32](120) },
			want: want{InstanceType: "m6i.xlarge", CapacityType: "onDemand", DiskSize: 80, MaxSize: 10, Refused: &Refusal{
				Reason:  ReasonImmutableField,
				Message: "spec.machine.diskGiB: Forbidden: " + "would change diskSize of the running EKS managed node group from 80 to 120" + eksTail,
			}},
		},
		"SpotAndScaling": {
			reason: "Spot cannot be switched on a node group, and is refused; the new max in the same edit still reaches it.",
			edit: func(in *Input) {
				in.Spec.Machine.Spot = ptr.To(true)
				in.Spec.Scaling.Max = ptr.To[int32](20)
			},
			want: want{InstanceType: "m6i.xlarge", CapacityType: "onDemand", DiskSize: 80, MaxSize: 20, Refused: &Refusal{
				Reason:  ReasonImmutableField,
				Message: "spec.machine.spot: Forbidden: " + "would change capacityType of the running EKS managed node group from onDemand to spot" + eksTail,
			}},
		},
		"ZonesAdded": {
			reason: "Zones for a node group that runs without (unset is a value): refused, naming the field.",
			edit: func(in *Input) {
				without := maps.Clone(running)
				delete(without, "availabilityZones")
				in.Observed[keyInfraPool] = Observed{Kind: "AWSManagedMachinePool", Spec: without}
			},
			want: want{InstanceType: "m6i.xlarge", CapacityType: "onDemand", DiskSize: 80, MaxSize: 10, Refused: &Refusal{
				Reason: ReasonImmutableField,
				Message: "spec.zones: Forbidden: would change availabilityZones of the running EKS managed node group from unset to " +
					"[eu-west-1a eu-west-1b]" + eksTail,
			}},
		},
		"TypeAndDisk": {
			reason: "Two immutable changes are both named, and both kept.",
			edit: func(in *Input) {
				in.Spec.Machine.Class = "large"
				in.Spec.Machine.DiskGiB = ptr.To[int32](120)
			},
			want: want{InstanceType: "m6i.xlarge", CapacityType: "onDemand", DiskSize: 80, MaxSize: 10, Refused: &Refusal{
				Reason: ReasonImmutableField,
				Message: "[spec.machine: Forbidden: " + "would change instanceType of the running EKS managed node group from m6i.xlarge to m6i.2xlarge" + eksTail +
					", spec.machine.diskGiB: Forbidden: " + "would change diskSize of the running EKS managed node group from 80 to 120" + eksTail + "]",
			}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := mustPlan(t, input(observed, tc.edit))
			got := want{Refused: p.Refused}
			for _, r := range p.Resources {
				if mmp, ok := r.Object.(*awsexpv1.AWSManagedMachinePool); ok {
					got.InstanceType, got.CapacityType = ptr.Deref(mmp.Spec.InstanceType, ""), string(ptr.Deref(mmp.Spec.CapacityType, ""))
					got.DiskSize, got.MaxSize = ptr.Deref(mmp.Spec.DiskSize, 0), ptr.Deref(mmp.Spec.Scaling.MaxSize, 0)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nPlan(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestAKSImmutableEdits: the same for a running AKS agent pool, whose
// fields sit in the raw ASO ManagedClustersAgentPool the
// AzureASOManagedMachinePool holds.
func TestAKSImmutableEdits(t *testing.T) {
	const tail = ", which AKS cannot do in place: the change waits, and the rest of the pool is reconciled. " +
		"Revert it, or create a new FleetNodePool and delete this one when its nodes are ready"
	onAKS := func(in *Input) {
		onAzure(in)
		in.Cluster = aks
	}
	// agentPool is the spec and name of the ASO agent pool the plan sends.
	agentPool := func(t *testing.T, p *Plan) (map[string]any, string) {
		t.Helper()
		for _, r := range p.Resources {
			if pool, ok := r.Object.(*infrav1.AzureASOManagedMachinePool); ok {
				agent := map[string]any{}
				if err := json.Unmarshal(pool.Spec.Resources[0].Raw, &agent); err != nil {
					t.Fatal(err)
				}
				return agent["spec"].(map[string]any), agent["metadata"].(map[string]any)["name"].(string)
			}
		}
		t.Fatal("the plan has no AzureASOManagedMachinePool")
		return nil, ""
	}
	// The running agent pool is what the unedited pool sends.
	var running map[string]any
	for _, r := range mustPlan(t, input(onAKS)).Resources {
		if pool, ok := r.Object.(*infrav1.AzureASOManagedMachinePool); ok {
			spec, err := provider.JSONMap(pool.Spec)
			if err != nil {
				t.Fatal(err)
			}
			running = spec
		}
	}
	observed := func(in *Input) {
		in.Observed = map[string]Observed{keyInfraPool: {Kind: "AzureASOManagedMachinePool", Spec: running}}
	}
	type want struct {
		Refused                *Refusal
		VMSize, Priority       any
		MaxCount, OSDiskSizeGB any
		// Name of the ASO object, checked where set.
		Name string
	}
	cases := map[string]struct {
		reason string
		edit   func(*Input)
		want   want
	}{
		"ScalingOnly": {
			reason: "A new max reaches the agent pool.",
			edit:   func(in *Input) { in.Spec.Scaling.Max = ptr.To[int32](20) },
			want:   want{VMSize: "Standard_D4s_v5", MaxCount: float64(20), OSDiskSizeGB: float64(80)},
		},
		"VMSize": {
			reason: "Another VM size needs a new agent pool: the running one keeps its own, naming the field; the new max reaches it.",
			edit: func(in *Input) {
				in.Spec.Machine.Class = "small"
				in.Spec.Scaling.Max = ptr.To[int32](20)
			},
			want: want{VMSize: "Standard_D4s_v5", MaxCount: float64(20), OSDiskSizeGB: float64(80), Refused: &Refusal{
				Reason:  ReasonImmutableField,
				Message: "spec.machine: Forbidden: would change vmSize of the running AKS agent pool from Standard_D4s_v5 to Standard_D2s_v5" + tail,
			}},
		},
		"Renamed": {
			reason: "A new agent pool name would make CAPZ delete the running pool: the name and the ASO object's stay.",
			edit:   func(in *Input) { in.Spec.Azure = &v1alpha1.AzureOptions{AgentPoolName: "renamed"} },
			want: want{VMSize: "Standard_D4s_v5", MaxCount: float64(10), OSDiskSizeGB: float64(80), Name: "prod-eu-1-workers", Refused: &Refusal{
				Reason:  ReasonImmutableField,
				Message: "spec.azure.agentPoolName: Forbidden: would change azureName of the running AKS agent pool from workers to renamed" + tail,
			}},
		},
		"Spot": {
			reason: "Spot cannot be switched on an agent pool: its priority, eviction policy and price all stay unset.",
			edit:   func(in *Input) { in.Spec.Machine.Spot = ptr.To(true) },
			want: want{VMSize: "Standard_D4s_v5", MaxCount: float64(10), OSDiskSizeGB: float64(80), Refused: &Refusal{
				Reason:  ReasonImmutableField,
				Message: "spec.machine.spot: Forbidden: would change scaleSetPriority of the running AKS agent pool from unset to Spot" + tail,
			}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := mustPlan(t, input(onAKS, observed, tc.edit))
			agent, name := agentPool(t, p)
			got := want{Refused: p.Refused, VMSize: agent["vmSize"], Priority: agent["scaleSetPriority"], MaxCount: agent["maxCount"], OSDiskSizeGB: agent["osDiskSizeGB"]}
			if tc.want.Name != "" {
				got.Name = name
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nPlan(...): -want, +got:\n%s", tc.reason, diff)
			}
			if _, ok := agent["scaleSetEvictionPolicy"]; ok && tc.want.Priority == nil {
				t.Errorf("%s\nan eviction policy without spot priority: %v", tc.reason, agent)
			}
		})
	}
}

// TestFlexibleScaleSetAfterItsMachinePool: CAPZ refuses a Flexible
// AzureMachinePool while its MachinePool does not exist, and Crossplane
// applies composed objects in no set order: the scale set is composed on
// the reconcile after its MachinePool's, and is never dropped once it exists.
func TestFlexibleScaleSetAfterItsMachinePool(t *testing.T) {
	scaleSet := func(mode string) func(*Input) {
		return func(in *Input) {
			onAzure(in)
			in.Spec.Backend = v1alpha1.BackendMachinePool
			in.Policy.Azure.OrchestrationMode = mode
		}
	}
	observed := func(keys ...string) func(*Input) {
		return func(in *Input) {
			in.Observed = map[string]Observed{}
			for _, k := range keys {
				in.Observed[k] = Observed{Name: "prod-eu-1-workers"}
			}
		}
	}
	cases := map[string]struct {
		reason string
		edits  []func(*Input)
		want   bool
	}{
		"FlexibleNew":         {reason: "A new Flexible pool: its MachinePool first.", edits: []func(*Input){scaleSet("Flexible")}, want: false},
		"FlexibleParentThere": {reason: "Its MachinePool exists: the scale set follows.", edits: []func(*Input){scaleSet("Flexible"), observed(keyMachinePool)}, want: true},
		"FlexibleExists":      {reason: "A scale set that exists is never dropped.", edits: []func(*Input){scaleSet("Flexible"), observed(keyInfraPool)}, want: true},
		"UniformNew":          {reason: "A Uniform scale set needs no parent to be admitted: composed at once.", edits: []func(*Input){scaleSet("Uniform")}, want: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := mustPlan(t, input(tc.edits...))
			got := slices.Contains(kinds(p), "AzureMachinePool")
			if got != tc.want {
				t.Errorf("%s\ncomposes the AzureMachinePool: %t, want %t (kinds %v)", tc.reason, got, tc.want, kinds(p))
			}
			if !slices.Contains(kinds(p), "MachinePool") {
				t.Errorf("%s\nthe MachinePool must always be composed: %v", tc.reason, kinds(p))
			}
		})
	}
}

// TestPartlyRefusedChangeRolls: with only immutable fields of the running
// machine pool refused, the rest of the change is applied, and shows as
// such: it is in status.changes, and the pool rolls out.
func TestPartlyRefusedChangeRolls(t *testing.T) {
	eksAt := func(v string) func(*Input) {
		return func(in *Input) {
			in.Cluster = eks
			in.ControlPlane = &ControlPlane{Kind: "AWSManagedControlPlane", Name: "eks-eu-1", Version: v}
		}
	}
	v1 := mustPlan(t, input(eksAt("v1.34.1")))
	obs := observe(t, v1, 3)
	p := mustPlan(t, input(eksAt("v1.34.1"), func(in *Input) {
		in.Observed, in.MachineSets = obs, map[string][]MachineSet{}
		in.Spec.Version = "v1.34.1"
		in.Spec.Machine.DiskGiB = ptr.To[int32](120)
	}))
	if p.Refused == nil || p.Refused.Reason != ReasonImmutableField {
		t.Fatalf("a new disk on an EKS node group must be refused on its own, got %+v", p.Refused)
	}
	if len(p.Status.Changes) == 0 {
		t.Errorf("the version change is applied: status.changes must say so, got none")
	}
	if got := p.Status.Rollout.State; got != v1alpha1.RolloutRollingOut {
		t.Errorf("the version change is applied: the pool must roll out, got %s", got)
	}
}

func TestClusterNotFound(t *testing.T) {
	_, err := testPlanner().Plan(input(func(in *Input) { in.Cluster = nil }))
	var nf *ClusterNotFoundError
	if !errorsAs(err, &nf) || nf.Name != "prod-eu-1" || nf.Namespace != "team-a" {
		t.Errorf("Plan(...) without a Cluster: want a ClusterNotFoundError for team-a/prod-eu-1, got %v", err)
	}
}

func TestHealthCheck(t *testing.T) {
	cases := map[string]struct {
		reason string
		edit   func(*Input)
		want   bool
	}{
		"DefaultOn": {reason: "MachineDeployment pools get a MachineHealthCheck by default.", want: true},
		"PoolOff":   {reason: "A pool can turn it off.", edit: func(in *Input) { in.Spec.HealthCheck = &v1alpha1.HealthCheck{Enabled: ptr.To(false)} }, want: false},
		"PolicyOff": {reason: "The policy can turn it off by default.", edit: func(in *Input) { in.Policy.Defaults.HealthCheck = &v1beta1.HealthCheckPolicy{Enabled: ptr.To(false)} }, want: false},
		"PolicyOffPoolOn": {reason: "A pool can turn it on against the policy's default.", edit: func(in *Input) {
			in.Policy.Defaults.HealthCheck = &v1beta1.HealthCheckPolicy{Enabled: ptr.To(false)}
			in.Spec.HealthCheck = &v1alpha1.HealthCheck{Enabled: ptr.To(true)}
		}, want: true},
		"MachinePoolNone": {reason: "MachinePools get none: Cluster API cannot remediate their machines.", edit: func(in *Input) { in.Spec.Backend = v1alpha1.BackendMachinePool }, want: false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := mustPlan(t, input(tc.edit))
			var mhc *clusterv1.MachineHealthCheck
			for _, r := range p.Resources {
				if m, ok := r.Object.(*clusterv1.MachineHealthCheck); ok {
					mhc = m
				}
			}
			if (mhc != nil) != tc.want {
				t.Fatalf("%s\nMachineHealthCheck: want %t, got %v", tc.reason, tc.want, mhc)
			}
			if mhc != nil {
				want := map[string]string{clusterv1.ClusterNameLabel: "prod-eu-1", "fleet.nodepool.dev/pool": "workers"}
				if diff := cmp.Diff(want, mhc.Spec.Selector.MatchLabels); diff != "" {
					t.Errorf("%s\nthe health check must select the pool's machines in every zone: -want, +got:\n%s", tc.reason, diff)
				}
			}
		})
	}
}
