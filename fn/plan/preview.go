package plan

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/provider"
)

// sizeFields are the fields of an infrastructure machine pool that change
// its size in place; any other change of its spec rolls its nodes (an ASG
// instance refresh, a scale set model update, a node group update).
var sizeFields = []string{"minSize", "maxSize", "scaling"}

// preview says what the plan does to each MachineDeployment and MachinePool
// compared with what runs: which replace their nodes and why, and which
// change in place. disruptive are the keys of those that replace machines
// that run: what the rollout gates hold.
func preview(p *Plan, in Input) (out []v1alpha1.Change, disruptive []string) {
	for _, r := range p.Resources {
		if !IsPool(r.Object) {
			continue
		}
		if _, passThrough := r.Object.(*unstructured.Unstructured); passThrough {
			continue
		}
		o, ok := in.Observed[r.Key]
		obj := r.Object.GetObjectKind().GroupVersionKind().Kind + "/" + r.Object.GetName()
		if !ok {
			out = append(out, v1alpha1.Change{Object: obj, Action: v1alpha1.ChangeCreate})
			continue
		}
		desired, err := previewFields(r.Object)
		if err != nil {
			continue
		}
		var replace, inPlace []string
		o.Object = o.object()
		was, _, _ := unstructured.NestedMap(o.Object, "spec", "template", "spec")
		now, _, _ := unstructured.NestedMap(desired, "spec", "template", "spec")
		if a, b := str(was, "version"), str(now, "version"); a != b {
			replace = append(replace, fmt.Sprintf("version %s -> %s", a, b))
		}
		for _, ref := range [][]string{{"infrastructureRef", "name"}, {"bootstrap", "configRef", "name"}} {
			a, _, _ := unstructured.NestedString(was, ref...)
			b, _, _ := unstructured.NestedString(now, ref...)
			if a != b {
				replace = append(replace, fmt.Sprintf("%s %s -> %s", ref[0], a, b))
			}
		}
		if why := p.rotating[r.Key].why; why != "" { // A new spec.rollout.after, or bootstrap config.
			replace = append(replace, why)
		}
		if key := keyInfraPool; r.Key == keyMachinePool {
			if why := poolChange(in.Observed[key].object(), p.resource(key)); why != "" {
				replace = append(replace, why)
			}
		}
		if a, b := valueAt(o.Object, "spec", "replicas"), valueAt(desired, "spec", "replicas"); b != nil && !reflect.DeepEqual(a, b) {
			inPlace = append(inPlace, fmt.Sprintf("replicas %v -> %v", a, b))
		}
		if a, b := autoscalerBounds(o.Object), autoscalerBounds(desired); a != b {
			inPlace = append(inPlace, fmt.Sprintf("autoscaler bounds %s -> %s", a, b))
		}
		if a, b := valueAt(o.Object, "spec", "template", "metadata", "labels"), valueAt(desired, "spec", "template", "metadata", "labels"); !reflect.DeepEqual(a, b) {
			inPlace = append(inPlace, "machine labels")
		}
		if a, b := valueAt(o.Object, "spec", "rollout", "strategy"), valueAt(desired, "spec", "rollout", "strategy"); !reflect.DeepEqual(a, b) {
			inPlace = append(inPlace, "rollout bounds")
		}
		switch {
		case len(replace) > 0:
			out = append(out, v1alpha1.Change{Object: obj, Action: v1alpha1.ChangeReplace, Reasons: append(replace, inPlace...)})
			if o.running() {
				disruptive = append(disruptive, r.Key)
				if r.Key == keyMachinePool && p.resource(keyInfraPool) != nil {
					disruptive = append(disruptive, keyInfraPool)
				}
			}
		case len(inPlace) > 0:
			out = append(out, v1alpha1.Change{Object: obj, Action: v1alpha1.ChangeInPlace, Reasons: inPlace})
		}
	}
	return out, disruptive
}

// previewFields is the part of a MachineDeployment or MachinePool preview
// compares, shaped as its JSON: read from the typed object rather than
// through a JSON round trip of all of it, which would cost a changed pool's
// reconcile a fifth of its time.
func previewFields(o provider.Object) (map[string]any, error) {
	var (
		tpl      clusterv1.MachineTemplateSpec
		replicas *int32
		rollout  map[string]any
	)
	switch t := o.(type) {
	case *clusterv1.MachineDeployment:
		tpl, replicas = t.Spec.Template, t.Spec.Replicas
		m, err := rolloutFields(t.Spec.Rollout)
		if err != nil {
			return nil, err
		}
		rollout = m
	case *clusterv1.MachinePool:
		tpl, replicas = t.Spec.Template, t.Spec.Replicas
	default:
		return provider.JSONMap(o)
	}
	spec := map[string]any{"template": map[string]any{
		"metadata": withStrings(map[string]any{}, "labels", tpl.Labels),
		"spec": map[string]any{
			"version":           tpl.Spec.Version,
			"infrastructureRef": map[string]any{"name": tpl.Spec.InfrastructureRef.Name},
			"bootstrap":         map[string]any{"configRef": map[string]any{"name": tpl.Spec.Bootstrap.ConfigRef.Name}},
		},
	}}
	if replicas != nil {
		spec["replicas"] = float64(*replicas)
	}
	if rollout != nil {
		spec["rollout"] = rollout
	}
	return map[string]any{"metadata": withStrings(map[string]any{}, "annotations", o.GetAnnotations()), "spec": spec}, nil
}

