package pkg

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	apiextensionsv1 "github.com/crossplane/crossplane/apis/v2/apiextensions/v1"
	pkgmetav1 "github.com/crossplane/crossplane/apis/v2/pkg/meta/v1"
	pkgv1 "github.com/crossplane/crossplane/apis/v2/pkg/v1"

	"github.com/fleetnodepool/function-fleetnodepool/test/internal/sandbox"
)

const root = "../../.."

// dependency is the Function package a Configuration depends on.
func dependency(t *testing.T, configuration string) string {
	t.Helper()
	meta := &pkgmetav1.Configuration{}
	readYAML(t, filepath.Join(configuration, "crossplane.yaml"), meta)
	for _, d := range meta.Spec.DependsOn {
		if d.Kind != nil && *d.Kind == pkgv1.FunctionKind && d.Package != nil {
			return *d.Package
		}
	}
	t.Fatalf("%s depends on no Function", configuration)
	return ""
}

func readYAML(t *testing.T, file string, into any) {
	t.Helper()
	b, err := os.ReadFile(file) //nolint:gosec // Files of this repository.
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, into); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// TestFunctionRefIsTheDependencyName: every Composition this repository
// ships or renders references the Function by sandbox.FunctionName, the
// name Crossplane's package manager gives the Configurations' dependency
// (the package path without its registry, as a DNS label: crossplane v2.4.2
// resolver.NewPackage; the package tier checks it against the real package
// manager), so a Configuration installed from its package composes.
func TestFunctionRefIsTheDependencyName(t *testing.T) {
	want := sandbox.FunctionName
	if a, b := dependency(t, filepath.Join(root, "package", "configuration")), dependency(t, filepath.Join(root, "package", "configuration-legacy")); a != b {
		t.Fatalf("the Configurations depend on different Functions: %s and %s", a, b)
	}
	compositions, _ := filepath.Glob(filepath.Join(root, "package", "*", "composition.yaml"))
	examples, _ := filepath.Glob(filepath.Join(root, "examples", "*", "composition.yaml"))
	functions, _ := filepath.Glob(filepath.Join(root, "examples", "*", "functions.yaml"))
	functions = append(functions, filepath.Join(root, "test", "e2e", "render", "testdata", "legacy", "functions.yaml"))

	cases := map[string]struct {
		reason string
		files  []string
		name   func(t *testing.T, file string) []string
	}{
		"Compositions": {
			reason: "A Composition whose functionRef is not the dependency's name fails with 'cannot find an active FunctionRevision'.",
			files:  append(compositions, examples...),
			name: func(t *testing.T, file string) []string {
				t.Helper()
				c := &apiextensionsv1.Composition{}
				readYAML(t, file, c)
				var names []string
				for _, s := range c.Spec.Pipeline {
					names = append(names, s.FunctionRef.Name)
				}
				return names
			},
		},
		"RenderFunctions": {
			reason: "Render matches a Composition's functionRef to a Function of its functions file by name.",
			files:  functions,
			name: func(t *testing.T, file string) []string {
				t.Helper()
				f := &pkgv1.Function{}
				readYAML(t, file, f)
				return []string{f.GetName()}
			},
		},
	}
	for n, tc := range cases {
		t.Run(n, func(t *testing.T) {
			if len(tc.files) == 0 {
				t.Fatal("no files found")
			}
			for _, f := range tc.files {
				for _, got := range tc.name(t, f) {
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("%s\n%s: -want sandbox.FunctionName, +got:\n%s", tc.reason, f, diff)
					}
				}
			}
		})
	}
}
