package plan

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/provider"
)

// observe turns a plan into what Crossplane would observe next: every
// object exists, MachineDeployments and MachinePools with the given
// replicas, Available and up to date.
func observe(t *testing.T, p *Plan, replicas int32) map[string]Observed {
	t.Helper()
	out := map[string]Observed{}
	for _, r := range p.Resources {
		b, err := provider.JSONMap(r.Object)
		if err != nil {
			t.Fatal(err)
		}
		o := Observed{Name: r.Object.GetName(), Object: b, Generation: 1, ObservedGeneration: 1, Available: true}
		// As compose reads them: what the object is, and the infrastructure
		// machine pool's spec, whose immutable fields providers keep.
		o.APIVersion, o.Kind = r.Object.GetObjectKind().GroupVersionKind().GroupVersion().String(), r.Object.GetObjectKind().GroupVersionKind().Kind
		if r.Key == keyInfraPool {
			o.Spec, _ = b["spec"].(map[string]any)
		}
		o.Rotation, _, _ = unstructured.NestedString(b, "metadata", "annotations", AnnotationRotation)
		o.Revision, _, _ = unstructured.NestedString(b, "metadata", "annotations", AnnotationRevision)
		if a, _, _ := unstructured.NestedString(b, "spec", "rollout", "after"); a != "" {
			if o.RolloutAfter, err = time.Parse(time.RFC3339, a); err != nil {
				t.Fatal(err)
			}
		}
		if IsPool(r.Object) {
			o.Replicas = ptr.To(replicas)
			spec, _ := b["spec"].(map[string]any)
			o.ClusterName, _ = spec["clusterName"].(string)
			ts, _ := spec["template"].(map[string]any)["spec"].(map[string]any)
			if m, _ := ts["infrastructureRef"].(map[string]any); m != nil {
				o.InfraKind, _ = m["kind"].(string)
			}
			if v, _ := ts["version"].(string); v != "" {
				o.Version = v
			}
			for _, ref := range []string{"infrastructureRef", "bootstrap"} {
				m, _ := ts[ref].(map[string]any)
				if ref == "bootstrap" {
					m, _ = m["configRef"].(map[string]any)
					o.Bootstrap, _ = m["name"].(string)
				}
				if n, _ := m["name"].(string); n != "" {
					o.References = append(o.References, n)
				}
			}
		}
		out[r.Key] = o
	}
	return out
}

func keys(p *Plan) []string {
	var out []string
	for _, r := range p.Resources {
		out = append(out, r.Key)
	}
	slices.Sort(out)
	return out
}

