package plan

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/apis/input/v1beta1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/provider"
	"github.com/fleetnodepool/function-fleetnodepool/test/invariant"
)

// A machineSet of the simulated world: the templates and version it clones
// machines from, and how many it runs.
type machineSet struct {
	infra, bootstrap, version string
	replicas                  int32
	created                   time.Time
}

// world simulates what the function plans for over time: users and the
// platform team edit, the control plane upgrades on its own schedule,
// Crossplane applies the plan (deleting what the plan drops first), and
// Cluster API rolls MachineDeployments one machine per step. Crossplane and
// Cluster API both see the world through caches that may lag it by up to
// maxLag.
type world struct {
	rng      *rand.Rand
	in       Input
	cp       string
	observed map[string]Observed
	sets     map[string][]machineSet // By MachineDeployment name.
	step     int
	// canary are the markers of the wave before the pool's.
	canary []Marker
	// history is what Crossplane's caches may still show: the world after
	// each recent step, newest last.
	history []view
	// rotations counts the node rotations: MachineSets Cluster API made
	// for a past spec.rollout.after, and MachinePool bootstrap configs of a
	// new rotation stamp (the last one seen is stamp).
	rotations int
	stamp     string
	// calm worlds see no pauses, deferrals, windows or canary moves: the
	// rollout rules rarely hold them, so their nodes rotate often.
	calm bool
}

// A view is the world as Crossplane's informer caches show it: the
// composed objects and the MachineSets, as they were at one moment.
type view struct {
	at       time.Time
	observed map[string]Observed
	sets     map[string][]machineSet
}

// maxLag bounds how far the function's view lags the world: Crossplane's
// caches lag the API server by moments under load, well under ReleaseAfter.
// The composed objects and the MachineSets come from separate informers,
// so each lags on its own.
const maxLag = 10 * time.Second

var (
	versions = []string{"v1.33.4", "v1.34.1", "v1.35.0"}
	zoneSets = [][]string{{"eu-west-1a"}, {"eu-west-1a", "eu-west-1b"}, {"eu-west-1a", "eu-west-1b", "eu-west-1c"}, nil}
)

func newWorld(seed uint64) *world {
	w := &world{
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), //nolint:gosec // Seeded, reproducible worlds: no secrets.
		in:       input(),
		cp:       "v1.33.4",
		observed: map[string]Observed{},
		sets:     map[string][]machineSet{},
	}
	w.in.Policy.Channels["stable"] = "v1.33.4"
	w.in.Policy.Rollouts = &v1beta1.RolloutPolicy{MaintenanceWindows: []v1beta1.MaintenanceWindow{nightly},
		// The pool is in staging, after a canary wave of two pools.
		Waves: []v1beta1.Wave{
			{Name: "canary", PoolSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"ring": "0"}}, Soak: metav1.Duration{Duration: canarySoak}},
			{Name: "staging", PoolSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"ring": "1"}}},
		}}
	w.in.Labels = map[string]string{"ring": "1"}
	// Nodes live at most 2h (12 steps' time at 10 minutes a step), their
	// rotations spread over the half hour before.
	w.in.Policy.Rotation = &v1beta1.RotationPolicy{MaxNodeAge: &metav1.Duration{Duration: 2 * time.Hour}, Spread: &metav1.Duration{Duration: 30 * time.Minute}}
	t := w.target()
	w.canary = []Marker{{Pool: "c0", Target: t, State: MarkerSettled}, {Pool: "c1", Target: t, State: MarkerSettled}}
	return w
}

// canarySoak is the canary wave's soak in the world.
const canarySoak = 30 * time.Minute

// target is the policy's target now.
func (w *world) target() string {
	t, err := Target(w.in.Policy)
	if err != nil {
		panic(err)
	}
	return t
}

