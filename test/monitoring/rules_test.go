//go:build rules

package monitoring

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"sigs.k8s.io/yaml"

	"github.com/fleetnodepool/function-fleetnodepool/test/internal/tier"
)

// The rules tier: promtool checks and unit-tests the shipped alerting rules
// (testdata/rules, promtool's `test rules` format), and the Go tests below
// check what promtool cannot: annotations, runbook anchors, that every
// alert has a case that fires and one that does not, and that expressions
// name only conditions, reasons and metrics that exist.

// EnvPromtool is the promtool binary `make test-rules` builds.
const EnvPromtool = "PROMTOOL"

// The rendered rule file, as the test files' rule_files name it.
const renderedRules = "rules.yaml"

// The runbooks, and the URL every runbook_url starts with.
const (
	monitoringDoc = "docs/monitoring.md"
	runbookBase   = "https://github.com/fleetnodepool/function-fleetnodepool/blob/main/docs/monitoring.md#"
)

var severities = []string{"critical", "warning", "info"}

// promtool is the promtool to run: without one the test skips, saying how
// to run it, and fails under CI.
func promtool(t *testing.T) string {
	t.Helper()
	p := os.Getenv(EnvPromtool)
	if p != "" {
		return p
	}
	msg := "the rules tier needs " + EnvPromtool + ", not set: run it with `make test-rules`, which builds promtool and sets it"
	if ci, err := strconv.ParseBool(os.Getenv(tier.EnvCI)); err == nil && ci {
		t.Fatal(msg + " (" + tier.EnvCI + " is true: a tier may not skip there)")
	}
	t.Skip(msg)
	return ""
}

func readRules(t *testing.T) *Rules {
	t.Helper()
	r, err := ReadRules(root)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// promtoolDir writes the rendered rules as rules.yaml into a new directory
// with copies of the test files of testdata/<dir>, and returns it and the
// test files' names.
func promtoolDir(t *testing.T, r *Rules, dir string) (string, []string) {
	t.Helper()
	tmp := t.TempDir()
	b, err := r.PrometheusFile()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, renderedRules), b, 0o600); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no test files in testdata/%s", dir)
	}
	var names []string
	for _, f := range files {
		name := filepath.Base(f)
		if name == renderedRules {
			t.Fatalf("testdata/%s/%s: the rendered rules take that name", dir, name)
		}
		b, err := os.ReadFile(f) //nolint:gosec // The package's own test data.
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tmp, name), b, 0o600); err != nil { //nolint:gosec // name is a base name from the package's own testdata.
			t.Fatal(err)
		}
		names = append(names, name)
	}
	return tmp, names
}

// runPromtool runs promtool in dir and fails with its output.
func runPromtool(t *testing.T, bin, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...) //nolint:gosec // The promtool make test-rules builds.
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
}

// TestPromtool checks the shipped rules and runs their unit tests.
func TestPromtool(t *testing.T) {
	bin := promtool(t)
	dir, tests := promtoolDir(t, readRules(t), "rules")
	runPromtool(t, bin, dir, "check", "rules", "--lint=all", "--lint-fatal", renderedRules)
	runPromtool(t, bin, dir, append([]string{"test", "rules"}, tests...)...)
}

