package plan

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/apis/input/v1beta1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/provider"
)

// gateOutcome is what a test reads of a gated plan.
type gateOutcome struct {
	// Reason the change is held, "" when it starts.
	Reason string
	// Started: the MachineDeployments point at the new templates.
	Started bool
	// Queued is the queue annotation on the MachineDeployments, HoldSeq
	// whether they carry the hold-sequence annotation.
	Queued  string
	HoldSeq bool
	// NextStart, Wake and Recheck of the plan.
	NextStart, Wake time.Time
	Recheck         time.Duration
}

// running plans in once and observes it running 2 machines per zone.
func running(t *testing.T, in Input) (*Plan, map[string]Observed) {
	t.Helper()
	p := mustPlan(t, in)
	return p, observe(t, p, 2)
}

// disruptiveChange is a class change of a running pool: every zone's
// infrastructure template is renamed.
func disruptiveChange(in *Input) { in.Spec.Machine.Class = "large" }

// sibling is another pool of the Cluster, rolling or queued since the
// given time ("" for not queued).
func sibling(pool string, isRolling bool, since string, holds bool) Sibling {
	o := Observed{Name: "prod-eu-1-" + pool, Generation: 2, ObservedGeneration: 2, Replicas: ptr.To[int32](2), UpToDateReplicas: ptr.To[int32](2),
		QueuedSince: since, HoldsSequence: holds}
	if isRolling {
		o.UpToDateReplicas = ptr.To[int32](1)
	}
	return Sibling{Pool: pool, Backings: []Observed{o}}
}

// onMachineSet is another pool of the Cluster, not rolling by its status,
// whose machines run on a MachineSet of the infrastructure template infra:
// its own ("new-infra") or another.
func onMachineSet(infra string) Sibling {
	s := sibling("other", false, "", false)
	s.Backings[0].Version, s.Backings[0].References = "v1.33.4", []string{"new-infra", "new-bootstrap"}
	s.MachineSets = map[string][]MachineSet{s.Backings[0].Name: {{Version: "v1.33.4", Infra: infra, Bootstrap: "new-bootstrap", Replicas: 2}}}
	return s
}

// inCell is another pool of the Cluster in a cell, not rolling by its
// status, on its own templates ("new-infra", "new-bootstrap"), keeping the
// templates named (its MachineSets cannot be read there), none seen unused.
func inCell(templates ...string) Sibling {
	s := onMachineSet("new-infra")
	s.MachineSets, s.Templates = map[string][]MachineSet{}, map[string]time.Time{}
	for _, n := range templates {
		s.Templates[n] = time.Time{}
	}
	return s
}

// queuedAt marks the observed MachineDeployments queued since t.
func queuedAt(observed map[string]Observed, t string) {
	for k, o := range observed {
		if strings.HasPrefix(k, keyMachineDeployment) {
			o.QueuedSince = t
			observed[k] = o
		}
	}
}

func rollouts(mod func(*v1beta1.RolloutPolicy)) func(*Input) {
	return func(in *Input) {
		in.Policy.Rollouts = &v1beta1.RolloutPolicy{}
		mod(in.Policy.Rollouts)
	}
}

func outcome(t *testing.T, before, p *Plan) gateOutcome {
	t.Helper()
	o := gateOutcome{Started: true, Wake: p.Wake, Recheck: p.Recheck}
	if p.Hold != nil {
		o.Reason, o.NextStart = p.Hold.Reason, p.Hold.NextStart
	}
	was := map[string]string{}
	for _, r := range before.Resources {
		if md, ok := r.Object.(*clusterv1.MachineDeployment); ok {
			was[r.Key] = md.Spec.Template.Spec.InfrastructureRef.Name
		}
	}
	for _, r := range p.Resources {
		md, ok := r.Object.(*clusterv1.MachineDeployment)
		if !ok {
			continue
		}
		if md.Spec.Template.Spec.InfrastructureRef.Name == was[r.Key] {
			o.Started = false
		}
		o.Queued = md.Annotations[AnnotationQueuedSince]
		o.HoldSeq = md.Annotations[AnnotationHoldSequence] == "true"
	}
	return o
}

