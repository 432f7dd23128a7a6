package fleet

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// machineTypeLabel carries a simulated machine's type on its template's
// machines (fn/provider/sim.MachineTypeLabel).
const machineTypeLabel = "fleet.nodepool.dev/sim-machine-type"

// Waves tells the watcher the fleet's waves, as the test set the policy's,
// so that it fills Snapshot.WaveHeld and Halted from what it reads on the
// API server: a pool of a later wave may not start while a pool of an
// earlier wave is not settled at the target, or has been for less than the
// soak.
type Waves struct {
	// Label is the FleetNodePool label whose value selects a pool's wave.
	Label string
	// Order are the waves' label values, first wave first; a pool with
	// another value, or none, is in the last wave, after them.
	Order []string
	// Soak is how long an earlier wave's pools stay settled before a later
	// wave may start.
	Soak time.Duration
	// HaltTimeout is how long a pool the test made fail (Fail) stays not
	// settled before it halts the later waves.
	HaltTimeout time.Duration
	// Behind are Kubernetes versions and simulated machine types that are
	// not the target: a pool whose MachineDeployments ask for one is not
	// at the target.
	Behind []string
}

// soakSlack is how much earlier than the watcher can know an earlier wave
// may count as soaked: the function's marker says since when a pool is
// settled truncated to the second. The rest of what the watcher cannot
// know is bounded by its reads, however slow they are (waveHolds): a pool
// settled after the read of the last snapshot that saw it not began, and
// a start seen in a snapshot may have happened as its read ended.
const soakSlack = time.Second

// SetWaves tells the watcher the fleet's waves from the next snapshot on;
// nil stops the wave rules' checks.
func (w *Watcher) SetWaves(v *Waves) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.waves = v
}

// Fail tells the watcher the test made a pool (namespace/name) fail: once
// it has not been settled on the API server for the waves' HaltTimeout,
// and until it is, every pool of a later wave is halted (Snapshot.Halted).
// Recover undoes it.
func (w *Watcher) Fail(pool string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.failing[pool] = time.Time{}
}

// Recover undoes Fail.
func (w *Watcher) Recover(pool string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.failing, pool)
}

// WaveSnapshots returns, by pool (namespace/name), how many snapshots were
// checked with it held for its waves (WaveHeld) and halted (Halted):
// whether NoStartBeforeEarlierWaves and NoStartAfterHalt judged it at all.
func (w *Watcher) WaveSnapshots() (held, halted map[string]int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.waveHeldSnapshots), maps.Clone(w.haltedSnapshots)
}

// waveHolds fills the snapshot's WaveHeld and Halted from the objects, as
// the watcher read them between now and end. A pool is held only if it was
// held by the snapshot before too: a start seen now may come from a
// reconcile that saw the earlier wave as the last snapshot did, and judging
// it by that one gives the function a poll interval's benefit. Every time
// is taken in the function's favour, so that no load on the machine can
// make a violation of a start that was not one: an earlier wave's soak
// counts from the earliest its last pool can have settled and ends by the
// latest the start can have happened (end); a failing pool halts from the
// latest it can have been seen unsettled (now). Called with w.mu held.
func (w *Watcher) waveHolds(objs map[string][]unstructured.Unstructured, now, end time.Time) (held, halted map[string]string) {
	if w.waves == nil {
		w.notSettledAt, w.lastWaveHeld, w.lastHalted = map[string]time.Time{}, nil, nil
		return nil, nil
	}
	settled := poolsSettled(objs, w.waves.Behind)
	waveOf := map[string]int{}
	for _, p := range objs["FleetNodePool"] {
		k := p.GetNamespace() + "/" + p.GetName()
		i := slices.Index(w.waves.Order, p.GetLabels()[w.waves.Label])
		if i < 0 {
			i = len(w.waves.Order)
		}
		waveOf[k] = i
		if why, ok := settled[k]; ok && why == "" {
			if _, f := w.failing[k]; f {
				w.failing[k] = time.Time{}
			}
		} else {
			w.notSettledAt[k] = now
			if since, f := w.failing[k]; f && since.IsZero() {
				w.failing[k] = now
			}
		}
	}
	// Why each wave does not let later ones start yet, and whether it is
	// halted: the first pool found, in a stable order.
	notThere := map[int]string{}
	failed := map[int]string{}
	for _, k := range sortedKeys(waveOf) {
		i := waveOf[k]
		why, known := settled[k]
		// A settled pool settled after the read of the last snapshot that
		// saw it not began: the earliest it can have (zero if none did).
		switch at := w.notSettledAt[k]; {
		case !known:
			why = "not settled"
		case why == "" && end.Sub(at) < w.waves.Soak-soakSlack:
			why = fmt.Sprintf("settled at most %s ago, soak %s", end.Sub(at).Round(time.Second), w.waves.Soak)
		}
		if why != "" {
			if _, seen := notThere[i]; !seen {
				notThere[i] = fmt.Sprintf("pool %s of wave %d: %s", k, i+1, why)
			}
			if since := w.failing[k]; !since.IsZero() && now.Sub(since) >= w.waves.HaltTimeout {
				if _, seen := failed[i]; !seen {
					failed[i] = fmt.Sprintf("pool %s of wave %d failing for %s: %s", k, i+1, now.Sub(since).Round(time.Second), why)
				}
			}
		}
	}
	nowHeld, nowHalted := map[string]string{}, map[string]string{}
	for k, i := range waveOf {
		for e := range i {
			if why, ok := notThere[e]; ok {
				if _, set := nowHeld[k]; !set {
					nowHeld[k] = why
				}
			}
			if why, ok := failed[e]; ok {
				if _, set := nowHalted[k]; !set {
					nowHalted[k] = why
				}
			}
		}
	}
	held, halted = both(nowHeld, w.lastWaveHeld), both(nowHalted, w.lastHalted)
	w.lastWaveHeld, w.lastHalted = nowHeld, nowHalted
	for k := range held {
		w.waveHeldSnapshots[k]++
	}
	for k := range halted {
		w.haltedSnapshots[k]++
	}
	return held, halted
}

