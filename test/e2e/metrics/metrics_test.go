//go:build metrics

// Package metrics is the metrics tier (`make test-metrics`, build tag
// metrics): the sandbox with the real Cluster API managers, watched as an
// SRE's monitoring would watch it. kube-state-metrics runs with the shipped
// configuration (package/monitoring), and a Prometheus server scrapes it,
// the function and Crossplane, and evaluates the shipped alerting rules.
// The tier checks that the series equal the pools' live status, follow a
// rolling change, that an unavailable pool fires its alert and resolves it,
// and that every dashboard query parses and names series that exist. The
// tiers, their tags, targets and environments: test/README.md.
package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/test/exampleio"
	"github.com/fleetnodepool/function-fleetnodepool/test/internal/sandbox"
	"github.com/fleetnodepool/function-fleetnodepool/test/internal/tier"
	"github.com/fleetnodepool/function-fleetnodepool/test/monitoring"
)

const (
	root     = "../../.."
	examples = root + "/examples"
	config   = root + "/package/configuration"

	// The sim example: pool workers on Cluster sim-1.
	ns      = "team-sim"
	cluster = "sim-1"
	workers = "workers"
	// slow is a second pool of sim-1 whose machines take slowStartup to
	// come up (its own Composition's policy): scaled up, it is unavailable
	// for that long.
	slow        = "slow"
	slowStartup = 20

	// unavailableAlert is the shipped alert on a pool that is not
	// available, and alertFor the threshold the tier gives it.
	unavailableAlert = "FleetNodePoolUnavailable"
	alertFor         = 10 * time.Second
	// interval is how often Prometheus scrapes and evaluates here.
	interval = 2 * time.Second
)

func TestMain(m *testing.M) {
	env := append(append(sandbox.Env(), sandbox.CAPIEnv()...), sandbox.MonitoringEnv()...)
	os.Exit(tier.Main(m, tier.Tier{Name: "metrics", Env: env}, nil))
}

// A tierRun is the running sandbox and its monitoring.
type tierRun struct {
	t    *testing.T
	ctx  context.Context
	sb   *sandbox.Sandbox
	ksm  string // host:port of kube-state-metrics.
	prom string // Base URL of Prometheus.
	mon  sandbox.MonitoringBinaries
}

func TestMetrics(t *testing.T) {
	mon, err := sandbox.MonitoringBinariesFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	t0 := time.Now()
	progress := func(f string, a ...any) { t.Logf(f, a...) }
	sb, err := sandbox.StartWithCAPI(ctx, t.TempDir(), progress)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Stop()
	if _, err := sb.Examples(ctx, examples, config, sandbox.SimExamples, progress); err != nil {
		t.Fatalf("%v\ncrossplane log: %s", err, sb.Log("crossplane"))
	}
	r := &tierRun{t: t, ctx: ctx, sb: sb, mon: mon}
	r.startMonitoring()
	r.createSlowPool()
	t.Logf("sandbox, Cluster API, kube-state-metrics and Prometheus up, pools created, in %s", time.Since(t0).Round(time.Second))

	steps := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"SeriesEqualStatus", r.seriesEqualStatus},
		{"BrokenConfigurationIsCaught", r.brokenConfigurationIsCaught},
		{"UnavailablePoolFiresAndResolves", r.unavailablePoolFiresAndResolves},
		{"SteadyPoolsEmitNoEvents", r.steadyPoolsEmitNoEvents},
		{"SeriesFollowClassChange", r.seriesFollowClassChange},
		{"RulesEvaluate", r.rulesEvaluate},
		{"DashboardQueries", r.dashboardQueries},
	}
	for _, s := range steps {
		t0 := time.Now()
		if !t.Run(s.name, s.fn) {
			t.Logf("kube-state-metrics log: %s; prometheus log: %s", sb.Log("kube-state-metrics"), sb.Log("prometheus"))
			return
		}
		t.Logf("%s in %s", s.name, time.Since(t0).Round(time.Second))
	}
}

