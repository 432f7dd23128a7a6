package compose

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
	"k8s.io/utils/ptr"

	"github.com/crossplane/crossplane-runtime/v2/pkg/xcrd"
	"github.com/crossplane/function-sdk-go/errors"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/apis/input/v1beta1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/capi"
	"github.com/fleetnodepool/function-fleetnodepool/fn/plan"
)

// A pool in a cell (spec.cell) lives in another Cluster API management
// cluster than the one Crossplane runs in. Every object it composes is
// wrapped in a provider-kubernetes Object, which applies it there and
// reports it back (status.atProvider.manifest); the function reads the
// pool's observed objects from those reports, and its Cluster and control
// plane from observe-only Objects it composes for them. Planning is the
// same as for a local pool: only how objects are sent and read differs.
//
// The Object's Go API (provider-kubernetes v1.2.1,
// apis/namespaced/object/v1alpha1) is written against crossplane-runtime
// v2.0's apis/common, which v2.4 no longer has: it does not compile in this
// module, so the few fields used are named here, and the cells e2e tier
// has the real CRD validate them.
const (
	objectAPIVersion = "kubernetes.m.crossplane.io/v1alpha1"
	objectKind       = "Object"

	// LabelCell names the cell of an Object the function composes.
	LabelCell = v1alpha1.Group + "/cell"

	// keyRemoteCluster and keyRemoteControlPlane are the observe-only
	// Objects of a pool in a cell that read its Cluster and control plane.
	keyRemoteCluster      = "remote-cluster"
	keyRemoteControlPlane = "remote-controlplane"

	// requirementObjects are the Objects of the Cluster's pools in the
	// cell: what the rollout gates read of its other pools.
	requirementObjects = "objects"

	// celAvailable is when the Object of a MachineDeployment or
	// MachinePool is ready: Cluster API has acted on its spec and it is
	// Available. v1beta2 pools have no Ready condition, which the
	// DeriveFromObject policy waits for.
	celAvailable = "has(object.status) && has(object.status.observedGeneration) && object.status.observedGeneration == object.metadata.generation" +
		" && has(object.status.conditions) && object.status.conditions.exists(c, c.type == 'Available' && c.status == 'True')"
)

// Error strings.
const (
	errFmtCellUnreadable = "cannot read the %s %s/%s from cell %s (%s): nothing is composed, changed or deleted until the cell answers; " +
		"check that its API server is up and that provider-kubernetes reaches it (%s %s)"
	errFmtCellConfigMoved = "cannot move the pool's Objects from provider config %s %s to %s %s (input.cells.%s.providerConfigRef): " +
		"another provider config may reach another cluster, where the pool would be created anew; nothing was changed. " +
		"Revert the policy; or, if both reach the same cluster, set spec.providerConfigRef of each of the pool's Objects to the new one (kubectl patch)"
)

// A cellView is how a pool in a cell reads its state and writes its
// objects there.
type cellView struct {
	name      string
	ref       v1beta1.ProviderConfigReference
	namespace string
	pool      string
	cluster   string
	// watched: Objects whose state the pool reads ask provider-kubernetes
	// to watch it (v1beta1.Cell's Watch).
	watched bool
	// observers are the observe-only Objects the pool composes, by key.
	observers map[string]*structpb.Struct
	// waiting is true when an observer has not been applied yet: the
	// answer is then what exists, with the observers added.
	waiting bool
}

