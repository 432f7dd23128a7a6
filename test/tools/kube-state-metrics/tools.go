//go:build tools

// Package tools pins kube-state-metrics, which the metrics tier and the
// sandbox's documented monitoring set-up run with the shipped
// CustomResourceStateMetrics configuration (package/monitoring).
package tools

import (
	_ "k8s.io/kube-state-metrics/v2"
)
