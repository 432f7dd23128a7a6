// Package compose adapts the planning core to Crossplane's RunFunction: it
// decodes the request (the FleetNodePool, the policy input, the observed
// composed resources), calls plan, and encodes the desired Cluster API
// objects, the XR's status and conditions into the response.
package compose

import (
	"context"
	"runtime/debug"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"
	"k8s.io/utils/ptr"

	"github.com/crossplane/function-sdk-go/errors"
	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/request"
	"github.com/crossplane/function-sdk-go/response"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/apis/input/v1beta1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/capi"
	"github.com/fleetnodepool/function-fleetnodepool/fn/plan"
	"github.com/fleetnodepool/function-fleetnodepool/fn/wire"
)

// Error strings.
const (
	errNoXR         = "cannot read the observed FleetNodePool: the request has no observed composite resource"
	errNoInput      = "cannot read the platform policy: the Composition's pipeline step has no input; give it a " + v1beta1.Group + "/" + v1beta1.Version + " " + v1beta1.PolicyKind
	errFmtInputKind = "cannot read the platform policy: the step's input is a %s, want apiVersion %s/%s, kind %s"
	errNoNamespace  = "cannot find the FleetNodePool's namespace: a cluster-scoped XFleetNodePool must be created through its namespaced FleetNodePool claim"
	errFmtEncode    = "cannot encode composed resource %q"
	errEncodeStatus = "cannot encode the FleetNodePool status"
	errFmtPanic     = "cannot compose the FleetNodePool: the function hit a bug (%v); please report it"

	errNoRequiredResources = "cannot read the pool's Cluster: this Crossplane does not resolve required resources; FleetNodePools need Crossplane v2.2 or later"
)

// Condition types the function sets on the XR. Crossplane reserves Ready and
// Synced.
const (
	// TypePoolAvailable is True when every MachineDeployment or MachinePool
	// of the pool is Available.
	TypePoolAvailable = "PoolAvailable"

	// TypeRolloutInProgress is True while a MachineDeployment or MachinePool
	// of the pool has not replaced every machine with the current spec.
	TypeRolloutInProgress = "RolloutInProgress"

	// TypeUpgradePending is True while the pool is held below its target
	// version until its control plane runs it.
	TypeUpgradePending = "UpgradePending"

	// TypeChangeRefused is True when a change of the spec was refused
	// because it would delete the backing of a running pool.
	TypeChangeRefused = "ChangeRefused"

	// ReasonClusterNotFound says the pool's Cluster does not exist.
	ReasonClusterNotFound = "ClusterNotFound"
)

// Names of the required resources.
const (
	// requirementCluster is the pool's Cluster.
	requirementCluster = "cluster"
	// requirementMachineSets are the live MachineSets of the pool's
	// MachineDeployments, which keep old templates in use.
	requirementMachineSets = "machinesets"
	// requirementControlPlane is the Cluster's control plane, whose version
	// workers never overtake.
	requirementControlPlane = "controlplane"
)

// Labels Crossplane sets on a composite resource created for a claim.
const (
	labelClaimName      = "crossplane.io/claim-name"
	labelClaimNamespace = "crossplane.io/claim-namespace"
)

// Function is the FleetNodePool composition function.
type Function struct {
	fnv1.UnimplementedFunctionRunnerServiceServer

	log     logging.Logger
	planner *plan.Planner
	cache   *planCache
}

// An Option configures a Function.
type Option func(*Function)

// WithLogger sets the logger.
func WithLogger(l logging.Logger) Option { return func(f *Function) { f.log = l } }

// WithPlanner sets the planner.
func WithPlanner(p *plan.Planner) Option { return func(f *Function) { f.planner = p } }

// WithCacheSize sets how many planned pools the function remembers; 0
// disables the cache.
func WithCacheSize(n int) Option {
	return func(f *Function) {
		f.cache = nil
		if n > 0 {
			f.cache = newPlanCache(n)
		}
	}
}

// New returns the function.
func New(o ...Option) *Function {
	f := &Function{log: logging.NewNopLogger(), planner: plan.New(), cache: newPlanCache(DefaultCacheSize)}
	for _, fn := range o {
		fn(f)
	}
	return f
}

// RunFunction composes the Cluster API objects of one FleetNodePool.
func (f *Function) RunFunction(_ context.Context, req *fnv1.RunFunctionRequest) (rsp *fnv1.RunFunctionResponse, _ error) {
	// No input may crash the server that serves every FleetNodePool: a bug
	// becomes a Fatal result for the one XR that hit it.
	defer func() {
		if r := recover(); r != nil {
			f.log.Info("Recovered from a panic", "panic", r, "stack", string(debug.Stack()))
			rsp = response.To(req, response.DefaultTTL)
			response.Fatal(rsp, errors.Errorf(errFmtPanic, r))
		}
	}()
	return f.run(req), nil
}