// remote reads a pool's Cluster and control plane from the cell's reports
// into in. The view is nil for a pool without a cell.
func (f *Function) remote(req *fnv1.RunFunctionRequest, in *plan.Input) (*cellView, error) {
	if in.Spec.Cell == "" || in.Spec.ClusterName == "" {
		return nil, nil
	}
	if err := plan.CheckCell(*in); err != nil {
		return nil, withReason(FatalInvalidPool, err)
	}
	c := in.Policy.Cells[in.Spec.Cell]
	v := &cellView{name: in.Spec.Cell, ref: c.ProviderConfigRef, watched: c.Watch, namespace: in.Namespace, pool: in.Name, cluster: in.Spec.ClusterName, observers: map[string]*structpb.Struct{}}
	v.ref.Kind = cmp.Or(v.ref.Kind, v1beta1.ClusterProviderConfigKind)
	observed := req.GetObserved().GetResources()
	if err := v.sameConfig(observed); err != nil {
		return nil, err
	}
	m, err := v.read(observed, keyRemoteCluster, clusterv1.GroupVersion.String(), "Cluster", in.Spec.ClusterName)
	if err != nil || m == nil {
		return v, err
	}
	in.Cluster = clusterOf(m)
	cl := in.Cluster
	k, ok := f.planner.ControlPlaneKind(cl.ControlPlaneKind)
	if cl.ControlPlaneName == "" || !ok {
		return v, nil
	}
	m, err = v.read(observed, keyRemoteControlPlane, k.APIVersion, cl.ControlPlaneKind, cl.ControlPlaneName)
	if err != nil || m == nil {
		return v, err
	}
	in.ControlPlane = &plan.ControlPlane{Kind: cl.ControlPlaneKind, Name: cl.ControlPlaneName, Version: field(m, "status", "version").GetStringValue()}
	return v, nil
}

// sameConfig refuses a pool whose Objects of the cell reach it through
// another provider config than the policy now names: the Objects would
// apply everything again through the new one, which may reach another
// cluster, while what runs stays where it is, unmanaged.
func (v *cellView) sameConfig(observed map[string]*fnv1.Resource) error {
	for _, k := range slices.Sorted(maps.Keys(observed)) {
		f := observed[k].GetResource().GetFields()
		if !isObject(f) || field(f, "metadata", "labels").GetStructValue().GetFields()[LabelCell].GetStringValue() != v.name {
			continue
		}
		kind := cmp.Or(field(f, "spec", "providerConfigRef", "kind").GetStringValue(), v1beta1.ClusterProviderConfigKind)
		name := field(f, "spec", "providerConfigRef", "name").GetStringValue()
		if kind != v.ref.Kind || name != v.ref.Name {
			return withReason(FatalInvalidPolicy, errors.Errorf(errFmtCellConfigMoved, kind, name, v.ref.Kind, v.ref.Name, v.name))
		}
	}
	return nil
}

// read composes the observe-only Object of a remote object under key, and
// reads the object from what it observed: nil while it is not applied yet
// (waiting), and an error when the cell cannot be read (its Object is not
// Synced, or has not reported the object).
func (v *cellView) read(observed map[string]*fnv1.Resource, key, apiVersion, kind, name string) (map[string]*structpb.Value, error) {
	manifest := map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"name": name, "namespace": v.namespace}}
	obj := v.object(v.pool+"-"+strings.ToLower(kind), manifest, map[string]any{capi.PoolLabel: v.pool, clusterv1.ClusterNameLabel: v.cluster})
	spec := obj["spec"].(map[string]any)
	spec["managementPolicies"] = []any{"Observe"}
	v.watch(spec)
	s, err := structpb.NewStruct(obj)
	if err != nil {
		return nil, withReason(FatalInternalError, err)
	}
	v.observers[key] = s
	r, ok := observed[key]
	if !ok {
		v.waiting = true
		return nil, nil
	}
	f := r.GetResource().GetFields()
	status, message := syncedOf(f)
	m := field(f, "status", "atProvider", "manifest").GetStructValue().GetFields()
	if m != nil && (m["kind"].GetStringValue() != kind || field(m, "metadata", "name").GetStringValue() != name) {
		// It reports what it was asked for before (the control plane the
		// Cluster named): read it again.
		v.waiting = true
		return nil, nil
	}
	if status == "True" && m != nil {
		return m, nil
	}
	if message == "" {
		message = "it has not reported the object yet"
	}
	return nil, withReason(FatalCellUnreachable, errors.Errorf(errFmtCellUnreadable, kind, v.namespace, name, v.name, message,
		objectKind, v.namespace+"/"+field(f, "metadata", "name").GetStringValue()))
}

