// Package azure builds the Azure (Cluster API Provider Azure) objects of a
// node pool: AzureMachineTemplates for MachineDeployments, AzureMachinePools
// (virtual machine scale sets) and AzureASOManagedMachinePools (AKS agent
// pools).
package azure

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	infrav1 "sigs.k8s.io/cluster-api-provider-azure/api/v1beta1"
	expv1 "sigs.k8s.io/cluster-api-provider-azure/exp/api/v1beta1"
	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/apis/input/v1beta1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/kubeversion"
	"github.com/fleetnodepool/function-fleetnodepool/fn/provider"
)

const (
	// nodeName is the kubeadm node name on Azure VMs.
	nodeName = `{{ ds.meta_data["local_hostname"] }}`
	// azureJSONPath is where kubelet and the cloud node manager read the
	// cloud configuration.
	azureJSONPath = "/etc/kubernetes/azure.json"
	// azureJSONKey is the key of the cloud configuration in the Secret CAPZ
	// writes for each AzureMachineTemplate, named <template>-azure-json.
	azureJSONKey = "worker-node-azure.json"
	// linux is the only OS type pools run.
	linux = "Linux"
)

// minFlexible is the first Kubernetes minor whose MachinePools may use
// Flexible orchestration (CAPZ's webhook rule).
var minFlexible = kubeversion.MustParse("v1.26")

// aksControlPlanes are CAPZ's AKS control planes. AKS supports node pools
// up to two minors older than the control plane.
var aksControlPlanes = []provider.ControlPlaneKind{
	{Kind: "AzureASOManagedControlPlane", APIVersion: infrav1.GroupVersion.String(), Platform: provider.PlatformAKS,
		MaxSkew: 2, Skew: "AKS supports node pools up to 2 minors older than the control plane"},
	{Kind: "AzureManagedControlPlane", APIVersion: infrav1.GroupVersion.String(), Platform: provider.PlatformAKS,
		MaxSkew: 2, Skew: "AKS supports node pools up to 2 minors older than the control plane"},
}

// Provider is the Azure provider.
type Provider struct{}

// New returns the Azure provider.
func New() *Provider { return &Provider{} }

var _ provider.Provider = &Provider{}

// Name of the provider.
func (*Provider) Name() v1alpha1.Provider { return v1alpha1.ProviderAzure }

// InfrastructureKinds of CAPZ's clusters.
func (*Provider) InfrastructureKinds() []string {
	return []string{"AzureCluster", "AzureManagedCluster", "AzureASOManagedCluster"}
}

// ControlPlaneKinds are AKS's.
func (*Provider) ControlPlaneKinds() []provider.ControlPlaneKind { return aksControlPlanes }

// ComposedKinds are the machine template, scale set and AKS agent pool
// kinds.
func (*Provider) ComposedKinds() []string {
	return []string{"AzureMachineTemplate", "AzureMachinePool", "AzureASOManagedMachinePool"}
}

// ServedBy names CAPZ, and the feature gates (on by default) that its
// machine pools need.
func (*Provider) ServedBy(kind string) string {
	const capz = "Cluster API Provider Azure (CAPZ)"
	switch kind {
	case "AzureMachineTemplate":
		return capz
	case "AzureMachinePool":
		return capz + " with its MachinePool feature gate"
	case "AzureASOManagedMachinePool":
		return capz + " with its ASOAPI feature gate, and Azure Service Operator"
	}
	return ""
}

// Backends on self-managed clusters are MachineDeployments and scale sets;
// on AKS, agent pools only.
func (*Provider) Backends(pf provider.Platform) []v1alpha1.Backend {
	switch pf {
	case provider.PlatformKubeadm:
		return []v1alpha1.Backend{v1alpha1.BackendMachineDeployment, v1alpha1.BackendMachinePool}
	case provider.PlatformAKS:
		return []v1alpha1.Backend{v1alpha1.BackendManaged}
	}
	return nil
}

