package monitoring

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/compose"
	"github.com/fleetnodepool/function-fleetnodepool/fn/plan"
)

// The checks of this file are shared by the dashboard's tests (here, in
// every `go test ./...`) and the alerting rules' (rules_test.go, build tag
// rules).

// A labelValues rule: in a selector of one of the metrics, the matchers of
// the label may only name these values.
type labelValues struct {
	metrics []string
	label   string
	values  []string
}

var (
	// The FleetNodePool's conditions: the function's (fn/compose) and
	// Crossplane's.
	conditionTypes = []string{
		compose.TypePoolAvailable, compose.TypeRolloutInProgress, compose.TypeUpgradePending,
		compose.TypeRolloutHeld, compose.TypeChangeRefused, compose.TypeScaleFromZero,
		string(xpv2.TypeReady), string(xpv2.TypeSynced),
	}
	// Why a disruptive change waits: status.rollout.reason, and the
	// RolloutHeld condition's reason (fn/plan gate.go, wave.go).
	holdReasons = []string{
		plan.HoldControlPlane, plan.HoldPaused, plan.HoldDeferred, plan.HoldAwaitingApproval, plan.HoldHalted,
		plan.HoldWave, plan.HoldSoak, plan.HoldMaintenanceWindow, plan.HoldConcurrency, plan.HoldSequence,
	}
	// The reasons of the function's conditions a matcher may name: the hold
	// reasons, UpgradePending's (fn/plan upgrade.go), ChangeRefused's
	// (fn/plan lifecycle.go) and PoolAvailable's ClusterNotFound.
	conditionReasons = append(slices.Clone(holdReasons),
		plan.ReasonWaitingForControlPlane, plan.ReasonControlPlaneVersionUnknown, plan.ReasonVersionUnreadable,
		plan.ReasonBackingReplaced, plan.ReasonClusterChanged, plan.ReasonProviderChanged,
		compose.ReasonClusterNotFound,
		plan.ReasonCapacityDeclared, plan.ReasonProviderCapacity, plan.ReasonNotScaledToZero, plan.ReasonExternalAutoscaler,
		plan.ReasonCapacityUnknown)
	rolloutStates = []string{string(v1alpha1.RolloutUpToDate), string(v1alpha1.RolloutRollingOut), string(v1alpha1.RolloutHeld)}
	// Cluster API v1beta2 MachineDeployment conditions.
	machineDeploymentConditions = []string{
		clusterv1.MachineDeploymentAvailableCondition, clusterv1.MachineDeploymentMachinesReadyCondition,
		clusterv1.MachineDeploymentMachinesUpToDateCondition, clusterv1.MachineDeploymentRollingOutCondition,
		clusterv1.MachineDeploymentScalingUpCondition, clusterv1.MachineDeploymentScalingDownCondition,
		clusterv1.MachineDeploymentRemediatingCondition, clusterv1.MachineDeploymentDeletingCondition,
		clusterv1.PausedCondition,
	}
	conditionStatuses = []string{"True", "False", "Unknown"}
	// The reasons the function counts fatal results and refused changes
	// under (fn/compose fatal.go, metrics.go).
	fatalReasons = []string{
		compose.FatalInvalidPool, compose.FatalInvalidPolicy, compose.FatalClusterNotFound,
		compose.FatalUnsupportedCrossplane, compose.FatalInvalidRequest, compose.FatalInternalError,
	}
	refusalReasons = []string{plan.ReasonBackingReplaced, plan.ReasonClusterChanged, plan.ReasonProviderChanged}
)

var knownLabelValues = []labelValues{
	{metrics: []string{"fleetnodepool_status_condition", "fleetnodepool_status_condition_last_transition_time"}, label: "type", values: conditionTypes},
	{metrics: []string{"fleetnodepool_status_condition"}, label: "reason", values: conditionReasons},
	{metrics: []string{"fleetnodepool_status_rollout_info"}, label: "reason", values: holdReasons},
	{metrics: []string{"fleetnodepool_status_rollout_info", "fleetnodepool_status_rollout_state"}, label: "state", values: rolloutStates},
	{metrics: []string{"capi_v1beta2_machinedeployment_status_condition", "capi_v1beta2_machinedeployment_status_condition_last_transition_time"}, label: "type", values: machineDeploymentConditions},
	{metrics: []string{"function_fleetnodepool_fatal_results_total"}, label: "reason", values: fatalReasons},
	{metrics: []string{"function_fleetnodepool_changes_refused_total"}, label: "reason", values: refusalReasons},
	{metrics: []string{"function_fleetnodepool_events_total"}, label: "reason", values: plan.EventReasons()},
	{metrics: []string{
		"fleetnodepool_status_condition", "fleetnodepool_status_condition_last_transition_time",
		"capi_v1beta2_machinedeployment_status_condition", "capi_v1beta2_machinedeployment_status_condition_last_transition_time",
	}, label: "status", values: conditionStatuses},
}