// TestGates plans a disruptive change of a running pool through each gate.
// testNow is Sunday 2026-11-29 23:00 UTC.
func TestGates(t *testing.T) {
	saturdayNight := v1beta1.MaintenanceWindow{Name: "saturday", Days: []v1beta1.Weekday{"Saturday"}, Start: "22:00", Duration: metav1.Duration{Duration: 4 * time.Hour}}
	nightly := v1beta1.MaintenanceWindow{Name: "nightly", Start: "22:00", Duration: metav1.Duration{Duration: 4 * time.Hour}}
	berlin := v1beta1.MaintenanceWindow{Name: "berlin", Start: "23:30", Duration: metav1.Duration{Duration: time.Hour}, TimeZone: "Europe/Berlin"}
	windows := func(def string) func(*Input) {
		return rollouts(func(r *v1beta1.RolloutPolicy) {
			r.MaintenanceWindows = []v1beta1.MaintenanceWindow{saturdayNight, nightly, berlin}
			r.DefaultMaintenanceWindow = def
		})
	}
	// The queue's times: now, and placed, when the pool took its place in
	// the queue, longer ago than queueSettle.
	const earlier, placed, now, later = "2026-11-29T22:00:00Z", "2026-11-29T22:59:50Z", "2026-11-29T23:00:00Z", "2026-11-29T23:30:00Z"
	nextSaturday := time.Date(2026, time.December, 5, 22, 0, 0, 0, time.UTC)

	cases := map[string]struct {
		reason string
		// mods of the running pool's input, before the change.
		mods []func(*Input)
		// observed alters what runs (the queue annotation).
		observed func(map[string]Observed)
		want     gateOutcome
	}{
		"NoGate": {
			reason: "A pool alone in its Cluster, with no pause, deferral or window, starts its change at once.",
			want:   gateOutcome{Started: true},
		},
		"Paused": {
			reason: "The policy's pause holds every disruptive change.",
			mods:   []func(*Input){rollouts(func(r *v1beta1.RolloutPolicy) { r.Paused = true })},
			want:   gateOutcome{Reason: HoldPaused},
		},
		"PausedChannel": {
			reason: "Pausing the pool's channel (the default channel here) holds it.",
			mods:   []func(*Input){rollouts(func(r *v1beta1.RolloutPolicy) { r.PausedChannels = []string{"stable"} })},
			want:   gateOutcome{Reason: HoldPaused},
		},
		"OtherChannelPaused": {
			reason: "Pausing another channel does not hold the pool.",
			mods:   []func(*Input){rollouts(func(r *v1beta1.RolloutPolicy) { r.PausedChannels = []string{"rapid"} })},
			want:   gateOutcome{Started: true},
		},
		"PinnedVersionFollowsNoChannel": {
			reason: "A pool that pins its version follows no channel: a paused channel does not hold it.",
			mods: []func(*Input){rollouts(func(r *v1beta1.RolloutPolicy) { r.PausedChannels = []string{"stable"} }),
				func(in *Input) { in.Spec.Version = "v1.33.4" }},
			want: gateOutcome{Started: true},
		},
		"Deferred": {
			reason: "A pool annotated to defer its rollouts is held.",
			mods:   []func(*Input){func(in *Input) { in.Annotations = map[string]string{AnnotationDeferRollout: "true"} }},
			want:   gateOutcome{Reason: HoldDeferred},
		},
		"DeferUnreadable": {
			reason: "A deferral that cannot be read holds: fail closed.",
			mods:   []func(*Input){func(in *Input) { in.Annotations = map[string]string{AnnotationDeferRollout: "yes"} }},
			want:   gateOutcome{Reason: HoldDeferred},
		},
		"DeferFalse": {
			reason: "defer-rollout=false defers nothing.",
			mods:   []func(*Input){func(in *Input) { in.Annotations = map[string]string{AnnotationDeferRollout: "false"} }},
			want:   gateOutcome{Started: true},
		},
		"WindowClosed": {
			reason: "Outside its window (Saturdays 22:00 UTC, now Sunday 23:00) the change waits for the next opening, and the plan wakes then.",
			mods:   []func(*Input){windows("saturday")},
			want:   gateOutcome{Reason: HoldMaintenanceWindow, NextStart: nextSaturday, Wake: nextSaturday},
		},
		"WindowOpen": {
			reason: "Inside its window (nightly from 22:00 for 4h) the change starts; the plan wakes when the window closes.",
			mods:   []func(*Input){windows("nightly")},
			want:   gateOutcome{Started: true, Wake: time.Date(2026, time.November, 30, 2, 0, 0, 0, time.UTC)},
		},
		"WindowInTimeZone": {
			reason: "A window in Europe/Berlin (23:30-00:30, UTC+1) is open at 23:00 UTC, and closes at 23:30 UTC.",
			mods:   []func(*Input){windows("berlin")},
			want:   gateOutcome{Started: true, Wake: time.Date(2026, time.November, 29, 23, 30, 0, 0, time.UTC)},
		},
		"ClusterSelectsWindow": {
			reason: "The Cluster's label selects the window where the pool's does not.",
			mods: []func(*Input){windows("nightly"), func(in *Input) {
				in.Cluster.Labels = map[string]string{LabelMaintenanceWindow: "saturday"}
			}},
			want: gateOutcome{Reason: HoldMaintenanceWindow, NextStart: nextSaturday, Wake: nextSaturday},
		},
		"PoolWindowWins": {
			reason: "The pool's label wins over its Cluster's.",
			mods: []func(*Input){windows(""), func(in *Input) {
				in.Cluster.Labels = map[string]string{LabelMaintenanceWindow: "saturday"}
				in.Labels = map[string]string{LabelMaintenanceWindow: "nightly"}
			}},
			want: gateOutcome{Started: true, Wake: time.Date(2026, time.November, 30, 2, 0, 0, 0, time.UTC)},
		},
		"UnknownWindow": {
			reason: "A window the policy does not define holds: fail closed.",
			mods: []func(*Input){windows(""), func(in *Input) {
				in.Labels = map[string]string{LabelMaintenanceWindow: "sundays"}
			}},
			want: gateOutcome{Reason: HoldMaintenanceWindow},
		},
		"SiblingsUnknown": {
			reason: "Until the Cluster's other pools are known, a change waits: fail closed.",
			mods:   []func(*Input){func(in *Input) { in.Siblings = nil }},
			want:   gateOutcome{Reason: HoldConcurrency, Recheck: recheckQueued},
		},
		"Queues": {
			reason: "With another pool in the Cluster, a pool first takes its place in the queue, on its MachineDeployments, and looks again soon.",
			mods:   []func(*Input){func(in *Input) { in.Siblings = []Sibling{sibling("other", false, "", false)} }},
			want:   gateOutcome{Reason: HoldConcurrency, Queued: now, Wake: testNow.Add(recheckQueued)},
		},
		"QueuedThisSecond": {
			reason:   "Queued in this very second, with no one ahead in sight: a sibling queued in the same second may not be seen yet, so it holds until queueSettle has passed.",
			mods:     []func(*Input){func(in *Input) { in.Siblings = []Sibling{sibling("other", false, "", false)} }},
			observed: func(o map[string]Observed) { queuedAt(o, now) },
			want:     gateOutcome{Reason: HoldConcurrency, Queued: now, Wake: testNow.Add(queueSettle)},
		},
		"QueuedItsTurn": {
			reason:   "Queued, and no other pool rolls or is queued ahead: its turn.",
			mods:     []func(*Input){func(in *Input) { in.Siblings = []Sibling{sibling("other", false, later, false)} }},
			observed: func(o map[string]Observed) { queuedAt(o, placed) },
			want:     gateOutcome{Started: true},
		},
		"SiblingRolling": {
			reason:   "Another pool rolls and the concurrency is 1: wait, keeping the place in the queue.",
			mods:     []func(*Input){func(in *Input) { in.Siblings = []Sibling{sibling("other", true, "", false)} }},
			observed: func(o map[string]Observed) { queuedAt(o, earlier) },
			want:     gateOutcome{Reason: HoldConcurrency, Queued: earlier, Recheck: recheckSiblings},
		},
		"SiblingQueuedAhead": {
			reason:   "Another pool queued earlier goes first.",
			mods:     []func(*Input){func(in *Input) { in.Siblings = []Sibling{sibling("other", false, earlier, false)} }},
			observed: func(o map[string]Observed) { queuedAt(o, placed) },
			want:     gateOutcome{Reason: HoldConcurrency, Queued: placed, Recheck: recheckSiblings},
		},
		"TieByName": {
			reason:   "Queued at the same second, the pool whose name sorts first goes first: 'alpha' before 'workers'.",
			mods:     []func(*Input){func(in *Input) { in.Siblings = []Sibling{sibling("alpha", false, placed, false)} }},
			observed: func(o map[string]Observed) { queuedAt(o, placed) },
			want:     gateOutcome{Reason: HoldConcurrency, Queued: placed, Recheck: recheckSiblings},
		},
		"TieByNameWins": {
			reason:   "Queued at the same second as 'zulu', 'workers' goes first.",
			mods:     []func(*Input){func(in *Input) { in.Siblings = []Sibling{sibling("zulu", false, placed, false)} }},
			observed: func(o map[string]Observed) { queuedAt(o, placed) },
			want:     gateOutcome{Started: true},
		},
		"ClusterConcurrency": {
			reason: "The Cluster's annotation allows 2 at once: one other rolling leaves room.",
			mods: []func(*Input){func(in *Input) {
				in.Siblings = []Sibling{sibling("other", true, "", false), sibling("third", false, "", false)}
				in.Cluster.Annotations = map[string]string{AnnotationConcurrency: "2"}
			}},
			observed: func(o map[string]Observed) { queuedAt(o, placed) },
			want:     gateOutcome{Started: true},
		},
		"TopologyConcurrency": {
			reason: "ClusterClass's upgrade-concurrency is honoured: 3 pools may roll, and the Cluster has 3, so no queue.",
			mods: []func(*Input){func(in *Input) {
				in.Siblings = []Sibling{sibling("other", true, "", false), sibling("third", true, "", false)}
				in.Cluster.Annotations = map[string]string{clusterv1.ClusterTopologyUpgradeConcurrencyAnnotation: "3"}
			}},
			want: gateOutcome{Started: true},
		},
		"PolicyConcurrency": {
			reason: "The policy's concurrency applies where the Cluster says nothing.",
			mods: []func(*Input){rollouts(func(r *v1beta1.RolloutPolicy) { r.Concurrency = ptr.To[int32](2) }), func(in *Input) {
				in.Siblings = []Sibling{sibling("other", true, "", false), sibling("third", true, "", false)}
			}},
			observed: func(o map[string]Observed) { queuedAt(o, placed) },
			want:     gateOutcome{Reason: HoldConcurrency, Queued: placed, Recheck: recheckSiblings},
		},
		"ConcurrencyUnreadable": {
			reason: "A concurrency that is not a whole number of at least 1 holds: fail closed.",
			mods: []func(*Input){func(in *Input) {
				in.Cluster.Annotations = map[string]string{AnnotationConcurrency: "0"}
			}},
			want: gateOutcome{Reason: HoldConcurrency, Recheck: recheckSiblings},
		},
		"AlreadyRolling": {
			reason: "A pool already rolling takes its next change at once: it is in the rollout already.",
			mods:   []func(*Input){func(in *Input) { in.Siblings = []Sibling{sibling("other", true, "", false)} }},
			observed: func(o map[string]Observed) {
				for k, ob := range o {
					if strings.HasPrefix(k, keyMachineDeployment) {
						ob.UpToDateReplicas = ptr.To[int32](1)
						o[k] = ob
					}
				}
			},
			want: gateOutcome{Started: true},
		},
		"ResizedIsNotRolling": {
			reason: "A new generation from an autoscaler's resize is no rollout under way: the pool keeps its place in the queue.",
			mods:   []func(*Input){func(in *Input) { in.Siblings = []Sibling{sibling("other", true, "", false)} }},
			observed: func(o map[string]Observed) {
				queuedAt(o, earlier)
				for k, ob := range o {
					if strings.HasPrefix(k, keyMachineDeployment) {
						ob.Generation = 2
						o[k] = ob
					}
				}
			},
			want: gateOutcome{Reason: HoldConcurrency, Queued: earlier, Recheck: recheckSiblings},
		},
		"SiblingJustStarted": {
			reason:   "A pool whose rollout Cluster API has just begun (its status still counts the old machines up to date, but they run on a MachineSet of another template) is rolling: the pool waits for it.",
			mods:     []func(*Input){func(in *Input) { in.Siblings = []Sibling{onMachineSet("old-infra")} }},
			observed: func(o map[string]Observed) { queuedAt(o, placed) },
			want:     gateOutcome{Reason: HoldConcurrency, Queued: placed, Recheck: recheckSiblings},
		},
		"SiblingSettledOnItsMachineSet": {
			reason:   "A pool whose machines run on a MachineSet of its own templates is not rolling: the pool starts.",
			mods:     []func(*Input){func(in *Input) { in.Siblings = []Sibling{onMachineSet("new-infra")} }},
			observed: func(o map[string]Observed) { queuedAt(o, placed) },
			want:     gateOutcome{Started: true},
		},
		"CellSiblingKeepsOldTemplate": {
			reason: "A pool in a cell that still keeps a template it no longer references has just changed templates: its cell's first report may count " +
				"every machine up to date, and its MachineSets cannot be read, so it is rolling until the old template is released: the pool waits for it.",
			mods:     []func(*Input){func(in *Input) { in.Siblings = []Sibling{inCell("new-infra", "new-bootstrap", "old-infra")} }},
			observed: func(o map[string]Observed) { queuedAt(o, placed) },
			want:     gateOutcome{Reason: HoldConcurrency, Queued: placed, Recheck: recheckSiblings},
		},
		"CellSiblingLeftTemplateLongAgo": {
			reason: "A pool in a cell that has kept a template it left for longer than its cell takes to report (its changes refused, or its function failing) " +
				"is not changing templates now: it holds no one, and the pool starts.",
			mods: []func(*Input){func(in *Input) {
				s := inCell("new-infra", "new-bootstrap", "old-infra")
				s.Templates["old-infra"] = testNow.Add(-ReleaseAfter - time.Second)
				in.Siblings = []Sibling{s}
			}},
			observed: func(o map[string]Observed) { queuedAt(o, placed) },
			want:     gateOutcome{Started: true},
		},
		"CellSiblingLeftTemplateJustNow": {
			reason: "A pool in a cell that saw a template it left unused a moment ago (its cell's report may lag the rollout) still changes templates: " +
				"the pool waits for it.",
			mods: []func(*Input){func(in *Input) {
				s := inCell("new-infra", "new-bootstrap", "old-infra")
				s.Templates["old-infra"] = testNow.Add(-ReleaseAfter + time.Second)
				in.Siblings = []Sibling{s}
			}},
			observed: func(o map[string]Observed) { queuedAt(o, placed) },
			want:     gateOutcome{Reason: HoldConcurrency, Queued: placed, Recheck: recheckSiblings},
		},
		"CellSiblingOnItsTemplates": {
			reason:   "A pool in a cell that keeps only the templates it references, settled by its status, is not rolling: the pool starts.",
			mods:     []func(*Input){func(in *Input) { in.Siblings = []Sibling{inCell("new-infra", "new-bootstrap")} }},
			observed: func(o map[string]Observed) { queuedAt(o, placed) },
			want:     gateOutcome{Started: true},
		},
		"HoldsSequence": {
			reason: "A pool annotated to hold the sequence queues, marked, and never starts.",
			mods: []func(*Input){func(in *Input) {
				in.Annotations = map[string]string{AnnotationHoldSequence: "true"}
			}},
			observed: func(o map[string]Observed) { queuedAt(o, placed) },
			want:     gateOutcome{Reason: HoldSequence, Queued: placed, HoldSeq: true, Recheck: recheckSiblings},
		},
		"SequenceHeldAhead": {
			reason: "A pool queued ahead holds the sequence: every pool after it holds.",
			mods: []func(*Input){func(in *Input) {
				in.Siblings = []Sibling{sibling("other", false, earlier, true)}
				in.Cluster.Annotations = map[string]string{AnnotationConcurrency: "5"}
			}},
			observed: func(o map[string]Observed) { queuedAt(o, placed) },
			want:     gateOutcome{Reason: HoldSequence, Queued: placed, Recheck: recheckSiblings},
		},
		"SequenceHeldAheadWhileResized": {
			reason: "A pool queued ahead holds the sequence while the autoscaler resizes it (a new generation): it still holds the pools after it.",
			mods: []func(*Input){func(in *Input) {
				s := sibling("other", false, earlier, true)
				s.Backings[0].Generation = 3
				in.Siblings = []Sibling{s}
				in.Cluster.Annotations = map[string]string{AnnotationConcurrency: "2"}
			}},
			observed: func(o map[string]Observed) { queuedAt(o, placed) },
			want:     gateOutcome{Reason: HoldSequence, Queued: placed, Recheck: recheckSiblings},
		},
		"SequenceHeldBehind": {
			reason:   "A pool queued behind that holds the sequence does not hold those ahead of it.",
			mods:     []func(*Input){func(in *Input) { in.Siblings = []Sibling{sibling("other", false, later, true)} }},
			observed: func(o map[string]Observed) { queuedAt(o, placed) },
			want:     gateOutcome{Started: true},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			base := input(tc.mods...)
			before, observed := running(t, base)
			if tc.observed != nil {
				tc.observed(observed)
			}
			changed := input(append(tc.mods, disruptiveChange, func(in *Input) { in.Observed = observed })...)
			p := mustPlan(t, changed)
			if diff := cmp.Diff(tc.want, outcome(t, before, p)); diff != "" {
				t.Errorf("%s\n-want, +got:\n%s", tc.reason, diff)
			}
			if (p.Hold != nil) != (p.Status.Rollout.State == v1alpha1.RolloutHeld) || p.Hold != nil && p.Hold.Message == "" {
				t.Errorf("%s\nstatus.rollout %+v does not report the hold %+v with a message", tc.reason, p.Status.Rollout, p.Hold)
			}
		})
	}
}