// waveHeld says why the canary wave does not let the pool start now, read
// from the markers independently of the planner: "" when it does; halted
// when a canary pool failed at the target.
func (w *world) waveHeld() (waiting, halted string) {
	t := w.target()
	for _, m := range w.canary {
		switch {
		case m.Target == t && m.State == MarkerFailed:
			halted = "canary pool " + m.Pool + " failed"
		case m.Target != t || m.State != MarkerSettled:
			waiting = "canary pool " + m.Pool + " not at the target"
		case w.in.Now.Before(m.Since.Add(canarySoak)):
			waiting = "canary pool " + m.Pool + " soaking"
		}
	}
	return waiting, halted
}

// nightly is the world's maintenance window: 22:00 to 02:00 UTC.
var nightly = v1beta1.MaintenanceWindow{Name: "nightly", Start: "22:00", Duration: metav1.Duration{Duration: 4 * time.Hour}}

// held says why the pool may not start a disruptive change now, read from
// the world independently of the planner: "" when it may.
func (w *world) held() string {
	switch h := w.in.Now.UTC().Hour(); {
	case w.in.Policy.Rollouts.Paused:
		return "paused"
	case w.in.Annotations[AnnotationDeferRollout] == "true":
		return "deferred"
	case w.in.Policy.Rollouts.DefaultMaintenanceWindow != "" && h >= 2 && h < 22:
		return "outside its window (22:00-02:00 UTC)"
	}
	return ""
}

// edit makes one random change, as users, the platform team or the
// control plane would. In a calm world the canary wave is then settled and
// soaked at whatever the target is.
func (w *world) edit() string {
	e := w.change()
	if w.calm {
		for i := range w.canary {
			w.canary[i] = Marker{Pool: w.canary[i].Pool, Target: w.target(), State: MarkerSettled}
		}
	}
	return e
}

// change makes one random change (see edit).
func (w *world) change() string {
	in := &w.in
	// Time passes: ten minutes a step, so the nightly window opens and
	// closes about every 144 steps; one step in four follows the last
	// within seconds, as a user's second edit does.
	if w.calm && w.rng.IntN(10) != 0 {
		in.Now = in.Now.Add(10 * time.Minute)
		return "nothing" // A calm world mostly runs: its nodes age.
	}
	if w.rng.IntN(4) == 0 {
		// A user's quick second edit: another class.
		in.Now = in.Now.Add(time.Duration(1+w.rng.IntN(5)) * time.Second)
		in.Spec.Machine.Class = []string{"small", "medium", "large"}[w.rng.IntN(3)]
		return "quickly, class " + in.Spec.Machine.Class
	}
	in.Now = in.Now.Add(10 * time.Minute)
	n := 15
	if w.calm {
		n = 7 // The edits of the pool, the platform and the control plane only.
	}
	switch w.rng.IntN(n) {
	case 0:
		in.Spec.Machine.Class = []string{"small", "medium", "large"}[w.rng.IntN(3)]
		return "class " + in.Spec.Machine.Class
	case 1:
		in.Policy.Channels["stable"] = versions[w.rng.IntN(len(versions))]
		return "channel " + in.Policy.Channels["stable"]
	case 2:
		// The control plane moves one version towards the channel.
		if invariant.Newer(in.Policy.Channels["stable"], w.cp) {
			w.cp = versions[slices.Index(versions, w.cp)+1]
		}
		return "control plane " + w.cp
	case 3:
		if w.rng.IntN(2) == 0 {
			in.Spec.Scaling = v1alpha1.Scaling{Replicas: ptr.To(w.rng.Int32N(5))}
		} else {
			lo := w.rng.Int32N(3)
			in.Spec.Scaling = v1alpha1.Scaling{Min: ptr.To(lo), Max: ptr.To(lo + 3 + w.rng.Int32N(3))}
		}
		return fmt.Sprintf("scaling %v/%v/%v", ptr.Deref(in.Spec.Scaling.Replicas, -1), ptr.Deref(in.Spec.Scaling.Min, -1), ptr.Deref(in.Spec.Scaling.Max, -1))
	case 4:
		in.Spec.Zones = zoneSets[w.rng.IntN(len(zoneSets))]
		return fmt.Sprintf("zones %v", in.Spec.Zones)
	case 5:
		in.Spec.Backend = []v1alpha1.Backend{v1alpha1.BackendMachineDeployment, v1alpha1.BackendMachinePool}[w.rng.IntN(2)]
		in.AllowReplacement = w.rng.IntN(2) == 0
		return fmt.Sprintf("backend %s (replace %t)", in.Spec.Backend, in.AllowReplacement)
	case 6:
		in.Spec.Labels = map[string]string{"team": []string{"a", "b"}[w.rng.IntN(2)]}
		return "labels"
	case 7:
		in.Policy.Rollouts.Paused = !in.Policy.Rollouts.Paused
		return fmt.Sprintf("paused %t", in.Policy.Rollouts.Paused)
	case 8:
		deferred := in.Annotations[AnnotationDeferRollout] != "true"
		in.Annotations = map[string]string{AnnotationDeferRollout: strconv.FormatBool(deferred)}
		return fmt.Sprintf("deferred %t", deferred)
	case 9:
		if in.Policy.Rollouts.DefaultMaintenanceWindow == "" {
			in.Policy.Rollouts.DefaultMaintenanceWindow = "nightly"
		} else {
			in.Policy.Rollouts.DefaultMaintenanceWindow = ""
		}
		return "window " + in.Policy.Rollouts.DefaultMaintenanceWindow
	case 10, 11:
		// A canary pool moves: to the target (settled now, rolling or
		// failed), or back to another.
		m := &w.canary[w.rng.IntN(len(w.canary))]
		m.Target, m.Since, m.StartedAt = w.target(), in.Now, in.Now
		m.State = []MarkerState{MarkerSettled, MarkerSettled, MarkerRolling, MarkerFailed, MarkerHeld}[w.rng.IntN(5)]
		if w.rng.IntN(6) == 0 {
			m.Target = "an-older-target"
		}
		return fmt.Sprintf("canary %s %s %s", m.Pool, m.State, m.Target)
	}
	return "nothing" // Most reconciles see no change.
}

