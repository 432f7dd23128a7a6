//go:build fleet

package fleet

import (
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// rapidGap is the time between two edits of the rapid-edits phase: less
// than Cluster API takes to roll anything, about what Crossplane's caches
// may lag under load.
const rapidGap = 700 * time.Millisecond

// labelSimMachineType is the sim provider's machine type, on an
// infrastructure template's machines.
const labelSimMachineType = "fleet.nodepool.dev/sim-machine-type"

// largeAfter is the large class's machine type once the rapid edits moved
// it in the catalog.
const largeAfter = "sim.large-b"

// machineTypeOf is a class's sim machine type after the rapid edits.
var machineTypeOf = map[string]string{"small": "sim.small", "medium": "sim.medium", "large": largeAfter}

// rapidEdits is issue #15's chaos phase: disruptive edits of the same
// pools in quick succession, on every Cluster that rolls its pools at once
// (the first is the concurrency proof): each fixed pool's class goes from
// medium to large, small and medium within a second and a half; each
// autoscaled pool goes to large and back; each zoned pool goes to large,
// the policy's catalog moves large to another machine type right after,
// and the pool goes back to medium. Cluster API starts rollouts of
// revisions the pools have already left, and the templates of those must
// not be dropped while a MachineSet clones from them (the watcher's
// TemplateExists, over every snapshot). Every pool must converge to its
// last edit (its class before the phase, which the waves' proof after it
// relies on), and every template nothing uses be released.
func (r *run) rapidEdits() {
	if *clusters < 2 {
		return
	}
	t0 := time.Now()
	before := r.templates()
	fixed, auto, zoned := allAtOnce("fixed"), allAtOnce("auto"), allAtOnce("zones")
	want := map[string]string{} // Pool: its machine type after the last edit.
	for _, p := range append(slices.Clone(fixed), zoned...) {
		want[p] = machineTypeOf["medium"]
	}
	for _, p := range auto {
		want[p] = machineTypeOf["small"]
	}
	edit := func(pools []string, class string) {
		for _, p := range pools {
			r.setClass(p, class)
		}
	}
	edit(fixed, "large")
	edit(auto, "large")
	edit(zoned, "large")
	time.Sleep(rapidGap)
	edit(fixed, "small")
	edit(auto, "small") // The revert.
	r.setPolicy(largeAfter, "catalog", "large", "sim")
	time.Sleep(rapidGap)
	edit(fixed, "medium")
	edit(zoned, "medium")
	r.waitMachineTypes("every pool at its last edit", want)
	r.phase("rapid edits: class A, B, C within 1.4s; an edit and its revert; a class, a catalog change, a class; every pool at its last edit", t0)

	t1 := time.Now()
	r.wait("templates nothing uses released", func() error {
		now, used := r.templates(), r.usedTemplates()
		for n := range now {
			if !used[n] && !before[n] {
				return fmt.Errorf("template %s, made during the rapid edits, is no longer used and still kept", n)
			}
		}
		return nil
	})
	r.phase("rapid edits: the templates of the revisions left released, none while in use", t1)
}

// allAtOnce are the pools of a shape of every Cluster that rolls its pools
// at once: all but the first.
func allAtOnce(s string) []string {
	var out []string
	for i := 1; i < *clusters; i++ {
		for j := range *pools {
			if shape(j) == s {
				out = append(out, poolName(i, j))
			}
		}
	}
	return out
}

// waitMachineTypes waits until the fleet is settled at toVersion and each
// pool of want runs its machine type.
func (r *run) waitMachineTypes(what string, want map[string]string) {
	r.t.Helper()
	r.wait(what, func() error {
		if err := r.fleetAt(toVersion); err != nil {
			return err
		}
		return r.machineTypes(want)
	})
}

// machineTypes checks each pool's MachineDeployments clone from a template
// of its machine type.
func (r *run) machineTypes(want map[string]string) error {
	types := map[string]string{}
	for _, t := range r.list("infrastructure.cluster.x-k8s.io/v1beta2", "DevMachineTemplate") {
		types[t.GetName()], _, _ = unstructured.NestedString(t.Object, "spec", "template", "metadata", "labels", labelSimMachineType)
	}
	for _, md := range r.list("cluster.x-k8s.io/v1beta2", "MachineDeployment") {
		pool := md.GetLabels()[labelPool]
		w, ok := want[pool]
		if !ok {
			continue
		}
		n, _, _ := unstructured.NestedString(md.Object, "spec", "template", "spec", "infrastructureRef", "name")
		if types[n] != w {
			return fmt.Errorf("MachineDeployment %s of pool %s clones from %s, of machine type %q, want %q", md.GetName(), pool, n, types[n], w)
		}
	}
	return nil
}

// restarted are the processes the restarts phase kills mid-rollout, in
// turn.
var restarted = []string{"function", "crossplane", "capi-core", "kube-apiserver"}

// restarts is issue #15's restarts phase: for each of the function,
// Crossplane core, the Cluster API core manager and kube-apiserver (etcd
// keeps the data), the fixed pools of every Cluster that rolls its pools
// at once change class, and once a rolling update is under way the process
// is killed (SIGKILL) and started again. The fleet must converge to the
// new class each time, the watcher checking the invariants throughout (it
// counts the snapshots it could not read while kube-apiserver was down).
// The classes alternate, so the pools end on the class they started with.
func (r *run) restarts() {
	if *clusters < 2 {
		return
	}
	fixed := allAtOnce("fixed")
	want := map[string]string{}
	for k, name := range restarted {
		t0 := time.Now()
		class := []string{"large", "medium"}[k%2]
		for _, p := range fixed {
			r.setClass(p, class)
			want[p] = machineTypeOf[class]
		}
		r.wait("a rolling update under way", func() error {
			sets := r.machineSets()
			for _, md := range r.list("cluster.x-k8s.io/v1beta2", "MachineDeployment") {
				if _, ok := want[md.GetLabels()[labelPool]]; ok && sets[md.GetName()] > 1 {
					return nil
				}
			}
			return fmt.Errorf("no MachineDeployment of %v has a second MachineSet", fixed)
		})
		t1 := time.Now()
		if err := r.sb.Kill(r.ctx, name); err != nil {
			r.fatalf("kill and start %s: %v", name, err)
		}
		back := time.Since(t1)
		r.waitMachineTypes("every pool at its new class after "+name+" was killed", want)
		r.phase(fmt.Sprintf("%s killed mid-rollout: serving again in %s, the fleet at its new class %s after the kill",
			name, back.Round(100*time.Millisecond), time.Since(t1).Round(100*time.Millisecond)), t0)
	}
}