// TestQueueTie: two pools of a Cluster of concurrency 1 take their places
// in the queue in the same second, and each reads the other before the
// other's place is written (Crossplane's view lags the writes): neither may
// start before queueSettle. After it, both see both places: the pool whose
// name sorts first starts, and the other waits. Never both, which the fleet
// e2e's watcher saw (RolloutConcurrencyBounded) before queueSettle.
func TestQueueTie(t *testing.T) {
	const placed = "2026-11-29T23:00:00Z"
	type step struct {
		reason string
		pool   string
		at     time.Duration
		// other is the other pool as this one reads it.
		other Sibling
		want  bool
	}
	steps := []step{
		{"workers reads the Cluster before alpha's place is written: it sees no one ahead, but holds", "workers", 300 * time.Millisecond, sibling("alpha", false, "", false), false},
		{"alpha reads workers queued in the same second, not rolling: it would go first by name, but holds", "alpha", 500 * time.Millisecond, sibling("workers", false, placed, false), false},
		{"after the settle, workers sees alpha queued in the same second, whose name sorts first: it waits", "workers", queueSettle, sibling("alpha", false, placed, false), false},
		{"after the settle, alpha sees workers queued in the same second, not rolling: its turn", "alpha", queueSettle, sibling("workers", false, placed, false), true},
	}
	started := map[string]bool{}
	for _, s := range steps {
		named := func(in *Input) { in.Name = s.pool }
		before, observed := running(t, input(named))
		queuedAt(observed, placed)
		p := mustPlan(t, input(named, disruptiveChange, func(in *Input) {
			in.Observed, in.Siblings, in.Now = observed, []Sibling{s.other}, testNow.Add(s.at)
		}))
		got := outcome(t, before, p).Started
		if got != s.want {
			t.Errorf("%s\n%s at +%s: started %t, want %t", s.reason, s.pool, s.at, got, s.want)
		}
		started[s.pool] = started[s.pool] || got
	}
	if started["alpha"] && started["workers"] {
		t.Errorf("both pools started; the Cluster's concurrency is 1")
	}
}

