package plan

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"

	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/fleetnodepool/function-fleetnodepool/apis/input/v1beta1"
)

func TestRemoteMachineSets(t *testing.T) {
	settled := func(edit func(*Observed)) Observed {
		o := Observed{Name: "md-a", Version: "v1.33.4", References: []string{"infra-1", "boot-1"}, Bootstrap: "boot-1",
			Generation: 2, ObservedGeneration: 2, Replicas: ptr.To[int32](3), UpToDateReplicas: ptr.To[int32](3), SpecReplicas: ptr.To[int32](3)}
		if edit != nil {
			edit(&o)
		}
		return o
	}
	one := map[string][]MachineSet{"md-a": {{Version: "v1.33.4", Infra: "infra-1", Bootstrap: "boot-1", Replicas: 3}}}
	cases := map[string]struct {
		reason   string
		observed map[string]Observed
		want     map[string][]MachineSet
	}{
		"Settled": {
			reason:   "A MachineDeployment that acted on its spec and runs every machine up to date has one MachineSet, of its own templates.",
			observed: map[string]Observed{keyMachineDeployment: settled(nil), "infra-1": {Name: "infra-1"}},
			want:     one,
		},
		"Autoscaled": {
			reason:   "Without spec.replicas (the autoscaler's), its status alone says it settled.",
			observed: map[string]Observed{keyMachineDeployment: settled(func(o *Observed) { o.SpecReplicas = nil })},
			want:     one,
		},
		"Rolling": {
			reason:   "Machines not up to date: old MachineSets exist, which the function cannot name: unknown.",
			observed: map[string]Observed{keyMachineDeployment: settled(func(o *Observed) { o.UpToDateReplicas = ptr.To[int32](1) })},
		},
		"OldVersionRunning": {
			reason:   "Its status.versions reports machines of another version: a version rollout under way, whatever the up-to-date count says yet: unknown.",
			observed: map[string]Observed{keyMachineDeployment: settled(func(o *Observed) { o.OtherVersions = 1 })},
		},
		"NotCaughtUp": {
			reason:   "Cluster API has not acted on its latest spec: a rollout may be about to start: unknown.",
			observed: map[string]Observed{keyMachineDeployment: settled(func(o *Observed) { o.ObservedGeneration = 1 })},
		},
		"Scaling": {
			reason:   "Asked for more machines than it has: a MachineSet may be about to be made: unknown.",
			observed: map[string]Observed{keyMachineDeployment: settled(func(o *Observed) { o.SpecReplicas = ptr.To[int32](4) })},
		},
		"NotReported": {
			reason:   "The cell has not reported it (only what was sent is known): unknown.",
			observed: map[string]Observed{keyMachineDeployment: {Name: "md-a", SpecReplicas: ptr.To[int32](3), References: []string{"infra-1"}}},
		},
		"OneOfTwoRolling": {
			reason: "One MachineDeployment of the pool rolls: all unknown, so no template of the pool is released.",
			observed: map[string]Observed{keyMachineDeployment + "-a": settled(nil), keyMachineDeployment + "-b": settled(func(o *Observed) {
				o.Name, o.UpToDateReplicas = "md-b", ptr.To[int32](0)
			})},
		},
		"Dated": {
			reason: "The function's record of when it sent the machines the MachineDeployment runs dates its MachineSet.",
			observed: map[string]Observed{keyMachineDeployment: settled(func(o *Observed) {
				o.Revision = "2026-11-01T10:00:00Z - v1.33.4 infra-1 boot-1 -"
			})},
			want: map[string][]MachineSet{"md-a": {{Version: "v1.33.4", Infra: "infra-1", Bootstrap: "boot-1", Replicas: 3,
				Created: time.Date(2026, time.November, 1, 10, 0, 0, 0, time.UTC)}}},
		},
		"RecordOfOtherMachines": {
			reason: "A record of other machines than it runs (another template) dates nothing: age unknown.",
			observed: map[string]Observed{keyMachineDeployment: settled(func(o *Observed) {
				o.Revision = "2026-11-01T10:00:00Z - v1.33.4 infra-0 boot-1 -"
			})},
			want: one,
		},
		"MachinePool": {
			reason:   "A MachinePool has no MachineSets: none, known.",
			observed: map[string]Observed{keyMachinePool: {Name: "mp"}},
			want:     map[string][]MachineSet{},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := remoteMachineSets(tc.observed)
			if diff := cmp.Diff(tc.want, got); diff != "" || (tc.want == nil) != (got == nil) {
				t.Errorf("%s\nremoteMachineSets(): -want +got:\n%s (nil: want %v, got %v)", tc.reason, diff, tc.want == nil, got == nil)
			}
		})
	}
}

