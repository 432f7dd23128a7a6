package plan

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/apis/input/v1beta1"
)

// threeWaves orders pools by their Cluster's env label: dev, then staging;
// production is in no wave, so last. Staging soaks an hour; production
// needs approval... of nothing: it is in no wave.
func threeWaves(mods ...func(*v1beta1.RolloutPolicy)) func(*Input) {
	return rollouts(func(r *v1beta1.RolloutPolicy) {
		r.Waves = []v1beta1.Wave{
			{Name: "canary", ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "dev"}}, Soak: metav1.Duration{Duration: 30 * time.Minute}},
			{Name: "staging", ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "staging"}}, Soak: metav1.Duration{Duration: time.Hour}},
		}
		r.Halt = &v1beta1.HaltPolicy{Timeout: &metav1.Duration{Duration: 2 * time.Hour}}
		for _, m := range mods {
			m(r)
		}
	})
}

func inEnv(env string) func(*Input) {
	return func(in *Input) { in.Cluster.Labels = map[string]string{"env": env} }
}

// settled is a marker of a pool at the target since the given time.
func settled(pool, target string, since time.Time) Marker {
	return Marker{Namespace: "team-b", Pool: pool, Target: target, State: MarkerSettled, Since: since}
}

// TestWaves plans a disruptive change of a running pool against the
// markers of the waves before its own.
func TestWaves(t *testing.T) {
	const target = "t2"
	longAgo := testNow.Add(-24 * time.Hour)
	type want struct {
		Reason    string
		Wave      string
		NextStart time.Time
	}
	cases := map[string]struct {
		reason string
		mods   []func(*Input)
		fleet  map[string][]Marker
		want   want
	}{
		"FirstWave": {
			reason: "The first wave waits for no one.",
			mods:   []func(*Input){threeWaves(), inEnv("dev")},
			want:   want{Wave: "canary"},
		},
		"EarlierWaveUnknown": {
			reason: "Until the earlier waves' markers are fetched, a later wave holds: fail closed.",
			mods:   []func(*Input){threeWaves(), inEnv("staging")},
			want:   want{Reason: HoldWave, Wave: "staging"},
		},
		"EarlierWaveDone": {
			reason: "Canary at the target and soaked: staging starts.",
			mods:   []func(*Input){threeWaves(), inEnv("staging")},
			fleet:  map[string][]Marker{"canary": {settled("a", target, longAgo)}},
			want:   want{Wave: "staging"},
		},
		"EarlierWaveNotAtTarget": {
			reason: "A canary pool still at the previous target holds staging.",
			mods:   []func(*Input){threeWaves(), inEnv("staging")},
			fleet:  map[string][]Marker{"canary": {settled("a", "t1", longAgo)}},
			want:   want{Reason: HoldWave, Wave: "staging"},
		},
		"EarlierWaveRolling": {
			reason: "A canary pool still rolling holds staging.",
			mods:   []func(*Input){threeWaves(), inEnv("staging")},
			fleet:  map[string][]Marker{"canary": {{Pool: "a", Target: target, State: MarkerRolling, StartedAt: testNow}}},
			want:   want{Reason: HoldWave, Wave: "staging"},
		},
		"Soaking": {
			reason: "Canary settled 10 minutes ago soaks 30: staging starts in 20 minutes, and wakes then.",
			mods:   []func(*Input){threeWaves(), inEnv("staging")},
			fleet:  map[string][]Marker{"canary": {settled("a", target, testNow.Add(-10*time.Minute))}},
			want:   want{Reason: HoldSoak, Wave: "staging", NextStart: testNow.Add(20 * time.Minute)},
		},
		"LastWaveWaitsForAll": {
			reason: "A pool in no wave goes last: it waits for staging too.",
			mods:   []func(*Input){threeWaves(), inEnv("prod")},
			fleet: map[string][]Marker{
				"canary":  {settled("a", target, longAgo)},
				"staging": {settled("b", target, testNow.Add(-30*time.Minute))},
			},
			want: want{Reason: HoldSoak, Wave: noWave, NextStart: testNow.Add(30 * time.Minute)},
		},
		"Halted": {
			reason: "A failed canary pool halts the later waves.",
			mods:   []func(*Input){threeWaves(), inEnv("staging")},
			fleet:  map[string][]Marker{"canary": {settled("a", target, longAgo), {Pool: "b", Target: target, State: MarkerFailed}}},
			want:   want{Reason: HoldHalted, Wave: "staging"},
		},
		"Tolerated": {
			reason: "With a tolerance of 50%, one failed canary pool of two does not halt staging.",
			mods: []func(*Input){threeWaves(func(r *v1beta1.RolloutPolicy) {
				r.Halt.Tolerance = ptr.To(intstr.FromString("50%"))
			}), inEnv("staging")},
			fleet: map[string][]Marker{"canary": {settled("a", target, longAgo), {Pool: "b", Target: target, State: MarkerFailed}}},
			want:  want{Wave: "staging"},
		},
		"AwaitingApproval": {
			reason: "A wave that requires approval holds until the policy approves its target.",
			mods:   []func(*Input){threeWaves(func(r *v1beta1.RolloutPolicy) { r.Waves[0].RequireApproval = true }), inEnv("dev")},
			want:   want{Reason: HoldAwaitingApproval, Wave: "canary"},
		},
		"Approved": {
			reason: "Approved for its target, the wave starts.",
			mods: []func(*Input){threeWaves(func(r *v1beta1.RolloutPolicy) {
				r.Waves[0].RequireApproval = true
				r.Approvals = map[string]string{"canary": target}
			}), inEnv("dev")},
			want: want{Wave: "canary"},
		},
		"PoolSelector": {
			reason: "A pool's own labels select its wave too.",
			mods: []func(*Input){threeWaves(func(r *v1beta1.RolloutPolicy) {
				r.Waves[0].ClusterSelector, r.Waves[0].PoolSelector = nil, &metav1.LabelSelector{MatchLabels: map[string]string{"canary": "true"}}
			}), inEnv("prod"), func(in *Input) { in.Labels = map[string]string{"canary": "true"} }},
			want: want{Wave: "canary"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, observed := running(t, input(tc.mods...))
			p := mustPlan(t, input(append(tc.mods, disruptiveChange, func(in *Input) {
				in.Observed, in.Target, in.Fleet = observed, target, views(tc.fleet, target)
			})...))
			got := want{Wave: p.Status.Rollout.Wave}
			if p.Hold != nil {
				got.Reason, got.NextStart = p.Hold.Reason, p.Hold.NextStart
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\n-want, +got:\n%s", tc.reason, diff)
			}
			if !got.NextStart.IsZero() && !p.Wake.Equal(got.NextStart) {
				t.Errorf("%s\nthe plan wakes at %s, want at the soak's end %s", tc.reason, p.Wake, got.NextStart)
			}
		})
	}
}

