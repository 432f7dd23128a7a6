//go:build cells

// Package cells is the cells e2e tier (`make test-cells`, build tag
// cells): one central Crossplane with the function composes node pools
// into two cells, each a Cluster API management cluster of its own (etcd,
// kube-apiserver, the real Cluster API managers and a sim Cluster, in a
// network namespace of its own), through provider-kubernetes Objects run
// out of cluster, as `make sandbox CELLS=2` runs them. Two pools per cell
// are composed, a channel bump rolls them after their control planes, a
// class change rotates templates, and a cell's API server is stopped for a
// while; the invariant watcher judges each cell throughout, from what the
// cell's API server says. The tiers, their tags, targets and environments:
// test/README.md.
package cells

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fleetnodepool/function-fleetnodepool/fn/plan"
	"github.com/fleetnodepool/function-fleetnodepool/test/internal/fleet"
	"github.com/fleetnodepool/function-fleetnodepool/test/internal/sandbox"
	"github.com/fleetnodepool/function-fleetnodepool/test/internal/tier"
)

const (
	root   = "../../.."
	config = root + "/package/configuration"
	// namespace and cluster of the example pool in a cell, and of the sim
	// Cluster every cell has.
	namespace = "team-cells"
	cluster   = "sim-1"
)

var (
	nCells = flag.Int("cells.cells", 2, "how many cells")
	nPools = flag.Int("cells.pools", 2, "how many pools per cell, all on the cell's one Cluster")
	outage = flag.Duration("cells.outage", 45*time.Second, "how long a cell's API server is stopped")
	steady = flag.Duration("cells.steady", 0, "after the pools are composed, how long to measure the CPU the steady fleet costs (0: not measured)")
	only   = flag.Bool("cells.compose-only", false, "stop after the pools are composed (and measured): a scale run")
	watch  = flag.Bool("cells.watch", true, "the policy's cells ask provider-kubernetes to watch what pools read (input.cells.<cell>.watch)")
	pkArgs = flag.String("cells.provider-args", "", "more flags of provider-kubernetes, comma separated (e.g. --poll=10m,--no-debug), each replacing the tier's of the same name")
)

func TestMain(m *testing.M) {
	env := append(append(sandbox.Env(), sandbox.CellsEnv()...), sandbox.ProviderKubernetesEnv)
	os.Exit(tier.Main(m, tier.Tier{Name: "cells", Env: env}, nil))
}

// A run is the central sandbox, its cells and their watchers.
type run struct {
	t        *testing.T
	ctx      context.Context
	sb       *sandbox.Sandbox
	cells    []*sandbox.Cell
	watchers []*fleet.Watcher
	// stopWatchers stops the watchers' runs.
	stopWatchers context.CancelFunc
	// pools by cell name.
	pools map[string][]string
}

func (r *run) logf(f string, a ...any) { r.t.Logf(f, a...) }

// TestCells: pools compose into every cell; a channel bump rolls them once
// their control planes run it; a class change rotates their templates,
// each old one kept until no MachineSet of the cell uses it; a cell whose
// API server stops loses nothing and converges when it is back. No
// invariant breaks in any cell.
func TestCells(t *testing.T) {
	r := start(t)
	defer r.peakMemory()
	r.phase("compose", r.compose)
	if *steady > 0 {
		r.phase("steady", r.measure)
	}
	if *only {
		return
	}
	r.phase("channel bump, control planes first", r.channelBump)
	r.phase("class change rotates templates", r.classChange)
	r.phase("a cell's API server stops and returns", r.cellOutage)
	for i, w := range r.watchers {
		checked, failed := w.Snapshots()
		r.logf("cell %s: %d snapshots checked, %d failed to read (its API server was down)", r.cells[i].Name, checked, failed)
		if checked < 20 {
			t.Errorf("cell %s: only %d snapshots checked", r.cells[i].Name, checked)
		}
		for _, v := range w.Violations() {
			t.Errorf("cell %s: invariant violated at %s: %s", r.cells[i].Name, v.At.Round(time.Second), v.Violation)
		}
	}
}

