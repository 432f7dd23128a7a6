package fleetsim

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/crossplane/function-sdk-go/errors"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
)

// maxRequirementsIterations is Crossplane's bound on the calls that resolve
// a function's requirements: up to one more call than this.
const maxRequirementsIterations = 5

// capabilities are what Crossplane v2.4 advertises in every request.
func capabilities() []fnv1.Capability {
	return []fnv1.Capability{
		fnv1.Capability_CAPABILITY_CAPABILITIES, fnv1.Capability_CAPABILITY_REQUIRED_RESOURCES,
		fnv1.Capability_CAPABILITY_CREDENTIALS, fnv1.Capability_CAPABILITY_CONDITIONS,
		fnv1.Capability_CAPABILITY_REQUIRED_SCHEMAS,
	}
}

// A reconcile is one Crossplane reconcile of a pool: the request, the
// requirements it satisfies, and the latest response.
type reconcile struct {
	pool      *pool
	req       *fnv1.RunFunctionRequest
	rsp       *fnv1.RunFunctionResponse
	satisfied *fnv1.Requirements
	calls     int
	err       error
}

// newReconcile builds the first request of a pool's reconcile from what
// exists, with the requirements the function returned last time satisfied
// (Crossplane v2.4's requirements recorder).
func (w *world) newReconcile(p *pool) *reconcile {
	observed := make(map[string]*fnv1.Resource, len(p.composed))
	for k, o := range p.composed {
		observed[k] = &fnv1.Resource{Resource: o.object(p)}
	}
	r := &reconcile{pool: p, req: &fnv1.RunFunctionRequest{
		Meta:     &fnv1.RequestMeta{Capabilities: capabilities()},
		Observed: &fnv1.State{Composite: &fnv1.Resource{Resource: p.xr()}, Resources: observed},
		Desired:  &fnv1.State{},
		Input:    w.policy,
	}}
	if p.requirements != nil {
		w.satisfy(r.req, p.requirements)
		r.satisfied = p.requirements
	}
	return r
}

// settle decides after a call whether the reconcile is done: on a Fatal
// result, or once the function returns the requirements its request
// satisfied. Otherwise it fetches the new requirements for another call.
func (w *world) settle(r *reconcile) (done bool) {
	r.calls++
	if fatal(r.rsp) {
		return true
	}
	if proto.Equal(r.rsp.GetRequirements(), r.satisfied) {
		r.pool.requirements = r.rsp.GetRequirements()
		return true
	}
	if r.calls > maxRequirementsIterations {
		r.err = errors.Errorf("requirements didn't stabilize after the maximum number of iterations (%d)", maxRequirementsIterations)
		return true
	}
	r.satisfied = r.rsp.GetRequirements()
	w.satisfy(r.req, r.satisfied)
	r.req.Context = r.rsp.GetContext()
	return false
}

// applies reports whether Crossplane applies the reconcile's final
// response: not when its requirements did not settle (r.err, reported as a
// violation) nor on a Fatal result.
func (r *reconcile) applies() bool { return r.err == nil && !fatal(r.rsp) }

func fatal(rsp *fnv1.RunFunctionResponse) bool {
	for _, r := range rsp.GetResults() {
		if r.GetSeverity() == fnv1.Severity_SEVERITY_FATAL {
			return true
		}
	}
	return false
}

// satisfy fetches what the requirements select into the request, replacing
// what an earlier iteration fetched.
func (w *world) satisfy(req *fnv1.RunFunctionRequest, rq *fnv1.Requirements) {
	req.RequiredResources = make(map[string]*fnv1.Resources, len(rq.GetResources()))
	for name, sel := range rq.GetResources() {
		req.RequiredResources[name] = w.fetch(sel)
	}
}

