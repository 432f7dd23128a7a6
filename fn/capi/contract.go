package capi

import (
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
)

// Contracts are the Cluster API contracts that Cluster API v1.14 accepts of
// a provider, newest first: its own (the version of its core API), and
// v1beta1 until that is end of life (cluster-api
// internal/contract.GetCompatibleVersions).
func Contracts() []string { return []string{clusterv1.GroupVersion.Version, "v1beta1"} }

// ContractLabel is the label of a provider's CRD that lists, joined by
// "_", the API versions of its kind that implement contract c: what Cluster
// API resolves a versionless reference with.
func ContractLabel(c string) string { return clusterv1.GroupVersion.Group + "/" + c }

// ServedBy says what serves a kind this package composes, for a message
// telling the platform team what to install; "" for another kind.
func ServedBy(kind string) string {
	const release = "Cluster API"
	switch kind {
	case "MachineDeployment", "MachineHealthCheck":
		return release + " (core)"
	case "MachinePool":
		return release + " (core) with its MachinePool feature gate"
	case "KubeadmConfig", "KubeadmConfigTemplate":
		return release + "'s kubeadm bootstrap provider"
	}
	return ""
}