// peakMemory logs the peak RSS of every process of the run.
func (r *run) peakMemory() {
	central := r.sb.PeakMemory()
	for _, name := range slices.Sorted(maps.Keys(central)) {
		r.logf("central %s: peak RSS %d MiB", name, central[name]>>20)
	}
	for _, c := range r.cells {
		mem := c.PeakMemory()
		for _, name := range slices.Sorted(maps.Keys(mem)) {
			r.logf("cell %s %s: peak RSS %d MiB", c.Name, name, mem[name]>>20)
		}
	}
}

// start brings up the central sandbox, the cells with their sim Cluster,
// provider-kubernetes and the Composition with the cells, and a watcher per
// cell.
func start(t *testing.T) *run {
	t.Helper()
	ctx := t.Context()
	progress := func(f string, a ...any) { t.Logf(f, a...) }
	dir := t.TempDir()
	bins, err := sandbox.BinariesFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	pk, err := sandbox.ProviderKubernetesFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	sb, err := sandbox.Start(ctx, dir, bins, progress)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Stop)
	names := make([]string, *nCells)
	for i := range names {
		names[i] = fmt.Sprintf("cell-%d", i+1)
	}
	cells, err := sandbox.StartCells(ctx, filepath.Join(dir, "cells"), names, progress)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, c := range cells {
			c.Stop()
		}
	})
	if err := sb.StartProviderKubernetes(ctx, pk, cells, strings.FieldsFunc(*pkArgs, func(r rune) bool { return r == ',' })...); err != nil {
		t.Fatal(err)
	}
	version, err := sandbox.ChannelVersion(filepath.Join(config, "composition.yaml"), "stable")
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, len(cells))
	for _, c := range cells {
		go func() { errs <- c.CreateSimCluster(ctx, namespace, cluster, version, 5*time.Minute) }()
	}
	for range cells {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := sb.InstallConfiguration(ctx, config); err != nil {
		t.Fatal(err)
	}
	if err := sb.UseCells(ctx, cells, *watch); err != nil {
		t.Fatal(err)
	}
	r := &run{t: t, ctx: ctx, sb: sb, cells: cells, pools: map[string][]string{}}
	for _, c := range cells {
		w := fleet.NewWatcher(c.Client, fleet.PoolsFrom(sb.Client))
		w.SetConcurrency(namespace+"/"+cluster, 1)
		r.watchers = append(r.watchers, w)
	}
	r.watch()
	r.logf("central sandbox, %d cells with their sim Cluster and provider-kubernetes up in %s", len(cells), time.Since(t0).Round(100*time.Millisecond))
	return r
}

// watch runs the watchers, each snapshotting its cell twice a second,
// until stopWatchers.
func (r *run) watch() {
	ctx, cancel := context.WithCancel(r.ctx)
	r.stopWatchers = cancel
	for _, w := range r.watchers {
		go w.Run(ctx, 500*time.Millisecond)
	}
}

func (r *run) phase(name string, fn func()) {
	t0 := time.Now()
	r.logf("=== phase: %s", name)
	fn()
	r.logf("=== phase %q took %s", name, time.Since(t0).Round(100*time.Millisecond))
}

// compose creates the pools and waits until each runs its machines in its
// cell.
func (r *run) compose() {
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": namespace}}}
	if err := r.sb.Create(r.ctx, ns); err != nil {
		r.t.Fatal(err)
	}
	for _, c := range r.cells {
		for i := range *nPools {
			name := fmt.Sprintf("%s-p%d", c.Name, i+1)
			xr, err := sandbox.CellPool(root, name, c.Name)
			if err != nil {
				r.t.Fatal(err)
			}
			if err := r.sb.Create(r.ctx, xr); err != nil {
				r.t.Fatal(err)
			}
			r.pools[c.Name] = append(r.pools[c.Name], name)
		}
	}
	// A minute per 10 pools beyond the first minutes: a scale run's cell
	// makes every machine on the same 2 cores.
	r.waitReady("every pool Ready, its MachineDeployment Available in its cell", 4*time.Minute+time.Duration(*nCells**nPools)*6*time.Second)
	for _, c := range r.cells {
		mds := r.cellList(c, "MachineDeployment")
		if len(mds) != len(r.pools[c.Name]) {
			r.t.Errorf("cell %s has %d MachineDeployments, want one per pool (%d)", c.Name, len(mds), len(r.pools[c.Name]))
		}
	}
	// Nothing of a pool in a cell is composed into the central cluster
	// but its Objects.
	if n := len(r.sb.List(r.ctx, "cluster.x-k8s.io/v1beta2", "MachineDeployment")); n != 0 {
		r.t.Errorf("the central cluster has %d MachineDeployments, want none", n)
	}
}

