package compose

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/utils/ptr"

	"github.com/crossplane/function-sdk-go/errors"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/request"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/apis/input/v1beta1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/capi"
	"github.com/fleetnodepool/function-fleetnodepool/fn/plan"
)

// Error strings.
const (
	errNoXR         = "cannot read the observed FleetNodePool: the request has no observed composite resource"
	errNoInput      = "cannot read the platform policy: the Composition's pipeline step has no input; give it a " + v1beta1.Group + "/" + v1beta1.Version + " " + v1beta1.PolicyKind
	errFmtInputKind = "cannot read the platform policy: the step's input is a %s, want apiVersion %s/%s, kind %s"
	errNoNamespace  = "cannot find the FleetNodePool's namespace: a cluster-scoped XFleetNodePool must be created through its namespaced FleetNodePool claim"

	errTarget              = "cannot compute the platform policy's target"
	errNoRequiredResources = "cannot read the pool's Cluster: this Crossplane does not resolve required resources; FleetNodePools need Crossplane v2.2 or later"
)

// Names of the required resources.
const (
	// requirementCluster is the pool's Cluster.
	requirementCluster = "cluster"
	// requirementMachineSets are the live MachineSets of the pool's
	// MachineDeployments, which keep old templates in use; of the whole
	// Cluster while the rollout gates need them (withSiblings).
	requirementMachineSets = "machinesets"
	// requirementMachineDeployments and requirementMachinePools are the
	// Cluster's, while the pool has a disruptive change to start: the
	// rollout gates learn from them which of its other pools roll or wait.
	requirementMachineDeployments = "machinedeployments"
	requirementMachinePools       = "machinepools"
	// requirementWavePrefix and a wave's name require the rollout markers
	// of that wave's pools.
	requirementWavePrefix = "wave-"
	// requirementCRDPrefix and a CRD's name: the management cluster's CRD
	// of a kind the pool composes that nothing observed shows served yet
	// (plan.Plan.NeedsCRDs).
	requirementCRDPrefix = "crd-"
	// requirementControlPlane is the Cluster's control plane, whose version
	// workers never overtake.
	requirementControlPlane = "controlplane"
)

// specCrossplane is the part of a v2 composite resource's spec Crossplane
// owns.
const specCrossplane = "crossplane"

// Labels Crossplane sets on a composite resource created for a claim.
const (
	labelClaimName      = "crossplane.io/claim-name"
	labelClaimNamespace = "crossplane.io/claim-namespace"
)

// require asks Crossplane for the pool's Cluster, its control plane and its
// MachineSets, and reads them into in where Crossplane sent them. resolved
// is false until it has fetched the Cluster.
func (f *Function) require(req *fnv1.RunFunctionRequest, in *plan.Input) (_ *fnv1.Requirements, resolved bool, _ error) {
	if in.Spec.ClusterName == "" {
		return nil, true, nil // Planning reports spec.clusterName missing.
	}
	if in.Spec.Cell != "" {
		// Its Cluster and control plane were read from the cell (remote).
		in.Siblings = cellSiblings(req, in.Name)
		return &fnv1.Requirements{Resources: map[string]*fnv1.ResourceSelector{}}, true, nil
	}
	rs := requirements(in.Namespace, in.Spec.ClusterName, in.Name)
	cl, resolved := cluster(req)
	if !resolved {
		if request.AdvertisesCapabilities(req) && !request.HasCapability(req, fnv1.Capability_CAPABILITY_REQUIRED_RESOURCES) {
			return rs, false, withReason(FatalUnsupportedCrossplane, errors.New(errNoRequiredResources))
		}
		return rs, false, nil
	}
	in.Cluster = cl
	in.MachineSets, in.Siblings = pools(req, in.Name, in.Observed)
	in.CRDs = crds(req)
	if cl == nil || cl.ControlPlaneName == "" {
		return rs, true, nil
	}
	if k, ok := f.planner.ControlPlaneKind(cl.ControlPlaneKind); ok {
		rs.Resources[requirementControlPlane] = &fnv1.ResourceSelector{
			ApiVersion: k.APIVersion,
			Kind:       cl.ControlPlaneKind,
			Match:      &fnv1.ResourceSelector_MatchName{MatchName: cl.ControlPlaneName},
			Namespace:  &in.Namespace,
		}
		in.ControlPlane = controlPlane(req, cl)
	}
	return rs, true, nil
}

