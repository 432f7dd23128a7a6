package render

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Objects parses a render's output into its objects: the XR first, then
// the composed resources, then Crossplane's Result events.
func Objects(out []byte) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	for _, doc := range strings.Split(string(out), "\n---") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			return nil, fmt.Errorf("cannot parse rendered YAML: %w", err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
	return objs, nil
}

// Composed returns the composed resources of a render's output: every
// object but the XR (the first) and Crossplane's Result events.
func Composed(out []byte) ([]*unstructured.Unstructured, error) {
	objs, err := Objects(out)
	if err != nil {
		return nil, err
	}
	var composed []*unstructured.Unstructured
	for i, o := range objs {
		if i == 0 || o.GetKind() == "Result" {
			continue
		}
		composed = append(composed, o)
	}
	return composed, nil
}

// RenderComposed renders c and returns the output and its composed
// resources.
func RenderComposed(ctx context.Context, t Tools, f *Function, c Case) ([]byte, []*unstructured.Unstructured, error) {
	out, err := Render(ctx, t, f, c)
	if err != nil {
		return nil, nil, err
	}
	objs, err := Composed(out)
	return out, objs, err
}

// EditXR writes a copy of the XR at path, edited by edit, into dir, and
// returns the copy's path.
func EditXR(path, dir string, edit func(xr map[string]any)) (string, error) {
	b, err := os.ReadFile(path) //nolint:gosec // An example's XR.
	if err != nil {
		return "", err
	}
	xr := map[string]any{}
	if err := yaml.Unmarshal(b, &xr); err != nil {
		return "", fmt.Errorf("cannot parse %s: %w", path, err)
	}
	edit(xr)
	y, err := yaml.Marshal(xr)
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "xr.yaml")
	return out, os.WriteFile(out, y, 0o600)
}

// Spec returns the spec of an XR being edited.
func Spec(xr map[string]any) map[string]any {
	s, _ := xr["spec"].(map[string]any)
	return s
}