// snapshot is the world as the fleet invariants see it: the control plane,
// the MachineSets, and the backings and templates given.
func (w *world) snapshot(backings []invariant.Backing, templates map[invariant.Ref]bool) invariant.Snapshot {
	s := invariant.Snapshot{
		ControlPlanes: map[string]string{w.in.Namespace + "/" + w.in.Spec.ClusterName: w.cp},
		Templates:     templates,
		Backings:      backings,
		Pools:         []invariant.Pool{{Namespace: w.in.Namespace, Name: w.in.Name, AllowReplacement: w.in.AllowReplacement}},
	}
	pool := w.in.Namespace + "/" + w.in.Name
	if why := w.held(); why != "" {
		s.Held = map[string]string{pool: why}
	}
	waiting, halted := w.waveHeld()
	if waiting != "" {
		s.WaveHeld = map[string]string{pool: waiting}
	}
	if halted != "" {
		s.Halted = map[string]string{pool: halted}
	}
	for _, md := range slices.Sorted(maps.Keys(w.sets)) {
		for i, ms := range w.sets[md] {
			s.MachineSets = append(s.MachineSets, invariant.MachineSet{
				Ref:  invariant.Ref{Kind: "MachineSet", Namespace: w.in.Namespace, Name: fmt.Sprintf("%s-%d", md, i)},
				Pool: w.in.Name, Cluster: w.in.Spec.ClusterName, Version: ms.version, Running: ms.replicas,
				Infra: invariant.Ref{Name: ms.infra}, Bootstrap: invariant.Ref{Name: ms.bootstrap},
			})
		}
	}
	return s
}