// literalAlternation is a regex value that is only names joined by |.
var literalAlternation = regexp.MustCompile(`^[A-Za-z0-9_]+(\|[A-Za-z0-9_]+)*$`)

// checkLabelValues is every matcher of the expressions that names a value
// a label of its metric cannot have (a condition type, a hold reason, a
// rollout state, a condition status), as "metric{label op value}: why".
// Regex matchers are checked when they are names joined by |; the empty
// value (no such label) is always allowed.
func checkLabelValues(exprs []string, rules []labelValues) []string {
	var bad []string
	for _, e := range exprs {
		sels, err := Selectors(e)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%v (in %s)", err, oneLine(e)))
			continue
		}
		for _, s := range sels {
			for _, m := range s.Matchers {
				vals := []string{m.Value}
				if m.Op == "=~" || m.Op == "!~" {
					if !literalAlternation.MatchString(m.Value) {
						continue
					}
					vals = strings.Split(m.Value, "|")
				}
				for _, r := range rules {
					if r.label != m.Label || !slices.Contains(r.metrics, s.Metric) {
						continue
					}
					for _, v := range vals {
						if v != "" && !slices.Contains(r.values, v) {
							bad = append(bad, fmt.Sprintf("%s{%s%s%q}: %q is not one of %s", s.Metric, m.Label, m.Op, m.Value, v, strings.Join(r.values, ", ")))
						}
					}
				}
			}
		}
	}
	slices.Sort(bad)
	return slices.Compact(bad)
}

func knownMetrics(t *testing.T) map[string]string {
	t.Helper()
	known, err := KnownMetrics(root)
	if err != nil {
		t.Fatal(err)
	}
	return known
}