// decode reads the plan input from the request, with what the markers of
// the earlier waves say (Function.waves).
func (f *Function) decode(req *fnv1.RunFunctionRequest, fleet map[string]plan.WaveView) (plan.Input, error) {
	in := plan.Input{}
	xr := req.GetObserved().GetComposite().GetResource()
	if xr == nil {
		return in, withReason(FatalInvalidRequest, errors.New(errNoXR))
	}
	md := xr.GetFields()["metadata"].GetStructValue().GetFields()
	labels := md["labels"].GetStructValue().GetFields()
	in.Name = md["name"].GetStringValue()
	in.Namespace = md["namespace"].GetStringValue()
	// A legacy cluster-scoped XR composes into its claim's namespace, and its
	// objects are named after the claim, not the generated XR name.
	if n := labels[labelClaimName].GetStringValue(); n != "" {
		in.Name = n
	}
	in.Annotations = stringMap(md["annotations"])
	in.Labels = stringMap(md["labels"])
	in.Previous = previousRollout(xr)
	in.AllowReplacement = in.Annotations[plan.AnnotationAllowReplacement] == "true"
	if in.Namespace == "" {
		in.Namespace = labels[labelClaimNamespace].GetStringValue()
	}
	if in.Namespace == "" {
		return in, withReason(FatalInvalidPool, errors.New(errNoNamespace))
	}
	if spec := xr.GetFields()["spec"].GetStructValue(); spec != nil {
		// The Composition: a v2 XR names it under spec.crossplane, a legacy
		// one under spec.
		in.Composition = cmp.Or(field(spec.GetFields(), specCrossplane, "compositionRef", "name").GetStringValue(),
			field(spec.GetFields(), "compositionRef", "name").GetStringValue())
		// Crossplane's own part of the spec (spec.crossplane: composition
		// and resource references) is often most of it, and no field of the
		// pool's.
		if _, ok := spec.GetFields()[specCrossplane]; ok {
			spec = &structpb.Struct{Fields: maps.Clone(spec.GetFields())}
			delete(spec.Fields, specCrossplane)
		}
		if err := FromStruct(spec, &in.Spec, "the FleetNodePool spec", "spec", false); err != nil {
			return in, withReason(FatalInvalidPool, err)
		}
	}

	input := req.GetInput()
	if input == nil {
		return in, withReason(FatalInvalidPolicy, errors.New(errNoInput))
	}
	av, k := input.GetFields()["apiVersion"].GetStringValue(), input.GetFields()["kind"].GetStringValue()
	if av != v1beta1.SchemeGroupVersion.String() || k != v1beta1.PolicyKind {
		return in, withReason(FatalInvalidPolicy, errors.Errorf(errFmtInputKind, strings.TrimPrefix(av+" "+k, " "), v1beta1.Group, v1beta1.Version, v1beta1.PolicyKind))
	}
	pol, err := f.policy(input)
	if err != nil {
		return in, withReason(FatalInvalidPolicy, err)
	}
	in.Policy, in.Target = pol.policy, pol.target
	in.Observed = observed(req.GetObserved().GetResources())
	if m, ok := req.GetObserved().GetResources()[keyMarker]; ok {
		mk := marker(m.GetResource().GetFields())
		in.Marker = &mk
	}
	in.Fleet = fleet
	return in, nil
}

// keyMarker is the composition resource key of a pool's rollout marker.
const keyMarker = "rollout"

