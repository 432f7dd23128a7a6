// Package invariant is the one vocabulary of the fleet invariants: the
// rules no node pool may break, whoever watches. The property test of the
// planner (fn/plan), the fleet model (test/fleetsim) and the live watcher of
// the fleet e2e (test/internal/fleet) each describe what they see as a
// Snapshot and call Check; the rules, their names and their messages are
// defined here once.
//
// Each observer fills what it sees: the planner's property test sees the
// desired MachineDeployments and a modelled MachineSet history, the fleet
// model sees MachineSets and desired MachineDeployments, the live watcher
// sees MachineSets, Machines and managed fields. A rule checks the fields
// filled and nothing else.
//
// It lives outside test/internal so that fn/plan's tests can import it; it
// imports only fn/kubeversion of this module, so there is no cycle.
package invariant

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/fleetnodepool/function-fleetnodepool/fn/kubeversion"
)

// A Rule is an invariant of a fleet, by its stable name.
type Rule string

// The fleet invariants.
const (
	// TemplateExists: no MachineSet clones from an infrastructure or
	// bootstrap template that does not exist (a template in use is kept).
	TemplateExists Rule = "TemplateExists"
	// WorkerNotNewer: no worker (a Machine, a MachineSet running machines,
	// or a MachineDeployment or MachinePool asking for a version) runs or
	// asks for a Kubernetes version newer than its cluster's control plane.
	WorkerNotNewer Rule = "WorkerNotNewerThanControlPlane"
	// ReplicasNotOwned: the function never sets spec.replicas of an
	// autoscaled MachineDeployment or MachinePool.
	ReplicasNotOwned Rule = "AutoscaledReplicasNotOwned"
	// BackingKept: a MachineDeployment or MachinePool running machines is
	// not deleted while its pool exists, unless the pool opted in to
	// replacement.
	BackingKept Rule = "RunningBackingKept"
	// ConcurrencyBounded: no more pools of a Cluster are rolling at once
	// than its rollout concurrency allows. A pool is rolling while one of
	// its MachineDeployments runs machines on more than one MachineSet.
	ConcurrencyBounded Rule = "RolloutConcurrencyBounded"
	// NoStartWhileHeld: no running MachineDeployment or MachinePool starts
	// a disruptive rollout (its Template changes: a new template, version or
	// rotation) while its pool may not start one: paused, deferred, outside
	// its maintenance window.
	NoStartWhileHeld Rule = "NoRolloutStartWhileHeld"
	// WaveOrder: no running pool of a wave starts a disruptive rollout
	// before the pools of the earlier waves are at the target, Available,
	// done rolling and soaked.
	WaveOrder Rule = "NoStartBeforeEarlierWaves"
	// HaltRespected: no running pool starts a disruptive rollout while an
	// earlier wave has more failed pools than tolerated.
	HaltRespected Rule = "NoStartAfterHalt"
)

// A Ref names an object of a namespace.
type Ref struct{ Kind, Namespace, Name string }

func (r Ref) String() string { return r.Kind + "/" + r.Namespace + "/" + r.Name }

// A Backing is a MachineDeployment or MachinePool: what runs a pool's
// machines.
type Backing struct {
	Ref
	// UID tells a backing from one deleted and recreated under its name;
	// "" when the observer has none.
	UID string
	// Pool is the FleetNodePool's name (of the backing's namespace) and
	// Cluster the Cluster's.
	Pool, Cluster string
	// Version is the Kubernetes version it asks for; "" is not checked.
	Version string
	// Autoscaled: the autoscaler owns its size.
	Autoscaled bool
	// FunctionSetsReplicas: the function sets (or, live, Crossplane's field
	// manager owns) spec.replicas.
	FunctionSetsReplicas bool
	// Running is how many machines run on it.
	Running int32
	// Template is what its machines are cloned from (version and template
	// names, and a MachineDeployment's spec.rollout.after, in any stable
	// form); a change starts a disruptive rollout, a node rotation too. ""
	// is not checked.
	Template string
}

// A MachineSet clones machines from two templates.
type MachineSet struct {
	Ref
	Pool, Cluster string
	// Deployment is the name of its MachineDeployment, "" if none.
	Deployment string
	// Infra and Bootstrap are the templates' kinds and names (of the
	// MachineSet's namespace); a Name "" is no reference.
	Infra, Bootstrap Ref
	// Version is the Kubernetes version of its machines; "" is not checked.
	Version string
	// Running is how many machines run.
	Running int32
}