// TestCellRotation: a pool in a cell dates its MachineDeployments'
// revisions by its own record of when it sent their machines
// (AnnotationRevision; a cell's MachineSets cannot be read), and rotates
// them by it. No record ever makes nodes look younger than they are: one
// it has no record of is not dated now, and going back to machines a
// MachineDeployment still runs keeps their nodes' age.
func TestCellRotation(t *testing.T) {
	inCell := func(in *Input) {
		in.Spec.Cell = "eu-1"
		in.Policy.Cells = map[string]v1beta1.Cell{"eu-1": {ProviderConfigRef: v1beta1.ProviderConfigReference{Name: "eu-1-admin"}}}
	}
	sent := testNow.Add(-testMaxAge)
	due := sent.Add(testMaxAge - testSpread + offset("team-a/workers", testSpread))
	changed, back := sent.Add(time.Hour), sent.Add(2*time.Hour)
	plan := func(t *testing.T, in Input) *Plan {
		t.Helper()
		p, err := testPlanner().Plan(in)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	// runs is in as its cell reports it after it ran p: every
	// MachineDeployment settled, every machine up to date.
	runs := func(t *testing.T, in Input, p *Plan) Input {
		t.Helper()
		in.Observed = observe(t, p, 3)
		for k, o := range in.Observed {
			o.Cell = "eu-1"
			if strings.HasPrefix(k, keyMachineDeployment) {
				o.UpToDateReplicas = ptr.To[int32](3)
			}
			in.Observed[k] = o
		}
		return in
	}
	// running is the pool running what it was sent at sent (class medium).
	running := func(t *testing.T) Input {
		t.Helper()
		in := input(withMaxAge, inCell)
		in.Now = sent
		return runs(t, in, plan(t, in))
	}
	// edited is the running pool planned at now, each observed object
	// edited.
	edited := func(now time.Time, edit func(key string, o *Observed)) func(t *testing.T) Input {
		return func(t *testing.T) Input {
			in := running(t)
			in.Now = now
			for k, o := range in.Observed {
				if edit != nil {
					edit(k, &o)
				}
				in.Observed[k] = o
			}
			return in
		}
	}
	mds := func(edit func(o *Observed)) func(key string, o *Observed) {
		return func(k string, o *Observed) {
			if strings.HasPrefix(k, keyMachineDeployment) {
				edit(o)
			}
		}
	}
	// toLarge is the running pool sent class large at changed, as its cell
	// reports it: rolling (upToDate of its 3 machines up to date), settled
	// (3, the templates it left released since), or not reported yet
	// (upToDate < 0: the old machines, a spec not acted on).
	toLarge := func(t *testing.T, upToDate int32) Input {
		t.Helper()
		in := running(t)
		in.Spec.Machine.Class, in.Now = "large", changed
		p := plan(t, in)
		if upToDate < 0 {
			for k, o := range in.Observed {
				if r := p.resource(k); r != nil && strings.HasPrefix(k, keyMachineDeployment) {
					o.Revision, o.Generation = r.GetAnnotations()[AnnotationRevision], o.Generation+1
					in.Observed[k] = o
				}
			}
			return in
		}
		in = runs(t, in, p)
		used := referencedBy(backingsOf(in.Observed))
		for k, o := range in.Observed {
			switch {
			case strings.HasPrefix(k, keyMachineDeployment):
				o.UpToDateReplicas = ptr.To(upToDate)
				in.Observed[k] = o
			case upToDate == 3 && IsTemplate(k) && !used[o.Name]:
				delete(in.Observed, k)
			}
		}
		return in
	}
	// fromLarge is toLarge(upToDate), planned at now for class.
	fromLarge := func(upToDate int32, class string, now time.Time) func(t *testing.T) Input {
		return func(t *testing.T) Input {
			in := toLarge(t, upToDate)
			in.Spec.Machine.Class, in.Now = class, now
			return in
		}
	}
	// at is a time in a summary, "-" for zero.
	at := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	// A summary is, by MachineDeployment, its record ("none" without one,
	// "other machines" for one of other machines than it makes) and its
	// spec.rollout.after ("-" unset).
	type summary map[string]string
	summarize := func(p *Plan) summary {
		s := summary{}
		for _, r := range p.Resources {
			md, ok := r.Object.(*clusterv1.MachineDeployment)
			if !ok {
				continue
			}
			after := "-"
			if !md.Spec.Rollout.After.IsZero() {
				after = md.Spec.Rollout.After.UTC().Format(time.RFC3339)
			}
			rec, recorded := parseRevision(md.GetAnnotations()[AnnotationRevision])
			switch {
			case !recorded:
				s[md.Name] = "none after " + after
			case rec.machines != machinesOf(md.Spec.Template.Spec.Version, references(md), md.Spec.Rollout.After.Time):
				s[md.Name] = "other machines"
			default:
				s[md.Name] = "sent " + at(rec.sent) + " floor " + at(rec.floor) + " after " + after
			}
		}
		return s
	}
	both := func(v string) summary {
		return summary{"prod-eu-1-workers-eu-west-1a": v, "prod-eu-1-workers-eu-west-1b": v}
	}
	rec := func(sent, floor time.Time, after string) summary {
		return both("sent " + at(sent) + " floor " + at(floor) + " after " + after)
	}
	cases := map[string]struct {
		reason string
		in     func(t *testing.T) Input
		want   summary
	}{
		"New": {
			reason: "A new pool's MachineDeployments record their machines, sent now.",
			in: func(*testing.T) Input {
				in := input(withMaxAge, inCell)
				in.Now = testNow
				return in
			},
			want: rec(testNow, testNow, "-"),
		},
		"Local": {
			reason: "A local pool records nothing: its MachineSets date its revisions.",
			in: func(*testing.T) Input {
				in := input(withMaxAge)
				in.Now = testNow
				return in
			},
			want: both("none after -"),
		},
		"NotDue": {
			reason: "Before its due time the record is kept as it is, and nothing rotates.",
			in:     edited(due.Add(-time.Minute), nil),
			want:   rec(sent, sent, "-"),
		},
		"Due": {
			reason: "Once due by its record, each MachineDeployment is given spec.rollout.after at its due time, and records the new machines, sent now, " +
				"its floor the record's time.",
			in:   edited(due.Add(time.Minute), nil),
			want: rec(due.Add(time.Minute), sent, due.UTC().Format(time.RFC3339)),
		},
		"Unrecorded": {
			reason: "A MachineDeployment running without a record (made before records were kept) is not dated now, nor rotated: its age is unknown.",
			in:     edited(due.Add(time.Minute), func(_ string, o *Observed) { o.Revision = "" }),
			want:   both("none after -"),
		},
		"UnrecordedChanged": {
			reason: "A settled MachineDeployment without a record that changes machines records them, sent now; its floor is unknown.",
			in: func(t *testing.T) Input {
				in := edited(changed, func(_ string, o *Observed) { o.Revision = "" })(t)
				in.Spec.Machine.Class = "large"
				return in
			},
			want: rec(changed, time.Time{}, "-"),
		},
		"UnrecordedChangeInFlight": {
			reason: "A change the function sent before it kept records, which the cell does not report yet: the machines it runs may be made already, " +
				"so it is not dated now.",
			in: func(t *testing.T) Input {
				in := edited(changed, func(k string, o *Observed) {
					o.Revision = ""
					if strings.HasPrefix(k, keyMachineDeployment) {
						o.Generation++
					}
				})(t)
				in.Spec.Machine.Class = "large"
				return in
			},
			want: both("none after -"),
		},
		"Rolling": {
			reason: "A MachineDeployment still replacing machines is not rotated, and keeps its record.",
			in:     edited(due.Add(time.Minute), mds(func(o *Observed) { o.UpToDateReplicas = ptr.To[int32](1) })),
			want:   rec(sent, sent, "-"),
		},
		"Changed": {
			reason: "New machines (another class, so other templates) of a settled MachineDeployment are recorded, sent now, its floor the old record's time.",
			in: func(t *testing.T) Input {
				in := edited(changed, nil)(t)
				in.Spec.Machine.Class = "large"
				return in
			},
			want: rec(changed, sent, "-"),
		},
		"ChangedKeepingALeftTemplate": {
			reason: "A change while the pool still keeps a template it left (the report may not show the last rollout yet) is dated by the oldest " +
				"time the record knows, not now.",
			in: func(t *testing.T) Input {
				in := edited(changed, nil)(t)
				in.Observed["infra-left"] = Observed{Name: "prod-eu-1-workers-left", Cell: "eu-1"}
				in.Spec.Machine.Class = "large"
				return in
			},
			want: rec(sent, sent, "-"),
		},
		"ChangeHeld": {
			reason: "New machines held by the rollout gates (the Cluster's other pools not known yet) are not sent: the record of what runs is kept.",
			in: func(t *testing.T) Input {
				in := edited(changed, nil)(t)
				in.Spec.Machine.Class, in.Siblings = "large", nil
				return in
			},
			want: rec(sent, sent, "-"),
		},
		"ChangeNotReported": {
			reason: "A change sent, which the cell does not report yet: the record sent is kept, not dated again.",
			in:     fromLarge(-1, "large", back),
			want:   rec(changed, sent, "-"),
		},
		"BackWhileRolling": {
			reason: "Going back to the old class while the MachineDeployments roll to the new one: Cluster API keeps the old MachineSets' nodes, " +
				"so the record dates them by the floor, not now.",
			in:   fromLarge(1, "medium", back),
			want: rec(sent, sent, "-"),
		},
		"BackBeforeReported": {
			reason: "Going back to the old class before the cell reports the change: the old nodes run on, dated by the floor; the record is not dropped.",
			in:     fromLarge(-1, "medium", back),
			want:   rec(sent, sent, "-"),
		},
		"SettledOnTheChange": {
			reason: "Once the MachineDeployments settle on the new class, its record dates them: the next change floors at it.",
			in:     fromLarge(3, "medium", back),
			want:   rec(back, changed, "-"),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, summarize(plan(t, tc.in(t)))); diff != "" {
				t.Errorf("%s\nrevision records: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
