//go:build fleet

package fleet

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fleetnodepool/function-fleetnodepool/test/internal/fleet"
)

// The waves' proof (issue #14): the fleet's pools in two waves by a pool
// label, a channel bump the second wave starts only once the first is at
// it, Available and soaked, then a first-wave pool made to fail halting the
// second wave until it recovers.
const (
	// labelWave selects a pool's wave (the shipped policy's waves).
	labelWave = "fleet.nodepool.dev/rollout-wave"
	// labelMarkerWave is a rollout marker's wave.
	labelMarkerWave = "fleet.nodepool.dev/wave"
	// nextVersion is the second channel bump's version.
	nextVersion = "v1.35.0"
	// waveSoak and haltTimeout are the policy's, shortened for the test:
	// the shipped 2m and 30m.
	waveSoak    = 30 * time.Second
	haltTimeout = time.Minute
	// haltedFor is how long, once the function halts the second wave, the
	// test watches that none of its pools starts: longer than a held
	// pool's wait to be asked again (see heldFor).
	haltedFor = heldFor
	// annotationPaused pauses a Cluster API object's reconciles: on a
	// KubeadmConfig, its machine never gets its bootstrap data, so never
	// boots.
	annotationPaused = "cluster.x-k8s.io/paused"
	// reasonHalted is RolloutHeld's reason while an earlier wave failed.
	reasonHalted = "Halted"
	// The medium class's simulated machine type, before and after the
	// catalog change the failing pool fails on.
	typeBefore = "sim.medium"
	typeAfter  = "sim.medium-b"
	// Rollout marker states.
	markerSettled = "Settled"
	markerFailed  = "Failed"
)

// waveNames are the policy's waves, first first.
var waveNames = []string{"canary", "staging"}

// waveOf is the wave of pool j of every cluster: each cluster's first pool
// is a canary, the others are staging.
func waveOf(j int) string { return waveNames[min(j, 1)] }

// failingPool is the first-wave pool made to fail: the second cluster's,
// whose pools roll at once.
func failingPool() string { return poolName(min(1, *clusters-1), 0) }

// waves runs the waves' proof, then sets the waves back to the shipped
// policy's selectors.
func (r *run) waves() {
	r.wavesOn()
	r.wavesBump()
	r.halt()
	r.w.SetWaves(nil)
}

func (r *run) watchWaves(behind ...string) {
	r.w.SetWaves(&fleet.Waves{Label: labelWave, Order: waveNames, Soak: waveSoak, HaltTimeout: haltTimeout, Behind: behind})
}

// wavesOn shortens the waves' soak and halt timeout, labels each cluster's
// first pool canary and the others staging, and waits until every pool's
// rollout marker says it is settled, in its wave, at one target.
func (r *run) wavesOn() {
	t0 := time.Now()
	var ws []any
	for _, w := range waveNames {
		ws = append(ws, map[string]any{"name": w, "soak": waveSoak.String(),
			"poolSelector": map[string]any{"matchLabels": map[string]any{labelWave: w}}})
	}
	r.setPolicy(ws, "rollouts", "waves")
	r.setPolicy(map[string]any{"timeout": haltTimeout.String()}, "rollouts", "halt")
	for i := range *clusters {
		for j := range *pools {
			p := r.get("fleet.nodepool.dev/v1alpha1", "FleetNodePool", ns, poolName(i, j))
			patch := client.MergeFrom(p.DeepCopy())
			l := p.GetLabels()
			if l == nil {
				l = map[string]string{}
			}
			l[labelWave] = waveOf(j)
			p.SetLabels(l)
			if err := r.c.Patch(r.ctx, p, patch); err != nil {
				r.fatal(err)
			}
		}
	}
	r.watchWaves()
	var target string
	r.wait("every pool's marker Settled in its wave, at one target", func() error {
		ms := r.markers()
		targets := map[string]bool{}
		for i := range *clusters {
			for j := range *pools {
				p := poolName(i, j)
				m, ok := ms[p]
				switch {
				case !ok:
					return fmt.Errorf("pool %s has no rollout marker", p)
				case m.GetLabels()[labelMarkerWave] != waveOf(j):
					return fmt.Errorf("pool %s's marker is in wave %q, want %s", p, m.GetLabels()[labelMarkerWave], waveOf(j))
				case m.Data["state"] != markerSettled:
					return fmt.Errorf("pool %s's marker: %v", p, m.Data)
				}
				targets[m.Data["target"]] = true
				target = m.Data["target"]
			}
		}
		if len(targets) != 1 {
			return fmt.Errorf("the markers are at %d targets", len(targets))
		}
		return nil
	})
	r.phase(fmt.Sprintf("waves on (soak %s, halt timeout %s): every marker Settled at target %s", waveSoak, haltTimeout, target), t0)
}