// A Machine is a worker machine.
type Machine struct {
	Ref
	Pool, Cluster, Version string
}

// A Pool is a FleetNodePool.
type Pool struct {
	Namespace, Name string
	// AllowReplacement: the pool opted in to replacing its backing.
	AllowReplacement bool
}

// A Snapshot is a fleet at one moment, as one observer sees it.
type Snapshot struct {
	// ControlPlanes is the Kubernetes version each Cluster's control plane
	// runs (the oldest of its machines), by namespace/name.
	ControlPlanes map[string]string
	// Templates are the templates that exist; their Namespace is the
	// namespace of the MachineSets using them.
	Templates map[Ref]bool
	// Backings exclude those being deleted.
	Backings []Backing
	// MachineSets include those being deleted: their machines may still
	// run, and their templates must still exist.
	MachineSets []MachineSet
	Machines    []Machine
	// Pools are the FleetNodePools that exist and are not being deleted.
	Pools []Pool
	// Concurrency is how many pools of a Cluster (namespace/name) may be
	// rolling at once; a Cluster not in it is not checked.
	Concurrency map[string]int
	// Held says, by pool (namespace/name), why it may not start a
	// disruptive rollout now (paused, deferred, outside its window). The
	// observer fills it only where it knows the function was told.
	Held map[string]string
	// WaveHeld and Halted say, by pool, why the fleet's waves do not let it
	// start now: an earlier wave is not at the target, healthy and soaked;
	// an earlier wave failed beyond its tolerance.
	WaveHeld, Halted map[string]string
}

// A Violation is a rule broken.
type Violation struct {
	Rule Rule
	// Pool is namespace/name of the pool it concerns, "" if none is known.
	Pool string
	// Object is what breaks it, Kind/namespace/name.
	Object string
	Detail string
}

func (v Violation) String() string {
	return fmt.Sprintf("%s: %s (pool %s): %s", v.Rule, v.Object, v.Pool, v.Detail)
}

// Check returns the violations of now, in a stable order. before is the
// snapshot checked last, the zero Snapshot if none: BackingKept compares
// the two.
func Check(before, now Snapshot) []Violation {
	var out []Violation
	pool := func(namespace, name string) string {
		if name == "" {
			return ""
		}
		return namespace + "/" + name
	}
	// TemplateExists.
	for _, ms := range now.MachineSets {
		for _, r := range []Ref{ms.Infra, ms.Bootstrap} {
			if r.Name != "" && !now.Templates[Ref{r.Kind, ms.Namespace, r.Name}] {
				out = append(out, Violation{TemplateExists, pool(ms.Namespace, ms.Pool), ms.String(),
					fmt.Sprintf("clones from %s %s, which does not exist", r.Kind, r.Name)})
			}
		}
	}
	// WorkerNotNewer.
	ahead := func(namespace, cluster, v string) (string, bool) {
		cp, ok := now.ControlPlanes[namespace+"/"+cluster]
		return cp, ok && v != "" && Newer(v, cp)
	}
	for _, b := range now.Backings {
		if cp, ok := ahead(b.Namespace, b.Cluster, b.Version); ok {
			out = append(out, Violation{WorkerNotNewer, pool(b.Namespace, b.Pool), b.String(),
				fmt.Sprintf("asks for %s, its control plane runs %s", b.Version, cp)})
		}
	}
	for _, ms := range now.MachineSets {
		if cp, ok := ahead(ms.Namespace, ms.Cluster, ms.Version); ok && ms.Running > 0 {
			out = append(out, Violation{WorkerNotNewer, pool(ms.Namespace, ms.Pool), ms.String(),
				fmt.Sprintf("runs %d machines of %s, its control plane runs %s", ms.Running, ms.Version, cp)})
		}
	}
	for _, m := range now.Machines {
		if cp, ok := ahead(m.Namespace, m.Cluster, m.Version); ok {
			out = append(out, Violation{WorkerNotNewer, pool(m.Namespace, m.Pool), m.String(),
				fmt.Sprintf("runs %s, its control plane runs %s", m.Version, cp)})
		}
	}
	// ReplicasNotOwned.
	for _, b := range now.Backings {
		if b.Autoscaled && b.FunctionSetsReplicas {
			out = append(out, Violation{ReplicasNotOwned, pool(b.Namespace, b.Pool), b.String(),
				"is autoscaled, and the function sets its spec.replicas"})
		}
	}
	// BackingKept.
	type id struct {
		Ref
		uid string
	}
	kept := make(map[id]bool, len(now.Backings))
	for _, b := range now.Backings {
		kept[id{b.Ref, b.UID}] = true
	}
	pools := make(map[string]Pool, len(now.Pools))
	for _, p := range now.Pools {
		pools[p.Namespace+"/"+p.Name] = p
	}
	for _, b := range before.Backings {
		p, exists := pools[pool(b.Namespace, b.Pool)]
		if b.Running == 0 || kept[id{b.Ref, b.UID}] || !exists || p.AllowReplacement {
			continue
		}
		out = append(out, Violation{BackingKept, pool(b.Namespace, b.Pool), b.String(),
			fmt.Sprintf("was deleted with %d machines running; the pool did not opt in to replacement", b.Running)})
	}
	out = append(out, concurrency(now)...)
	out = append(out, startsWhile(before, now, now.Held, NoStartWhileHeld)...)
	out = append(out, startsWhile(before, now, now.WaveHeld, WaveOrder)...)
	out = append(out, startsWhile(before, now, now.Halted, HaltRespected)...)
	slices.SortFunc(out, func(a, b Violation) int {
		return cmp.Or(cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.Object, b.Object), cmp.Compare(a.Detail, b.Detail))
	})
	return out
}

