package docs

import (
	_ "embed"
	"encoding/json"
	"fmt"

	"sigs.k8s.io/yaml"
)

// Alerts is monitoring/alerts.yaml: the product's Prometheus alerting rules.
//
//go:embed monitoring/alerts.yaml
var Alerts []byte

// Dashboard is monitoring/grafana-queue-dashboard.json: the product's Grafana dashboard.
//
//go:embed monitoring/grafana-queue-dashboard.json
var Dashboard []byte

// Expression is one PromQL expression of the dashboard or the alerts.
type Expression struct {
	// Where names it: "panel <title> <refId>", "variable <name>" or "alert <name>".
	Where string
	// Expr is the expression as written; a dashboard's may hold Grafana variables ($namespace,
	// $queue, $__rate_interval) and a variable's is the series selector of its label_values().
	Expr string
	// Panel is true for a panel's expression, which must return data on a running system.
	Panel bool
}

// MonitoringExpressions lists every PromQL expression of the dashboard (panels' targets and the
// variables' label_values selectors) and of the alerts.
func MonitoringExpressions() ([]Expression, error) {
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name string `json:"name"`
				Type string `json:"type"`
				// Query is an object for a query variable, a string for a data source one.
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(Dashboard, &dash); err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	var out []Expression
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			return nil, fmt.Errorf("dashboard panel %q has no query", p.Title)
		}
		for _, t := range p.Targets {
			out = append(out, Expression{Where: fmt.Sprintf("panel %q %s", p.Title, t.RefID), Expr: t.Expr, Panel: true})
		}
	}
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		var query struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &query); err != nil {
			return nil, fmt.Errorf("dashboard variable %s: %w", v.Name, err)
		}
		selector, ok := labelValuesSelector(query.Query)
		if !ok {
			return nil, fmt.Errorf("dashboard variable %s: %q is not label_values(selector, label)", v.Name, query.Query)
		}
		out = append(out, Expression{Where: "variable " + v.Name, Expr: selector, Panel: true})
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `json:"alert"`
				Expr  string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal(Alerts, &rules); err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			out = append(out, Expression{Where: "alert " + r.Alert, Expr: r.Expr})
		}
	}
	return out, nil
}

// labelValuesSelector is the selector of Grafana's label_values(selector, label).
func labelValuesSelector(q string) (string, bool) {
	const prefix = "label_values("
	if len(q) < len(prefix)+1 || q[:len(prefix)] != prefix || q[len(q)-1] != ')' {
		return "", false
	}
	inner := q[len(prefix) : len(q)-1]
	// The label is after the last comma outside braces.
	depth := 0
	for i := len(inner) - 1; i >= 0; i-- {
		switch inner[i] {
		case '}':
			depth++
		case '{':
			depth--
		case ',':
			if depth == 0 {
				return inner[:i], true
			}
		}
	}
	return "", false
}