// syncedOf is an Object's Synced condition's status and message.
func syncedOf(f map[string]*structpb.Value) (status, message string) {
	for _, c := range field(f, "status", "conditions").GetListValue().GetValues() {
		cf := c.GetStructValue().GetFields()
		if cf["type"].GetStringValue() == "Synced" {
			status = cf["status"].GetStringValue()
			message = cmp.Or(cf["message"].GetStringValue(), cf["reason"].GetStringValue())
		}
	}
	return status, message
}

// object is a provider-kubernetes Object of the cell applying manifest.
func (v *cellView) object(name string, manifest map[string]any, labels map[string]any) map[string]any {
	labels[LabelCell] = v.name
	return map[string]any{
		"apiVersion": objectAPIVersion,
		"kind":       objectKind,
		"metadata":   map[string]any{"name": name, "namespace": v.namespace, "labels": labels},
		"spec": map[string]any{
			"forProvider":       map[string]any{"manifest": manifest},
			"providerConfigRef": map[string]any{"kind": v.ref.Kind, "name": v.ref.Name},
		},
	}
}

// watch has an Object's remote object watched, where the cell asks for it.
func (v *cellView) watch(spec map[string]any) {
	if v.watched {
		spec["watch"] = true
	}
}

// wrap puts every planned object of the pool but its rollout marker (which
// the fleet reads where Crossplane runs) in an Object of its cell, and adds
// the observers.
func (v *cellView) wrap(p *planned) error {
	out := make(map[string]*fnv1.Resource, len(p.resources)+len(v.observers))
	for k, r := range p.resources {
		if k == keyMarker {
			out[k] = r
			continue
		}
		w, err := v.wrapped(r.GetResource())
		if err != nil {
			return errors.Wrapf(err, errFmtEncode, k)
		}
		out[k] = &fnv1.Resource{Resource: w, Ready: r.GetReady()}
	}
	for k, s := range v.observers {
		out[k] = &fnv1.Resource{Resource: s, Ready: fnv1.Ready_READY_TRUE}
	}
	p.resources = out
	return nil
}

// wrapped is an object's Object: named after its kind and name, with its
// labels and the cell's, its manifest in the pool's namespace. A
// MachineDeployment's or MachinePool's is ready when it is Available.
func (v *cellView) wrapped(s *structpb.Struct) (*structpb.Struct, error) {
	f := s.GetFields()
	kind := f["kind"].GetStringValue()
	md := f["metadata"].GetStructValue()
	name := md.GetFields()["name"].GetStringValue()
	// The manifest shares its values with the planned object, which a
	// cached plan keeps: copy what changes.
	meta := &structpb.Struct{Fields: maps.Clone(md.GetFields())}
	meta.Fields["namespace"] = structpb.NewStringValue(v.namespace)
	manifest := &structpb.Struct{Fields: maps.Clone(f)}
	manifest.Fields["metadata"] = structpb.NewStructValue(meta)

	labels := map[string]any{clusterv1.ClusterNameLabel: v.cluster}
	for k, l := range md.GetFields()["labels"].GetStructValue().GetFields() {
		labels[k] = l.GetStringValue()
	}
	obj := v.object(strings.ToLower(kind)+"-"+name, nil, labels)
	if kind == "MachineDeployment" || kind == "MachinePool" {
		spec := obj["spec"].(map[string]any)
		spec["readiness"] = map[string]any{"policy": "DeriveFromCelQuery", "celQuery": celAvailable}
		v.watch(spec)
	}
	w, err := structpb.NewStruct(obj)
	if err != nil {
		return nil, err
	}
	field(w.GetFields(), "spec", "forProvider").GetStructValue().Fields["manifest"] = structpb.NewStructValue(manifest)
	return w, nil
}

