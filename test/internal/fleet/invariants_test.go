package fleet

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// healthy is a fleet mid-rollout that breaks no rule: an old and a new
// MachineSet, both templates kept, workers at the control plane's version.
func healthy() Snapshot {
	return Snapshot{
		MachineSets: []MachineSet{
			{Namespace: "f", Name: "ms-old", Infra: Ref{"DevMachineTemplate", "t1"}, Bootstrap: Ref{"KubeadmConfigTemplate", "b1"}},
			{Namespace: "f", Name: "ms-new", Infra: Ref{"DevMachineTemplate", "t2"}, Bootstrap: Ref{"KubeadmConfigTemplate", "b1"}},
		},
		Templates: map[string]bool{"DevMachineTemplate/f/t1": true, "DevMachineTemplate/f/t2": true, "KubeadmConfigTemplate/f/b1": true},
		Machines: []Machine{
			{Namespace: "f", Name: "cp", Cluster: "c1", Version: "v1.34.1", ControlPlane: true, Running: true},
			{Namespace: "f", Name: "w1", Cluster: "c1", Version: "v1.34.1", Pool: "p", Running: true},
			{Namespace: "f", Name: "w2", Cluster: "c1", Version: "v1.33.4", Pool: "p", Running: true},
		},
		Deployments: []Deployment{{Namespace: "f", Name: "md", Pool: "p", Autoscaled: true, ReplicasWriters: []string{"cluster-autoscaler"}}},
		Pools:       []string{"f/p"},
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
			edit:   func(s *Snapshot) { delete(s.Templates, "DevMachineTemplate/f/t1") },
			want:   []Violation{{RuleTemplateExists, "MachineSet/f/ms-old", "references DevMachineTemplate t1, which does not exist"}},
		},
		"BootstrapTemplateDeleted": {
			reason: "Bootstrap templates are checked too.",
			edit:   func(s *Snapshot) { delete(s.Templates, "KubeadmConfigTemplate/f/b1") },
			want: []Violation{
				{RuleTemplateExists, "MachineSet/f/ms-new", "references KubeadmConfigTemplate b1, which does not exist"},
				{RuleTemplateExists, "MachineSet/f/ms-old", "references KubeadmConfigTemplate b1, which does not exist"},
			},
		},
		"WorkerNewerThanControlPlane": {
			reason: "A worker on a newer minor than the oldest control-plane machine is reported.",
			edit:   func(s *Snapshot) { s.Machines[0].Version = "v1.33.4" },
			want:   []Violation{{RuleWorkerNotNewer, "Machine/f/w1", "runs v1.34.1, its control plane v1.33.4"}},
		},
		"FunctionOwnsAutoscaledReplicas": {
			reason: "Crossplane (the function's desired state) owning spec.replicas of an autoscaled MachineDeployment is reported.",
			edit: func(s *Snapshot) {
				s.Deployments[0].ReplicasWriters = append(s.Deployments[0].ReplicasWriters, "apiextensions.crossplane.io/composed/abc")
			},
			want: []Violation{{RuleReplicasOwner, "MachineDeployment/f/md", "spec.replicas of an autoscaled MachineDeployment is owned by apiextensions.crossplane.io/composed/abc"}},
		},
		"FixedReplicasOwnedByFunction": {
			reason: "The function owns the size of a fixed-size pool: no violation.",
			edit: func(s *Snapshot) {
				s.Deployments[0].Autoscaled, s.Deployments[0].ReplicasWriters = false, []string{"apiextensions.crossplane.io/composed/abc"}
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := healthy()
			if tc.edit != nil {
				tc.edit(&s)
			}
			h := &History{}
			if diff := cmp.Diff(tc.want, h.Check(s)); diff != "" {
				t.Errorf("%s\nCheck: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestCheckBacking checks the rule that needs history: a pool that had
// running machines must keep them.
func TestCheckBacking(t *testing.T) {
	cases := map[string]struct {
		reason string
		later  func(*Snapshot)
		want   []Violation
	}{
		"Kept": {
			reason: "A pool that keeps its machines breaks nothing.",
			later:  func(*Snapshot) {},
		},
		"MachineDeploymentGone": {
			reason: "A pool whose MachineDeployment is deleted lost its backing.",
			later:  func(s *Snapshot) { s.Deployments = nil },
			want:   []Violation{{RuleBacking, "FleetNodePool/f/p", "had running machines and has no MachineDeployment now"}},
		},
		"NoRunningMachines": {
			reason: "A pool whose machines all went away lost its backing.",
			later:  func(s *Snapshot) { s.Machines = s.Machines[:1] },
			want:   []Violation{{RuleBacking, "FleetNodePool/f/p", "had running machines and has none now"}},
		},
		"DeletedPool": {
			reason: "A deleted pool takes its machines with it: no violation.",
			later:  func(s *Snapshot) { s.Pools, s.Deployments, s.Machines = nil, nil, s.Machines[:1] },
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h := &History{}
			if v := h.Check(healthy()); len(v) > 0 {
				t.Fatalf("healthy snapshot: %v", v)
			}
			s := healthy()
			tc.later(&s)
			if diff := cmp.Diff(tc.want, h.Check(s)); diff != "" {
				t.Errorf("%s\nCheck: -want, +got:\n%s", tc.reason, diff)
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
