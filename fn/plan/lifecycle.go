package plan

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
)

// AnnotationAllowReplacement on a FleetNodePool opts in to changes that
// replace the backing of a running pool (another backend, removing a zone
// with running nodes): new backing first, the old one removed once the new
// one is available.
const AnnotationAllowReplacement = v1alpha1.Group + "/allow-replacement"

// AnnotationUnusedSince is set by the function on a template of an earlier
// revision that nothing it can see uses any more: when it first saw it so.
// The template is released (no longer emitted, so Crossplane deletes it)
// only once ReleaseAfter has passed since then and Cluster API has acted on
// the pool's latest MachineDeployments; see keepUnused.
const AnnotationUnusedSince = v1alpha1.Group + "/unused-since"

// ReleaseAfter is how long a template nothing uses is kept before it is
// released. What the function sees of MachineSets and composed objects
// comes from Crossplane's informer caches, which lag the API server: a
// MachineSet Cluster API has just created for a revision the pool has
// already left (two quick edits) may not show yet. The wait covers that
// lag many times over; a template kept longer costs nothing.
const ReleaseAfter = 30 * time.Second

// A MachineSet is what retention reads of a live MachineSet of the pool:
// the templates it clones machines from.
type MachineSet struct {
	// Version, Infra and Bootstrap are what its machines are made from:
	// its template's version and templates' names.
	Version, Infra, Bootstrap string
	// Replicas is how many machines it has (or is asked for, if more).
	Replicas int32
	// Created is its creationTimestamp: when its revision began.
	Created time.Time
}

// A Refusal says why a change was not made and how to make it anyway.
type Refusal struct {
	Reason  string
	Message string
}

// Reasons of refusals.
const (
	ReasonBackingReplaced = "BackingReplaced"
	ReasonClusterChanged  = "ClusterChanged"
	ReasonProviderChanged = "ProviderChanged"
	// ReasonImmutableField: the running infrastructure machine pool cannot
	// take a change in place (an EKS node group's instance type, an AKS
	// agent pool's VM size); the rest of the pool is reconciled.
	ReasonImmutableField = "ImmutableField"
)

// keep decides, from what is observed, which composed objects of the
// previous state must still be emitted, and refuses a change that would
// delete the backing of a running pool unless the pool opts in. It returns
// the refusal, if any.
func (pl *Planner) keep(p *Plan, in Input) *Refusal {
	broken := pl.broken
	desired := make(map[string]bool, len(p.Resources))
	for _, r := range p.Resources {
		desired[r.Key] = true
	}
	p.NeedsMachineSets = needsMachineSets(p, in, desired)

	if ref := cellChange(in); ref != nil {
		p.Resources = passThroughAll(in.Observed)
		return ref
	}
	if ref := pl.clusterChange(p, in); ref != nil {
		p.Resources = passThroughAll(in.Observed)
		return ref
	}

	// Backing objects that would go away while machines run on them.
	var gone []string
	for _, k := range sortedKeys(in.Observed) {
		o := in.Observed[k]
		if desired[k] || !isBacking(k) || !o.running() {
			continue
		}
		gone = append(gone, o.Name)
	}
	if len(gone) > 0 && broken&ruleGuard == 0 {
		if !in.AllowReplacement {
			p.Resources = passThroughAll(in.Observed)
			return &Refusal{Reason: ReasonBackingReplaced, Message: fmt.Sprintf(
				"the change would delete %s, which run nodes: nothing was changed. To replace them (the new backing is created first, "+
					"the old one removed once the new one is available), annotate the FleetNodePool %s=true; or scale them to 0 first",
				strings.Join(gone, ", "), AnnotationAllowReplacement)}
		}
		// Opted in: keep the old backing until every new one is available.
		if !p.available(in.Observed) {
			for _, k := range sortedKeys(in.Observed) {
				if !desired[k] && (isBacking(k) || IsTemplate(k) || k == keyHealthCheck) {
					p.Resources = append(p.Resources, passThrough(k, in.Observed[k]))
				}
			}
			return nil
		}
	}

	// Templates of the previous revisions stay while anything uses them.
	if broken&ruleRetention != 0 {
		return nil
	}
	used := usedTemplates(in)
	// A MachinePool still replacing machines may boot old ones from its
	// previous bootstrap config.
	mp, ok := in.Observed[keyMachinePool]
	mpRolling := ok && mp.rolling()
	for _, k := range sortedKeys(in.Observed) {
		o := in.Observed[k]
		if desired[k] || !IsTemplate(k) || o.object() == nil {
			continue
		}
		if in.MachineSets == nil || used[o.Name] || mpRolling && strings.HasPrefix(k, keyBootstrap+"-") {
			// Unknown MachineSets (not fetched yet): never drop what might
			// be in use. A template used again starts its wait anew.
			p.Resources = append(p.Resources, withUnusedSince(passThrough(k, o), time.Time{}))
			continue
		}
		if broken&ruleRelease == 0 {
			p.keepUnused(k, o, in)
		}
	}
	return nil
}

