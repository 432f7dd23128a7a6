// Package aws builds the AWS (Cluster API Provider AWS) objects of a node
// pool: AWSMachineTemplates for MachineDeployments (kubeadm and EKS
// self-managed nodes), AWSMachinePools (Auto Scaling groups) and
// AWSManagedMachinePools (EKS managed node groups).
package aws

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	expv1 "sigs.k8s.io/cluster-api-provider-aws/v2/exp/api/v1beta2"
	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/apis/input/v1beta1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/provider"
)

const (
	// nodeName is the kubeadm node name on EC2: the instance's private DNS
	// name, which the AWS cloud provider expects.
	nodeName = "{{ ds.meta_data.local_hostname }}"
	// defaultEKSAMIType is the AMI type of EKS managed node groups.
	defaultEKSAMIType = expv1.Al2023x86_64
	// externalAutoscaler marks a MachinePool whose size an autoscaler
	// outside Cluster API owns (the Auto Scaling group or EKS).
	externalAutoscaler = "external-autoscaler"
	// Instance refresh of an Auto Scaling group: keep 90% healthy, give a
	// new instance five minutes before it counts.
	refreshMinHealthy  = 90
	refreshWarmup      = 300
	asgCooldownSeconds = 300
)

// Provider is the AWS provider.
type Provider struct{}

// New returns the AWS provider.
func New() *Provider { return &Provider{} }

var _ provider.Provider = &Provider{}

// Name of the provider.
func (*Provider) Name() v1alpha1.Provider { return v1alpha1.ProviderAWS }

// eksControlPlane is CAPA's EKS control plane. EKS supports nodes up to
// three minors older than the control plane (since Kubernetes 1.28).
var eksControlPlane = provider.ControlPlaneKind{
	Kind: "AWSManagedControlPlane",
	// CAPA's controlplane/eks/api GroupVersion, built here: that package
	// pulls the AWS SDK into the function. CAPA versions its APIs together,
	// so the infrastructure API's import is the one place its version is.
	APIVersion: "controlplane.cluster.x-k8s.io/" + infrav1.GroupVersion.Version,
	Platform:   provider.PlatformEKS,
	MaxSkew:    3,
	Skew:       "EKS supports nodes up to 3 minors older than the control plane",
}

// InfrastructureKinds of CAPA's clusters. Older EKS clusters name their
// AWSManagedControlPlane as infrastructure too.
func (*Provider) InfrastructureKinds() []string {
	return []string{"AWSCluster", "AWSManagedCluster", eksControlPlane.Kind}
}

// ControlPlaneKinds are EKS's.
func (*Provider) ControlPlaneKinds() []provider.ControlPlaneKind {
	return []provider.ControlPlaneKind{eksControlPlane}
}

// ComposedKinds are the machine template, Auto Scaling group and EKS
// managed node group kinds.
func (*Provider) ComposedKinds() []string {
	return []string{"AWSMachineTemplate", "AWSMachinePool", "AWSManagedMachinePool"}
}

// ServedBy names CAPA, and the feature gates (on by default) that its
// machine pools need.
func (*Provider) ServedBy(kind string) string {
	const capa = "Cluster API Provider AWS (CAPA)"
	switch kind {
	case "AWSMachineTemplate":
		return capa
	case "AWSMachinePool":
		return capa + " with its MachinePool feature gate"
	case "AWSManagedMachinePool":
		return capa + " with its EKS and MachinePool feature gates"
	case "NodeadmConfigTemplate":
		return capa + "'s EKS bootstrap provider"
	}
	return ""
}

// Backends on self-managed clusters are MachineDeployments and Auto Scaling
// groups; on EKS, managed node groups first, and self-managed nodes.
func (*Provider) Backends(pf provider.Platform) []v1alpha1.Backend {
	switch pf {
	case provider.PlatformKubeadm:
		return []v1alpha1.Backend{v1alpha1.BackendMachineDeployment, v1alpha1.BackendMachinePool}
	case provider.PlatformEKS:
		return []v1alpha1.Backend{v1alpha1.BackendManaged, v1alpha1.BackendMachineDeployment}
	}
	return nil
}

// CatalogType returns the EC2 instance type of a catalog class.
func (*Provider) CatalogType(c v1beta1.MachineClass) string { return c.AWS }

// CatalogCapacity returns what a node of a catalog class has on AWS.
func (*Provider) CatalogCapacity(c v1beta1.MachineClass) *v1beta1.NodeCapacity {
	if c.Capacity == nil {
		return nil
	}
	return c.Capacity.AWS
}