// wavesBump bumps the channel again and moves the control planes: the
// second wave's pools may only start once every first-wave pool is at the
// new version, Available, done rolling and soaked, which the watcher checks
// at every snapshot, and the test again from its own timeline.
func (r *run) wavesBump() {
	t0 := time.Now()
	defer r.probing("waves: channel bump")()
	r.watchWaves(toVersion)
	ro := r.rolloutsAll()
	r.setPolicy(nextVersion, "channels", "stable")
	r.moveControlPlanes(nextVersion)
	r.wait("every pool at "+nextVersion, func() error {
		r.observe(ro)
		return r.fleetAt(nextVersion)
	})
	r.phase(fmt.Sprintf("waves: channel bump to %s, control planes move; wave 2 after wave 1 soaked", nextVersion), t0)
	r.t.Logf("the fleet's rollouts, from the channel bump (wave 1: each cluster's first pool):\n%s", ro)
	r.waveOrder(ro, r.allPools(), time.Duration(0))
}

// waveOrder checks, from a timeline, that every second-wave pool of pools
// started after every first-wave pool had rolled out (and after after), and
// that the watcher judged each while it waited.
func (r *run) waveOrder(ro *rolloutsOf, pools []string, after time.Duration) {
	var last time.Duration
	for _, p := range pools {
		if r.waveOfPool(p) == waveNames[0] {
			last = max(last, ro.done[p])
		}
	}
	last = max(last, after)
	held, _ := r.w.WaveSnapshots()
	for _, p := range pools {
		if r.waveOfPool(p) == waveNames[0] {
			continue
		}
		at, ok := ro.started[p]
		switch {
		case !ok:
			r.errorf("second-wave pool %s never started", p)
		case at < last:
			r.errorf("second-wave pool %s started at %s, before the first wave rolled out (%s)", p, at.Round(time.Second), last.Round(time.Second))
		default:
			r.t.Logf("second-wave pool %s started %s after the first wave rolled out (soak %s)", p, (at - last).Round(time.Second), waveSoak)
		}
		if held[ns+"/"+p] == 0 {
			r.errorf("the watcher never held second-wave pool %s for its waves: NoStartBeforeEarlierWaves did not judge it", p)
		}
	}
}

