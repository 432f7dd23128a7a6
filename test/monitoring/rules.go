package monitoring

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"sigs.k8s.io/yaml"

	"github.com/fleetnodepool/function-fleetnodepool/fn/compose"
)

// PrometheusRuleFile is the alerting rules package/monitoring ships, as a
// Prometheus Operator PrometheusRule, relative to the module root.
const PrometheusRuleFile = "package/monitoring/prometheusrule.yaml"

// Error strings.
const (
	errReadRules     = "cannot read the alerting rules"
	errFmtParseRules = "cannot parse %s"
	errFmtKind       = "%s: want apiVersion monitoring.coreos.com/v1, kind PrometheusRule, got %s, %s"
	errFmtRule       = "%s: group %q, rule %d"
	errFmtFor        = "%s: group %q, alert %s: cannot parse for %q"
	errFmtUnknown    = "cannot override the for of %s: no such alert"
	errFmtNegative   = "cannot override the for of %s: %s is negative"
	errRender        = "cannot render the Prometheus rule file"
	errFmtDuration   = "%q is not a Prometheus duration (like 1h30m)"
	errReadKSM       = "cannot list the metrics kube-state-metrics exports"
	errFmtString     = "unterminated string at offset %d"
	errFmtBracket    = "unterminated %q at offset %d"
	errFmtMatcher    = "cannot parse the label matchers at offset %d: %s"
)

// Rules is a PrometheusRule (monitoring.coreos.com/v1): the rule groups and
// the metadata the Prometheus Operator selects them by.
type Rules struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Metadata   RulesMeta `json:"metadata"`
	Spec       struct {
		Groups []RuleGroup `json:"groups"`
	} `json:"spec"`
}

