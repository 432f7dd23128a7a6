// Package fleet checks the lifecycle invariants of node pools on a live
// Cluster API fleet: what the fleet e2e and the bigger documented run watch
// while pools are created, upgraded and rotated under the real Cluster API
// controllers. The checks are pure functions of a Snapshot, so they are
// tested without an API server; the Watcher takes snapshots of a live one.
package fleet

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/version"
)

// Rules a fleet must never break.
const (
	// RuleTemplateExists: no MachineSet references an infrastructure or
	// bootstrap template that does not exist.
	RuleTemplateExists = "template-exists"
	// RuleWorkerNotNewer: no worker Machine runs a Kubernetes version newer
	// than the oldest control-plane Machine of its cluster.
	RuleWorkerNotNewer = "worker-not-newer-than-control-plane"
	// RuleReplicasOwner: the function never writes spec.replicas of an
	// autoscaled MachineDeployment.
	RuleReplicasOwner = "autoscaled-replicas-not-written"
	// RuleBacking: a pool that had running machines never loses its
	// MachineDeployments or all of its running machines.
	RuleBacking = "pool-keeps-backing"
)

// A Ref names a template a MachineSet clones from.
type Ref struct{ Kind, Name string }

// A MachineSet as the checks see it.
type MachineSet struct {
	Namespace, Name   string
	Infra, Bootstrap  Ref
	Deleting          bool
	Replicas, Running int32
}

// A Machine as the checks see it.
type Machine struct {
	Namespace, Name, Cluster string
	Version                  string
	ControlPlane             bool
	// Pool is the FleetNodePool the machine belongs to, if any.
	Pool    string
	Running bool
}

// A Deployment is a MachineDeployment as the checks see it.
type Deployment struct {
	Namespace, Name, Pool string
	Autoscaled            bool
	// ReplicasWriters are the field managers that own spec.replicas.
	ReplicasWriters []string
}

// A Snapshot is the fleet at one moment.
type Snapshot struct {
	MachineSets []MachineSet
	// Templates holds Kind/namespace/name of every template that exists.
	Templates   map[string]bool
	Machines    []Machine
	Deployments []Deployment
	// Pools are the FleetNodePools, namespace/name.
	Pools []string
}

// A Violation is one rule broken, seen at one moment.
type Violation struct {
	Rule, Object, Detail string
}

func (v Violation) String() string { return v.Rule + ": " + v.Object + ": " + v.Detail }

// FunctionManager reports whether a field manager is the function's, that
// is Crossplane applying the function's desired state.
func FunctionManager(m string) bool { return strings.HasPrefix(m, "apiextensions.crossplane.io") }

// History is what the checks remember between snapshots: which pools had
// running machines.
type History struct {
	backed map[string]bool
}

// Check returns the violations of a snapshot, in a stable order.
func (h *History) Check(s Snapshot) []Violation {
	var out []Violation
	for _, ms := range s.MachineSets {
		for _, r := range []Ref{ms.Infra, ms.Bootstrap} {
			if r.Name != "" && !s.Templates[r.Kind+"/"+ms.Namespace+"/"+r.Name] {
				out = append(out, Violation{RuleTemplateExists, "MachineSet/" + ms.Namespace + "/" + ms.Name,
					fmt.Sprintf("references %s %s, which does not exist", r.Kind, r.Name)})
			}
		}
	}
	oldestCP := map[string]string{}
	for _, m := range s.Machines {
		k := m.Namespace + "/" + m.Cluster
		if m.ControlPlane && m.Version != "" && (oldestCP[k] == "" || Newer(oldestCP[k], m.Version)) {
			oldestCP[k] = m.Version
		}
	}
	running := map[string]int{}
	for _, m := range s.Machines {
		if m.ControlPlane {
			continue
		}
		if cp := oldestCP[m.Namespace+"/"+m.Cluster]; cp != "" && Newer(m.Version, cp) {
			out = append(out, Violation{RuleWorkerNotNewer, "Machine/" + m.Namespace + "/" + m.Name,
				fmt.Sprintf("runs %s, its control plane %s", m.Version, cp)})
		}
		if m.Pool != "" && m.Running {
			running[m.Namespace+"/"+m.Pool]++
		}
	}
	deployments := map[string]int{}
	for _, d := range s.Deployments {
		deployments[d.Namespace+"/"+d.Pool]++
		if !d.Autoscaled {
			continue
		}
		for _, w := range d.ReplicasWriters {
			if FunctionManager(w) {
				out = append(out, Violation{RuleReplicasOwner, "MachineDeployment/" + d.Namespace + "/" + d.Name,
					fmt.Sprintf("spec.replicas of an autoscaled MachineDeployment is owned by %s", w)})
			}
		}
	}
	if h.backed == nil {
		h.backed = map[string]bool{}
	}
	for _, p := range s.Pools {
		switch {
		case h.backed[p] && deployments[p] == 0:
			out = append(out, Violation{RuleBacking, "FleetNodePool/" + p, "had running machines and has no MachineDeployment now"})
		case h.backed[p] && running[p] == 0:
			out = append(out, Violation{RuleBacking, "FleetNodePool/" + p, "had running machines and has none now"})
		case running[p] > 0:
			h.backed[p] = true
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// Newer reports whether Kubernetes version a (v1.34.1) is newer than b.
// Versions that do not parse are never newer.
func Newer(a, b string) bool {
	va, erra := version.ParseSemantic(a)
	vb, errb := version.ParseSemantic(b)
	return erra == nil && errb == nil && va.GreaterThan(vb)
}
