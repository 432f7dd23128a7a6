package compose

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"

	"github.com/fleetnodepool/function-fleetnodepool/fn/plan"
	"github.com/fleetnodepool/function-fleetnodepool/fn/providers"
)

// sunday2300 is Sunday 2026-11-29 23:00 UTC.
var sunday2300 = time.Date(2026, time.November, 29, 23, 0, 0, 0, time.UTC)

func clockAt(t time.Time) Option { return WithClock(func() time.Time { return t }) }

// gatedPool is the AWS example running, changed to another class (a
// disruptive change), in a Cluster whose MachineDeployments and
// MachinePools are known, with the policy's rollouts set.
func gatedPool(t *testing.T, rollouts map[string]any, siblings ...*fnv1.Resource) *fnv1.RunFunctionRequest {
	t.Helper()
	req := rollingPool(t, New(WithPlanner(plan.New(plan.WithProviders(providers.All()...))), clockAt(sunday2300)))
	req.Input.Fields["rollouts"] = mustValue(rollouts)
	req.RequiredResources[requirementMachineDeployments] = &fnv1.Resources{Items: siblings}
	req.RequiredResources[requirementMachinePools] = &fnv1.Resources{}
	return req
}

// otherPool is a MachineDeployment of another pool of the Cluster, rolling.
func otherPool() *fnv1.Resource {
	return &fnv1.Resource{Resource: mustStruct(map[string]any{
		"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "MachineDeployment",
		"metadata": map[string]any{"name": "prod-eu-1-other", "namespace": "team-a", "generation": 3,
			"labels": map[string]any{"cluster.x-k8s.io/cluster-name": "prod-eu-1", "fleet.nodepool.dev/pool": "other"}},
		"status": map[string]any{"observedGeneration": 3, "replicas": 3, "upToDateReplicas": 1},
	})}
}

func condition(rsp *fnv1.RunFunctionResponse, typ string) *fnv1.Condition {
	for _, c := range rsp.GetConditions() {
		if c.GetType() == typ {
			return c
		}
	}
	return nil
}

