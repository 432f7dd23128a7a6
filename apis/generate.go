//go:build generate

// NOTE: See the below link for details on what is happening here.
// https://github.com/golang/go/wiki/Modules#how-can-i-track-tool-dependencies-for-a-module

// Generate deepcopy methods, the function input CRD, and the two
// CompositeResourceDefinitions of FleetNodePool from the Go types:
//   - package/input/: the input (Policy) CRD, describing the schema only.
//   - package/configuration/xrd.yaml: apiextensions.crossplane.io/v2, scope
//     Namespaced (the default Configuration).
//   - package/configuration-legacy/xrd.yaml: apiextensions.crossplane.io/v1,
//     scope LegacyCluster with a FleetNodePool claim, for Crossplane v1-style
//     installs.
//go:generate rm -rf ../package/input ../package/.crd
//go:generate go run -tags generate sigs.k8s.io/controller-tools/cmd/controller-gen object paths=./fleet/... paths=./input/...
//go:generate go run -tags generate sigs.k8s.io/controller-tools/cmd/controller-gen crd:crdVersions=v1 paths=./input/... output:artifacts:config=../package/input
//go:generate go run -tags generate sigs.k8s.io/controller-tools/cmd/controller-gen crd:crdVersions=v1 paths=./fleet/... output:artifacts:config=../package/.crd
//go:generate go run ./internal/xrdgen --crd=../package/.crd/fleet.nodepool.dev_fleetnodepools.yaml --namespaced=../package/configuration/xrd.yaml --legacy=../package/configuration-legacy/xrd.yaml
//go:generate rm -rf ../package/.crd

// Package apis contains the FleetNodePool API and the function input.
package apis

import (
	_ "sigs.k8s.io/controller-tools/cmd/controller-gen" //nolint:typecheck
)