// RulesMeta is the PrometheusRule's metadata.
type RulesMeta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// A RuleGroup is a group of rules Prometheus evaluates together: the same
// in a PrometheusRule and a Prometheus rule file.
type RuleGroup struct {
	Name        string            `json:"name"`
	Interval    string            `json:"interval,omitempty"`
	QueryOffset string            `json:"query_offset,omitempty"`
	Limit       int               `json:"limit,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Rules       []Rule            `json:"rules"`
}

// A Rule is an alerting rule (Alert set) or a recording rule (Record set).
type Rule struct {
	Alert         string            `json:"alert,omitempty"`
	Record        string            `json:"record,omitempty"`
	Expr          string            `json:"expr"`
	For           string            `json:"for,omitempty"`
	KeepFiringFor string            `json:"keep_firing_for,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// An Alert is an alerting rule, with its group.
type Alert struct {
	Group       string
	Name        string
	Expr        string
	For         time.Duration
	Labels      map[string]string
	Annotations map[string]string
}

// ReadRules reads the shipped PrometheusRule from the module root.
func ReadRules(root string) (*Rules, error) {
	b, err := os.ReadFile(filepath.Join(root, PrometheusRuleFile)) //nolint:gosec // The module's own file.
	if err != nil {
		return nil, fmt.Errorf("%s: %w", errReadRules, err)
	}
	return ParseRules(b)
}

// ParseRules parses a PrometheusRule strictly: a misspelt field (`fro:`)
// is an error, as is a rule that is not exactly one of an alert or a
// record, has no expression, or a `for` Prometheus cannot parse.
func ParseRules(b []byte) (*Rules, error) {
	r := &Rules{}
	if err := yaml.UnmarshalStrict(b, r); err != nil {
		return nil, fmt.Errorf(errFmtParseRules+": %w", PrometheusRuleFile, err)
	}
	if r.APIVersion != "monitoring.coreos.com/v1" || r.Kind != "PrometheusRule" {
		return nil, fmt.Errorf(errFmtKind, PrometheusRuleFile, r.APIVersion, r.Kind)
	}
	for _, g := range r.Spec.Groups {
		for i, rule := range g.Rules {
			switch {
			case (rule.Alert == "") == (rule.Record == ""):
				return nil, fmt.Errorf(errFmtRule+": want one of alert and record", PrometheusRuleFile, g.Name, i)
			case strings.TrimSpace(rule.Expr) == "":
				return nil, fmt.Errorf(errFmtRule+": no expr", PrometheusRuleFile, g.Name, i)
			}
			if rule.For == "" {
				continue
			}
			if _, err := ParseDuration(rule.For); err != nil {
				return nil, fmt.Errorf(errFmtFor+": %w", PrometheusRuleFile, g.Name, rule.Alert, rule.For, err)
			}
		}
	}
	return r, nil
}

// Alerts are the alerting rules, in the order of the file.
func (r *Rules) Alerts() []Alert {
	var out []Alert
	for _, g := range r.Spec.Groups {
		for _, rule := range g.Rules {
			if rule.Alert == "" {
				continue
			}
			d, _ := ParseDuration(rule.For) // Checked by ParseRules; "" is 0.
			out = append(out, Alert{
				Group: g.Name, Name: rule.Alert, Expr: rule.Expr, For: d,
				Labels: maps.Clone(rule.Labels), Annotations: maps.Clone(rule.Annotations),
			})
		}
	}
	return out
}

// WithFor returns a copy of the rules in which the named alerts' `for` is
// replaced: the way tests shorten the thresholds without editing the
// shipped file. It fails on a name no alert has, naming every such name.
func (r *Rules) WithFor(overrides map[string]time.Duration) (*Rules, error) {
	c := r.deepCopy()
	seen := map[string]bool{}
	for gi := range c.Spec.Groups {
		for ri := range c.Spec.Groups[gi].Rules {
			rule := &c.Spec.Groups[gi].Rules[ri]
			d, ok := overrides[rule.Alert]
			if rule.Alert == "" || !ok {
				continue
			}
			if d < 0 {
				return nil, fmt.Errorf(errFmtNegative, rule.Alert, d)
			}
			rule.For = FormatDuration(d)
			seen[rule.Alert] = true
		}
	}
	var unknown []string
	for name := range overrides {
		if !seen[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, fmt.Errorf(errFmtUnknown, strings.Join(unknown, ", "))
	}
	return c, nil
}

// PrometheusFile is the plain Prometheus rule file of the rules (`groups:`
// only): what promtool and a Prometheus server without the Operator load.
func (r *Rules) PrometheusFile() ([]byte, error) {
	b, err := yaml.Marshal(struct {
		Groups []RuleGroup `json:"groups"`
	}{Groups: r.Spec.Groups})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", errRender, err)
	}
	return b, nil
}

func (r *Rules) deepCopy() *Rules {
	c := *r
	c.Metadata.Labels = maps.Clone(r.Metadata.Labels)
	c.Metadata.Annotations = maps.Clone(r.Metadata.Annotations)
	c.Spec.Groups = make([]RuleGroup, len(r.Spec.Groups))
	for i, g := range r.Spec.Groups {
		g.Labels = maps.Clone(g.Labels)
		rules := make([]Rule, len(g.Rules))
		for j, rule := range g.Rules {
			rule.Labels = maps.Clone(rule.Labels)
			rule.Annotations = maps.Clone(rule.Annotations)
			rules[j] = rule
		}
		g.Rules = rules
		c.Spec.Groups[i] = g
	}
	return &c
}

// Prometheus's duration units, largest first (prometheus/common model.Duration).
var durationUnits = []struct {
	unit string
	d    time.Duration
}{
	{"y", 365 * 24 * time.Hour}, {"w", 7 * 24 * time.Hour}, {"d", 24 * time.Hour},
	{"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond},
}

var durationRE = regexp.MustCompile(`^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$`)

// ParseDuration parses a Prometheus duration: units y, w, d, h, m, s, ms,
// largest first, each at most once (`1h30m`, `0`). The empty string is 0.
func ParseDuration(s string) (time.Duration, error) {
	if s == "" || s == "0" {
		return 0, nil
	}
	m := durationRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf(errFmtDuration, s)
	}
	var d time.Duration
	for i, u := range durationUnits {
		if m[i+1] == "" {
			continue
		}
		n, err := strconv.ParseInt(m[i+1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf(errFmtDuration+": %w", s, err)
		}
		d += time.Duration(n) * u.d
	}
	return d, nil
}

// FormatDuration is a duration as Prometheus writes it (`1d2h`, `90s` is
// `1m30s`, `0s`), to the millisecond.
func FormatDuration(d time.Duration) string {
	if d < time.Millisecond {
		return "0s"
	}
	var b strings.Builder
	for _, u := range durationUnits {
		if n := d / u.d; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.unit)
			d %= u.d
		}
	}
	return b.String()
}