// TestMarker: a pool publishes where it is with the target, and fails when
// it does not settle within the halt timeout.
func TestMarker(t *testing.T) {
	const target = "t2"
	type want struct {
		State            MarkerState
		Since, StartedAt string
	}
	cases := map[string]struct {
		reason string
		// plan makes the plan.
		plan func(t *testing.T) *Plan
		want want
	}{
		"Settled": {
			reason: "A running pool with no change, Available, is settled from now.",
			plan: func(t *testing.T) *Plan {
				_, observed := running(t, input(threeWaves(), inEnv("dev")))
				return mustPlan(t, input(threeWaves(), inEnv("dev"), func(in *Input) { in.Observed, in.Target = observed, target }))
			},
			want: want{State: MarkerSettled, Since: "2026-11-29T23:00:00Z"},
		},
		"StaysSettled": {
			reason: "Settled before, it keeps the time it settled at: soaks count from it.",
			plan: func(t *testing.T) *Plan {
				_, observed := running(t, input(threeWaves(), inEnv("dev")))
				return mustPlan(t, input(threeWaves(), inEnv("dev"), func(in *Input) {
					in.Observed, in.Target = observed, target
					in.Marker = &Marker{Target: "t1", State: MarkerSettled, Since: testNow.Add(-time.Hour)}
				}))
			},
			want: want{State: MarkerSettled, Since: "2026-11-29T22:00:00Z"},
		},
		"SettledOnItsMachineSet": {
			reason: "A pool whose machines run on MachineSets made from its MachineDeployments' own templates is settled.",
			plan: func(t *testing.T) *Plan {
				_, observed := running(t, input(threeWaves(), inEnv("dev")))
				return mustPlan(t, input(threeWaves(), inEnv("dev"), func(in *Input) {
					in.Observed, in.Target, in.MachineSets = observed, target, machineSetsOf(observed, false)
				}))
			},
			want: want{State: MarkerSettled, Since: "2026-11-29T23:00:00Z"},
		},
		"JustStarted": {
			reason: "A rollout Cluster API has just begun: the MachineDeployments' status still counts the old machines up to date, but they run on MachineSets of other templates. Rolling, never settled.",
			plan: func(t *testing.T) *Plan {
				_, observed := running(t, input(threeWaves(), inEnv("dev")))
				return mustPlan(t, input(threeWaves(), inEnv("dev"), func(in *Input) {
					in.Observed, in.Target, in.MachineSets = observed, target, machineSetsOf(observed, true)
					in.Marker = &Marker{Target: target, State: MarkerRolling, StartedAt: testNow.Add(-time.Minute)}
				}))
			},
			want: want{State: MarkerRolling, StartedAt: "2026-11-29T22:59:00Z"},
		},
		"Starting": {
			reason: "A change starting now: rolling, started now.",
			plan: func(t *testing.T) *Plan {
				_, observed := running(t, input(threeWaves(), inEnv("dev")))
				return mustPlan(t, input(threeWaves(), inEnv("dev"), disruptiveChange, func(in *Input) { in.Observed, in.Target = observed, target }))
			},
			want: want{State: MarkerRolling, StartedAt: "2026-11-29T23:00:00Z"},
		},
		"Held": {
			reason: "A change held (paused): held, not started.",
			plan: func(t *testing.T) *Plan {
				mods := []func(*Input){threeWaves(func(r *v1beta1.RolloutPolicy) { r.Paused = true }), inEnv("dev")}
				_, observed := running(t, input(mods...))
				return mustPlan(t, input(append(mods, disruptiveChange, func(in *Input) { in.Observed, in.Target = observed, target })...))
			},
			want: want{State: MarkerHeld},
		},
		"Failed": {
			reason: "Still rolling three hours after it started, past the 2h timeout: failed.",
			plan: func(t *testing.T) *Plan {
				_, observed := running(t, input(threeWaves(), inEnv("dev")))
				for k, o := range observed {
					if isBacking(k) && k != keyInfraPool {
						o.UpToDateReplicas = ptr.To[int32](1)
						observed[k] = o
					}
				}
				return mustPlan(t, input(threeWaves(), inEnv("dev"), func(in *Input) {
					in.Observed, in.Target = observed, target
					in.Marker = &Marker{Target: target, State: MarkerRolling, StartedAt: testNow.Add(-3 * time.Hour)}
				}))
			},
			want: want{State: MarkerFailed, StartedAt: "2026-11-29T20:00:00Z"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := tc.plan(t)
			var cm *corev1.ConfigMap
			for _, r := range p.Resources {
				if c, ok := r.Object.(*corev1.ConfigMap); ok && r.Key == keyMarker {
					cm = c
				}
			}
			if cm == nil {
				t.Fatalf("%s\nno marker planned", tc.reason)
			}
			got := want{State: MarkerState(cm.Data[markerState]), Since: cm.Data[markerSince], StartedAt: cm.Data[markerStarted]}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\n-want, +got:\n%s", tc.reason, diff)
			}
			if cm.Labels[LabelWave] != "canary" || cm.Labels[LabelFleet] != DefaultFleet || cm.Data[markerTarget] != target {
				t.Errorf("%s\nmarker labels %v, target %q: want wave canary, fleet %s, target %s", tc.reason, cm.Labels, cm.Data[markerTarget], DefaultFleet, target)
			}
		})
	}
}

