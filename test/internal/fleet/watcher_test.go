package fleet

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/fleetnodepool/function-fleetnodepool/test/invariant"
)

// objects of a small fleet: one cluster whose control plane is half-way
// from v1.33.4 to v1.34.1, one autoscaled pool (opted in to replacement)
// whose MachineDeployment's size Crossplane owns, with a MachineSet whose
// infrastructure template is gone.
const objects = `
- apiVersion: infrastructure.cluster.x-k8s.io/v1beta2
  kind: DevMachineTemplate
  metadata: {name: t2, namespace: f}
- apiVersion: bootstrap.cluster.x-k8s.io/v1beta2
  kind: KubeadmConfigTemplate
  metadata: {name: b1, namespace: f}
- apiVersion: cluster.x-k8s.io/v1beta2
  kind: MachineSet
  metadata: {name: ms-old, namespace: f, labels: {fleet.nodepool.dev/pool: p}}
  spec:
    clusterName: c1
    template:
      spec:
        infrastructureRef: {kind: DevMachineTemplate, name: t1}
        bootstrap: {configRef: {kind: KubeadmConfigTemplate, name: b1}}
  status: {readyReplicas: 1}
- apiVersion: cluster.x-k8s.io/v1beta2
  kind: Machine
  metadata: {name: cp-1, namespace: f, labels: {cluster.x-k8s.io/control-plane: ""}}
  spec: {clusterName: c1, version: v1.34.1}
- apiVersion: cluster.x-k8s.io/v1beta2
  kind: Machine
  metadata: {name: cp-0, namespace: f, labels: {cluster.x-k8s.io/control-plane: ""}}
  spec: {clusterName: c1, version: v1.33.4}
- apiVersion: cluster.x-k8s.io/v1beta2
  kind: Machine
  metadata: {name: w1, namespace: f, labels: {fleet.nodepool.dev/pool: p, cluster.x-k8s.io/deployment-name: md}}
  spec: {clusterName: c1, version: v1.34.1}
  status: {phase: Running}
- apiVersion: cluster.x-k8s.io/v1beta2
  kind: MachineDeployment
  metadata:
    name: md
    namespace: f
    uid: u1
    labels: {fleet.nodepool.dev/pool: p}
    annotations: {cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size: "1"}
    managedFields:
    - manager: apiextensions.crossplane.io/composed/abc
      apiVersion: cluster.x-k8s.io/v1beta2
      operation: Apply
      fieldsType: FieldsV1
      fieldsV1: {"f:spec": {"f:replicas": {}}}
    - manager: cluster-autoscaler
      apiVersion: cluster.x-k8s.io/v1beta2
      operation: Update
      fieldsType: FieldsV1
      fieldsV1: {"f:spec": {"f:paused": {}}}
  spec: {clusterName: c1}
- apiVersion: fleet.nodepool.dev/v1alpha1
  kind: FleetNodePool
  metadata: {name: p, namespace: f, annotations: {fleet.nodepool.dev/allow-replacement: "true"}}
`

