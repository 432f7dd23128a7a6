package plan

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"
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
