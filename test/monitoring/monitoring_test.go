// Package monitoring_test checks the monitoring the product ships: the chart's ServiceMonitors,
// PodMonitor, PrometheusRule and Grafana dashboard ConfigMap (kinds envtest does not have, so
// they are rendered with helm template, not applied), the alerts with promtool (check rules, and
// test rules with inputs that fire and that do not fire each alert), and that the dashboard and
// the alerts name only documented series. internal/cmd's TestDevPrometheusEvaluatesEveryPanel
// evaluates them all against a real Prometheus scraping the running system.
package monitoring_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/jengu/queue-operator/docs"
	"github.com/jengu/queue-operator/internal/devenv"
	"github.com/jengu/queue-operator/internal/testenv"
	"github.com/jengu/queue-operator/internal/testprom"
)

func repo(path ...string) string {
	return filepath.Join(append([]string{testenv.RepoRoot()}, path...)...)
}

var requiredValues = []string{
	"--set", "redis.url=redis://redis.example:6379/0",
	"--set", "database.url=postgres://app:pw@postgres.example:5432/app",
	"--set", "apiserver.jwtSecret=test-jwt-secret",
	"--set", "auth.issuer=https://project-ref.supabase.co/auth/v1",
}

// render is `helm template` of the chart (HELM, as `make test` passes it) with the values.
func render(t *testing.T, args ...string) []*unstructured.Unstructured {
	t.Helper()
	bin := os.Getenv("HELM")
	if bin == "" {
		t.Fatal("HELM is not set: run the tests with `make test`, which installs helm into bin/ and passes its path")
	}
	home := t.TempDir()
	cmd := exec.Command(bin, append(append([]string{"template", "qo", repo("charts", "queue-operator"),
		"--namespace", "jobs", "--skip-crds"}, requiredValues...), args...)...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"), "HELM_DATA_HOME="+filepath.Join(home, "data"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm template %v: %v\n%s", args, err, stderr.String())
	}
	file := filepath.Join(t.TempDir(), "rendered.yaml")
	if err := os.WriteFile(file, stdout.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	objs, err := devenv.ReadManifests(file)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// monitoringObjects are the rendered objects that only a monitoring value turns on, by kind/name.
func monitoringObjects(objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	out := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		switch {
		case o.GetAPIVersion() == "monitoring.coreos.com/v1",
			o.GetKind() == "ConfigMap" && strings.HasSuffix(o.GetName(), "-dashboard"),
			o.GetKind() == "Service" && strings.HasSuffix(o.GetName(), "-controller-metrics"):
			out[o.GetKind()+"/"+o.GetName()] = o
		}
	}
	return out
}

