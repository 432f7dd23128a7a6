package plan

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/apis/input/v1beta1"
)

const (
	testMaxAge = 720 * time.Hour
	testSpread = 72 * time.Hour
)

// withMaxAge gives a pool's policy a max node age of 720h, spread over 72h.
func withMaxAge(in *Input) {
	in.Policy.Rotation = &v1beta1.RotationPolicy{
		MaxNodeAge: &metav1.Duration{Duration: testMaxAge},
		Spread:     &metav1.Duration{Duration: testSpread},
	}
}

// runningSince plans a pool, then returns its input as it runs that plan: every
// object observed with 3 machines, each MachineDeployment's one MachineSet
// created at created.
func runningSince(t *testing.T, in Input, created time.Time) Input {
	t.Helper()
	p, err := testPlanner().Plan(in)
	if err != nil {
		t.Fatal(err)
	}
	in.Observed = observe(t, p, 3)
	in.MachineSets = map[string][]MachineSet{}
	for k, o := range in.Observed {
		switch {
		case strings.HasPrefix(k, keyMachineDeployment):
			in.MachineSets[o.Name] = []MachineSet{{Version: o.Version, Infra: o.References[0], Bootstrap: o.References[1], Replicas: 3, Created: created}}
		case IsTemplate(k):
			o.Created = created
			in.Observed[k] = o
		}
	}
	return in
}

// askedAt sets the observed MachineDeployments' spec.rollout.after.
func askedAt(after time.Time) func(*Input) {
	return func(in *Input) {
		for k, o := range in.Observed {
			if strings.HasPrefix(k, keyMachineDeployment) {
				o.RolloutAfter = after
				in.Observed[k] = o
			}
		}
	}
}

// rotationSummary is what a test compares of a plan's rotation.
type rotationSummary struct {
	After     map[string]string // MachineDeployment name: spec.rollout.after.
	Bootstrap string            // The MachinePool's bootstrap config.
	Stamp     string            // Its AnnotationRotation.
	Status    *v1alpha1.RotationStatus
	Replace   []string // Objects whose Change is Replace.
	Hold      string
}

func summarizeRotation(p *Plan) rotationSummary {
	s := rotationSummary{Status: p.Status.Rotation}
	for _, r := range p.Resources {
		switch o := r.Object.(type) {
		case *clusterv1.MachineDeployment:
			if !o.Spec.Rollout.After.IsZero() {
				if s.After == nil {
					s.After = map[string]string{}
				}
				s.After[o.Name] = o.Spec.Rollout.After.UTC().Format(time.RFC3339)
			}
		case *clusterv1.MachinePool:
			s.Bootstrap = o.Spec.Template.Spec.Bootstrap.ConfigRef.Name
		}
	}
	for _, r := range p.Resources {
		if r.Object.GetName() == s.Bootstrap && s.Bootstrap != "" {
			s.Stamp = r.Object.GetAnnotations()[AnnotationRotation]
		}
	}
	for _, c := range p.Status.Changes {
		if c.Action == v1alpha1.ChangeReplace {
			s.Replace = append(s.Replace, c.Object)
		}
	}
	if p.Hold != nil {
		s.Hold = p.Hold.Reason
	}
	return s
}

// A rotationCase is a case of TestRotation.
type rotationCase struct {
	reason string
	// setup is the pool's input before it runs; edit changes what runs.
	setup, edit func(*Input)
	now         time.Time
	want        rotationSummary
	wantWake    time.Time
	// wantRenamed: the MachinePool's bootstrap config differs from the
	// one it ran.
	wantRenamed bool
}