// CannotRotate refuses a max node age for EKS managed node groups: EKS
// replaces their nodes only for a new version, AMI release or launch
// template, none of which a node's age changes. Auto Scaling groups roll
// their instances (an instance refresh, refreshPreferences) when their
// bootstrap data changes, and MachineDeployments by spec.rollout.after.
func (*Provider) CannotRotate(p *provider.Pool) string {
	if p.Backend == v1alpha1.BackendManaged {
		return "an EKS managed node group replaces its nodes only for a new Kubernetes version or AMI release, which the platform's channel bump " +
			"brings; use backend MachineDeployment or MachinePool for a max node age"
	}
	return ""
}

// Validate checks the AWS settings of a pool against the policy and the
// rules of its backend.
func (*Provider) Validate(p *provider.Pool) field.ErrorList {
	var errs field.ErrorList
	pol := p.Policy.AWS
	if pol == nil {
		return append(errs, field.Required(field.NewPath("input", "aws"),
			"the platform policy has no aws section: the Composition's function input must set aws.iamInstanceProfile"))
	}
	if pol.IAMInstanceProfile == "" && p.Backend != v1alpha1.BackendManaged {
		errs = append(errs, field.Required(field.NewPath("input", "aws", "iamInstanceProfile"),
			"worker nodes need an IAM instance profile: set it in the Composition's function input"))
	}
	if len(pol.Zones) > 0 {
		for i, z := range p.Spec.Zones {
			if !slices.Contains(pol.Zones, z) {
				errs = append(errs, field.NotSupported(field.NewPath("spec", "zones").Index(i), z, pol.Zones))
			}
		}
	}
	if v, ok := pol.AMIs[p.Version]; ok && v == "" {
		errs = append(errs, field.Invalid(field.NewPath("input", "aws", "amis").Key(p.Version), v,
			"must be an AMI ID; remove the entry to let Cluster API look up an image"))
	}
	if extra := extraTypes(p); len(extra) > 0 && p.Backend != v1alpha1.BackendMachinePool {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "aws", "extraInstanceTypes"),
			"extra instance types need an Auto Scaling group: set spec.backend to MachinePool, or remove them"))
	}
	if p.Backend == v1alpha1.BackendManaged {
		if p.Spec.AWS != nil && p.Spec.AWS.AMI != "" {
			errs = append(errs, field.Forbidden(field.NewPath("spec", "aws", "ami"),
				"an EKS managed node group runs the AMI of its AMI type (input.aws.eksAMIType); remove spec.aws.ami"))
		}
	}
	return errs
}

func extraTypes(p *provider.Pool) []string {
	if p.Spec.AWS == nil {
		return nil
	}
	return p.Spec.AWS.ExtraInstanceTypes
}

// immutableManaged are the fields of an EKS managed node group that EKS
// cannot change in place (CAPA's webhook rejects most; EKS itself rejects
// a new instance type).
var immutableManaged = []provider.ImmutableField{
	{Keys: []string{"instanceType"}, Path: field.NewPath("spec", "machine")},
	{Keys: []string{"diskSize"}, Path: field.NewPath("spec", "machine", "diskGiB")},
	{Keys: []string{"capacityType"}, Path: field.NewPath("spec", "machine", "spot")},
	{Keys: []string{"availabilityZones"}, Path: field.NewPath("spec", "zones"), Optional: true},
	{Keys: []string{"amiType"}, Path: field.NewPath("input", "aws", "eksAMIType")},
	{Keys: []string{"eksNodegroupName"}, Path: field.NewPath("metadata", "name")},
}

// KeepImmutable sets back the fields of a running EKS managed node group
// that EKS cannot change in place, so that scaling, labels, taints, the
// update config and the version still reach it.
func (*Provider) KeepImmutable(p *provider.Pool, infra provider.Object) field.ErrorList {
	mmp, ok := infra.(*expv1.AWSManagedMachinePool)
	if !ok || p.Observed == nil {
		return nil
	}
	desired, err := provider.JSONMap(mmp.Spec)
	if err != nil {
		return field.ErrorList{field.InternalError(field.NewPath("spec"), err)}
	}
	errs := provider.KeepImmutable(p.Observed, desired, immutableManaged, "EKS managed node group", "EKS")
	if len(errs) == 0 {
		return nil
	}
	var kept expv1.AWSManagedMachinePoolSpec
	if err := provider.FromJSONMap(desired, &kept); err != nil {
		return field.ErrorList{field.InternalError(field.NewPath("spec"), err)}
	}
	mmp.Spec = kept
	return errs
}

