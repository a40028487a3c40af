// helm-render renders a Helm chart as `helm template --include-crds` does,
// for the tests of config/helm/mcpod: Helm itself cannot be installed here
// (no registry carries it), so this is Helm's rendering engine rebuilt from
// the parts Helm is made of — Go's text/template, Sprig v3 (Helm's function
// library, minus `env` and `expandenv` as Helm removes them) and
// sigs.k8s.io/yaml — plus Helm's own functions (include, tpl, required,
// toYaml, fromYaml, toJson, fromJson, lookup) and its built-in objects
// (.Values, .Release, .Chart, .Capabilities, .Template).
//
//	helm-render [-name RELEASE] [-namespace NS] [-f values.yaml]... CHART_DIR
//
// Values files given with -f are merged into each other in order, then
// over the chart's values.yaml, as Helm does (maps key by key; a null
// deletes the chart's key). The output is every CRD of crds/ and every
// document of every rendered template that is not only whitespace, each
// after `---` and a `# Source:` line, in Helm's install order by kind. A
// template error, or a document that is not YAML, is printed with the
// template's name and exits 1.
//
// Not Helm: `tpl` does not see `define`s made inside its own text; there
// is no .Files, .Subcharts, toToml or values.schema.json; templates are
// read from templates/ only, not its subdirectories; and the libraries are
// Debian's (Go 1.19, Sprig 3.2.3), older than a current Helm's.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig" // v3, as Debian installs it
	"sigs.k8s.io/yaml"
)

// separator is Helm's: a line of `---` between documents (releaseutil).
var separator = regexp.MustCompile(`(?:^|\s*\n)---\s*`)

type valueFiles []string

func (v *valueFiles) String() string     { return strings.Join(*v, ",") }
func (v *valueFiles) Set(s string) error { *v = append(*v, s); return nil }

func main() {
	name := flag.String("name", "mcpod", "the release name")
	namespace := flag.String("namespace", "default", "the release namespace")
	var files valueFiles
	flag.Var(&files, "f", "a values file merged over the chart's (repeatable)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: helm-render [-name RELEASE] [-namespace NS] [-f values.yaml]... CHART_DIR")
		os.Exit(2)
	}
	out, err := render(flag.Arg(0), *name, *namespace, files)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helm-render:", err)
		os.Exit(1)
	}
	os.Stdout.WriteString(out)
}

