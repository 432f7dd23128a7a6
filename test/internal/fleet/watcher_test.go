package fleet

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
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