// halt makes a first-wave pool fail: its bootstrap template's machines
// paused (cluster.x-k8s.io/paused on the KubeadmConfigs cloned from it),
// the new machines of its rollout, when the catalog changes the medium
// class's machine type, never get their bootstrap data, so never boot: its
// MachineDeployment stays with a machine not ready, not rolled out. (The
// bootstrap template keeps its name: the machine type is not in it.) Past
// the halt timeout its marker must read Failed,
// and the second wave's pools with the change to make must be held
// (RolloutHeld Halted) and not start; its machines unpaused, the pool rolls
// out, and once it is soaked the second wave follows.
func (r *run) halt() {
	t0 := time.Now()
	failing := failingPool()
	pending := r.poolsOfType(typeBefore)
	var second []string
	for _, p := range pending {
		if r.waveOfPool(p) != waveNames[0] {
			second = append(second, p)
		}
	}
	if !slices.Contains(pending, failing) || len(second) == 0 {
		r.fatalf("pools of machine type %s: %v; the failing pool %s must be one, with a second-wave pool", typeBefore, pending, failing)
	}
	r.pauseMachines(failing, true)
	r.w.Fail(ns + "/" + failing)
	r.watchWaves(typeBefore)
	ro := r.rolloutsAll()
	r.setPolicy(typeAfter, "catalog", "medium", "sim")
	noStart := func() {
		r.observe(ro)
		for _, p := range second {
			if at, ok := ro.started[p]; ok {
				r.fatalf("second-wave pool %s started %s into the halt, while first-wave pool %s is failing; the markers now: %s",
					p, at.Round(time.Second), failing, r.markerStates())
			}
		}
	}
	r.wait(fmt.Sprintf("%s's marker Failed, the second wave held (RolloutHeld %s)", failing, reasonHalted), func() error {
		noStart()
		if m := r.markers()[failing]; m == nil || m.Data["state"] != markerFailed {
			return fmt.Errorf("%s's marker: %v", failing, m)
		}
		if err := r.notBooting(failing); err != nil {
			return err
		}
		for _, p := range second {
			if why := fleet.HeldBy(r.get("fleet.nodepool.dev/v1alpha1", "FleetNodePool", ns, p)); why != reasonHalted {
				return fmt.Errorf("%s held by %q", p, why)
			}
		}
		return nil
	})
	failedAt := time.Since(t0)
	r.phase(fmt.Sprintf("halt: %s's new machines never boot, catalog change: its marker Failed, %d second-wave pools RolloutHeld %s", failing, len(second), reasonHalted), t0)

	t1 := time.Now()
	r.wait(fmt.Sprintf("%s halted without a second-wave start", haltedFor), func() error {
		noStart()
		if m := r.markers()[failing]; m == nil || m.Data["state"] != markerFailed {
			r.fatalf("%s's marker is no longer Failed while it is paused: %v", failing, m)
		}
		if d := time.Since(t1); d < haltedFor {
			return fmt.Errorf("halted %s", d.Round(time.Second))
		}
		return nil
	})
	r.phase(fmt.Sprintf("halted: no second-wave pool starts in %s more", haltedFor), t1)

	t2 := time.Now()
	recovered := time.Since(ro.t0)
	r.pauseMachines(failing, false)
	r.wait("every pool of the medium class at "+typeAfter, func() error {
		r.observe(ro)
		if err := r.fleetAt(nextVersion); err != nil {
			return err
		}
		if left := r.poolsOfType(typeBefore); len(left) > 0 {
			return fmt.Errorf("pools still on %s: %v", typeBefore, left)
		}
		// The last pool's MachineDeployment may have moved since the
		// observation above: look again, and wait for every rollout's end.
		r.observe(ro)
		for _, p := range pending {
			if _, ok := ro.done[p]; !ok {
				return fmt.Errorf("pool %s has not rolled out to %s yet", p, typeAfter)
			}
		}
		return nil
	})
	r.w.Recover(ns + "/" + failing)
	r.phase(fmt.Sprintf("recover: %s's machines boot, it rolls out, then the second wave: every pool at %s", failing, typeAfter), t2)
	r.t.Logf("the fleet's rollouts, from the catalog change (%s failed at %s, unpaused at %s):\n%s",
		failing, failedAt.Round(time.Second), recovered.Round(time.Second), ro)
	r.waveOrder(ro, pending, max(recovered, ro.done[failing]))
	_, halted := r.w.WaveSnapshots()
	for _, p := range second {
		if halted[ns+"/"+p] == 0 {
			r.errorf("the watcher never counted second-wave pool %s halted: NoStartAfterHalt did not judge it", p)
		}
	}
}

// pauseMachines pauses, or unpauses, the machines a pool's bootstrap
// templates clone from now on; unpausing unpauses those cloned too.
func (r *run) pauseMachines(pool string, paused bool) {
	set := func(u *unstructured.Unstructured, path ...string) {
		patch := client.MergeFrom(u.DeepCopy())
		a, _, _ := unstructured.NestedStringMap(u.Object, path...)
		if a == nil {
			a = map[string]string{}
		}
		if paused {
			a[annotationPaused] = "true"
		} else {
			delete(a, annotationPaused)
		}
		_ = unstructured.SetNestedStringMap(u.Object, a, path...)
		if err := r.c.Patch(r.ctx, u, patch); err != nil {
			r.fatal(err)
		}
	}
	for _, t := range r.list("bootstrap.cluster.x-k8s.io/v1beta2", "KubeadmConfigTemplate") {
		if t.GetLabels()[labelPool] == pool {
			set(&t, "spec", "template", "metadata", "annotations")
		}
	}
	if paused {
		return
	}
	for _, c := range r.list("bootstrap.cluster.x-k8s.io/v1beta2", "KubeadmConfig") {
		if _, ok := c.GetAnnotations()[annotationPaused]; ok {
			set(&c, "metadata", "annotations")
		}
	}
}