// holding is the answer of a pool in a cell whose observers are not all
// applied yet: what exists, as it is, and the observers.
func (v *cellView) holding(req *fnv1.RunFunctionRequest) *planned {
	p := &planned{resources: map[string]*fnv1.Resource{}}
	if err := asObserved(req, p.resources); err != nil {
		return &planned{fatal: withReason(FatalInternalError, err)}
	}
	for k, s := range v.observers {
		p.resources[k] = &fnv1.Resource{Resource: s, Ready: fnv1.Ready_READY_TRUE}
	}
	p.conditions = []*fnv1.Condition{{
		Type: TypePoolAvailable, Status: fnv1.Status_STATUS_CONDITION_FALSE, Reason: ReasonReadingCell,
		Message: ptr.To(fmt.Sprintf("reading the Cluster %s/%s from cell %s", v.namespace, v.cluster, v.name)),
		Target:  fnv1.Target_TARGET_COMPOSITE_AND_CLAIM.Enum(),
	}}
	// The pool's status and state stay as the last plan left them.
	p.status = &structpb.Struct{Fields: map[string]*structpb.Value{}}
	for k, val := range req.GetObserved().GetComposite().GetResource().GetFields()["status"].GetStructValue().GetFields() {
		if k != "conditions" {
			p.status.Fields[k] = val
		}
	}
	p.state = observedState(req)
	return p
}

// unwrap reads an observed Object of a pool in a cell as the object it
// applies: its state as the cell reported it (status.atProvider.manifest),
// or what was sent while it has reported nothing. Keeping it sends again
// what was sent.
// The spec of an infrastructure machine pool (withSpec) is the running
// one's.
func unwrap(f map[string]*structpb.Value, withSpec bool) plan.Observed {
	sent := field(f, "spec", "forProvider", "manifest").GetStructValue().GetFields()
	reported := field(f, "status", "atProvider", "manifest").GetStructValue().GetFields()
	seen := reported
	if seen == nil {
		seen = sent
	}
	o := backing(seen)
	o.Load = func() map[string]any { return keepable(sent) }
	if reported != nil {
		status, _ := syncedOf(f)
		pending(&o, backing(sent), status != "False")
	}
	if withSpec {
		o.Spec = seen["spec"].GetStructValue().AsMap()
	}
	o.Cell = field(f, "metadata", "labels").GetStructValue().GetFields()[LabelCell].GetStringValue()
	return o
}

// pending makes o, an object as the cell reports it, say what was sent
// since, as a local object says what was applied: the function's own
// annotations (the rollout queue's, a rotation's, the revision record) as
// sent, and, for a MachineDeployment or MachinePool sent other machines
// (version, templates, a later spec.rollout.after) than the cell reports,
// a spec Cluster API has not acted on yet. Locally Crossplane's apply shows
// the new spec and bumps the generation at once; through a cell it shows
// only once provider-kubernetes has applied it and read it back. Until
// then the rollout gates must see the pool as starting to roll (the
// Cluster's other pools wait their turn), and, while the cell takes what is
// sent (applies: the Object is not Synced False), the plan reads the
// machines sent: a hold must not take a version or a rotation back. A
// spec.rollout.after set in the cell (a rollout restart) and later than
// the one sent is the cell's, as it is a local pool's.
func pending(o *plan.Observed, sent plan.Observed, applies bool) {
	o.QueuedSince, o.HoldsSequence, o.Rotation, o.Revision = sent.QueuedSince, sent.HoldsSequence, sent.Rotation, sent.Revision
	later := sent.RolloutAfter.After(o.RolloutAfter)
	if sent.Version == o.Version && slices.Equal(sent.References, o.References) && !later {
		return
	}
	o.Generation = max(o.Generation, o.ObservedGeneration) + 1
	if !applies {
		return
	}
	o.Version, o.References, o.Bootstrap = sent.Version, sent.References, sent.Bootstrap
	if later {
		o.RolloutAfter = sent.RolloutAfter
	}
}