// keyInfraPool is the composition resource key of a pool's infrastructure
// machine pool, whose spec providers check for immutable fields.
const keyInfraPool = "infrapool"

// requirements ask Crossplane for the pool's Cluster and its MachineSets
// (Cluster API labels them with the Cluster's name, and they carry the
// pool label of their MachineDeployment's machine template).
func requirements(namespace, cluster, pool string) *fnv1.Requirements {
	return &fnv1.Requirements{Resources: map[string]*fnv1.ResourceSelector{
		requirementCluster: {
			ApiVersion: clusterv1.GroupVersion.String(),
			Kind:       "Cluster",
			Match:      &fnv1.ResourceSelector_MatchName{MatchName: cluster},
			Namespace:  &namespace,
		},
		requirementMachineSets: ofCluster("MachineSet", namespace, map[string]string{clusterv1.ClusterNameLabel: cluster, capi.PoolLabel: pool}),
	}}
}

// withSiblings widens requirements to the Cluster's MachineDeployments,
// MachinePools and MachineSets, of every pool: what the rollout gates read
// while the pool has a disruptive change to start. Only then: Crossplane
// reconciles a pool on every change of what it requires, and the other
// pools' rollouts would wake every pool of the Cluster.
func withSiblings(rs *fnv1.Requirements, namespace, cluster string) {
	all := map[string]string{clusterv1.ClusterNameLabel: cluster}
	rs.Resources[requirementMachineSets] = ofCluster("MachineSet", namespace, all)
	rs.Resources[requirementMachineDeployments] = ofCluster("MachineDeployment", namespace, all)
	rs.Resources[requirementMachinePools] = ofCluster("MachinePool", namespace, all)
}

// withCRDs asks Crossplane for the named CRDs.
func withCRDs(rs *fnv1.Requirements, names []string) {
	for _, n := range names {
		rs.Resources[requirementCRDPrefix+n] = &fnv1.ResourceSelector{
			ApiVersion: apiextensionsv1.SchemeGroupVersion.String(),
			Kind:       "CustomResourceDefinition",
			Match:      &fnv1.ResourceSelector_MatchName{MatchName: n},
		}
	}
}

// crds reads the CRDs Crossplane sent: nil for one it did not find.
func crds(req *fnv1.RunFunctionRequest) map[string]*plan.CRD {
	var out map[string]*plan.CRD
	for k, rs := range req.GetRequiredResources() {
		name, ok := strings.CutPrefix(k, requirementCRDPrefix)
		if !ok {
			continue
		}
		if out == nil {
			out = map[string]*plan.CRD{}
		}
		items := rs.GetItems()
		if len(items) == 0 {
			out[name] = nil
			continue
		}
		f := items[0].GetResource().GetFields()
		crd := &plan.CRD{Labels: stringMap(field(f, "metadata", "labels"))}
		for _, v := range field(f, "spec", "versions").GetListValue().GetValues() {
			vf := v.GetStructValue().GetFields()
			if vf["served"].GetBoolValue() {
				crd.Served = append(crd.Served, vf["name"].GetStringValue())
			}
		}
		out[name] = crd
	}
	return out
}

// ofCluster selects the Cluster API objects of a kind with the labels.
func ofCluster(kind, namespace string, labels map[string]string) *fnv1.ResourceSelector {
	return &fnv1.ResourceSelector{
		ApiVersion: clusterv1.GroupVersion.String(),
		Kind:       kind,
		Match:      &fnv1.ResourceSelector_MatchLabels{MatchLabels: &fnv1.MatchLabels{Labels: labels}},
		Namespace:  &namespace,
	}
}