func readYAML(path string) (map[string]interface{}, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// mergeMaps puts src over dst, as Helm merges values files into each
// other: maps key by key, anything else (null included) replaces.
func mergeMaps(dst, src map[string]interface{}) map[string]interface{} {
	for k, v := range src {
		if sm, ok := v.(map[string]interface{}); ok {
			if dm, ok := dst[k].(map[string]interface{}); ok {
				dst[k] = mergeMaps(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
	return dst
}

// coalesce puts the user's values over the chart's, as Helm does: maps
// key by key, a user's null deletes the chart's key.
func coalesce(user, chart map[string]interface{}) map[string]interface{} {
	out := map[string]interface{}{}
	for k, v := range chart {
		out[k] = v
	}
	for k, v := range user {
		if v == nil {
			delete(out, k)
			continue
		}
		um, uok := v.(map[string]interface{})
		cm, cok := out[k].(map[string]interface{})
		if uok && cok {
			out[k] = coalesce(um, cm)
			continue
		}
		out[k] = v
	}
	return out
}

// Metadata is Chart.yaml as Helm's .Chart shows it: a struct, so that a
// misspelt field is an error, as in Helm.
type Metadata struct {
	Name        string            `json:"name"`
	Home        string            `json:"home"`
	Sources     []string          `json:"sources"`
	Version     string            `json:"version"`
	Description string            `json:"description"`
	Keywords    []string          `json:"keywords"`
	Icon        string            `json:"icon"`
	APIVersion  string            `json:"apiVersion"`
	Condition   string            `json:"condition"`
	Tags        string            `json:"tags"`
	AppVersion  string            `json:"appVersion"`
	Deprecated  bool              `json:"deprecated"`
	Annotations map[string]string `json:"annotations"`
	KubeVersion string            `json:"kubeVersion"`
	Type        string            `json:"type"`
}

// installOrder is Helm's (releaseutil.InstallOrder): kinds not in it come last.
var installOrder = []string{"PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy", "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass", "PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service", "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService"}

func rank(kind string) int {
	for i, k := range installOrder {
		if k == kind {
			return i
		}
	}
	return len(installOrder)
}

func render(chartDir, release, namespace string, files []string) (string, error) {
	raw, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return "", err
	}
	var chart Metadata
	if err := yaml.UnmarshalStrict(raw, &chart); err != nil {
		return "", fmt.Errorf("Chart.yaml: %w", err)
	}
	if chart.APIVersion != "v2" || chart.Name == "" || chart.Version == "" {
		return "", errors.New("Chart.yaml needs apiVersion v2, a name and a version")
	}
	chartName := chart.Name
	chartValues, err := readYAML(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		return "", err
	}
	user := map[string]interface{}{}
	for _, f := range files {
		extra, err := readYAML(f)
		if err != nil {
			return "", err
		}
		user = mergeMaps(user, extra)
	}
	values := coalesce(user, chartValues)
	top := map[string]interface{}{
		"Values":  values,
		"Chart":   &chart,
		"Release": map[string]interface{}{"Name": release, "Namespace": namespace, "Service": "Helm", "IsInstall": true, "IsUpgrade": false, "Revision": 1},
		"Capabilities": map[string]interface{}{
			"KubeVersion": map[string]interface{}{"Version": "v1.31.0", "Major": "1", "Minor": "31"},
			"APIVersions": []string{"v1", "apps/v1", "rbac.authorization.k8s.io/v1", "networking.k8s.io/v1", "apiextensions.k8s.io/v1"},
		},
	}

	paths, err := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
	if err != nil {
		return "", err
	}
	sort.Strings(paths)
	t := template.New("gotpl")
	// Helm renders with missingkey=zero and then blanks "<no value>".
	t.Option("missingkey=zero")
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env")
	delete(funcs, "expandenv")
	includes := map[string]int{}
	funcs["include"] = func(name string, data interface{}) (string, error) {
		if includes[name] > 1000 {
			return "", fmt.Errorf("include %q: recursion too deep", name)
		}
		includes[name]++
		defer func() { includes[name]-- }()
		var buf bytes.Buffer
		if err := t.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		c, err := t.Clone()
		if err != nil {
			return "", err
		}
		n, err := c.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var buf bytes.Buffer
		if err := n.Execute(&buf, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	funcs["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return v, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return v, errors.New(msg)
		}
		return v, nil
	}
	funcs["toYaml"] = func(v interface{}) string {
		data, err := yaml.Marshal(v)
		if err != nil {
			return ""
		}
		return strings.TrimSuffix(string(data), "\n")
	}
	funcs["fromYaml"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := yaml.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	funcs["toJson"] = func(v interface{}) string {
		data, err := json.Marshal(v)
		if err != nil {
			return ""
		}
		return string(data)
	}
	funcs["fromJson"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	// `helm template` has no cluster: lookup finds nothing.
	funcs["lookup"] = func(string, string, string, string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	t.Funcs(funcs)

	base := chartName + "/templates"
	var names []string
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil || info.IsDir() {
			continue
		}
		text, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		name := base + "/" + filepath.Base(p)
		if _, err := t.New(name).Parse(string(text)); err != nil {
			return "", err
		}
		// Helm renders *.yaml, *.yml, *.tpl and *.txt; files named _* only define.
		if !strings.HasPrefix(filepath.Base(p), "_") && !strings.HasSuffix(p, ".tpl") && !strings.HasSuffix(p, ".txt") {
			names = append(names, name)
		}
	}

	type doc struct {
		source, text, kind string
	}
	var docs []doc
	crds, _ := filepath.Glob(filepath.Join(chartDir, "crds", "*.yaml"))
	sort.Strings(crds)
	var out strings.Builder
	for _, p := range crds {
		text, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&out, "---\n# Source: %s/crds/%s\n%s", chartName, filepath.Base(p), text)
		if !bytes.HasSuffix(text, []byte("\n")) {
			out.WriteString("\n")
		}
	}
	for _, name := range names {
		scope := map[string]interface{}{}
		for k, v := range top {
			scope[k] = v
		}
		scope["Template"] = map[string]interface{}{"Name": name, "BasePath": base}
		var buf bytes.Buffer
		if err := t.ExecuteTemplate(&buf, name, scope); err != nil {
			return "", err
		}
		// Like Helm, each document of a template is printed on its own,
		// after its source; documents of only whitespace are dropped, and
		// one that is not YAML is an error.
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		for _, d := range separator.Split(text, -1) {
			if strings.TrimSpace(d) == "" {
				continue
			}
			var head struct {
				Kind string `json:"kind"`
			}
			if err := yaml.Unmarshal([]byte(d), &head); err != nil {
				return "", fmt.Errorf("YAML parse error on %s: %w", name, err)
			}
			docs = append(docs, doc{name, strings.TrimSpace(d), head.Kind})
		}
	}
	sort.SliceStable(docs, func(i, j int) bool { return rank(docs[i].kind) < rank(docs[j].kind) })
	for _, d := range docs {
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", d.source, d.text)
	}
	return out.String(), nil
}