// TestRolloutHeldCondition: each hold shows on the RolloutHeld condition
// and status.rollout, and the response's TTL calls again when what the pool
// waits for may have moved.
func TestRolloutHeldCondition(t *testing.T) {
	saturday := map[string]any{"name": "saturday", "days": []any{"Saturday"}, "start": "22:00", "duration": "4h"}
	soon := map[string]any{"name": "soon", "start": "23:00", "duration": "1h"} // Opens 30s after the clock below.
	type want struct {
		Status fnv1.Status
		Reason string
		State  string
		TTL    time.Duration
	}
	cases := map[string]struct {
		reason   string
		rollouts map[string]any
		siblings []*fnv1.Resource
		at       time.Time
		want     want
	}{
		"NotHeld": {
			reason: "Nothing holds the change: it starts rolling out, and Crossplane calls at its poll.",
			want:   want{fnv1.Status_STATUS_CONDITION_FALSE, "NotHeld", "RollingOut", time.Minute},
		},
		"Paused": {
			reason:   "The policy's pause holds it.",
			rollouts: map[string]any{"paused": true},
			want:     want{fnv1.Status_STATUS_CONDITION_TRUE, plan.HoldPaused, "Held", time.Minute},
		},
		"WindowFarAway": {
			reason:   "Held until Saturday's window: the poll is sooner than the opening.",
			rollouts: map[string]any{"maintenanceWindows": []any{saturday}, "defaultMaintenanceWindow": "saturday"},
			want:     want{fnv1.Status_STATUS_CONDITION_TRUE, plan.HoldMaintenanceWindow, "Held", time.Minute},
		},
		"WindowOpensSoon": {
			reason:   "Held until a window that opens in 30s: Crossplane calls again at the opening.",
			rollouts: map[string]any{"maintenanceWindows": []any{soon}, "defaultMaintenanceWindow": "soon"},
			at:       sunday2300.Add(-30 * time.Second),
			want:     want{fnv1.Status_STATUS_CONDITION_TRUE, plan.HoldMaintenanceWindow, "Held", 30 * time.Second},
		},
		"Queued": {
			reason:   "Another pool of the Cluster rolls: the pool takes its place in the queue and looks again in seconds.",
			siblings: []*fnv1.Resource{otherPool()},
			want:     want{fnv1.Status_STATUS_CONDITION_TRUE, plan.HoldConcurrency, "Held", 5 * time.Second},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			at := tc.at
			if at.IsZero() {
				at = sunday2300
			}
			f := New(WithPlanner(plan.New(plan.WithProviders(providers.All()...))), clockAt(at))
			rsp, err := f.RunFunction(context.Background(), gatedPool(t, tc.rollouts, tc.siblings...))
			if err != nil {
				t.Fatal(err)
			}
			if rsp.GetRequirements().GetResources()[requirementMachineDeployments] == nil {
				t.Errorf("%s\na pool with a disruptive change to start does not require its Cluster's MachineDeployments", tc.reason)
			}
			c := condition(rsp, TypeRolloutHeld)
			state := rsp.GetDesired().GetComposite().GetResource().GetFields()["status"].GetStructValue().GetFields()["rollout"].GetStructValue().GetFields()["state"].GetStringValue()
			got := want{c.GetStatus(), c.GetReason(), state, rsp.GetMeta().GetTtl().AsDuration()}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\n-want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestCacheWakesAtWindow: a cached plan held for a window is not served
// after the window opens, and every answer is what an uncached function
// gives at the same instant.
func TestCacheWakesAtWindow(t *testing.T) {
	soon := map[string]any{"name": "soon", "start": "23:00", "duration": "1h"}
	req := gatedPool(t, map[string]any{"maintenanceWindows": []any{soon}, "defaultMaintenanceWindow": "soon"})
	now := sunday2300.Add(-10 * time.Second)
	clock := WithClock(func() time.Time { return now })
	cached := New(WithPlanner(plan.New(plan.WithProviders(providers.All()...))), clock)
	uncached := New(WithPlanner(plan.New(plan.WithProviders(providers.All()...))), clock, WithCacheSize(0))
	wantTTL := map[time.Time]time.Duration{now: 10 * time.Second, now.Add(5 * time.Second): 5 * time.Second}
	for _, at := range []time.Time{now, now.Add(5 * time.Second), now.Add(11 * time.Second)} {
		now = at
		got, diff := bothAnswer(t, cached, uncached, req)
		if diff != "" {
			t.Errorf("at %s the cached answer differs from planning anew: -want, +got:\n%s", at, diff)
		}
		held := condition(got, TypeRolloutHeld).GetStatus() == fnv1.Status_STATUS_CONDITION_TRUE
		if open := !at.Before(sunday2300); held == open {
			t.Errorf("at %s: held %t, want %t (the window opens at %s)", at, held, !open, sunday2300)
		}
		if ttl, ok := wantTTL[at]; ok && !proto.Equal(got.GetMeta().GetTtl(), durationpb.New(ttl)) {
			t.Errorf("at %s: TTL %s, want %s (until the window opens)", at, got.GetMeta().GetTtl().AsDuration(), ttl)
		}
	}
}

// TestSiblingsRead: the Cluster's MachineDeployments, MachinePools and
// MachineSets are read by their pool label; the pool's own MachineSets are
// found by their MachineDeployment even without one.
func TestSiblingsRead(t *testing.T) {
	md := func(name, pool, since string) *fnv1.Resource {
		return &fnv1.Resource{Resource: mustStruct(map[string]any{
			"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "MachineDeployment",
			"metadata": map[string]any{"name": name, "generation": 2, "labels": map[string]any{"fleet.nodepool.dev/pool": pool},
				"annotations": map[string]any{plan.AnnotationQueuedSince: since}},
			"status": map[string]any{"observedGeneration": 2},
		})}
	}
	ms := func(md, pool string, replicas float64) *fnv1.Resource {
		labels := map[string]any{"cluster.x-k8s.io/deployment-name": md}
		if pool != "" {
			labels["fleet.nodepool.dev/pool"] = pool
		}
		return &fnv1.Resource{Resource: mustStruct(map[string]any{
			"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "MachineSet",
			"metadata": map[string]any{"name": md + "-x", "labels": labels},
			"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"version": "v1.33.4", "infrastructureRef": map[string]any{"name": "i"},
				"bootstrap": map[string]any{"configRef": map[string]any{"name": "b"}}}}},
			"status": map[string]any{"replicas": replicas},
		})}
	}
	req := &fnv1.RunFunctionRequest{RequiredResources: map[string]*fnv1.Resources{
		requirementMachineSets:        {Items: []*fnv1.Resource{ms("c-workers-a", "", 2), ms("c-other", "other", 1), ms("c-legacy", "", 3)}},
		requirementMachineDeployments: {Items: []*fnv1.Resource{md("c-workers-a", "workers", ""), md("c-other", "other", "2026-11-29T22:00:00Z")}},
		requirementMachinePools:       {},
	}}
	observed := map[string]plan.Observed{"machinedeployment-a": {Name: "c-workers-a", Version: "v1.33.4"}}
	own, siblings := pools(req, "workers", observed)
	wantOwn := map[string][]plan.MachineSet{"c-workers-a": {{Version: "v1.33.4", Infra: "i", Bootstrap: "b", Replicas: 2}}}
	wantSiblings := []plan.Sibling{{Pool: "other", MachineSets: map[string][]plan.MachineSet{"c-other": {{Version: "v1.33.4", Infra: "i", Bootstrap: "b", Replicas: 1}}},
		Backings: []plan.Observed{{APIVersion: "cluster.x-k8s.io/v1beta2", Kind: "MachineDeployment", Name: "c-other", Generation: 2, ObservedGeneration: 2, QueuedSince: "2026-11-29T22:00:00Z"}}}}
	if diff := cmp.Diff(wantOwn, own); diff != "" {
		t.Errorf("own MachineSets: -want, +got:\n%s", diff)
	}
	ignoreLoad := cmp.Transformer("NoLoad", func(o plan.Observed) plan.Observed { o.Load = nil; return o })
	if diff := cmp.Diff(wantSiblings, siblings, ignoreLoad); diff != "" {
		t.Errorf("siblings: -want, +got:\n%s", diff)
	}
	delete(req.RequiredResources, requirementMachinePools)
	if _, s := pools(req, "workers", observed); s != nil {
		t.Errorf("siblings before the MachinePools are fetched: got %v, want nil (unknown)", s)
	}
}