func readDashboard(t *testing.T) *Dashboard {
	t.Helper()
	d, err := ReadDashboard(root)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// checkPanels is every panel without an id (or with one another panel
// has), a title or a gridPos, and every panel but a row without the
// ${datasource} data source (on the panel or on each of its targets) or
// without a target with an expression.
func checkPanels(d *Dashboard) []string {
	var bad []string
	ids := map[int]string{}
	usesVar := func(ds *DatasourceRef) bool { return ds != nil && ds.UID == "${datasource}" }
	for i, p := range d.AllPanels() {
		name := fmt.Sprintf("panel %d (id %d, %q)", i, p.ID, p.Title)
		switch other, dup := ids[p.ID]; {
		case p.ID == 0:
			bad = append(bad, name+": no id")
		case dup:
			bad = append(bad, fmt.Sprintf("%s: id %d is %q's too", name, p.ID, other))
		default:
			ids[p.ID] = p.Title
		}
		if p.Title == "" {
			bad = append(bad, name+": no title")
		}
		if p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 {
			bad = append(bad, name+": no gridPos")
		}
		if p.Type == "row" {
			continue
		}
		exprs := 0
		for _, t := range p.Targets {
			if strings.TrimSpace(t.Expr) != "" {
				exprs++
			}
			if !usesVar(p.Datasource) && !usesVar(t.Datasource) {
				bad = append(bad, fmt.Sprintf("%s: target %s does not query ${datasource}", name, t.RefID))
			}
		}
		if !usesVar(p.Datasource) {
			bad = append(bad, name+": its datasource is not ${datasource}")
		}
		if exprs == 0 {
			bad = append(bad, name+": no target with an expr")
		}
	}
	return bad
}

// checkVariables is every template variable a query (a panel's, or a
// variable's own) uses that the dashboard does not define and Grafana
// does not provide, and every use of one outside a regex matcher's value
// (`=~"$namespace"`): there Substitute's `.*` is what Grafana sends with
// every value selected.
func checkVariables(d *Dashboard) []string {
	defined := map[string]bool{}
	for _, v := range d.Templating.List {
		defined[v.Name] = true
	}
	inRegex := regexp.MustCompile(`=~"[^"]*$`)
	var bad []string
	check := func(where, q string) {
		for _, loc := range TemplateVarRE.FindAllStringIndex(q, -1) {
			name := TemplateVarName(q[loc[0]:loc[1]])
			_, builtin := BuiltinVariables[name]
			switch {
			case builtin:
			case !defined[name]:
				bad = append(bad, fmt.Sprintf("%s: $%s is not a variable of the dashboard", where, name))
			case !inRegex.MatchString(q[:loc[0]]):
				bad = append(bad, fmt.Sprintf("%s: $%s is used outside a =~ matcher", where, name))
			}
		}
	}
	for _, p := range d.AllPanels() {
		for _, t := range p.Targets {
			check(fmt.Sprintf("panel %d %q target %s", p.ID, p.Title, t.RefID), t.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			check("variable "+v.Name, v.VariableQuery())
		}
	}
	slices.Sort(bad)
	return bad
}

// labelValuesQuery is Grafana's label_values(selector, label).
var labelValuesQuery = regexp.MustCompile(`^\s*label_values\(\s*(.*)\s*,\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$`)

// variableSelectors are the PromQL selectors of the dashboard's query
// variables (label_values(selector, label)), and the queries that are not
// of that form.
func variableSelectors(d *Dashboard) (sels, bad []string) {
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValuesQuery.FindStringSubmatch(v.VariableQuery())
		if m == nil {
			bad = append(bad, fmt.Sprintf("variable %s: %q is not label_values(selector, label)", v.Name, v.VariableQuery()))
			continue
		}
		sels = append(sels, m[1])
	}
	return sels, bad
}

func TestDashboardPanels(t *testing.T) {
	d := readDashboard(t)
	if d.SchemaVersion < 36 {
		t.Errorf("%s: schemaVersion %d: want 36 or later (data source references by uid)", GrafanaDashboardFile, d.SchemaVersion)
	}
	if d.Title == "" || d.UID == "" {
		t.Errorf("%s: title %q, uid %q: want both", GrafanaDashboardFile, d.Title, d.UID)
	}
	if diff := cmp.Diff([]string(nil), checkPanels(d)); diff != "" {
		t.Errorf("%s: panels (-want, +got):\n%s", GrafanaDashboardFile, diff)
	}
}

func TestDashboardVariables(t *testing.T) {
	d := readDashboard(t)
	got := map[string]Variable{}
	for _, v := range d.Templating.List {
		got[v.Name] = v
	}
	ds, ok := got["datasource"]
	if !ok || ds.Type != "datasource" || ds.Query != "prometheus" {
		t.Errorf("%s: want a variable datasource of type datasource, query prometheus; got %+v", GrafanaDashboardFile, ds)
	}
	for _, name := range []string{"namespace", "cluster", "pool"} {
		v, ok := got[name]
		if !ok {
			t.Errorf("%s: no variable %s", GrafanaDashboardFile, name)
			continue
		}
		if !strings.Contains(v.VariableQuery(), "fleetnodepool_info") || v.Datasource == nil || v.Datasource.UID != "${datasource}" || !v.IncludeAll || v.AllValue != ".*" {
			t.Errorf("%s: variable %s: want label_values on fleetnodepool_info from ${datasource}, with All meaning .*; got %+v", GrafanaDashboardFile, name, v)
		}
	}
	if diff := cmp.Diff([]string(nil), checkVariables(d)); diff != "" {
		t.Errorf("%s: template variables (-want, +got):\n%s", GrafanaDashboardFile, diff)
	}
}

func TestDashboardMetrics(t *testing.T) {
	d := readDashboard(t)
	sels, bad := variableSelectors(d)
	if diff := cmp.Diff([]string(nil), bad); diff != "" {
		t.Errorf("%s: variable queries (-want, +got):\n%s", GrafanaDashboardFile, diff)
	}
	exprs := append(d.Exprs(), sels...)
	if diff := cmp.Diff([]string(nil), UnknownMetrics(exprs, knownMetrics(t))); diff != "" {
		t.Errorf("%s: metrics neither kube-state-metrics (%s) nor ExternalMetrics define (-want, +got):\n%s", GrafanaDashboardFile, KubeStateMetricsConfig, diff)
	}
	if diff := cmp.Diff([]string(nil), checkLabelValues(exprs, knownLabelValues)); diff != "" {
		t.Errorf("%s: label values the series cannot have (-want, +got):\n%s", GrafanaDashboardFile, diff)
	}
}

func TestDashboardQueries(t *testing.T) {
	qs, err := DashboardQueries(root)
	if err != nil {
		t.Fatal(err)
	}
	d := readDashboard(t)
	if len(qs) != len(d.Exprs()) || len(qs) == 0 {
		t.Fatalf("DashboardQueries: %d queries for %d expressions", len(qs), len(d.Exprs()))
	}
	for _, q := range qs {
		if TemplateVarRE.MatchString(q) {
			t.Errorf("DashboardQueries: a template variable is left in %s", q)
		}
		if _, err := Selectors(q); err != nil {
			t.Errorf("DashboardQueries: %v in %s", err, q)
		}
	}
}

func TestSubstitute(t *testing.T) {
	cases := map[string]struct {
		reason string
		expr   string
		want   string
	}{
		"Variables": {reason: "The dashboard's variables select everything, in each of Grafana's syntaxes.",
			expr: `x{namespace=~"$namespace",cluster_name=~"${cluster}",name=~"${pool:regex}",b=~"[[pool]]"}`,
			want: `x{namespace=~".*",cluster_name=~".*",name=~".*",b=~".*"}`},
		"Builtins": {reason: "Grafana's own interval variables become durations.",
			expr: `rate(x[$__rate_interval]) + rate(y[${__interval}])`,
			want: `rate(x[5m]) + rate(y[1m])`},
		"Plain": {reason: "A query without variables is unchanged.", expr: `sum(x)`, want: `sum(x)`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Substitute(tc.expr)); diff != "" {
				t.Errorf("%s\nSubstitute(%q): -want, +got:\n%s", tc.reason, tc.expr, diff)
			}
		})
	}
}

