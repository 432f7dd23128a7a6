package pkg

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"sigs.k8s.io/yaml"

	apiextensionsv1 "github.com/crossplane/crossplane/apis/v2/apiextensions/v1"
	pkgmetav1 "github.com/crossplane/crossplane/apis/v2/pkg/meta/v1"
	pkgv1 "github.com/crossplane/crossplane/apis/v2/pkg/v1"

	"github.com/fleetnodepool/function-fleetnodepool/test/internal/sandbox"
)

const root = "../../.."

// dependencyName is the name Crossplane's package manager gives the
// Function it installs for a Configuration's dependency: the package path
// without its registry, as a DNS label (crossplane/v2 v2.4.2,
// internal/controller/pkg/resolver.NewPackage). The package tier checks it
// against the real package manager.
func dependencyName(t *testing.T, configuration string) string {
	t.Helper()
	meta := &pkgmetav1.Configuration{}
	readYAML(t, filepath.Join(configuration, "crossplane.yaml"), meta)
	for _, d := range meta.Spec.DependsOn {
		if d.Kind != nil && *d.Kind == pkgv1.FunctionKind && d.Package != nil {
			ref, err := name.ParseReference(*d.Package)
			if err != nil {
				t.Fatal(err)
			}
			return toDNSLabel(ref.Context().RepositoryStr())
		}
	}
	t.Fatalf("%s depends on no Function", configuration)
	return ""
}

// toDNSLabel is crossplane-runtime v2.4.0's xpkg.ToDNSLabel, which this
// module cannot import without the registry clients and signature
// verifiers its package pulls in: lower-case letters and digits kept, '.',
// '/', ':' and '-' turned into '-', at most 63 characters, no leading or
// trailing '-'.
func toDNSLabel(s string) string {
	var cut strings.Builder
	for i := range s {
		b := s[i]
		if ('a' <= b && b <= 'z') || ('0' <= b && b <= '9') {
			cut.WriteByte(b)
		}
		if (b == '.' || b == '/' || b == ':' || b == '-') && (i != 0 && i != 62 && i != len(s)-1) {
			cut.WriteByte('-')
		}
		if i == 62 {
			break
		}
	}
	return strings.Trim(cut.String(), "-")
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
// ships or renders references the Function by the name the package manager
// gives the Configurations' dependency, so a Configuration installed from
// its package composes; the render Function files and the sandbox's
// hand-registered revision use the same name.
func TestFunctionRefIsTheDependencyName(t *testing.T) {
	want := dependencyName(t, filepath.Join(root, "package", "configuration"))
	if legacy := dependencyName(t, filepath.Join(root, "package", "configuration-legacy")); legacy != want {
		t.Fatalf("the Configurations depend on different Functions: %s and %s", want, legacy)
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
		"Sandbox": {
			reason: "The sandbox registers the function by hand under the name the Compositions reference.",
			files:  []string{"test/internal/sandbox"},
			name:   func(*testing.T, string) []string { return []string{sandbox.FunctionName} },
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
						t.Errorf("%s\n%s: -want the dependency's name, +got:\n%s", tc.reason, f, diff)
					}
				}
			}
		})
	}
}
