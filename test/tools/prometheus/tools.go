//go:build tools

// Package tools pins Prometheus and promtool: promtool checks and unit-tests
// the shipped alerting rules, and the Prometheus server scrapes
// kube-state-metrics and evaluates those rules in the metrics tier.
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