func TestSelectors(t *testing.T) {
	cases := map[string]struct {
		reason  string
		expr    string
		want    []Selector
		wantErr bool
	}{
		"Bare": {reason: "A bare metric name is a selector.",
			expr: `fleetnodepool_info`, want: []Selector{{Metric: "fleetnodepool_info"}}},
		"Matchers": {reason: "Every matcher operator, and single-quoted, double-quoted and raw values.",
			expr: `m{a="x", b!='y', c=~"p|q", d!~` + "`z.*`" + `}`,
			want: []Selector{{Metric: "m", Matchers: []Matcher{{"a", "=", "x"}, {"b", "!=", "y"}, {"c", "=~", "p|q"}, {"d", "!~", "z.*"}}}}},
		"Aggregation": {reason: "Aggregations, their by clause before or after, and functions are no metrics.",
			expr: `max by (namespace, name) (fleetnodepool_status_condition{type="PoolAvailable"}) == 1 or sum(rate(x_total[5m])) without (pod)`,
			want: []Selector{{Metric: "fleetnodepool_status_condition", Matchers: []Matcher{{"type", "=", "PoolAvailable"}}}, {Metric: "x_total"}}},
		"VectorMatching": {reason: "The label lists of on, ignoring, group_left and group_right are no metrics; bool is a keyword.",
			expr: `a > bool on (namespace, name) group_left (wave, version) b * ignoring(pod) group_right c`,
			want: []Selector{{Metric: "a"}, {Metric: "b"}, {Metric: "c"}}},
		"Strings": {reason: "Braces and names in strings (label_replace) are skipped.",
			expr: `label_replace(up{job="a{b}"}, "dst", "$1", "src", "(.*) {x}")`,
			want: []Selector{{Metric: "up", Matchers: []Matcher{{"job", "=", "a{b}"}}}}},
		"Durations": {reason: "Ranges, subqueries, offsets and Grafana's interval variables are skipped.",
			expr: `rate(a[$__rate_interval]) + max_over_time(b[1h:5m] offset 1d) + c @ 1609746000`,
			want: []Selector{{Metric: "a"}, {Metric: "b"}, {Metric: "c"}}},
		"Numbers": {reason: "Numbers, Inf and NaN are no metrics; keywords are case-insensitive.",
			expr: `histogram_quantile(0.99, x_bucket) > 1e3 AND y < Inf OR z != NaN unless w > 0x1f`,
			want: []Selector{{Metric: "x_bucket"}, {Metric: "y"}, {Metric: "z"}, {Metric: "w"}}},
		"ByName": {reason: "A selector by __name__, or by a quoted name, names its metric; one by labels only has none.",
			expr: `{__name__="a", job="j"} + {"b.c"} + {job="k"}`,
			want: []Selector{
				{Metric: "a", Matchers: []Matcher{{"__name__", "=", "a"}, {"job", "=", "j"}}},
				{Metric: "b.c"},
				{Matchers: []Matcher{{"job", "=", "k"}}},
			}},
		"Comments": {reason: "Comments are skipped.",
			expr: "a # b{c=\"d\"}\n+ e", want: []Selector{{Metric: "a"}, {Metric: "e"}}},
		"Colons": {reason: "Recording rule names have colons.",
			expr: `job:rate5m:sum`, want: []Selector{{Metric: "job:rate5m:sum"}}},
		"UnterminatedString": {reason: "An unterminated string is an error.", expr: `a{b="c}`, wantErr: true},
		"UnterminatedBrace":  {reason: "An unterminated brace is an error.", expr: `a{b="c"`, wantErr: true},
		"UnterminatedRange":  {reason: "An unterminated range is an error.", expr: `rate(a[5m)`, wantErr: true},
		"BadMatcher":         {reason: "A matcher without an operator is an error.", expr: `a{b}`, wantErr: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := Selectors(tc.expr)
			if (err != nil) != tc.wantErr {
				t.Fatalf("%s\nSelectors(%q): error %v, want error %t", tc.reason, tc.expr, err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\nSelectors(%q): -want, +got:\n%s", tc.reason, tc.expr, diff)
			}
		})
	}
}

