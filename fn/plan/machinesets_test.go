package plan

import (
	"maps"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/ptr"
)

// TestNeedsMachineSets: a pool reads its MachineSets (and Crossplane
// watches them for it) only while they can change its plan, and whether it
// does never depends on the MachineSets themselves: asking for them or not
// gives the same answer, so Crossplane's requirement loop settles.
func TestNeedsMachineSets(t *testing.T) {
	const target = "t2"
	// rotated is the pool running the class large, its MachineDeployments
	// moved to its templates, with the templates of the class medium it
	// ran before still observed.
	rotated := func(t *testing.T) map[string]Observed {
		_, before := running(t, input())
		_, after := running(t, input(disruptiveChange))
		for k, o := range before {
			if IsTemplate(k) {
				if _, ok := after[k]; !ok {
					after[k+"-old"] = o
				}
			}
		}
		return after
	}
	// backings is the pool running, each MachineDeployment changed by mod.
	backings := func(mod func(*Observed)) func(t *testing.T) Input {
		return func(t *testing.T) Input {
			_, observed := running(t, input())
			for k, o := range observed {
				if strings.HasPrefix(k, keyMachineDeployment) {
					mod(&o)
					observed[k] = o
				}
			}
			return input(func(in *Input) { in.Observed = observed })
		}
	}
	// marked is the pool running in the first wave, its marker m.
	marked := func(m Marker) func(t *testing.T) Input {
		return func(t *testing.T) Input {
			_, observed := running(t, input(threeWaves(), inEnv("dev")))
			return input(threeWaves(), inEnv("dev"), func(in *Input) { in.Observed, in.Target, in.Marker = observed, target, &m })
		}
	}
	cases := map[string]struct {
		reason string
		in     func(t *testing.T) Input
		want   bool
	}{
		"NewPool": {
			reason: "Nothing runs yet: no MachineSet can use a template the plan drops.",
			in:     func(*testing.T) Input { return input() },
			want:   false,
		},
		"Settled": {
			reason: "A running pool with no change, every MachineDeployment rolled out: nothing the MachineSets say changes the plan.",
			in: func(t *testing.T) Input {
				_, observed := running(t, input())
				return input(func(in *Input) { in.Observed = observed })
			},
			want: false,
		},
		"ChangeToStart": {
			reason: "A disruptive change to start: the gates read whether the pool already replaces machines.",
			in: func(t *testing.T) Input {
				_, observed := running(t, input())
				return input(disruptiveChange, func(in *Input) { in.Observed = observed })
			},
			want: true,
		},
		"TemplateToRelease": {
			reason: "A template the plan no longer wants is observed: it goes only once no MachineSet clones from it.",
			in: func(t *testing.T) Input {
				observed := rotated(t)
				return input(disruptiveChange, func(in *Input) { in.Observed = observed })
			},
			want: true,
		},
		"Rolling": {
			reason: "A MachineDeployment still replaces machines (fewer up to date than it has).",
			in:     backings(func(o *Observed) { o.UpToDateReplicas = ptr.To[int32](1) }),
			want:   true,
		},
		"GenerationNotObserved": {
			reason: "Cluster API has not caught up with a MachineDeployment's spec.",
			in:     backings(func(o *Observed) { o.Generation = 2 }),
			want:   true,
		},
		"MarkerRolling": {
			reason: "The pool's marker says it rolls toward the target: a rollout Cluster API has just begun shows only on its MachineSets.",
			in:     marked(Marker{Target: target, State: MarkerRolling, StartedAt: testNow.Add(-time.Minute)}),
			want:   true,
		},
		"MarkerSettledAtAnotherTarget": {
			reason: "The marker settled at an earlier target: whether the pool is at this one is read with its MachineSets.",
			in:     marked(Marker{Target: "t1", State: MarkerSettled, Since: testNow.Add(-time.Hour)}),
			want:   true,
		},
		"MarkerSettledAtTarget": {
			reason: "The marker settled at the target (decided with the MachineSets) and nothing changed since.",
			in:     marked(Marker{Target: target, State: MarkerSettled, Since: testNow.Add(-time.Hour)}),
			want:   false,
		},
		"VersionUnreadable": {
			reason: "A pool held as it is (its control plane's version unreadable) keeps reading all it read.",
			in: func(t *testing.T) Input {
				_, observed := running(t, input())
				return input(func(in *Input) {
					in.Observed = observed
					in.ControlPlane = &ControlPlane{Kind: "KubeadmControlPlane", Name: "prod-eu-1", Version: "latest"}
				})
			},
			want: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			in := tc.in(t)
			for _, sets := range []struct {
				what string
				sets map[string][]MachineSet
			}{
				{"unknown", nil},
				{"on the MachineDeployments' templates", machineSetsOf(in.Observed, false)},
				{"on older templates", machineSetsOf(in.Observed, true)},
			} {
				in := in
				in.Observed = maps.Clone(in.Observed)
				in.MachineSets = sets.sets
				if got := mustPlan(t, in).NeedsMachineSets; got != tc.want {
					t.Errorf("%s\nMachineSets %s: NeedsMachineSets %t, want %t", tc.reason, sets.what, got, tc.want)
				}
			}
		})
	}
}
