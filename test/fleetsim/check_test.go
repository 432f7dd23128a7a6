package fleetsim

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/types/known/structpb"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"

	"github.com/fleetnodepool/function-fleetnodepool/test/invariant"
)

// Names of the hand-made fleet.
const (
	ns        = "fleet-0000"
	infra     = "c-0000-pool-00-1a2b3c4d"
	bootstrap = "c-0000-pool-00-5e6f7a8b"
	mdName    = "c-0000-pool-00-eu-west-1a"
	msName    = mdName + "-7f9c2"
	poolName  = ns + "/pool-00"
)

// handMade is a healthy fleet of one pool on one cluster whose control
// plane runs v1.34.1: a MachineDeployment in eu-west-1a with its two
// templates and one MachineSet of two machines.
func handMade(t *testing.T, autoscaled bool) (*world, *pool) {
	t.Helper()
	w, err := newWorld(1, ladder[1])
	if err != nil {
		t.Fatal(err)
	}
	w.step = 7
	c := w.addCluster("c-0000", ns, ladder[1])
	s := poolSpec{class: "medium", zones: []string{"eu-west-1a"}, replicas: 2, min: -1, max: -1}
	if autoscaled {
		s.replicas, s.min, s.max = -1, 1, 4
	}
	p := w.addPool(c, "pool-00", s)
	tmpl := machineTemplate{version: ladder[1], failureDomain: "eu-west-1a",
		infra: ref{groupInfra, "AWSMachineTemplate", infra}, bootstrap: ref{"bootstrap.cluster.x-k8s.io", "KubeadmConfigTemplate", bootstrap}}
	addComposed(w, p, "infra-1a2b3c4d", tmpl.infra.kind, infra, nil)
	addComposed(w, p, "bootstrap-5e6f7a8b", tmpl.bootstrap.kind, bootstrap, nil)
	addComposed(w, p, "machinedeployment-eu-west-1a", kindMachineDeployment, mdName, &mdSpec{replicas: 2, template: tmpl, minSize: -1, maxSize: -1})
	ms := w.addMachineSet(ns, mdName, map[string]string{labelClusterName: "c-0000", labelPool: "pool-00", labelDeploymentName: mdName}, tmpl)
	ms.replicas, ms.ready = 2, 2
	delete(w.sets[ns], ms.id.name) // Named as in the violations wanted.
	ms.id.name = msName
	w.sets[ns][msName] = ms
	return w, p
}

// addComposed adds a composed object to the pool.
func addComposed(w *world, p *pool, key, kind, name string, md *mdSpec) *composed {
	o := &composed{id: objKey{p.namespace, kind, name}, uid: w.uid(), md: md, spec: &structpb.Struct{}, owner: p}
	if md != nil {
		o.status = &mdStatus{}
	}
	p.composed[key], w.objects[o.id] = o, o
	return o
}

// onlySet is the pool's one MachineSet.
func onlySet(w *world) *machineSet { return w.sets[ns][msName] }

// mdResource is the desired MachineDeployment of the hand-made fleet, with
// extra spec fields.
func mdResource(extra string) *fnv1.Resource {
	return &fnv1.Resource{Resource: resource.MustStructJSON(`{"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "MachineDeployment",
		"metadata": {"name": "` + mdName + `", "namespace": "` + ns + `"}, "spec": {"clusterName": "c-0000"` + extra + `}}`)}
}

// Objects of the hand-made fleet, as violations name them.
const (
	msObject = "MachineSet/" + ns + "/" + msName
	mdObject = "MachineDeployment/" + ns + "/" + mdName
)

func violation(rule invariant.Rule, object, detail string) Violation {
	return Violation{Step: 7, Violation: invariant.Violation{Rule: rule, Pool: poolName, Object: object, Detail: detail}}
}