// backing is a pool object (MachineDeployment or MachinePool) as the
// invariants see it.
func (w *world) backing(kind, name string, obj map[string]any, running int32) invariant.Backing {
	ann, _ := valueAt(obj, "metadata", "annotations").(map[string]any)
	_, autoscaled := ann[clusterv1.AutoscalerMinSizeAnnotation]
	v, _ := valueAt(obj, "spec", "template", "spec", "version").(string)
	infra, _ := valueAt(obj, "spec", "template", "spec", "infrastructureRef", "name").(string)
	boot, _ := valueAt(obj, "spec", "template", "spec", "bootstrap", "configRef", "name").(string)
	return invariant.Backing{Ref: invariant.Ref{Kind: kind, Namespace: w.in.Namespace, Name: name}, Pool: w.in.Name, Cluster: w.in.Spec.ClusterName,
		Version: v, Autoscaled: autoscaled, FunctionSetsReplicas: valueAt(obj, "spec", "replicas") != nil, Running: running,
		Template: v + "/" + infra + "/" + boot + "/" + rolloutAfter(obj).Format(time.RFC3339)}
}

// reconcile plans, applies the plan as Crossplane does, and checks the
// fleet invariants on the world after, against the world before.
func (w *world) reconcile(pl *Planner) []invariant.Violation {
	in := w.in
	seen, seenSets := w.view()
	in.Observed = seen
	in.Target = w.target()
	in.Fleet = map[string]WaveView{"canary": ViewWave(w.canary, in.Target)}
	in.ControlPlane = &ControlPlane{Kind: "KubeadmControlPlane", Name: "prod-eu-1", Version: w.cp}
	in.MachineSets = map[string][]MachineSet{}
	for md, sets := range seenSets {
		for _, s := range sets {
			in.MachineSets[md] = append(in.MachineSets[md], MachineSet{Infra: s.infra, Bootstrap: s.bootstrap, Created: s.created})
		}
	}
	p, err := pl.Plan(in)
	if err != nil {
		return nil // A Fatal result: Crossplane changes nothing.
	}
	for _, r := range p.Resources {
		if cm, ok := r.Object.(*corev1.ConfigMap); ok {
			m := ReadMarker(w.in.Namespace, w.in.Name, cm.Data)
			w.in.Marker = &m
		}
	}
	var before []invariant.Backing
	for _, k := range sortedKeys(w.observed) {
		o := w.observed[k]
		if kind, _ := o.Object["kind"].(string); kind == "MachineDeployment" || kind == "MachinePool" {
			before = append(before, w.backing(kind, o.Name, o.Object, ptr.Deref(o.Replicas, 0)))
		}
	}
	desired := map[string]Resource{}
	var after []invariant.Backing
	for _, r := range p.Resources {
		desired[r.Key] = r
		if obj, err := provider.JSONMap(r.Object); err == nil && IsPool(r.Object) {
			after = append(after, w.backing(r.Object.GetObjectKind().GroupVersionKind().Kind, r.Object.GetName(), obj, 0))
		}
	}
	prev := invariant.Snapshot{Backings: before}

	// Crossplane: delete what the plan dropped, then apply the plan.
	names := map[string]bool{}
	next := map[string]Observed{}
	for k, r := range desired {
		o := w.observed[k]
		obj, _ := provider.JSONMap(r.Object)
		gen := o.Generation
		if o.Object == nil || !equalSpec(o.Object, obj) {
			gen++
		}
		n := Observed{Name: r.Object.GetName(), Object: obj, Generation: gen, ObservedGeneration: o.ObservedGeneration,
			Replicas: o.Replicas, UpToDateReplicas: o.UpToDateReplicas, Available: o.Available, Created: o.Created,
			RolloutAfter: rolloutAfter(obj)}
		if o.Object == nil {
			n.Created = w.in.Now
		}
		n.Rotation, _, _ = unstructured.NestedString(obj, "metadata", "annotations", AnnotationRotation)
		if IsPool(r.Object) {
			spec, _ := obj["spec"].(map[string]any)
			n.ClusterName, _ = spec["clusterName"].(string)
			n.SpecReplicas = int32Of(spec["replicas"])
			ts, _ := valueAt(obj, "spec", "template", "spec").(map[string]any)
			n.Version = str(ts, "version")
			n.InfraKind, _ = valueAt(obj, "spec", "template", "spec", "infrastructureRef", "kind").(string)
			for _, ref := range [][]string{{"infrastructureRef", "name"}, {"bootstrap", "configRef", "name"}} {
				if s, _ := valueAt(ts, ref...).(string); s != "" {
					n.References = append(n.References, s)
				}
			}
			n.Bootstrap, _ = valueAt(ts, "bootstrap", "configRef", "name").(string)
		}
		next[k] = n
		names[n.Name] = true
	}
	// What Crossplane did not see, it neither keeps nor deletes: it stays
	// as it is.
	for _, k := range sortedKeys(w.observed) {
		if _, ok := next[k]; ok || seen[k].Object != nil {
			continue
		}
		o := w.observed[k]
		next[k], names[o.Name] = o, true
		if kind, _ := o.Object["kind"].(string); kind == "MachineDeployment" || kind == "MachinePool" {
			after = append(after, w.backing(kind, o.Name, o.Object, 0))
		}
	}
	for md := range w.sets {
		if !slices.ContainsFunc(keysOf(next), func(k string) bool { return strings.HasPrefix(k, keyMachineDeployment) && next[k].Name == md }) {
			delete(w.sets, md) // Garbage collected with its MachineDeployment.
		}
	}
	templates := make(map[invariant.Ref]bool, len(names))
	for n := range names {
		templates[invariant.Ref{Namespace: w.in.Namespace, Name: n}] = true
	}
	vs := invariant.Check(prev, w.snapshot(after, templates))
	if mp, ok := next[keyMachinePool]; ok && mp.Bootstrap != "" {
		for _, o := range next {
			if o.Name == mp.Bootstrap && o.Rotation != "" && o.Rotation != w.stamp {
				w.rotations, w.stamp = w.rotations+1, o.Rotation
			}
		}
	}
	w.observed = next
	w.rollout()
	w.record()
	return vs
}