// TestHeldPoolEmitsWhatRuns holds a disruptive change of a running pool and
// requires every object it emits to be what runs, byte for byte, for each
// backend; a non-disruptive change made with it still applies.
func TestHeldPoolEmitsWhatRuns(t *testing.T) {
	paused := rollouts(func(r *v1beta1.RolloutPolicy) { r.Paused = true })
	cases := map[string]struct {
		reason  string
		backend func(*Input)
	}{
		"MachineDeployment": {reason: "A MachineDeployment pool keeps its templates and version.", backend: nil},
		"MachinePool": {reason: "A MachinePool pool keeps its bootstrap config, version and scale group's spec.", backend: func(in *Input) {
			in.Spec.Backend = v1alpha1.BackendMachinePool
		}},
		"EKS": {reason: "An EKS managed node group keeps its spec (its instance type: EKS cannot change it in place, so it is refused, not held).", backend: func(in *Input) {
			in.Cluster = &Cluster{InfrastructureKind: "AWSManagedCluster", ControlPlaneKind: "AWSManagedControlPlane"}
			in.Spec.Backend = v1alpha1.BackendAuto
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			before, observed := running(t, input(paused, tc.backend))
			// A class change (disruptive) and a new maximum (in place).
			p := mustPlan(t, input(paused, tc.backend, disruptiveChange, func(in *Input) {
				in.Spec.Scaling.Max = ptr.To[int32](12)
				in.Observed = observed
			}))
			switch {
			case name == "EKS" && (p.Refused == nil || p.Refused.Reason != ReasonImmutableField):
				t.Fatalf("%s\nthe instance type is not refused: %+v", tc.reason, p.Refused)
			case name != "EKS" && (p.Hold == nil || p.Hold.Reason != HoldPaused):
				t.Fatalf("%s\nthe change is not held: %+v", tc.reason, p.Hold)
			}
			if diff := cmp.Diff(emitted(t, before), emitted(t, p), cmpopts.IgnoreMapEntries(func(k string, _ any) bool {
				return k == "cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size" || k == "maxSize"
			})); diff != "" {
				t.Errorf("%s\nheld objects, beyond the autoscaler maximum: -running, +emitted:\n%s", tc.reason, diff)
			}
			if !strings.Contains(strings.Join(changeReasons(p), ";"), "autoscaler bounds") && name != "EKS" {
				t.Errorf("%s\nthe in-place change of the maximum is not applied: %v", tc.reason, changeReasons(p))
			}
		})
	}
}