// CatalogType returns the Azure VM size of a catalog class.
func (*Provider) CatalogType(c v1beta1.MachineClass) string { return c.Azure }

// CatalogCapacity returns what a node of a catalog class has on Azure.
func (*Provider) CatalogCapacity(c v1beta1.MachineClass) *v1beta1.NodeCapacity {
	if c.Capacity == nil {
		return nil
	}
	return c.Capacity.Azure
}

// CannotRotate refuses a max node age for AKS agent pools and scale sets.
// AKS replaces an agent pool's nodes for a new version or node image, which
// the cluster's node OS upgrade channel schedules, and ASO has no field to
// ask for one. CAPZ (since v1.22) does not roll a scale set's instances for
// new bootstrap data: only an image, VM size, identity or zone change does.
// MachineDeployments rotate by spec.rollout.after.
func (*Provider) CannotRotate(p *provider.Pool) string {
	switch p.Backend {
	case v1alpha1.BackendManaged:
		return "an AKS agent pool replaces its nodes for a new Kubernetes version or node image, which the AKS cluster's " +
			"autoUpgradeProfile.nodeOSUpgradeChannel (NodeImage) schedules; use backend MachineDeployment for a max node age"
	case v1alpha1.BackendMachinePool:
		return "Cluster API Azure does not replace a scale set's instances for new bootstrap data, only for a new image, VM size or zone; " +
			"use backend MachineDeployment for a max node age"
	}
	return ""
}

// Validate checks the Azure settings of a pool against the policy.
func (*Provider) Validate(p *provider.Pool) field.ErrorList {
	var errs field.ErrorList
	pol := p.Policy.Azure
	if pol == nil {
		return append(errs, field.Required(field.NewPath("input", "azure"),
			"the platform policy has no azure section: the Composition's function input must set azure.sshPublicKey"))
	}
	if pol.SSHPublicKey == "" {
		errs = append(errs, field.Required(field.NewPath("input", "azure", "sshPublicKey"),
			"set a base64-encoded OpenSSH public key: left empty, Cluster API Azure generates a random one and later applies fail"))
	} else if _, err := base64.StdEncoding.DecodeString(pol.SSHPublicKey); err != nil {
		errs = append(errs, field.Invalid(field.NewPath("input", "azure", "sshPublicKey"), pol.SSHPublicKey,
			"must be base64-encoded (base64 -w0 < id_ed25519.pub)"))
	}
	if len(pol.Zones) > 0 {
		for i, z := range p.Spec.Zones {
			if !slices.Contains(pol.Zones, z) {
				errs = append(errs, field.NotSupported(field.NewPath("spec", "zones").Index(i), z, pol.Zones))
			}
		}
	}
	switch p.Backend {
	case v1alpha1.BackendMachinePool:
		if pol.Location == "" {
			errs = append(errs, field.Required(field.NewPath("input", "azure", "location"),
				"a scale set needs the Azure region of the cluster: set it in the Composition's function input"))
		}
		if pol.OrchestrationMode == string(infrav1.FlexibleOrchestrationMode) && olderMinor(p.Version, minFlexible) {
			errs = append(errs, field.Invalid(field.NewPath("input", "azure", "orchestrationMode"), pol.OrchestrationMode,
				fmt.Sprintf("Flexible orchestration needs Kubernetes %s or later, the pool runs %s", minFlexible.Minor(), p.Version)))
		}
	case v1alpha1.BackendManaged:
		if p.Spec.Azure != nil && p.Spec.Azure.ImageID != "" {
			errs = append(errs, field.Forbidden(field.NewPath("spec", "azure", "imageID"),
				"an AKS agent pool runs AKS's node image; remove spec.azure.imageID"))
		}
		if n := agentPoolName(p); !agentPoolNameRE.MatchString(n) {
			errs = append(errs, field.Invalid(field.NewPath("spec", "azure", "agentPoolName"), n,
				"an AKS agent pool name is 1-12 lowercase letters and digits starting with a letter: set spec.azure.agentPoolName"))
		}
	}
	return errs
}

var agentPoolNameRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,11}$`)

// olderMinor reports whether the pool version v (validated before) is of an
// older minor than min.
func olderMinor(v string, min kubeversion.Version) bool {
	pv, err := kubeversion.ParseNode(v)
	return err == nil && pv.MinorsBehind(min) > 0
}

// MachineTemplate builds the AzureMachineTemplate of one MachineDeployment.
// Every field CAPZ's defaulting webhook would fill is set here, so applies
// stay idempotent on this immutable kind. The zone is set on the
// MachineDeployment (failureDomain).
func (*Provider) MachineTemplate(p *provider.Pool, _ string) provider.Object {
	pol := p.Policy.Azure
	spec := infrav1.AzureMachineSpec{
		VMSize:            p.MachineType,
		OSDisk:            osDisk(p),
		SSHPublicKey:      pol.SSHPublicKey,
		NetworkInterfaces: []infrav1.NetworkInterface{{PrivateIPConfigs: 1}},
		Image:             image(p),
		SpotVMOptions:     spot(p),
	}
	return &infrav1.AzureMachineTemplate{
		TypeMeta: metav1.TypeMeta{APIVersion: infrav1.GroupVersion.String(), Kind: "AzureMachineTemplate"},
		Spec:     infrav1.AzureMachineTemplateSpec{Template: infrav1.AzureMachineTemplateResource{Spec: spec}},
	}
}

func osDisk(p *provider.Pool) infrav1.OSDisk {
	d := infrav1.OSDisk{OSType: linux, DiskSizeGB: ptr.To(p.DiskGiB), CachingType: "ReadWrite"}
	if t := p.Policy.Azure.OSDiskType; t != "" {
		d.ManagedDisk = &infrav1.ManagedDiskParameters{StorageAccountType: t}
	}
	return d
}

func image(p *provider.Pool) *infrav1.Image {
	switch {
	case p.Spec.Azure != nil && p.Spec.Azure.ImageID != "":
		return &infrav1.Image{ID: ptr.To(p.Spec.Azure.ImageID)}
	case p.Policy.Azure.Images[p.Version] != "":
		return &infrav1.Image{ID: ptr.To(p.Policy.Azure.Images[p.Version])}
	}
	return nil
}

func spot(p *provider.Pool) *infrav1.SpotVMOptions {
	if !p.Spot {
		return nil
	}
	return &infrav1.SpotVMOptions{EvictionPolicy: ptr.To(infrav1.SpotEvictionPolicyDelete)}
}

// MachinePool builds an AzureMachinePool (a virtual machine scale set) for
// the MachinePool backend, or an AzureASOManagedMachinePool (an AKS agent
// pool) for the Managed backend.
func (*Provider) MachinePool(p *provider.Pool) provider.Object {
	if p.Backend == v1alpha1.BackendManaged {
		return agentPool(p)
	}
	pol := p.Policy.Azure
	mode := infrav1.UniformOrchestrationMode
	if pol.OrchestrationMode != "" {
		mode = infrav1.OrchestrationModeType(pol.OrchestrationMode)
	}
	return &expv1.AzureMachinePool{
		TypeMeta: metav1.TypeMeta{APIVersion: expv1.GroupVersion.String(), Kind: "AzureMachinePool"},
		Spec: expv1.AzureMachinePoolSpec{
			Location: pol.Location,
			Template: expv1.AzureMachinePoolMachineTemplate{
				VMSize:            p.MachineType,
				Image:             image(p),
				OSDisk:            osDisk(p),
				SSHPublicKey:      pol.SSHPublicKey,
				SpotVMOptions:     spot(p),
				NetworkInterfaces: []infrav1.NetworkInterface{{PrivateIPConfigs: 1}},
			},
			Strategy: expv1.AzureMachinePoolDeploymentStrategy{
				Type: expv1.RollingUpdateAzureMachinePoolDeploymentStrategyType,
				RollingUpdate: &expv1.MachineRollingUpdateDeployment{
					MaxSurge:       p.MaxSurge,
					MaxUnavailable: p.MaxUnavailable,
					DeletePolicy:   expv1.OldestDeletePolicyType,
				},
			},
			OrchestrationMode: mode,
		},
	}
}

// ASO's ManagedClustersAgentPool, as CAPZ v1.27's AKS templates use it.
const (
	agentPoolAPIVersion = "containerservice.azure.com/v1api20240901"
	agentPoolKind       = "ManagedClustersAgentPool"
)

// agentPool builds the AzureASOManagedMachinePool of an AKS pool. It holds
// an Azure Service Operator ManagedClustersAgentPool, as raw JSON: CAPZ's
// own type for it is a runtime.RawExtension, and ASO's Go module (v2.19.0,
// which CAPZ v1.27 requires) is not served by the module proxy here. It
// never sets orchestratorVersion or count: CAPZ injects them from the
// MachinePool, and a value that disagrees is an error.
func agentPool(p *provider.Pool) provider.Object {
	spec := map[string]any{
		"azureName":    agentPoolName(p),
		"owner":        map[string]any{"name": p.ClusterName},
		"mode":         "User",
		"type":         "VirtualMachineScaleSets",
		"vmSize":       p.MachineType,
		"osDiskSizeGB": p.DiskGiB,
	}
	if len(p.Spec.Zones) > 0 {
		spec["availabilityZones"] = p.Spec.Zones
	}
	if len(p.Labels) > 0 {
		spec["nodeLabels"] = p.Labels
	}
	if len(p.Taints) > 0 {
		taints := make([]string, 0, len(p.Taints))
		for _, t := range p.Taints {
			taints = append(taints, t.Key+"="+t.Value+":"+string(t.Effect))
		}
		spec["nodeTaints"] = taints
	}
	if p.Autoscaled() {
		spec["enableAutoScaling"] = true
		spec["minCount"] = *p.Min
		spec["maxCount"] = *p.Max
	}
	if p.Spot {
		spec["scaleSetPriority"] = "Spot"
		spec["scaleSetEvictionPolicy"] = "Delete"
		spec["spotMaxPrice"] = -1
	}
	if p.MaxSurge != nil {
		spec["upgradeSettings"] = map[string]any{"maxSurge": p.MaxSurge.String()}
	}
	raw, err := json.Marshal(map[string]any{
		"apiVersion": agentPoolAPIVersion,
		"kind":       agentPoolKind,
		"metadata":   map[string]any{"name": p.ClusterName + "-" + agentPoolName(p)},
		"spec":       spec,
	})
	if err != nil {
		panic(err) // Maps of strings, numbers and lists always marshal.
	}
	return &infrav1.AzureASOManagedMachinePool{
		TypeMeta: metav1.TypeMeta{APIVersion: infrav1.GroupVersion.String(), Kind: "AzureASOManagedMachinePool"},
		Spec: infrav1.AzureASOManagedMachinePoolSpec{AzureASOManagedMachinePoolTemplateResourceSpec: infrav1.AzureASOManagedMachinePoolTemplateResourceSpec{
			Resources: []runtime.RawExtension{{Raw: raw}},
		}},
	}
}

// agentPoolName is the AKS agent pool name: the pool's own, or its name
// with what AKS does not allow removed, cut to 12 characters.
func agentPoolName(p *provider.Pool) string {
	if p.Spec.Azure != nil && p.Spec.Azure.AgentPoolName != "" {
		return p.Spec.Azure.AgentPoolName
	}
	var b strings.Builder
	for _, c := range strings.ToLower(p.Name) {
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9' && b.Len() > 0) {
			b.WriteRune(c)
		}
	}
	n := b.String()
	if len(n) > 12 {
		n = n[:12]
	}
	return n
}

// ReplicasManagedBy is empty on Azure: the cluster-autoscaler scales scale
// sets through their MachinePool, and CAPZ marks autoscaled AKS pools
// itself (replicas-managed-by: aks), which the function must not fight.
func (*Provider) ReplicasManagedBy(*provider.Pool) string { return "" }

// immutableAgentPool are the fields of an AKS agent pool that AKS cannot
// change in place (the ones CAPZ's own AzureManagedMachinePool webhook
// holds immutable, of those the function sets): the AKS API would refuse
// them, and ASO would retry for ever.
var immutableAgentPool = []provider.ImmutableField{
	{Keys: []string{"vmSize"}, Path: field.NewPath("spec", "machine")},
	{Keys: []string{"osDiskSizeGB"}, Path: field.NewPath("spec", "machine", "diskGiB")},
	{Keys: []string{"availabilityZones"}, Path: field.NewPath("spec", "zones"), Optional: true},
	{Keys: []string{"scaleSetPriority", "scaleSetEvictionPolicy", "spotMaxPrice"}, Path: field.NewPath("spec", "machine", "spot"), Optional: true},
	{Keys: []string{"azureName"}, Path: field.NewPath("spec", "azure", "agentPoolName")},
}

// KeepImmutable sets back the fields of a running AKS agent pool that AKS
// cannot change in place, so that scaling, labels, taints, the upgrade
// settings and the version still reach it. A scale set takes a new VM size
// or disk through its rolling upgrade: nothing is kept of it.
func (*Provider) KeepImmutable(p *provider.Pool, infra provider.Object) field.ErrorList {
	pool, ok := infra.(*infrav1.AzureASOManagedMachinePool)
	if !ok || len(pool.Spec.Resources) != 1 {
		return nil
	}
	resources, _ := p.Observed["resources"].([]any)
	if len(resources) != 1 {
		return nil
	}
	running, _ := resources[0].(map[string]any)
	observed, _ := running["spec"].(map[string]any)
	if observed == nil {
		return nil
	}
	agent := map[string]any{}
	if err := json.Unmarshal(pool.Spec.Resources[0].Raw, &agent); err != nil {
		return field.ErrorList{field.InternalError(field.NewPath("spec"), err)}
	}
	desired, _ := agent["spec"].(map[string]any)
	errs := provider.KeepImmutable(observed, desired, immutableAgentPool, "AKS agent pool", "AKS")
	if len(errs) == 0 {
		return nil
	}
	// The ASO object is named after the agent pool: a new name would make
	// CAPZ delete the running one (it deletes what leaves spec.resources).
	if md, ok := running["metadata"].(map[string]any); ok && desired["azureName"] == observed["azureName"] {
		agent["metadata"] = md
	}
	raw, err := json.Marshal(agent)
	if err != nil {
		return field.ErrorList{field.InternalError(field.NewPath("spec"), err)}
	}
	pool.Spec.Resources[0].Raw = raw
	return errs
}

// Join is the Azure part of the kubeadm join configuration: the external
// cloud provider, the VM node name and the cloud configuration CAPZ writes
// for the machine template or pool (a Secret named <name>-azure-json).
func (*Provider) Join(_ *provider.Pool, infraName string) provider.Join {
	return provider.Join{
		NodeName:    nodeName,
		KubeletArgs: []bootstrapv1.Arg{{Name: "cloud-provider", Value: ptr.To("external")}},
		Files: []bootstrapv1.File{{
			Path:        azureJSONPath,
			Owner:       "root:root",
			Permissions: "0644",
			ContentFrom: bootstrapv1.FileSource{Secret: bootstrapv1.SecretFileSource{
				Name: infraName + "-azure-json",
				Key:  azureJSONKey,
			}},
		}},
	}
}

// ParentFirst is true for a Flexible scale set: CAPZ's AzureMachinePool
// webhook looks its MachinePool up (for its Kubernetes version) and refuses
// it, after 5 s of retries, while there is none.
func (*Provider) ParentFirst(p *provider.Pool) bool {
	return p.Backend == v1alpha1.BackendMachinePool && p.Policy.Azure != nil &&
		p.Policy.Azure.OrchestrationMode == string(infrav1.FlexibleOrchestrationMode)
}