// startMonitoring runs kube-state-metrics with the shipped configuration
// and a Prometheus server with the shipped rules, the unavailable alert's
// threshold shortened the documented way (monitoring.Rules.WithFor).
func (r *tierRun) startMonitoring() {
	var err error
	if r.ksm, err = r.sb.StartKubeStateMetrics(r.ctx, "kube-state-metrics", r.mon.KubeStateMetrics, filepath.Join(root, monitoring.KubeStateMetricsConfig)); err != nil {
		r.t.Fatalf("kube-state-metrics: %v", err)
	}
	rules, err := monitoring.ReadRules(root)
	if err != nil {
		r.t.Fatal(err)
	}
	if rules, err = rules.WithFor(map[string]time.Duration{unavailableAlert: alertFor}); err != nil {
		r.t.Fatal(err)
	}
	file, err := rules.PrometheusFile()
	if err != nil {
		r.t.Fatal(err)
	}
	if r.prom, err = r.sb.StartPrometheus(r.ctx, r.mon.Prometheus, sandbox.PrometheusSetup{
		Targets: map[string]string{
			"kube-state-metrics": r.ksm,
			"function":           r.sb.FunctionMetricsAddr(),
			"crossplane":         r.sb.CrossplaneMetricsAddr(),
		},
		Rules: file, Interval: interval,
	}); err != nil {
		r.t.Fatalf("prometheus: %v", err)
	}
}

// createSlowPool creates pool slow on sim-1, one replica, through a copy
// of the Composition whose sim machines take slowStartup to start.
func (r *tierRun) createSlowPool() {
	comp, err := exampleio.Object(filepath.Join(config, "composition.yaml"))
	if err != nil {
		r.t.Fatal(err)
	}
	comp.SetName("fleetnodepool-slow-machines")
	steps, _, _ := unstructured.NestedSlice(comp.Object, "spec", "pipeline")
	for i := range steps {
		if err := unstructured.SetNestedField(steps[i].(map[string]any), int64(slowStartup), "input", "sim", "machineStartupSeconds"); err != nil {
			r.t.Fatal(err)
		}
	}
	if err := unstructured.SetNestedSlice(comp.Object, steps, "spec", "pipeline"); err != nil {
		r.t.Fatal(err)
	}
	pool := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "fleet.nodepool.dev/v1alpha1", "kind": "FleetNodePool",
		"metadata": map[string]any{"name": slow, "namespace": ns},
		"spec": map[string]any{
			"clusterName": cluster, "channel": "stable",
			"machine": map[string]any{"class": "small"}, "scaling": map[string]any{"replicas": int64(1)},
			"crossplane": map[string]any{"compositionRef": map[string]any{"name": comp.GetName()}},
		},
	}}
	if err := r.sb.Create(r.ctx, comp, pool); err != nil {
		r.t.Fatal(err)
	}
}

// seriesEqualStatus: once both pools are Ready, kube-state-metrics'
// series of each equal its live status.
func (r *tierRun) seriesEqualStatus(t *testing.T) {
	r.waitReady(t, workers, slow)
	r.waitSeriesEqual(t, r.ksm, workers, slow)
}

// brokenConfigurationIsCaught: a configuration that reads a status path the
// types do not have (status.readyReplica) makes the comparison fail.
func (r *tierRun) brokenConfigurationIsCaught(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, monitoring.KubeStateMetricsConfig))
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(b), "path: [status, readyReplicas]", "path: [status, readyReplica]", 1)
	if broken == string(b) {
		t.Fatal("the configuration reads no path [status, readyReplicas] to break")
	}
	file := filepath.Join(t.TempDir(), "broken.yaml")
	if err := os.WriteFile(file, []byte(broken), 0o600); err != nil { //nolint:gosec // A file of the test's temporary folder.
		t.Fatal(err)
	}
	addr, err := r.sb.StartKubeStateMetrics(r.ctx, "kube-state-metrics-broken", r.mon.KubeStateMetrics, file)
	if err != nil {
		t.Fatal(err)
	}
	// Let it list the pools, then compare: the ready replicas must differ.
	ready := key("fleetnodepool_status_replicas_ready", map[string]string{"namespace": ns, "name": workers, "cluster_name": cluster})
	var differ []string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
		want, got := r.expected(t, workers), r.scrape(t, addr)
		if len(got) == 0 {
			continue
		}
		differ = differ[:0]
		for k, v := range want {
			if g, ok := got[k]; !ok || g != v {
				differ = append(differ, fmt.Sprintf("%s: want %v, got %v (exported: %t)", k, v, g, ok))
			}
		}
		if slices.ContainsFunc(differ, func(d string) bool { return strings.HasPrefix(d, ready+":") }) {
			t.Logf("caught: %s", strings.Join(differ, "; "))
			return
		}
	}
	t.Errorf("a configuration reading status.readyReplica instead of status.readyReplicas was not caught: the series that differ were %v", differ)
}

