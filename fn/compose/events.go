package compose

import (
	"k8s.io/utils/ptr"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/plan"
)

// Conditions' statuses as Crossplane writes them on the XR.
const (
	conditionTrue    = "True"
	conditionUnknown = "Unknown"
)

// events adds the pool's events to the response as results, which
// Crossplane records as Kubernetes Events of the XR and its claim: the
// transitions (plan.Events) from the state the previous reconcile left,
// as the observed XR's status says, to the one this response sets. They
// are made for each request, never cached: the plan cache fingerprints
// only the rollout state of the observed status, and a cached plan's
// messages are shared. A response that sets no status (a Fatal result, or one that waits
// for required resources) has none.
func (f *Function) events(req *fnv1.RunFunctionRequest, rsp *fnv1.RunFunctionResponse, p *planned) {
	if p.fatal != nil || p.resources == nil || !satisfied(req, rsp) {
		return
	}
	for _, e := range plan.Events(observedState(req), p.state) {
		rsp.Results = append(rsp.Results, result(e))
		f.metrics.events.WithLabelValues(e.Reason).Inc()
		if e.Reason == plan.EventChangeRefused {
			f.metrics.refused.WithLabelValues(p.state.RefusedReason).Inc()
		}
	}
}

// satisfied reports whether the request carries every required resource
// the response asks for. Crossplane calls the function again within the
// same reconcile until it does, and records the results of that last call
// only: the events of an earlier one would be counted, never recorded.
func satisfied(req *fnv1.RunFunctionRequest, rsp *fnv1.RunFunctionResponse) bool {
	for name := range rsp.GetRequirements().GetResources() {
		if _, ok := req.GetRequiredResources()[name]; !ok {
			return false
		}
	}
	return true
}

// observedState reads the state the previous reconcile left of the pool
// from the observed XR: status.rollout, and the conditions RolloutHeld and
// ChangeRefused. A pool whose version could not be read has no
// status.rollout, only its RolloutHeld condition.
func observedState(req *fnv1.RunFunctionRequest) plan.PoolState {
	st := req.GetObserved().GetComposite().GetResource().GetFields()["status"].GetStructValue().GetFields()
	ro := st["rollout"].GetStructValue().GetFields()
	s := plan.PoolState{Rollout: v1alpha1.RolloutState(ro["state"].GetStringValue()), HoldReason: ro["reason"].GetStringValue()}
	for _, c := range st["conditions"].GetListValue().GetValues() {
		cf := c.GetStructValue().GetFields()
		switch typ := cf["type"].GetStringValue(); {
		case cf["status"].GetStringValue() == conditionUnknown && (typ == TypeRolloutHeld || typ == TypeChangeRefused):
			// Crossplane resets the function's conditions after a Fatal
			// result: what the pool was before it is not known.
			s.Unknown = true
			continue
		case cf["status"].GetStringValue() != conditionTrue:
			continue
		}
		switch cf["type"].GetStringValue() {
		case TypeRolloutHeld:
			s.HoldMessage = cf["message"].GetStringValue()
			if s.HoldReason == "" {
				s.HoldReason = cf["reason"].GetStringValue()
			}
			if s.Rollout == "" {
				s.Rollout = v1alpha1.RolloutHeld
			}
		case TypeChangeRefused:
			s.Refused, s.RefusedReason, s.RefusedMessage = true, cf["reason"].GetStringValue(), cf["message"].GetStringValue()
		}
	}
	return s
}

// result encodes an event as a result for the XR and its claim. Crossplane
// v2 records a Normal result as a Normal Event and a Warning result as a
// Warning Event, with the result's reason as the Event's; neither stops
// it, nor marks the XR unsynced.
func result(e plan.Event) *fnv1.Result {
	s := fnv1.Severity_SEVERITY_NORMAL
	if e.Warning {
		s = fnv1.Severity_SEVERITY_WARNING
	}
	return &fnv1.Result{Severity: s, Message: e.Message, Reason: ptr.To(e.Reason), Target: fnv1.Target_TARGET_COMPOSITE_AND_CLAIM.Enum()}
}
