// Package crds holds the CRDs a management cluster that installed the
// pinned Cluster API, CAPA, CAPZ and CAPD releases serves, as the function
// reads them to check that what it composes is served: names, served
// versions and the contract labels the releases' installs add, without
// schemas. Render and the in-process tests give them to the function as
// Crossplane would.
package crds

import (
	"bytes"
	_ "embed" // The generated file.
	"strings"

	"sigs.k8s.io/yaml"
)

//go:generate go run ../../cmd/crds -o served.yaml

//go:embed served.yaml
var served []byte

// YAML is the CRDs as a YAML stream.
func YAML() []byte { return bytes.Clone(served) }

// Objects are the CRDs, each as its JSON object, in name order.
func Objects() ([]map[string]any, error) {
	var out []map[string]any
	for _, doc := range strings.Split(string(served), "\n---\n") {
		o := map[string]any{}
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			return nil, err
		}
		if o["kind"] == "CustomResourceDefinition" {
			out = append(out, o)
		}
	}
	return out, nil
}
