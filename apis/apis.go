// Package apis contains the FleetNodePool API (fleet/v1alpha1) and the
// function input, the platform policy (input/v1beta1). Run `go generate
// ./...` after changing a type: the CRDs and XRDs in package/ come from here.
package apis
