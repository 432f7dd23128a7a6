// Package exampleio builds the RunFunctionRequest Crossplane sends for an
// example of the repository: its FleetNodePool, its Composition's policy
// input and its required resources (the Cluster, and the management
// cluster's CRDs of test/internal/crds), plus any observed
// composed resources. Tests run the function in process on it.
package exampleio

import (
	"maps"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/types/known/structpb"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/crossplane/crossplane-runtime/v2/pkg/errors"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"

	"github.com/fleetnodepool/function-fleetnodepool/test/internal/crds"
	"github.com/fleetnodepool/function-fleetnodepool/test/internal/render"
)

// Error strings.
const (
	errFmtRead     = "cannot read %s"
	errFmtNoInput  = "cannot find the pipeline step's input in %s"
	errFmtNoObject = "%s holds no object"
)

// AnnotationResourceName is the composition resource name Crossplane
// annotates each composed resource with: its key in observed state.
const AnnotationResourceName = "crossplane.io/composition-resource-name"

// ForExample is the request for the example in dir (e.g.
// examples/aws-machinedeployment) with the observed composed resources.
func ForExample(dir string, observed ...*unstructured.Unstructured) (*fnv1.RunFunctionRequest, error) {
	xr, err := Object(filepath.Join(dir, "xr.yaml"))
	if err != nil {
		return nil, err
	}
	comp, err := Object(filepath.Join(dir, "composition.yaml"))
	if err != nil {
		return nil, err
	}
	pipeline, _, _ := unstructured.NestedSlice(comp.Object, "spec", "pipeline")
	if len(pipeline) == 0 {
		return nil, errors.Errorf(errFmtNoInput, dir)
	}
	input, _ := pipeline[0].(map[string]any)["input"].(map[string]any)
	if input == nil {
		return nil, errors.Errorf(errFmtNoInput, dir)
	}
	cluster, err := Object(filepath.Join(dir, "required", "cluster.yaml"))
	if err != nil {
		return nil, err
	}
	req := &fnv1.RunFunctionRequest{
		Meta:              &fnv1.RequestMeta{Tag: "test"},
		Observed:          &fnv1.State{Composite: &fnv1.Resource{Resource: mustStruct(xr.Object)}, Resources: map[string]*fnv1.Resource{}},
		Input:             mustStruct(input),
		RequiredResources: map[string]*fnv1.Resources{"cluster": {Items: []*fnv1.Resource{{Resource: mustStruct(cluster.Object)}}}},
	}
	maps.Copy(req.RequiredResources, ServedCRDs())
	for _, o := range observed {
		req.Observed.Resources[o.GetAnnotations()[AnnotationResourceName]] = &fnv1.Resource{Resource: mustStruct(o.Object)}
	}
	return req, nil
}

// ServedCRDs are the management cluster's CRDs (test/internal/crds) as
// Crossplane sends them to a function that asks for them all, each under
// the key the function asks for it: "crd-" and its name.
func ServedCRDs() map[string]*fnv1.Resources {
	objs, err := crds.Objects()
	if err != nil {
		panic(err) // The generated file always parses: its test says so.
	}
	out := make(map[string]*fnv1.Resources, len(objs))
	for _, o := range objs {
		name, _, _ := unstructured.NestedString(o, "metadata", "name")
		out["crd-"+name] = &fnv1.Resources{Items: []*fnv1.Resource{{Resource: mustStruct(o)}}}
	}
	return out
}

// Object reads one YAML object.
func Object(path string) (*unstructured.Unstructured, error) {
	objs, err := Objects(path)
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return nil, errors.Errorf(errFmtNoObject, path)
	}
	return objs[0], nil
}

// Objects reads a multi-document YAML file.
func Objects(path string) ([]*unstructured.Unstructured, error) {
	b, err := os.ReadFile(path) //nolint:gosec // A fixture of this repository.
	if err != nil {
		return nil, errors.Wrapf(err, errFmtRead, path)
	}
	objs, err := render.Objects(b)
	return objs, errors.Wrapf(err, errFmtRead, path)
}

// mustStruct converts JSON-compatible YAML values; they always convert.
func mustStruct(m map[string]any) *structpb.Struct {
	s, err := structpb.NewStruct(m)
	if err != nil {
		panic(err)
	}
	return s
}