// TestWaveRequirements: a pool with a change to start requires the markers
// of the waves before its own, in every namespace, and holds until it has
// read them.
func TestWaveRequirements(t *testing.T) {
	waves := map[string]any{"waves": []any{map[string]any{"name": "canary", "poolSelector": map[string]any{"matchLabels": map[string]any{"ring": "0"}}}}}
	stale := &fnv1.Resource{Resource: mustStruct(map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "c-a-rollout", "namespace": "team-b", "labels": map[string]any{"fleet.nodepool.dev/pool": "a"}},
		"data":     map[string]any{"target": "an-older-target", "state": "Settled", "since": "2026-11-29T20:00:00Z"},
	})}
	cases := map[string]struct {
		reason  string
		markers *fnv1.Resources
		want    string
	}{
		"NotFetched": {reason: "Until Crossplane fetched the canary markers, the change holds.", want: plan.HoldWave},
		"NoCanary":   {reason: "A canary wave with no pools holds nothing back.", markers: &fnv1.Resources{}, want: "NotHeld"},
		"CanaryBehind": {
			reason:  "A canary pool at an older target holds the change.",
			markers: &fnv1.Resources{Items: []*fnv1.Resource{stale}}, want: plan.HoldWave,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			req := gatedPool(t, waves)
			if tc.markers != nil {
				req.RequiredResources[requirementWavePrefix+"canary"] = tc.markers
			}
			f := New(WithPlanner(plan.New(plan.WithProviders(providers.All()...))), clockAt(sunday2300))
			rsp, err := f.RunFunction(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			want := &fnv1.ResourceSelector{ApiVersion: "v1", Kind: "ConfigMap", Match: &fnv1.ResourceSelector_MatchLabels{MatchLabels: &fnv1.MatchLabels{
				Labels: map[string]string{plan.LabelFleet: plan.DefaultFleet, plan.LabelWave: "canary"}}}}
			if diff := cmp.Diff(want, rsp.GetRequirements().GetResources()[requirementWavePrefix+"canary"], protocmp.Transform()); diff != "" {
				t.Errorf("%s\nthe canary markers' requirement: -want, +got:\n%s", tc.reason, diff)
			}
			if got := condition(rsp, TypeRolloutHeld).GetReason(); got != tc.want {
				t.Errorf("%s\nRolloutHeld reason %q, want %q", tc.reason, got, tc.want)
			}
		})
	}
}