// TestPromtoolWithFor shows the way to shorten thresholds in a test: the
// shipped rules WithFor shorter `for`s fire sooner (testdata/withfor).
func TestPromtoolWithFor(t *testing.T) {
	bin := promtool(t)
	r, err := readRules(t).WithFor(map[string]time.Duration{
		"FleetNodePoolUnavailable":    2 * time.Minute,
		"FleetNodePoolUpgradePending": 10 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	dir, tests := promtoolDir(t, r, "withfor")
	runPromtool(t, bin, dir, "check", "rules", "--lint=all", "--lint-fatal", renderedRules)
	runPromtool(t, bin, dir, append([]string{"test", "rules"}, tests...)...)
}

// TestPromtoolDashboardQueries parses every query of the dashboard, its
// template variables substituted (DashboardQueries), with Prometheus' own
// parser: as the expressions of recording rules promtool checks.
func TestPromtoolDashboardQueries(t *testing.T) {
	bin := promtool(t)
	qs, err := DashboardQueries(root)
	if err != nil {
		t.Fatal(err)
	}
	g := RuleGroup{Name: "dashboard"}
	for i, q := range qs {
		g.Rules = append(g.Rules, Rule{Record: fmt.Sprintf("dashboard:query_%d", i), Expr: q})
	}
	b, err := yaml.Marshal(struct {
		Groups []RuleGroup `json:"groups"`
	}{Groups: []RuleGroup{g}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dashboard.yaml"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	runPromtool(t, bin, dir, "check", "rules", "--lint=none", "dashboard.yaml")
}

// checkAlerts is every alert that is not named uniquely, has no
// threshold, a severity other than critical, warning or info, or misses
// a summary, a description or a runbook_url into docs/monitoring.md.
func checkAlerts(alerts []Alert) []string {
	var bad []string
	seen := map[string]bool{}
	for _, a := range alerts {
		if seen[a.Name] {
			bad = append(bad, a.Name+": another alert has its name")
		}
		seen[a.Name] = true
		if a.For <= 0 {
			bad = append(bad, a.Name+": no for: its threshold")
		}
		if !slices.Contains(severities, a.Labels["severity"]) {
			bad = append(bad, fmt.Sprintf("%s: severity %q is not one of %s", a.Name, a.Labels["severity"], strings.Join(severities, ", ")))
		}
		for _, k := range []string{"summary", "description", "runbook_url"} {
			if strings.TrimSpace(a.Annotations[k]) == "" {
				bad = append(bad, a.Name+": no annotation "+k)
			}
		}
		if u := a.Annotations["runbook_url"]; u != "" && !strings.HasPrefix(u, runbookBase) {
			bad = append(bad, fmt.Sprintf("%s: runbook_url %s is not a section of %s", a.Name, u, runbookBase))
		}
	}
	slices.Sort(bad)
	return bad
}

var (
	headingRE  = regexp.MustCompile(`^(#{1,6})\s+(.*?)\s*#*\s*$`)
	fenceRE    = regexp.MustCompile("^\\s*(```|~~~)")
	mdLinkRE   = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
	slugDropRE = regexp.MustCompile(`[^\p{L}\p{N}\p{M}\p{Pc} -]`)
)

// githubAnchors are the anchors GitHub gives a Markdown file's headings:
// the text (links as their text) lower-cased, punctuation but - and _
// dropped, spaces as -, and -1, -2, ... after a repeated one. Headings in
// fenced code are none.
func githubAnchors(md string) map[string]bool {
	anchors := map[string]bool{}
	counts := map[string]int{}
	fenced := false
	for _, line := range strings.Split(md, "\n") {
		if fenceRE.MatchString(line) {
			fenced = !fenced
			continue
		}
		m := headingRE.FindStringSubmatch(line)
		if fenced || m == nil {
			continue
		}
		text := mdLinkRE.ReplaceAllString(m[2], "$1")
		slug := strings.ReplaceAll(slugDropRE.ReplaceAllString(strings.ToLower(text), ""), " ", "-")
		a := slug
		if n := counts[slug]; n > 0 {
			a = fmt.Sprintf("%s-%d", slug, n)
		}
		counts[slug]++
		anchors[a] = true
	}
	return anchors
}

// checkRunbooks is every alert whose runbook_url's anchor is no heading's.
func checkRunbooks(alerts []Alert, anchors map[string]bool) []string {
	var bad []string
	for _, a := range alerts {
		u := a.Annotations["runbook_url"]
		_, anchor, ok := strings.Cut(u, "#")
		if !ok || !anchors[anchor] {
			bad = append(bad, fmt.Sprintf("%s: runbook_url %s: %s has no heading with anchor %q", a.Name, u, monitoringDoc, anchor))
		}
	}
	slices.Sort(bad)
	return bad
}

// A promtoolTests file, the part the coverage check reads.
type promtoolTests struct {
	RuleFiles []string `json:"rule_files"`
	Tests     []struct {
		Name           string `json:"name"`
		AlertRuleTests []struct {
			Alertname string `json:"alertname"`
			ExpAlerts []any  `json:"exp_alerts"`
		} `json:"alert_rule_test"`
	} `json:"tests"`
}

// checkCoverage is every alert without a promtool case in which it fires
// (an alert_rule_test of it with exp_alerts) and one in which it does not
// (with none), every case of an alert the rules do not have, and every
// file whose rule_files is not the rendered rules.
func checkCoverage(alerts []Alert, files map[string][]byte) []string {
	var bad []string
	fires, quiet := map[string]bool{}, map[string]bool{}
	names := map[string]bool{}
	for _, a := range alerts {
		names[a.Name] = true
	}
	for name, b := range files {
		var f promtoolTests
		if err := yaml.Unmarshal(b, &f); err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		if !slices.Equal(f.RuleFiles, []string{renderedRules}) {
			bad = append(bad, fmt.Sprintf("%s: rule_files %v: want [%s]", name, f.RuleFiles, renderedRules))
		}
		for _, tc := range f.Tests {
			for _, a := range tc.AlertRuleTests {
				if !names[a.Alertname] {
					bad = append(bad, fmt.Sprintf("%s: test %q: no alert %s", name, tc.Name, a.Alertname))
				}
				if len(a.ExpAlerts) > 0 {
					fires[a.Alertname] = true
				} else {
					quiet[a.Alertname] = true
				}
			}
		}
	}
	for _, a := range alerts {
		if !fires[a.Name] {
			bad = append(bad, a.Name+": no promtool case in which it fires")
		}
		if !quiet[a.Name] {
			bad = append(bad, a.Name+": no promtool case in which it does not fire")
		}
	}
	slices.Sort(bad)
	return bad
}

// checkThresholds is every alert whose row in the threshold table of
// docs/monitoring.md (a line "| [`Name`](#anchor) | severity | `for` |
// `/spec/groups/G/rules/R/for` |") is missing or says another severity,
// for or JSON patch path than the rules: the path a kustomize patch
// replaces.
func checkThresholds(r *Rules, md string) []string {
	rows := map[string]string{}
	for _, line := range strings.Split(md, "\n") {
		if m := thresholdRowRE.FindStringSubmatch(line); m != nil {
			rows[m[1]] = line
		}
	}
	var bad []string
	for gi, g := range r.Spec.Groups {
		for ri, rule := range g.Rules {
			if rule.Alert == "" {
				continue
			}
			row, ok := rows[rule.Alert]
			if !ok {
				bad = append(bad, rule.Alert+": no row in the threshold table of "+monitoringDoc)
				continue
			}
			want := fmt.Sprintf("| %s | `%s` | `/spec/groups/%d/rules/%d/for` |", rule.Labels["severity"], rule.For, gi, ri)
			if !strings.HasSuffix(strings.TrimSpace(row), want) {
				bad = append(bad, fmt.Sprintf("%s: its row in %s ends %q: want %q", rule.Alert, monitoringDoc, row, want))
			}
		}
	}
	slices.Sort(bad)
	return bad
}

var thresholdRowRE = regexp.MustCompile("^\\| \\[`([A-Za-z]+)`\\]\\(#[a-z]+\\) \\|")

func exprs(alerts []Alert) []string {
	var out []string
	for _, a := range alerts {
		out = append(out, a.Expr)
	}
	return out
}

func TestAlerts(t *testing.T) {
	alerts := readRules(t).Alerts()
	if len(alerts) == 0 {
		t.Fatalf("%s has no alerts", PrometheusRuleFile)
	}
	if diff := cmp.Diff([]string(nil), checkAlerts(alerts)); diff != "" {
		t.Errorf("%s: labels and annotations (-want, +got):\n%s", PrometheusRuleFile, diff)
	}
}

func TestAlertRunbooks(t *testing.T) {
	md, err := os.ReadFile(filepath.Join(root, monitoringDoc))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string(nil), checkRunbooks(readRules(t).Alerts(), githubAnchors(string(md)))); diff != "" {
		t.Errorf("%s: runbook anchors (-want, +got):\n%s", PrometheusRuleFile, diff)
	}
}

func TestAlertThresholds(t *testing.T) {
	md, err := os.ReadFile(filepath.Join(root, monitoringDoc))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string(nil), checkThresholds(readRules(t), string(md))); diff != "" {
		t.Errorf("%s: the threshold table of %s (-want, +got):\n%s", PrometheusRuleFile, monitoringDoc, diff)
	}
}

func TestCheckThresholdsCatchesDrift(t *testing.T) {
	r, err := ParseRules([]byte("apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {name: x}\nspec:\n  groups:\n" +
		"  - name: g\n    rules:\n    - {record: r, expr: up}\n    - {alert: A, expr: up == 0, for: 15m, labels: {severity: critical}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		reason string
		md     string
		want   []string
	}{
		"Good": {reason: "A row with the alert's severity, for and path passes.",
			md: "| [`A`](#a) | critical | `15m` | `/spec/groups/0/rules/1/for` |\n"},
		"NoRow": {reason: "An alert the table does not list is caught.",
			md:   "| [`B`](#b) | critical | `15m` | `/spec/groups/0/rules/1/for` |\n",
			want: []string{"A: no row in the threshold table of docs/monitoring.md"}},
		"WrongPath": {reason: "A row whose path points at another rule (one moved in the file) is caught.",
			md:   "| [`A`](#a) | critical | `15m` | `/spec/groups/0/rules/0/for` |\n",
			want: []string{`A: its row in docs/monitoring.md ends "| [` + "`A`" + `](#a) | critical | ` + "`15m`" + ` | ` + "`/spec/groups/0/rules/0/for`" + ` |": want "| critical | ` + "`15m`" + ` | ` + "`/spec/groups/0/rules/1/for`" + ` |"`}},
		"WrongFor": {reason: "A row that says another threshold is caught.",
			md:   "| [`A`](#a) | critical | `10m` | `/spec/groups/0/rules/1/for` |\n",
			want: []string{`A: its row in docs/monitoring.md ends "| [` + "`A`" + `](#a) | critical | ` + "`10m`" + ` | ` + "`/spec/groups/0/rules/1/for`" + ` |": want "| critical | ` + "`15m`" + ` | ` + "`/spec/groups/0/rules/1/for`" + ` |"`}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, checkThresholds(r, tc.md), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\ncheckThresholds: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestAlertCoverage(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "rules", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p) //nolint:gosec // The package's own test data.
		if err != nil {
			t.Fatal(err)
		}
		files[p] = b
	}
	if diff := cmp.Diff([]string(nil), checkCoverage(readRules(t).Alerts(), files)); diff != "" {
		t.Errorf("%s: promtool cases in testdata/rules (-want, +got):\n%s", PrometheusRuleFile, diff)
	}
}

func TestAlertLabelValues(t *testing.T) {
	if diff := cmp.Diff([]string(nil), checkLabelValues(exprs(readRules(t).Alerts()), knownLabelValues)); diff != "" {
		t.Errorf("%s: label values the series cannot have (-want, +got):\n%s", PrometheusRuleFile, diff)
	}
}

func TestAlertMetrics(t *testing.T) {
	if diff := cmp.Diff([]string(nil), UnknownMetrics(exprs(readRules(t).Alerts()), knownMetrics(t))); diff != "" {
		t.Errorf("%s: metrics neither kube-state-metrics (%s) nor ExternalMetrics define (-want, +got):\n%s", PrometheusRuleFile, KubeStateMetricsConfig, diff)
	}
}

// Each check of the rules catches what it is for.
func TestRulesCheckersCatchBreakage(t *testing.T) {
	good := func() Alert {
		return Alert{
			Name: "FleetNodePoolUnavailable", For: 15 * time.Minute,
			Expr:   `max by (namespace, name, cluster_name) (fleetnodepool_status_condition{type="PoolAvailable",status="False"}) == 1`,
			Labels: map[string]string{"severity": "critical"},
			Annotations: map[string]string{
				"summary": "s", "description": "d", "runbook_url": runbookBase + "fleetnodepoolunavailable",
			},
		}
	}
	anchors := githubAnchors("# Monitoring\n\n```\n# not-a-heading\n```\n\n### FleetNodePoolUnavailable\n")
	known := knownMetrics(t)
	const fires = "rule_files: [rules.yaml]\ntests:\n- alert_rule_test:\n  - alertname: FleetNodePoolUnavailable\n    exp_alerts: [{exp_labels: {severity: critical}}]\n"
	const quiet = "rule_files: [rules.yaml]\ntests:\n- alert_rule_test:\n  - alertname: FleetNodePoolUnavailable\n    exp_alerts: []\n"
	goodFiles := map[string][]byte{"a.yaml": []byte(fires), "b.yaml": []byte(quiet)}
	check := func(a Alert, files map[string][]byte) []string {
		alerts := []Alert{a}
		bad := checkAlerts(alerts)
		bad = append(bad, checkRunbooks(alerts, anchors)...)
		bad = append(bad, checkCoverage(alerts, files)...)
		bad = append(bad, checkLabelValues(exprs(alerts), knownLabelValues)...)
		bad = append(bad, UnknownMetrics(exprs(alerts), known)...)
		slices.Sort(bad)
		return bad
	}
	cases := map[string]struct {
		reason string
		edit   func(a *Alert)
		files  map[string][]byte
		want   []string
	}{
		"Good": {reason: "A complete, covered alert on known series passes every check.", edit: func(*Alert) {}},
		"Severity": {reason: "An alert without a known severity is caught.",
			edit: func(a *Alert) { a.Labels["severity"] = "page" },
			want: []string{`FleetNodePoolUnavailable: severity "page" is not one of critical, warning, info`}},
		"Annotations": {reason: "An alert without a summary is caught.",
			edit: func(a *Alert) { delete(a.Annotations, "summary") },
			want: []string{"FleetNodePoolUnavailable: no annotation summary"}},
		"For": {reason: "An alert without a threshold is caught.",
			edit: func(a *Alert) { a.For = 0 },
			want: []string{"FleetNodePoolUnavailable: no for: its threshold"}},
		"WrongAnchor": {reason: "A runbook_url whose anchor is no heading of docs/monitoring.md is caught.",
			edit: func(a *Alert) { a.Annotations["runbook_url"] = runbookBase + "fleetnodepool-unavailable" },
			want: []string{`FleetNodePoolUnavailable: runbook_url ` + runbookBase + `fleetnodepool-unavailable: docs/monitoring.md has no heading with anchor "fleetnodepool-unavailable"`}},
		"HeadingInCode": {reason: "A # line in fenced code is no heading.",
			edit: func(a *Alert) { a.Annotations["runbook_url"] = runbookBase + "not-a-heading" },
			want: []string{`FleetNodePoolUnavailable: runbook_url ` + runbookBase + `not-a-heading: docs/monitoring.md has no heading with anchor "not-a-heading"`}},
		"RunbookElsewhere": {reason: "A runbook_url outside docs/monitoring.md is caught.",
			edit: func(a *Alert) { a.Annotations["runbook_url"] = "https://example.com/#fleetnodepoolunavailable" },
			want: []string{"FleetNodePoolUnavailable: runbook_url https://example.com/#fleetnodepoolunavailable is not a section of " + runbookBase}},
		"UnknownType": {reason: "A condition type the function does not set is caught.",
			edit: func(a *Alert) { a.Expr = `fleetnodepool_status_condition{type="Available",status="False"} == 1` },
			want: []string{`fleetnodepool_status_condition{type="Available"}: "Available" is not one of ` + strings.Join(conditionTypes, ", ")}},
		"UnknownReason": {reason: "A rollout reason fn/plan does not have is caught.",
			edit: func(a *Alert) { a.Expr = `count(fleetnodepool_status_rollout_info{reason="Halt"}) > 0` },
			want: []string{`fleetnodepool_status_rollout_info{reason="Halt"}: "Halt" is not one of ` + strings.Join(holdReasons, ", ")}},
		"UnknownStatus": {reason: "A condition status other than True, False, Unknown is caught.",
			edit: func(a *Alert) { a.Expr = `fleetnodepool_status_condition{type="PoolAvailable",status="false"} == 1` },
			want: []string{`fleetnodepool_status_condition{status="false"}: "false" is not one of True, False, Unknown`}},
		"UnknownMetric": {reason: "A metric no source defines is caught.",
			edit: func(a *Alert) { a.Expr = `rate(function_run_function_errors_total[5m]) > 0` },
			want: []string{`function_run_function_errors_total (in rate(function_run_function_errors_total[5m]) > 0)`}},
		"NoQuietCase": {reason: "An alert without a case in which it does not fire is caught.",
			edit:  func(*Alert) {},
			files: map[string][]byte{"a.yaml": []byte(fires)},
			want:  []string{"FleetNodePoolUnavailable: no promtool case in which it does not fire"}},
		"NoFiringCase": {reason: "An alert without a case in which it fires is caught.",
			edit:  func(*Alert) {},
			files: map[string][]byte{"b.yaml": []byte(quiet)},
			want:  []string{"FleetNodePoolUnavailable: no promtool case in which it fires"}},
		"CaseOfNoAlert": {reason: "A case of an alert the rules do not have is caught.",
			edit: func(*Alert) {},
			files: map[string][]byte{"a.yaml": []byte(fires), "b.yaml": []byte(quiet),
				"c.yaml": []byte(strings.ReplaceAll(quiet, "FleetNodePoolUnavailable", "FleetNodePoolUnavailabe"))},
			want: []string{`c.yaml: test "": no alert FleetNodePoolUnavailabe`}},
		"RuleFiles": {reason: "A test file that does not load the rendered rules is caught.",
			edit: func(*Alert) {},
			files: map[string][]byte{"a.yaml": []byte(fires),
				"b.yaml": []byte(strings.ReplaceAll(quiet, "[rules.yaml]", "[prometheusrule.yaml]"))},
			want: []string{"b.yaml: rule_files [prometheusrule.yaml]: want [rules.yaml]"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			a := good()
			tc.edit(&a)
			files := tc.files
			if files == nil {
				files = goodFiles
			}
			if diff := cmp.Diff(tc.want, check(a, files), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\nchecks: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestGitHubAnchors(t *testing.T) {
	md := "# Monitoring FleetNodePools\n## Load the rules: `PrometheusRule`\n### Install (kube-state-metrics)\n" +
		"## Alerts\n## Alerts\n### [FleetNodePoolUnavailable](x.md) ###\n#NotAHeading\n"
	want := map[string]bool{
		"monitoring-fleetnodepools": true, "load-the-rules-prometheusrule": true, "install-kube-state-metrics": true,
		"alerts": true, "alerts-1": true, "fleetnodepoolunavailable": true,
	}
	if diff := cmp.Diff(want, githubAnchors(md)); diff != "" {
		t.Errorf("githubAnchors: -want, +got:\n%s", diff)
	}
}

func TestWithFor(t *testing.T) {
	r := readRules(t)
	cases := map[string]struct {
		reason    string
		overrides map[string]time.Duration
		want      map[string]time.Duration // the alerts' for after, those named
		wantErr   string
	}{
		"Shorten": {reason: "The named alerts' for is replaced.",
			overrides: map[string]time.Duration{"FleetNodePoolUnavailable": time.Minute, "FleetNodePoolRolloutsPaused": 90 * time.Second},
			want:      map[string]time.Duration{"FleetNodePoolUnavailable": time.Minute, "FleetNodePoolRolloutsPaused": 90 * time.Second, "FleetNodePoolChangeRefused": 15 * time.Minute}},
		"Unknown": {reason: "A name no alert has is an error naming it.",
			overrides: map[string]time.Duration{"FleetNodePoolUnavailabe": time.Minute, "FleetNodePoolUnavailable": time.Minute, "Nope": time.Minute},
			wantErr:   "cannot override the for of FleetNodePoolUnavailabe, Nope: no such alert"},
		"Negative": {reason: "A negative for is an error.",
			overrides: map[string]time.Duration{"FleetNodePoolUnavailable": -time.Minute},
			wantErr:   "cannot override the for of FleetNodePoolUnavailable: -1m0s is negative"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := r.WithFor(tc.overrides)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("%s\nWithFor(...): error %v, want %q", tc.reason, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s\nWithFor(...): %v", tc.reason, err)
			}
			fors := map[string]time.Duration{}
			for _, a := range got.Alerts() {
				if _, ok := tc.want[a.Name]; ok {
					fors[a.Name] = a.For
				}
			}
			if diff := cmp.Diff(tc.want, fors); diff != "" {
				t.Errorf("%s\nWithFor(...).Alerts(): -want, +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(readRules(t), r); diff != "" {
				t.Errorf("%s\nWithFor changed the rules it copies: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestPrometheusFile(t *testing.T) {
	r := readRules(t)
	b, err := r.PrometheusFile()
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []RuleGroup `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		t.Fatalf("PrometheusFile: not a rule file (groups only): %v\n%s", err, b)
	}
	if diff := cmp.Diff(r.Spec.Groups, f.Groups); diff != "" {
		t.Errorf("PrometheusFile: the groups read back: -want, +got:\n%s", diff)
	}
}

func TestParseRules(t *testing.T) {
	const head = "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {name: x}\nspec:\n  groups:\n  - name: g\n    rules:\n"
	cases := map[string]struct {
		reason string
		in     string
		want   string // a part of the error; "" for none
	}{
		"Good":     {reason: "An alert parses.", in: head + "    - {alert: A, expr: up == 0, for: 5m}\n"},
		"Misspelt": {reason: "A misspelt field is an error, not an alert without a threshold.", in: head + "    - {alert: A, expr: up == 0, fro: 5m}\n", want: `unknown field "fro"`},
		"Kind":     {reason: "Another kind is an error.", in: strings.Replace(head, "PrometheusRule", "ServiceMonitor", 1), want: "want apiVersion monitoring.coreos.com/v1, kind PrometheusRule"},
		"Both":     {reason: "A rule that is an alert and a record is an error.", in: head + "    - {alert: A, record: r, expr: up}\n", want: "want one of alert and record"},
		"NoExpr":   {reason: "A rule without an expression is an error.", in: head + "    - {alert: A}\n", want: "no expr"},
		"For":      {reason: "A for Prometheus cannot parse is an error.", in: head + "    - {alert: A, expr: up == 0, for: 15 minutes}\n", want: `cannot parse for "15 minutes"`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParseRules([]byte(tc.in))
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("%s\nParseRules: %v", tc.reason, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("%s\nParseRules: error %v, want one containing %q", tc.reason, err, tc.want)
			}
		})
	}
}