// measure logs the CPU each process used while the composed fleet stood
// still for the steady window, per minute: what a cell's pools cost at
// rest (provider-kubernetes' polls and watches, Crossplane's and the
// function's reconciles, the API servers).
//
// The watchers pause meanwhile: their lists, twice a second, would cost the
// API servers more than the fleet does (13 CPU-s/min at 50 pools). Nothing
// changes in the window.
func (r *run) measure() {
	r.stopWatchers()
	defer r.watch()
	pids := map[string]int{}
	for name, pid := range r.sb.Pids() {
		pids["central "+name] = pid
	}
	for _, c := range r.cells {
		for name, pid := range c.Pids() {
			pids[c.Name+" "+name] = pid
		}
	}
	before := sandbox.CPU(pids)
	time.Sleep(*steady)
	after := sandbox.CPU(pids)
	pools := 0
	for _, ps := range r.pools {
		pools += len(ps)
	}
	r.logf("steady fleet of %d pools (%d Objects) over %s, CPU seconds per minute:", pools, len(r.sb.List(r.ctx, "kubernetes.m.crossplane.io/v1alpha1", "Object")), *steady)
	for _, name := range slices.Sorted(maps.Keys(pids)) {
		r.logf("  %-40s %6.2f", name, (after[name]-before[name])/steady.Minutes())
	}
}

// channelBump moves the stable channel to the rapid version: the pools
// wait for their control planes, then roll, one at a time per Cluster.
func (r *run) channelBump() {
	to, err := sandbox.ChannelVersion(filepath.Join(config, "composition.yaml"), "rapid")
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.sb.EditPolicy(r.ctx, func(input map[string]any) {
		input["channels"].(map[string]any)["stable"] = to
	}); err != nil {
		r.t.Fatal(err)
	}
	sandbox.Eventually(r.t, "every pool UpgradePending, waiting for its control plane", sandbox.ReactTimeout, func() error {
		return r.everyPool(func(xr *unstructured.Unstructured) error {
			if st, msg := sandbox.Condition(xr, "UpgradePending"); st != "True" {
				return fmt.Errorf("UpgradePending %s: %s", st, msg)
			}
			return nil
		})
	})
	for _, c := range r.cells {
		for _, md := range r.cellList(c, "MachineDeployment") {
			if v, _, _ := unstructured.NestedString(md.Object, "spec", "template", "spec", "version"); v == to {
				r.t.Errorf("cell %s: MachineDeployment %s at %s before its control plane", c.Name, md.GetName(), v)
			}
		}
	}
	for _, c := range r.cells {
		kcp := &unstructured.Unstructured{}
		kcp.SetAPIVersion("controlplane.cluster.x-k8s.io/v1beta2")
		kcp.SetKind("KubeadmControlPlane")
		if err := c.Client.Get(r.ctx, client.ObjectKey{Namespace: namespace, Name: cluster}, kcp); err != nil {
			r.t.Fatal(err)
		}
		patch := client.MergeFrom(kcp.DeepCopy())
		_ = unstructured.SetNestedField(kcp.Object, to, "spec", "version")
		if err := c.Client.Patch(r.ctx, kcp, patch); err != nil {
			r.t.Fatal(err)
		}
	}
	sandbox.Eventually(r.t, "every MachineDeployment of every cell at "+to+", Available", 8*time.Minute, func() error {
		return r.everyCellMD(func(md *unstructured.Unstructured) error {
			if v, _, _ := unstructured.NestedString(md.Object, "spec", "template", "spec", "version"); v != to {
				return fmt.Errorf("at %s", v)
			}
			return settled(md)
		})
	})
	r.waitReady("every pool Ready at "+to, 2*time.Minute)
}

