package plan

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"

	awsv1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/apis/input/v1beta1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/capi"
)

// summary is what the rotation tests compare: template names by kind, and
// what each MachineDeployment points at.
type summary struct {
	Templates []string
	MDs       map[string]mdSummary
}

type mdSummary struct {
	Version     string
	Infra       string
	Bootstrap   string
	Replicas    *int32
	Annotations map[string]string
}

func summarize(t *testing.T, p *Plan) summary {
	t.Helper()
	s := summary{MDs: map[string]mdSummary{}}
	for _, r := range p.Resources {
		if md, ok := r.Object.(*clusterv1.MachineDeployment); ok {
			s.MDs[md.Name] = mdSummary{
				Version:     md.Spec.Template.Spec.Version,
				Infra:       md.Spec.Template.Spec.InfrastructureRef.Name,
				Bootstrap:   md.Spec.Template.Spec.Bootstrap.ConfigRef.Name,
				Replicas:    md.Spec.Replicas,
				Annotations: md.Annotations,
			}
			continue
		}
		s.Templates = append(s.Templates, r.Object.GetObjectKind().GroupVersionKind().Kind+"/"+r.Object.GetName())
	}
	slices.Sort(s.Templates)
	return s
}

func mustPlan(t *testing.T, in Input) *Plan {
	t.Helper()
	p, err := testPlanner().Plan(in)
	if err != nil {
		t.Fatalf("Plan(...): %v", err)
	}
	return p
}

