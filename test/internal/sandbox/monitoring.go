package sandbox

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"sigs.k8s.io/yaml"
)

// MonitoringBinaries are the processes that watch the sandbox as an SRE's
// would: kube-state-metrics exporting the objects' state, and a Prometheus
// server scraping it and evaluating the alerting rules.
type MonitoringBinaries struct {
	KubeStateMetrics, Prometheus string
}

// MonitoringEnv are the variables MonitoringBinariesFromEnv reads, which the
// Makefile sets.
func MonitoringEnv() []string { return []string{"KUBE_STATE_METRICS", "PROMETHEUS"} }

// MonitoringBinariesFromEnv reads the binaries' paths from the variables of
// MonitoringEnv.
func MonitoringBinariesFromEnv() (MonitoringBinaries, error) {
	v, err := fromEnv(MonitoringEnv())
	if err != nil {
		return MonitoringBinaries{}, err
	}
	return MonitoringBinaries{KubeStateMetrics: v[0], Prometheus: v[1]}, nil
}

// FunctionMetricsAddr is the host:port of the function's /metrics.
func (s *Sandbox) FunctionMetricsAddr() string { return s.fnMetricsAddr }

// CrossplaneMetricsAddr is the host:port of Crossplane core's /metrics.
func (s *Sandbox) CrossplaneMetricsAddr() string { return fmt.Sprintf("127.0.0.1:%d", s.metricsPort) }

// StartKubeStateMetrics runs kube-state-metrics, as process name, against
// the sandbox's API server with a CustomResourceStateMetrics configuration
// file only (no built-in collectors), as docs/monitoring.md runs it, and
// returns the host:port of its /metrics once it serves.
func (s *Sandbox) StartKubeStateMetrics(ctx context.Context, name, bin, config string) (string, error) {
	if _, ok := s.procs[name]; ok {
		return "", fmt.Errorf("a process %q runs already", name)
	}
	ports, err := freePorts(2)
	if err != nil {
		return "", err
	}
	if err := s.run(name, nil, bin, "--kubeconfig="+s.Kubeconfig,
		"--custom-resource-state-only", "--custom-resource-state-config-file="+config,
		"--host=127.0.0.1", fmt.Sprintf("--port=%d", ports[0]),
		"--telemetry-host=127.0.0.1", fmt.Sprintf("--telemetry-port=%d", ports[1])); err != nil {
		return "", err
	}
	s.monitors = append(s.monitors, name)
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	return addr, waitHTTP(ctx, "http://"+addr+"/metrics", time.Minute)
}

// A PrometheusSetup is what a Prometheus server of the sandbox scrapes and
// evaluates.
type PrometheusSetup struct {
	// Targets to scrape, by job name: host:port serving /metrics.
	Targets map[string]string
	// Rules is a Prometheus rule file (groups:).
	Rules []byte
	// Interval is the scrape and evaluation interval.
	Interval time.Duration
}

// StartPrometheus runs a Prometheus server that scrapes the setup's targets
// and evaluates its rules, and returns its base URL once it is ready.
func (s *Sandbox) StartPrometheus(ctx context.Context, bin string, setup PrometheusSetup) (string, error) {
	dir := filepath.Join(s.Dir, "prometheus")
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), setup.Rules, 0o600); err != nil {
		return "", err
	}
	type staticConfig struct {
		Targets []string `json:"targets"`
	}
	type scrapeConfig struct {
		JobName       string         `json:"job_name"`
		StaticConfigs []staticConfig `json:"static_configs"`
	}
	cfg := struct {
		Global struct {
			ScrapeInterval     string `json:"scrape_interval"`
			EvaluationInterval string `json:"evaluation_interval"`
		} `json:"global"`
		RuleFiles     []string       `json:"rule_files"`
		ScrapeConfigs []scrapeConfig `json:"scrape_configs"`
	}{RuleFiles: []string{filepath.Join(dir, "rules.yaml")}}
	cfg.Global.ScrapeInterval = setup.Interval.String()
	cfg.Global.EvaluationInterval = setup.Interval.String()
	for job, target := range setup.Targets {
		cfg.ScrapeConfigs = append(cfg.ScrapeConfigs, scrapeConfig{JobName: job, StaticConfigs: []staticConfig{{Targets: []string{target}}}})
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), b, 0o600); err != nil {
		return "", err
	}
	addr, err := freeAddr()
	if err != nil {
		return "", err
	}
	if err := s.run("prometheus", nil, bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr); err != nil {
		return "", err
	}
	s.monitors = append(s.monitors, "prometheus")
	url := "http://" + addr
	return url, waitHTTP(ctx, url+"/-/ready", time.Minute)
}

// waitHTTP waits until a GET of url answers 200.
func waitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	return eventually(ctx, timeout, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		rsp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		_ = rsp.Body.Close()
		if rsp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, rsp.Status)
		}
		return nil
	})
}