// classChange moves the first pool of each cell to another class: a new
// infrastructure template, the old one kept while a MachineSet of the cell
// uses it (the watcher's rule), then released.
func (r *run) classChange() {
	olds := map[string]string{}
	for _, c := range r.cells {
		pool := r.pools[c.Name][0]
		olds[c.Name] = r.template(c, pool)
		r.patchPool(pool, map[string]any{"spec": map[string]any{"machine": map[string]any{"class": "medium"}}})
	}
	sandbox.Eventually(r.t, "every first pool on a new template, rolled out", 5*time.Minute, func() error {
		for _, c := range r.cells {
			pool := r.pools[c.Name][0]
			if now := r.template(c, pool); now == olds[c.Name] || now == "" {
				return fmt.Errorf("cell %s: pool %s still on %s", c.Name, pool, olds[c.Name])
			}
		}
		return r.everyCellMD(settled)
	})
	// Released once unused for plan.WatchedCellReleaseAfter (the cells are
	// watched).
	sandbox.Eventually(r.t, "every old template released in its cell", plan.WatchedCellReleaseAfter+3*time.Minute, func() error {
		for _, c := range r.cells {
			for _, tpl := range r.cellList(c, "DevMachineTemplate") {
				if tpl.GetName() == olds[c.Name] {
					return fmt.Errorf("cell %s: %s still there", c.Name, tpl.GetName())
				}
			}
		}
		return nil
	})
}

// cellOutage stops the last cell's API server while one of its pools is
// scaled: its pools are held (Synced False, naming the cell), every Object
// stays, and once the API server is back the pools converge.
func (r *run) cellOutage() {
	c := r.cells[len(r.cells)-1]
	objects := r.objects(c)
	t0 := time.Now()
	if err := c.StopAPIServer(r.ctx); err != nil {
		r.t.Fatal(err)
	}
	pool := r.pools[c.Name][len(r.pools[c.Name])-1]
	r.patchPool(pool, map[string]any{"spec": map[string]any{"scaling": map[string]any{"replicas": 2}}})
	sandbox.Eventually(r.t, "the pools of cell "+c.Name+" held, Synced False naming the cell", 2*time.Minute, func() error {
		for _, p := range r.pools[c.Name] {
			xr := r.sb.Get(r.ctx, "fleet.nodepool.dev/v1alpha1", "FleetNodePool", namespace, p)
			if st, msg := sandbox.Condition(xr, "Synced"); st != "False" || !strings.Contains(msg, "from cell "+c.Name) {
				return fmt.Errorf("%s Synced %s: %s", p, st, msg)
			}
		}
		return nil
	})
	if rest := *outage - time.Since(t0); rest > 0 {
		time.Sleep(rest)
	}
	if diff := cmp.Diff(objects, r.objects(c)); diff != "" {
		r.t.Errorf("the Objects of cell %s changed while it was down (nothing may be deleted): -before +during:\n%s", c.Name, diff)
	}
	if err := c.StartAPIServer(r.ctx); err != nil {
		r.t.Fatal(err)
	}
	r.logf("cell %s's API server down for %s", c.Name, time.Since(t0).Round(100*time.Millisecond))
	sandbox.Eventually(r.t, "the scaled pool at 2 replicas in cell "+c.Name, 3*time.Minute, func() error {
		return r.everyCellMD(func(md *unstructured.Unstructured) error {
			if md.GetLabels()["fleet.nodepool.dev/pool"] != pool {
				return settled(md)
			}
			if n, _, _ := unstructured.NestedInt64(md.Object, "spec", "replicas"); n != 2 {
				return fmt.Errorf("%s: spec.replicas %d", md.GetName(), n)
			}
			return settled(md)
		})
	})
	r.waitReady("every pool Ready again", 3*time.Minute)
}

// waitReady waits until every pool is Synced and Ready.
func (r *run) waitReady(what string, timeout time.Duration) {
	sandbox.Eventually(r.t, what, timeout, func() error {
		return r.everyPool(func(xr *unstructured.Unstructured) error {
			for _, c := range []string{"Synced", "Ready", "PoolAvailable"} {
				if st, msg := sandbox.Condition(xr, c); st != "True" {
					return fmt.Errorf("%s %s: %s", c, st, msg)
				}
			}
			return nil
		})
	})
}