// TestTemplateRetention checks that a rotated template stays while a live
// MachineSet uses it, and goes once none has for ReleaseAfter and Cluster
// API has acted on the MachineDeployment's latest spec.
func TestTemplateRetention(t *testing.T) {
	noZones := func(in *Input) { in.Spec.Zones = nil }
	v1 := mustPlan(t, input(noZones))
	running := observe(t, v1, 3)
	oldInfra := infraName(t, v1)
	newClass := func(in *Input) { in.Spec.Machine.Class = "large" }
	oldMS := []MachineSet{{Infra: oldInfra}}
	otherMS := map[string][]MachineSet{"prod-eu-1-workers": {{Infra: "something-else"}}}
	stamp := func(d time.Duration) string { return testNow.Add(d).UTC().Format(time.RFC3339) }

	cases := map[string]struct {
		reason      string
		machineSets map[string][]MachineSet
		observedMD  bool   // The observed MachineDeployment still points at the old template.
		mdBehind    bool   // Cluster API has not observed the MachineDeployment's latest generation.
		unusedSince string // The old template's AnnotationUnusedSince, as observed.
		wantKept    bool
		// wantSince is the annotation the kept template carries, wantWake
		// when the pool is to be planned again.
		wantSince string
		wantWake  time.Time
	}{
		"MidRollout": {
			reason:      "An old MachineSet still clones from the old template: it is kept.",
			machineSets: map[string][]MachineSet{"prod-eu-1-workers": oldMS},
			wantKept:    true,
		},
		"UsedAgain": {
			reason:      "A template in use again (the edit was reverted) loses its record: its wait starts anew when it is next unused.",
			machineSets: map[string][]MachineSet{"prod-eu-1-workers": oldMS},
			unusedSince: stamp(-time.Hour),
			wantKept:    true,
		},
		"BeforeTheMachineDeploymentMoved": {
			reason:      "The observed MachineDeployment still references the old template (Crossplane deletes before it applies): kept.",
			machineSets: map[string][]MachineSet{},
			observedMD:  true,
			wantKept:    true,
		},
		"MachineSetsUnknown": {
			reason:   "While the MachineSets are not fetched, nothing that may be in use is dropped.",
			wantKept: true,
		},
		"UnusedJustNow": {
			reason: "Nothing the function sees uses the old template, but its view may lag: a MachineSet Cluster API just made for it " +
				"may not show yet. It is kept, recorded unused since now, and the pool planned again when it may go.",
			machineSets: otherMS,
			wantKept:    true,
			wantSince:   stamp(0),
			wantWake:    testNow.Add(ReleaseAfter),
		},
		"UnusedNotLongEnough": {
			reason:      "Unused for less than ReleaseAfter: kept, its record unchanged.",
			machineSets: otherMS,
			unusedSince: stamp(-ReleaseAfter + time.Second),
			wantKept:    true,
			wantSince:   stamp(-ReleaseAfter + time.Second),
			wantWake:    testNow.Add(time.Second),
		},
		"UnusedRecordUnreadable": {
			reason:      "A record that does not parse counts from now: kept longer, never released early.",
			machineSets: otherMS,
			unusedSince: "yesterday",
			wantKept:    true,
			wantSince:   stamp(0),
			wantWake:    testNow.Add(ReleaseAfter),
		},
		"UnusedLongButClusterAPIBehind": {
			reason: "Cluster API has not acted on the MachineDeployment's latest spec: it may still make a MachineSet from an " +
				"earlier one. Kept; its status update wakes the pool.",
			machineSets: otherMS,
			mdBehind:    true,
			unusedSince: stamp(-time.Hour),
			wantKept:    true,
			wantSince:   stamp(-time.Hour),
		},
		"Released": {
			reason:      "Unused for ReleaseAfter, and Cluster API caught up: it goes.",
			machineSets: otherMS,
			unusedSince: stamp(-ReleaseAfter),
			wantKept:    false,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			obs := map[string]Observed{}
			for k, o := range running {
				if !tc.observedMD && strings.HasPrefix(k, keyMachineDeployment) {
					o.References = nil
				}
				if tc.mdBehind && strings.HasPrefix(k, keyMachineDeployment) {
					o.Generation = 2
				}
				if o.Name == oldInfra && tc.unusedSince != "" {
					o = annotated(o, AnnotationUnusedSince, tc.unusedSince)
				}
				obs[k] = o
			}
			p := mustPlan(t, input(noZones, newClass, func(in *Input) { in.Observed, in.MachineSets = obs, tc.machineSets }))
			i := slices.IndexFunc(p.Resources, func(r Resource) bool { return r.Object.GetName() == oldInfra })
			if kept := i >= 0; kept != tc.wantKept {
				t.Fatalf("%s\nold template %s kept: want %t, got %t (keys %v)", tc.reason, oldInfra, tc.wantKept, kept, keys(p))
			}
			if i >= 0 {
				if got := p.Resources[i].Object.GetAnnotations()[AnnotationUnusedSince]; got != tc.wantSince {
					t.Errorf("%s\n%s: want %q, got %q", tc.reason, AnnotationUnusedSince, tc.wantSince, got)
				}
			}
			if !p.Wake.Equal(tc.wantWake) {
				t.Errorf("%s\nwake: want %s, got %s", tc.reason, tc.wantWake, p.Wake)
			}
			if p.Refused != nil {
				t.Errorf("%s\na template rotation is not refused: %v", tc.reason, p.Refused)
			}
		})
	}
}

// annotated is an observed object with an annotation set, the original
// left as it was.
func annotated(o Observed, k, v string) Observed {
	obj := maps.Clone(o.Object)
	meta := maps.Clone(obj["metadata"].(map[string]any))
	anns, _ := meta["annotations"].(map[string]any)
	anns = maps.Clone(anns)
	if anns == nil {
		anns = map[string]any{}
	}
	anns[k] = v
	meta["annotations"], obj["metadata"] = anns, meta
	o.Object = obj
	return o
}