// pools reads the Cluster's pools from its live MachineSets,
// MachineDeployments and MachinePools, by their pool label: the pool's own
// MachineSets (by MachineDeployment name), and its siblings. A MachineSet
// of one of the pool's MachineDeployments is the pool's whatever its labels
// say: retention never misses one. Either is nil while Crossplane has not
// fetched what it is read from.
func pools(req *fnv1.RunFunctionRequest, self string, observed map[string]plan.Observed) (map[string][]plan.MachineSet, []plan.Sibling) {
	required := req.GetRequiredResources()
	mss, ok := required[requirementMachineSets]
	if !ok {
		return nil, nil
	}
	own := map[string][]plan.MachineSet{}
	for _, o := range observed {
		if o.Version != "" || len(o.References) > 0 {
			own[o.Name] = nil // A MachineDeployment or MachinePool of the pool.
		}
	}
	others := map[string]*plan.Sibling{}
	sibling := func(pool string) *plan.Sibling {
		s := others[pool]
		if s == nil {
			s = &plan.Sibling{Pool: pool, MachineSets: map[string][]plan.MachineSet{}}
			others[pool] = s
		}
		return s
	}
	for _, item := range mss.GetItems() {
		f := item.GetResource().GetFields()
		labels := field(f, "metadata", "labels").GetStructValue().GetFields()
		pool, md := labels[capi.PoolLabel].GetStringValue(), labels[clusterv1.MachineDeploymentNameLabel].GetStringValue()
		if _, ours := own[md]; ours {
			pool = self
		}
		if pool == "" {
			continue // Not a FleetNodePool's.
		}
		ts := field(f, "spec", "template", "spec").GetStructValue().GetFields()
		ms := plan.MachineSet{
			Version:   ts["version"].GetStringValue(),
			Infra:     field(ts, "infrastructureRef", "name").GetStringValue(),
			Bootstrap: field(ts, "bootstrap", "configRef", "name").GetStringValue(),
			Replicas:  max(ptr.Deref(int32Field(f["status"].GetStructValue().GetFields(), "replicas"), 0), ptr.Deref(int32Field(f["spec"].GetStructValue().GetFields(), "replicas"), 0)),
			Created:   timeField(field(f, "metadata", "creationTimestamp")),
		}
		if pool == self {
			own[md] = append(own[md], ms)
			continue
		}
		s := sibling(pool)
		s.MachineSets[md] = append(s.MachineSets[md], ms)
	}
	mds, okMD := required[requirementMachineDeployments]
	mps, okMP := required[requirementMachinePools]
	if !okMD || !okMP {
		return own, nil
	}
	for _, item := range append(slices.Clone(mds.GetItems()), mps.GetItems()...) {
		f := item.GetResource().GetFields()
		pool := field(f, "metadata", "labels").GetStructValue().GetFields()[capi.PoolLabel].GetStringValue()
		if pool == "" || pool == self {
			continue
		}
		s := sibling(pool)
		s.Backings = append(s.Backings, backing(f))
	}
	siblings := make([]plan.Sibling, 0, len(others))
	for _, k := range slices.Sorted(maps.Keys(others)) {
		siblings = append(siblings, *others[k])
	}
	return own, siblings
}

// field walks nested Struct fields.
func field(f map[string]*structpb.Value, path ...string) *structpb.Value {
	var v *structpb.Value
	for i, k := range path {
		v = f[k]
		if i < len(path)-1 {
			f = v.GetStructValue().GetFields()
		}
	}
	return v
}

// cluster reads the pool's Cluster from the required resources: nil if it
// does not exist, and resolved false if Crossplane has not fetched it yet.
func cluster(req *fnv1.RunFunctionRequest) (c *plan.Cluster, resolved bool) {
	rs, ok := req.GetRequiredResources()[requirementCluster]
	if !ok {
		return nil, false
	}
	items := rs.GetItems()
	if len(items) == 0 {
		return nil, true
	}
	return clusterOf(items[0].GetResource().GetFields()), true
}

