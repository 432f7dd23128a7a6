package invariant

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// healthy is a fleet mid-rollout that breaks no rule: an old and a new
// MachineSet, both templates kept, workers at the control plane's version.
func healthy() Snapshot {
	ms := func(name, infra string, running int32, version string) MachineSet {
		return MachineSet{Ref: Ref{"MachineSet", "f", name}, Pool: "p", Cluster: "c1", Version: version, Running: running,
			Infra: Ref{Kind: "DevMachineTemplate", Name: infra}, Bootstrap: Ref{Kind: "KubeadmConfigTemplate", Name: "b1"}}
	}
	return Snapshot{
		ControlPlanes: map[string]string{"f/c1": "v1.34.1"},
		Templates: map[Ref]bool{
			{"DevMachineTemplate", "f", "t1"}: true, {"DevMachineTemplate", "f", "t2"}: true, {"KubeadmConfigTemplate", "f", "b1"}: true,
		},
		Backings: []Backing{
			{Ref: Ref{"MachineDeployment", "f", "md"}, UID: "u1", Pool: "p", Cluster: "c1", Version: "v1.34.1", Autoscaled: true, Running: 2},
		},
		MachineSets: []MachineSet{ms("ms-old", "t1", 1, "v1.33.4"), ms("ms-new", "t2", 1, "v1.34.1")},
		Machines: []Machine{
			{Ref: Ref{"Machine", "f", "w1"}, Pool: "p", Cluster: "c1", Version: "v1.34.1"},
			{Ref: Ref{"Machine", "f", "w2"}, Pool: "p", Cluster: "c1", Version: "v1.33.4"},
		},
		Pools: []Pool{{Namespace: "f", Name: "p"}},
	}
}