// TestTargetIgnoresRollouts: pausing, approving or windows make no new
// target; a channel bump does.
func TestTargetIgnoresRollouts(t *testing.T) {
	base := policy()
	t0, err := Target(base)
	if err != nil {
		t.Fatal(err)
	}
	paused := policy()
	paused.Rollouts = &v1beta1.RolloutPolicy{Paused: true, Approvals: map[string]string{"canary": t0}}
	bumped := policy()
	bumped.Channels["stable"] = "v1.34.1"
	aged := input(withMaxAge, withCapacity).Policy
	aged.ScaleFromZero = &v1beta1.ScaleFromZeroPolicy{ProviderCapacity: []v1alpha1.Provider{v1alpha1.ProviderAWS}}
	resized := policy()
	resized.Catalog["medium"] = v1beta1.MachineClass{AWS: "m6i.2xlarge"}
	for name, tc := range map[string]struct {
		reason string
		p      *v1beta1.Policy
		same   bool
	}{
		"Rollouts": {reason: "The rollout settings are not the target.", p: paused, same: true},
		"Bump":     {reason: "A channel bump is a new target.", p: bumped, same: false},
		"Rotation": {reason: "Node rotation and the autoscaler's capacities say nothing of what nodes run.", p: aged, same: true},
		"Class":    {reason: "A class's new machine type is a new target.", p: resized, same: false},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := Target(tc.p)
			if err != nil {
				t.Fatal(err)
			}
			if (got == t0) != tc.same {
				t.Errorf("%s\ntarget %s, base %s: same %t, want %t", tc.reason, got, t0, got == t0, tc.same)
			}
		})
	}
}