func TestCheck(t *testing.T) {
	cases := map[string]struct {
		reason     string
		autoscaled bool
		// before is a change checked first; edit is the change then checked.
		before, edit func(w *world, p *pool)
		want         []Violation
	}{
		"Healthy": {
			reason: "A MachineSet whose templates exist, running the control plane's version, violates nothing.",
			edit:   func(*world, *pool) {},
		},
		"MissingInfrastructureTemplate": {
			reason: "A MachineSet cloning from an infrastructure template that was deleted is reported.",
			edit: func(w *world, p *pool) {
				w.remove(p, "infra-1a2b3c4d")
			},
			want: []Violation{violation(invariant.TemplateExists, msObject, "clones from AWSMachineTemplate "+infra+", which does not exist")},
		},
		"MissingBothTemplates": {
			reason: "Each missing template of a MachineSet is reported.",
			edit: func(w *world, p *pool) {
				w.remove(p, "infra-1a2b3c4d")
				w.remove(p, "bootstrap-5e6f7a8b")
			},
			want: []Violation{
				violation(invariant.TemplateExists, msObject, "clones from AWSMachineTemplate "+infra+", which does not exist"),
				violation(invariant.TemplateExists, msObject, "clones from KubeadmConfigTemplate "+bootstrap+", which does not exist"),
			},
		},
		"WorkerNewerMinor": {
			reason: "Machines of a newer minor than the control plane's status.version are reported.",
			edit: func(w *world, _ *pool) {
				onlySet(w).template.version = ladder[2]
			},
			want: []Violation{violation(invariant.WorkerNotNewer, msObject, "runs 2 machines of v1.35.0, its control plane runs v1.34.1")},
		},
		"WorkerNewerPatch": {
			reason: "A newer patch is newer too.",
			edit: func(w *world, _ *pool) {
				onlySet(w).template.version = "v1.34.2"
			},
			want: []Violation{violation(invariant.WorkerNotNewer, msObject, "runs 2 machines of v1.34.2, its control plane runs v1.34.1")},
		},
		"ControlPlaneStillUpgrading": {
			reason: "The control plane's status.version counts, not the version it is asked to run: the MachineDeployment asks for more, its MachineSet runs more.",
			edit: func(w *world, _ *pool) {
				c := w.clusters[0]
				c.statusVersion, c.specVersion, c.upgradeDone = ladder[0], ladder[1], 9
			},
			want: []Violation{
				violation(invariant.WorkerNotNewer, mdObject, "asks for v1.34.1, its control plane runs v1.33.4"),
				violation(invariant.WorkerNotNewer, msObject, "runs 2 machines of v1.34.1, its control plane runs v1.33.4"),
			},
		},
		"NewerButEmpty": {
			reason: "A MachineSet of a newer version that runs no machine runs no worker ahead.",
			edit: func(w *world, _ *pool) {
				ms := onlySet(w)
				ms.template.version, ms.replicas, ms.ready = ladder[2], 0, 0
			},
		},
		"AutoscaledLeavesReplicas": {
			reason:     "An autoscaled pool's MachineDeployment applied without spec.replicas is right.",
			autoscaled: true,
			edit:       func(_ *world, p *pool) { p.composed["machinedeployment-eu-west-1a"].applied = mdResource("") },
		},
		"AutoscaledSetsReplicas": {
			reason:     "An autoscaled pool's MachineDeployment applied with spec.replicas fights the autoscaler.",
			autoscaled: true,
			edit: func(_ *world, p *pool) {
				p.composed["machinedeployment-eu-west-1a"].applied = mdResource(`, "replicas": 1`)
			},
			want: []Violation{violation(invariant.ReplicasNotOwned, mdObject, "is autoscaled, and the function sets its spec.replicas")},
		},
		"FixedSetsReplicas": {
			reason: "A fixed pool's MachineDeployment sets its size.",
			edit: func(_ *world, p *pool) {
				p.composed["machinedeployment-eu-west-1a"].applied = mdResource(`, "replicas": 2`)
			},
		},
		"BackingLost": {
			reason: "A MachineDeployment garbage-collected with running machines is a lost backing.",
			edit: func(w *world, p *pool) {
				w.remove(p, "machinedeployment-eu-west-1a")
			},
			want: []Violation{violation(invariant.BackingKept, mdObject, "was deleted with 2 machines running; the pool did not opt in to replacement")},
		},
		"BackingReplacedUnasked": {
			reason: "A MachineDeployment replaced by another in its zone is lost all the same: the pool did not opt in.",
			edit: func(w *world, p *pool) {
				md := *p.composed["machinedeployment-eu-west-1a"].md
				w.remove(p, "machinedeployment-eu-west-1a")
				addComposed(w, p, "machinedeployment-eu-west-1a-v2", kindMachineDeployment, mdName+"-v2", &md)
			},
			want: []Violation{violation(invariant.BackingKept, mdObject, "was deleted with 2 machines running; the pool did not opt in to replacement")},
		},
		"EmptyBackingDeleted": {
			reason: "A MachineDeployment that runs no machines may go.",
			before: func(w *world, _ *pool) {
				ms := onlySet(w)
				ms.replicas, ms.ready = 0, 0
			},
			edit: func(w *world, p *pool) {
				w.remove(p, "machinedeployment-eu-west-1a")
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			w, p := handMade(t, tc.autoscaled)
			if tc.before != nil {
				tc.before(w, p)
			}
			if vs := w.check(); len(vs) > 0 {
				t.Fatalf("%s\ncheck() before the change: %v", tc.reason, vs)
			}
			tc.edit(w, p)
			if diff := cmp.Diff(tc.want, w.check(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\ncheck(): -want violations, +got violations:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestCheckResponse(t *testing.T) {
	rsp := func(results ...*fnv1.Result) *fnv1.RunFunctionResponse {
		return &fnv1.RunFunctionResponse{Desired: &fnv1.State{Resources: map[string]*fnv1.Resource{"machinedeployment-eu-west-1a": mdResource(`, "replicas": 2`)}}, Results: results}
	}
	cases := map[string]struct {
		reason string
		rsp    *fnv1.RunFunctionResponse
		want   []Violation
	}{
		"Normal": {
			reason: "A response without results is right.",
			rsp:    rsp(),
		},
		"Fatal": {
			reason: "A Fatal result is reported with its message.",
			rsp:    rsp(&fnv1.Result{Severity: fnv1.Severity_SEVERITY_FATAL, Message: "cannot find Cluster"}),
			want:   []Violation{violation(RuleFatal, "FleetNodePool/"+poolName, "cannot find Cluster")},
		},
		"Warning": {
			reason: "A Warning (a refused change) is no violation: the function keeps what runs.",
			rsp:    rsp(&fnv1.Result{Severity: fnv1.Severity_SEVERITY_WARNING, Message: "the change would delete ..."}),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, p := handMade(t, false)
			got := checkResponse(7, p, tc.rsp)
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\ncheckResponse(...): -want violations, +got violations:\n%s", tc.reason, diff)
			}
		})
	}
}
