package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/fleetnodepool/function-fleetnodepool/test/exampleio"
	"github.com/fleetnodepool/function-fleetnodepool/test/internal/sandbox"
)

// simClusterTimeout bounds the wait for a cell's sim Cluster's control
// plane: the in-memory machine's simulated start-up, after its managers'
// first reconciles, on a machine the other cells share.
const simClusterTimeout = 5 * time.Minute

// startCells starts n cells next to the sandbox s, in dir/cells, then
// provider-kubernetes with a ClusterProviderConfig per cell; creates in
// each cell the cells example's Cluster, adds the cells to the policy and
// creates the example pool in every cell, and waits until each is Ready.
func startCells(ctx context.Context, s *sandbox.Sandbox, dir string, n int, progress func(string, ...any)) ([]*sandbox.Cell, error) {
	pk, err := sandbox.ProviderKubernetesFromEnv()
	if err != nil {
		return nil, err
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("cell-%d", i+1)
	}
	t0 := time.Now()
	cells, err := sandbox.StartCells(ctx, filepath.Join(dir, "cells"), names, progress)
	if err != nil {
		return nil, err
	}
	progress("  %d cells ready in %s", n, time.Since(t0).Round(100*time.Millisecond))
	ok := false
	defer func() {
		if !ok {
			stopCells(cells, progress)
		}
	}()
	if err := s.StartProviderKubernetes(ctx, pk, cells); err != nil {
		return nil, err
	}
	xr, err := exampleio.Object(filepath.Join(sandbox.CellsExample, "xr.yaml"))
	if err != nil {
		return nil, err
	}
	if err := simClusterInCells(ctx, cells, xr, progress); err != nil {
		return nil, err
	}
	if err := cellPools(ctx, s, cells, xr, progress); err != nil {
		return nil, err
	}
	ok = true
	return cells, nil
}

// simClusterInCells creates the cells example's Cluster in every cell, at
// the Composition's stable channel version, and waits until their control
// planes are available.
func simClusterInCells(ctx context.Context, cells []*sandbox.Cell, xr *unstructured.Unstructured, progress func(string, ...any)) error {
	version, err := sandbox.ChannelVersion(filepath.Join("package", "configuration", "composition.yaml"), "stable")
	if err != nil {
		return err
	}
	cluster, _, _ := unstructured.NestedString(xr.Object, "spec", "clusterName")
	t0 := time.Now()
	progress("creating the sim Cluster %s/%s in every cell at %s", xr.GetNamespace(), cluster, version)
	errs := make([]error, len(cells))
	var wg sync.WaitGroup
	for i, c := range cells {
		wg.Go(func() { errs[i] = c.CreateSimCluster(ctx, xr.GetNamespace(), cluster, version, simClusterTimeout) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	progress("  their control planes available in %s", time.Since(t0).Round(100*time.Millisecond))
	return nil
}

// cellPools adds the cells to the policy (watched) and creates the cells
// example's pool in each, named after it, and waits until each is Ready.
func cellPools(ctx context.Context, s *sandbox.Sandbox, cells []*sandbox.Cell, xr *unstructured.Unstructured, progress func(string, ...any)) error {
	if err := s.UseCells(ctx, cells, true); err != nil {
		return err
	}
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": xr.GetNamespace()}}}
	if err := s.Create(ctx, ns); err != nil {
		return err
	}
	t0 := time.Now()
	for _, c := range cells {
		pool, err := sandbox.CellPool(".", xr.GetName()+"-"+c.Name, c.Name)
		if err != nil {
			return err
		}
		if err := s.Create(ctx, pool); err != nil {
			return err
		}
		progress("created FleetNodePool %s/%s in cell %s", pool.GetNamespace(), pool.GetName(), c.Name)
	}
	for _, c := range cells {
		if err := s.WaitReady(ctx, xr.GetNamespace(), xr.GetName()+"-"+c.Name, 5*time.Minute); err != nil {
			return err
		}
	}
	progress("  the pools in the cells Ready in %s", time.Since(t0).Round(100*time.Millisecond))
	return nil
}

// stopCells stops the cells, all at once.
func stopCells(cells []*sandbox.Cell, progress func(string, ...any)) {
	progress("stopping the cells")
	var wg sync.WaitGroup
	for _, c := range cells {
		wg.Go(c.Stop)
	}
	wg.Wait()
}

// printCells says where the cells are and what to look at.
func printCells(cells []*sandbox.Cell, central, dir string) {
	if len(cells) == 0 {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nCells: %d Cluster API management clusters of their own, each with the\n", len(cells))
	b.WriteString("Cluster API managers and a sim Cluster team-cells/sim-1, reached from the\n")
	b.WriteString("central cluster through provider-kubernetes (a ClusterProviderConfig per\n")
	b.WriteString("cell, listed in the policy's cells). A pool in each (docs/cells.md):\n\n")
	for _, c := range cells {
		fmt.Fprintf(&b, "  %-8s pool team-cells/workers-%s   KUBECONFIG=%s   logs %s/*.log\n", c.Name, c.Name, c.Kubeconfig, c.Dir)
	}
	c := cells[0]
	fmt.Fprintf(&b, `
  export PATH=$PWD/bin/kube-v1.36.3:$PATH
  kubectl --kubeconfig=%[2]s get fleetnodepools -n team-cells -o wide        # centrally: each pool, its cell, its progress
  kubectl --kubeconfig=%[2]s get objects.kubernetes.m.crossplane.io -n team-cells   # what is applied in the cells
  kubectl --kubeconfig=%[1]s get clusters,machinedeployments,machinesets,machines -n team-cells
  kubectl --kubeconfig=%[2]s patch fleetnodepool -n team-cells workers-%[3]s --type=merge -p '{"spec":{"machine":{"class":"medium"}}}'
  kubectl --kubeconfig=%[1]s get machinesets,devmachinetemplates -n team-cells -w   # the rollout, in the cell

Each Object reaches its cell by its providerConfigRef {kind: ClusterProviderConfig,
name: <cell>}; the cell's object comes back in status.atProvider.manifest.
provider-kubernetes' log: %[4]s/provider-kubernetes.log
`, c.Kubeconfig, central, c.Name, dir)
	fmt.Print(b.String())
}
