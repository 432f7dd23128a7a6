package monitoring

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/fleetnodepool/function-fleetnodepool/test/internal/upstream"
)

// root is the module root, from this package's folder.
const root = "../.."

// objectMeta is the part of metadata the configuration may read: CRD
// schemas leave metadata to the API server's ObjectMeta.
var objectMeta = apiextensionsv1.JSONSchemaProps{Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
	"name": {Type: "string"}, "namespace": {Type: "string"}, "uid": {Type: "string"},
	"generation": {Type: "integer"}, "creationTimestamp": {Type: "string"},
	"labels":      {Type: "object", AdditionalProperties: &apiextensionsv1.JSONSchemaPropsOrBool{Schema: &apiextensionsv1.JSONSchemaProps{Type: "string"}}},
	"annotations": {Type: "object", AdditionalProperties: &apiextensionsv1.JSONSchemaPropsOrBool{Schema: &apiextensionsv1.JSONSchemaProps{Type: "string"}}},
}}

// crossplaneConditions is what Crossplane adds to every XR's and claim's
// status (crossplane/v2 internal/xcrd: status.conditions of
// crossplane-runtime's Condition).
var crossplaneConditions = apiextensionsv1.JSONSchemaProps{Type: "array", Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &apiextensionsv1.JSONSchemaProps{
	Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
		"type": {Type: "string"}, "status": {Type: "string"}, "reason": {Type: "string"}, "message": {Type: "string"},
		"lastTransitionTime": {Type: "string", Format: "date-time"}, "observedGeneration": {Type: "integer"},
	},
}}}