// run is RunFunction without its guard against panics.
func (f *Function) run(req *fnv1.RunFunctionRequest) *fnv1.RunFunctionResponse {
	rsp := response.To(req, response.DefaultTTL)

	var pool, fp fingerprint
	if f.cache != nil {
		pool, fp = f.cache.fingerprint(req)
		if p, ok := f.cache.get(pool, fp); ok {
			apply(rsp, p)
			return rsp
		}
	}

	in, err := f.decode(req)
	if err != nil {
		response.Fatal(rsp, err)
		return rsp
	}
	log := f.log.WithValues("tag", req.GetMeta().GetTag(), "namespace", in.Namespace, "name", in.Name)

	// The pool's Cluster decides its provider and backend. Crossplane
	// fetches it and calls again; from the second reconcile on it sends it
	// with the first call.
	if in.Spec.ClusterName != "" {
		rsp.Requirements = requirements(in.Namespace, in.Spec.ClusterName, in.Name)
		cl, resolved := cluster(req)
		if !resolved {
			if request.AdvertisesCapabilities(req) && !request.HasCapability(req, fnv1.Capability_CAPABILITY_REQUIRED_RESOURCES) {
				response.Fatal(rsp, errors.New(errNoRequiredResources))
			}
			return rsp
		}
		in.Cluster = cl
		in.MachineSets = machineSets(req)
		if cl != nil && cl.ControlPlaneName != "" {
			if k, ok := f.planner.ControlPlaneKind(cl.ControlPlaneKind); ok {
				rsp.Requirements.Resources[requirementControlPlane] = &fnv1.ResourceSelector{
					ApiVersion: k.APIVersion,
					Kind:       cl.ControlPlaneKind,
					Match:      &fnv1.ResourceSelector_MatchName{MatchName: cl.ControlPlaneName},
					Namespace:  &in.Namespace,
				}
				in.ControlPlane = controlPlane(req, cl)
			}
		}
	}

	pl, err := f.planner.Plan(in)
	var notFound *plan.ClusterNotFoundError
	switch {
	case errors.As(err, &notFound):
		// A Fatal result stops Crossplane before it applies or deletes
		// anything: the running pool is left alone.
		log.Info("Cannot find the pool's Cluster", "error", err)
		response.Fatal(rsp, err)
		response.ConditionFalse(rsp, TypePoolAvailable, ReasonClusterNotFound).WithMessage(err.Error()).TargetCompositeAndClaim()
		return rsp
	case err != nil:
		log.Info("Cannot plan the pool", "error", err)
		response.Fatal(rsp, err)
		return rsp
	}
	p, err := build(pl)
	if err != nil {
		response.Fatal(rsp, err)
		return rsp
	}
	p.requirements = rsp.GetRequirements()
	if f.cache != nil {
		f.cache.put(pool, fp, p)
	}
	apply(rsp, p)
	log.Debug("Planned the pool", "resources", len(pl.Resources), "version", pl.Status.Version)
	return rsp
}