// clusterOf reads what planning uses of a Cluster.
func clusterOf(f map[string]*structpb.Value) *plan.Cluster {
	spec := f["spec"].GetStructValue().GetFields()
	return &plan.Cluster{
		InfrastructureKind: field(spec, "infrastructureRef", "kind").GetStringValue(),
		ControlPlaneKind:   field(spec, "controlPlaneRef", "kind").GetStringValue(),
		ControlPlaneName:   field(spec, "controlPlaneRef", "name").GetStringValue(),
		Annotations:        stringMap(field(f, "metadata", "annotations")),
		Labels:             stringMap(field(f, "metadata", "labels")),
	}
}

// controlPlane reads the Cluster's control plane from the required
// resources: nil while not fetched, with an unknown version when missing.
func controlPlane(req *fnv1.RunFunctionRequest, cl *plan.Cluster) *plan.ControlPlane {
	rs, ok := req.GetRequiredResources()[requirementControlPlane]
	if !ok {
		return nil
	}
	cp := &plan.ControlPlane{Kind: cl.ControlPlaneKind, Name: cl.ControlPlaneName}
	if items := rs.GetItems(); len(items) > 0 {
		cp.Version = field(items[0].GetResource().GetFields(), "status", "version").GetStringValue()
	}
	return cp
}

// A decodedPolicy is a policy input decoded, with its target where it has
// waves (plan.Target).
type decodedPolicy struct {
	policy *v1beta1.Policy
	target string
}

// policy decodes the policy input, or finds it decoded in the cache.
func (f *Function) policy(input *structpb.Struct) (decodedPolicy, error) {
	var fp fingerprint
	if f.cache != nil {
		fp = f.cache.policyFingerprint(input)
		if p, ok := f.cache.policies.get(fp); ok {
			return p, nil
		}
	}
	p := decodedPolicy{policy: &v1beta1.Policy{}}
	if err := FromStruct(input, p.policy, "the platform policy (the Composition step's input)", "input", true); err != nil {
		return p, err
	}
	if r := p.policy.Rollouts; r != nil && len(r.Waves) > 0 {
		t, err := plan.Target(p.policy)
		if err != nil {
			return p, errors.Wrap(err, errTarget)
		}
		p.target = t
	}
	if f.cache != nil {
		f.cache.policies.put(fp, p)
	}
	return p, nil
}

// observed extracts what planning needs from the observed composed
// resources, reading the few fields it uses straight from the Structs.
func observed(rs map[string]*fnv1.Resource) map[string]plan.Observed {
	out := make(map[string]plan.Observed, len(rs))
	for k, r := range rs {
		f := r.GetResource().GetFields()
		if isObject(f) {
			// A pool in a cell: its objects as the cell reports them.
			if k != keyRemoteCluster && k != keyRemoteControlPlane {
				out[k] = unwrap(f, k == keyInfraPool)
			}
			continue
		}
		o := backing(f)
		o.Load = func() map[string]any { return keepable(f) }
		if k == keyInfraPool {
			o.Spec = f["spec"].GetStructValue().AsMap()
		}
		out[k] = o
	}
	return out
}

