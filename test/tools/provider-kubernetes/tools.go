//go:build tools

// Package tools pins provider-kubernetes, the Crossplane provider the cells
// sandbox runs out of cluster: its Objects carry what the central Crossplane
// composes into each cell's Cluster API management cluster.
package tools

import (
	_ "github.com/crossplane-contrib/provider-kubernetes/cmd/provider"
)