func TestRotation(t *testing.T) {
	created := testNow.Add(-testMaxAge)
	// The fixture pool's due time: its fixed point of the spread before
	// the max age.
	due := created.Add(testMaxAge - testSpread + offset("team-a/workers", testSpread))
	at := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	status := func(created, due time.Time) *v1alpha1.RotationStatus {
		return &v1alpha1.RotationStatus{MaxNodeAge: &metav1.Duration{Duration: testMaxAge},
			RevisionCreated: ptr.To(metav1.NewTime(created)), NextRotation: ptr.To(metav1.NewTime(due))}
	}
	mds := []string{"MachineDeployment/prod-eu-1-workers-eu-west-1a", "MachineDeployment/prod-eu-1-workers-eu-west-1b"}
	both := func(v string) map[string]string {
		return map[string]string{"prod-eu-1-workers-eu-west-1a": v, "prod-eu-1-workers-eu-west-1b": v}
	}
	mp := func(in *Input) { in.Spec.Backend = v1alpha1.BackendMachinePool }
	unrotatedBootstrap := func() string {
		in := runningSince(t, input(mp), created)
		in.Now = due.Add(time.Minute)
		p, err := testPlanner().Plan(in)
		if err != nil {
			t.Fatal(err)
		}
		return summarizeRotation(p).Bootstrap
	}()

	cases := map[string]rotationCase{
		"NotDue": {
			reason:   "Before its due time a revision is left alone, and the pool asks to be planned again then.",
			setup:    withMaxAge,
			now:      due.Add(-time.Hour),
			want:     rotationSummary{Status: status(created, due)},
			wantWake: due,
		},
		"Due": {
			reason: "Once due, every MachineDeployment is given spec.rollout.after at its due time: a Replace change, which starts.",
			setup:  withMaxAge,
			now:    due.Add(time.Minute),
			want:   rotationSummary{After: both(at(due)), Status: status(created, due), Replace: mds},
		},
		"DueButPaused": {
			reason: "A due rotation is a disruptive change: a paused policy holds it, and the MachineDeployments keep what they run.",
			setup:  withMaxAge,
			edit:   func(in *Input) { in.Policy.Rollouts = &v1beta1.RolloutPolicy{Paused: true} },
			now:    due.Add(time.Minute),
			want:   rotationSummary{Status: status(created, due), Replace: mds, Hold: HoldPaused},
		},
		"DueOutsideWindow": {
			reason: "A due rotation waits for the pool's maintenance window (22:00-02:00; it is 12:00).",
			setup:  withMaxAge,
			edit: func(in *Input) {
				in.Policy.Rollouts = &v1beta1.RolloutPolicy{MaintenanceWindows: []v1beta1.MaintenanceWindow{nightly}, DefaultMaintenanceWindow: "nightly"}
			},
			now:      time.Date(2026, time.December, 30, 12, 0, 0, 0, time.UTC),
			want:     rotationSummary{Status: status(created, due), Replace: mds, Hold: HoldMaintenanceWindow},
			wantWake: time.Date(2026, time.December, 30, 22, 0, 0, 0, time.UTC),
		},
		"AskedAlready": {
			reason: "A rotation asked for (spec.rollout.after at the due time) is not asked again while Cluster API makes the new MachineSet.",
			setup:  withMaxAge,
			edit:   askedAt(due),
			now:    due.Add(time.Minute),
			want:   rotationSummary{After: both(at(due)), Status: status(created, due)},
		},
		"Rotated": {
			reason: "Once the new MachineSets exist, the next rotation is a max age after them, and spec.rollout.after stays as it is.",
			setup:  withMaxAge,
			edit: func(in *Input) {
				askedAt(due)(in)
				for k, o := range in.Observed {
					if strings.HasPrefix(k, keyMachineDeployment) {
						ms := in.MachineSets[o.Name][0]
						ms.Created = due.Add(time.Second)
						in.MachineSets[o.Name] = append(in.MachineSets[o.Name], ms)
					}
				}
			},
			now:      due.Add(time.Minute),
			want:     rotationSummary{After: both(at(due)), Status: status(due.Add(time.Second), due.Add(time.Second).Add(due.Sub(created)))},
			wantWake: due.Add(time.Second).Add(due.Sub(created)),
		},
		"UnderWayWhenTurnedOff": {
			reason: "A rotation under way runs to its end when the policy drops the max age: spec.rollout.after is kept (without it " +
				"Cluster API would take the oldest MachineSet for the current one and roll back).",
			edit: askedAt(due),
			now:  due.Add(time.Minute),
			want: rotationSummary{After: both(at(due))},
		},
		"MachineSetsUnknown": {
			reason: "Until the MachineSets are fetched a revision's age is unknown: nothing rotates.",
			setup:  withMaxAge,
			edit:   func(in *Input) { in.MachineSets = nil },
			now:    due.Add(time.Minute),
			want:   rotationSummary{Status: &v1alpha1.RotationStatus{MaxNodeAge: &metav1.Duration{Duration: testMaxAge}}},
		},
		"MachinePoolNotDue": {
			reason:   "A MachinePool not due keeps its bootstrap config, which has no rotation stamp.",
			setup:    func(in *Input) { withMaxAge(in); mp(in) },
			now:      due.Add(-time.Hour),
			want:     rotationSummary{Bootstrap: unrotatedBootstrap, Status: status(created, due)},
			wantWake: due,
		},
		"ZonesOfDifferentAges": {
			reason: "Each zone's MachineDeployment rotates at its own revision's due time; the pool wakes for the next one.",
			setup:  withMaxAge,
			edit: func(in *Input) {
				sets := in.MachineSets["prod-eu-1-workers-eu-west-1b"]
				sets[0].Created = created.Add(48 * time.Hour)
			},
			now: due.Add(time.Minute),
			want: rotationSummary{After: map[string]string{"prod-eu-1-workers-eu-west-1a": at(due)}, Status: status(created, due),
				Replace: mds[:1]},
			wantWake: due.Add(48 * time.Hour),
		},
		"AtZero": {
			reason: "A pool at zero nodes rotates its due revision while paused: that replaces no machine, and its nodes are fresh when the autoscaler grows it.",
			setup:  withMaxAge,
			edit: func(in *Input) {
				in.Policy.Rollouts = &v1beta1.RolloutPolicy{Paused: true}
				for k, o := range in.Observed {
					if strings.HasPrefix(k, keyMachineDeployment) {
						o.Replicas = ptr.To[int32](0)
						in.Observed[k] = o
					}
				}
			},
			now:  due.Add(time.Minute),
			want: rotationSummary{After: both(at(due)), Status: status(created, due), Replace: mds},
		},
		"StillRolling": {
			reason: "A MachineDeployment still replacing machines does not start a rotation: its progress plans the pool again.",
			setup:  withMaxAge,
			edit: func(in *Input) {
				for k, o := range in.Observed {
					if strings.HasPrefix(k, keyMachineDeployment) {
						o.UpToDateReplicas = ptr.To[int32](1)
						in.Observed[k] = o
					}
				}
			},
			now:  due.Add(time.Minute),
			want: rotationSummary{Status: status(created, due)},
		},
		"MachinePoolDue": {
			reason: "A due MachinePool gets a new bootstrap config, stamped with its due time: the new name rolls the group's instances.",
			setup:  func(in *Input) { withMaxAge(in); mp(in) },
			now:    due.Add(time.Minute),
			want: rotationSummary{Stamp: at(due), Status: status(created, due),
				Replace: []string{"MachinePool/prod-eu-1-workers"}},
			wantRenamed: true,
		},
	}
	cases["MachinePoolStampCarried"] = rotationCase{
		reason: "A MachinePool rotated for one due time, then relabelled, carries the stamp into its new config: no second rotation.",
		setup:  func(in *Input) { withMaxAge(in); mp(in) },
		edit: func(in *Input) {
			for k, o := range in.Observed {
				if IsTemplate(k) && o.Name == in.Observed[keyMachinePool].Bootstrap {
					o.Rotation, o.Created = at(due), due.Add(time.Minute)
					in.Observed[k] = o
				}
			}
			in.Spec.Labels = map[string]string{"team": "b"}
		},
		now:  due.Add(2 * time.Minute),
		want: rotationSummary{Stamp: at(due), Status: status(due.Add(time.Minute), due.Add(time.Minute).Add(due.Sub(created))), Replace: []string{"MachinePool/prod-eu-1-workers"}},
		// The label change renames the config (a Replace for the label),
		// keeping the stamp; the next rotation is a max age on.
		wantWake:    due.Add(time.Minute).Add(due.Sub(created)),
		wantRenamed: true,
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			in := runningSince(t, input(tc.setup), created)
			if tc.edit != nil {
				tc.edit(&in)
			}
			in.Now = tc.now
			p, err := testPlanner().Plan(in)
			if err != nil {
				t.Fatalf("%s\nPlan(...): %v", tc.reason, err)
			}
			got := summarizeRotation(p)
			if tc.want.Bootstrap == "" {
				renamed := got.Bootstrap != unrotatedBootstrap
				if tc.want.Stamp != "" && renamed != tc.wantRenamed {
					t.Errorf("%s\nbootstrap config %s renamed: %t, want %t", tc.reason, got.Bootstrap, renamed, tc.wantRenamed)
				}
				got.Bootstrap = ""
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nPlan(...): -want, +got:\n%s", tc.reason, diff)
			}
			if !p.Wake.Equal(tc.wantWake) {
				t.Errorf("%s\nPlan(...).Wake = %s, want %s", tc.reason, p.Wake, tc.wantWake)
			}
		})
	}
}