// emitted is every object of a plan as JSON, by key.
func emitted(t *testing.T, p *Plan) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, r := range p.Resources {
		m, err := provider.JSONMap(r.Object)
		if err != nil {
			t.Fatal(err)
		}
		out[r.Key] = m
	}
	return out
}

func changeReasons(p *Plan) []string {
	var out []string
	for _, c := range p.Status.Changes {
		out = append(out, c.Reasons...)
	}
	return out
}

// TestNeverHeld: creating a pool, scaling it, and a change of a pool with
// no machines are never held, even with every gate closed.
func TestNeverHeld(t *testing.T) {
	closed := []func(*Input){
		rollouts(func(r *v1beta1.RolloutPolicy) { r.Paused = true }),
		func(in *Input) { in.Annotations = map[string]string{AnnotationDeferRollout: "true"} },
	}
	cases := map[string]struct {
		reason string
		plan   func(t *testing.T) *Plan
	}{
		"NewPool": {
			reason: "A new pool is created at once.",
			plan:   func(t *testing.T) *Plan { return mustPlan(t, input(closed...)) },
		},
		"Scaling": {
			reason: "A new size applies at once.",
			plan: func(t *testing.T) *Plan {
				_, observed := running(t, input(closed...))
				return mustPlan(t, input(append(closed, func(in *Input) { in.Spec.Scaling.Min, in.Observed = ptr.To[int32](3), observed })...))
			},
		},
		"NoMachines": {
			reason: "A pool with no machines has nothing to disrupt.",
			plan: func(t *testing.T) *Plan {
				before := mustPlan(t, input(closed...))
				return mustPlan(t, input(append(closed, disruptiveChange, func(in *Input) { in.Observed = observe(t, before, 0) })...))
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if p := tc.plan(t); p.Hold != nil {
				t.Errorf("%s\nheld: %+v", tc.reason, p.Hold)
			}
		})
	}
}