// backing reads what planning uses of an object: all of it for a
// MachineDeployment or MachinePool, its name and status of others.
func backing(f map[string]*structpb.Value) plan.Observed {
	md := f["metadata"].GetStructValue().GetFields()
	spec := f["spec"].GetStructValue().GetFields()
	st := f["status"].GetStructValue().GetFields()
	annotations := md["annotations"].GetStructValue().GetFields()
	o := plan.Observed{
		APIVersion:         f["apiVersion"].GetStringValue(),
		Kind:               f["kind"].GetStringValue(),
		Generation:         int64(md["generation"].GetNumberValue()),
		ObservedGeneration: int64(st["observedGeneration"].GetNumberValue()),
		Replicas:           int32Field(st, "replicas"),
		ReadyReplicas:      int32Field(st, "readyReplicas"),
		AvailableReplicas:  int32Field(st, "availableReplicas"),
		UpToDateReplicas:   int32Field(st, "upToDateReplicas"),
		Name:               md["name"].GetStringValue(),
		ClusterName:        spec["clusterName"].GetStringValue(),
		Version:            field(spec, "template", "spec", "version").GetStringValue(),
		InfraKind:          field(spec, "template", "spec", "infrastructureRef", "kind").GetStringValue(),
		SpecReplicas:       int32Field(spec, "replicas"),
		QueuedSince:        annotations[plan.AnnotationQueuedSince].GetStringValue(),
		HoldsSequence:      annotations[plan.AnnotationHoldSequence].GetStringValue() == "true",
		Created:            timeField(md["creationTimestamp"]),
		RolloutAfter:       timeField(field(spec, "rollout", "after")),
		Rotation:           annotations[plan.AnnotationRotation].GetStringValue(),
		Revision:           annotations[plan.AnnotationRevision].GetStringValue(),
	}
	for _, c := range st["conditions"].GetListValue().GetValues() {
		cf := c.GetStructValue().GetFields()
		if cf["type"].GetStringValue() == "Available" {
			o.Available = cf["status"].GetStringValue() == "True"
		}
	}
	for _, v := range st["versions"].GetListValue().GetValues() {
		vf := v.GetStructValue().GetFields()
		if v := vf["version"].GetStringValue(); o.Version != "" && v != "" && v != o.Version {
			o.OtherVersions += int32(vf["replicas"].GetNumberValue())
		}
	}
	if ts := field(spec, "template", "spec").GetStructValue().GetFields(); ts != nil {
		for _, ref := range []*structpb.Value{field(ts, "infrastructureRef", "name"), field(ts, "bootstrap", "configRef", "name")} {
			if n := ref.GetStringValue(); n != "" {
				o.References = append(o.References, n)
			}
		}
		o.Bootstrap = field(ts, "bootstrap", "configRef", "name").GetStringValue()
	}
	return o
}

// stringMap reads a map of strings (labels, annotations), nil if empty.
func stringMap(v *structpb.Value) map[string]string {
	f := v.GetStructValue().GetFields()
	if len(f) == 0 {
		return nil
	}
	out := make(map[string]string, len(f))
	for k, v := range f {
		out[k] = v.GetStringValue()
	}
	return out
}

// keepable is an observed object as the function may emit it again: its
// type, identity, labels, annotations and spec; no status or server
// metadata.
func keepable(f map[string]*structpb.Value) map[string]any {
	if f["apiVersion"] == nil || f["kind"] == nil {
		return nil
	}
	md := f["metadata"].GetStructValue().GetFields()
	meta := map[string]any{"name": md["name"].GetStringValue()}
	if ns := md["namespace"].GetStringValue(); ns != "" {
		meta["namespace"] = ns
	}
	for _, k := range []string{"labels", "annotations"} {
		if m := md[k].GetStructValue(); m != nil {
			meta[k] = m.AsMap()
		}
	}
	out := map[string]any{
		"apiVersion": f["apiVersion"].GetStringValue(),
		"kind":       f["kind"].GetStringValue(),
		"metadata":   meta,
	}
	if spec := f["spec"].GetStructValue(); spec != nil {
		out["spec"] = spec.AsMap()
	}
	return out
}

func int32Field(f map[string]*structpb.Value, k string) *int32 {
	v, ok := f[k]
	if !ok {
		return nil
	}
	i := int32(v.GetNumberValue())
	return &i
}

// previousRollout is the rollout state the previous reconcile wrote on the
// XR (status.rollout.state).
func previousRollout(xr *structpb.Struct) v1alpha1.RolloutState {
	st := xr.GetFields()["status"].GetStructValue().GetFields()
	return v1alpha1.RolloutState(st["rollout"].GetStructValue().GetFields()["state"].GetStringValue())
}

// timeField reads an RFC 3339 time (a creationTimestamp, a
// spec.rollout.after), zero if it is absent. The API server validates the
// format, so an unreadable one is absent too: a revision of unknown age is
// never rotated.
func timeField(v *structpb.Value) time.Time {
	s := v.GetStringValue()
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}
	}
	return t
}