// fetch resolves a selector as Crossplane does: by name, nil when the
// object does not exist; by labels, a list sorted by name.
func (w *world) fetch(sel *fnv1.ResourceSelector) *fnv1.Resources {
	if sel.GetKind() == kindConfigMap && sel.GetApiVersion() == apiVersionV1 {
		return w.fetchConfigMaps(sel)
	}
	if sel.GetKind() == "CustomResourceDefinition" {
		return w.crds[sel.GetMatchName()]
	}
	group, _, _ := strings.Cut(sel.GetApiVersion(), "/")
	c := w.byNS[sel.GetNamespace()]
	switch m := sel.GetMatch().(type) {
	case *fnv1.ResourceSelector_MatchName:
		var o *structpb.Struct
		switch {
		case c == nil || c.name != m.MatchName:
		case sel.GetKind() == kindCluster && group == groupCluster:
			o = c.clusterObject()
		case sel.GetKind() == kindKCP && group == groupControlPlane:
			o = c.kcpObject()
		}
		if o == nil {
			return nil
		}
		return &fnv1.Resources{Items: []*fnv1.Resource{{Resource: o}}}
	case *fnv1.ResourceSelector_MatchLabels:
		out := &fnv1.Resources{Items: []*fnv1.Resource{}}
		switch {
		case group != groupCluster:
		case sel.GetKind() == kindMachineSet:
			sets := w.sets[sel.GetNamespace()]
			for _, n := range sortedKeys(sets) {
				if matches(sets[n].labels, m.MatchLabels.GetLabels()) {
					out.Items = append(out.Items, &fnv1.Resource{Resource: sets[n].object()})
				}
			}
		case sel.GetKind() == kindMachineDeployment && c != nil:
			out.Items = c.machineDeployments(m.MatchLabels.GetLabels())
		}
		// No other kind exists in the model: MachinePools, say.
		return out
	}
	return nil
}

// machineDeployments are the MachineDeployments of the cluster's pools
// whose labels match the selector, sorted by name.
func (c *cluster) machineDeployments(selector map[string]string) []*fnv1.Resource {
	var mds []*composed
	for _, p := range c.pools {
		for _, o := range p.composed {
			if o.id.kind == kindMachineDeployment && matchesValue(o.labels, selector) {
				mds = append(mds, o)
			}
		}
	}
	slices.SortFunc(mds, func(a, b *composed) int { return strings.Compare(a.id.name, b.id.name) })
	out := make([]*fnv1.Resource, len(mds))
	for i, o := range mds {
		out[i] = &fnv1.Resource{Resource: o.object(o.owner)}
	}
	return out
}

func matches(labels, selector map[string]string) bool {
	for k, v := range selector {
		if l, ok := labels[k]; !ok || l != v {
			return false
		}
	}
	return true
}

// matchesValue is matches on labels encoded as a Struct.
func matchesValue(labels *structpb.Value, selector map[string]string) bool {
	f := labels.GetStructValue().GetFields()
	for k, v := range selector {
		if l, ok := f[k]; !ok || l.GetStringValue() != v {
			return false
		}
	}
	return true
}

// apply does what Crossplane does with a pool's final response: nothing
// after a Fatal result or an error; otherwise it updates the XR's status,
// garbage-collects the composed resources the response no longer desires,
// then applies the desired ones.
func (w *world) apply(r *reconcile) error {
	if !r.applies() {
		return nil
	}
	p := r.pool
	d := r.rsp.GetDesired()
	if st := d.GetComposite().GetResource().GetFields()["status"]; !equalValue(st, p.status) {
		p.status, p.rv, p.body = st, w.next(), nil
		w.changed(p.namespace)
	}
	desired := d.GetResources()
	for _, k := range sortedKeys(p.composed) {
		if _, ok := desired[k]; !ok {
			w.remove(p, k)
		}
	}
	for _, k := range sortedKeys(desired) {
		if err := w.applyOne(p, k, desired[k]); err != nil {
			return errors.Wrapf(err, "cannot apply composed resource %q of %s", k, p)
		}
	}
	return nil
}