// TestMachineSetsRequired: a settled pool does not require its
// MachineSets, so their status changes do not wake it; a pool with a change
// to start, a MachineDeployment rolling, or a max node age does. Either way Crossplane's
// requirement loop settles: called again with what the answer asked for,
// the function asks for the same and answers the same.
func TestMachineSetsRequired(t *testing.T) {
	f := New(WithPlanner(plan.New(plan.WithProviders(providers.All()...))), clockAt(sunday2300))
	cases := map[string]struct {
		reason string
		req    func(t *testing.T) *fnv1.RunFunctionRequest
		want   bool
	}{
		"Settled": {
			reason: "Nothing to release, nothing rolling, no change to start, no max node age: the MachineSets cannot change the plan.",
			req: func(t *testing.T) *fnv1.RunFunctionRequest {
				req := runningPool(t, f)
				delete(req.GetInput().GetFields(), "rotation")
				return req
			},
			want: false,
		},
		"MaxNodeAge": {
			reason: "A settled pool with a max node age reads its MachineSets: their age says when it rotates.",
			req:    func(t *testing.T) *fnv1.RunFunctionRequest { return runningPool(t, f) },
			want:   true,
		},
		"ChangeToStart": {
			reason: "A class change to start: the gates read the Cluster's MachineSets.",
			req: func(t *testing.T) *fnv1.RunFunctionRequest {
				req := rollingPool(t, f)
				req.RequiredResources[requirementMachineDeployments] = &fnv1.Resources{}
				req.RequiredResources[requirementMachinePools] = &fnv1.Resources{}
				return req
			},
			want: true,
		},
		"Rolling": {
			reason: "A MachineDeployment still replaces machines: its MachineSets say which templates are in use.",
			req: func(t *testing.T) *fnv1.RunFunctionRequest {
				req := runningPool(t, f)
				for k, r := range req.GetObserved().GetResources() {
					if strings.HasPrefix(k, "machinedeployment-") {
						r.GetResource().GetFields()["status"].GetStructValue().GetFields()["upToDateReplicas"] = structpb.NewNumberValue(1)
					}
				}
				return req
			},
			want: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			req := tc.req(t)
			first := answer(t, f, req)
			_, got := first.GetRequirements().GetResources()[requirementMachineSets]
			if got != tc.want {
				t.Errorf("%s\nrequires MachineSets: %t, want %t", tc.reason, got, tc.want)
			}
			// Crossplane calls again with what the answer asked for.
			if !got {
				delete(req.RequiredResources, requirementMachineSets)
			}
			second := answer(t, f, req)
			if diff := cmp.Diff(first, second, protocmp.Transform()); diff != "" {
				t.Errorf("%s\ncalled again with what it asked for, the function answers otherwise: -first, +second:\n%s", tc.reason, diff)
			}
		})
	}
}