// TestDestructiveChangeGuard checks that a change that would delete the
// backing of a running pool is refused unless the pool opts in.
func TestDestructiveChangeGuard(t *testing.T) {
	v1 := mustPlan(t, input())
	cases := map[string]struct {
		reason      string
		replicas    int32
		edit        func(*Input)
		wantRefused string
		wantKeys    func(v2 *Plan) []string
	}{
		"RemoveZoneWithNodes": {
			reason:      "Removing a zone whose MachineDeployment runs nodes is refused: everything is kept as it is.",
			replicas:    2,
			edit:        func(in *Input) { in.Spec.Zones = []string{"eu-west-1a"} },
			wantRefused: ReasonBackingReplaced,
			wantKeys:    func(*Plan) []string { return keys(v1) },
		},
		"RemoveEmptyZone": {
			reason:   "A zone scaled to 0 can go.",
			replicas: 0,
			edit:     func(in *Input) { in.Spec.Zones = []string{"eu-west-1a"} },
		},
		"SwitchBackend": {
			reason:      "Moving a running pool to another backend is refused without the opt-in.",
			replicas:    2,
			edit:        func(in *Input) { in.Spec.Backend = v1alpha1.BackendMachinePool },
			wantRefused: ReasonBackingReplaced,
			wantKeys:    func(*Plan) []string { return keys(v1) },
		},
		"SwitchBackendOptedIn": {
			reason:   "With the opt-in, the new backing is created and the old one kept until the new one is available.",
			replicas: 2,
			edit: func(in *Input) {
				in.Spec.Backend, in.AllowReplacement = v1alpha1.BackendMachinePool, true
			},
			wantKeys: func(v2 *Plan) []string {
				return slices.Sorted(slices.Values(append(keys(v1), "machinepool", "infrapool", keyOf(v2, "bootstrap-"))))
			},
		},
		"SwitchProvider": {
			reason:   "Moving a running pool to another cloud is refused, opt-in or not.",
			replicas: 2,
			edit: func(in *Input) {
				onAzure(in)
				in.Spec.Zones = []string{"eu-west-1a", "eu-west-1b"}
				in.AllowReplacement = true
			},
			wantRefused: ReasonProviderChanged,
			wantKeys:    func(*Plan) []string { return keys(v1) },
		},
		"MoveCluster": {
			reason:      "A pool never moves its running nodes to another cluster.",
			replicas:    2,
			edit:        func(in *Input) { in.Spec.ClusterName = "prod-eu-2" },
			wantRefused: ReasonClusterChanged,
			wantKeys:    func(*Plan) []string { return keys(v1) },
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			obs := observe(t, v1, tc.replicas)
			p := mustPlan(t, input(tc.edit, func(in *Input) { in.Observed, in.MachineSets = obs, map[string][]MachineSet{} }))
			got := ""
			if p.Refused != nil {
				got = p.Refused.Reason
			}
			if got != tc.wantRefused {
				t.Errorf("%s\nrefused: want %q, got %q (%v)", tc.reason, tc.wantRefused, got, p.Refused)
			}
			if tc.wantKeys != nil {
				if diff := cmp.Diff(tc.wantKeys(p), keys(p)); diff != "" {
					t.Errorf("%s\nemitted keys: -want, +got:\n%s", tc.reason, diff)
				}
			}
		})
	}
}

// TestReplacementCompletes checks that once the new backing is available
// the old one is dropped.
func TestReplacementCompletes(t *testing.T) {
	v1 := mustPlan(t, input())
	mp := func(in *Input) { in.Spec.Backend, in.AllowReplacement = v1alpha1.BackendMachinePool, true }
	obs := observe(t, v1, 2)
	v2 := mustPlan(t, input(mp, func(in *Input) { in.Observed = obs }))
	for k, o := range observe(t, v2, 3) {
		obs[k] = o
	}
	v3 := mustPlan(t, input(mp, func(in *Input) { in.Observed, in.MachineSets = obs, map[string][]MachineSet{} }))
	for _, k := range keys(v3) {
		if strings.HasPrefix(k, keyMachineDeployment) {
			t.Errorf("the old MachineDeployment %s must go once the MachinePool is available; keys %v", k, keys(v3))
		}
	}
	if !slices.Contains(keys(v3), keyMachinePool) {
		t.Errorf("the new MachinePool must stay; keys %v", keys(v3))
	}
}

func keyOf(p *Plan, prefix string) string {
	for _, r := range p.Resources {
		if strings.HasPrefix(r.Key, prefix) {
			return r.Key
		}
	}
	return ""
}

