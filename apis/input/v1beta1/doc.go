// Package v1beta1 contains the input of the FleetNodePool function: the
// platform team's policy, passed by the Composition's pipeline step. It holds
// the size-class catalog, the version channels, defaults and limits.
//
// The type is never installed as a custom resource; its CRD in
// package/input/ only describes the schema (see apis/generate.go).
//
// +kubebuilder:object:generate=true
// +groupName=fleetnodepool.fn.crossplane.io
// +versionName=v1beta1
package v1beta1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Package type metadata.
const (
	Group      = "fleetnodepool.fn.crossplane.io"
	Version    = "v1beta1"
	PolicyKind = "Policy"
)

// SchemeGroupVersion is the API group and version of the function input.
var SchemeGroupVersion = schema.GroupVersion{Group: Group, Version: Version}