// unavailablePoolFiresAndResolves scales pool slow from 1 to 2 replicas:
// its new machine takes slowStartup to come up, during which the pool is
// not available. The shipped alert fires for it, and resolves once the
// pool is available again.
func (r *tierRun) unavailablePoolFiresAndResolves(t *testing.T) {
	patch := []byte(`{"spec":{"scaling":{"replicas":2}}}`)
	xr := r.pool(t, slow)
	if err := r.sb.Client.Patch(r.ctx, xr, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	match := map[string]string{"alertname": unavailableAlert, "namespace": ns, "name": slow}
	fired := r.waitAlert(t, match, "firing", 2*time.Minute)
	t.Logf("%s firing for %s/%s after %s: %v", unavailableAlert, ns, slow, time.Since(t0).Round(time.Second), fired)
	for _, l := range []string{"severity"} {
		if fired.Labels[l] == "" {
			t.Errorf("the firing alert has no %s label: %v", l, fired.Labels)
		}
	}
	for _, a := range []string{"summary", "description", "runbook_url"} {
		if fired.Annotations[a] == "" {
			t.Errorf("the firing alert has no %s annotation: %v", a, fired.Annotations)
		}
	}
	if !strings.Contains(fired.Annotations["description"], slow) {
		t.Errorf("the description does not name the pool %s: %q", slow, fired.Annotations["description"])
	}
	r.waitReady(t, slow)
	t1 := time.Now()
	r.waitAlert(t, match, "", 2*time.Minute)
	t.Logf("%s resolved %s after %s/%s was Ready again", unavailableAlert, time.Since(t1).Round(time.Second), ns, slow)
	r.waitSeriesEqual(t, r.ksm, slow)
}

// steadyPoolsEmitNoEvents: Crossplane keeps running the function for
// pools that do not change, and no Event of theirs is recorded meanwhile.
func (r *tierRun) steadyPoolsEmitNoEvents(t *testing.T) {
	r.waitReady(t, workers, slow)
	before, emitted, calls := r.events(t), r.emitted(t), r.functionCalls(t)
	// Crossplane runs the function for the pools on its poll and when what
	// they compose changes: wait for a few runs.
	if err := poll(r.ctx, 3*time.Minute, func() error {
		if n := r.functionCalls(t) - calls; n < 4 {
			return fmt.Errorf("%v function runs since the pools were steady", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	after := r.events(t)
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("Events of the steady pools over %v function runs (-before, +after):\n%s", r.functionCalls(t)-calls, diff)
	}
	if diff := cmp.Diff(emitted, r.emitted(t)); diff != "" {
		t.Errorf("events the function returned for the steady pools over %v function runs (-before, +after):\n%s", r.functionCalls(t)-calls, diff)
	}
	t.Logf("%v function runs of steady pools, no Event: %v", r.functionCalls(t)-calls, after)
}

// events counts the Events recorded on the pools, by pool and reason.
func (r *tierRun) events(t *testing.T) map[string]int32 {
	t.Helper()
	list := &corev1.EventList{}
	if err := r.sb.Client.List(r.ctx, list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	out := map[string]int32{}
	for _, e := range list.Items {
		if e.InvolvedObject.Kind == "FleetNodePool" {
			out[e.InvolvedObject.Name+"/"+e.Reason] += max(e.Count, 1)
		}
	}
	return out
}

// emitted counts the events the function returned, by reason
// (function_fleetnodepool_events_total): Kubernetes may drop the Events
// Crossplane records of them, never these.
func (r *tierRun) emitted(t *testing.T) map[string]float64 {
	t.Helper()
	m, err := sandbox.ReadMetrics(r.ctx, r.sb.FunctionMetricsAddr(), "function_fleetnodepool_events_total")
	if err != nil {
		t.Fatal(err)
	}
	return m.Values("function_fleetnodepool_events_total", "reason", nil)
}

// functionCalls is how many times Crossplane has run the function.
func (r *tierRun) functionCalls(t *testing.T) float64 {
	t.Helper()
	m, err := r.sb.CrossplaneMetrics(r.ctx, "function_run_function_request_total")
	if err != nil {
		t.Fatal(err)
	}
	return m.Sum("function_run_function_request_total", nil)
}

// seriesFollowClassChange moves pool workers from class small to medium,
// which replaces its machines, and checks the series follow: the machine
// type, the rollout, and at the end the status again. The function says
// the rollout started and finished: the events it returned. The Events
// Crossplane recorded of them are logged, not required: its recorder
// (client-go's spam filter) keeps 25 Normal Events per XR, then one per 5
// minutes, and Crossplane's own "Composed resource ... is not yet ready"
// spend them as the pool is created.
func (r *tierRun) seriesFollowClassChange(t *testing.T) {
	before, emitted := r.events(t), r.emitted(t)
	patch := []byte(`{"spec":{"machine":{"class":"medium"}}}`)
	if err := r.sb.Client.Patch(r.ctx, r.pool(t, workers), client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
	// The rollout shows: the series say RollingOut while the pool does.
	if err := poll(r.ctx, 3*time.Minute, func() error {
		got := r.scrape(t, r.ksm)
		k := key("fleetnodepool_status_rollout_state", map[string]string{"namespace": ns, "name": workers, "cluster_name": cluster, "state": string(v1alpha1.RolloutRollingOut)})
		if got[k] != 1 {
			return fmt.Errorf("no series says %s/%s is rolling out (%s = %v)", ns, workers, k, got[k])
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := poll(r.ctx, 5*time.Minute, func() error {
		p := r.typed(t, r.pool(t, workers))
		if p.Status.MachineType != "sim.medium" || p.Status.Rollout == nil || p.Status.Rollout.State != v1alpha1.RolloutUpToDate {
			return fmt.Errorf("%s/%s runs %s, rollout %v", ns, workers, p.Status.MachineType, p.Status.Rollout)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r.waitReady(t, workers)
	r.waitSeriesEqual(t, r.ksm, workers, slow)
	after, now := r.events(t), r.emitted(t)
	// Exactly these: the pool queues behind no one for seconds (no event
	// for that), starts and finishes.
	want := map[string]float64{"RolloutStarted": 1, "RolloutFinished": 1, "RolloutHeld": 0, "WaveHalted": 0, "ChangeRefused": 0}
	got := map[string]float64{}
	for reason := range want {
		got[reason] = now[reason] - emitted[reason]
		t.Logf("%s: the function returned %v, Crossplane recorded %d as Events of %s/%s", reason, got[reason],
			after[workers+"/"+reason]-before[workers+"/"+reason], ns, workers)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events the function returned during the class change of %s/%s (-want, +got):\n%s", ns, workers, diff)
	}
	if t.Failed() {
		list := &corev1.EventList{}
		if err := r.sb.Client.List(r.ctx, list, client.InNamespace(ns)); err == nil {
			for _, e := range list.Items {
				t.Logf("event %s %s %s x%d %s..%s: %s", e.InvolvedObject.Name, e.Type, e.Reason, e.Count, e.FirstTimestamp.Format(time.TimeOnly), e.LastTimestamp.Format(time.TimeOnly), e.Message)
			}
		}
	}
}

// rulesEvaluate: Prometheus loaded every shipped alert, and evaluates each
// without error.
func (r *tierRun) rulesEvaluate(t *testing.T) {
	rules, err := monitoring.ReadRules(root)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, a := range rules.Alerts() {
		want = append(want, a.Name)
	}
	sort.Strings(want)
	var rsp struct {
		Groups []struct {
			Rules []struct {
				Name, Health, LastError, Type string
			} `json:"rules"`
		} `json:"groups"`
	}
	r.api(t, "/api/v1/rules", &rsp)
	var got, unhealthy []string
	for _, g := range rsp.Groups {
		for _, rule := range g.Rules {
			if rule.Type != "alerting" {
				continue
			}
			got = append(got, rule.Name)
			if rule.Health != "ok" {
				unhealthy = append(unhealthy, fmt.Sprintf("%s: %s %s", rule.Name, rule.Health, rule.LastError))
			}
		}
	}
	sort.Strings(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("alerts Prometheus loaded (-shipped, +loaded):\n%s", diff)
	}
	if len(unhealthy) > 0 {
		t.Errorf("alerts Prometheus cannot evaluate:\n%s", strings.Join(unhealthy, "\n"))
	}
}

// dashboardQueries: every query of the shipped dashboard parses as PromQL
// (Prometheus' own parser, /api/v1/parse_query), runs, and names only
// series that exist here. MachinePool series are the exception: simulated
// clusters run MachineDeployments only, so no MachinePool exists to export.
func (r *tierRun) dashboardQueries(t *testing.T) {
	queries, err := monitoring.DashboardQueries(root)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	r.api(t, "/api/v1/label/__name__/values", &names)
	var missing []string
	for _, q := range queries {
		var ast any
		if err := r.apiErr("/api/v1/parse_query?query="+url.QueryEscape(q), &ast); err != nil {
			t.Errorf("dashboard query %q does not parse: %v", q, err)
			continue
		}
		if err := r.apiErr("/api/v1/query?query="+url.QueryEscape(q), new(any)); err != nil {
			t.Errorf("dashboard query %q fails: %v", q, err)
		}
		for _, n := range selectors(ast) {
			if !slices.Contains(names, n) && !strings.HasPrefix(n, "capi_v1beta2_machinepool_") {
				missing = append(missing, fmt.Sprintf("%s (in %q)", n, q))
			}
		}
	}
	if len(missing) > 0 {
		t.Errorf("dashboard queries name series no target exports:\n%s", strings.Join(missing, "\n"))
	}
	t.Logf("%d dashboard queries parse and run", len(queries))
}

// selectors are the metric names of a parsed query's vector selectors.
func selectors(ast any) []string {
	var out []string
	switch n := ast.(type) {
	case map[string]any:
		if n["type"] == "vectorSelector" {
			if name, _ := n["name"].(string); name != "" {
				out = append(out, name)
			}
		}
		for _, v := range n {
			out = append(out, selectors(v)...)
		}
	case []any:
		for _, v := range n {
			out = append(out, selectors(v)...)
		}
	}
	return out
}

// An alert is one of Prometheus' active alerts.
type alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
}

// waitAlert waits until the alert matching labels is in state (firing,
// pending), or, for state "", until no such alert is active.
func (r *tierRun) waitAlert(t *testing.T, match map[string]string, state string, timeout time.Duration) alert {
	t.Helper()
	var found alert
	if err := poll(r.ctx, timeout, func() error {
		var rsp struct{ Alerts []alert }
		if err := r.apiErr("/api/v1/alerts", &rsp); err != nil {
			return err
		}
		var active []string
		for _, a := range rsp.Alerts {
			if !hasLabels(a.Labels, match) {
				continue
			}
			if state != "" && a.State == state {
				found = a
				return nil
			}
			active = append(active, a.State)
		}
		if state == "" && len(active) == 0 {
			return nil
		}
		return fmt.Errorf("alert %v: want %q, active as %v", match, state, active)
	}); err != nil {
		t.Fatal(err)
	}
	return found
}

// api GETs a Prometheus API path into out, failing the test on error.
func (r *tierRun) api(t *testing.T, path string, out any) {
	t.Helper()
	if err := r.apiErr(path, out); err != nil {
		t.Fatal(err)
	}
}

// apiErr GETs a Prometheus API path and decodes its data into out.
func (r *tierRun) apiErr(path string, out any) error {
	req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, r.prom+path, nil)
	if err != nil {
		return err
	}
	rsp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer rsp.Body.Close() //nolint:errcheck // Read-only.
	b, err := io.ReadAll(rsp.Body)
	if err != nil {
		return err
	}
	var body struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		return fmt.Errorf("GET %s: %s: %s", path, rsp.Status, b)
	}
	if body.Status != "success" {
		return fmt.Errorf("GET %s: %s", path, body.Error)
	}
	return json.Unmarshal(body.Data, out)
}

// waitSeriesEqual waits until kube-state-metrics at addr exports, for each
// pool, exactly the series its live status says.
func (r *tierRun) waitSeriesEqual(t *testing.T, addr string, pools ...string) {
	t.Helper()
	var diff string
	if err := poll(r.ctx, time.Minute, func() error {
		want, got := series{}, series{}
		for _, p := range pools {
			for k, v := range r.expected(t, p) {
				want[k] = v
			}
		}
		for k, v := range r.scrape(t, addr) {
			if slices.ContainsFunc(pools, func(p string) bool { return strings.Contains(k, `name="`+p+`"`) }) {
				got[k] = v
			}
		}
		if diff = cmp.Diff(want, got); diff != "" {
			return fmt.Errorf("series of %v differ from the status", pools)
		}
		return nil
	}); err != nil {
		t.Fatalf("%v (-from the status, +kube-state-metrics):\n%s", err, diff)
	}
}

// series are samples by name{labels}, labels sorted, empty ones left out.
type series map[string]float64

// key is a series' name{labels}, as series keys it.
func key(name string, labels map[string]string) string {
	ks := make([]string, 0, len(labels))
	for k, v := range labels {
		if v != "" {
			ks = append(ks, fmt.Sprintf("%s=%q", k, v))
		}
	}
	sort.Strings(ks)
	return name + "{" + strings.Join(ks, ",") + "}"
}

// scrape reads kube-state-metrics' FleetNodePool series of the namespace.
func (r *tierRun) scrape(t *testing.T, addr string) series {
	t.Helper()
	m, err := sandbox.ReadMetrics(r.ctx, addr, "fleetnodepool_")
	if err != nil {
		t.Fatal(err)
	}
	out := series{}
	for _, s := range m {
		if s.Labels["namespace"] != ns {
			continue
		}
		// kube-state-metrics labels every custom resource series with its
		// kind: the configuration's labels are what is compared.
		for _, l := range []string{"customresource_group", "customresource_version", "customresource_kind"} {
			delete(s.Labels, l)
		}
		out[key(s.Name, s.Labels)] = s.Value
	}
	return out
}

// expected are the series a pool's live object should give, written from
// the API types (not from the configuration's paths): a path of the
// configuration that does not read the field it names shows as a diff.
func (r *tierRun) expected(t *testing.T, name string) series {
	t.Helper()
	u := r.pool(t, name)
	p := r.typed(t, u)
	s := p.Status
	base := map[string]string{"namespace": ns, "name": name, "cluster_name": p.Spec.ClusterName}
	with := func(extra map[string]string) map[string]string {
		l := make(map[string]string, len(base)+len(extra))
		for k, v := range base {
			l[k] = v
		}
		for k, v := range extra {
			l[k] = v
		}
		return l
	}
	out := series{}
	gauge := func(name string, v float64, extra map[string]string) { out[key(name, with(extra))] = v }
	stamp := func(name string, at *metav1.Time) {
		if at != nil {
			gauge(name, float64(at.Unix()), nil)
		}
	}
	rollout := ptrOr(s.Rollout)
	gauge("fleetnodepool_info", 1, map[string]string{
		"provider": string(s.Provider), "backend": string(s.Backend), "version": s.Version, "target_version": s.TargetVersion,
		"control_plane_version": s.ControlPlaneVersion, "machine_type": s.MachineType, "class": p.Spec.Machine.Class,
		"channel": p.Spec.Channel, "wave": rollout.Wave,
	})
	stamp("fleetnodepool_created", &p.CreationTimestamp)
	for n, v := range map[string]*int32{
		"fleetnodepool_status_replicas": s.Replicas, "fleetnodepool_status_replicas_ready": s.ReadyReplicas,
		"fleetnodepool_status_replicas_available": s.AvailableReplicas, "fleetnodepool_status_replicas_up_to_date": s.UpToDateReplicas,
	} {
		gauge(n, float64(ptrOr(v)), nil)
	}
	for n, v := range map[string]*int32{
		"fleetnodepool_spec_scaling_replicas": p.Spec.Scaling.Replicas, "fleetnodepool_spec_scaling_min": p.Spec.Scaling.Min, "fleetnodepool_spec_scaling_max": p.Spec.Scaling.Max,
	} {
		if v != nil {
			gauge(n, float64(*v), nil)
		}
	}
	if sk := s.VersionSkew; sk != nil {
		gauge("fleetnodepool_status_version_skew_minors", float64(sk.Minors), nil)
		gauge("fleetnodepool_status_version_skew_supported_minors", float64(sk.Supported), nil)
	}
	if s.Rollout != nil {
		for _, st := range []v1alpha1.RolloutState{v1alpha1.RolloutUpToDate, v1alpha1.RolloutRollingOut, v1alpha1.RolloutHeld} {
			gauge("fleetnodepool_status_rollout_state", boolValue(st == rollout.State), map[string]string{"state": string(st)})
		}
		gauge("fleetnodepool_status_rollout_info", 1, map[string]string{
			"state": string(rollout.State), "reason": rollout.Reason, "wave": rollout.Wave, "window": rollout.Window, "target": rollout.Target,
		})
		stamp("fleetnodepool_status_rollout_queued_since", rollout.QueuedSince)
		stamp("fleetnodepool_status_rollout_next_start", rollout.NextStart)
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		typ, _ := m["type"].(string)
		status, _ := m["status"].(string)
		reason, _ := m["reason"].(string)
		for _, st := range []string{"True", "False", "Unknown"} {
			gauge("fleetnodepool_status_condition", boolValue(st == status), map[string]string{"type": typ, "reason": reason, "status": st})
		}
		if at, _ := m["lastTransitionTime"].(string); at != "" {
			ts, err := time.Parse(time.RFC3339, at)
			if err != nil {
				t.Fatal(err)
			}
			gauge("fleetnodepool_status_condition_last_transition_time", float64(ts.Unix()), map[string]string{"type": typ, "status": status})
		}
	}
	return out
}

func (r *tierRun) pool(t *testing.T, name string) *unstructured.Unstructured {
	t.Helper()
	u := r.sb.Get(r.ctx, "fleet.nodepool.dev/v1alpha1", "FleetNodePool", ns, name)
	if u == nil {
		t.Fatalf("no FleetNodePool %s/%s", ns, name)
	}
	return u
}

func (r *tierRun) typed(t *testing.T, u *unstructured.Unstructured) *v1alpha1.FleetNodePool {
	t.Helper()
	p := &v1alpha1.FleetNodePool{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitReady waits until the pools are Ready.
func (r *tierRun) waitReady(t *testing.T, pools ...string) {
	t.Helper()
	for _, name := range pools {
		if err := poll(r.ctx, 5*time.Minute, func() error {
			if st, msg := sandbox.Condition(r.pool(t, name), "Ready"); st != "True" {
				return fmt.Errorf("%s/%s is not Ready: %s", ns, name, msg)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func ptrOr[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// poll retries fn every second until it succeeds or timeout passes.
func poll(ctx context.Context, timeout time.Duration, fn func() error) error {
	var err error
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(time.Second) {
		if err = fn(); err == nil || ctx.Err() != nil {
			return err
		}
	}
	return err
}
