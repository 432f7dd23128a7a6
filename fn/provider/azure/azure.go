// Package azure builds the Azure (Cluster API Provider Azure) objects of a
// node pool: AzureMachineTemplates for MachineDeployments.
package azure

import (
	"encoding/base64"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	infrav1 "sigs.k8s.io/cluster-api-provider-azure/api/v1beta1"
	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/apis/input/v1beta1"
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

// Provider is the Azure provider.
type Provider struct{}

// New returns the Azure provider.
func New() *Provider { return &Provider{} }

var _ provider.Provider = &Provider{}

// Name of the provider.
func (*Provider) Name() v1alpha1.Provider { return v1alpha1.ProviderAzure }

// CatalogType returns the Azure VM size of a catalog class.
func (*Provider) CatalogType(c v1beta1.MachineClass) string { return c.Azure }

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
	return errs
}

// MachineTemplate builds the AzureMachineTemplate of one MachineDeployment.
// Every field CAPZ's defaulting webhook would fill is set here, so applies
// stay idempotent on this immutable kind. The zone is set on the
// MachineDeployment (failureDomain).
func (*Provider) MachineTemplate(p *provider.Pool, _ string) provider.Object {
	pol := p.Policy.Azure
	spec := infrav1.AzureMachineSpec{
		VMSize: p.MachineType,
		OSDisk: infrav1.OSDisk{
			OSType:      linux,
			DiskSizeGB:  ptr.To(p.DiskGiB),
			CachingType: "ReadWrite",
		},
		SSHPublicKey:      pol.SSHPublicKey,
		NetworkInterfaces: []infrav1.NetworkInterface{{PrivateIPConfigs: 1}},
	}
	if pol.OSDiskType != "" {
		spec.OSDisk.ManagedDisk = &infrav1.ManagedDiskParameters{StorageAccountType: pol.OSDiskType}
	}
	switch {
	case p.Spec.Azure != nil && p.Spec.Azure.ImageID != "":
		spec.Image = &infrav1.Image{ID: ptr.To(p.Spec.Azure.ImageID)}
	case pol.Images[p.Version] != "":
		spec.Image = &infrav1.Image{ID: ptr.To(pol.Images[p.Version])}
	}
	if p.Spot {
		spec.SpotVMOptions = &infrav1.SpotVMOptions{EvictionPolicy: ptr.To(infrav1.SpotEvictionPolicyDelete)}
	}
	return &infrav1.AzureMachineTemplate{
		TypeMeta: metav1.TypeMeta{APIVersion: infrav1.GroupVersion.String(), Kind: "AzureMachineTemplate"},
		Spec:     infrav1.AzureMachineTemplateSpec{Template: infrav1.AzureMachineTemplateResource{Spec: spec}},
	}
}

// KubeadmJoin is the Azure part of the kubeadm join configuration: the
// external cloud provider, the VM node name and the cloud configuration CAPZ
// writes for the machine template.
func (*Provider) KubeadmJoin(_ *provider.Pool, machineTemplateName string) provider.Join {
	return provider.Join{
		NodeName:    nodeName,
		KubeletArgs: []bootstrapv1.Arg{{Name: "cloud-provider", Value: ptr.To("external")}},
		Files: []bootstrapv1.File{{
			Path:        azureJSONPath,
			Owner:       "root:root",
			Permissions: "0644",
			ContentFrom: bootstrapv1.FileSource{Secret: bootstrapv1.SecretFileSource{
				Name: machineTemplateName + "-azure-json",
				Key:  azureJSONKey,
			}},
		}},
	}
}
