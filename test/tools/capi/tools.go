//go:build tools

// Package tools pins the Cluster API managers the CAPI sandbox runs: core,
// the kubeadm bootstrap and control-plane providers, and CAPD (whose
// in-memory backend simulates machines).
package tools

import (
	_ "sigs.k8s.io/cluster-api/bootstrap/kubeadm"
	_ "sigs.k8s.io/cluster-api/controlplane/kubeadm"
	_ "sigs.k8s.io/cluster-api/core"
	_ "sigs.k8s.io/cluster-api/test/infrastructure/docker"
)