// TestTemplateRotation checks which edits give new template names (and so
// roll nodes) and which are applied in place.
func TestTemplateRotation(t *testing.T) {
	type want struct {
		newInfra     bool
		newBootstrap bool
		version      string
	}
	cases := map[string]struct {
		reason string
		// base is applied before and after the edit.
		base func(*Input)
		edit func(*Input)
		want want
	}{
		"MachineClass": {
			reason: "A new machine class changes the infrastructure template spec: new names, and the MachineDeployments point at them.",
			edit:   func(in *Input) { in.Spec.Machine.Class = "large" },
			want:   want{newInfra: true, newBootstrap: false, version: "v1.33.4"},
		},
		"VersionWithPinnedImage": {
			reason: "A version whose AMI the policy pins changes the MachineDeployment's version and the infrastructure template (its AMI).",
			edit:   func(in *Input) { in.Spec.Version = "v1.34.1" },
			want:   want{newInfra: true, newBootstrap: false, version: "v1.34.1"},
		},
		"VersionWithoutPinnedImage": {
			reason: "A version without a pinned image changes only the MachineDeployment's version; Cluster API looks the image up.",
			base:   func(in *Input) { in.Policy.AWS.AMIs = nil },
			edit:   func(in *Input) { in.Spec.Version = "v1.34.1" },
			want:   want{newInfra: false, newBootstrap: false, version: "v1.34.1"},
		},
		"ChannelBump": {
			reason: "A channel bumped in the policy moves every pool on the channel.",
			edit:   func(in *Input) { in.Policy.Channels["stable"] = "v1.34.1" },
			want:   want{newInfra: true, newBootstrap: false, version: "v1.34.1"},
		},
		"KubeletLabel": {
			reason: "A label kubelet sets at registration is part of the bootstrap template: a new bootstrap template.",
			edit:   func(in *Input) { in.Spec.Labels["team"] = "b" },
			want:   want{newInfra: false, newBootstrap: true, version: "v1.33.4"},
		},
		"Taint": {
			reason: "Taints are set by kubeadm at registration: a new bootstrap template.",
			edit: func(in *Input) {
				in.Spec.Taints = []v1alpha1.Taint{{Key: "dedicated", Value: "gpu", Effect: "NoSchedule"}}
			},
			want: want{newInfra: false, newBootstrap: true, version: "v1.33.4"},
		},
		"NodeRoleLabel": {
			reason: "A node-role label is synced by Cluster API from the Machine, in place: no new template.",
			edit:   func(in *Input) { in.Spec.Labels["node-role.kubernetes.io/worker"] = "" },
			want:   want{newInfra: false, newBootstrap: false, version: "v1.33.4"},
		},
		"Scaling": {
			reason: "Scaling bounds touch no template.",
			edit:   func(in *Input) { in.Spec.Scaling.Min = ptr.To[int32](4); in.Spec.Scaling.Max = ptr.To[int32](20) },
			want:   want{newInfra: false, newBootstrap: false, version: "v1.33.4"},
		},
		"Rollout": {
			reason: "Rollout bounds touch no template.",
			edit:   func(in *Input) { in.Spec.Rollout = &v1alpha1.Rollout{MaxSurge: intOrStr("25%")} },
			want:   want{newInfra: false, newBootstrap: false, version: "v1.33.4"},
		},
		"SpotOn": {
			reason: "Spot capacity (spotMarketOptions: {}, a pointer to an empty struct) is part of the infrastructure template: turning it on rolls nodes.",
			edit:   func(in *Input) { in.Spec.Machine.Spot = ptr.To(true) },
			want:   want{newInfra: true, newBootstrap: false, version: "v1.33.4"},
		},
		"SpotOff": {
			reason: "Turning spot off rolls nodes back to on-demand.",
			base:   func(in *Input) { in.Spec.Machine.Spot = ptr.To(true) },
			edit:   func(in *Input) { in.Spec.Machine.Spot = ptr.To(false) },
			want:   want{newInfra: true, newBootstrap: false, version: "v1.33.4"},
		},
		"EmptyStringSet": {
			reason: "An optional string set to \"\" (no EC2 key pair, rather than CAPA's default one) is sent, so it is part of the template's name.",
			edit:   func(in *Input) { in.Policy.AWS.SSHKeyName = ptr.To("") },
			want:   want{newInfra: true, newBootstrap: false, version: "v1.33.4"},
		},
		"EmptyStringUnset": {
			reason: "An optional string set to \"\" and unset again rotates back.",
			base:   func(in *Input) { in.Policy.AWS.SSHKeyName = ptr.To("") },
			edit:   func(in *Input) { in.Policy.AWS.SSHKeyName = nil },
			want:   want{newInfra: true, newBootstrap: false, version: "v1.33.4"},
		},
		"DiskSize": {
			reason: "A bigger root disk changes the infrastructure template.",
			edit:   func(in *Input) { in.Spec.Machine.DiskGiB = ptr.To[int32](200) },
			want:   want{newInfra: true, newBootstrap: false, version: "v1.33.4"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			base := func(*Input) {}
			if tc.base != nil {
				base = tc.base
			}
			before := summarize(t, mustPlan(t, input(base)))
			after := summarize(t, mustPlan(t, input(base, tc.edit)))
			for md, a := range after.MDs {
				b, ok := before.MDs[md]
				if !ok {
					t.Fatalf("%s\nMachineDeployment %s appeared; names of MachineDeployments must not change", tc.reason, md)
				}
				got := want{newInfra: a.Infra != b.Infra, newBootstrap: a.Bootstrap != b.Bootstrap, version: a.Version}
				if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{})); diff != "" {
					t.Errorf("%s\n%s: -want, +got:\n%s", tc.reason, md, diff)
				}
				// The MachineDeployment always points at templates of the plan.
				for _, ref := range []string{a.Infra, a.Bootstrap} {
					if !slices.ContainsFunc(after.Templates, func(s string) bool { return strings.HasSuffix(s, "/"+ref) }) {
						t.Errorf("%s\n%s references %s, which the plan does not emit", tc.reason, md, ref)
					}
				}
			}
		})
	}
}

// TestMetadataOnlyChange checks that a change outside the pool spec (the
// policy's unrelated entries) gives the same objects.
func TestMetadataOnlyChange(t *testing.T) {
	a := mustPlan(t, input())
	b := mustPlan(t, input(func(in *Input) {
		in.Policy.Catalog["tiny"] = in.Policy.Catalog["small"]
		in.Policy.Channels["edge"] = "v1.35.0"
	}))
	if diff := cmp.Diff(summarize(t, a), summarize(t, b)); diff != "" {
		t.Errorf("unrelated policy entries must not change the pool: -before, +after:\n%s", diff)
	}
}