// notBooting checks a pool's rollout has a machine that does not boot: a
// Machine of its not Running, its KubeadmConfig paused.
func (r *run) notBooting(pool string) error {
	paused := map[string]bool{}
	for _, c := range r.list("bootstrap.cluster.x-k8s.io/v1beta2", "KubeadmConfig") {
		if _, ok := c.GetAnnotations()[annotationPaused]; ok {
			paused[c.GetName()] = true
		}
	}
	for _, m := range r.list("cluster.x-k8s.io/v1beta2", "Machine") {
		boot, _, _ := unstructured.NestedString(m.Object, "spec", "bootstrap", "configRef", "name")
		phase, _, _ := unstructured.NestedString(m.Object, "status", "phase")
		if m.GetLabels()[labelPool] == pool && paused[boot] && phase != "Running" {
			return nil
		}
	}
	return fmt.Errorf("%s has no machine waiting for its paused bootstrap", pool)
}

// poolsOfType are the pools with a MachineDeployment asking for a
// simulated machine type, sorted.
func (r *run) poolsOfType(machineType string) []string {
	types := map[string]string{}
	for _, t := range r.list("infrastructure.cluster.x-k8s.io/v1beta2", "DevMachineTemplate") {
		l, _, _ := unstructured.NestedStringMap(t.Object, "spec", "template", "metadata", "labels")
		types[t.GetName()] = l["fleet.nodepool.dev/sim-machine-type"]
	}
	var out []string
	for _, md := range r.list("cluster.x-k8s.io/v1beta2", "MachineDeployment") {
		infra, _, _ := unstructured.NestedString(md.Object, "spec", "template", "spec", "infrastructureRef", "name")
		if p := md.GetLabels()[labelPool]; types[infra] == machineType && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// markers are the pools' rollout markers, by pool.
func (r *run) markers() map[string]*corev1.ConfigMap {
	l := &corev1.ConfigMapList{}
	if err := r.c.List(r.ctx, l, client.InNamespace(ns), client.HasLabels{labelMarkerWave}); err != nil {
		r.fatalf("cannot list the rollout markers: %v", err)
	}
	out := map[string]*corev1.ConfigMap{}
	for i := range l.Items {
		out[l.Items[i].GetLabels()[labelPool]] = &l.Items[i]
	}
	return out
}

// markerStates says what every rollout marker says: pool, wave, target,
// state, since and startedAt.
func (r *run) markerStates() string {
	ms := r.markers()
	var b strings.Builder
	for _, p := range slices.Sorted(maps.Keys(ms)) {
		m := ms[p]
		fmt.Fprintf(&b, "\n  %s (%s): target %s %s since %q startedAt %q", p, m.GetLabels()[labelMarkerWave],
			m.Data["target"], m.Data["state"], m.Data["since"], m.Data["startedAt"])
	}
	return b.String()
}

// waveOfPool is the wave label of a pool, by name.
func (r *run) waveOfPool(pool string) string {
	return r.get("fleet.nodepool.dev/v1alpha1", "FleetNodePool", ns, pool).GetLabels()[labelWave]
}

// allPools are every pool's name.
func (r *run) allPools() []string {
	var out []string
	for i := range *clusters {
		for j := range *pools {
			out = append(out, poolName(i, j))
		}
	}
	return out
}

// rolloutsAll tracks every pool of the fleet from now on.
func (r *run) rolloutsAll() *rolloutsOf {
	ro := r.rollouts(0)
	ro.cluster, ro.pools = "", r.allPools()
	return ro
}