func TestDurations(t *testing.T) {
	cases := map[string]struct {
		reason string
		in     string
		d      string // what it parses to, as Go writes it
		out    string // how FormatDuration writes it back
		err    bool
	}{
		"Minutes":  {reason: "A plain duration.", in: "15m", d: "15m0s", out: "15m"},
		"Compound": {reason: "Units largest first.", in: "1h30m", d: "1h30m0s", out: "1h30m"},
		"Days":     {reason: "24h is a day, as Prometheus writes it.", in: "24h", d: "24h0m0s", out: "1d"},
		"Weeks":    {reason: "Weeks and milliseconds.", in: "1w2d500ms", d: "216h0m0.5s", out: "1w2d500ms"},
		"Zero":     {reason: "0 is a duration.", in: "0", d: "0s", out: "0s"},
		"Empty":    {reason: "No for is 0.", in: "", d: "0s", out: "0s"},
		"Order":    {reason: "Units out of order are not a Prometheus duration.", in: "30m1h", err: true},
		"Go":       {reason: "Go's fractions are not either.", in: "1.5h", err: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			d, err := ParseDuration(tc.in)
			if (err != nil) != tc.err {
				t.Fatalf("%s\nParseDuration(%q): error %v, want error %t", tc.reason, tc.in, err, tc.err)
			}
			if tc.err {
				return
			}
			if diff := cmp.Diff(tc.d, d.String()); diff != "" {
				t.Errorf("%s\nParseDuration(%q): -want, +got:\n%s", tc.reason, tc.in, diff)
			}
			if diff := cmp.Diff(tc.out, FormatDuration(d)); diff != "" {
				t.Errorf("%s\nFormatDuration(%v): -want, +got:\n%s", tc.reason, d, diff)
			}
		})
	}
}