// A Selector is a series selector in a PromQL expression: its metric name
// (empty for a selector by labels only) and its label matchers.
type Selector struct {
	Metric   string
	Matchers []Matcher
}

// A Matcher is a label matcher: Label Op "Value", Op one of = != =~ !~.
type Matcher struct {
	Label string
	Op    string
	Value string
}

// PromQL words that are never a metric name where they stand: aggregation
// operators (which may take their modifier before their parentheses, as in
// `sum by (x) (...)`), set and comparison keywords, and number literals.
// Lower case: PromQL's keywords are case-insensitive.
var promqlKeywords = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"limitk": true, "limit_ratio": true,
	"and": true, "or": true, "unless": true, "atan2": true, "bool": true, "offset": true,
	"inf": true, "nan": true,
}

// Keywords followed by a list of label names in parentheses.
var promqlLabelLists = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// Selectors are the series selectors of a PromQL expression, in order. It
// is a tokenizer, not a parser: it skips strings, ranges and subqueries
// (`[5m]`, `[1h:1m]`, `[$__rate_interval]`), numbers and durations,
// function and aggregation names (a name followed by `(`, or a PromQL
// keyword), the label lists of by, without, on, ignoring, group_left and
// group_right, and Grafana's template variables; every other name is a
// metric, with the matchers in braces after it. A `{...}` with no name
// before it is a selector by labels; its `__name__="..."` matcher or a
// quoted name (`{"metric.name"}`) names its metric. It fails only on an
// unterminated string, brace or bracket.
func Selectors(expr string) ([]Selector, error) {
	l := &lexer{s: expr}
	var out []Selector
	for {
		l.space()
		if l.eof() {
			return out, nil
		}
		c := l.s[l.i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			if _, err := l.str(); err != nil {
				return nil, err
			}
		case c == '[':
			if err := l.skipTo('[', ']'); err != nil {
				return nil, err
			}
		case c == '{':
			sel, err := l.matchers(Selector{})
			if err != nil {
				return nil, err
			}
			out = append(out, sel)
		case c == '$':
			l.i++
			if !l.eof() && l.s[l.i] == '{' {
				if err := l.skipTo('{', '}'); err != nil {
					return nil, err
				}
				continue
			}
			l.ident()
		case isDigit(c) || (c == '.' && l.i+1 < len(l.s) && isDigit(l.s[l.i+1])):
			for !l.eof() && (isIdentChar(l.s[l.i]) || l.s[l.i] == '.') {
				l.i++
			}
		case isIdentStart(c):
			name := l.ident()
			word := strings.ToLower(name)
			next := l.peek()
			switch {
			case promqlLabelLists[word]:
				if next == '(' {
					l.space()
					if err := l.skipTo('(', ')'); err != nil {
						return nil, err
					}
				}
			case promqlKeywords[word], next == '(':
			default:
				sel := Selector{Metric: name}
				if next == '{' {
					l.space()
					var err error
					if sel, err = l.matchers(sel); err != nil {
						return nil, err
					}
				}
				out = append(out, sel)
			}
		default:
			l.i++
		}
	}
}

