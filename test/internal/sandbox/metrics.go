package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// openMetricsTypes are TYPE lines of OpenMetrics' info and stateset types.
var openMetricsTypes = regexp.MustCompile(`(?m)^(# TYPE \S+) (?:info|stateset)$`)

// A Sample is one series of a metric at the time it was read.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Metrics are the samples of one read of a process's metrics.
type Metrics []Sample

// Sum adds the samples of a metric whose labels include match.
func (m Metrics) Sum(name string, match map[string]string) float64 {
	var sum float64
	for _, s := range m {
		if s.Name != name || !hasLabels(s.Labels, match) {
			continue
		}
		sum += s.Value
	}
	return sum
}

// Values are the labels' values a metric's samples that include match
// carry for label, each with its samples' sum.
func (m Metrics) Values(name, label string, match map[string]string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range m {
		if s.Name != name || !hasLabels(s.Labels, match) {
			continue
		}
		out[s.Labels[label]] += s.Value
	}
	return out
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// CrossplaneMetrics reads the counters and gauges Crossplane core serves
// whose names start with one of prefixes (e.g. circuit_breaker_ for its
// XR watch circuit breakers, controller_runtime_reconcile_total for its
// controllers' reconciles).
func (s *Sandbox) CrossplaneMetrics(ctx context.Context, prefixes ...string) (Metrics, error) {
	if s.metricsPort == 0 {
		return nil, fmt.Errorf("crossplane serves no metrics here")
	}
	m, err := ReadMetrics(ctx, s.CrossplaneMetricsAddr(), prefixes...)
	if err != nil {
		return nil, fmt.Errorf("crossplane: %w", err)
	}
	return m, nil
}

// ReadMetrics reads the counters and gauges a process serves on
// host:port/metrics whose names start with one of prefixes (any, without).
func ReadMetrics(ctx context.Context, addr string, prefixes ...string) (Metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	rsp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot read the metrics of %s: %w", addr, err)
	}
	defer rsp.Body.Close() //nolint:errcheck // Read-only.
	if rsp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("cannot read the metrics of %s: %s", addr, rsp.Status)
	}
	b, err := io.ReadAll(rsp.Body)
	if err != nil {
		return nil, fmt.Errorf("cannot read the metrics of %s: %w", addr, err)
	}
	// kube-state-metrics types its Info and StateSet families with
	// OpenMetrics' info and stateset in the text format too, which the text
	// parser does not know: their samples are gauges.
	b = openMetricsTypes.ReplaceAll(b, []byte("$1 gauge"))
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("cannot parse the metrics of %s: %w", addr, err)
	}
	var out Metrics
	for name, f := range families {
		if !hasPrefix(name, prefixes) {
			continue
		}
		for _, m := range f.GetMetric() {
			v, ok := value(f.GetType(), m)
			if !ok {
				continue
			}
			labels := make(map[string]string, len(m.GetLabel()))
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			out = append(out, Sample{Name: name, Labels: labels, Value: v})
		}
	}
	return out, nil
}

func hasPrefix(name string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return len(prefixes) == 0
}

// value is a counter's or gauge's value; histograms and summaries have
// none here.
func value(t dto.MetricType, m *dto.Metric) (float64, bool) {
	switch t { //nolint:exhaustive // Only counters and gauges have one value.
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue(), true
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue(), true
	default:
		return 0, false
	}
}

// Increase is how much a counter grew over successive samples, as
// Prometheus's increase() counts it: a drop is the process restarting, its
// counter counting again from 0.
func Increase(samples []float64) float64 {
	var sum float64
	for i := 1; i < len(samples); i++ {
		prev, cur := samples[i-1], samples[i]
		if cur < prev {
			prev = 0
		}
		sum += cur - prev
	}
	return sum
}