func TestRotationSettings(t *testing.T) {
	d := func(s string) *metav1.Duration {
		v, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return &metav1.Duration{Duration: v}
	}
	cases := map[string]struct {
		reason    string
		edit      func(*Input)
		wantErr   string // A substring of the error; "" for none.
		wantRotat bool
	}{
		"PolicyDefault": {
			reason:    "The policy's max age applies to pools that set none.",
			edit:      withMaxAge,
			wantRotat: true,
		},
		"ShorterOwn": {
			reason:    "A pool may ask for a shorter max age than the policy's.",
			edit:      func(in *Input) { withMaxAge(in); in.Spec.MaxNodeAge = d("168h") },
			wantRotat: true,
		},
		"LongerThanLimit": {
			reason:  "A pool may not ask for longer than the policy allows.",
			edit:    func(in *Input) { withMaxAge(in); in.Spec.MaxNodeAge = d("1000h") },
			wantErr: "spec.maxNodeAge: Invalid value: \"1000h0m0s\": the platform policy allows at most 720h0m0s",
		},
		"WithinLongest": {
			reason: "input.rotation.longestNodeAge lets pools ask for longer than the default.",
			edit: func(in *Input) {
				withMaxAge(in)
				in.Policy.Rotation.LongestNodeAge, in.Spec.MaxNodeAge = d("2160h"), d("1000h")
			},
			wantRotat: true,
		},
		"TooShort": {
			reason:  "A max age under a minute is refused.",
			edit:    func(in *Input) { in.Spec.MaxNodeAge = d("30s") },
			wantErr: "spec.maxNodeAge: Invalid value: \"30s\": set a max node age of at least 1m",
		},
		"SpreadTooWide": {
			reason:  "A spread must be shorter than the max age.",
			edit:    func(in *Input) { withMaxAge(in); in.Policy.Rotation.Spread = d("720h") },
			wantErr: "input.rotation.spread: Invalid value: \"720h0m0s\": set a spread of at least 0 and less than the max node age",
		},
		"EKSManagedOwn": {
			reason:  "An EKS managed node group cannot rotate: a pool asking for it is refused with why.",
			edit:    func(in *Input) { in.Cluster = eks; in.Spec.MaxNodeAge = d("168h") },
			wantErr: "spec.maxNodeAge: Forbidden: the pool's nodes (backend Managed on aws) cannot be replaced for their age: an EKS managed node group",
		},
		"EKSManagedPolicy": {
			reason: "The policy's default max age does not apply to pools that cannot rotate.",
			edit:   func(in *Input) { in.Cluster = eks; withMaxAge(in) },
		},
		"AzureMachinePoolOwn": {
			reason: "CAPZ does not roll scale sets for new bootstrap data: an Azure MachinePool asking for a max age is refused.",
			edit: func(in *Input) {
				onAzure(in)
				in.Spec.Backend, in.Spec.MaxNodeAge = v1alpha1.BackendMachinePool, d("168h")
			},
			wantErr: "Cluster API Azure does not replace a scale set's instances for new bootstrap data",
		},
		"AWSMachinePool": {
			reason:    "An Auto Scaling group rotates by a new bootstrap config (an instance refresh).",
			edit:      func(in *Input) { withMaxAge(in); in.Spec.Backend = v1alpha1.BackendMachinePool },
			wantRotat: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := testPlanner().Plan(input(tc.edit))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("%s\nPlan(...): got error %v, want one containing %q", tc.reason, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s\nPlan(...): %v", tc.reason, err)
			}
			if got := p.Status.Rotation != nil; got != tc.wantRotat {
				t.Errorf("%s\nPlan(...).Status.Rotation set: %t, want %t", tc.reason, got, tc.wantRotat)
			}
		})
	}
}

// TestRotationSpread checks the property that pools rotate apart: over
// 1,000 pools whose nodes were all made at once, each tenth of the spread
// receives its share of the due times, within 40%.
func TestRotationSpread(t *testing.T) {
	const pools, buckets = 1000, 10
	counts := make([]int, buckets)
	for i := range pools {
		o := offset(fmt.Sprintf("team-%d/pool-%d", i%37, i), testSpread)
		if o < 0 || o >= testSpread || o%time.Second != 0 {
			t.Fatalf("offset(pool-%d) = %s, want whole seconds in [0, %s)", i, o, testSpread)
		}
		counts[int(o*buckets/testSpread)]++
	}
	for b, n := range counts {
		if want := pools / buckets; n < want*6/10 || n > want*14/10 {
			t.Errorf("tenth %d of the spread holds %d of %d pools' due times, want %d +-40%%: %v", b, n, pools, want, counts)
		}
	}
}