// MachineTemplate builds the AWSMachineTemplate of one MachineDeployment.
// Zones are set on the MachineDeployment (failureDomain), not here: the
// AWSMachineTemplate has no failure domain.
func (*Provider) MachineTemplate(p *provider.Pool, _ string) provider.Object {
	pol := p.Policy.AWS
	spec := infrav1.AWSMachineSpec{
		InstanceType:       p.MachineType,
		IAMInstanceProfile: pol.IAMInstanceProfile,
		SSHKeyName:         pol.SSHKeyName,
		AMI:                ami(p),
		RootVolume:         rootVolume(p),
	}
	if p.Spot {
		spec.SpotMarketOptions = &infrav1.SpotMarketOptions{}
	}
	return &infrav1.AWSMachineTemplate{
		TypeMeta: metav1.TypeMeta{APIVersion: infrav1.GroupVersion.String(), Kind: "AWSMachineTemplate"},
		Spec:     infrav1.AWSMachineTemplateSpec{Template: infrav1.AWSMachineTemplateResource{Spec: spec}},
	}
}

// ami is the machine image: the pool's; on EKS the EKS-optimized AL2023
// image Cluster API looks up; elsewhere the policy's for the version (its
// images are kubeadm images), or Cluster API's lookup for the version.
func ami(p *provider.Pool) infrav1.AMIReference {
	switch {
	case p.Spec.AWS != nil && p.Spec.AWS.AMI != "":
		return infrav1.AMIReference{ID: ptr.To(p.Spec.AWS.AMI)}
	case p.Platform == provider.PlatformEKS:
		return infrav1.AMIReference{EKSOptimizedLookupType: ptr.To(infrav1.AmazonLinux2023)}
	case p.Policy.AWS.AMIs[p.Version] != "":
		return infrav1.AMIReference{ID: ptr.To(p.Policy.AWS.AMIs[p.Version])}
	}
	return infrav1.AMIReference{}
}

func rootVolume(p *provider.Pool) *infrav1.Volume {
	return &infrav1.Volume{Size: int64(p.DiskGiB), Type: infrav1.VolumeType(p.Policy.AWS.RootVolumeType)}
}

// MachinePool builds an AWSMachinePool (an Auto Scaling group) for the
// MachinePool backend, or an AWSManagedMachinePool (an EKS managed node
// group) for the Managed backend.
func (*Provider) MachinePool(p *provider.Pool) provider.Object {
	if p.Backend == v1alpha1.BackendManaged {
		return &expv1.AWSManagedMachinePool{
			TypeMeta: metav1.TypeMeta{APIVersion: expv1.GroupVersion.String(), Kind: "AWSManagedMachinePool"},
			Spec:     managedSpec(p),
		}
	}
	minSize, maxSize := bounds(p)
	lt := expv1.AWSLaunchTemplate{
		IamInstanceProfile: p.Policy.AWS.IAMInstanceProfile,
		AMI:                ami(p),
		InstanceType:       p.MachineType,
		RootVolume:         rootVolume(p),
		SSHKeyName:         p.Policy.AWS.SSHKeyName,
	}
	spec := expv1.AWSMachinePoolSpec{
		MinSize:               minSize,
		MaxSize:               maxSize,
		AvailabilityZones:     p.Spec.Zones,
		AWSLaunchTemplate:     lt,
		DefaultCoolDown:       metav1.Duration{Duration: asgCooldownSeconds * 1e9},
		DefaultInstanceWarmup: metav1.Duration{Duration: refreshWarmup * 1e9},
		RefreshPreferences: &expv1.RefreshPreferences{
			Strategy:             ptr.To("Rolling"),
			MinHealthyPercentage: ptr.To[int64](refreshMinHealthy),
			InstanceWarmup:       ptr.To[int64](refreshWarmup),
		},
	}
	// Spot options and a mixed instances policy exclude each other: with
	// extra instance types, spot goes into the policy's distribution.
	switch extra := extraTypes(p); {
	case len(extra) > 0:
		overrides := []expv1.Overrides{{InstanceType: p.MachineType}}
		for _, t := range extra {
			overrides = append(overrides, expv1.Overrides{InstanceType: t})
		}
		onDemand := int64(100)
		if p.Spot {
			onDemand = 0
		}
		spec.MixedInstancesPolicy = &expv1.MixedInstancesPolicy{
			InstancesDistribution: &expv1.InstancesDistribution{
				OnDemandBaseCapacity:                ptr.To[int64](0),
				OnDemandPercentageAboveBaseCapacity: ptr.To(onDemand),
			},
			Overrides: overrides,
		}
	case p.Spot:
		spec.AWSLaunchTemplate.SpotMarketOptions = &infrav1.SpotMarketOptions{}
	}
	return &expv1.AWSMachinePool{
		TypeMeta: metav1.TypeMeta{APIVersion: expv1.GroupVersion.String(), Kind: "AWSMachinePool"},
		Spec:     spec,
	}
}