func TestFleetOf(t *testing.T) {
	long := strings.Repeat("platform-", 10)
	cases := map[string]struct {
		reason      string
		fleet, comp string
		want        string
	}{
		"PolicyFleet":     {reason: "A fleet the policy names is shared by every Composition naming it.", fleet: "prod", comp: "fleetnodepool", want: "prod"},
		"CompositionName": {reason: "Otherwise the Composition's pools are a fleet of their own.", comp: "fleetnodepool", want: "fleetnodepool"},
		"NoComposition":   {reason: "Without a known Composition, the default fleet.", want: DefaultFleet},
		"LongComposition": {reason: "A Composition name longer than a label value is shortened with its hash.", comp: long, want: strings.TrimRight(long[:54], "-.") + "-" + Hash([]byte(long))},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := fleetOf(v1beta1.RolloutPolicy{Fleet: tc.fleet}, tc.comp)
			if diff := cmp.Diff(tc.want, got); diff != "" || len(got) > 63 {
				t.Errorf("%s\n-want, +got (%d characters):\n%s", tc.reason, len(got), diff)
			}
		})
	}
}

// views is what the markers of each wave say of the target.
func views(fleet map[string][]Marker, target string) map[string]WaveView {
	if fleet == nil {
		return nil
	}
	out := make(map[string]WaveView, len(fleet))
	for w, ms := range fleet {
		out[w] = ViewWave(ms, target)
	}
	return out
}

func TestViewWave(t *testing.T) {
	const target = "t2"
	earlier, later := testNow.Add(-time.Hour), testNow.Add(-time.Minute)
	cases := map[string]struct {
		reason  string
		markers []Marker
		want    WaveView
	}{
		"Empty": {
			reason: "A wave without pools is neither waiting nor soaking.",
			want:   WaveView{},
		},
		"SoakFromTheLastToSettle": {
			reason:  "A wave's soak counts from when its last pool settled at the target.",
			markers: []Marker{settled("a", target, earlier), settled("b", target, later)},
			want:    WaveView{Pools: 2, Since: later},
		},
		"OtherTargetWaits": {
			reason:  "A pool settled at another target is not there yet: the wave waits, and no soak is read while it does.",
			markers: []Marker{settled("a", target, later), settled("b", "t1", earlier)},
			want:    WaveView{Pools: 2, Waiting: true},
		},
		"RollingWaits": {
			reason:  "A pool rolling to the target is not there yet.",
			markers: []Marker{{Namespace: "ns", Pool: "a", Target: target, State: MarkerRolling, StartedAt: later}},
			want:    WaveView{Pools: 1, Waiting: true},
		},
		"FailedSortedAndNotWaiting": {
			reason: "Pools failed at the target are named, sorted, and do not count as waiting: the halt tolerance decides.",
			markers: []Marker{
				{Namespace: "ns", Pool: "z", Target: target, State: MarkerFailed},
				{Namespace: "ns", Pool: "b", Target: target, State: MarkerFailed},
				settled("a", target, earlier),
			},
			want: WaveView{Pools: 3, Failed: []string{"ns/b", "ns/z"}, Since: earlier},
		},
		"FailedAtAnotherTargetWaits": {
			reason:  "A pool that failed at another target has not started this one: it is not there yet, and halts nothing.",
			markers: []Marker{{Namespace: "ns", Pool: "a", Target: "t1", State: MarkerFailed}},
			want:    WaveView{Pools: 1, Waiting: true},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, ViewWave(tc.markers, target)); diff != "" {
				t.Errorf("%s\nViewWave(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// machineSetsOf are a MachineSet with machines for each observed
// MachineDeployment, made from its templates, or from older ones.
func machineSetsOf(observed map[string]Observed, older bool) map[string][]MachineSet {
	out := map[string][]MachineSet{}
	for k, o := range observed {
		if !strings.HasPrefix(k, keyMachineDeployment) {
			continue
		}
		ms := MachineSet{Version: o.Version, Infra: o.References[0], Bootstrap: o.References[len(o.References)-1], Replicas: 3}
		if older {
			ms.Infra, ms.Bootstrap = "an-older-template", "an-older-config"
		}
		out[o.Name] = []MachineSet{ms}
	}
	return out
}
