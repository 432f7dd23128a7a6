package monitoring

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// GrafanaDashboardFile is the Grafana dashboard package/monitoring ships,
// relative to the module root.
const GrafanaDashboardFile = "package/monitoring/grafana-dashboard.json"

// Error strings.
const (
	errReadDashboard     = "cannot read the Grafana dashboard"
	errFmtParseDashboard = "cannot parse %s"
)

// A Dashboard is the part of a Grafana dashboard's JSON model the checks
// and the metrics tier read.
type Dashboard struct {
	Title         string  `json:"title"`
	UID           string  `json:"uid"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []Panel `json:"panels"`
	Templating    struct {
		List []Variable `json:"list"`
	} `json:"templating"`
}

// A Panel is a panel of a dashboard, or a row (Type "row") holding the
// panels of a collapsed row.
type Panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	GridPos    *GridPos       `json:"gridPos"`
	Datasource *DatasourceRef `json:"datasource"`
	Targets    []Target       `json:"targets"`
	Panels     []Panel        `json:"panels"`
}

// GridPos is where a panel is on the dashboard's grid.
type GridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

// A DatasourceRef names a data source, or a template variable holding one.
type DatasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// A Target is a query of a panel.
type Target struct {
	RefID        string         `json:"refId"`
	Expr         string         `json:"expr"`
	LegendFormat string         `json:"legendFormat"`
	Datasource   *DatasourceRef `json:"datasource"`
}

// A Variable is a template variable of the dashboard.
type Variable struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Query      any            `json:"query"`
	Datasource *DatasourceRef `json:"datasource"`
	AllValue   string         `json:"allValue"`
	IncludeAll bool           `json:"includeAll"`
	Multi      bool           `json:"multi"`
}

// ReadDashboard reads the shipped Grafana dashboard.
func ReadDashboard(root string) (*Dashboard, error) {
	b, err := os.ReadFile(filepath.Join(root, GrafanaDashboardFile)) //nolint:gosec // The module's own file.
	if err != nil {
		return nil, fmt.Errorf("%s: %w", errReadDashboard, err)
	}
	d := &Dashboard{}
	if err := json.Unmarshal(b, d); err != nil {
		return nil, fmt.Errorf(errFmtParseDashboard+": %w", GrafanaDashboardFile, err)
	}
	return d, nil
}

// AllPanels are the dashboard's panels, those of collapsed rows included,
// rows themselves too, in order.
func (d *Dashboard) AllPanels() []Panel {
	var out []Panel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

// Exprs are the PromQL expressions of every panel's targets, in order, with
// the template variables as written.
func (d *Dashboard) Exprs() []string {
	var out []string
	for _, p := range d.AllPanels() {
		for _, t := range p.Targets {
			if t.Expr != "" {
				out = append(out, t.Expr)
			}
		}
	}
	return out
}

// VariableQuery is a query variable's query: Grafana writes it as a string,
// or as an object with the string in its "query".
func (v Variable) VariableQuery() string {
	switch q := v.Query.(type) {
	case string:
		return q
	case map[string]any:
		s, _ := q["query"].(string)
		return s
	}
	return ""
}

// TemplateVarRE matches a Grafana template variable in a query: $name,
// ${name} or ${name:format}, and [[name]].
var TemplateVarRE = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?::[^}]*)?\}|\$([A-Za-z0-9_]+)|\[\[([A-Za-z0-9_]+)\]\]`)

// BuiltinVariables are Grafana's own variables a query may use, with the
// value Substitute gives them: durations where Grafana puts one.
var BuiltinVariables = map[string]string{
	"__rate_interval": "5m",
	"__interval":      "1m",
	"__range":         "1h",
	"__range_s":       "3600",
	"__interval_ms":   "60000",
}

// Substitute replaces the template variables of a query the way Grafana
// would send it with every value selected: the dashboard's own variables
// (used in regex matchers, `=~"$namespace"`) by `.*`, Grafana's built-in
// ones by a duration. The result is plain PromQL a Prometheus parses.
func Substitute(expr string) string {
	return TemplateVarRE.ReplaceAllStringFunc(expr, func(m string) string {
		if v, ok := BuiltinVariables[TemplateVarName(m)]; ok {
			return v
		}
		return ".*"
	})
}

// TemplateVarName is the name of a variable TemplateVarRE matched.
func TemplateVarName(match string) string {
	sm := TemplateVarRE.FindStringSubmatch(match)
	for _, s := range sm[1:] {
		if s != "" {
			return s
		}
	}
	return ""
}

// DashboardQueries are the expressions of every panel of the shipped
// dashboard, in order, with their template variables substituted
// (Substitute): each is a query a real Prometheus can parse and run
// (/api/v1/parse_query, /api/v1/query), selecting every namespace,
// cluster and pool.
func DashboardQueries(root string) ([]string, error) {
	d, err := ReadDashboard(root)
	if err != nil {
		return nil, err
	}
	exprs := d.Exprs()
	out := make([]string, len(exprs))
	for i, e := range exprs {
		out[i] = Substitute(e)
	}
	return out, nil
}
