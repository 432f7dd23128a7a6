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

// twoPools is a cluster c1 (namespace f) with pools p and q, each with a
// MachineDeployment of two machines on one MachineSet: nothing rolls.
func twoPools() Snapshot {
	return Snapshot{
		Backings: []Backing{
			{Ref: Ref{"MachineDeployment", "f", "md-p"}, UID: "u1", Pool: "p", Cluster: "c1", Running: 2, Template: "v1.34.1/t1/b1"},
			{Ref: Ref{"MachineDeployment", "f", "md-q"}, UID: "u2", Pool: "q", Cluster: "c1", Running: 2, Template: "v1.34.1/t1/b1"},
		},
		MachineSets: []MachineSet{
			{Ref: Ref{"MachineSet", "f", "md-p-1"}, Pool: "p", Cluster: "c1", Deployment: "md-p", Running: 2},
			{Ref: Ref{"MachineSet", "f", "md-q-1"}, Pool: "q", Cluster: "c1", Deployment: "md-q", Running: 2},
		},
		Pools:       []Pool{{Namespace: "f", Name: "p"}, {Namespace: "f", Name: "q"}},
		Concurrency: map[string]int{"f/c1": 1},
	}
}

// roll adds a MachineSet of the MachineDeployment md of pool in namespace
// f running n machines: with the one it has, md is rolling.
func roll(s *Snapshot, pool, cluster, md string, n int32) {
	s.MachineSets = append(s.MachineSets, MachineSet{Ref: Ref{"MachineSet", "f", md + "-2"}, Pool: pool, Cluster: cluster, Deployment: md, Running: n})
}