// record adds the world as it is now to the views the caches may show.
func (w *world) record() {
	sets := make(map[string][]machineSet, len(w.sets))
	for md, s := range w.sets {
		sets[md] = slices.Clone(s)
	}
	w.history = append(w.history, view{at: w.in.Now, observed: maps.Clone(w.observed), sets: sets})
	if len(w.history) > 8 {
		w.history = w.history[1:]
	}
}

// view is what the function is shown: one reconcile in three, the composed
// objects and the MachineSets each as the caches may still show them, at
// most maxLag old; otherwise the world as it is.
func (w *world) view() (map[string]Observed, map[string][]machineSet) {
	observed, sets := w.observed, w.sets
	if len(w.history) == 0 || w.rng.IntN(3) != 0 {
		return observed, sets
	}
	var recent []view
	for _, v := range w.history {
		if !v.at.Before(w.in.Now.Add(-maxLag)) {
			recent = append(recent, v)
		}
	}
	if len(recent) == 0 {
		return observed, sets
	}
	return recent[w.rng.IntN(len(recent))].observed, recent[w.rng.IntN(len(recent))].sets
}

// rollout moves every MachineDeployment one machine towards its spec, as
// Cluster API does with maxSurge 1: a new MachineSet up, old ones down.
func (w *world) rollout() {
	for k, o := range w.observed {
		if !strings.HasPrefix(k, keyMachineDeployment) && k != keyMachinePool {
			continue
		}
		want := ptr.Deref(o.SpecReplicas, 0)
		if o.SpecReplicas == nil {
			want = ptr.Deref(o.Replicas, 0) // Autoscaled: the autoscaler keeps the size.
			if a, ok := o.Object["metadata"].(map[string]any)["annotations"].(map[string]any)[clusterv1.AutoscalerMinSizeAnnotation].(string); ok && o.Replicas == nil {
				if _, err := fmt.Sscan(a, &want); err != nil {
					panic(err) // The function wrote the annotation from an int32.
				}
			}
		}
		observedGen := o.Generation
		if k == keyMachinePool {
			o.Replicas, o.UpToDateReplicas = ptr.To(want), ptr.To(want)
		} else {
			// Cluster API reads the MachineDeployment from its own cache:
			// one step in three it acts on the spec the step before applied,
			// if that is at most maxLag old, and says so (observedGeneration).
			spec := o
			if prev, ok := w.lagged(k); ok {
				spec, observedGen = prev, prev.Generation
			}
			cur := machineSet{version: spec.Version, created: w.in.Now}
			if len(spec.References) == 2 {
				cur.infra, cur.bootstrap = spec.References[0], spec.References[1]
			}
			// A MachineSet made before a past spec.rollout.after is not
			// the current one: Cluster API makes a new one.
			after := rolloutAfter(spec.Object)
			sets := w.sets[o.Name]
			i := slices.IndexFunc(sets, func(s machineSet) bool {
				return s.infra == cur.infra && s.bootstrap == cur.bootstrap && s.version == cur.version &&
					(after.IsZero() || w.in.Now.Before(after) || !s.created.Before(after))
			})
			if i < 0 {
				if slices.ContainsFunc(sets, func(s machineSet) bool {
					return s.infra == cur.infra && s.bootstrap == cur.bootstrap && s.version == cur.version
				}) {
					w.rotations++ // Same template: made for spec.rollout.after.
				}
				sets = append(sets, cur)
				i = len(sets) - 1
			}
			switch {
			case sets[i].replicas < want:
				sets[i].replicas++
			case sets[i].replicas > want:
				sets[i].replicas--
			}
			var kept []machineSet
			var total int32
			for j, s := range sets {
				if j != i && s.replicas > 0 {
					s.replicas--
				}
				if j == i || s.replicas > 0 {
					kept = append(kept, s)
					total += s.replicas
				}
			}
			w.sets[o.Name] = kept
			var up int32
			if j := slices.IndexFunc(kept, func(s machineSet) bool {
				return s.infra == cur.infra && s.bootstrap == cur.bootstrap && s.version == cur.version && s.created.Equal(sets[i].created)
			}); j >= 0 {
				up = kept[j].replicas
			}
			o.Replicas, o.UpToDateReplicas = ptr.To(total), ptr.To(up)
		}
		o.ObservedGeneration, o.Available = observedGen, true
		w.observed[k] = o
	}
}

