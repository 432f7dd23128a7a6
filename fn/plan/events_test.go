package plan

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
)

func TestEvents(t *testing.T) {
	const (
		window = "holding the pool's disruptive change until its maintenance window weeknights opens"
		queue  = "waiting its turn: 1 pool(s) of Cluster prod-eu-1 may roll at once"
		halted = "holding the pool's disruptive change: wave canary failed: pools team-a/workers"
		backed = "the change would delete prod-eu-1-workers-eu-west-1b, which run nodes: nothing was changed"
		moved  = "the pool runs on Cluster prod-eu-1, and cannot move to prod-eu-2"
	)
	upToDate := PoolState{Rollout: v1alpha1.RolloutUpToDate, Version: "v1.34.1"}
	rolling := PoolState{Rollout: v1alpha1.RolloutRollingOut, Rolling: []string{"prod-eu-1-workers-eu-west-1a"}}
	starting := PoolState{Rollout: v1alpha1.RolloutRollingOut, Changes: []v1alpha1.Change{
		{Object: "MachineDeployment/prod-eu-1-workers-eu-west-1a", Action: v1alpha1.ChangeReplace, Reasons: []string{"version v1.33.4 -> v1.34.1", "infrastructureRef a -> b"}},
		{Object: "MachineDeployment/prod-eu-1-workers-eu-west-1b", Action: v1alpha1.ChangeInPlace, Reasons: []string{"replicas 2 -> 3"}},
		{Object: "MachineDeployment/prod-eu-1-workers-eu-west-1c", Action: v1alpha1.ChangeReplace},
	}}
	held := func(reason, msg string) PoolState {
		return PoolState{Rollout: v1alpha1.RolloutHeld, HoldReason: reason, HoldMessage: msg}
	}
	refused := func(s PoolState, reason, msg string) PoolState {
		s.Refused, s.RefusedReason, s.RefusedMessage = true, reason, msg
		return s
	}
	cases := map[string]struct {
		reason     string
		prev, next PoolState
		want       []Event
	}{
		"SteadyUpToDate": {
			reason: "A pool up to date, as it was: nothing happened.",
			prev:   upToDate, next: upToDate,
		},
		"Queued": {
			reason: "A pool taking its place in its Cluster's queue is held for seconds: no event; it starts, or a hold that lasts follows.",
			prev:   upToDate, next: PoolState{Rollout: v1alpha1.RolloutHeld, HoldReason: HoldConcurrency, HoldMessage: queue, HoldTransient: true},
		},
		"AfterAFatal": {
			reason: "Crossplane reset the conditions after a Fatal result: what the pool was is not known, so a refusal still there is not announced again.",
			prev:   PoolState{Rollout: v1alpha1.RolloutUpToDate, Unknown: true}, next: refused(upToDate, ReasonBackingReplaced, backed),
		},
		"SteadyRolling": {
			reason: "A pool still rolling: the rollout's start was told already.",
			prev:   rolling, next: rolling,
		},
		"SteadyHeld": {
			reason: "A pool still held for the same reason: nothing new, though the message moved (its place in the queue).",
			prev:   held(HoldConcurrency, queue+" (2 ahead)"), next: held(HoldConcurrency, queue+" (1 ahead)"),
		},
		"SteadyHalted": {
			reason: "A pool still held by the same halt: the warning was given already.",
			prev:   held(HoldHalted, halted), next: held(HoldHalted, halted),
		},
		"SteadyRefused": {
			reason: "A change still refused, with the same message: the warning was given already.",
			prev:   refused(upToDate, ReasonBackingReplaced, backed), next: refused(upToDate, ReasonBackingReplaced, backed),
		},
		"Started": {
			reason: "Up to date, then rolling: the rollout starts, naming what it replaces and why; changes in place are left out.",
			prev:   upToDate, next: starting,
			want: []Event{{Reason: EventRolloutStarted, Message: "replacing machines: " +
				"MachineDeployment/prod-eu-1-workers-eu-west-1a (version v1.33.4 -> v1.34.1, infrastructureRef a -> b); MachineDeployment/prod-eu-1-workers-eu-west-1c"}},
		},
		"StartedWithoutChanges": {
			reason: "A pool found rolling without a change of this plan (Cluster API has not caught up yet) names what rolls.",
			prev:   upToDate, next: rolling,
			want: []Event{{Reason: EventRolloutStarted, Message: "rolling out: prod-eu-1-workers-eu-west-1a"}},
		},
		"StartedWhenReleased": {
			reason: "A held change that starts is a rollout that starts.",
			prev:   held(HoldMaintenanceWindow, window), next: starting,
			want: []Event{{Reason: EventRolloutStarted, Message: "replacing machines: " +
				"MachineDeployment/prod-eu-1-workers-eu-west-1a (version v1.33.4 -> v1.34.1, infrastructureRef a -> b); MachineDeployment/prod-eu-1-workers-eu-west-1c"}},
		},
		"Finished": {
			reason: "Rolling, then up to date: the rollout finished, at the version the pool runs.",
			prev:   rolling, next: upToDate,
			want: []Event{{Reason: EventRolloutFinished, Message: "every machine of the pool runs its current spec, at v1.34.1"}},
		},
		"HeldChangeDropped": {
			reason: "A held change reverted before it started: the pool is up to date, and no rollout finished.",
			prev:   held(HoldPaused, "paused"), next: upToDate,
		},
		"Held": {
			reason: "Up to date, then a change held: the message names the hold and says what the pool waits for.",
			prev:   upToDate, next: held(HoldMaintenanceWindow, window),
			want: []Event{{Reason: EventRolloutHeld, Message: "MaintenanceWindow: " + window}},
		},
		"HeldWhileRolling": {
			reason: "A new change held while the pool rolls: held.",
			prev:   rolling, next: held(HoldConcurrency, queue),
			want: []Event{{Reason: EventRolloutHeld, Message: "Concurrency: " + queue}},
		},
		"HoldReasonChanged": {
			reason: "Held by the window, then by the queue: held again, for the new reason.",
			prev:   held(HoldMaintenanceWindow, window), next: held(HoldConcurrency, queue),
			want: []Event{{Reason: EventRolloutHeld, Message: "Concurrency: " + queue}},
		},
		"Halted": {
			reason: "Waiting for a wave, then the wave failed: a warning, not a hold like the others.",
			prev:   held(HoldWave, "waiting for wave canary"), next: held(HoldHalted, halted),
			want: []Event{{Warning: true, Reason: EventWaveHalted, Message: "Halted: " + halted}},
		},
		"HaltLifted": {
			reason: "Halted, then waiting for the wave's soak: held for the new reason, as information.",
			prev:   held(HoldHalted, halted), next: held(HoldSoak, "soaking"),
			want: []Event{{Reason: EventRolloutHeld, Message: "Soak: soaking"}},
		},
		"HeldWithoutMessage": {
			reason: "A hold without a message is named by its reason alone.",
			prev:   upToDate, next: held(HoldControlPlane, ""),
			want: []Event{{Reason: EventRolloutHeld, Message: "ControlPlane"}},
		},
		"Refused": {
			reason: "A change refused: a warning naming the refusal, and how to make the change anyway.",
			prev:   upToDate, next: refused(upToDate, ReasonBackingReplaced, backed),
			want: []Event{{Warning: true, Reason: EventChangeRefused, Message: "BackingReplaced: " + backed}},
		},
		"AnotherChangeRefused": {
			reason: "A refused change replaced by another refused one: the new one is told.",
			prev:   refused(upToDate, ReasonBackingReplaced, backed), next: refused(upToDate, ReasonClusterChanged, moved),
			want: []Event{{Warning: true, Reason: EventChangeRefused, Message: "ClusterChanged: " + moved}},
		},
		"RefusalEnded": {
			reason: "A refused change reverted: nothing to act on.",
			prev:   refused(upToDate, ReasonBackingReplaced, backed), next: upToDate,
		},
		"RolloutAndRefusal": {
			reason: "Both at once: the rollout's event first, then the refusal's.",
			prev:   upToDate, next: refused(held(HoldPaused, "paused"), ReasonBackingReplaced, backed),
			want: []Event{
				{Reason: EventRolloutHeld, Message: "Paused: paused"},
				{Warning: true, Reason: EventChangeRefused, Message: "BackingReplaced: " + backed},
			},
		},
		"NewPoolUpToDate": {
			reason: "A brand-new pool, up to date (created from scratch): nothing to tell.",
			prev:   PoolState{}, next: upToDate,
		},
		"NewPoolHeld": {
			reason: "A brand-new pool whose first plan holds a change: held.",
			prev:   PoolState{}, next: held(HoldControlPlane, "holding the pool at v1.33.4"),
			want: []Event{{Reason: EventRolloutHeld, Message: "ControlPlane: holding the pool at v1.33.4"}},
		},
		"NewPoolRolling": {
			reason: "A brand-new pool found rolling (its objects existed): the rollout starts.",
			prev:   PoolState{}, next: rolling,
			want: []Event{{Reason: EventRolloutStarted, Message: "rolling out: prod-eu-1-workers-eu-west-1a"}},
		},
		"NewPoolRefused": {
			reason: "A brand-new pool refused a change: the warning.",
			prev:   PoolState{}, next: refused(upToDate, ReasonProviderChanged, moved),
			want: []Event{{Warning: true, Reason: EventChangeRefused, Message: "ProviderChanged: " + moved}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := Events(tc.prev, tc.next)
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\nEvents(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestEventsOfEveryStateSteady: whatever the state, the same state again
// emits nothing: a pool reconciled over and over tells each transition once.
func TestEventsOfEveryStateSteady(t *testing.T) {
	states := []PoolState{{}}
	for _, r := range []v1alpha1.RolloutState{v1alpha1.RolloutUpToDate, v1alpha1.RolloutRollingOut} {
		states = append(states, PoolState{Rollout: r})
	}
	for _, h := range []string{HoldPaused, HoldDeferred, HoldMaintenanceWindow, HoldConcurrency, HoldSequence, HoldControlPlane, HoldWave, HoldSoak, HoldHalted, HoldAwaitingApproval} {
		states = append(states, PoolState{Rollout: v1alpha1.RolloutHeld, HoldReason: h, HoldMessage: "why"})
	}
	for _, s := range states {
		r := s
		r.Refused, r.RefusedReason, r.RefusedMessage = true, ReasonBackingReplaced, "why"
		for _, s := range []PoolState{s, r} {
			if got := Events(s, s); len(got) > 0 {
				t.Errorf("Events(%+v, the same): want none, got %+v", s, got)
			}
		}
	}
}

func TestPlanState(t *testing.T) {
	cases := map[string]struct {
		reason string
		p      *Plan
		want   PoolState
	}{
		"UpToDate": {
			reason: "A settled plan: its status's state and version.",
			p:      &Plan{Status: v1alpha1.FleetNodePoolStatus{Version: "v1.33.4", Rollout: &v1alpha1.RolloutStatus{State: v1alpha1.RolloutUpToDate}}},
			want:   PoolState{Rollout: v1alpha1.RolloutUpToDate, Version: "v1.33.4"},
		},
		"Held": {
			reason: "A held plan: the hold's reason and message (condition RolloutHeld).",
			p: &Plan{
				Status: v1alpha1.FleetNodePoolStatus{Rollout: &v1alpha1.RolloutStatus{State: v1alpha1.RolloutHeld, Reason: HoldPaused}},
				Hold:   &Hold{Reason: HoldPaused, Message: "paused"},
			},
			want: PoolState{Rollout: v1alpha1.RolloutHeld, HoldReason: HoldPaused, HoldMessage: "paused"},
		},
		"Queued": {
			reason: "A transient hold (the pool takes its place in the queue) says so.",
			p: &Plan{
				Status: v1alpha1.FleetNodePoolStatus{Rollout: &v1alpha1.RolloutStatus{State: v1alpha1.RolloutHeld, Reason: HoldConcurrency}},
				Hold:   &Hold{Reason: HoldConcurrency, Message: "queued", Transient: true},
			},
			want: PoolState{Rollout: v1alpha1.RolloutHeld, HoldReason: HoldConcurrency, HoldMessage: "queued", HoldTransient: true},
		},
		"RollingWhileVersionHeld": {
			reason: "A pool that holds its version for its control plane and rolls its class change is rolling out, as its status says.",
			p: &Plan{
				Status: v1alpha1.FleetNodePoolStatus{Rollout: &v1alpha1.RolloutStatus{State: v1alpha1.RolloutRollingOut}},
				Hold:   &Hold{Reason: HoldControlPlane, Message: "holding the version", VersionOnly: true},
			},
			want: PoolState{Rollout: v1alpha1.RolloutRollingOut},
		},
		"HeldAsIs": {
			reason: "A pool held as it is (its version unreadable) has no status.rollout: its hold says it is held.",
			p:      &Plan{Hold: &Hold{Reason: HoldControlPlane, Message: "cannot read"}},
			want:   PoolState{Rollout: v1alpha1.RolloutHeld, HoldReason: HoldControlPlane, HoldMessage: "cannot read"},
		},
		"Refused": {
			reason: "A refused plan: the refusal's reason and message (condition ChangeRefused), what rolls and what would change.",
			p: &Plan{
				Status:  v1alpha1.FleetNodePoolStatus{Rollout: &v1alpha1.RolloutStatus{State: v1alpha1.RolloutRollingOut}, Changes: []v1alpha1.Change{{Object: "MachineDeployment/a"}}},
				Rolling: []string{"a"},
				Refused: &Refusal{Reason: ReasonBackingReplaced, Message: "no"},
			},
			want: PoolState{
				Rollout: v1alpha1.RolloutRollingOut, Refused: true, RefusedReason: ReasonBackingReplaced, RefusedMessage: "no",
				Changes: []v1alpha1.Change{{Object: "MachineDeployment/a"}}, Rolling: []string{"a"},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.p.State()); diff != "" {
				t.Errorf("%s\nState(): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestRefusedChangeStartsNoRollout: a disruptive change refused with
// another (a class change and a running zone removed) keeps what runs, so
// the pool is not rolling out: its status, and so its events, say so.
func TestRefusedChangeStartsNoRollout(t *testing.T) {
	v1 := mustPlan(t, input())
	obs := observe(t, v1, 2)
	p := mustPlan(t, input(func(in *Input) {
		in.Observed, in.MachineSets = obs, map[string][]MachineSet{}
		in.Spec.Machine.Class, in.Spec.Zones = "large", []string{"eu-west-1a"}
	}))
	if p.Refused == nil {
		t.Fatal("the change was not refused: the test does not exercise a refusal")
	}
	got := Events(PoolState{Rollout: v1alpha1.RolloutUpToDate}, p.State())
	want := []Event{{Warning: true, Reason: EventChangeRefused, Message: ReasonBackingReplaced + ": " + p.Refused.Message}}
	if diff := cmp.Diff(v1alpha1.RolloutUpToDate, p.Status.Rollout.State); diff != "" {
		t.Errorf("status.rollout.state of a refused change: -want, +got:\n%s", diff)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Events(...) of a refused change: -want, +got:\n%s", diff)
	}
}
