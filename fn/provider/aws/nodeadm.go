package aws

import (
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	eksbootstrapv1 "sigs.k8s.io/cluster-api-provider-aws/v2/bootstrap/eks/api/v1beta2"

	"github.com/fleetnodepool/function-fleetnodepool/fn/provider"
)

// nodeadmConfigTemplate builds the bootstrap template of EKS self-managed
// worker nodes (AL2023, nodeadm): the pool's node labels and taints as
// kubelet flags.
func nodeadmConfigTemplate(n provider.Node) *eksbootstrapv1.NodeadmConfigTemplate {
	var flags []string
	if l := n.LabelsFlag(); l != "" {
		flags = append(flags, "--node-labels="+l)
	}
	if len(n.Taints) > 0 {
		taints := make([]string, 0, len(n.Taints))
		for _, t := range n.Taints {
			taints = append(taints, t.Key+"="+t.Value+":"+string(t.Effect))
		}
		flags = append(flags, "--register-with-taints="+strings.Join(taints, ","))
	}
	spec := eksbootstrapv1.NodeadmConfigSpec{}
	if len(flags) > 0 {
		spec.Kubelet = &eksbootstrapv1.KubeletOptions{Flags: flags}
	}
	return &eksbootstrapv1.NodeadmConfigTemplate{
		TypeMeta: metav1.TypeMeta{APIVersion: eksbootstrapv1.GroupVersion.String(), Kind: "NodeadmConfigTemplate"},
		Spec:     eksbootstrapv1.NodeadmConfigTemplateSpec{Template: eksbootstrapv1.NodeadmConfigTemplateResource{Spec: spec}},
	}
}
