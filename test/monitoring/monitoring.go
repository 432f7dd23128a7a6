// Package monitoring reads what package/monitoring ships for SREs: the
// kube-state-metrics configuration that exports FleetNodePools, Cluster
// API's v1beta2 MachineDeployments and MachinePools as Prometheus series,
// the alerting rules and the Grafana dashboard. Its tests check them
// against the API types they read; the metrics tier checks them against a
// live sandbox.
package monitoring

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// Files of package/monitoring, relative to the module root.
const (
	KubeStateMetricsConfig = "package/monitoring/kube-state-metrics.yaml"
)

// A KSMConfig is the part of kube-state-metrics' CustomResourceStateMetrics
// configuration the checks read (k8s.io/kube-state-metrics/v2
// pkg/customresourcestate, v2.16; its module's Kubernetes dependencies are
// older than the repository's, so its types are mirrored here and the
// metrics tier runs the real kube-state-metrics on the same file).
type KSMConfig struct {
	Kind string `json:"kind"`
	Spec struct {
		Resources []KSMResource `json:"resources"`
	} `json:"spec"`
}

// A KSMResource is the metrics of one kind.
type KSMResource struct {
	GroupVersionKind struct {
		Group   string `json:"group"`
		Version string `json:"version"`
		Kind    string `json:"kind"`
	} `json:"groupVersionKind"`
	MetricNamePrefix string              `json:"metricNamePrefix"`
	LabelsFromPath   map[string][]string `json:"labelsFromPath"`
	Metrics          []KSMMetric         `json:"metrics"`
	ErrorLogV        int                 `json:"errorLogV,omitempty"`
}

// A KSMMetric is one metric family of a kind.
type KSMMetric struct {
	Name string `json:"name"`
	Help string `json:"help"`
	Each struct {
		Type     string        `json:"type"`
		Gauge    *KSMGenerator `json:"gauge,omitempty"`
		Info     *KSMGenerator `json:"info,omitempty"`
		StateSet *KSMGenerator `json:"stateSet,omitempty"`
	} `json:"each"`
}

// A KSMGenerator is a gauge, info or state set: where it reads.
type KSMGenerator struct {
	Path           []string            `json:"path"`
	ValueFrom      []string            `json:"valueFrom"`
	LabelsFromPath map[string][]string `json:"labelsFromPath"`
	LabelName      string              `json:"labelName"`
	List           []string            `json:"list"`
	NilIsZero      bool                `json:"nilIsZero"`
}

// Generator is the metric's gauge, info or state set.
func (m KSMMetric) Generator() (*KSMGenerator, error) {
	var g *KSMGenerator
	switch m.Each.Type {
	case "Gauge":
		g = m.Each.Gauge
	case "Info":
		g = m.Each.Info
	case "StateSet":
		g = m.Each.StateSet
	default:
		return nil, fmt.Errorf("metric %s: each.type %q is not Gauge, Info or StateSet", m.Name, m.Each.Type)
	}
	if g == nil {
		return nil, fmt.Errorf("metric %s: each.type is %s, but each.%s is not set", m.Name, m.Each.Type, strings.ToLower(m.Each.Type[:1])+m.Each.Type[1:])
	}
	return g, nil
}

// FullName is the series name kube-state-metrics gives the metric.
func (r KSMResource) FullName(m KSMMetric) string { return r.MetricNamePrefix + "_" + m.Name }

// ReadKSMConfig reads the shipped kube-state-metrics configuration.
func ReadKSMConfig(root string) (*KSMConfig, error) {
	b, err := os.ReadFile(filepath.Join(root, KubeStateMetricsConfig)) //nolint:gosec // The module's own file.
	if err != nil {
		return nil, fmt.Errorf("cannot read the kube-state-metrics configuration: %w", err)
	}
	c := &KSMConfig{}
	if err := yaml.UnmarshalStrict(b, c); err != nil {
		return nil, fmt.Errorf("cannot parse %s: %w", KubeStateMetricsConfig, err)
	}
	return c, nil
}

// Schema resolves a path of field names in an object's schema. It descends
// into the items of arrays, and accepts any key of a map (a schema whose
// additionalProperties is set). It fails on a field the schema does not
// have, naming the path walked so far.
func Schema(s *apiextensionsv1.JSONSchemaProps, path []string) (*apiextensionsv1.JSONSchemaProps, error) {
	for i, f := range path {
		for s.Type == "array" && s.Items != nil && s.Items.Schema != nil {
			s = s.Items.Schema
		}
		switch p, ok := s.Properties[f]; {
		case ok:
			s = &p
		case s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil:
			s = s.AdditionalProperties.Schema
		default:
			return nil, fmt.Errorf("no field %q at .%s", f, strings.Join(path[:i], "."))
		}
	}
	return s, nil
}