// keepUnused keeps a template of an earlier revision that nothing the
// function sees uses, until it may be released: ReleaseAfter after the
// function first saw it unused (recorded on it, AnnotationUnusedSince), and
// once Cluster API has acted on the latest spec of every MachineDeployment
// and MachinePool of the pool (observedGeneration). Before that, a
// MachineSet cloning from it may exist that the function's view does not
// show yet, or Cluster API may still be about to create one. Unreadable or
// missing records count from now: a stale view only ever keeps longer.
func (p *Plan) keepUnused(key string, o Observed, in Input) {
	now, caughtUp := in.Now, capiCaughtUp(in.Observed)
	since := unusedSince(o)
	if since.IsZero() || since.After(now) {
		since = now
	}
	release := since.Add(releaseAfter(in))
	if caughtUp && !now.Before(release) {
		return
	}
	p.Resources = append(p.Resources, withUnusedSince(passThrough(key, o), since))
	if caughtUp {
		p.Wake = cmpMin(p.Wake, release)
	}
}

// capiCaughtUp reports whether Cluster API has observed the latest spec of
// every MachineDeployment and MachinePool observed. It watches them, so a
// pool waiting for it is planned again when it has. Infrastructure machine
// pools are not asked: CAPA's and CAPZ's report no observedGeneration.
func capiCaughtUp(observed map[string]Observed) bool {
	for k, o := range observed {
		core := strings.HasPrefix(k, keyMachineDeployment) || k == keyMachinePool
		if core && o.ObservedGeneration < o.Generation {
			return false
		}
	}
	return true
}

// unusedSince reads a template's AnnotationUnusedSince, zero if it has
// none or it does not parse.
func unusedSince(o Observed) time.Time {
	v, _, _ := unstructured.NestedString(o.object(), "metadata", "annotations", AnnotationUnusedSince)
	return parseTime(v)
}

// withUnusedSince sets a kept template's AnnotationUnusedSince to since,
// or removes it for a zero since. A template in use without the record,
// the common case, is returned as it is.
func withUnusedSince(r Resource, since time.Time) Resource {
	u := r.Object.(*unstructured.Unstructured)
	if _, ok, _ := unstructured.NestedFieldNoCopy(u.Object, "metadata", "annotations", AnnotationUnusedSince); !ok && since.IsZero() {
		return r
	}
	meta, _ := u.Object["metadata"].(map[string]any)
	u.Object["metadata"] = maps.Clone(meta) // Shared with what was observed.
	a := u.GetAnnotations()
	delete(a, AnnotationUnusedSince)
	if !since.IsZero() {
		if a == nil {
			a = map[string]string{}
		}
		a[AnnotationUnusedSince] = since.UTC().Format(time.RFC3339)
	}
	if len(a) == 0 {
		a = nil
	}
	u.SetAnnotations(a)
	return r
}

// needsMachineSets reports whether planning reads the pool's MachineSets
// (Plan.NeedsMachineSets), from desired, the keys the plan wants before
// keep adds what retention keeps: a disruptive change is to start (the
// gates read the Cluster's, and whether the pool already replaces
// machines), a template the plan no longer wants is observed (released only
// once no MachineSet uses it), a MachineDeployment is rolling, or the
// pool's marker has not settled at the target (a rollout Cluster API has
// just begun shows only on its MachineSets). None of it depends on the
// MachineSets themselves, so asking for them or not never flips the
// answer: Crossplane's requirement loop settles.
func needsMachineSets(p *Plan, in Input, desired map[string]bool) bool {
	if p.NeedsSiblings || p.datesRevisions {
		return true
	}
	for k, o := range in.Observed {
		if IsTemplate(k) && !desired[k] || strings.HasPrefix(k, keyMachineDeployment) && o.rolling() {
			return true
		}
	}
	m := in.Marker
	return m != nil && (m.State != MarkerSettled || m.Target != in.Target)
}