// everyPool checks every pool's FleetNodePool.
func (r *run) everyPool(check func(*unstructured.Unstructured) error) error {
	for _, c := range r.cells {
		for _, p := range r.pools[c.Name] {
			xr := r.sb.Get(r.ctx, "fleet.nodepool.dev/v1alpha1", "FleetNodePool", namespace, p)
			if xr == nil {
				return fmt.Errorf("%s: not found", p)
			}
			if err := check(xr); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
	}
	return nil
}

// everyCellMD checks every MachineDeployment of every cell.
func (r *run) everyCellMD(check func(*unstructured.Unstructured) error) error {
	for _, c := range r.cells {
		mds := r.cellList(c, "MachineDeployment")
		if len(mds) != len(r.pools[c.Name]) {
			return fmt.Errorf("cell %s: %d MachineDeployments", c.Name, len(mds))
		}
		for _, md := range mds {
			if err := check(&md); err != nil {
				return fmt.Errorf("cell %s, %s: %w", c.Name, md.GetName(), err)
			}
		}
	}
	return nil
}

// settled: Cluster API acted on the MachineDeployment's spec, and every
// machine is up to date and available.
func settled(md *unstructured.Unstructured) error {
	gen := md.GetGeneration()
	obs, _, _ := unstructured.NestedInt64(md.Object, "status", "observedGeneration")
	want, _, _ := unstructured.NestedInt64(md.Object, "spec", "replicas")
	upToDate, _, _ := unstructured.NestedInt64(md.Object, "status", "upToDateReplicas")
	available, _, _ := unstructured.NestedInt64(md.Object, "status", "availableReplicas")
	replicas, _, _ := unstructured.NestedInt64(md.Object, "status", "replicas")
	if obs < gen || upToDate != want || available != want || replicas != want {
		return fmt.Errorf("generation %d observed %d, replicas %d/%d up to date, %d available", gen, obs, upToDate, want, available)
	}
	return nil
}

// cellList lists a Cluster API kind in a cell's namespace; none if it
// cannot.
func (r *run) cellList(c *sandbox.Cell, kind string) []unstructured.Unstructured {
	group := map[string]string{
		"MachineDeployment":  "cluster.x-k8s.io/v1beta2",
		"DevMachineTemplate": "infrastructure.cluster.x-k8s.io/v1beta2",
	}[kind]
	l := &unstructured.UnstructuredList{}
	l.SetAPIVersion(group)
	l.SetKind(kind + "List")
	_ = c.Client.List(r.ctx, l, client.InNamespace(namespace))
	return l.Items
}

// template is the infrastructure template a pool's MachineDeployment uses
// in a cell.
func (r *run) template(c *sandbox.Cell, pool string) string {
	for _, md := range r.cellList(c, "MachineDeployment") {
		if md.GetLabels()["fleet.nodepool.dev/pool"] == pool {
			n, _, _ := unstructured.NestedString(md.Object, "spec", "template", "spec", "infrastructureRef", "name")
			return n
		}
	}
	return ""
}

// patchPool merge-patches a FleetNodePool.
func (r *run) patchPool(name string, patch map[string]any) {
	xr := r.sb.Get(r.ctx, "fleet.nodepool.dev/v1alpha1", "FleetNodePool", namespace, name)
	if xr == nil {
		r.t.Fatalf("no FleetNodePool %s", name)
	}
	b, err := json.Marshal(patch)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.sb.Client.Patch(r.ctx, xr, client.RawPatch("application/merge-patch+json", b)); err != nil {
		r.t.Fatal(err)
	}
}

// objects are the names of the provider-kubernetes Objects of a cell in
// the central cluster.
func (r *run) objects(c *sandbox.Cell) []string {
	var out []string
	for _, o := range r.sb.List(r.ctx, "kubernetes.m.crossplane.io/v1alpha1", "Object", client.InNamespace(namespace), client.MatchingLabels{"fleet.nodepool.dev/cell": c.Name}) {
		out = append(out, o.GetName())
	}
	slices.Sort(out)
	return out
}
