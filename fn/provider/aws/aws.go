// Package aws builds the AWS (Cluster API Provider AWS) objects of a node
// pool: AWSMachineTemplates for MachineDeployments.
package aws

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/apis/input/v1beta1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/provider"
)

// nodeName is the kubeadm node name on EC2: the instance's private DNS name,
// which the AWS cloud provider expects.
const nodeName = "{{ ds.meta_data.local_hostname }}"

// Provider is the AWS provider.
type Provider struct{}

// New returns the AWS provider.
func New() *Provider { return &Provider{} }

var _ provider.Provider = &Provider{}

// Name of the provider.
func (*Provider) Name() v1alpha1.Provider { return v1alpha1.ProviderAWS }

// CatalogType returns the EC2 instance type of a catalog class.
func (*Provider) CatalogType(c v1beta1.MachineClass) string { return c.AWS }

// Validate checks the AWS settings of a pool against the policy.
func (*Provider) Validate(p *provider.Pool) field.ErrorList {
	var errs field.ErrorList
	pol := p.Policy.AWS
	if pol == nil {
		return append(errs, field.Required(field.NewPath("input", "aws"),
			"the platform policy has no aws section: the Composition's function input must set aws.iamInstanceProfile"))
	}
	if pol.IAMInstanceProfile == "" {
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
		RootVolume: &infrav1.Volume{
			Size: int64(p.DiskGiB),
			Type: infrav1.VolumeType(pol.RootVolumeType),
		},
	}
	switch {
	case p.Spec.AWS != nil && p.Spec.AWS.AMI != "":
		spec.AMI.ID = ptr.To(p.Spec.AWS.AMI)
	case pol.AMIs[p.Version] != "":
		spec.AMI.ID = ptr.To(pol.AMIs[p.Version])
	}
	if p.Spot {
		spec.SpotMarketOptions = &infrav1.SpotMarketOptions{}
	}
	return &infrav1.AWSMachineTemplate{
		TypeMeta: metav1.TypeMeta{APIVersion: infrav1.GroupVersion.String(), Kind: "AWSMachineTemplate"},
		Spec:     infrav1.AWSMachineTemplateSpec{Template: infrav1.AWSMachineTemplateResource{Spec: spec}},
	}
}

// KubeadmJoin is the AWS part of the kubeadm join configuration: the
// external cloud provider and the EC2 node name.
func (*Provider) KubeadmJoin(_ *provider.Pool, _ string) provider.Join {
	return provider.Join{
		NodeName:    nodeName,
		KubeletArgs: []bootstrapv1.Arg{{Name: "cloud-provider", Value: ptr.To("external")}},
	}
}
