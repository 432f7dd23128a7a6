package compose

import (
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"k8s.io/utils/ptr"

	"github.com/crossplane/function-sdk-go/errors"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/response"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/plan"
	"github.com/fleetnodepool/function-fleetnodepool/fn/wire"
)

// Error strings.
const (
	errFmtEncode    = "cannot encode composed resource %q"
	errEncodeStatus = "cannot encode the FleetNodePool status"
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

	// TypeRolloutHeld is True while a disruptive change of the pool waits:
	// for the policy's pause, the pool's deferral, its maintenance window,
	// its turn among its Cluster's pools, or its control plane.
	TypeRolloutHeld = "RolloutHeld"

	// TypeChangeRefused is True when a change of the spec was refused
	// because it would delete the backing of a running pool.
	TypeChangeRefused = "ChangeRefused"

	// TypeScaleFromZero is False when a part of the pool may scale to zero
	// nodes and the cluster-autoscaler cannot know what a new node would
	// have: it would never grow it again.
	TypeScaleFromZero = "ScaleFromZero"

	// ReasonClusterNotFound says the pool's Cluster does not exist.
	ReasonClusterNotFound = "ClusterNotFound"

	// ReasonReadingCell says a pool in a cell waits for a report of its
	// Cluster or control plane from the cell (their observe-only Objects).
	ReasonReadingCell = "ReadingCell"
)

// A planned pool is what the function adds to a response for one request.
// A cached one's protobuf messages are shared by every response built from
// it, so they are never modified after they are cached.
type planned struct {
	requirements *fnv1.Requirements
	resources    map[string]*fnv1.Resource
	status       *structpb.Struct
	conditions   []*fnv1.Condition
	// state is the pool's state as this plan leaves it: its events are the
	// transitions to it from what the request's observed XR says, made for
	// each request (Function.events).
	state plan.PoolState
	// fatal stops Crossplane before it applies or deletes anything.
	fatal error
	// cacheable is true for a planned pool, which the same request planned
	// again would give again, until wake if it is set.
	cacheable bool
	// wake and recheck: when to plan the pool again at the latest (see
	// plan.Plan).
	wake    time.Time
	recheck time.Duration
}

// build encodes a plan as what the function adds to a response.
func build(p *plan.Plan) (*planned, error) {
	out := &planned{resources: make(map[string]*fnv1.Resource, len(p.Resources)), wake: p.Wake, recheck: p.Recheck}
	for _, r := range p.Resources {
		s, err := encode(r)
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
	out.state = p.State()
	return out, nil
}

// encode is a planned object as it is sent: from the wire encoding
// planning made of it, where it made one.
func encode(r plan.Resource) (*structpb.Struct, error) {
	if r.Wire != nil {
		return fromWire(r.Wire, r.Object)
	}
	return ToStruct(r.Object)
}

// apply adds a planned pool to a response: its desired resources (keeping
// those of earlier pipeline steps), the XR status and conditions.
func apply(rsp *fnv1.RunFunctionResponse, p *planned, now time.Time) {
	rsp.Requirements = p.requirements
	if ttl := p.ttl(now); ttl != response.DefaultTTL {
		rsp.Meta.Ttl = durationpb.New(ttl)
	}
	if p.fatal != nil {
		response.Fatal(rsp, p.fatal)
		if notFound := (*plan.ClusterNotFoundError)(nil); errors.As(p.fatal, &notFound) {
			response.ConditionFalse(rsp, TypePoolAvailable, ReasonClusterNotFound).WithMessage(p.fatal.Error()).TargetCompositeAndClaim()
		}
		return
	}
	if p.resources == nil {
		return // Waiting for the required resources.
	}
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
}

// minTTL is the shortest TTL the function asks for: a window opening now
// is planned again in a second, not in a busy loop.
const minTTL = time.Second

// ttl is how soon Crossplane should call again: at the poll (the SDK's
// default TTL) or sooner, when the plan waits for time or another pool.
func (p *planned) ttl(now time.Time) time.Duration {
	ttl := response.DefaultTTL
	if p.recheck > 0 {
		ttl = min(ttl, p.recheck)
	}
	if !p.wake.IsZero() {
		ttl = min(ttl, max(p.wake.Sub(now), minTTL))
	}
	return ttl
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
	held := &fnv1.Condition{
		Type: TypeRolloutHeld, Status: fnv1.Status_STATUS_CONDITION_FALSE, Reason: "NotHeld",
		Target: fnv1.Target_TARGET_COMPOSITE_AND_CLAIM.Enum(),
	}
	if h := p.Hold; h != nil {
		held.Status, held.Reason, held.Message = fnv1.Status_STATUS_CONDITION_TRUE, h.Reason, ptr.To(h.Message)
	}
	roll := &fnv1.Condition{
		Type: TypeRolloutInProgress, Status: fnv1.Status_STATUS_CONDITION_FALSE, Reason: "RolledOut",
		Target: fnv1.Target_TARGET_COMPOSITE_AND_CLAIM.Enum(),
	}
	if len(p.Rolling) > 0 {
		roll.Status, roll.Reason, roll.Message = fnv1.Status_STATUS_CONDITION_TRUE, "Rolling", ptr.To("rolling out: "+strings.Join(p.Rolling, ", "))
	}
	zero := &fnv1.Condition{
		Type: TypeScaleFromZero, Status: fnv1.Status_STATUS_CONDITION_TRUE, Reason: p.ScaleFromZero.Reason,
		Target: fnv1.Target_TARGET_COMPOSITE_AND_CLAIM.Enum(),
	}
	if !p.ScaleFromZero.OK {
		zero.Status, zero.Message = fnv1.Status_STATUS_CONDITION_FALSE, ptr.To(p.ScaleFromZero.Message)
	}
	return []*fnv1.Condition{c, refused, upgrade, held, roll, zero}
}