// isObject reports whether an observed resource is a provider-kubernetes
// Object.
func isObject(f map[string]*structpb.Value) bool {
	return f["kind"].GetStringValue() == objectKind && f["apiVersion"].GetStringValue() == objectAPIVersion
}

// withCellSiblings asks for the Objects of the Cluster's pools in the cell:
// what the rollout gates read of its other pools.
func withCellSiblings(rs *fnv1.Requirements, namespace, cluster, cell string) {
	rs.Resources[requirementObjects] = &fnv1.ResourceSelector{
		ApiVersion: objectAPIVersion,
		Kind:       objectKind,
		Match:      &fnv1.ResourceSelector_MatchLabels{MatchLabels: &fnv1.MatchLabels{Labels: map[string]string{clusterv1.ClusterNameLabel: cluster, LabelCell: cell}}},
		Namespace:  &namespace,
	}
}

// cellSiblings reads the Cluster's other pools in the cell from their
// Objects' reports: nil while Crossplane has not fetched them. What their
// MachineSets are is not known (see plan.remoteMachineSets): their
// MachineDeployments' status says whether they roll, and the templates they
// keep (by their Objects' composition resource names) whether they have
// just changed templates.
func cellSiblings(req *fnv1.RunFunctionRequest, self string) []plan.Sibling {
	rs, ok := req.GetRequiredResources()[requirementObjects]
	if !ok {
		return nil
	}
	others := map[string]*plan.Sibling{}
	templates := map[string]map[string]time.Time{}
	for _, item := range rs.GetItems() {
		f := item.GetResource().GetFields()
		m := field(f, "spec", "forProvider", "manifest").GetStructValue().GetFields()
		pool := field(m, "metadata", "labels").GetStructValue().GetFields()[capi.PoolLabel].GetStringValue()
		if pool == "" || pool == self {
			continue
		}
		key := field(f, "metadata", "annotations").GetStructValue().GetFields()[xcrd.AnnotationKeyCompositionResourceName].GetStringValue()
		if plan.IsTemplate(key) {
			if templates[pool] == nil {
				templates[pool] = map[string]time.Time{}
			}
			meta := field(m, "metadata").GetStructValue().GetFields()
			templates[pool][meta["name"].GetStringValue()] = timeField(field(meta, "annotations", plan.AnnotationUnusedSince))
			continue
		}
		if kind := m["kind"].GetStringValue(); kind != "MachineDeployment" && kind != "MachinePool" {
			continue
		}
		s := others[pool]
		if s == nil {
			s = &plan.Sibling{Pool: pool, MachineSets: map[string][]plan.MachineSet{}}
			others[pool] = s
		}
		s.Backings = append(s.Backings, unwrap(f, false))
	}
	out := make([]plan.Sibling, 0, len(others))
	for _, k := range slices.Sorted(maps.Keys(others)) {
		s := others[k]
		s.Templates = templates[k]
		out = append(out, *s)
	}
	return out
}

// asObserved sets every observed resource in rs as it is (its spec, labels
// and annotations), keeping the readiness rs gives it: the answer of a pool
// whose move between cells, or out of one, is refused, and of one waiting
// for its first report from its cell.
func asObserved(req *fnv1.RunFunctionRequest, rs map[string]*fnv1.Resource) error {
	for k, r := range req.GetObserved().GetResources() {
		s, err := structpb.NewStruct(keepable(r.GetResource().GetFields()))
		if err != nil {
			return errors.Wrapf(err, errFmtEncode, k)
		}
		rs[k] = &fnv1.Resource{Resource: s, Ready: rs[k].GetReady()}
	}
	return nil
}