func TestCheck(t *testing.T) {
	cases := map[string]struct {
		reason string
		edit   func(*Snapshot)
		want   []Violation
	}{
		"Healthy": {
			reason: "A rollout that keeps its templates and follows the control plane breaks nothing.",
		},
		"TemplateDeletedUnderMachineSet": {
			reason: "A MachineSet whose infrastructure template is gone is reported.",
			edit:   func(s *Snapshot) { delete(s.Templates, Ref{"DevMachineTemplate", "f", "t1"}) },
			want:   []Violation{{TemplateExists, "f/p", "MachineSet/f/ms-old", "clones from DevMachineTemplate t1, which does not exist"}},
		},
		"BootstrapTemplateDeleted": {
			reason: "Bootstrap templates are checked too, for every MachineSet using them.",
			edit:   func(s *Snapshot) { delete(s.Templates, Ref{"KubeadmConfigTemplate", "f", "b1"}) },
			want: []Violation{
				{TemplateExists, "f/p", "MachineSet/f/ms-new", "clones from KubeadmConfigTemplate b1, which does not exist"},
				{TemplateExists, "f/p", "MachineSet/f/ms-old", "clones from KubeadmConfigTemplate b1, which does not exist"},
			},
		},
		"TemplateOfAnotherNamespace": {
			reason: "A template of the same name in another namespace is not the MachineSet's.",
			edit: func(s *Snapshot) {
				delete(s.Templates, Ref{"DevMachineTemplate", "f", "t1"})
				s.Templates[Ref{"DevMachineTemplate", "g", "t1"}] = true
			},
			want: []Violation{{TemplateExists, "f/p", "MachineSet/f/ms-old", "clones from DevMachineTemplate t1, which does not exist"}},
		},
		"NoReference": {
			reason: "A MachineSet without a bootstrap template (a MachinePool's machines, say) references nothing missing.",
			edit:   func(s *Snapshot) { s.MachineSets[0].Bootstrap = Ref{} },
		},
		"MachineNewerThanControlPlane": {
			reason: "A worker Machine newer than its control plane is reported.",
			edit: func(s *Snapshot) {
				s.ControlPlanes["f/c1"] = "v1.34.0"
				s.Backings[0].Version, s.MachineSets[1].Version = "", ""
			},
			want: []Violation{{WorkerNotNewer, "f/p", "Machine/f/w1", "runs v1.34.1, its control plane runs v1.34.0"}},
		},
		"MachineSetNewerThanControlPlane": {
			reason: "A MachineSet running machines of a newer minor is reported, and the backing asking for it.",
			edit:   func(s *Snapshot) { s.ControlPlanes["f/c1"] = "v1.33.4"; s.Machines = nil },
			want: []Violation{
				{WorkerNotNewer, "f/p", "MachineDeployment/f/md", "asks for v1.34.1, its control plane runs v1.33.4"},
				{WorkerNotNewer, "f/p", "MachineSet/f/ms-new", "runs 1 machines of v1.34.1, its control plane runs v1.33.4"},
			},
		},
		"EmptyMachineSetNewer": {
			reason: "A MachineSet of a newer version that runs no machine runs no worker ahead.",
			edit: func(s *Snapshot) {
				s.MachineSets[1].Version, s.MachineSets[1].Running = "v1.35.0", 0
			},
		},
		"UnknownControlPlane": {
			reason: "Workers of a cluster whose control plane is not seen are not judged.",
			edit:   func(s *Snapshot) { s.ControlPlanes = nil },
		},
		"FunctionSetsAutoscaledReplicas": {
			reason: "The function setting spec.replicas of an autoscaled MachineDeployment is reported.",
			edit:   func(s *Snapshot) { s.Backings[0].FunctionSetsReplicas = true },
			want:   []Violation{{ReplicasNotOwned, "f/p", "MachineDeployment/f/md", "is autoscaled, and the function sets its spec.replicas"}},
		},
		"FunctionSetsFixedReplicas": {
			reason: "The function owns the size of a fixed-size pool: no violation.",
			edit:   func(s *Snapshot) { s.Backings[0].Autoscaled, s.Backings[0].FunctionSetsReplicas = false, true },
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := healthy()
			if tc.edit != nil {
				tc.edit(&s)
			}
			if diff := cmp.Diff(tc.want, Check(Snapshot{}, s)); diff != "" {
				t.Errorf("%s\nCheck(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestCheckBacking checks the rule that compares two snapshots: a running
// backing is kept while its pool exists, unless the pool opted in.
func TestCheckBacking(t *testing.T) {
	lost := []Violation{{BackingKept, "f/p", "MachineDeployment/f/md", "was deleted with 2 machines running; the pool did not opt in to replacement"}}
	cases := map[string]struct {
		reason string
		before func(*Snapshot)
		later  func(*Snapshot)
		want   []Violation
	}{
		"Kept": {
			reason: "A pool that keeps its backing breaks nothing.",
			later:  func(*Snapshot) {},
		},
		"Deleted": {
			reason: "A running MachineDeployment deleted while its pool exists is a lost backing.",
			later:  func(s *Snapshot) { s.Backings = nil },
			want:   lost,
		},
		"Recreated": {
			reason: "A running MachineDeployment deleted and recreated under its name (a new UID) was deleted all the same.",
			later:  func(s *Snapshot) { s.Backings[0].UID = "u2" },
			want:   lost,
		},
		"ReplacedUnasked": {
			reason: "Another backing in its place does not make the deletion asked for.",
			later:  func(s *Snapshot) { s.Backings[0].Name = "md-2" },
			want:   lost,
		},
		"ReplacementAllowed": {
			reason: "A pool that opted in to replacement may lose its running backing.",
			later:  func(s *Snapshot) { s.Backings, s.Pools[0].AllowReplacement = nil, true },
		},
		"NotRunning": {
			reason: "A backing that ran no machines may go.",
			before: func(s *Snapshot) { s.Backings[0].Running = 0 },
			later:  func(s *Snapshot) { s.Backings = nil },
		},
		"PoolDeleted": {
			reason: "A deleted pool takes its backing with it: no violation.",
			later:  func(s *Snapshot) { s.Pools, s.Backings = nil, nil },
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			before, now := healthy(), healthy()
			if tc.before != nil {
				tc.before(&before)
			}
			tc.later(&now)
			if diff := cmp.Diff(tc.want, Check(before, now)); diff != "" {
				t.Errorf("%s\nCheck(before, now): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestNewer(t *testing.T) {
	cases := map[string]struct {
		reason string
		a, b   string
		want   bool
	}{
		"Minor":     {reason: "A later minor is newer.", a: "v1.34.1", b: "v1.33.4", want: true},
		"Patch":     {reason: "A later patch is newer.", a: "v1.33.5", b: "v1.33.4", want: true},
		"Same":      {reason: "A version is not newer than itself.", a: "v1.33.4", b: "v1.33.4"},
		"Older":     {reason: "An older version is not newer.", a: "v1.33.4", b: "v1.34.0"},
		"Build":     {reason: "Build metadata does not make a version newer.", a: "v1.33.4+vmware.1", b: "v1.33.4"},
		"Malformed": {reason: "A version that does not parse is never newer.", a: "latest", b: "v1.33.4"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := Newer(tc.a, tc.b); got != tc.want {
				t.Errorf("%s\nNewer(%q, %q): want %t, got %t", tc.reason, tc.a, tc.b, tc.want, got)
			}
		})
	}
}
