package fleet

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fleetnodepool/function-fleetnodepool/test/invariant"
)

// deployment of a pool, one replica asked for, cloned from
// version/infrastructure/bootstrap template; settled: its generation
// observed, Available, its replica ready and up to date.
func deploymentOf(pool, template string, settled bool) unstructured.Unstructured {
	d := md("md-"+pool, pool, template)
	d.SetGeneration(2)
	d.SetUID(types.UID("u-" + pool))
	_ = unstructured.SetNestedField(d.Object, int64(1), "spec", "replicas")
	status := map[string]any{"observedGeneration": int64(1)}
	if settled {
		status = map[string]any{"observedGeneration": int64(2), "readyReplicas": int64(1), "upToDateReplicas": int64(1),
			"conditions": []any{map[string]any{"type": "Available", "status": "True"}}}
	}
	d.Object["status"] = status
	return d
}

// wavePool is a FleetNodePool in a wave (label w).
func wavePool(name, wave string) unstructured.Unstructured {
	return object("fleet.nodepool.dev/v1alpha1", "FleetNodePool", name, map[string]string{"w": wave}, map[string]any{})
}

// devTemplate is a DevMachineTemplate of a simulated machine type.
func devTemplate(name, machineType string) unstructured.Unstructured {
	return object("infrastructure.cluster.x-k8s.io/v1beta2", "DevMachineTemplate", name, nil, map[string]any{
		"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{machineTypeLabel: machineType}}}}})
}

// withReplicas is a MachineSet with status.replicas.
func withReplicas(u unstructured.Unstructured, n int64) unstructured.Unstructured {
	_ = unstructured.SetNestedField(u.Object, n, "status", "replicas")
	return u
}

// versioned is a machine of a version.
func versioned(u unstructured.Unstructured, version string) unstructured.Unstructured {
	_ = unstructured.SetNestedField(u.Object, version, "spec", "version")
	return u
}

func TestPoolsSettled(t *testing.T) {
	const at = "v1.34.1/i1/b1"
	deleting := versioned(machine("m-old", "p", "md-p"), "v1.33.4")
	deleting.SetDeletionTimestamp(&metav1.Time{Time: time.Unix(0, 0)})
	cases := map[string]struct {
		reason string
		behind []string
		objs   []unstructured.Unstructured
		want   map[string]string
	}{
		"Settled": {
			reason: "A pool whose MachineDeployment is observed, Available, every replica ready and up to date on one MachineSet, every machine at its version, is settled.",
			objs:   []unstructured.Unstructured{deploymentOf("p", at, true), withReplicas(ms("ms", "p", "md-p", 1), 1), versioned(machine("m", "p", "md-p"), "v1.34.1")},
			want:   map[string]string{"f/p": ""},
		},
		"VersionBehind": {
			reason: "A MachineDeployment asking for a version that is not the target is not at the target.",
			behind: []string{"v1.34.1"},
			objs:   []unstructured.Unstructured{deploymentOf("p", at, true)},
			want:   map[string]string{"f/p": "MachineDeployment md-p asks for v1.34.1 , not the target"},
		},
		"MachineTypeBehind": {
			reason: "A MachineDeployment whose DevMachineTemplate is of a machine type that is not the target is not at the target.",
			behind: []string{"sim.small"},
			objs:   []unstructured.Unstructured{deploymentOf("p", at, true), devTemplate("i1", "sim.small")},
			want:   map[string]string{"f/p": "MachineDeployment md-p asks for v1.34.1 sim.small, not the target"},
		},
		"GenerationNotObserved": {
			reason: "A MachineDeployment Cluster API has not caught up with (a paused one) is not settled.",
			objs:   []unstructured.Unstructured{deploymentOf("p", at, false)},
			want:   map[string]string{"f/p": "MachineDeployment md-p: generation 2 not observed"},
		},
		"TwoMachineSetsWithMachines": {
			reason: "A MachineDeployment running machines on two MachineSets is rolling.",
			objs: []unstructured.Unstructured{deploymentOf("p", at, true),
				withReplicas(ms("ms-old", "p", "md-p", 1), 1), withReplicas(ms("ms-new", "p", "md-p", 0), 1)},
			want: map[string]string{"f/p": "MachineDeployment md-p runs machines on 2 MachineSets"},
		},
		"EmptyOldMachineSet": {
			reason: "An old MachineSet scaled to zero, its machines gone, does not make the pool rolling.",
			objs:   []unstructured.Unstructured{deploymentOf("p", at, true), withReplicas(ms("ms-old", "p", "md-p", 0), 0), withReplicas(ms("ms-new", "p", "md-p", 1), 1)},
			want:   map[string]string{"f/p": ""},
		},
		"OldMachine": {
			reason: "A machine at another version than its MachineDeployment's is not replaced yet.",
			objs:   []unstructured.Unstructured{deploymentOf("p", at, true), versioned(machine("m", "p", "md-p"), "v1.33.4")},
			want:   map[string]string{"f/p": "Machine m runs v1.33.4, not v1.34.1"},
		},
		"DeletingMachine": {
			reason: "A machine being deleted is on its way out: it does not keep the pool unsettled.",
			objs:   []unstructured.Unstructured{deploymentOf("p", at, true), deleting},
			want:   map[string]string{"f/p": ""},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := poolsSettled(byKind(tc.objs...), tc.behind)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\npoolsSettled(): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// A waveStep is a snapshot the watcher checks at a time (from the test's
// start), after what the test tells it.
type waveStep struct {
	tell func(w *Watcher)
	// at is when the snapshot's read began, took how long it took.
	at, took time.Duration
	objs     []unstructured.Unstructured
	wantHeld []string
	// wantHalted are the pools halted in the snapshot.
	wantHalted []string
	wantRules  []invariant.Rule
}

func TestWatcherWaves(t *testing.T) {
	const soak, haltTimeout = 30 * time.Second, time.Minute
	waves := func(behind ...string) func(w *Watcher) {
		return func(w *Watcher) {
			w.SetWaves(&Waves{Label: "w", Order: []string{"a", "b"}, Soak: soak, HaltTimeout: haltTimeout, Behind: behind})
		}
	}
	const t1, t2 = "v1.34.1/i1/b1", "v1.35.0/i1/b1"
	// fleet: pool a1 of the first wave (settled or not, at template ta), and
	// b1 of the second, running one machine at template tb.
	fleetOf := func(ta string, settledA bool, tb string) []unstructured.Unstructured {
		b := deploymentOf("b1", tb, true)
		return []unstructured.Unstructured{wavePool("a1", "a"), wavePool("b1", "b"), deploymentOf("a1", ta, settledA), b,
			ms("ms-b1", "b1", "md-b1", 1), machine("m-b1", "b1", "md-b1")}
	}
	cases := map[string]struct {
		reason string
		steps  []waveStep
	}{
		"HeldUntilSoaked": {
			reason: "The second wave is held while the first wave's pool is not at the target, then for the soak (less the slack) from the last snapshot that saw it not settled.",
			steps: []waveStep{
				{tell: waves("v1.34.1"), objs: fleetOf(t1, true, t1)},
				{at: time.Second, objs: fleetOf(t1, true, t1), wantHeld: []string{"f/b1"}},
				{at: 2 * time.Second, objs: fleetOf(t2, true, t1), wantHeld: []string{"f/b1"}},
				{at: time.Second + soak - soakSlack - time.Millisecond, objs: fleetOf(t2, true, t1), wantHeld: []string{"f/b1"}},
				{at: time.Second + soak - soakSlack, objs: fleetOf(t2, true, t1)},
			},
		},
		"StartBeforeSoaked": {
			reason: "A second-wave pool whose template changes while the first wave was not soaked in this snapshot and the one before breaks WaveOrder.",
			steps: []waveStep{
				{tell: waves("v1.34.1"), objs: fleetOf(t1, true, t1)},
				{at: time.Second, objs: fleetOf(t2, true, t1), wantHeld: []string{"f/b1"}},
				{at: 2 * time.Second, objs: fleetOf(t2, true, t2), wantHeld: []string{"f/b1"}, wantRules: []invariant.Rule{invariant.WaveOrder}},
			},
		},
		"StartAsSoaked": {
			reason: "A start in the snapshot where the soak ended (less the slack) is no violation.",
			steps: []waveStep{
				{tell: waves("v1.34.1"), objs: fleetOf(t1, true, t1)},
				{at: time.Second, objs: fleetOf(t2, true, t1), wantHeld: []string{"f/b1"}},
				{at: soak - soakSlack, objs: fleetOf(t2, true, t2)},
			},
		},
		"SlowSnapshots": {
			reason: "Snapshots far apart (a loaded machine) do not make a violation of a start the function timed right: the first wave may have settled just after the last snapshot that saw it not, and soaked from then.",
			steps: []waveStep{
				{tell: waves("v1.34.1"), objs: fleetOf(t1, true, t1)},
				{at: time.Second, objs: fleetOf(t1, true, t1), wantHeld: []string{"f/b1"}},
				{at: 7 * time.Second, objs: fleetOf(t2, true, t1), wantHeld: []string{"f/b1"}},
				{at: time.Second + soak - soakSlack, objs: fleetOf(t2, true, t2)},
			},
		},
		"SlowRead": {
			reason: "A start seen in a snapshot whose read took long may have happened as the read ended: the soak is judged then.",
			steps: []waveStep{
				{tell: waves("v1.34.1"), objs: fleetOf(t1, true, t1)},
				{at: time.Second, objs: fleetOf(t2, true, t1), wantHeld: []string{"f/b1"}},
				{at: soak - 2*soakSlack, took: 2 * soakSlack, objs: fleetOf(t2, true, t2)},
			},
		},
		"SettledBeforeTheWatch": {
			reason: "A first wave settled since before the watcher first saw it may have soaked long ago: nothing is held.",
			steps: []waveStep{
				{tell: waves(), objs: fleetOf(t1, true, t1)},
				{at: time.Second, objs: fleetOf(t1, true, t1)},
				{at: 2 * time.Second, objs: fleetOf(t1, true, t2)},
			},
		},
		"StartJustBeforeANewTarget": {
			reason: "A start seen in the first snapshot where the first wave is behind a new target may come from a reconcile that saw the old one soaked: the snapshot before did not hold it. The next start does break WaveOrder.",
			steps: []waveStep{
				{tell: waves(), objs: fleetOf(t1, true, t1)},
				{at: soak, objs: fleetOf(t1, true, t1)},
				{tell: waves("v1.34.1"), at: soak + time.Second, objs: fleetOf(t1, true, t2)},
				{at: soak + 2*time.Second, objs: fleetOf(t1, true, "v1.35.0/i2/b1"), wantHeld: []string{"f/b1"}, wantRules: []invariant.Rule{invariant.WaveOrder}},
			},
		},
		"HaltedOnceFailedForTheTimeout": {
			reason: "A first-wave pool the test made fail halts the second wave once it has not settled for the halt timeout, until it settles; a start then breaks both rules.",
			steps: []waveStep{
				{tell: func(w *Watcher) { waves()(w); w.Fail("f/a1") }, objs: fleetOf(t2, false, t1)},
				{at: haltTimeout - time.Second, objs: fleetOf(t2, false, t1), wantHeld: []string{"f/b1"}},
				{at: haltTimeout, objs: fleetOf(t2, false, t1), wantHeld: []string{"f/b1"}},
				{at: haltTimeout + time.Second, objs: fleetOf(t2, false, t1), wantHeld: []string{"f/b1"}, wantHalted: []string{"f/b1"}},
				{at: haltTimeout + 2*time.Second, objs: fleetOf(t2, false, t2), wantHeld: []string{"f/b1"}, wantHalted: []string{"f/b1"},
					wantRules: []invariant.Rule{invariant.HaltRespected, invariant.WaveOrder}},
				{at: haltTimeout + 3*time.Second, objs: fleetOf(t2, true, t2), wantHeld: []string{"f/b1"}},
			},
		},
		"NotFailing": {
			reason: "A first-wave pool that is slow but the test did not make fail holds the second wave, and halts nothing.",
			steps: []waveStep{
				{tell: waves(), objs: fleetOf(t2, false, t1)},
				{at: 2 * haltTimeout, objs: fleetOf(t2, false, t1), wantHeld: []string{"f/b1"}},
			},
		},
		"WavesOff": {
			reason: "Without waves told, nothing is held.",
			steps: []waveStep{
				{objs: fleetOf(t2, false, t1)},
				{at: time.Second, objs: fleetOf(t2, false, t2)},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			w := NewWatcher(nil)
			start := time.Unix(1e9, 0)
			wantHeld, wantHalted := map[string]int{}, map[string]int{}
			for i, s := range tc.steps {
				for _, p := range s.wantHeld {
					wantHeld[p]++
				}
				for _, p := range s.wantHalted {
					wantHalted[p]++
				}
				if s.tell != nil {
					s.tell(w)
				}
				seen := len(w.Violations())
				w.check(byKind(s.objs...), start.Add(s.at), start.Add(s.at+s.took))
				var rules []invariant.Rule
				for _, v := range w.Violations()[seen:] {
					rules = append(rules, v.Rule)
				}
				if diff := cmp.Diff(s.wantHeld, sortedKeys(w.last.WaveHeld), cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("%s\nstep %d: Snapshot.WaveHeld's pools -want, +got:\n%s", tc.reason, i, diff)
				}
				if diff := cmp.Diff(s.wantHalted, sortedKeys(w.last.Halted), cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("%s\nstep %d: Snapshot.Halted's pools -want, +got:\n%s", tc.reason, i, diff)
				}
				if diff := cmp.Diff(s.wantRules, rules, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("%s\nstep %d: violations first seen, -want rules, +got rules:\n%s", tc.reason, i, diff)
				}
			}
			held, halted := w.WaveSnapshots()
			if diff := cmp.Diff(wantHeld, held, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\nWaveSnapshots() held: -want, +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(wantHalted, halted, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\nWaveSnapshots() halted: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}