// TestSameInstantSameBytes: planning is a function of its input and the
// instant.
func TestSameInstantSameBytes(t *testing.T) {
	_, observed := running(t, input())
	in := func() Input {
		return input(disruptiveChange, func(in *Input) {
			in.Observed, in.Siblings = observed, []Sibling{sibling("other", false, "", false)}
		})
	}
	a, b := mustPlan(t, in()), mustPlan(t, in())
	if diff := cmp.Diff(emitted(t, a), emitted(t, b)); diff != "" {
		t.Errorf("two plans of the same input at the same instant differ: -a, +b:\n%s", diff)
	}
	later := in()
	later.Now = testNow.Add(time.Minute)
	if c := mustPlan(t, later); c.Status.Rollout.QueuedSince.Equal(a.Status.Rollout.QueuedSince) {
		t.Errorf("the queue's time does not follow the instant planned at: %v at both", c.Status.Rollout.QueuedSince)
	}
}

func TestRolloutState(t *testing.T) {
	md := func(gen, observedGen int64, replicas, upToDate int32) map[string]Observed {
		return map[string]Observed{"machinedeployment-a": {Name: "md-a", Generation: gen, ObservedGeneration: observedGen,
			Replicas: ptr.To(replicas), UpToDateReplicas: ptr.To(upToDate)}}
	}
	cases := map[string]struct {
		reason   string
		observed map[string]Observed
		previous v1alpha1.RolloutState
		starting bool
		refused  bool
		hold     *Hold
		want     v1alpha1.RolloutState
	}{
		"Resize": {reason: "An autoscaler's resize makes a generation Cluster API has not observed yet: no rollout shows, none is announced.",
			observed: md(3, 2, 3, 3), previous: v1alpha1.RolloutUpToDate, want: v1alpha1.RolloutUpToDate},
		"NewPoolLagging": {reason: "A new pool's first generation not yet observed is no rollout either.",
			observed: md(1, 0, 0, 0), want: v1alpha1.RolloutUpToDate},
		"LagContinuesRollout": {reason: "Just after a rollout started, Cluster API has not caught up: the pool still rolls out.",
			observed: md(3, 2, 3, 3), previous: v1alpha1.RolloutRollingOut, want: v1alpha1.RolloutRollingOut},
		"Replacing": {reason: "Machines of an older spec are being replaced.",
			observed: md(3, 3, 4, 1), previous: v1alpha1.RolloutUpToDate, want: v1alpha1.RolloutRollingOut},
		"Starting": {reason: "A disruptive change starts with this plan.",
			observed: md(2, 2, 3, 3), starting: true, want: v1alpha1.RolloutRollingOut},
		"RefusedStartsNothing": {reason: "A refused change starts nothing: the plan keeps what runs.",
			observed: md(2, 2, 3, 3), starting: true, refused: true, want: v1alpha1.RolloutUpToDate},
		"Finished": {reason: "Caught up and every machine up to date: the rollout is over.",
			observed: md(3, 3, 3, 3), previous: v1alpha1.RolloutRollingOut, want: v1alpha1.RolloutUpToDate},
		"VersionHeldClassRolls": {reason: "A pool holding its version for its control plane rolls its class change: rolling out, not held.",
			observed: md(2, 2, 3, 3), starting: true, hold: &Hold{Reason: HoldControlPlane, VersionOnly: true}, want: v1alpha1.RolloutRollingOut},
		"VersionHeldNothingRolls": {reason: "A pool holding its version, with nothing else to roll, is held.",
			observed: md(2, 2, 3, 3), hold: &Hold{Reason: HoldControlPlane, VersionOnly: true}, want: v1alpha1.RolloutHeld},
		"HeldWhileReplacing": {reason: "A gate's hold (a pause) shows over machines still being replaced: the held change waits.",
			observed: md(3, 3, 4, 1), hold: &Hold{Reason: HoldPaused}, want: v1alpha1.RolloutHeld},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := &Plan{starting: tc.starting, Hold: tc.hold}
			for _, o := range tc.observed {
				if o.rolling() {
					p.Rolling = append(p.Rolling, o.Name)
				}
			}
			if tc.refused {
				p.Refused = &Refusal{Reason: "BackingReplaced"}
			}
			got := rolloutStatus(p, Input{Observed: tc.observed, Previous: tc.previous}).State
			if got != tc.want {
				t.Errorf("%s\nrolloutStatus(...).State: want %s, got %s", tc.reason, tc.want, got)
			}
		})
	}
}