// clusterChange refuses moving running objects to another cluster or cloud:
// Cluster API forbids the one, and neither can keep the nodes.
func (pl *Planner) clusterChange(p *Plan, in Input) *Refusal {
	for _, r := range p.Resources {
		o, ok := in.Observed[r.Key]
		if !ok || !isBacking(r.Key) {
			continue
		}
		if o.ClusterName != "" && o.ClusterName != in.Spec.ClusterName {
			return &Refusal{Reason: ReasonClusterChanged, Message: fmt.Sprintf(
				"%s runs in Cluster %s, not %s: a pool cannot move to another cluster; nothing was changed. "+
					"Create a new FleetNodePool for %s and delete this one", o.Name, o.ClusterName, in.Spec.ClusterName, in.Spec.ClusterName)}
		}
	}
	// Running machines of another cloud than the plan's.
	for _, k := range sortedKeys(in.Observed) {
		o := in.Observed[k]
		if !isBacking(k) || !o.running() || o.InfraKind == "" {
			continue
		}
		if was := pl.composed[o.InfraKind]; was != "" && was != p.Status.Provider {
			return &Refusal{Reason: ReasonProviderChanged, Message: fmt.Sprintf(
				"%s runs %s machines (%s), and the pool is now on %s: nodes cannot move between clouds; nothing was changed. "+
					"Create a new FleetNodePool on the new Cluster and delete this one", o.Name, was, o.InfraKind, p.Status.Provider)}
		}
	}
	return nil
}

// available reports whether every MachineDeployment or MachinePool of the
// plan exists and is ready.
func (p *Plan) available(observed map[string]Observed) bool {
	for _, r := range p.Resources {
		if IsPool(r.Object) && !r.Ready {
			return false
		}
	}
	return len(observed) > 0
}

// usedTemplates are the names of the templates the pool's live MachineSets,
// MachineDeployments and MachinePool reference.
func usedTemplates(in Input) map[string]bool {
	used := map[string]bool{}
	for _, mss := range in.MachineSets {
		for _, ms := range mss {
			used[ms.Infra], used[ms.Bootstrap] = true, true
		}
	}
	for _, o := range in.Observed {
		for _, n := range o.References {
			used[n] = true
		}
	}
	delete(used, "")
	return used
}

func isBacking(key string) bool {
	return strings.HasPrefix(key, keyMachineDeployment) || key == keyMachinePool || key == keyInfraPool
}

// IsTemplate reports whether key names one of a pool's templates: an
// infrastructure machine template or a bootstrap config template.
func IsTemplate(key string) bool {
	return strings.HasPrefix(key, keyInfra+"-") || strings.HasPrefix(key, keyBootstrap+"-")
}

// running reports whether machines run on an observed backing object.
func (o Observed) running() bool {
	return o.Replicas != nil && *o.Replicas > 0 || o.SpecReplicas != nil && *o.SpecReplicas > 0
}

func passThroughAll(observed map[string]Observed) []Resource {
	var out []Resource
	for _, k := range sortedKeys(observed) {
		if observed[k].object() != nil {
			out = append(out, passThrough(k, observed[k]))
		}
	}
	return out
}

// passThrough emits an observed object as it is: its spec and labels, so
// Crossplane keeps it (and reverts drift) without changing it. The size of
// a pool an autoscaler owns is left out, so the function never takes it.
func passThrough(key string, o Observed) Resource {
	u := &unstructured.Unstructured{Object: maps.Clone(o.object())}
	if spec, ok := u.Object["spec"].(map[string]any); ok && o.autoscaled() {
		spec = maps.Clone(spec)
		delete(spec, "replicas")
		u.Object["spec"] = spec
	}
	return Resource{Key: key, Object: u, Ready: true}
}

func (o Observed) autoscaled() bool {
	a, _, _ := unstructured.NestedStringMap(o.object(), "metadata", "annotations")
	return slices.ContainsFunc([]string{clusterv1.AutoscalerMinSizeAnnotation, clusterv1.ReplicasManagedByAnnotation},
		func(k string) bool { _, ok := a[k]; return ok })
}
