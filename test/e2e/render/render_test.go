//go:build render

package render

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetnodepool/function-fleetnodepool/test/internal/render"
	"github.com/fleetnodepool/function-fleetnodepool/test/internal/tier"
)

var update = flag.Bool("update", false, "rewrite the golden files from the current output")

const (
	examplesDir = "../../../examples"
	xrdPath     = "../../../package/configuration/xrd.yaml"
	invalidDir  = "../../../examples/invalid"
)

var (
	tools render.Tools
	fn    *render.Function
)

func TestMain(m *testing.M) {
	os.Exit(tier.Main(m, tier.Tier{Name: "render", Env: render.Env()}, func() (func(), error) {
		var err error
		if tools, err = render.ToolsFromEnv(); err != nil {
			return nil, err
		}
		if fn, err = render.StartFunction(context.Background(), tools.Function); err != nil {
			return nil, err
		}
		return fn.Stop, nil
	}))
}

// TestRenderExamples renders every example and compares the output with its
// golden file in testdata/.
func TestRenderExamples(t *testing.T) {
	xrs, err := filepath.Glob(filepath.Join(examplesDir, "*", "xr.yaml"))
	if err != nil || len(xrs) == 0 {
		t.Fatalf("no examples found under %s: %v", examplesDir, err)
	}
	for _, xr := range xrs {
		dir := filepath.Dir(xr)
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			got, err := render.Render(t.Context(), tools, fn, render.ExampleCase(dir, xrdPath))
			if err != nil {
				t.Fatalf("render %s: %v\nfunction log:\n%s", name, err, fn.Log())
			}
			golden(t, filepath.Join("testdata", name+".golden.yaml"), got)
		})
	}
}

// TestRenderCells renders the example pool in a cell, as its observe-only
// Objects report its Cluster and control plane: every object it composes
// is the one a local pool composes, wrapped in a provider-kubernetes Object
// of the cell.
func TestRenderCells(t *testing.T) {
	dir := filepath.Join(examplesDir, "cells", "sim-machinedeployment")
	got, err := render.Render(t.Context(), tools, fn, render.ExampleCase(dir, xrdPath))
	if err != nil {
		t.Fatalf("render %s: %v\nfunction log:\n%s", dir, err, fn.Log())
	}
	golden(t, filepath.Join("testdata", "cells-sim-machinedeployment.golden.yaml"), got)
}

// TestRenderPackages renders with the Compositions and XRDs the two
// Configuration packages ship: the default (namespaced FleetNodePool) and
// the legacy variant (a cluster-scoped XFleetNodePool created for a
// FleetNodePool claim, composing into the claim's namespace).
func TestRenderPackages(t *testing.T) {
	cases := map[string]render.Case{
		"configuration": {
			XR:          filepath.Join(examplesDir, "aws-machinedeployment", "xr.yaml"),
			Composition: "../../../package/configuration/composition.yaml",
			Functions:   filepath.Join(examplesDir, "aws-machinedeployment", "functions.yaml"),
			XRD:         xrdPath,
			Required:    filepath.Join(examplesDir, "aws-machinedeployment", "required"),
		},
		"configuration-legacy": {
			XR:          "testdata/legacy/xr.yaml",
			Composition: "../../../package/configuration-legacy/composition.yaml",
			Functions:   "testdata/legacy/functions.yaml",
			XRD:         "../../../package/configuration-legacy/xrd.yaml",
			Required:    filepath.Join(examplesDir, "aws-machinedeployment", "required"),
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := render.Render(t.Context(), tools, fn, c)
			if err != nil {
				t.Fatalf("render %s: %v\nfunction log:\n%s", name, err, fn.Log())
			}
			golden(t, filepath.Join("testdata", "package-"+name+".golden.yaml"), got)
		})
	}
}

// TestRenderInvalidExamples renders every invalid example and asserts the
// render fails with each message the example declares in a "# want:" line.
// They render without the XRD, so the function's own validation is what
// answers (the XRD's CEL rules are a second line of defence, tested against
// a real API server).
func TestRenderInvalidExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(invalidDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		if base := filepath.Base(f); base == "composition.yaml" || base == "functions.yaml" {
			continue
		}
		n++
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			wants := wantLines(t, f)
			if len(wants) == 0 {
				t.Fatalf("%s declares no '# want:' line", f)
			}
			c := render.Case{
				XR: f, Composition: filepath.Join(invalidDir, "composition.yaml"), Functions: filepath.Join(invalidDir, "functions.yaml"),
				Required: filepath.Join(invalidDir, "required"),
			}
			out, err := render.Render(t.Context(), tools, fn, c)
			var rerr *render.Error
			if !errors.As(err, &rerr) {
				t.Fatalf("render of %s: want a failed render, got error %v and output:\n%s", name, err, out)
			}
			for _, w := range wants {
				if !strings.Contains(rerr.Stderr, w) {
					t.Errorf("render of %s: stderr does not contain %q:\n%s", name, w, rerr.Stderr)
				}
			}
		})
	}
	if n == 0 {
		t.Fatalf("no invalid examples found under %s", invalidDir)
	}
}

func wantLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path) //nolint:gosec // An invalid example of this repository.
	if err != nil {
		t.Fatal(err)
	}
	var wants []string
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		if w, ok := strings.CutPrefix(s.Text(), "# want: "); ok {
			wants = append(wants, w)
		}
	}
	return wants
}

// golden compares got with the golden file, or rewrites it with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path) //nolint:gosec // A golden file of this repository.
	if err != nil {
		t.Fatalf("cannot read golden file (run `make golden` to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s: -want (golden), +got (rendered):\n%s\nIf the change is intended, run `make golden` and review the diff.", path, diff)
	}
}