// concurrency checks ConcurrencyBounded: the pools of each Cluster with
// a MachineDeployment running machines on more than one MachineSet.
func concurrency(now Snapshot) []Violation {
	if len(now.Concurrency) == 0 {
		return nil
	}
	rolling := Rolling(now)
	var out []Violation
	for _, c := range slices.Sorted(maps.Keys(rolling)) {
		n, ok := now.Concurrency[c]
		if !ok || len(rolling[c]) <= n {
			continue
		}
		pools := slices.Sorted(maps.Keys(rolling[c]))
		out = append(out, Violation{ConcurrencyBounded, "", "Cluster/" + c,
			fmt.Sprintf("%d pools are rolling (%s), its concurrency is %d", len(pools), strings.Join(pools, ", "), n)})
	}
	return out
}

// Rolling are the pools rolling in s, by Cluster (namespace/name): those
// with a MachineDeployment running machines on more than one MachineSet.
func Rolling(s Snapshot) map[string]map[string]bool {
	type md struct{ namespace, name string }
	sets := map[md]int{}
	rolling := map[string]map[string]bool{}
	for _, ms := range s.MachineSets {
		if ms.Running == 0 || ms.Deployment == "" {
			continue
		}
		k := md{ms.Namespace, ms.Deployment}
		if sets[k]++; sets[k] == 2 {
			c := ms.Namespace + "/" + ms.Cluster
			if rolling[c] == nil {
				rolling[c] = map[string]bool{}
			}
			rolling[c][ms.Pool] = true
		}
	}
	return rolling
}

// startsWhile checks a rule against starting: a running backing whose
// template changed since before, while held says its pool may not start.
func startsWhile(before, now Snapshot, held map[string]string, rule Rule) []Violation {
	was := make(map[Ref]Backing, len(before.Backings))
	for _, b := range before.Backings {
		was[b.Ref] = b
	}
	var out []Violation
	for _, b := range now.Backings {
		p := b.Namespace + "/" + b.Pool
		why, isHeld := held[p]
		o, ok := was[b.Ref]
		if !isHeld || !ok || o.UID != b.UID || o.Running == 0 || o.Template == "" || b.Template == "" || o.Template == b.Template {
			continue
		}
		out = append(out, Violation{rule, p, b.String(),
			fmt.Sprintf("started a rollout (%s -> %s) while %s", o.Template, b.Template, why)})
	}
	return out
}

// Newer reports whether Kubernetes version a (v1.34.1) is newer than b.
// Versions that do not parse are never newer.
func Newer(a, b string) bool {
	va, erra := kubeversion.Parse(a)
	vb, errb := kubeversion.Parse(b)
	return erra == nil && errb == nil && va.NewerThan(vb)
}