// lagged is the MachineDeployment of key as the last step left it, when
// Cluster API's cache still shows that one (one step in three, at most
// maxLag ago, a spec since changed).
func (w *world) lagged(key string) (Observed, bool) {
	if len(w.history) == 0 || w.rng.IntN(3) != 0 {
		return Observed{}, false
	}
	v := w.history[len(w.history)-1]
	prev, ok := v.observed[key]
	if !ok || v.at.Before(w.in.Now.Add(-maxLag)) || prev.Generation == w.observed[key].Generation || prev.Name != w.observed[key].Name {
		return Observed{}, false
	}
	return prev, true
}

func equalSpec(a, b map[string]any) bool {
	return fmt.Sprint(a["spec"], valueAt(a, "metadata", "annotations")) == fmt.Sprint(b["spec"], valueAt(b, "metadata", "annotations"))
}

func int32Of(v any) *int32 {
	f, ok := v.(float64)
	if !ok {
		return nil
	}
	return ptr.To(int32(f))
}

func keysOf(m map[string]Observed) []string { return sortedKeys(m) }

// run drives a world through steps reconciles and returns the violations;
// with stop, only those of the first reconcile that finds any.
func run(pl *Planner, seed uint64, steps int, stop bool) ([]invariant.Violation, *world) {
	w := newWorld(seed)
	w.calm = seed%4 == 3
	var vs []invariant.Violation
	for w.step = 0; w.step < steps; w.step++ {
		w.edit()
		vs = append(vs, w.reconcile(pl)...)
		if stop && len(vs) > 0 {
			break
		}
	}
	return vs, w
}