// Each check of the dashboard catches what it is for.
func TestDashboardCheckersCatchBreakage(t *testing.T) {
	ds := &DatasourceRef{Type: "prometheus", UID: "${datasource}"}
	grid := &GridPos{H: 8, W: 12}
	good := func() *Dashboard {
		d := &Dashboard{Panels: []Panel{
			{ID: 1, Type: "row", Title: "Fleet", GridPos: grid},
			{ID: 2, Type: "stat", Title: "Pools", GridPos: grid, Datasource: ds, Targets: []Target{{RefID: "A", Expr: `count(fleetnodepool_info{namespace=~"$namespace"})`}}},
		}}
		d.Templating.List = []Variable{{Name: "datasource", Type: "datasource"}, {Name: "namespace", Type: "query", Query: "label_values(fleetnodepool_info, namespace)"}}
		return d
	}
	known := knownMetrics(t)
	check := func(d *Dashboard) []string {
		sels, bad := variableSelectors(d)
		bad = append(bad, checkPanels(d)...)
		bad = append(bad, checkVariables(d)...)
		exprs := append(d.Exprs(), sels...)
		bad = append(bad, UnknownMetrics(exprs, known)...)
		bad = append(bad, checkLabelValues(exprs, knownLabelValues)...)
		slices.Sort(bad)
		return bad
	}
	cases := map[string]struct {
		reason string
		edit   func(d *Dashboard)
		want   []string
	}{
		"Good": {reason: "A well-formed dashboard passes every check.", edit: func(*Dashboard) {}},
		"DuplicateID": {reason: "Two panels with one id are caught.",
			edit: func(d *Dashboard) { d.Panels[1].ID = 1 },
			want: []string{`panel 1 (id 1, "Pools"): id 1 is "Fleet"'s too`}},
		"NoGridPos": {reason: "A panel without a gridPos is caught.",
			edit: func(d *Dashboard) { d.Panels[1].GridPos = nil },
			want: []string{`panel 1 (id 2, "Pools"): no gridPos`}},
		"Datasource": {reason: "A panel querying a fixed data source is caught.",
			edit: func(d *Dashboard) { d.Panels[1].Datasource = &DatasourceRef{Type: "prometheus", UID: "prom-1"} },
			want: []string{`panel 1 (id 2, "Pools"): its datasource is not ${datasource}`, `panel 1 (id 2, "Pools"): target A does not query ${datasource}`}},
		"NoExpr": {reason: "A panel without a query is caught.",
			edit: func(d *Dashboard) { d.Panels[1].Targets = nil },
			want: []string{`panel 1 (id 2, "Pools"): no target with an expr`}},
		"UndefinedVariable": {reason: "A variable the dashboard does not define is caught.",
			edit: func(d *Dashboard) {
				d.Panels[1].Targets[0].Expr = `count(fleetnodepool_info{cluster_name=~"$cluster"})`
			},
			want: []string{`panel 2 "Pools" target A: $cluster is not a variable of the dashboard`}},
		"VariableOutsideRegex": {reason: "A variable in an equality matcher would not select All's .*: caught.",
			edit: func(d *Dashboard) { d.Panels[1].Targets[0].Expr = `count(fleetnodepool_info{namespace="$namespace"})` },
			want: []string{`panel 2 "Pools" target A: $namespace is used outside a =~ matcher`}},
		"UnknownMetric": {reason: "A metric kube-state-metrics does not export is caught.",
			edit: func(d *Dashboard) {
				d.Panels[1].Targets[0].Expr = `count(fleetnodepool_infos{namespace=~"$namespace"})`
			},
			want: []string{`fleetnodepool_infos (in count(fleetnodepool_infos{namespace=~"$namespace"}))`}},
		"UnknownMetricInVariable": {reason: "A variable's query is checked too.",
			edit: func(d *Dashboard) { d.Templating.List[1].Query = "label_values(fleetnodepool_infos, namespace)" },
			want: []string{`fleetnodepool_infos (in fleetnodepool_infos)`}},
		"VariableQuery": {reason: "A variable query that is not label_values(selector, label) is caught.",
			edit: func(d *Dashboard) { d.Templating.List[1].Query = "query_result(up)" },
			want: []string{`variable namespace: "query_result(up)" is not label_values(selector, label)`}},
		"UnknownConditionType": {reason: "A condition type the function does not set is caught.",
			edit: func(d *Dashboard) {
				d.Panels[1].Targets[0].Expr = `count(fleetnodepool_status_condition{type="PoolAvailabe",status="False"} == 1)`
			},
			want: []string{`fleetnodepool_status_condition{type="PoolAvailabe"}: "PoolAvailabe" is not one of ` + strings.Join(conditionTypes, ", ")}},
		"UnknownHoldReason": {reason: "A hold reason fn/plan does not have is caught, in a regex alternation too.",
			edit: func(d *Dashboard) {
				d.Panels[1].Targets[0].Expr = `count(fleetnodepool_status_rollout_info{reason=~"Paused|Halt"})`
			},
			want: []string{`fleetnodepool_status_rollout_info{reason=~"Paused|Halt"}: "Halt" is not one of ` + strings.Join(holdReasons, ", ")}},
		"UnknownState": {reason: "A rollout state the API does not have is caught.",
			edit: func(d *Dashboard) {
				d.Panels[1].Targets[0].Expr = `sum(fleetnodepool_status_rollout_state{state="Rolling"})`
			},
			want: []string{`fleetnodepool_status_rollout_state{state="Rolling"}: "Rolling" is not one of ` + strings.Join(rolloutStates, ", ")}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			d := good()
			tc.edit(d)
			if diff := cmp.Diff(tc.want, check(d), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\nchecks: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}