func TestScaling(t *testing.T) {
	cases := map[string]struct {
		reason string
		edit   func(*Input)
		want   map[string]mdSummary
	}{
		"AutoscaledOverZones": {
			reason: "An autoscaled pool omits replicas and spreads min and max over its zones, the first zones taking the remainder.",
			edit: func(in *Input) {
				in.Spec.Zones = []string{"eu-west-1a", "eu-west-1b", "eu-west-1c"}
				in.Spec.Scaling.Min, in.Spec.Scaling.Max = ptr.To[int32](4), ptr.To[int32](10)
			},
			want: map[string]mdSummary{
				"prod-eu-1-workers-eu-west-1a": {Annotations: autoscaler("2", "4")},
				"prod-eu-1-workers-eu-west-1b": {Annotations: autoscaler("1", "3")},
				"prod-eu-1-workers-eu-west-1c": {Annotations: autoscaler("1", "3")},
			},
		},
		"FixedOverZones": {
			reason: "A fixed pool sets replicas per zone and carries no autoscaler annotations.",
			edit: func(in *Input) {
				in.Spec.Scaling = v1alpha1.Scaling{Replicas: ptr.To[int32](3)}
			},
			want: map[string]mdSummary{
				"prod-eu-1-workers-eu-west-1a": {Replicas: ptr.To[int32](2)},
				"prod-eu-1-workers-eu-west-1b": {Replicas: ptr.To[int32](1)},
			},
		},
		"NoZones": {
			reason: "A pool without zones is one MachineDeployment without a failure domain.",
			edit: func(in *Input) {
				in.Spec.Zones = nil
				in.Spec.Scaling = v1alpha1.Scaling{Replicas: ptr.To[int32](3)}
			},
			want: map[string]mdSummary{"prod-eu-1-workers": {Replicas: ptr.To[int32](3)}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := map[string]mdSummary{}
			for n, md := range summarize(t, mustPlan(t, input(tc.edit))).MDs {
				got[n] = mdSummary{Replicas: md.Replicas, Annotations: md.Annotations}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\n-want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// autoscaler is the cluster-autoscaler's annotations of a MachineDeployment
// of the fixture pool (labelled team=a).
func autoscaler(minSize, maxSize string) map[string]string {
	return map[string]string{
		clusterv1.AutoscalerMinSizeAnnotation: minSize,
		clusterv1.AutoscalerMaxSizeAnnotation: maxSize,
		capi.AnnotationCapacityLabels:         "team=a",
	}
}

func TestInvalid(t *testing.T) {
	cases := map[string]struct {
		reason string
		edit   func(*Input)
		want   []string
	}{
		"ProviderDisagreesWithCluster": {
			reason: "An explicit provider must agree with the Cluster's infrastructure.",
			edit:   func(in *Input) { in.Spec.Provider = v1alpha1.ProviderAzure },
			want:   []string{`spec.provider: Invalid value: "azure": the Cluster prod-eu-1 runs on aws (infrastructure AWSCluster): set spec.provider to aws, or leave it out`},
		},
		"UnknownInfrastructure": {
			reason: "A Cluster on infrastructure no provider composes for is named.",
			edit:   func(in *Input) { in.Cluster.InfrastructureKind = "GCPCluster" },
			want:   []string{`spec.clusterName: Invalid value: "GCPCluster": the Cluster's infrastructure kind "GCPCluster" is not one this function composes for ("AWSCluster", "AWSManagedCluster", "AWSManagedControlPlane", "AzureASOManagedCluster", "AzureCluster", "AzureManagedCluster", "DevCluster")`},
		},
		"BackendNotOnPlatform": {
			reason: "A managed pool needs a managed control plane, and says which backends the cluster supports.",
			edit:   func(in *Input) { in.Spec.Backend = v1alpha1.BackendManaged },
			want:   []string{`spec.backend: Invalid value: "Managed": the Cluster runs kubeadm on aws (control plane KubeadmControlPlane), which supports the backends "MachineDeployment", "MachinePool"`},
		},
		"MachinePoolOnAKS": {
			reason: "AKS runs only managed pools.",
			edit: func(in *Input) {
				in.Cluster = &Cluster{InfrastructureKind: "AzureASOManagedCluster", ControlPlaneKind: "AzureASOManagedControlPlane"}
				in.Spec.Provider, in.Spec.Zones, in.Spec.Backend = "", nil, v1alpha1.BackendMachinePool
			},
			want: []string{`spec.backend: Invalid value: "MachinePool": the Cluster runs aks on azure (control plane AzureASOManagedControlPlane), which supports the backends "Managed"`},
		},
		"MachinePoolOnSim": {
			reason: "Simulated clusters run MachineDeployments only.",
			edit:   func(in *Input) { onSim(in); in.Spec.Backend = v1alpha1.BackendMachinePool },
			want:   []string{`spec.backend: Invalid value: "MachinePool": the Cluster runs kubeadm on sim (control plane KubeadmControlPlane), which supports the backends "MachineDeployment"`},
		},
		"PlatformTheProviderDoesNotRun": {
			reason: "A provider that does not run the Cluster's platform (an AKS control plane on AWS infrastructure) composes nothing, and says why.",
			edit:   func(in *Input) { in.Cluster.ControlPlaneKind = "AzureASOManagedControlPlane" },
			want:   []string{`spec.clusterName: Invalid value: "prod-eu-1": the Cluster runs aks on aws (control plane AzureASOManagedControlPlane), which this function composes no node pool for`},
		},
		"SimZoneNotAllowed": {
			reason: "The policy's sim zones bound the pool's zones.",
			edit:   func(in *Input) { onSim(in); in.Policy.Sim = &v1beta1.SimPolicy{Zones: []string{"zone-a"}} },
			want:   []string{`spec.zones[1]: Unsupported value: "zone-b": supported values: "zone-a"`},
		},
		"ExtraTypesWithoutASG": {
			reason: "Extra instance types need an Auto Scaling group.",
			edit:   func(in *Input) { in.Spec.AWS = &v1alpha1.AWSOptions{ExtraInstanceTypes: []string{"m5.xlarge"}} },
			want:   []string{"spec.aws.extraInstanceTypes: Forbidden: extra instance types need an Auto Scaling group"},
		},
		"NoVersionAndNoDefaultChannel": {
			reason: "Without a version, channel or default channel the pool has no version.",
			edit:   func(in *Input) { in.Policy.Defaults.Channel = "" },
			want:   []string{"spec.version: Required value: set spec.version or spec.channel: the platform policy defines no default channel (input.defaults.channel)"},
		},
		"BadChannelVersionInPolicy": {
			reason: "A malformed channel version is the platform team's to fix, and says so by naming the input field.",
			edit:   func(in *Input) { in.Policy.Channels["stable"] = "1.33" },
			want:   []string{`input.channels[stable]: Invalid value: "1.33": must be a Kubernetes version like v1.33.4`},
		},
		"VersionWithLeadingZero": {
			reason: "A version must be semver: no leading zeros.",
			edit:   func(in *Input) { in.Spec.Version = "v1.033.4" },
			want:   []string{`spec.version: Invalid value: "v1.033.4": must be a Kubernetes version like v1.33.4`},
		},
		"ClassWithoutProviderType": {
			reason: "A class the catalog has, but not for this provider, tells the platform team which entry to add.",
			edit:   func(in *Input) { onAzure(in); in.Spec.Machine.Class = "large" },
			want:   []string{`spec.machine.class: Invalid value: "large": the platform catalog has no azure machine type for this class: the platform team must set input.catalog.large.azure`},
		},
		"MaxBelowZones": {
			reason: "An autoscaled pool needs a maximum of at least one node per zone.",
			edit:   func(in *Input) { in.Spec.Scaling.Min, in.Spec.Scaling.Max = ptr.To[int32](0), ptr.To[int32](1) },
			want:   []string{"spec.scaling.max: Invalid value: 1: must be at least the number of zones (2), so that every zone can run a node"},
		},
		"OnlyMin": {
			reason: "Autoscaling needs both bounds.",
			edit:   func(in *Input) { in.Spec.Scaling.Max = nil },
			want:   []string{"spec.scaling: Required value: set spec.scaling.replicas for a fixed size, or both spec.scaling.min and spec.scaling.max to autoscale"},
		},
		"DuplicateZoneAfterSanitizing": {
			reason: "Two zones that would give the same object names are refused.",
			edit:   func(in *Input) { in.Spec.Zones = []string{"eu-west-1a", "EU-WEST-1A"} },
			want:   []string{`spec.zones[1]: Duplicate value: "EU-WEST-1A (same as eu-west-1a)"`},
		},
		"BadRolloutPercent": {
			reason: "A rollout bound must be a number or a percentage.",
			edit:   func(in *Input) { in.Spec.Rollout = &v1alpha1.Rollout{MaxSurge: intOrStr("lots")} },
			want:   []string{`spec.rollout.maxSurge: Invalid value: "lots": must be a number of machines (e.g. 1) or a percentage (e.g. 25%), not negative`},
		},
		"BadLabelValue": {
			reason: "A label value kubelet would reject is refused before any node boots.",
			edit:   func(in *Input) { in.Spec.Labels["team"] = "a b" },
			want:   []string{`spec.labels[team]: Invalid value: "a b"`},
		},
		"NoAWSPolicy": {
			reason: "An AWS pool under a policy without an aws section names the input field to add.",
			edit:   func(in *Input) { in.Policy.AWS = nil },
			want:   []string{"input.aws: Required value: the platform policy has no aws section"},
		},
		"AzureKeyNotBase64": {
			reason: "The Azure SSH key must be base64, or CAPZ would fail later.",
			edit:   func(in *Input) { onAzure(in); in.Policy.Azure.SSHPublicKey = "ssh-ed25519 AAAA" },
			want:   []string{`input.azure.sshPublicKey: Invalid value: "ssh-ed25519 AAAA": must be base64-encoded`},
		},
		"AzureNoKey": {
			reason: "An Azure pool needs a deterministic SSH key from policy.",
			edit:   func(in *Input) { onAzure(in); in.Policy.Azure.SSHPublicKey = "" },
			want:   []string{"input.azure.sshPublicKey: Required value: set a base64-encoded OpenSSH public key"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := testPlanner().Plan(input(tc.edit))
			if err == nil {
				t.Fatalf("%s\nPlan(...): want an error, got none", tc.reason)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s\nPlan(...): error does not contain %q:\n%s", tc.reason, w, err)
				}
			}
		})
	}
}

func TestReadinessAndStatus(t *testing.T) {
	in := input(func(in *Input) { in.Spec.Zones = nil })
	p := mustPlan(t, in)
	keys := map[string]string{}
	for _, r := range p.Resources {
		keys[r.Object.GetObjectKind().GroupVersionKind().Kind] = r.Key
	}
	cases := map[string]struct {
		reason    string
		observed  map[string]Observed
		wantReady map[string]bool
		wantRepl  *int32
	}{
		"NothingObserved": {
			reason:    "Nothing exists yet: nothing is ready.",
			wantReady: map[string]bool{"AWSMachineTemplate": false, "KubeadmConfigTemplate": false, "MachineDeployment": false, "MachineHealthCheck": false},
		},
		"TemplatesExistDeploymentRolling": {
			reason: "Templates are ready once they exist; a MachineDeployment whose controller has not seen its spec is not.",
			observed: map[string]Observed{
				keys["AWSMachineTemplate"]:    {},
				keys["KubeadmConfigTemplate"]: {},
				keys["MachineDeployment"]:     {Generation: 3, ObservedGeneration: 2, Available: true, Replicas: ptr.To[int32](2), ReadyReplicas: ptr.To[int32](1)},
				keys["MachineHealthCheck"]:    {},
			},
			wantReady: map[string]bool{"AWSMachineTemplate": true, "KubeadmConfigTemplate": true, "MachineDeployment": false, "MachineHealthCheck": true},
			wantRepl:  ptr.To[int32](2),
		},
		"Available": {
			reason: "A MachineDeployment is ready when Available and its latest spec observed.",
			observed: map[string]Observed{
				keys["AWSMachineTemplate"]:    {},
				keys["KubeadmConfigTemplate"]: {},
				keys["MachineDeployment"]:     {Generation: 3, ObservedGeneration: 3, Available: true, Replicas: ptr.To[int32](3)},
				keys["MachineHealthCheck"]:    {},
			},
			wantReady: map[string]bool{"AWSMachineTemplate": true, "KubeadmConfigTemplate": true, "MachineDeployment": true, "MachineHealthCheck": true},
			wantRepl:  ptr.To[int32](3),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			in.Observed = tc.observed
			p := mustPlan(t, in)
			got := map[string]bool{}
			for _, r := range p.Resources {
				got[r.Object.GetObjectKind().GroupVersionKind().Kind] = r.Ready
			}
			if diff := cmp.Diff(tc.wantReady, got); diff != "" {
				t.Errorf("%s\nready: -want, +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.wantRepl, p.Status.Replicas); diff != "" {
				t.Errorf("%s\nstatus.replicas: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestSpot checks that a spot pool keeps the empty spotMarketOptions, the
// whole of CAPA's "use spot at the on-demand price cap".
func TestSpot(t *testing.T) {
	p := mustPlan(t, input(func(in *Input) { in.Spec.Machine.Spot = ptr.To(true) }))
	for _, r := range p.Resources {
		if tmpl, ok := r.Object.(*awsv1.AWSMachineTemplate); ok {
			if tmpl.Spec.Template.Spec.SpotMarketOptions == nil {
				t.Errorf("a spot pool's AWSMachineTemplate must set spotMarketOptions")
			}
		}
	}
	if got := slices.Collect(maps.Keys(summarize(t, p).MDs)); len(got) != 2 {
		t.Errorf("want 2 MachineDeployments, got %v", got)
	}
}