// managedSpec is the spec of the pool's EKS managed node group. Every field
// EKS cannot change later, and every field CAPA's webhook would default, is
// set explicitly.
func managedSpec(p *provider.Pool) expv1.AWSManagedMachinePoolSpec {
	minSize, maxSize := bounds(p)
	capacity := expv1.ManagedMachinePoolCapacityTypeOnDemand
	if p.Spot {
		capacity = expv1.ManagedMachinePoolCapacityTypeSpot
	}
	amiType := expv1.ManagedMachineAMIType(p.Policy.AWS.EKSAMIType)
	if amiType == "" {
		amiType = defaultEKSAMIType
	}
	spec := expv1.AWSManagedMachinePoolSpec{
		EKSNodegroupName:  nodegroupName(p),
		AvailabilityZones: p.Spec.Zones,
		AMIType:           ptr.To(amiType),
		Labels:            p.Labels,
		DiskSize:          ptr.To(p.DiskGiB),
		InstanceType:      ptr.To(p.MachineType),
		Scaling:           &expv1.ManagedMachinePoolScaling{MinSize: ptr.To(minSize), MaxSize: ptr.To(maxSize)},
		CapacityType:      ptr.To(capacity),
		UpdateConfig:      updateConfig(p.MaxUnavailable),
	}
	for _, t := range p.Taints {
		spec.Taints = append(spec.Taints, expv1.Taint{Key: t.Key, Value: t.Value, Effect: taintEffects[t.Effect]})
	}
	return spec
}

var taintEffects = map[v1alpha1.TaintEffect]expv1.TaintEffect{
	"NoSchedule":       expv1.TaintEffectNoSchedule,
	"PreferNoSchedule": expv1.TaintEffectPreferNoSchedule,
	"NoExecute":        expv1.TaintEffectNoExecute,
}

// nodegroupName is the EKS node group name: deterministic, at most 63
// characters, unique per cluster.
func nodegroupName(p *provider.Pool) string {
	n := p.ClusterName + "-" + p.Name
	if len(n) > 63 {
		n = n[:63]
	}
	return n
}

// updateConfig turns the pool's maxUnavailable into EKS's update config
// (at least one node at a time: EKS rejects zero).
func updateConfig(maxUnavailable *intstr.IntOrString) *expv1.UpdateConfig {
	if maxUnavailable != nil && maxUnavailable.Type == intstr.String {
		pct, err := intstr.GetScaledValueFromIntOrPercent(maxUnavailable, 100, true)
		if err == nil && pct > 0 {
			return &expv1.UpdateConfig{MaxUnavailablePercentage: ptr.To(min(pct, 100))}
		}
	}
	n := 1
	if maxUnavailable != nil && maxUnavailable.Type == intstr.Int && maxUnavailable.IntValue() > 0 {
		n = maxUnavailable.IntValue()
	}
	return &expv1.UpdateConfig{MaxUnavailable: ptr.To(n)}
}

// bounds are the scale group's size bounds: the autoscaler's, or the fixed
// size for both.
func bounds(p *provider.Pool) (int32, int32) {
	if p.Replicas != nil {
		return *p.Replicas, *p.Replicas
	}
	return *p.Min, *p.Max
}

// ReplicasManagedBy marks autoscaled Auto Scaling groups and EKS managed
// node groups as sized outside Cluster API: the cluster-autoscaler's AWS
// provider (or EKS) changes their desired capacity, and Cluster API follows.
func (*Provider) ReplicasManagedBy(p *provider.Pool) string {
	if p.Autoscaled() {
		return externalAutoscaler
	}
	return ""
}

// Join is the AWS part of the bootstrap configuration: kubeadm with the
// external cloud provider and the EC2 node name, or nodeadm on EKS.
func (*Provider) Join(p *provider.Pool, _ string) provider.Join {
	if p.Platform == provider.PlatformEKS {
		return provider.Join{Template: nodeadmConfigTemplate(p.Node)}
	}
	return provider.Join{
		NodeName:    nodeName,
		KubeletArgs: []bootstrapv1.Arg{{Name: "cloud-provider", Value: ptr.To("external")}},
	}
}

// ParentFirst is false: CAPA admits its machine pools before their
// MachinePool.
func (*Provider) ParentFirst(*provider.Pool) bool { return false }