// TestLifecycleProperties drives the function through long random sequences
// of edits and simulated rollouts, and checks the fleet invariants
// (test/invariant) every step. One reconcile in three shows the function
// its composed objects and MachineSets as Crossplane's caches may, each up
// to maxLag behind, and Cluster API acts on a MachineDeployment's previous
// spec one step in three (issue #15's stale views). No template a MachineSet uses is dropped, no
// worker runs newer than its control plane, no autoscaled size is owned, no
// running backing is deleted unasked, no rollout starts while paused,
// deferred or outside the maintenance window. Nodes have a max age of 2h:
// one world in four is calm (few edits, no pauses, deferrals, windows or
// canary moves), so that its nodes rotate, and must; a rotation is a
// rollout like any other to the invariants (spec.rollout.after is part of
// what a backing's machines are made from).
func TestLifecycleProperties(t *testing.T) {
	const worlds, steps = 20, 500 // 10,000 reconciles.
	rotations := 0
	for seed := range uint64(worlds) {
		vs, w := run(testPlanner(), seed, steps, false)
		if len(vs) > 0 {
			t.Errorf("seed %d: %d violations, the first: %s", seed, len(vs), vs[0])
		}
		// Nodes live 2h in the worlds, 83h each: a calm world's must have
		// rotated for the invariants to have judged rotations.
		if w.calm && w.rotations == 0 {
			t.Errorf("seed %d: a calm world made no MachineSet for node rotation in %d steps", seed, steps)
		}
		rotations += w.rotations
	}
	t.Logf("%d worlds x %d steps: %d node rotations", worlds, steps, rotations)
}

// TestLifecyclePropertiesCatchBrokenRules breaks each rule on purpose, runs
// random worlds until the first violation, and requires it to be of the
// rule broken.
func TestLifecyclePropertiesCatchBrokenRules(t *testing.T) {
	for name, r := range map[invariant.Rule]rule{
		invariant.TemplateExists: ruleRetention, invariant.WorkerNotNewer: ruleSequence,
		invariant.ReplicasNotOwned: ruleReplicas, invariant.BackingKept: ruleGuard,
		invariant.NoStartWhileHeld + "/pause": rulePause, invariant.NoStartWhileHeld + "/window": ruleWindow,
		invariant.WaveOrder: ruleWave, invariant.HaltRespected: ruleHalt,
		invariant.TemplateExists + "/release": ruleRelease, invariant.NoStartWhileHeld + "/rotation": ruleRotation,
	} {
		want := invariant.Rule(strings.Split(string(name), "/")[0])
		// A rotation that ignores the rollout rules breaks whichever holds
		// the pool first: a pause, its window, or an earlier wave.
		gates := []invariant.Rule{invariant.NoStartWhileHeld, invariant.WaveOrder, invariant.HaltRespected}
		t.Run(string(name), func(t *testing.T) {
			var vs []invariant.Violation
			for seed := uint64(0); seed < 20 && len(vs) == 0; seed++ {
				vs, _ = run(testPlanner(withBroken(r)), seed, 500, true)
			}
			if len(vs) == 0 {
				t.Fatalf("with the %s rule broken, 10,000 random steps found no violation: the property test cannot fail for it", want)
			}
			for _, v := range vs {
				if v.Rule != want && (r != ruleRotation || !slices.Contains(gates, v.Rule)) {
					t.Errorf("with the %s rule broken, the first violations found include %s, want only %s violations", want, v, want)
				}
			}
		})
	}
}

// rolloutAfter is a MachineDeployment's spec.rollout.after, zero if unset.
func rolloutAfter(obj map[string]any) time.Time {
	s, _, _ := unstructured.NestedString(obj, "spec", "rollout", "after")
	return parseTime(s)
}