// rolloutFields is a MachineDeployment's rollout as JSON decodes it, nil if
// it is empty. The strategy and the rotation time the backend sets are read
// directly; anything else takes a JSON round trip.
func rolloutFields(r clusterv1.MachineDeploymentRolloutSpec) (map[string]any, error) {
	rest := r
	rest.Strategy.Type, rest.Strategy.RollingUpdate.MaxSurge, rest.Strategy.RollingUpdate.MaxUnavailable = "", nil, nil
	rest.After = metav1.Time{}
	if !reflect.ValueOf(rest).IsZero() {
		return provider.JSONMap(&r)
	}
	ru := map[string]any{}
	for k, v := range map[string]*intstr.IntOrString{"maxSurge": r.Strategy.RollingUpdate.MaxSurge, "maxUnavailable": r.Strategy.RollingUpdate.MaxUnavailable} {
		switch {
		case v == nil:
		case v.Type == intstr.String:
			ru[k] = v.StrVal
		default:
			ru[k] = float64(v.IntVal)
		}
	}
	strategy := map[string]any{}
	if r.Strategy.Type != "" {
		strategy["type"] = string(r.Strategy.Type)
	}
	if len(ru) > 0 {
		strategy["rollingUpdate"] = ru
	}
	out := map[string]any{}
	if len(strategy) > 0 {
		out["strategy"] = strategy
	}
	if !r.After.IsZero() {
		out["after"] = r.After.UTC().Format(time.RFC3339)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// withStrings sets m[k] to v as JSON decodes it, unless v is empty.
func withStrings(m map[string]any, k string, v map[string]string) map[string]any {
	if len(v) == 0 {
		return m
	}
	out := make(map[string]any, len(v))
	for key, val := range v {
		out[key] = val
	}
	m[k] = out
	return m
}

// poolChange says how an infrastructure machine pool's spec changes beyond
// its size, "" if it does not.
func poolChange(observed map[string]any, desired provider.Object) string {
	if observed == nil || desired == nil {
		return ""
	}
	d, err := provider.JSONMap(desired)
	if err != nil {
		return ""
	}
	was, _ := observed["spec"].(map[string]any)
	now, _ := d["spec"].(map[string]any)
	was, now = maps.Clone(was), maps.Clone(now)
	for _, f := range sizeFields {
		delete(was, f)
		delete(now, f)
	}
	var changed []string
	for _, k := range slices.Sorted(maps.Keys(merged(was, now))) {
		if !reflect.DeepEqual(was[k], now[k]) {
			changed = append(changed, k)
		}
	}
	if len(changed) == 0 {
		return ""
	}
	return desired.GetObjectKind().GroupVersionKind().Kind + " " + strings.Join(changed, ", ")
}

func merged(a, b map[string]any) map[string]any {
	out := maps.Clone(a)
	if out == nil {
		out = map[string]any{}
	}
	maps.Copy(out, b)
	return out
}

// resource is the plan's object of a key, nil if none.
func (p *Plan) resource(key string) provider.Object {
	for _, r := range p.Resources {
		if r.Key == key {
			return r.Object
		}
	}
	return nil
}

func autoscalerBounds(o map[string]any) string {
	a, _, _ := unstructured.NestedStringMap(o, "metadata", "annotations")
	lo, hi := a["cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size"], a["cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size"]
	if lo == "" && hi == "" {
		return "none"
	}
	return lo + "-" + hi
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func valueAt(o map[string]any, path ...string) any {
	v, _, _ := unstructured.NestedFieldNoCopy(o, path...)
	return v
}

// revisions are the names of the templates the plan keeps, sorted.
func revisions(p *Plan) []string {
	var out []string
	for _, r := range p.Resources {
		if IsTemplate(r.Key) {
			out = append(out, r.Object.GetName())
		}
	}
	slices.Sort(out)
	return out
}

// rolling lists the pool's MachineDeployments and MachinePool whose
// controller has not caught up with their spec or not replaced every
// machine yet.
func rolling(p *Plan, observed map[string]Observed) []string {
	var out []string
	for _, r := range p.Resources {
		o, ok := observed[r.Key]
		if !IsPool(r.Object) || !ok {
			continue
		}
		if o.rolling() {
			out = append(out, o.Name)
		}
	}
	return out
}
