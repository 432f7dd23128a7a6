package sandbox

import (
	"context"
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fleetnodepool/function-fleetnodepool/test/exampleio"
)

// CellsExample is the example pool in a cell (examples/cells/...), relative
// to the repository root.
const CellsExample = "examples/cells/sim-machinedeployment"

// UseCells adds the cells to the policy of the Composition fleetnodepool
// (input.cells), each reached through its ClusterProviderConfig
// (CellProviderConfig), watched where watch is set, and waits until
// Crossplane made a CompositionRevision of it: a pool created before would
// be composed from the revision before, without cells.
func (s *Sandbox) UseCells(ctx context.Context, cells []*Cell, watch bool) error {
	want := map[string]any{}
	for _, c := range cells {
		cell := map[string]any{"providerConfigRef": map[string]any{"kind": "ClusterProviderConfig", "name": c.Name}}
		if watch {
			cell["watch"] = true
		}
		want[c.Name] = cell
	}
	if err := s.EditPolicy(ctx, func(input map[string]any) { input["cells"] = want }); err != nil {
		return err
	}
	// Crossplane makes the revision asynchronously; a loaded 2-core machine
	// once took over a minute.
	return eventually(ctx, 3*time.Minute, func() error {
		if _, ok := s.LatestPolicy(ctx)["cells"]; !ok {
			return fmt.Errorf("no CompositionRevision of fleetnodepool has input.cells yet (%d revisions)",
				len(s.List(ctx, "apiextensions.crossplane.io/v1", "CompositionRevision")))
		}
		return nil
	})
}

// EditPolicy edits the input of the Composition fleetnodepool's first
// pipeline step: the platform policy.
func (s *Sandbox) EditPolicy(ctx context.Context, edit func(input map[string]any)) error {
	return eventually(ctx, 30*time.Second, func() error {
		comp := s.Get(ctx, "apiextensions.crossplane.io/v1", "Composition", "", "fleetnodepool")
		if comp == nil {
			return fmt.Errorf("no Composition fleetnodepool")
		}
		steps, _, _ := unstructured.NestedSlice(comp.Object, "spec", "pipeline")
		input, _ := steps[0].(map[string]any)["input"].(map[string]any)
		if input == nil {
			return fmt.Errorf("the Composition fleetnodepool's first step has no input")
		}
		edit(input)
		if err := unstructured.SetNestedSlice(comp.Object, steps, "spec", "pipeline"); err != nil {
			return err
		}
		return s.Client.Update(ctx, comp)
	})
}

// LatestPolicy is the policy of the latest CompositionRevision of
// fleetnodepool: what a pool created now is composed with.
func (s *Sandbox) LatestPolicy(ctx context.Context) map[string]any {
	revs := s.List(ctx, "apiextensions.crossplane.io/v1", "CompositionRevision", client.MatchingLabels{"crossplane.io/composition-name": "fleetnodepool"})
	if len(revs) == 0 {
		return nil
	}
	latest := slices.MaxFunc(revs, func(a, b unstructured.Unstructured) int {
		ra, _, _ := unstructured.NestedInt64(a.Object, "spec", "revision")
		rb, _, _ := unstructured.NestedInt64(b.Object, "spec", "revision")
		return int(ra - rb)
	})
	steps, _, _ := unstructured.NestedSlice(latest.Object, "spec", "pipeline")
	if len(steps) == 0 {
		return nil
	}
	input, _ := steps[0].(map[string]any)["input"].(map[string]any)
	return input
}

// CellPool is the example pool in a cell (CellsExample, under the
// repository root), named name, in cell.
func CellPool(root, name, cell string) (*unstructured.Unstructured, error) {
	xr, err := exampleio.Object(root + "/" + CellsExample + "/xr.yaml")
	if err != nil {
		return nil, err
	}
	xr.SetName(name)
	if err := unstructured.SetNestedField(xr.Object, cell, "spec", "cell"); err != nil {
		return nil, err
	}
	return xr, nil
}

// WaitReady waits until a FleetNodePool is Synced and Ready.
func (s *Sandbox) WaitReady(ctx context.Context, namespace, name string, timeout time.Duration) error {
	err := eventually(ctx, timeout, func() error {
		xr := s.Get(ctx, "fleet.nodepool.dev/v1alpha1", "FleetNodePool", namespace, name)
		if xr == nil {
			return fmt.Errorf("not found")
		}
		for _, c := range []string{"Synced", "Ready"} {
			if st, msg := Condition(xr, c); st != "True" {
				return fmt.Errorf("%s %s: %s", c, st, msg)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("FleetNodePool %s/%s not Ready: %w", namespace, name, err)
	}
	return nil
}
