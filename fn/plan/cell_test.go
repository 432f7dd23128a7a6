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
				o.Revision = "2026-11-01T10:00:00Z v1.33.4 infra-1 boot-1 -"
			})},
			want: map[string][]MachineSet{"md-a": {{Version: "v1.33.4", Infra: "infra-1", Bootstrap: "boot-1", Replicas: 3,
				Created: time.Date(2026, time.November, 1, 10, 0, 0, 0, time.UTC)}}},
		},
		"RecordOfOtherMachines": {
			reason: "A record of other machines than it runs (another template) dates nothing: age unknown.",
			observed: map[string]Observed{keyMachineDeployment: settled(func(o *Observed) {
				o.Revision = "2026-11-01T10:00:00Z v1.33.4 infra-0 boot-1 -"
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
// them by it. A revision it has no record of is never dated now: its nodes
// would look younger than they are.
func TestCellRotation(t *testing.T) {
	inCell := func(in *Input) {
		in.Spec.Cell = "eu-1"
		in.Policy.Cells = map[string]v1beta1.Cell{"eu-1": {ProviderConfigRef: v1beta1.ProviderConfigReference{Name: "eu-1-admin"}}}
	}
	sent := testNow.Add(-testMaxAge)
	due := sent.Add(testMaxAge - testSpread + offset("team-a/workers", testSpread))
	// running is the pool as its cell reports it after it was planned at
	// sent: every MachineDeployment settled, every machine up to date.
	running := func(t *testing.T, mods ...func(*Input)) Input {
		t.Helper()
		in := input(append([]func(*Input){withMaxAge, inCell}, mods...)...)
		in.Now = sent
		p, err := testPlanner().Plan(in)
		if err != nil {
			t.Fatal(err)
		}
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
	// runningAt is the running pool planned at now, each observed object
	// edited.
	runningAt := func(now time.Time, edit func(key string, o *Observed)) func(t *testing.T) Input {
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
	// A summary is, by MachineDeployment, when its record says its
	// machines were sent ("none" without a record, "other" for a record of
	// other machines) and its spec.rollout.after ("-" unset).
	type summary map[string]string
	summarize := func(p *Plan) summary {
		s := summary{}
		for _, r := range p.Resources {
			md, ok := r.Object.(*clusterv1.MachineDeployment)
			if !ok {
				continue
			}
			when, machines := revisionOf(md.GetAnnotations()[AnnotationRevision])
			rec := when.UTC().Format(time.RFC3339)
			switch {
			case md.GetAnnotations()[AnnotationRevision] == "":
				rec = "none"
			case machines != machinesOf(md.Spec.Template.Spec.Version, references(md), md.Spec.Rollout.After.Time):
				rec = "other"
			}
			after := "-"
			if !md.Spec.Rollout.After.IsZero() {
				after = md.Spec.Rollout.After.UTC().Format(time.RFC3339)
			}
			s[md.Name] = rec + " after " + after
		}
		return s
	}
	both := func(v string) summary {
		return summary{"prod-eu-1-workers-eu-west-1a": v, "prod-eu-1-workers-eu-west-1b": v}
	}
	at := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
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
			want: both(at(testNow) + " after -"),
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
			in:     runningAt(due.Add(-time.Minute), nil),
			want:   both(at(sent) + " after -"),
		},
		"Due": {
			reason: "Once due by its record, each MachineDeployment is given spec.rollout.after at its due time, and records the new machines, sent now.",
			in:     runningAt(due.Add(time.Minute), nil),
			want:   both(at(due.Add(time.Minute)) + " after " + at(due)),
		},
		"Unrecorded": {
			reason: "A MachineDeployment running without a record (made before records were kept) is not dated now, nor rotated: its age is unknown.",
			in:     runningAt(due.Add(time.Minute), func(_ string, o *Observed) { o.Revision = "" }),
			want:   both("none after -"),
		},
		"Rolling": {
			reason: "A MachineDeployment still replacing machines is not rotated, and keeps its record.",
			in: runningAt(due.Add(time.Minute), func(k string, o *Observed) {
				if strings.HasPrefix(k, keyMachineDeployment) {
					o.UpToDateReplicas = ptr.To[int32](1)
				}
			}),
			want: both(at(sent) + " after -"),
		},
		"Changed": {
			reason: "New machines (another class, so other templates) are recorded, sent now.",
			in: func(t *testing.T) Input {
				in := runningAt(sent.Add(time.Hour), nil)(t)
				in.Spec.Machine.Class = "large"
				return in
			},
			want: both(at(sent.Add(time.Hour)) + " after -"),
		},
		"ChangeHeld": {
			reason: "New machines held by the rollout gates (the Cluster's other pools not known yet) are not sent: the record of what runs is kept.",
			in: func(t *testing.T) Input {
				in := runningAt(sent.Add(time.Hour), nil)(t)
				in.Spec.Machine.Class, in.Siblings = "large", nil
				return in
			},
			want: both(at(sent) + " after -"),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := testPlanner().Plan(tc.in(t))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, summarize(p)); diff != "" {
				t.Errorf("%s\nrevision records: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
