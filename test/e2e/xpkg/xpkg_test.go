//go:build xpkg

package xpkg

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/fleetnodepool/function-fleetnodepool/test/internal/render"
	"github.com/fleetnodepool/function-fleetnodepool/test/internal/tier"
)

// packageFiles reads an xpkg (an OCI image tarball) and returns the
// contents of the files in its layers by name, and the image config.
func packageFiles(t *testing.T, path string) (map[string]string, []string, string, map[string]struct{}) {
	t.Helper()
	img, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		t.Fatalf("cannot read %s (run `make xpkg`): %v", path, err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(tr)
			files[strings.TrimPrefix(h.Name, "/")] = string(b)
		}
		_ = rc.Close()
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return files, cfg.Config.Entrypoint, cfg.Config.User, cfg.Config.ExposedPorts
}

func kindsIn(t *testing.T, yml string) []string {
	t.Helper()
	objs, err := render.Objects([]byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind()+"/"+o.GetName())
	}
	slices.Sort(out)
	return out
}

// envDir is the directory `make xpkg` builds the packages into.
const envDir = "XPKG_DIR"

func TestMain(m *testing.M) {
	os.Exit(tier.Main(m, tier.Tier{Name: "xpkg", Env: []string{envDir}}, nil))
}

// TestXpkg inspects the packages `make xpkg` builds with the pinned CLI.
func TestXpkg(t *testing.T) {
	dir := os.Getenv(envDir)
	t.Run("Function", func(t *testing.T) {
		files, entrypoint, user, ports := packageFiles(t, filepath.Join(dir, "function-fleetnodepool.xpkg"))
		want := []string{"CustomResourceDefinition/policies.fleetnodepool.fn.crossplane.io", "Function/function-fleetnodepool"}
		if got := kindsIn(t, files["package.yaml"]); !slices.Equal(got, want) {
			t.Errorf("package.yaml holds %v, want %v", got, want)
		}
		objs, _ := render.Objects([]byte(files["package.yaml"]))
		for _, o := range objs {
			if o.GetKind() != "Function" {
				continue
			}
			caps, _, _ := unstructured.NestedStringSlice(o.Object, "spec", "capabilities")
			if !slices.Equal(caps, []string{"composition"}) {
				t.Errorf("the Function's capabilities are %v, want [composition]", caps)
			}
			if o.GetAnnotations()["meta.crossplane.io/readme"] == "" {
				t.Errorf("the Function has no readme annotation")
			}
			if v, _, _ := unstructured.NestedString(o.Object, "spec", "crossplane", "version"); v == "" {
				t.Errorf("the Function has no crossplane.version constraint")
			}
		}
		if _, ok := files["function"]; !ok {
			t.Errorf("the embedded runtime has no /function binary; files: %v", keys(files))
		}
		if !slices.Equal(entrypoint, []string{"/function"}) || user != "65532:65532" {
			t.Errorf("runtime config: entrypoint %v user %q, want [/function] as 65532:65532", entrypoint, user)
		}
		if _, ok := ports["9443/tcp"]; !ok {
			t.Errorf("runtime config exposes %v, want 9443/tcp", ports)
		}
	})
	for _, variant := range []string{"configuration", "configuration-legacy"} {
		t.Run(variant, func(t *testing.T) {
			files, _, _, _ := packageFiles(t, filepath.Join(dir, variant+"-fleetnodepool.xpkg"))
			got := kindsIn(t, files["package.yaml"])
			for _, want := range []string{"Composition/fleetnodepool", "CompositeResourceDefinition/", "Configuration/" + variant + "-fleetnodepool"} {
				if !slices.ContainsFunc(got, func(k string) bool { return strings.HasPrefix(k, want) }) {
					t.Errorf("package.yaml holds %v, want %s", got, want)
				}
			}
			objs, _ := render.Objects([]byte(files["package.yaml"]))
			for _, o := range objs {
				if o.GetKind() != "Configuration" {
					continue
				}
				deps, _, _ := unstructured.NestedSlice(o.Object, "spec", "dependsOn")
				var dep map[string]any
				if len(deps) == 1 {
					dep, _ = deps[0].(map[string]any)
				}
				if version, _ := dep["version"].(string); dep["kind"] != "Function" || version == "" {
					t.Errorf("the Configuration must depend on the Function with a version constraint, got %v", deps)
				}
				if v, _, _ := unstructured.NestedString(o.Object, "spec", "crossplane", "version"); v == "" {
					t.Errorf("the Configuration has no crossplane.version constraint")
				}
			}
			if ex := files[".up/examples.yaml"]; !strings.Contains(ex, "kind: FleetNodePool") {
				t.Errorf("the Configuration carries no example FleetNodePools; files: %v", keys(files))
			}
		})
	}
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