func TestSnapshot(t *testing.T) {
	j, err := yaml.YAMLToJSON([]byte(objects))
	if err != nil {
		t.Fatal(err)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(j, &raws); err != nil {
		t.Fatal(err)
	}
	byKind := map[string][]unstructured.Unstructured{}
	for _, r := range raws {
		var u unstructured.Unstructured
		if err := u.UnmarshalJSON(r); err != nil {
			t.Fatal(err)
		}
		byKind[u.GetKind()] = append(byKind[u.GetKind()], u)
	}
	got := snapshot(byKind)
	want := invariant.Snapshot{
		ControlPlanes: map[string]string{"f/c1": "v1.33.4"},
		Templates:     map[invariant.Ref]bool{{Kind: "DevMachineTemplate", Namespace: "f", Name: "t2"}: true, {Kind: "KubeadmConfigTemplate", Namespace: "f", Name: "b1"}: true},
		MachineSets: []invariant.MachineSet{{Ref: invariant.Ref{Kind: "MachineSet", Namespace: "f", Name: "ms-old"}, Pool: "p", Cluster: "c1",
			Infra: invariant.Ref{Kind: "DevMachineTemplate", Name: "t1"}, Bootstrap: invariant.Ref{Kind: "KubeadmConfigTemplate", Name: "b1"}, Running: 1}},
		Machines: []invariant.Machine{{Ref: invariant.Ref{Kind: "Machine", Namespace: "f", Name: "w1"}, Pool: "p", Cluster: "c1", Version: "v1.34.1"}},
		Backings: []invariant.Backing{{Ref: invariant.Ref{Kind: "MachineDeployment", Namespace: "f", Name: "md"}, UID: "u1", Pool: "p", Cluster: "c1",
			Autoscaled: true, FunctionSetsReplicas: true, Running: 1}},
		Pools: []invariant.Pool{{Namespace: "f", Name: "p", AllowReplacement: true}},
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("snapshot(...): -want, +got:\n%s", diff)
	}
	// What the watcher reads is what the rules judge: each broken rule of
	// the fixture is seen.
	var rules []invariant.Rule
	for _, v := range invariant.Check(invariant.Snapshot{}, got) {
		rules = append(rules, v.Rule)
	}
	wantRules := []invariant.Rule{invariant.ReplicasNotOwned, invariant.TemplateExists, invariant.WorkerNotNewer}
	if diff := cmp.Diff(wantRules, rules); diff != "" {
		t.Errorf("invariant.Check(snapshot(...)): -want rules, +got rules:\n%s", diff)
	}
}

// Builders of the objects the rollout cases read, all of namespace f and
// Cluster c1.

func object(apiVersion, kind, name string, labels map[string]string, content map[string]any) unstructured.Unstructured {
	u := unstructured.Unstructured{Object: content}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace("f")
	u.SetName(name)
	u.SetLabels(labels)
	return u
}

// md is a MachineDeployment of a pool whose machines are cloned from
// version/infrastructure/bootstrap template.
func md(name, pool, template string) unstructured.Unstructured {
	parts := strings.Split(template, "/")
	return object("cluster.x-k8s.io/v1beta2", "MachineDeployment", name, map[string]string{labelPool: pool}, map[string]any{
		"spec": map[string]any{"clusterName": "c1", "template": map[string]any{"spec": map[string]any{
			"version":           parts[0],
			"infrastructureRef": map[string]any{"kind": "DevMachineTemplate", "name": parts[1]},
			"bootstrap":         map[string]any{"configRef": map[string]any{"kind": "KubeadmConfigTemplate", "name": parts[2]}},
		}}},
	})
}

// ms is a MachineSet of a pool's MachineDeployment with ready machines.
func ms(name, pool, deployment string, ready int64) unstructured.Unstructured {
	return object("cluster.x-k8s.io/v1beta2", "MachineSet", name, map[string]string{labelPool: pool, labelDeployment: deployment},
		map[string]any{"spec": map[string]any{"clusterName": "c1"}, "status": map[string]any{"readyReplicas": ready}})
}

// machine is a Running worker of a pool's MachineDeployment.
func machine(name, pool, deployment string) unstructured.Unstructured {
	return object("cluster.x-k8s.io/v1beta2", "Machine", name, map[string]string{labelPool: pool, labelDeployment: deployment},
		map[string]any{"spec": map[string]any{"clusterName": "c1"}, "status": map[string]any{"phase": "Running"}})
}

// xr is a FleetNodePool whose condition RolloutHeld is True for heldBy,
// or False (NotHeld) when heldBy is "".
func xr(name, heldBy string) unstructured.Unstructured {
	cond := map[string]any{"type": "RolloutHeld", "status": "False", "reason": "NotHeld"}
	if heldBy != "" {
		cond = map[string]any{"type": "RolloutHeld", "status": "True", "reason": heldBy}
	}
	return object("fleet.nodepool.dev/v1alpha1", "FleetNodePool", name, nil,
		map[string]any{"status": map[string]any{"conditions": []any{cond}}})
}

func byKind(objs ...unstructured.Unstructured) map[string][]unstructured.Unstructured {
	out := map[string][]unstructured.Unstructured{}
	for _, o := range objs {
		out[o.GetKind()] = append(out[o.GetKind()], o)
	}
	return out
}

func TestSnapshotRolloutFields(t *testing.T) {
	owned := ms("ms-owned", "p", "", 1)
	owned.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "cluster.x-k8s.io/v1beta2", Kind: "MachineDeployment", Name: "md-p", UID: "u"}})
	machinePoolOwned := ms("ms-mp", "p", "", 1)
	machinePoolOwned.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "cluster.x-k8s.io/v1beta2", Kind: "MachinePool", Name: "mp", UID: "u"}})
	bare := object("cluster.x-k8s.io/v1beta2", "MachineDeployment", "md-bare", map[string]string{labelPool: "p"},
		map[string]any{"spec": map[string]any{"clusterName": "c1"}})
	cases := map[string]struct {
		reason          string
		objs            []unstructured.Unstructured
		wantDeployments map[string]string // By MachineSet.
		wantTemplates   map[string]string // By MachineDeployment.
	}{
		"DeploymentFromLabel": {
			reason:          "A MachineSet's MachineDeployment is its label cluster.x-k8s.io/deployment-name.",
			objs:            []unstructured.Unstructured{ms("ms-1", "p", "md-p", 1)},
			wantDeployments: map[string]string{"ms-1": "md-p"},
		},
		"DeploymentFromOwner": {
			reason:          "Without the label, a MachineSet's MachineDeployment is its MachineDeployment owner.",
			objs:            []unstructured.Unstructured{owned},
			wantDeployments: map[string]string{"ms-owned": "md-p"},
		},
		"NoDeployment": {
			reason:          "A MachineSet neither labelled nor owned by a MachineDeployment has none: the concurrency rule skips it.",
			objs:            []unstructured.Unstructured{machinePoolOwned},
			wantDeployments: map[string]string{"ms-mp": ""},
		},
		"Template": {
			reason:        "A MachineDeployment's template is its machines' version and its infrastructure and bootstrap templates' names.",
			objs:          []unstructured.Unstructured{md("md-p", "p", "v1.34.1/p-infra-abc/p-boot-def")},
			wantTemplates: map[string]string{"md-p": "v1.34.1/p-infra-abc/p-boot-def"},
		},
		"NoTemplate": {
			reason:        "A MachineDeployment naming no version nor template has no template: NoStartWhileHeld skips it.",
			objs:          []unstructured.Unstructured{bare},
			wantTemplates: map[string]string{"md-bare": ""},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := snapshot(byKind(tc.objs...))
			deployments := map[string]string{}
			for _, m := range s.MachineSets {
				deployments[m.Name] = m.Deployment
			}
			templates := map[string]string{}
			for _, b := range s.Backings {
				templates[b.Name] = b.Template
			}
			if diff := cmp.Diff(tc.wantDeployments, deployments, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\nsnapshot(...): MachineSet.Deployment -want, +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.wantTemplates, templates, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\nsnapshot(...): Backing.Template -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestHeldBy(t *testing.T) {
	rollout := func(state, reason string) unstructured.Unstructured {
		return object("fleet.nodepool.dev/v1alpha1", "FleetNodePool", "p", nil,
			map[string]any{"status": map[string]any{"rollout": map[string]any{"state": state, "reason": reason}}})
	}
	cases := map[string]struct {
		reason string
		xr     unstructured.Unstructured
		want   string
	}{
		"ConditionTrue": {
			reason: "Condition RolloutHeld True names why the pool is held.",
			xr:     xr("p", "Paused"),
			want:   "Paused",
		},
		"ConditionFalse": {
			reason: "Condition RolloutHeld False (NotHeld) is not held.",
			xr:     xr("p", ""),
		},
		"RolloutHeld": {
			reason: "Without the condition, status.rollout in state Held names why.",
			xr:     rollout("Held", "Concurrency"),
			want:   "Concurrency",
		},
		"RollingOut": {
			reason: "A pool rolling out is not held, whatever reason its status keeps.",
			xr:     rollout("RollingOut", "Paused"),
		},
		"NoStatus": {
			reason: "A pool the function has not answered for yet is not held.",
			xr:     object("fleet.nodepool.dev/v1alpha1", "FleetNodePool", "p", nil, map[string]any{}),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := HeldBy(&tc.xr); got != tc.want {
				t.Errorf("%s\nHeldBy(...): want %q, got %q", tc.reason, tc.want, got)
			}
		})
	}
}

// A step of a watched fleet: what the test tells the watcher, then the
// objects of one snapshot, and what the watcher makes of them.
type step struct {
	tell            func(w *Watcher)
	objs            []unstructured.Unstructured
	wantHeld        map[string]string
	wantConcurrency map[string]int
	// wantRules are the rules of the violations first seen at this step.
	wantRules []invariant.Rule
}

func TestWatcherRollouts(t *testing.T) {
	hold := func(w *Watcher) { w.Hold("f/p", "Paused") }
	concurrency := func(n int) func(w *Watcher) { return func(w *Watcher) { w.SetConcurrency("f/c1", n) } }
	// Pool p runs one machine on MachineDeployment md-p, cloned from t1 or t2.
	p := func(template, heldBy string) []unstructured.Unstructured {
		return []unstructured.Unstructured{md("md-p", "p", template), ms("ms-p", "p", "md-p", 1), machine("m-p", "p", "md-p"), xr("p", heldBy)}
	}
	const t1, t2 = "v1.34.1/p-infra-1/p-boot-1", "v1.34.1/p-infra-2/p-boot-1"
	// rolling pools: each of their MachineDeployments runs a machine on an
	// old and a new MachineSet.
	rolling := func(pools ...string) []unstructured.Unstructured {
		var out []unstructured.Unstructured
		for _, p := range pools {
			out = append(out, ms(p+"-old", p, "md-"+p, 1), ms(p+"-new", p, "md-"+p, 1))
		}
		return out
	}
	cases := map[string]struct {
		reason string
		steps  []step
	}{
		"HeldOnceTheFunctionSaidSo": {
			reason: "A pool the test paused counts as held from the snapshot after the one where its FleetNodePool says the function held it for that reason.",
			steps: []step{
				{tell: hold, objs: p(t1, "")},
				{objs: p(t1, "Paused")},
				{objs: p(t1, "Paused"), wantHeld: map[string]string{"f/p": "Paused"}},
			},
		},
		"StartedJustBeforeThePause": {
			reason: "A rollout the function started before it saw the pause is a rollout under way, no start while held: the template changed by the snapshot where the pool first says Paused.",
			steps: []step{
				{tell: hold, objs: p(t1, "")},
				{objs: p(t2, "Paused")},
				{objs: p(t2, "Paused"), wantHeld: map[string]string{"f/p": "Paused"}},
			},
		},
		"StartedWhileHeld": {
			reason: "A running MachineDeployment whose template changes after its pool said it was paused breaks NoStartWhileHeld.",
			steps: []step{
				{tell: hold, objs: p(t1, "Paused")},
				{objs: p(t2, "Paused"), wantHeld: map[string]string{"f/p": "Paused"}, wantRules: []invariant.Rule{invariant.NoStartWhileHeld}},
			},
		},
		"HeldForAnotherReason": {
			reason: "A pool waiting for its turn (Concurrency) is not held by the test's pause: it may start when its turn comes.",
			steps: []step{
				{tell: hold, objs: p(t1, "Concurrency")},
				{objs: p(t2, "Concurrency")},
			},
		},
		"HeldByStatusRollout": {
			reason: "status.rollout (state Held, reason Paused) says the function held the pool as well as the condition.",
			steps: func() []step {
				x := object("fleet.nodepool.dev/v1alpha1", "FleetNodePool", "p", nil,
					map[string]any{"status": map[string]any{"rollout": map[string]any{"state": "Held", "reason": "Paused"}}})
				objs := func(template string) []unstructured.Unstructured { return append(p(template, "")[:3], x) }
				return []step{
					{tell: hold, objs: objs(t1)},
					{objs: objs(t2), wantHeld: map[string]string{"f/p": "Paused"}, wantRules: []invariant.Rule{invariant.NoStartWhileHeld}},
				}
			}(),
		},
		"Released": {
			reason: "Once the test released the pool (before it unpauses), a rollout may start.",
			steps: []step{
				{tell: hold, objs: p(t1, "Paused")},
				{tell: func(w *Watcher) { w.Release("f/p") }, objs: p(t2, "Paused")},
			},
		},
		"NotHeldByTheTest": {
			reason: "The watcher judges holds the test made: a FleetNodePool saying Paused is not enough.",
			steps: []step{
				{objs: p(t1, "Paused")},
				{objs: p(t2, "Paused")},
			},
		},
		"TwoPoolsRollingAtConcurrencyOne": {
			reason: "Two pools of a Cluster, each running machines on two MachineSets of a MachineDeployment, break a concurrency of 1.",
			steps: []step{{tell: concurrency(1), objs: rolling("p", "q"), wantConcurrency: map[string]int{"f/c1": 1},
				wantRules: []invariant.Rule{invariant.ConcurrencyBounded}}},
		},
		"TwoPoolsRollingAtConcurrencyTwo": {
			reason: "Two pools rolling at once are within a concurrency of 2.",
			steps:  []step{{tell: concurrency(2), objs: rolling("p", "q"), wantConcurrency: map[string]int{"f/c1": 2}}},
		},
		"NoConcurrencyTold": {
			reason: "A Cluster whose concurrency the test did not tell is not checked.",
			steps:  []step{{objs: rolling("p", "q")}},
		},
		"ConcurrencyUnset": {
			reason: "SetConcurrency below 1 stops the check, from the next snapshot on.",
			steps: []step{
				{tell: concurrency(1), objs: rolling("p"), wantConcurrency: map[string]int{"f/c1": 1}},
				{tell: concurrency(0), objs: rolling("p", "q")},
			},
		},
		"OnePoolOverTwoZones": {
			reason: "A pool rolling two MachineDeployments (two zones) at once is one pool rolling.",
			steps: []step{{tell: concurrency(1), wantConcurrency: map[string]int{"f/c1": 1}, objs: []unstructured.Unstructured{
				ms("a-old", "p", "md-p-a", 1), ms("a-new", "p", "md-p-a", 1), ms("b-old", "p", "md-p-b", 1), ms("b-new", "p", "md-p-b", 1),
			}}},
		},
		"NewMachineSetNotReady": {
			reason: "A MachineDeployment whose new MachineSet has no ready machine yet runs machines on one MachineSet: its pool is not counted rolling.",
			steps: []step{{tell: concurrency(1), wantConcurrency: map[string]int{"f/c1": 1},
				objs: append(rolling("p"), ms("q-old", "q", "md-q", 2), ms("q-new", "q", "md-q", 0))}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			w := NewWatcher(nil)
			wantHeldSnapshots := map[string]int{}
			for i, s := range tc.steps {
				for p := range s.wantHeld {
					wantHeldSnapshots[p]++
				}
				if s.tell != nil {
					s.tell(w)
				}
				seen := len(w.Violations())
				now := time.Now()
				w.check(byKind(s.objs...), now, now)
				var rules []invariant.Rule
				for _, v := range w.Violations()[seen:] {
					rules = append(rules, v.Rule)
				}
				if diff := cmp.Diff(s.wantHeld, w.last.Held, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("%s\nstep %d: Snapshot.Held -want, +got:\n%s", tc.reason, i, diff)
				}
				if diff := cmp.Diff(s.wantConcurrency, w.last.Concurrency, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("%s\nstep %d: Snapshot.Concurrency -want, +got:\n%s", tc.reason, i, diff)
				}
				if diff := cmp.Diff(s.wantRules, rules, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("%s\nstep %d: violations first seen, -want rules, +got rules:\n%s", tc.reason, i, diff)
				}
			}
			if diff := cmp.Diff(wantHeldSnapshots, w.HeldSnapshots(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\nHeldSnapshots(): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}
