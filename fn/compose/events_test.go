package compose

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"
	"k8s.io/utils/ptr"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/plan"
	"github.com/fleetnodepool/function-fleetnodepool/fn/providers"
)

func newFunction(o ...Option) *Function {
	return New(append([]Option{WithPlanner(plan.New(plan.WithProviders(providers.All()...))), clockAt(sunday2300)}, o...)...)
}

// reconciled is the request of the reconcile after rsp: the observed XR's
// status is what rsp set, and its conditions as Crossplane writes them
// (with its own Ready and Synced).
func reconciled(req *fnv1.RunFunctionRequest, rsp *fnv1.RunFunctionResponse) *fnv1.RunFunctionRequest {
	next := proto.CloneOf(req)
	st := proto.CloneOf(rsp.GetDesired().GetComposite().GetResource().GetFields()["status"].GetStructValue())
	if st.GetFields() == nil {
		st = &structpb.Struct{Fields: map[string]*structpb.Value{}}
	}
	conds := []any{
		map[string]any{"type": "Synced", "status": "True", "reason": "ReconcileSuccess", "lastTransitionTime": "2026-11-29T22:00:00Z"},
		map[string]any{"type": "Ready", "status": "False", "reason": "Creating", "lastTransitionTime": "2026-11-29T22:00:00Z"},
	}
	for _, c := range rsp.GetConditions() {
		status := "Unknown"
		switch c.GetStatus() {
		case fnv1.Status_STATUS_CONDITION_TRUE:
			status = "True"
		case fnv1.Status_STATUS_CONDITION_FALSE:
			status = "False"
		}
		m := map[string]any{"type": c.GetType(), "status": status, "reason": c.GetReason(), "lastTransitionTime": "2026-11-29T22:00:00Z"}
		if c.Message != nil {
			m["message"] = c.GetMessage()
		}
		conds = append(conds, m)
	}
	st.Fields["conditions"] = mustValue(conds)
	next.Observed.Composite.Resource.Fields["status"] = structpb.NewStructValue(st)
	return next
}

// withStatus is req with the observed XR's status set.
func withStatus(req *fnv1.RunFunctionRequest, status map[string]any) *fnv1.RunFunctionRequest {
	req.Observed.Composite.Resource.Fields["status"] = mustValue(status)
	return req
}

// upToDate is what a reconcile of a settled pool left.
var upToDate = map[string]any{"rollout": map[string]any{"state": "UpToDate"}}

// Pools in each state the events tell, observed up to date.
func settledPool(t *testing.T) *fnv1.RunFunctionRequest {
	t.Helper()
	return withStatus(runningPool(t, newFunction()), upToDate)
}

func startingPool(t *testing.T) *fnv1.RunFunctionRequest {
	t.Helper()
	return withStatus(gatedPool(t, nil), upToDate)
}

func pausedPool(t *testing.T) *fnv1.RunFunctionRequest {
	t.Helper()
	return withStatus(gatedPool(t, map[string]any{"paused": true}), upToDate)
}

func haltedPool(t *testing.T) *fnv1.RunFunctionRequest {
	t.Helper()
	req := soakingPool(t)
	req.Input.Fields["rollouts"].GetStructValue().Fields["halt"] = mustValue(map[string]any{"tolerance": 0})
	return withStatus(req, upToDate)
}

// refusedPool is the settled pool asked to drop a zone that runs nodes.
func refusedPool(t *testing.T) *fnv1.RunFunctionRequest {
	t.Helper()
	req := settledPool(t)
	spec := req.Observed.Composite.Resource.Fields["spec"].GetStructValue()
	spec.Fields["zones"] = mustValue([]any{"eu-west-1a"})
	return req
}

// status is the XR status a response sets.
func status(rsp *fnv1.RunFunctionResponse) map[string]*structpb.Value {
	return rsp.GetDesired().GetComposite().GetResource().GetFields()["status"].GetStructValue().GetFields()
}

func normal(reason, msg string) *fnv1.Result {
	return &fnv1.Result{Severity: fnv1.Severity_SEVERITY_NORMAL, Reason: ptr.To(reason), Message: msg, Target: fnv1.Target_TARGET_COMPOSITE_AND_CLAIM.Enum()}
}

func warning(reason, msg string) *fnv1.Result {
	return &fnv1.Result{Severity: fnv1.Severity_SEVERITY_WARNING, Reason: ptr.To(reason), Message: msg, Target: fnv1.Target_TARGET_COMPOSITE_AND_CLAIM.Enum()}
}