func TestPreview(t *testing.T) {
	noZones := func(in *Input) { in.Spec.Zones = nil }
	v1 := mustPlan(t, input(noZones))
	obs := observe(t, v1, 3)
	at := func(v string) func(*Input) {
		return func(in *Input) {
			in.Observed, in.MachineSets = obs, map[string][]MachineSet{}
			in.ControlPlane = &ControlPlane{Kind: "KubeadmControlPlane", Name: "prod-eu-1", Version: v}
		}
	}
	cases := map[string]struct {
		reason string
		edit   func(*Input)
		cp     string
		want   []v1alpha1.Change
	}{
		"VersionBump": {
			reason: "A version bump replaces every node: the version and the image-pinned template change.",
			edit:   func(in *Input) { in.Policy.Channels["stable"] = "v1.34.1" },
			cp:     "v1.34.1",
			want: []v1alpha1.Change{{Object: "MachineDeployment/prod-eu-1-workers", Action: v1alpha1.ChangeReplace, Reasons: []string{
				"version v1.33.4 -> v1.34.1", "infrastructureRef " + infraName(t, v1) + " -> " + infraName(t, mustPlan(t, input(noZones, func(in *Input) {
					in.Policy.Channels["stable"] = "v1.34.1"
				}))),
			}}},
		},
		"VersionBumpHeld": {
			reason: "A bump the control plane has not reached replaces nothing yet.",
			edit:   func(in *Input) { in.Policy.Channels["stable"] = "v1.34.1" },
			cp:     "v1.33.4",
		},
		"Scaling": {
			reason: "New autoscaler bounds change the MachineDeployment in place.",
			edit:   func(in *Input) { in.Spec.Scaling.Max = ptr.To[int32](20) },
			cp:     "v1.33.4",
			want: []v1alpha1.Change{{Object: "MachineDeployment/prod-eu-1-workers", Action: v1alpha1.ChangeInPlace, Reasons: []string{
				"autoscaler bounds 2-10 -> 2-20",
			}}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := mustPlan(t, input(noZones, tc.edit, at(tc.cp)))
			if diff := cmp.Diff(tc.want, p.Status.Changes); diff != "" {
				t.Errorf("%s\nstatus.changes: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func infraName(t *testing.T, p *Plan) string {
	t.Helper()
	for _, r := range p.Resources {
		if strings.HasPrefix(r.Key, keyInfra+"-") {
			return r.Object.GetName()
		}
	}
	t.Fatal("no infrastructure template")
	return ""
}

// TestMachinePoolBootstrapRetention checks that a rotated KubeadmConfig of a
// MachinePool stays while the MachinePool is still replacing machines.
func TestMachinePoolBootstrapRetention(t *testing.T) {
	asg := func(in *Input) { in.Spec.Backend = v1alpha1.BackendMachinePool }
	v1 := mustPlan(t, input(asg))
	old := keyOf(v1, keyBootstrap+"-")
	for name, tc := range map[string]struct {
		upToDate int32
		want     bool
		// unused is how long ago the function recorded the old config
		// unused (AnnotationUnusedSince), 0 for no record.
		unused time.Duration
		// infraPoolUnobserved: the infrastructure machine pool has a
		// generation and no observedGeneration.
		infraPoolUnobserved bool
	}{
		"Rolling":          {upToDate: 1, unused: time.Hour, want: true},
		"RolledOutJustNow": {upToDate: 3, want: true},
		"RolledOutLongAgo": {upToDate: 3, unused: ReleaseAfter, want: false},
		// AWSMachinePool and AzureMachinePool report no observedGeneration:
		// only the MachinePool's says whether Cluster API caught up.
		"InfraPoolReportsNoGeneration": {upToDate: 3, unused: ReleaseAfter, infraPoolUnobserved: true, want: false},
	} {
		t.Run(name, func(t *testing.T) {
			obs := observe(t, v1, 3)
			mp := obs[keyMachinePool]
			mp.UpToDateReplicas, mp.References = ptr.To(tc.upToDate), nil
			obs[keyMachinePool] = mp
			if tc.unused > 0 {
				obs[old] = annotated(obs[old], AnnotationUnusedSince, testNow.Add(-tc.unused).UTC().Format(time.RFC3339))
			}
			if tc.infraPoolUnobserved {
				ip := obs[keyInfraPool]
				ip.Generation, ip.ObservedGeneration = 3, 0
				obs[keyInfraPool] = ip
			}
			p := mustPlan(t, input(asg, func(in *Input) {
				in.Spec.Labels["team"] = "b"
				in.Observed, in.MachineSets = obs, map[string][]MachineSet{}
			}))
			if got := slices.Contains(keys(p), old); got != tc.want {
				t.Errorf("old KubeadmConfig %s kept: want %t, got %t (keys %v)", old, tc.want, got, keys(p))
			}
		})
	}
}
