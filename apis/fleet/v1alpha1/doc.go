// Package v1alpha1 contains the FleetNodePool API: one provider-neutral node
// pool that the function turns into Cluster API objects.
//
// These Go types are the single source of the FleetNodePool schema. The
// Crossplane CompositeResourceDefinitions in package/ are generated from them
// (see apis/generate.go); never edit the generated YAML by hand.
//
// +kubebuilder:object:generate=true
// +groupName=fleet.nodepool.dev
// +versionName=v1alpha1
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Package type metadata.
const (
	Group   = "fleet.nodepool.dev"
	Version = "v1alpha1"
)

// Kinds of this API group.
const (
	// FleetNodePoolKind is the namespaced composite resource (and, with the
	// legacy XRD, the claim).
	FleetNodePoolKind = "FleetNodePool"
	// XFleetNodePoolKind is the cluster-scoped composite resource of the legacy
	// (apiextensions.crossplane.io/v1, scope LegacyCluster) XRD.
	XFleetNodePoolKind = "XFleetNodePool"
)

// SchemeGroupVersion is the API group and version of FleetNodePool.
var SchemeGroupVersion = schema.GroupVersion{Group: Group, Version: Version}
