//go:build fleet

package fleet

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The node rotation phase's policy (issue #21): nodes at most rotationAge
// old, each pool rotating at its own point of the last rotationSpread.
// Minutes, so that a CI run sees every pool rotate.
const (
	rotationAge    = 6 * time.Minute
	rotationSpread = 3 * time.Minute
)

// An msRecord is a MachineSet as the rotation phase saw it.
type msRecord struct {
	md, template string
	created      time.Time
}

// rotation gives the policy a max node age of minutes: every
// MachineDeployment must rotate (a new MachineSet of the same template),
// none before its revision's window opens (created + age - spread), and,
// with every Cluster at concurrency 1 for the phase, one pool at a time per
// Cluster (the watcher's RolloutConcurrencyBounded). The earlier phase's
// waves are removed first: with an age of minutes, a canary pool would fall
// due again before the later wave's soak, and hold it for ever. Then the
// max age is removed again.
func (r *run) rotation() {
	t0 := time.Now()
	r.removePolicy("rollouts", "waves")
	r.removePolicy("rollouts", "halt")
	for i := range *clusters {
		c := r.get("cluster.x-k8s.io/v1beta2", "Cluster", ns, clusterName(i))
		patch := client.MergeFrom(c.DeepCopy())
		a := c.GetAnnotations()
		if a == nil {
			a = map[string]string{}
		}
		a[annotationConcurrency] = "1"
		c.SetAnnotations(a)
		if err := r.c.Patch(r.ctx, c, patch); err != nil {
			r.fatal(err)
		}
		r.w.SetConcurrency(ns+"/"+clusterName(i), 1)
	}

	var mu sync.Mutex
	seen := map[string]msRecord{}
	record := func() {
		for _, ms := range r.list("cluster.x-k8s.io/v1beta2", "MachineSet") {
			spec := func(path ...string) string {
				v, _, _ := unstructured.NestedString(ms.Object, append([]string{"spec", "template", "spec"}, path...)...)
				return v
			}
			mu.Lock()
			seen[ms.GetName()] = msRecord{
				md:       ms.GetLabels()[labelDeployment],
				template: spec("version") + "/" + spec("infrastructureRef", "name") + "/" + spec("bootstrap", "configRef", "name"),
				created:  ms.GetCreationTimestamp().Time,
			}
			mu.Unlock()
		}
	}
	record()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for t := time.NewTicker(time.Second); ; {
			select {
			case <-stop:
				t.Stop()
				return
			case <-t.C:
				record()
			}
		}
	}()

	r.setPolicy(map[string]any{"maxNodeAge": rotationAge.String(), "spread": rotationSpread.String()}, "rotation")
	mu.Lock()
	r.t.Logf("max node age %s, spread %s: the MachineSets now, created at:\n%s", rotationAge, rotationSpread, created(seen))
	mu.Unlock()
	mds := r.list("cluster.x-k8s.io/v1beta2", "MachineDeployment")
	r.wait("every MachineDeployment rotated", func() error {
		mu.Lock()
		rotated := rotations(seen)
		mu.Unlock()
		for _, md := range mds {
			if len(rotated[md.GetName()]) == 0 {
				return fmt.Errorf("MachineDeployment %s has not rotated", md.GetName())
			}
		}
		return nil
	})
	// No more rotations: the first pools rotated would fall due again
	// minutes later. Those under way run to their end.
	r.removePolicy("rotation")
	r.wait("every MachineDeployment settled", func() error {
		sets := r.machineSets()
		for _, md := range r.list("cluster.x-k8s.io/v1beta2", "MachineDeployment") {
			if err := settled(&md, sets); err != nil {
				return err
			}
		}
		return nil
	})
	close(stop)
	<-done

	// No rotation before its window; how late each was, the rollout rules
	// (concurrency 1, the waves) holding the pools of a Cluster in turn.
	rotated := rotations(seen)
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "MachineDeployment\trevision created\twindow opens\trotated (new MachineSet)\tafter the max age")
	for _, md := range mds {
		for _, rot := range rotated[md.GetName()] {
			opens := rot[0].created.Add(rotationAge - rotationSpread)
			if rot[1].created.Before(opens) {
				r.errorf("MachineDeployment %s rotated at %s, before its revision's window opened at %s (created %s + %s - %s)",
					md.GetName(), rot[1].created.Format(time.TimeOnly), opens.Format(time.TimeOnly), rot[0].created.Format(time.TimeOnly), rotationAge, rotationSpread)
			}
			_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", md.GetName(), rot[0].created.Format(time.TimeOnly), opens.Format(time.TimeOnly),
				rot[1].created.Format(time.TimeOnly), max(0, rot[1].created.Sub(rot[0].created.Add(rotationAge))))
		}
	}
	_ = tw.Flush()
	r.t.Logf("node rotations (max age %s, spread %s, every Cluster at concurrency 1):\n%s", rotationAge, rotationSpread, b.String())
	r.wait("no pool reports a rotation once the policy has no max age", func() error {
		for _, p := range r.list("fleet.nodepool.dev/v1alpha1", "FleetNodePool") {
			if v, ok, _ := unstructured.NestedFieldNoCopy(p.Object, "status", "rotation"); ok {
				return fmt.Errorf("pool %s: status.rotation %v", p.GetName(), v)
			}
		}
		return nil
	})
	r.phase(fmt.Sprintf("node rotation (max age %s): every MachineDeployment rotated, none early, one pool at a time per Cluster", rotationAge), t0)
}

// rotations pairs, per MachineDeployment, each MachineSet made for a node
// rotation (the same template as the one before it) with the one it
// replaced, oldest first.
func rotations(seen map[string]msRecord) map[string][][2]msRecord {
	byMD := map[string][]msRecord{}
	for _, n := range slices.Sorted(maps.Keys(seen)) {
		ms := seen[n]
		byMD[ms.md] = append(byMD[ms.md], ms)
	}
	out := map[string][][2]msRecord{}
	for md, sets := range byMD {
		sort.SliceStable(sets, func(i, j int) bool { return sets[i].created.Before(sets[j].created) })
		for i := 1; i < len(sets); i++ {
			if sets[i].template == sets[i-1].template {
				out[md] = append(out[md], [2]msRecord{sets[i-1], sets[i]})
			}
		}
	}
	return out
}

// created lists the MachineSets seen by MachineDeployment, with when each
// was created.
func created(seen map[string]msRecord) string {
	var b strings.Builder
	for _, n := range slices.Sorted(maps.Keys(seen)) {
		_, _ = fmt.Fprintf(&b, "  %s %s\n", n, seen[n].created.Format(time.TimeOnly))
	}
	return b.String()
}

// removePolicy removes a field of the Composition's policy.
func (r *run) removePolicy(path ...string) {
	comp := r.get("apiextensions.crossplane.io/v1", "Composition", "", "fleetnodepool")
	patch := client.MergeFrom(comp.DeepCopy())
	steps, _, _ := unstructured.NestedSlice(comp.Object, "spec", "pipeline")
	unstructured.RemoveNestedField(steps[0].(map[string]any), append([]string{"input"}, path...)...)
	_ = unstructured.SetNestedSlice(comp.Object, steps, "spec", "pipeline")
	if err := r.c.Patch(r.ctx, comp, patch); err != nil {
		r.fatal(err)
	}
}
