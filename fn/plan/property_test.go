package plan

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"k8s.io/utils/ptr"

	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/kubeversion"
	"github.com/fleetnodepool/function-fleetnodepool/fn/provider"
)

// A machineSet of the simulated world: the templates and version it clones
// machines from, and how many it runs.
type machineSet struct {
	infra, bootstrap, version string
	replicas                  int32
}

// world simulates what the function plans for over time: users and the
// platform team edit, the control plane upgrades on its own schedule,
// Crossplane applies the plan (deleting what the plan drops first), and
// Cluster API rolls MachineDeployments one machine per step.
type world struct {
	rng      *rand.Rand
	in       Input
	cp       string
	observed map[string]Observed
	sets     map[string][]machineSet // By MachineDeployment name.
	step     int
}

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
	return w
}

// edit makes one random change, as users, the platform team or the
// control plane would.
func (w *world) edit() string {
	in := &w.in
	switch w.rng.IntN(10) {
	case 0:
		in.Spec.Machine.Class = []string{"small", "medium", "large"}[w.rng.IntN(3)]
		return "class " + in.Spec.Machine.Class
	case 1:
		in.Policy.Channels["stable"] = versions[w.rng.IntN(len(versions))]
		return "channel " + in.Policy.Channels["stable"]
	case 2:
		// The control plane moves one version towards the channel.
		target, _ := kubeversion.Parse(in.Policy.Channels["stable"])
		cur, _ := kubeversion.Parse(w.cp)
		if target.NewerThan(cur) {
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
	}
	return "nothing" // Most reconciles see no change.
}

// A violation of a lifecycle rule.
type violation struct {
	rule string
	why  string
}

// reconcile plans, checks the plan, and applies it as Crossplane does.
func (w *world) reconcile(pl *Planner) []violation {
	in := w.in
	in.Observed = w.observed
	in.ControlPlane = &ControlPlane{Kind: "KubeadmControlPlane", Name: "prod-eu-1", Version: w.cp}
	in.MachineSets = map[string][]MachineSet{}
	for md, sets := range w.sets {
		for _, s := range sets {
			in.MachineSets[md] = append(in.MachineSets[md], MachineSet{Infra: s.infra, Bootstrap: s.bootstrap})
		}
	}
	p, err := pl.Plan(in)
	if err != nil {
		return nil // A Fatal result: Crossplane changes nothing.
	}
	var vs []violation
	desired := map[string]Resource{}
	cp, _ := kubeversion.Parse(w.cp)
	for _, r := range p.Resources {
		desired[r.Key] = r
		obj, err := provider.JSONMap(r.Object)
		if err != nil {
			continue
		}
		if !IsPool(r.Object) {
			continue
		}
		// No worker newer than its control plane.
		if v, err := kubeversion.Parse(str(valueAt(obj, "spec", "template", "spec").(map[string]any), "version")); err == nil && v.NewerThan(cp) {
			vs = append(vs, violation{"sequence", fmt.Sprintf("%s runs %s, the control plane %s", r.Object.GetName(), v, w.cp)})
		}
		// No replica fight: an autoscaled object never carries a size.
		ann, _ := valueAt(obj, "metadata", "annotations").(map[string]any)
		if _, autoscaled := ann[clusterv1.AutoscalerMinSizeAnnotation]; autoscaled && valueAt(obj, "spec", "replicas") != nil {
			vs = append(vs, violation{"replicas", r.Object.GetName() + " is autoscaled and sets spec.replicas"})
		}
	}
	// No backing deleted without the opt-in.
	for k, o := range w.observed {
		if _, kept := desired[k]; !kept && isBacking(k) && o.running() && !w.in.AllowReplacement {
			vs = append(vs, violation{"guard", fmt.Sprintf("%s (running %d) deleted without the opt-in", o.Name, ptr.Deref(o.Replicas, 0))})
		}
	}

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
			Replicas: o.Replicas, UpToDateReplicas: o.UpToDateReplicas, Available: o.Available}
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
		}
		next[k] = n
		names[n.Name] = true
	}
	for md := range w.sets {
		if !slices.ContainsFunc(keysOf(next), func(k string) bool { return strings.HasPrefix(k, keyMachineDeployment) && next[k].Name == md }) {
			delete(w.sets, md) // Garbage collected with its MachineDeployment.
		}
	}
	// No template a live MachineSet clones from is gone.
	for md, sets := range w.sets {
		for _, s := range sets {
			for _, t := range []string{s.infra, s.bootstrap} {
				if t != "" && !names[t] {
					vs = append(vs, violation{"retention", fmt.Sprintf("MachineSet of %s clones from %s, which was deleted", md, t)})
				}
			}
		}
	}
	w.observed = next
	w.rollout()
	return vs
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
		if k == keyMachinePool {
			o.Replicas, o.UpToDateReplicas = ptr.To(want), ptr.To(want)
		} else {
			cur := machineSet{version: o.Version}
			if len(o.References) == 2 {
				cur.infra, cur.bootstrap = o.References[0], o.References[1]
			}
			sets := w.sets[o.Name]
			i := slices.IndexFunc(sets, func(s machineSet) bool {
				return s.infra == cur.infra && s.bootstrap == cur.bootstrap && s.version == cur.version
			})
			if i < 0 {
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
				return s.infra == cur.infra && s.bootstrap == cur.bootstrap && s.version == cur.version
			}); j >= 0 {
				up = kept[j].replicas
			}
			o.Replicas, o.UpToDateReplicas = ptr.To(total), ptr.To(up)
		}
		o.ObservedGeneration, o.Available = o.Generation, true
		w.observed[k] = o
	}
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

// run drives a world through steps reconciles and returns the violations.
func run(pl *Planner, seed uint64, steps int) []violation {
	w := newWorld(seed)
	var vs []violation
	for w.step = 0; w.step < steps; w.step++ {
		w.edit()
		vs = append(vs, w.reconcile(pl)...)
	}
	return vs
}

// TestLifecycleProperties drives the function through long random sequences
// of edits and simulated rollouts, and checks every step: no template a
// MachineSet uses is dropped, no worker runs newer than its control plane,
// no autoscaled size is owned, no running backing is deleted unasked.
func TestLifecycleProperties(t *testing.T) {
	const worlds, steps = 20, 500 // 10,000 reconciles.
	for seed := range uint64(worlds) {
		if vs := run(testPlanner(), seed, steps); len(vs) > 0 {
			t.Errorf("seed %d: %d violations, the first: %s: %s", seed, len(vs), vs[0].rule, vs[0].why)
		}
	}
}

// TestLifecyclePropertiesCatchBrokenRules breaks each rule on purpose and
// requires the property test to notice.
func TestLifecyclePropertiesCatchBrokenRules(t *testing.T) {
	for name, r := range map[string]rule{
		"retention": ruleRetention, "sequence": ruleSequence, "replicas": ruleReplicas, "guard": ruleGuard,
	} {
		t.Run(name, func(t *testing.T) {
			found := false
			for seed := range uint64(20) {
				for _, v := range run(testPlanner(withBroken(r)), seed, 500) {
					found = found || v.rule == name
				}
			}
			if !found {
				t.Errorf("with the %s rule broken, 10,000 random steps found no %s violation: the property test cannot fail for it", name, name)
			}
		})
	}
}
