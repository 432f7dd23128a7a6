package sandbox

import (
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"

	"github.com/fleetnodepool/function-fleetnodepool/test/internal/upstream"
)

// crossplaneValues is the Crossplane Helm chart values the project
// recommends for Cluster API workloads, from the module root.
var crossplaneValues = filepath.Join("package", "crossplane", "values.yaml")

// RecommendedCrossplaneArgs are the flags of `crossplane core start` the
// project recommends for Cluster API workloads (package/crossplane/values.yaml,
// the args of Crossplane's Helm chart): every sandbox runs Crossplane with
// them, so the tests run what users are told to run.
func RecommendedCrossplaneArgs() ([]string, error) {
	root, err := upstream.Root()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(root, crossplaneValues)) //nolint:gosec // The module's own file.
	if err != nil {
		return nil, fmt.Errorf("cannot read the recommended Crossplane settings: %w", err)
	}
	var v struct {
		Args []string `json:"args"`
	}
	if err := yaml.UnmarshalStrict(b, &v); err != nil {
		return nil, fmt.Errorf("cannot parse %s: %w", crossplaneValues, err)
	}
	return v.Args, nil
}