// xrdSchema is the FleetNodePool's schema: the XRD's (generated from
// apis/fleet/v1alpha1) with the fields Crossplane adds.
func xrdSchema(t *testing.T) *apiextensionsv1.JSONSchemaProps {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "package/configuration/xrd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var xrd struct {
		Spec struct {
			Versions []struct {
				Name   string `json:"name"`
				Schema struct {
					OpenAPIV3Schema apiextensionsv1.JSONSchemaProps `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &xrd); err != nil {
		t.Fatal(err)
	}
	for _, v := range xrd.Spec.Versions {
		if v.Name == "v1alpha1" {
			s := v.Schema.OpenAPIV3Schema
			s.Properties["metadata"] = objectMeta
			status := s.Properties["status"]
			status.Properties["conditions"] = crossplaneConditions
			s.Properties["status"] = status
			return &s
		}
	}
	t.Fatal("the XRD serves no v1alpha1")
	return nil
}

// crdSchema is a Cluster API kind's schema at a version, from the CRDs of
// the pinned module.
func crdSchema(t *testing.T, plural, version string) *apiextensionsv1.JSONSchemaProps {
	t.Helper()
	dir, err := upstream.Dir("sigs.k8s.io/cluster-api", "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "core/config/crd/bases", "cluster.x-k8s.io_"+plural+".yaml")) //nolint:gosec // A CRD of the pinned Cluster API module.
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.Unmarshal(b, crd); err != nil {
		t.Fatal(err)
	}
	for _, v := range crd.Spec.Versions {
		if v.Name == version {
			s := *v.Schema.OpenAPIV3Schema
			s.Properties["metadata"] = objectMeta
			return &s
		}
	}
	t.Fatalf("%s serves no %s", crd.Name, version)
	return nil
}

// checkPaths is every path of a resource's metrics that its schema does not
// have, as "metric: problem".
func checkPaths(r KSMResource, s *apiextensionsv1.JSONSchemaProps) []string {
	var bad []string
	check := func(metric string, base *apiextensionsv1.JSONSchemaProps, path []string) {
		if _, err := Schema(base, path); err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", metric, err))
		}
	}
	for label, path := range r.LabelsFromPath {
		check("labelsFromPath."+label, s, path)
	}
	for _, m := range r.Metrics {
		g, err := m.Generator()
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		at, err := Schema(s, g.Path)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", r.FullName(m), err))
			continue
		}
		if len(g.ValueFrom) > 0 {
			check(r.FullName(m)+" valueFrom", at, g.ValueFrom)
		}
		for label, path := range g.LabelsFromPath {
			check(r.FullName(m)+" label "+label, at, path)
		}
	}
	sort.Strings(bad)
	return bad
}

func TestKubeStateMetricsPaths(t *testing.T) {
	c, err := ReadKSMConfig(root)
	if err != nil {
		t.Fatal(err)
	}
	schemas := map[string]*apiextensionsv1.JSONSchemaProps{
		"fleet.nodepool.dev/v1alpha1/FleetNodePool":  xrdSchema(t),
		"cluster.x-k8s.io/v1beta2/MachineDeployment": crdSchema(t, "machinedeployments", "v1beta2"),
		"cluster.x-k8s.io/v1beta2/MachinePool":       crdSchema(t, "machinepools", "v1beta2"),
	}
	var kinds []string
	for _, r := range c.Spec.Resources {
		gvk := strings.Join([]string{r.GroupVersionKind.Group, r.GroupVersionKind.Version, r.GroupVersionKind.Kind}, "/")
		kinds = append(kinds, gvk)
		s, ok := schemas[gvk]
		if !ok {
			t.Errorf("%s: the configuration has metrics of %s, which no check covers: add its schema here", KubeStateMetricsConfig, gvk)
			continue
		}
		if diff := cmp.Diff([]string(nil), checkPaths(r, s)); diff != "" {
			t.Errorf("%s: paths of %s that its schema does not have (-want, +got):\n%s", KubeStateMetricsConfig, gvk, diff)
		}
	}
	if diff := cmp.Diff([]string{"fleet.nodepool.dev/v1alpha1/FleetNodePool", "cluster.x-k8s.io/v1beta2/MachineDeployment", "cluster.x-k8s.io/v1beta2/MachinePool"}, kinds); diff != "" {
		t.Errorf("%s: the kinds it exports (-want, +got):\n%s", KubeStateMetricsConfig, diff)
	}
}

func TestCheckPathsCatchesDrift(t *testing.T) {
	s := xrdSchema(t)
	gauge := func(path ...string) KSMMetric {
		m := KSMMetric{Name: "m"}
		m.Each.Type, m.Each.Gauge = "Gauge", &KSMGenerator{Path: path}
		return m
	}
	cases := map[string]struct {
		reason string
		r      KSMResource
		want   []string
	}{
		"FieldOfTheTypes": {reason: "A status field of apis/fleet/v1alpha1 resolves.",
			r: KSMResource{MetricNamePrefix: "p", Metrics: []KSMMetric{gauge("status", "readyReplicas")}}},
		"WrongStatusPath": {reason: "A misspelt status field (readyReplica) is caught, naming where the walk stopped.",
			r:    KSMResource{MetricNamePrefix: "p", Metrics: []KSMMetric{gauge("status", "readyReplica")}},
			want: []string{`p_m: no field "readyReplica" at .status`}},
		"RenamedNestedField": {reason: "A field moved in the types (rollout.state read as rolloutState) is caught.",
			r:    KSMResource{MetricNamePrefix: "p", Metrics: []KSMMetric{gauge("status", "rolloutState")}},
			want: []string{`p_m: no field "rolloutState" at .status`}},
		"ConditionValueFrom": {reason: "Paths under conditions resolve in each item; a wrong one is caught.",
			r: KSMResource{MetricNamePrefix: "p", Metrics: []KSMMetric{func() KSMMetric {
				m := gauge("status", "conditions")
				m.Each.Gauge.ValueFrom = []string{"lastTransitionTimes"}
				return m
			}()}},
			want: []string{`p_m valueFrom: no field "lastTransitionTimes" at .`}},
		"Label": {reason: "A resource label reads a path too.",
			r:    KSMResource{MetricNamePrefix: "p", LabelsFromPath: map[string][]string{"cluster": {"spec", "cluster"}}},
			want: []string{`labelsFromPath.cluster: no field "cluster" at .spec`}},
		"Type": {reason: "A generator of an unknown type is caught.",
			r:    KSMResource{MetricNamePrefix: "p", Metrics: []KSMMetric{{Name: "m"}}},
			want: []string{`metric m: each.type "" is not Gauge, Info or StateSet`}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, checkPaths(tc.r, s)); diff != "" {
				t.Errorf("%s\ncheckPaths(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}
