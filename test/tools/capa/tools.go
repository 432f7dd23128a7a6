//go:build tools

// Package tools pins the Cluster API Provider AWS manager the conformance
// tier runs out of cluster, for its admission webhooks.
package tools

import (
	_ "sigs.k8s.io/cluster-api-provider-aws/v2"
)