func TestCheckConcurrency(t *testing.T) {
	cases := map[string]struct {
		reason string
		edit   func(*Snapshot)
		want   []Violation
	}{
		"NothingRolls": {
			reason: "Pools whose MachineDeployments each run one MachineSet are not rolling.",
		},
		"OneRolls": {
			reason: "One pool rolling is within a concurrency of 1.",
			edit:   func(s *Snapshot) { roll(s, "p", "c1", "md-p", 1) },
		},
		"TwoRollConcurrencyOne": {
			reason: "Two pools of a Cluster rolling at once break a concurrency of 1.",
			edit: func(s *Snapshot) {
				roll(s, "p", "c1", "md-p", 1)
				roll(s, "q", "c1", "md-q", 1)
			},
			want: []Violation{{ConcurrencyBounded, "", "Cluster/f/c1", "2 pools are rolling (p, q), its concurrency is 1"}},
		},
		"TwoRollConcurrencyTwo": {
			reason: "Two pools rolling are within a concurrency of 2.",
			edit: func(s *Snapshot) {
				roll(s, "p", "c1", "md-p", 1)
				roll(s, "q", "c1", "md-q", 1)
				s.Concurrency["f/c1"] = 2
			},
		},
		"ThreeRollConcurrencyTwo": {
			reason: "Three pools rolling break a concurrency of 2, and all three are named.",
			edit: func(s *Snapshot) {
				s.Backings = append(s.Backings, Backing{Ref: Ref{"MachineDeployment", "f", "md-r"}, UID: "u3", Pool: "r", Cluster: "c1", Running: 1})
				s.MachineSets = append(s.MachineSets, MachineSet{Ref: Ref{"MachineSet", "f", "md-r-1"}, Pool: "r", Cluster: "c1", Deployment: "md-r", Running: 1})
				roll(s, "p", "c1", "md-p", 1)
				roll(s, "q", "c1", "md-q", 1)
				roll(s, "r", "c1", "md-r", 1)
				s.Concurrency["f/c1"] = 2
			},
			want: []Violation{{ConcurrencyBounded, "", "Cluster/f/c1", "3 pools are rolling (p, q, r), its concurrency is 2"}},
		},
		"OnePoolTwoZones": {
			reason: "A pool rolling two MachineDeployments (two zones) at once is one pool rolling.",
			edit: func(s *Snapshot) {
				s.MachineSets = append(s.MachineSets, MachineSet{Ref: Ref{"MachineSet", "f", "md-p-b-1"}, Pool: "p", Cluster: "c1", Deployment: "md-p-b", Running: 1})
				roll(s, "p", "c1", "md-p", 1)
				roll(s, "p", "c1", "md-p-b", 1)
			},
		},
		"OldSetEmpty": {
			reason: "A MachineSet that runs no machine (an old one scaled down, a new one not yet up) does not make its MachineDeployment rolling.",
			edit: func(s *Snapshot) {
				roll(s, "p", "c1", "md-p", 1)
				roll(s, "q", "c1", "md-q", 0)
			},
		},
		"NoDeployment": {
			reason: "MachineSets of no MachineDeployment are not a rollout of one.",
			edit: func(s *Snapshot) {
				roll(s, "p", "c1", "md-p", 1)
				roll(s, "q", "c1", "", 1)
				s.MachineSets = append(s.MachineSets, MachineSet{Ref: Ref{"MachineSet", "f", "orphan"}, Pool: "q", Cluster: "c1", Running: 1})
			},
		},
		"OtherClusters": {
			reason: "Concurrency bounds the pools of one Cluster: one pool rolling in each of two Clusters is within 1.",
			edit: func(s *Snapshot) {
				s.MachineSets[1].Cluster, s.Backings[1].Cluster = "c2", "c2"
				s.Concurrency["f/c2"] = 1
				roll(s, "p", "c1", "md-p", 1)
				roll(s, "q", "c2", "md-q", 1)
			},
		},
		"SameNameOtherNamespace": {
			reason: "A MachineDeployment of the same name in another namespace is another MachineDeployment: neither rolls.",
			edit: func(s *Snapshot) {
				s.MachineSets = append(s.MachineSets,
					MachineSet{Ref: Ref{"MachineSet", "g", "md-p-2"}, Pool: "p", Cluster: "c1", Deployment: "md-p", Running: 1},
					MachineSet{Ref: Ref{"MachineSet", "g", "md-q-2"}, Pool: "q", Cluster: "c1", Deployment: "md-q", Running: 1})
				s.Concurrency["g/c1"] = 0
			},
		},
		"ClusterNotChecked": {
			reason: "A Cluster whose concurrency the observer does not know is not checked.",
			edit: func(s *Snapshot) {
				roll(s, "p", "c1", "md-p", 1)
				roll(s, "q", "c1", "md-q", 1)
				s.Concurrency = nil
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := twoPools()
			if tc.edit != nil {
				tc.edit(&s)
			}
			if diff := cmp.Diff(tc.want, Check(Snapshot{}, s)); diff != "" {
				t.Errorf("%s\nCheck(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestCheckStartWhileHeld checks the other rule comparing two snapshots: a
// running backing's template does not change while its pool is held.
func TestCheckStartWhileHeld(t *testing.T) {
	started := []Violation{{NoStartWhileHeld, "f/p", "MachineDeployment/f/md-p", "started a rollout (v1.34.1/t1/b1 -> v1.35.0/t2/b1) while Paused"}}
	next := func(s *Snapshot) { s.Backings[0].Template = "v1.35.0/t2/b1" }
	held := func(s *Snapshot) { s.Held = map[string]string{"f/p": "Paused"} }
	cases := map[string]struct {
		reason string
		before func(*Snapshot)
		later  func(*Snapshot)
		want   []Violation
	}{
		"StartedWhileHeld": {
			reason: "A running MachineDeployment whose template changes while its pool is held started a rollout it may not.",
			later:  func(s *Snapshot) { next(s); held(s) },
			want:   started,
		},
		"VersionOnly": {
			reason: "Any change of the template digest is a start, a version alone too.",
			later: func(s *Snapshot) {
				s.Backings[0].Template = "v1.35.0/t1/b1"
				s.Held = map[string]string{"f/p": "Deferred"}
			},
			want: []Violation{{NoStartWhileHeld, "f/p", "MachineDeployment/f/md-p", "started a rollout (v1.34.1/t1/b1 -> v1.35.0/t1/b1) while Deferred"}},
		},
		"StartedNotHeld": {
			reason: "A pool not held may start.",
			later:  next,
		},
		"HeldUnchanged": {
			reason: "A held pool whose template stays (its size changed, say) starts nothing.",
			later:  func(s *Snapshot) { held(s); s.Backings[0].Running = 5 },
		},
		"OtherPoolHeld": {
			reason: "Only the held pool's backings are judged: another pool may start.",
			later:  func(s *Snapshot) { next(s); s.Held = map[string]string{"f/q": "Paused"} },
		},
		"SameNameOtherNamespaceHeld": {
			reason: "A pool of the same name in another namespace being held does not hold this one.",
			later:  func(s *Snapshot) { next(s); s.Held = map[string]string{"g/p": "Paused"} },
		},
		"NewBacking": {
			reason: "A backing created while held (a new zone's MachineDeployment) starts no rollout.",
			later: func(s *Snapshot) {
				held(s)
				s.Backings = append(s.Backings, Backing{Ref: Ref{"MachineDeployment", "f", "md-p-b"}, UID: "u9", Pool: "p", Cluster: "c1", Template: "v1.35.0/t2/b1"})
			},
		},
		"NotRunning": {
			reason: "A backing that ran no machines replaces none: its change is not gated.",
			before: func(s *Snapshot) { s.Backings[0].Running = 0 },
			later:  func(s *Snapshot) { next(s); held(s) },
		},
		"Recreated": {
			reason: "A backing recreated under its name (a new UID) is another backing; losing the old one is RunningBackingKept's to judge.",
			later:  func(s *Snapshot) { next(s); held(s); s.Backings[0].UID = "u7" },
			want:   []Violation{{BackingKept, "f/p", "MachineDeployment/f/md-p", "was deleted with 2 machines running; the pool did not opt in to replacement"}},
		},
		"TemplateUnknownBefore": {
			reason: "An observer that did not know the template before cannot tell a change.",
			before: func(s *Snapshot) { s.Backings[0].Template = "" },
			later:  func(s *Snapshot) { next(s); held(s) },
		},
		"TemplateUnknownNow": {
			reason: "Nor one that does not know it now.",
			later:  func(s *Snapshot) { s.Backings[0].Template = ""; held(s) },
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			before, now := twoPools(), twoPools()
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