// applyOne server-side applies one desired resource. The fields the
// function sets overwrite the live ones; the replicas of a MachineDeployment
// it leaves out keep their live value, defaulted and clamped into the
// autoscaler's bounds as Cluster API's webhook does. A key that exists
// keeps the name it was created with.
func (w *world) applyOne(p *pool, key string, dr *fnv1.Resource) error {
	o := p.composed[key]
	if o != nil && o.applied == dr {
		return nil // The same answer as last time: nothing to change.
	}
	d := dr.GetResource()
	md := at(d, "metadata").GetStructValue()
	if o == nil {
		ns := stringAt(md, "namespace")
		if ns == "" {
			ns = p.namespace
		}
		id := objKey{ns, stringAt(d, "kind"), stringAt(md, "name")}
		if id.name == "" || id.kind == "" {
			return errors.Errorf("the desired resource has no kind or name: %v", d)
		}
		if w.objects[id] != nil {
			return errors.Errorf("%s exists and is not controlled by %s", id, p)
		}
		o = &composed{id: id, apiVersion: stringAt(d, "apiVersion"), uid: w.uid(), owner: p}
		p.composed[key], w.objects[id] = o, o
	}
	labels := at(md, "labels")
	annots := obj(with(at(md, "annotations").GetStructValue(), annotationCompositeRN, str(key)).GetFields())
	var changed bool
	if o.id.kind == kindConfigMap {
		// A ConfigMap has data, no spec nor generation.
		data := at(d, "data")
		if changed = o.data == nil || !equalValue(o.data, data); changed {
			o.data = data
		}
	} else {
		spec := at(d, "spec").GetStructValue()
		if o.id.kind == kindMachineDeployment {
			spec = o.replicas(spec, stringsOf(annots))
		}
		if changed = o.spec == nil || !equalStruct(o.spec, spec); changed {
			o.spec = spec
			o.generation++
		}
	}
	if changed || !equalValue(o.labels, labels) || !equalValue(o.annots, annots) {
		o.labels, o.annots = labels, annots
		w.touch(o)
		w.stats.applies++
		if o.id.kind == kindConfigMap {
			w.indexMarker(o, labels)
		}
	}
	o.applied = dr
	if o.id.kind == kindMachineDeployment && changed {
		old := o.md
		o.md = parseMD(o.spec, stringsOf(annots))
		if o.status == nil {
			o.status = &mdStatus{}
		}
		if old != nil && (old.template != o.md.template || !old.rolloutAfter.Equal(o.md.rolloutAfter)) && w.running(o) > 0 {
			w.started(p) // As the invariants count starts: of a running MachineDeployment.
			if !old.rolloutAfter.Equal(o.md.rolloutAfter) {
				w.stats.rotations.askedBy(p, w.step)
			}
		}
	}
	return nil
}

// replicas is a MachineDeployment's spec after an apply that may leave
// spec.replicas out (Cluster API's calculateMachineDeploymentReplicas).
func (o *composed) replicas(spec *structpb.Struct, annots map[string]string) *structpb.Struct {
	if _, ok := int32At(spec, "replicas"); ok {
		return spec
	}
	n := int32(1)
	lo, okLo := atoi32(annots[annotationMinSize])
	hi, okHi := atoi32(annots[annotationMaxSize])
	if okLo && okHi {
		n = lo
		if o.md != nil {
			n = min(max(o.md.replicas, lo), hi)
		}
	}
	return with(spec, "replicas", num(n))
}

func atoi32(s string) (int32, bool) {
	n, err := strconv.ParseInt(s, 10, 32)
	return int32(n), err == nil
}

// parseMD reads what the Cluster API model needs of a MachineDeployment.
func parseMD(spec *structpb.Struct, annots map[string]string) *mdSpec {
	ts := at(spec, "template", "spec").GetStructValue()
	refOf := func(v *structpb.Value) ref {
		s := v.GetStructValue()
		return ref{stringAt(s, "apiGroup"), stringAt(s, "kind"), stringAt(s, "name")}
	}
	n, _ := int32At(spec, "replicas")
	s := &mdSpec{
		replicas: n,
		template: machineTemplate{
			version:       stringAt(ts, "version"),
			failureDomain: stringAt(ts, "failureDomain"),
			infra:         refOf(at(ts, "infrastructureRef")),
			bootstrap:     refOf(at(ts, "bootstrap", "configRef")),
		},
		labels:   stringsOf(at(spec, "template", "metadata", "labels")),
		maxSurge: at(spec, "rollout", "strategy", "rollingUpdate", "maxSurge"),
		maxUnv:   at(spec, "rollout", "strategy", "rollingUpdate", "maxUnavailable"),
		minSize:  -1, maxSize: -1,
	}
	if t, err := time.Parse(time.RFC3339, stringAt(spec, "rollout", "after")); err == nil {
		s.rolloutAfter = t
	}
	if lo, ok := atoi32(annots[annotationMinSize]); ok {
		s.minSize = lo
	}
	if hi, ok := atoi32(annots[annotationMaxSize]); ok {
		s.maxSize = hi
	}
	return s
}

// remove deletes a composed object. Deleting a MachineDeployment deletes its
// MachineSets and machines (owner references).
func (w *world) remove(p *pool, key string) {
	o := p.composed[key]
	delete(p.composed, key)
	delete(w.objects, o.id)
	w.changed(o.id.namespace)
	w.stats.deletes++
	if o.id.kind == kindConfigMap {
		w.indexMarker(o, nil)
	}
	if o.id.kind != kindMachineDeployment {
		return
	}
	for _, ms := range w.machineSets(o.id.namespace, o.id.name) {
		w.stats.machinesDeleted += int(ms.replicas)
		delete(w.sets[o.id.namespace], ms.id.name)
	}
}