func keys(m map[string]*unstructured.Unstructured) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestEachMonitoringObjectIsOffByDefaultAndOnWithOneValue(t *testing.T) {
	if got := keys(monitoringObjects(render(t))); len(got) > 0 {
		t.Fatalf("the default values render monitoring objects: %v", got)
	}
	tests := []struct {
		value string
		want  []string
	}{
		{"monitoring.serviceMonitor.enabled=true", []string{"Service/qo-queue-operator-controller-metrics",
			"ServiceMonitor/qo-queue-operator-apiserver-ops", "ServiceMonitor/qo-queue-operator-controller-metrics"}},
		{"monitoring.podMonitor.enabled=true", []string{"PodMonitor/qo-queue-operator-workers"}},
		{"monitoring.prometheusRule.enabled=true", []string{"PrometheusRule/qo-queue-operator"}},
		{"monitoring.dashboard.enabled=true", []string{"ConfigMap/qo-queue-operator-dashboard"}},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			if got := keys(monitoringObjects(render(t, "--set", tt.value))); !slices.Equal(got, tt.want) {
				t.Errorf("objects = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestServiceAndPodMonitorsSelectWhatServesMetrics(t *testing.T) {
	objs := render(t, "--set", "monitoring.serviceMonitor.enabled=true", "--set", "monitoring.podMonitor.enabled=true",
		"--set", "monitoring.serviceMonitor.labels.release=kps")
	m := monitoringObjects(objs)
	// The facade's ops Service (the shared decision: port `ops`, component apiserver-ops) and the
	// controller's metrics Service, each selected by its component and scraped on its port.
	for component, port := range map[string]string{"apiserver-ops": "ops", "controller-metrics": "metrics"} {
		sm := m["ServiceMonitor/qo-queue-operator-"+component]
		if sm == nil {
			t.Fatalf("no ServiceMonitor for %s", component)
		}
		sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
		if sel["app.kubernetes.io/component"] != component || sel["app.kubernetes.io/instance"] != "qo" {
			t.Errorf("%s selects %v", component, sel)
		}
		if sm.GetLabels()["release"] != "kps" {
			t.Errorf("%s lacks the extra label: %v", component, sm.GetLabels())
		}
		eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
		ep := eps[0].(map[string]any)
		if ep["port"] != port || ep["honorLabels"] != true || ep["path"] != "/metrics" {
			t.Errorf("%s endpoint = %v, want port %s, honorLabels, /metrics", component, ep, port)
		}
	}
	svc := m["Service/qo-queue-operator-controller-metrics"]
	sel, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
	var controller *unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "Deployment" && o.GetName() == "qo-queue-operator-controller" {
			controller = o
		}
	}
	podLabels, _, _ := unstructured.NestedStringMap(controller.Object, "spec", "template", "metadata", "labels")
	for k, v := range sel {
		if podLabels[k] != v {
			t.Errorf("the controller metrics Service selects %s=%s; the controller's pods have %v", k, v, podLabels)
		}
	}
	pm := m["PodMonitor/qo-queue-operator-workers"]
	pmSel, _, _ := unstructured.NestedStringMap(pm.Object, "spec", "selector", "matchLabels")
	if pmSel["app.kubernetes.io/name"] != "queue-operator-worker" {
		t.Errorf("PodMonitor selects %v, not the worker pods' label", pmSel)
	}
	ns, _, _ := unstructured.NestedStringSlice(pm.Object, "spec", "namespaceSelector", "matchNames")
	if !slices.Equal(ns, []string{"jobs"}) {
		t.Errorf("PodMonitor namespaces %v, want the release's", ns)
	}
	eps, _, _ := unstructured.NestedSlice(pm.Object, "spec", "podMetricsEndpoints")
	if eps[0].(map[string]any)["port"] != "metrics" {
		t.Errorf("PodMonitor endpoint %v, want port metrics", eps[0])
	}
}

func TestDashboardConfigMapCarriesTheDashboard(t *testing.T) {
	cm := monitoringObjects(render(t, "--set", "monitoring.dashboard.enabled=true"))["ConfigMap/qo-queue-operator-dashboard"]
	if cm.GetLabels()["grafana_dashboard"] != "1" {
		t.Errorf("labels %v lack the sidecar's grafana_dashboard=1", cm.GetLabels())
	}
	data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
	want, err := os.ReadFile(repo("docs", "monitoring", "grafana-queue-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(data["queue-operator-dashboard.json"]) != strings.TrimSpace(string(want)) {
		t.Error("the ConfigMap's dashboard differs from docs/monitoring/grafana-queue-dashboard.json")
	}
}

// TestChartCarriesTheMonitoringFilesUnchanged: `make manifests` copies them into the chart.
func TestChartCarriesTheMonitoringFilesUnchanged(t *testing.T) {
	for _, name := range []string{"alerts.yaml", "grafana-queue-dashboard.json"} {
		doc, err := os.ReadFile(repo("docs", "monitoring", name))
		if err != nil {
			t.Fatal(err)
		}
		chart, err := os.ReadFile(repo("charts", "queue-operator", "files", "monitoring", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(doc, chart) {
			t.Errorf("charts/queue-operator/files/monitoring/%s differs from docs/monitoring/%s: run `make manifests`", name, name)
		}
	}
}

// ruleFile is a Prometheus rules file.
type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Expr        string            `json:"expr"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

// TestPrometheusRulePassesPromtool extracts the rendered PrometheusRule's groups and runs
// promtool check rules and promtool test rules (testdata/alerts_test.yaml) on them.
func TestPrometheusRulePassesPromtool(t *testing.T) {
	pr := monitoringObjects(render(t, "--set", "monitoring.prometheusRule.enabled=true"))["PrometheusRule/qo-queue-operator"]
	groups, _, _ := unstructured.NestedSlice(pr.Object, "spec", "groups")
	rules, err := yaml.Marshal(map[string]any{"groups": groups})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "alerts.yaml"), rules, 0o600); err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(filepath.Join("testdata", "alerts_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "alerts_test.yaml"), tests, 0o600); err != nil {
		t.Fatal(err)
	}
	out := testprom.Promtool(t, dir, "check", "rules", "alerts.yaml")
	if !strings.Contains(out, "SUCCESS: 6 rules found") {
		t.Errorf("promtool check rules: %s", out)
	}
	testprom.Promtool(t, dir, "test", "rules", "alerts_test.yaml")

	// Each alert is tested firing and not firing, and has its runbook section.
	var file ruleFile
	if err := yaml.Unmarshal(rules, &file); err != nil {
		t.Fatal(err)
	}
	var suite struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string           `json:"alertname"`
				ExpAlerts []map[string]any `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(tests, &suite); err != nil {
		t.Fatal(err)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range suite.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	runbook, err := os.ReadFile(repo("docs", "monitoring", "runbook.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			if !fires[r.Alert] || !quiet[r.Alert] {
				t.Errorf("%s: tested firing %v, not firing %v; want both", r.Alert, fires[r.Alert], quiet[r.Alert])
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if r.Annotations[a] == "" {
					t.Errorf("%s has no %s", r.Alert, a)
				}
			}
			if !strings.HasSuffix(r.Annotations["runbook_url"], "runbook.md#"+strings.ToLower(r.Alert)) ||
				!bytes.Contains(runbook, []byte("\n## "+r.Alert+"\n")) {
				t.Errorf("%s: no runbook section (## %s) or runbook_url %q does not point at it", r.Alert, r.Alert, r.Annotations["runbook_url"])
			}
		}
	}
}

// seriesName matches the product's series names in an expression.
var seriesName = regexp.MustCompile(`\b(?:queue_operator|bullmq)_[a-z0-9_]+\b`)

// documentedBase is the documented name a series belongs to (a histogram's _bucket, _sum,
// _count are its own name's).
func documentedBase(name string) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && strings.HasSuffix(base, "_seconds") {
			return base
		}
	}
	return name
}

// TestDashboardAndAlertsNameOnlyDocumentedSeries: every series a panel, a variable or an alert
// names is documented in docs/monitoring/metrics.md (the end-to-end test proves they are
// exported).
func TestDashboardAndAlertsNameOnlyDocumentedSeries(t *testing.T) {
	doc, err := os.ReadFile(repo("docs", "monitoring", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	exprs, err := docs.MonitoringExpressions()
	if err != nil {
		t.Fatal(err)
	}
	if len(exprs) < 10 {
		t.Fatalf("only %d expressions found in the dashboard and alerts", len(exprs))
	}
	for _, e := range exprs {
		names := seriesName.FindAllString(e.Expr, -1)
		if len(names) == 0 {
			t.Errorf("%s names no series of the product: %s", e.Where, e.Expr)
		}
		for _, n := range names {
			if !bytes.Contains(doc, []byte("`"+documentedBase(n)+"`")) {
				t.Errorf("%s names %s, which docs/monitoring/metrics.md does not document", e.Where, n)
			}
		}
	}
	var dash struct {
		Templating struct {
			List []struct{ Name string } `json:"list"`
		} `json:"templating"`
	}
	raw, _ := os.ReadFile(repo("docs", "monitoring", "grafana-queue-dashboard.json"))
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	var vars []string
	for _, v := range dash.Templating.List {
		vars = append(vars, v.Name)
	}
	for _, want := range []string{"namespace", "queue"} {
		if !slices.Contains(vars, want) {
			t.Errorf("dashboard variables %v lack %s", vars, want)
		}
	}
}