// both is what a and b both hold, with a's reasons.
func both(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		if _, ok := b[k]; ok {
			out[k] = v
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// poolsSettled says, by pool (namespace/name), why each pool with
// MachineDeployments is not settled at the target, "" when it is: every
// MachineDeployment asks for no version or machine type in behind, has its
// generation observed, is Available, has every replica up to date and
// ready, and runs machines on one MachineSet at most (counted as the
// function counts them: by spec or status replicas); every machine not
// being deleted runs its version. Read from the API server only.
func poolsSettled(objs map[string][]unstructured.Unstructured, behind []string) map[string]string {
	types := map[string]string{} // By namespace/DevMachineTemplate.
	for _, t := range objs["DevMachineTemplate"] {
		l, _, _ := unstructured.NestedStringMap(t.Object, "spec", "template", "metadata", "labels")
		types[t.GetNamespace()+"/"+t.GetName()] = l[machineTypeLabel]
	}
	sets := map[string]int{} // MachineSets with machines, by namespace/MachineDeployment.
	for _, ms := range objs["MachineSet"] {
		spec, _, _ := unstructured.NestedInt64(ms.Object, "spec", "replicas")
		status, _, _ := unstructured.NestedInt64(ms.Object, "status", "replicas")
		if max(spec, status) > 0 {
			sets[ms.GetNamespace()+"/"+deployment(&ms)]++
		}
	}
	versions := map[string]string{} // Of the MachineDeployments, by namespace/name.
	out := map[string]string{}
	note := func(pool, why string) {
		if _, ok := out[pool]; !ok || out[pool] == "" {
			out[pool] = why
		}
	}
	for _, md := range objs["MachineDeployment"] {
		if md.GetDeletionTimestamp() != nil {
			continue
		}
		k := md.GetNamespace() + "/" + md.GetName()
		pool := md.GetNamespace() + "/" + md.GetLabels()[labelPool]
		note(pool, "")
		version, _, _ := unstructured.NestedString(md.Object, "spec", "template", "spec", "version")
		infra, _, _ := unstructured.NestedString(md.Object, "spec", "template", "spec", "infrastructureRef", "name")
		versions[k] = version
		want, _, _ := unstructured.NestedInt64(md.Object, "spec", "replicas")
		gen, _, _ := unstructured.NestedInt64(md.Object, "status", "observedGeneration")
		ready, _, _ := unstructured.NestedInt64(md.Object, "status", "readyReplicas")
		upToDate, _, _ := unstructured.NestedInt64(md.Object, "status", "upToDateReplicas")
		switch mt := types[md.GetNamespace()+"/"+infra]; {
		case slices.Contains(behind, version) || slices.Contains(behind, mt):
			note(pool, fmt.Sprintf("MachineDeployment %s asks for %s %s, not the target", md.GetName(), version, mt))
		case gen < md.GetGeneration():
			note(pool, fmt.Sprintf("MachineDeployment %s: generation %d not observed", md.GetName(), md.GetGeneration()))
		case !available(&md):
			note(pool, fmt.Sprintf("MachineDeployment %s not Available", md.GetName()))
		case ready < want || upToDate < want:
			note(pool, fmt.Sprintf("MachineDeployment %s: %d ready, %d up to date of %d", md.GetName(), ready, upToDate, want))
		case sets[k] > 1:
			note(pool, fmt.Sprintf("MachineDeployment %s runs machines on %d MachineSets", md.GetName(), sets[k]))
		}
	}
	for _, m := range objs["Machine"] {
		d := m.GetLabels()[labelDeployment]
		if d == "" || m.GetDeletionTimestamp() != nil {
			continue
		}
		version, _, _ := unstructured.NestedString(m.Object, "spec", "version")
		if want, ok := versions[m.GetNamespace()+"/"+d]; ok && version != want {
			note(m.GetNamespace()+"/"+m.GetLabels()[labelPool], fmt.Sprintf("Machine %s runs %s, not %s", m.GetName(), version, want))
		}
	}
	return out
}

// available reports whether an object's Available condition is True.
func available(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		if m, _ := c.(map[string]any); m["type"] == "Available" {
			return m["status"] == "True"
		}
	}
	return false
}