// decode reads the plan input from the request.
func (f *Function) decode(req *fnv1.RunFunctionRequest) (plan.Input, error) {
	in := plan.Input{}
	xr := req.GetObserved().GetComposite().GetResource()
	if xr == nil {
		return in, errors.New(errNoXR)
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
	in.AllowReplacement = md["annotations"].GetStructValue().GetFields()[plan.AnnotationAllowReplacement].GetStringValue() == "true"
	if in.Namespace == "" {
		in.Namespace = labels[labelClaimNamespace].GetStringValue()
	}
	if in.Namespace == "" {
		return in, errors.New(errNoNamespace)
	}
	if spec := xr.GetFields()["spec"].GetStructValue(); spec != nil {
		if err := FromStruct(spec, &in.Spec, "the FleetNodePool spec", "spec", false); err != nil {
			return in, err
		}
	}

	input := req.GetInput()
	if input == nil {
		return in, errors.New(errNoInput)
	}
	av, k := input.GetFields()["apiVersion"].GetStringValue(), input.GetFields()["kind"].GetStringValue()
	if av != v1beta1.SchemeGroupVersion.String() || k != v1beta1.PolicyKind {
		return in, errors.Errorf(errFmtInputKind, strings.TrimPrefix(av+" "+k, " "), v1beta1.Group, v1beta1.Version, v1beta1.PolicyKind)
	}
	var err error
	if in.Policy, err = f.policy(input); err != nil {
		return in, err
	}
	in.Observed = observed(req.GetObserved().GetResources())
	return in, nil
}

// keyInfraPool is the composition resource key of a pool's infrastructure
// machine pool, whose spec providers check for immutable fields.
const keyInfraPool = "infrapool"

// requirements ask Crossplane for the pool's Cluster and MachineSets. The
// MachineSets carry the labels of their MachineDeployment's machine
// template, so one selector finds those of every zone.
func requirements(namespace, cluster, pool string) *fnv1.Requirements {
	return &fnv1.Requirements{Resources: map[string]*fnv1.ResourceSelector{
		requirementCluster: {
			ApiVersion: clusterv1.GroupVersion.String(),
			Kind:       "Cluster",
			Match:      &fnv1.ResourceSelector_MatchName{MatchName: cluster},
			Namespace:  &namespace,
		},
		requirementMachineSets: {
			ApiVersion: clusterv1.GroupVersion.String(),
			Kind:       "MachineSet",
			Match: &fnv1.ResourceSelector_MatchLabels{MatchLabels: &fnv1.MatchLabels{Labels: map[string]string{
				clusterv1.ClusterNameLabel: cluster,
				capi.PoolLabel:             pool,
			}}},
			Namespace: &namespace,
		},
	}}
}

// machineSets reads the pool's live MachineSets: nil when Crossplane has
// not fetched them.
func machineSets(req *fnv1.RunFunctionRequest) map[string][]plan.MachineSet {
	rs, ok := req.GetRequiredResources()[requirementMachineSets]
	if !ok {
		return nil
	}
	out := map[string][]plan.MachineSet{}
	for _, item := range rs.GetItems() {
		f := item.GetResource().GetFields()
		md := f["metadata"].GetStructValue().GetFields()["labels"].GetStructValue().GetFields()[clusterv1.MachineDeploymentNameLabel].GetStringValue()
		ts := field(f, "spec", "template", "spec").GetStructValue().GetFields()
		out[md] = append(out[md], plan.MachineSet{
			Infra:     field(ts, "infrastructureRef", "name").GetStringValue(),
			Bootstrap: field(ts, "bootstrap", "configRef", "name").GetStringValue(),
		})
	}
	return out
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
	spec := items[0].GetResource().GetFields()["spec"].GetStructValue().GetFields()
	return &plan.Cluster{
		InfrastructureKind: field(spec, "infrastructureRef", "kind").GetStringValue(),
		ControlPlaneKind:   field(spec, "controlPlaneRef", "kind").GetStringValue(),
		ControlPlaneName:   field(spec, "controlPlaneRef", "name").GetStringValue(),
	}, true
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

// policy decodes the policy input, or finds it decoded in the cache.
func (f *Function) policy(input *structpb.Struct) (*v1beta1.Policy, error) {
	var fp fingerprint
	if f.cache != nil {
		fp = f.cache.policyFingerprint(input)
		if p, ok := f.cache.policies.get(fp); ok {
			return p, nil
		}
	}
	p := &v1beta1.Policy{}
	if err := FromStruct(input, p, "the platform policy (the Composition step's input)", "input", true); err != nil {
		return nil, err
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
		md := f["metadata"].GetStructValue().GetFields()
		spec := f["spec"].GetStructValue().GetFields()
		st := f["status"].GetStructValue().GetFields()
		o := plan.Observed{
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
			Load:               func() map[string]any { return keepable(f) },
		}
		for _, c := range st["conditions"].GetListValue().GetValues() {
			cf := c.GetStructValue().GetFields()
			if cf["type"].GetStringValue() == "Available" {
				o.Available = cf["status"].GetStringValue() == "True"
			}
		}
		if ts := field(spec, "template", "spec").GetStructValue().GetFields(); ts != nil {
			for _, ref := range []*structpb.Value{field(ts, "infrastructureRef", "name"), field(ts, "bootstrap", "configRef", "name")} {
				if n := ref.GetStringValue(); n != "" {
					o.References = append(o.References, n)
				}
			}
		}
		if k == keyInfraPool {
			o.Spec = f["spec"].GetStructValue().AsMap()
		}
		out[k] = o
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

// build encodes a plan as what the function adds to a response.
func build(p *plan.Plan) (*planned, error) {
	out := &planned{resources: make(map[string]*fnv1.Resource, len(p.Resources))}
	for _, r := range p.Resources {
		s, err := ToStruct(r.Object)
		if err != nil {
			return nil, errors.Wrapf(err, errFmtEncode, r.Key)
		}
		ready := fnv1.Ready_READY_FALSE
		if r.Ready {
			ready = fnv1.Ready_READY_TRUE
		}
		out.resources[r.Key] = &fnv1.Resource{Resource: s, Ready: ready}
	}
	st, err := statusStruct(p.Status)
	if err != nil {
		return nil, errors.Wrap(err, errEncodeStatus)
	}
	out.status = st
	out.conditions = conditions(p)
	if p.Refused != nil {
		out.results = []*fnv1.Result{{
			Severity: fnv1.Severity_SEVERITY_WARNING,
			Message:  p.Refused.Message,
			Reason:   &p.Refused.Reason,
			Target:   fnv1.Target_TARGET_COMPOSITE_AND_CLAIM.Enum(),
		}}
	}
	return out, nil
}

// apply adds a planned pool to a response: its desired resources (keeping
// those of earlier pipeline steps), the XR status and conditions.
func apply(rsp *fnv1.RunFunctionResponse, p *planned) {
	if rsp.GetDesired() == nil {
		rsp.Desired = &fnv1.State{}
	}
	if rsp.Desired.GetResources() == nil {
		rsp.Desired.Resources = make(map[string]*fnv1.Resource, len(p.resources))
	}
	for k, r := range p.resources {
		rsp.Desired.Resources[k] = r
	}
	if rsp.Desired.GetComposite() == nil {
		rsp.Desired.Composite = &fnv1.Resource{}
	}
	if rsp.Desired.Composite.GetResource() == nil {
		rsp.Desired.Composite.Resource = &structpb.Struct{Fields: map[string]*structpb.Value{}}
	}
	xr := rsp.Desired.Composite.Resource
	status := xr.GetFields()["status"].GetStructValue()
	if status == nil {
		status = &structpb.Struct{Fields: make(map[string]*structpb.Value, len(p.status.GetFields()))}
		xr.Fields["status"] = structpb.NewStructValue(status)
	}
	for k, v := range p.status.GetFields() {
		status.Fields[k] = v
	}
	rsp.Conditions = append(rsp.Conditions, p.conditions...)
	rsp.Results = append(rsp.Results, p.results...)
	rsp.Requirements = p.requirements
}

// statusStruct encodes the pool status.
func statusStruct(s v1alpha1.FleetNodePoolStatus) (*structpb.Struct, error) {
	b, err := wire.Marshal(s)
	if err != nil {
		return nil, err
	}
	return jsonToStruct(b)
}

// conditions report the pool's availability on the XR and its claim.
func conditions(p *plan.Plan) []*fnv1.Condition {
	var unready []string
	for _, r := range p.Resources {
		if !r.Ready && plan.IsPool(r.Object) {
			unready = append(unready, r.Object.GetName())
		}
	}
	refused := &fnv1.Condition{
		Type: TypeChangeRefused, Status: fnv1.Status_STATUS_CONDITION_FALSE, Reason: "ChangeApplied",
		Target: fnv1.Target_TARGET_COMPOSITE_AND_CLAIM.Enum(),
	}
	if p.Refused != nil {
		refused.Status, refused.Reason, refused.Message = fnv1.Status_STATUS_CONDITION_TRUE, p.Refused.Reason, ptr.To(p.Refused.Message)
	}
	c := &fnv1.Condition{
		Type:   TypePoolAvailable,
		Status: fnv1.Status_STATUS_CONDITION_TRUE,
		Reason: "Available",
		Target: fnv1.Target_TARGET_COMPOSITE_AND_CLAIM.Enum(),
	}
	if len(unready) > 0 {
		c.Status, c.Reason = fnv1.Status_STATUS_CONDITION_FALSE, "Unavailable"
		c.Message = ptr.To("not available yet: " + strings.Join(unready, ", "))
	}
	upgrade := &fnv1.Condition{
		Type: TypeUpgradePending, Status: fnv1.Status_STATUS_CONDITION_FALSE, Reason: "AtTarget",
		Target: fnv1.Target_TARGET_COMPOSITE_AND_CLAIM.Enum(),
	}
	if u := p.UpgradePending; u != nil {
		upgrade.Status, upgrade.Reason, upgrade.Message = fnv1.Status_STATUS_CONDITION_TRUE, u.Reason, ptr.To(u.Message)
	}
	roll := &fnv1.Condition{
		Type: TypeRolloutInProgress, Status: fnv1.Status_STATUS_CONDITION_FALSE, Reason: "RolledOut",
		Target: fnv1.Target_TARGET_COMPOSITE_AND_CLAIM.Enum(),
	}
	if len(p.Rolling) > 0 {
		roll.Status, roll.Reason, roll.Message = fnv1.Status_STATUS_CONDITION_TRUE, "Rolling", ptr.To("rolling out: "+strings.Join(p.Rolling, ", "))
	}
	return []*fnv1.Condition{c, refused, upgrade, roll}
}