// MetricNames are the metric names an expression selects, sorted, each
// once.
func MetricNames(expr string) ([]string, error) {
	sels, err := Selectors(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range sels {
		if s.Metric != "" && !slices.Contains(names, s.Metric) {
			names = append(names, s.Metric)
		}
	}
	slices.Sort(names)
	return names, nil
}

type lexer struct {
	s string
	i int
}

func (l *lexer) eof() bool { return l.i >= len(l.s) }

// space skips white space and comments.
func (l *lexer) space() {
	for !l.eof() {
		switch l.s[l.i] {
		case ' ', '\t', '\n', '\r':
			l.i++
		case '#':
			for !l.eof() && l.s[l.i] != '\n' {
				l.i++
			}
		default:
			return
		}
	}
}

// peek is the next character after white space, without consuming it; 0
// at the end.
func (l *lexer) peek() byte {
	at := l.i
	l.space()
	defer func() { l.i = at }()
	if l.eof() {
		return 0
	}
	return l.s[l.i]
}

func (l *lexer) ident() string {
	start := l.i
	for !l.eof() && isIdentChar(l.s[l.i]) {
		l.i++
	}
	return l.s[start:l.i]
}

// str reads a quoted string at l.i and returns its value.
func (l *lexer) str() (string, error) {
	start, q := l.i, l.s[l.i]
	l.i++
	for !l.eof() {
		switch l.s[l.i] {
		case '\\':
			if q != '`' {
				l.i++
			}
		case q:
			l.i++
			raw := l.s[start:l.i]
			if q == '\'' {
				raw = `"` + strings.ReplaceAll(strings.ReplaceAll(raw[1:len(raw)-1], `\'`, `'`), `"`, `\"`) + `"`
			}
			v, err := strconv.Unquote(raw)
			if err != nil {
				return raw[1 : len(raw)-1], nil //nolint:nilerr // An escape Go does not know: the raw value serves the checks.
			}
			return v, nil
		}
		l.i++
	}
	return "", fmt.Errorf(errFmtString, start)
}

// skipTo skips from the open character at l.i past its matching close,
// over strings and nested pairs.
func (l *lexer) skipTo(open, closing byte) error {
	start, depth := l.i, 0
	for !l.eof() {
		switch c := l.s[l.i]; c {
		case '"', '\'', '`':
			if _, err := l.str(); err != nil {
				return err
			}
			continue
		case open:
			depth++
		case closing:
			depth--
			if depth == 0 {
				l.i++
				return nil
			}
		}
		l.i++
	}
	return fmt.Errorf(errFmtBracket, string(open), start)
}

// matchers reads `{...}` at l.i into the selector.
func (l *lexer) matchers(sel Selector) (Selector, error) {
	start := l.i
	bad := func(why string) (Selector, error) { return Selector{}, fmt.Errorf(errFmtMatcher, start, why) }
	l.i++ // {
	for {
		l.space()
		if l.eof() {
			return Selector{}, fmt.Errorf(errFmtBracket, "{", start)
		}
		if l.s[l.i] == '}' {
			l.i++
			return sel, nil
		}
		var name string
		quoted := false
		switch c := l.s[l.i]; {
		case c == '"' || c == '\'' || c == '`':
			v, err := l.str()
			if err != nil {
				return Selector{}, err
			}
			name, quoted = v, true
		case isIdentStart(c):
			name = l.ident()
		default:
			return bad(fmt.Sprintf("unexpected %q", c))
		}
		l.space()
		op := ""
		for _, o := range []string{"=~", "!~", "!=", "="} {
			if strings.HasPrefix(l.s[l.i:], o) {
				op = o
				l.i += len(o)
				break
			}
		}
		switch {
		case op == "" && quoted:
			sel.Metric = name
		case op == "":
			return bad("no operator after " + name)
		default:
			l.space()
			if l.eof() || (l.s[l.i] != '"' && l.s[l.i] != '\'' && l.s[l.i] != '`') {
				return bad("no quoted value for " + name)
			}
			v, err := l.str()
			if err != nil {
				return Selector{}, err
			}
			if name == "__name__" && op == "=" {
				sel.Metric = v
			}
			sel.Matchers = append(sel.Matchers, Matcher{Label: name, Op: op, Value: v})
		}
		l.space()
		if !l.eof() && l.s[l.i] == ',' {
			l.i++
		}
	}
}

func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool { return c == '_' || c == ':' || (c|0x20 >= 'a' && c|0x20 <= 'z') }
func isIdentChar(c byte) bool  { return isIdentStart(c) || isDigit(c) }

// KSMSource says a metric is kube-state-metrics': from the configuration.
const KSMSource = KubeStateMetricsConfig

// ExternalMetrics are the series the rules and the dashboard read that
// kube-state-metrics does not export, each with the source file that
// defines it. Only names found in those sources belong here.
var ExternalMetrics = func() map[string]string {
	m := map[string]string{}
	add := func(src string, names ...string) {
		for _, n := range names {
			m[n] = src
		}
	}
	histogram := func(src, name string) { add(src, name+"_bucket", name+"_sum", name+"_count") }

	// Crossplane core v2.4.2 (pinned in test/tools/crossplane): its calls to
	// functions, with labels function_name, function_package, grpc_target,
	// grpc_method, and on responses and durations grpc_code and
	// result_severity (Normal, Warning, Fatal).
	const xfn = "github.com/crossplane/crossplane/v2@v2.4.2 internal/xfn/function_runner_metrics.go"
	add(xfn, "function_run_function_request_total", "function_run_function_response_total")
	histogram(xfn, "function_run_function_seconds")
	// Its per-XR watch circuit breaker: label controller
	// (composite/<XRD name>), and on events result (Allowed, Dropped,
	// HalfOpenAllowed; internal/circuit/breaker.go).
	add("github.com/crossplane/crossplane/v2@v2.4.2 internal/circuit/circuit_metrics.go",
		"circuit_breaker_opens_total", "circuit_breaker_closes_total", "circuit_breaker_events_total")

	// The gRPC server metrics function-sdk-go v0.7.1 registers (sdk.go,
	// grpcprometheus.NewServerMetrics), labels grpc_type, grpc_service,
	// grpc_method and on handled grpc_code. Its handling-time histogram
	// exists only with WithServerHandlingTimeHistogram, which fn/main.go
	// does not set.
	add("github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus@v1.1.0 server_metrics.go",
		"grpc_server_started_total", "grpc_server_handled_total", "grpc_server_msg_received_total", "grpc_server_msg_sent_total")

	// The function's own, as fn/compose registers them: a renamed metric
	// fails the checks of the rules and the dashboard that read it.
	reg := prometheus.NewRegistry()
	compose.New(compose.WithMetrics(reg))
	mfs, err := reg.Gather()
	if err != nil {
		panic(err) // A registry of metrics the function defines cannot fail to gather.
	}
	for _, mf := range mfs {
		if mf.GetType() == dto.MetricType_HISTOGRAM {
			histogram("fn/compose", mf.GetName())
			continue
		}
		add("fn/compose", mf.GetName())
	}
	return m
}()

// KnownMetrics are every series name the rules and the dashboard may read,
// each with where it is defined: the kube-state-metrics configuration's
// and ExternalMetrics.
func KnownMetrics(root string) (map[string]string, error) {
	c, err := ReadKSMConfig(root)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", errReadKSM, err)
	}
	known := maps.Clone(ExternalMetrics)
	for _, r := range c.Spec.Resources {
		for _, m := range r.Metrics {
			known[r.FullName(m)] = KSMSource
		}
	}
	return known, nil
}

// UnknownMetrics are the metric names the expressions select that known
// does not have, as "name (in expr)", and the expressions that cannot be
// tokenized, sorted.
func UnknownMetrics(exprs []string, known map[string]string) []string {
	var bad []string
	for _, e := range exprs {
		names, err := MetricNames(e)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%v (in %s)", err, oneLine(e)))
			continue
		}
		for _, n := range names {
			if _, ok := known[n]; !ok {
				bad = append(bad, fmt.Sprintf("%s (in %s)", n, oneLine(e)))
			}
		}
	}
	slices.Sort(bad)
	return slices.Compact(bad)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