// TestRunFunctionEvents: each transition a human acts on is a result of
// the response that makes it, with what the conditions say.
func TestRunFunctionEvents(t *testing.T) {
	cases := map[string]struct {
		reason string
		req    func(*testing.T) *fnv1.RunFunctionRequest
		// want are the results, from the response and its conditions.
		want func(rsp *fnv1.RunFunctionResponse) []*fnv1.Result
	}{
		"Settled": {
			reason: "A pool up to date, as the last reconcile left it: no result.",
			req:    settledPool,
			want:   func(*fnv1.RunFunctionResponse) []*fnv1.Result { return nil },
		},
		"NewPool": {
			reason: "A brand-new pool (no status yet), created from scratch: up to date, so no result.",
			req:    func(*testing.T) *fnv1.RunFunctionRequest { return newRequest(xrJSON, policyJSON) },
			want:   func(*fnv1.RunFunctionResponse) []*fnv1.Result { return nil },
		},
		"RolloutStarted": {
			reason: "A class change that nothing holds starts rolling: what it replaces, and why.",
			req:    startingPool,
			want: func(rsp *fnv1.RunFunctionResponse) []*fnv1.Result {
				// The new template's name is its content's hash: read it from the change.
				change := func(zone string) string {
					for _, c := range status(rsp)["changes"].GetListValue().GetValues() {
						f := c.GetStructValue().GetFields()
						if o := f["object"].GetStringValue(); o == "MachineDeployment/prod-eu-1-workers-"+zone {
							return o + " (" + f["reasons"].GetListValue().GetValues()[0].GetStringValue() + ")"
						}
					}
					return "no change of " + zone
				}
				return []*fnv1.Result{normal(plan.EventRolloutStarted, "replacing machines: "+change("eu-west-1a")+"; "+change("eu-west-1b"))}
			},
		},
		"RolloutFinished": {
			reason: "A pool the last reconcile left rolling, now rolled out.",
			req: func(t *testing.T) *fnv1.RunFunctionRequest {
				return withStatus(runningPool(t, newFunction()), map[string]any{"rollout": map[string]any{"state": "RollingOut"}})
			},
			want: func(*fnv1.RunFunctionResponse) []*fnv1.Result {
				return []*fnv1.Result{normal(plan.EventRolloutFinished, "every machine of the pool runs its current spec, at v1.33.4")}
			},
		},
		"RolloutHeld": {
			reason: "A class change held by the policy's pause: the hold's reason, and the condition's message.",
			req:    pausedPool,
			want: func(rsp *fnv1.RunFunctionResponse) []*fnv1.Result {
				return []*fnv1.Result{normal(plan.EventRolloutHeld, "Paused: "+condition(rsp, TypeRolloutHeld).GetMessage())}
			},
		},
		"HoldReasonChanged": {
			reason: "A pool held by its window, now by the policy's pause: held again.",
			req: func(t *testing.T) *fnv1.RunFunctionRequest {
				return withStatus(pausedPool(t), map[string]any{"rollout": map[string]any{"state": "Held", "reason": "MaintenanceWindow"}})
			},
			want: func(rsp *fnv1.RunFunctionResponse) []*fnv1.Result {
				return []*fnv1.Result{normal(plan.EventRolloutHeld, "Paused: "+condition(rsp, TypeRolloutHeld).GetMessage())}
			},
		},
		"StillPaused": {
			reason: "A pool the last reconcile left paused, still paused: no result, whatever the old message said.",
			req: func(t *testing.T) *fnv1.RunFunctionRequest {
				return withStatus(pausedPool(t), map[string]any{
					"rollout":    map[string]any{"state": "Held", "reason": "Paused"},
					"conditions": []any{map[string]any{"type": TypeRolloutHeld, "status": "True", "reason": "Paused", "message": "an older message"}},
				})
			},
			want: func(*fnv1.RunFunctionResponse) []*fnv1.Result { return nil },
		},
		"WaveHalted": {
			reason: "A pool behind a wave that failed over its tolerance: a warning naming the failed pools.",
			req:    haltedPool,
			want: func(rsp *fnv1.RunFunctionResponse) []*fnv1.Result {
				return []*fnv1.Result{warning(plan.EventWaveHalted, "Halted: "+condition(rsp, TypeRolloutHeld).GetMessage())}
			},
		},
		"ChangeRefused": {
			reason: "A running zone dropped: a warning with the refusal's reason and message; nothing rolls.",
			req:    refusedPool,
			want: func(rsp *fnv1.RunFunctionResponse) []*fnv1.Result {
				return []*fnv1.Result{warning(plan.EventChangeRefused, "BackingReplaced: "+condition(rsp, TypeChangeRefused).GetMessage())}
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			rsp := answer(t, newFunction(), tc.req(t))
			if diff := cmp.Diff(tc.want(rsp), rsp.GetResults(), protocmp.Transform()); diff != "" {
				t.Errorf("%s\nRunFunction(...).Results: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestSteadyPoolEmitsNothing: a pool reconciled again in the state the
// previous reconcile left emits no result at all, whatever the state, from
// the cache or not.
func TestSteadyPoolEmitsNothing(t *testing.T) {
	cases := map[string]struct {
		reason string
		req    func(*testing.T) *fnv1.RunFunctionRequest
	}{
		"Settled":    {reason: "Up to date.", req: settledPool},
		"NewPool":    {reason: "Created, then reconciled again.", req: func(*testing.T) *fnv1.RunFunctionRequest { return newRequest(xrJSON, policyJSON) }},
		"RollingOut": {reason: "Rolling out.", req: startingPool},
		"Paused":     {reason: "Held by the policy's pause.", req: pausedPool},
		"Halted":     {reason: "Held by a halted wave.", req: haltedPool},
		"Refused":    {reason: "A change refused.", req: refusedPool},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			for _, f := range []*Function{newFunction(), newFunction(WithCacheSize(0))} {
				req := tc.req(t)
				first := answer(t, f, req)
				again := reconciled(req, first)
				for i := range 3 {
					rsp := answer(t, f, again)
					if len(rsp.GetResults()) > 0 {
						t.Errorf("%s\nreconcile %d after the first: want no results, got %v", tc.reason, i+2, rsp.GetResults())
					}
					if diff := cmp.Diff(first.GetDesired(), rsp.GetDesired(), protocmp.Transform()); diff != "" {
						t.Errorf("%s\nreconcile %d after the first: the pool is not steady: -first, +again:\n%s", tc.reason, i+2, diff)
					}
				}
			}
		})
	}
}

// TestChangeRefusedOnce: a refused change is told when it is first refused,
// not on the reconciles while it stays refused; another refused change is
// told again; the counter counts the refusals, not the reconciles.
func TestChangeRefusedOnce(t *testing.T) {
	reg := newRegistry()
	f := newFunction(WithMetrics(reg))
	dropZone := refusedPool(t)
	steps := []struct {
		reason string
		req    func(prev *fnv1.RunFunctionRequest, rsp *fnv1.RunFunctionResponse) *fnv1.RunFunctionRequest
		want   []string
	}{
		{
			reason: "The zone removal is refused: told.",
			req:    func(*fnv1.RunFunctionRequest, *fnv1.RunFunctionResponse) *fnv1.RunFunctionRequest { return dropZone },
			want:   []string{plan.EventChangeRefused},
		},
		{reason: "Still refused: not told again.", req: reconciled},
		{reason: "Still refused, once more: not told again.", req: reconciled},
		{
			reason: "Another change refused (a move to a MachinePool, which deletes both zones): told.",
			req: func(prev *fnv1.RunFunctionRequest, rsp *fnv1.RunFunctionResponse) *fnv1.RunFunctionRequest {
				next := reconciled(prev, rsp)
				spec := next.Observed.Composite.Resource.Fields["spec"].GetStructValue()
				spec.Fields["zones"] = mustValue([]any{"eu-west-1a", "eu-west-1b"})
				spec.Fields["backend"] = structpb.NewStringValue("MachinePool")
				return next
			},
			want: []string{plan.EventChangeRefused},
		},
		{reason: "Still refused: not told again.", req: reconciled},
		{
			reason: "The change reverted: nothing to tell.",
			req: func(prev *fnv1.RunFunctionRequest, rsp *fnv1.RunFunctionResponse) *fnv1.RunFunctionRequest {
				next := reconciled(prev, rsp)
				delete(next.Observed.Composite.Resource.Fields["spec"].GetStructValue().Fields, "backend")
				return next
			},
		},
		{
			reason: "The zone removal again: a new refusal, told.",
			req: func(prev *fnv1.RunFunctionRequest, rsp *fnv1.RunFunctionResponse) *fnv1.RunFunctionRequest {
				next := reconciled(prev, rsp)
				next.Observed.Composite.Resource.Fields["spec"].GetStructValue().Fields["zones"] = mustValue([]any{"eu-west-1a"})
				return next
			},
			want: []string{plan.EventChangeRefused},
		},
	}
	var req *fnv1.RunFunctionRequest
	var rsp *fnv1.RunFunctionResponse
	for i, s := range steps {
		req = s.req(req, rsp)
		rsp = answer(t, f, req)
		var got []string
		for _, r := range rsp.GetResults() {
			got = append(got, r.GetReason())
		}
		if diff := cmp.Diff(s.want, got); diff != "" {
			t.Errorf("step %d: %s\nresults' reasons: -want, +got:\n%s", i, s.reason, diff)
		}
		if c := condition(rsp, TypeChangeRefused); (c.GetStatus() == fnv1.Status_STATUS_CONDITION_TRUE) != (i != 5) {
			t.Errorf("step %d: %s\ncondition ChangeRefused is %v: the condition is state, it stays while the change is refused", i, s.reason, c)
		}
	}
	const want = `
# HELP function_fleetnodepool_changes_refused_total Changes refused because they would delete the backing of a running pool or move it, or its running machine pool cannot make them in place, by reason (BackingReplaced, ClusterChanged, ProviderChanged, CellChanged, ImmutableField): counted when a pool's refusal starts or another change is refused (its ChangeRefused event), not on each reconcile while it lasts.
# TYPE function_fleetnodepool_changes_refused_total counter
function_fleetnodepool_changes_refused_total{reason="BackingReplaced"} 3
function_fleetnodepool_changes_refused_total{reason="CellChanged"} 0
function_fleetnodepool_changes_refused_total{reason="ClusterChanged"} 0
function_fleetnodepool_changes_refused_total{reason="ImmutableField"} 0
function_fleetnodepool_changes_refused_total{reason="ProviderChanged"} 0
`
	if err := testutilCompare(reg, want, "function_fleetnodepool_changes_refused_total"); err != nil {
		t.Errorf("after 3 refusals over 7 reconciles: %v", err)
	}
}

// TestEventsFromTheCache: the events of a pool answered from the plan cache
// are those of the request's observed status, not of the request that
// filled the cache. Of the status, planning reads (and the cache
// fingerprints) the rollout state only: the same state with another hold
// reason is answered from the cache.
func TestEventsFromTheCache(t *testing.T) {
	cached, uncached := newFunction(), newFunction(WithCacheSize(0))
	req := pausedPool(t)
	steps := []struct {
		reason string
		status map[string]any
		hit    bool
		want   []string
	}{
		{reason: "Up to date before: held now.", status: upToDate, want: []string{plan.EventRolloutHeld}},
		{reason: "Held by the window before: held again, planned again (another rollout state).", status: map[string]any{"rollout": map[string]any{"state": "Held", "reason": "MaintenanceWindow"}}, want: []string{plan.EventRolloutHeld}},
		{reason: "Held by the pause before: nothing, from the cache.", status: map[string]any{"rollout": map[string]any{"state": "Held", "reason": "Paused"}}, hit: true},
		{reason: "Rolling out before: held, planned again.", status: map[string]any{"rollout": map[string]any{"state": "RollingOut"}}, want: []string{plan.EventRolloutHeld}},
	}
	for i, s := range steps {
		r := withStatus(proto.CloneOf(req), s.status)
		hits := cached.cache.hits.Load()
		rsp, diff := bothAnswer(t, cached, uncached, r)
		if diff != "" {
			t.Errorf("step %d: %s\nthe cached function's response differs from the uncached one: -uncached, +cached:\n%s", i, s.reason, diff)
		}
		if got := cached.cache.hits.Load() > hits; got != s.hit {
			t.Errorf("step %d: %s\nanswered from the cache: %t, want %t", i, s.reason, got, s.hit)
		}
		var got []string
		for _, r := range rsp.GetResults() {
			got = append(got, r.GetReason())
		}
		if diff := cmp.Diff(s.want, got); diff != "" {
			t.Errorf("step %d: %s\nresults' reasons: -want, +got:\n%s", i, s.reason, diff)
		}
	}
}

func TestObservedState(t *testing.T) {
	xr := func(status string) *fnv1.RunFunctionRequest {
		return &fnv1.RunFunctionRequest{Observed: &fnv1.State{Composite: &fnv1.Resource{Resource: resource.MustStructJSON(
			`{"apiVersion": "fleet.nodepool.dev/v1alpha1", "kind": "FleetNodePool", "metadata": {"name": "workers"}, "status": ` + status + `}`)}}}
	}
	cases := map[string]struct {
		reason string
		req    *fnv1.RunFunctionRequest
		want   plan.PoolState
	}{
		"NoXR": {
			reason: "A request without an observed XR has no state.",
			req:    &fnv1.RunFunctionRequest{},
		},
		"NoStatus": {
			reason: "A brand-new pool has no state.",
			req:    xr(`{}`),
		},
		"UpToDate": {
			reason: "status.rollout.state, and conditions that are False say nothing.",
			req: xr(`{"rollout": {"state": "UpToDate"}, "conditions": [
				{"type": "RolloutHeld", "status": "False", "reason": "NotHeld"},
				{"type": "ChangeRefused", "status": "False", "reason": "ChangeApplied"}]}`),
			want: plan.PoolState{Rollout: v1alpha1.RolloutUpToDate},
		},
		"Held": {
			reason: "A held pool: the reason from status.rollout, the message from condition RolloutHeld.",
			req: xr(`{"rollout": {"state": "Held", "reason": "Soak"}, "conditions": [
				{"type": "Synced", "status": "True", "reason": "ReconcileSuccess"},
				{"type": "RolloutHeld", "status": "True", "reason": "Soak", "message": "soaking until 23:00"}]}`),
			want: plan.PoolState{Rollout: v1alpha1.RolloutHeld, HoldReason: plan.HoldSoak, HoldMessage: "soaking until 23:00"},
		},
		"HeldAsIs": {
			reason: "A pool held as it is (its version unreadable) has no status.rollout: condition RolloutHeld says it is held.",
			req:    xr(`{"conditions": [{"type": "RolloutHeld", "status": "True", "reason": "ControlPlane", "message": "cannot read"}]}`),
			want:   plan.PoolState{Rollout: v1alpha1.RolloutHeld, HoldReason: plan.HoldControlPlane, HoldMessage: "cannot read"},
		},
		"AfterAFatal": {
			reason: "Crossplane set the function's conditions Unknown after a Fatal result: the state before is not known.",
			req: xr(`{"rollout": {"state": "UpToDate"}, "conditions": [
				{"type": "ChangeRefused", "status": "Unknown", "reason": "FatalError"},
				{"type": "RolloutHeld", "status": "Unknown", "reason": "FatalError"}]}`),
			want: plan.PoolState{Rollout: v1alpha1.RolloutUpToDate, Unknown: true},
		},
		"Refused": {
			reason: "A refused change: condition ChangeRefused.",
			req: xr(`{"rollout": {"state": "UpToDate"}, "conditions": [
				{"type": "ChangeRefused", "status": "True", "reason": "BackingReplaced", "message": "no"}]}`),
			want: plan.PoolState{Rollout: v1alpha1.RolloutUpToDate, Refused: true, RefusedReason: plan.ReasonBackingReplaced, RefusedMessage: "no"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, observedState(tc.req)); diff != "" {
				t.Errorf("%s\nobservedState(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestEventsDeterministic: the same request at the same instant gives the
// same bytes, events included.
func TestEventsDeterministic(t *testing.T) {
	for _, req := range []*fnv1.RunFunctionRequest{refusedPool(t), startingPool(t), haltedPool(t)} {
		var prev []byte
		for i := range 5 {
			rsp, err := newFunction().RunFunction(context.Background(), proto.CloneOf(req))
			if err != nil {
				t.Fatal(err)
			}
			if len(rsp.GetResults()) == 0 {
				t.Fatal("the request emits no event: the test does not exercise them")
			}
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(rsp)
			if err != nil {
				t.Fatal(err)
			}
			if i > 0 && string(b) != string(prev) {
				t.Fatalf("RunFunction(...) call %d returned different bytes for the same request: %v", i, rsp.GetResults())
			}
			prev = b
		}
	}
}

func TestSatisfied(t *testing.T) {
	asks := &fnv1.RunFunctionResponse{Requirements: &fnv1.Requirements{Resources: map[string]*fnv1.ResourceSelector{"cluster": {}, "siblings": {}}}}
	cases := map[string]struct {
		reason string
		req    *fnv1.RunFunctionRequest
		rsp    *fnv1.RunFunctionResponse
		want   bool
	}{
		"NothingAsked": {reason: "A response that requires nothing is the reconcile's last call.",
			req: &fnv1.RunFunctionRequest{}, rsp: &fnv1.RunFunctionResponse{}, want: true},
		"AllGiven": {reason: "Every requirement is in the request (one found nothing): Crossplane stops calling, and records these results.",
			req: &fnv1.RunFunctionRequest{RequiredResources: map[string]*fnv1.Resources{"cluster": {Items: []*fnv1.Resource{{}}}, "siblings": {}}}, rsp: asks, want: true},
		"OneMissing": {reason: "A requirement the request does not carry: Crossplane calls again, and these results are never recorded.",
			req: &fnv1.RunFunctionRequest{RequiredResources: map[string]*fnv1.Resources{"cluster": {}}}, rsp: asks},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := satisfied(tc.req, tc.rsp); got != tc.want {
				t.Errorf("%s\nsatisfied(...): want %t, got %t", tc.reason, tc.want, got)
			}
		})
	}
}
