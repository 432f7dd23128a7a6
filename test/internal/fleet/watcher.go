// Package fleet watches a live Cluster API fleet for the fleet invariants
// (test/invariant): what the fleet e2e and the bigger documented run watch
// while pools are created, upgraded and rotated under the real Cluster API
// controllers. Take reads an invariant.Snapshot from the API server at one
// resource version; the Watcher takes one after another and checks each
// against the one before.
//
// What the watcher judges is read from the API server (MachineSets,
// Machines, MachineDeployments), never from the function's answers. Two
// things it cannot read there come from the test: each Cluster's rollout
// concurrency (SetConcurrency), which pools the test paused (Hold),
// which count as held only once the pool's FleetNodePool says the
// function acted on it, the fleet's waves as the policy sets them
// (SetWaves) and which pool the test made fail (Fail). Whether an earlier
// wave's pools are at the target, Available, done rolling and soaked is
// read on the API server, as is when each settled.
package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fleetnodepool/function-fleetnodepool/test/invariant"
)

// Labels and annotations the watcher reads.
const (
	labelControlPlane = "cluster.x-k8s.io/control-plane"
	labelDeployment   = "cluster.x-k8s.io/deployment-name"
	labelPool         = "fleet.nodepool.dev/pool"
	// conditionRolloutHeld is the FleetNodePool's condition saying why a
	// disruptive change waits (its reason), or reason NotHeld.
	conditionRolloutHeld = "RolloutHeld"
	annotationMinSize    = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size"
	// annotationAllowReplacement is the pool's opt-in to replacing its
	// backing (plan.AnnotationAllowReplacement).
	annotationAllowReplacement = "fleet.nodepool.dev/allow-replacement"
)

// A Seen violation, with when it was first seen.
type Seen struct {
	invariant.Violation
	At time.Duration
}

// A Watcher checks the invariants on a live API server, snapshot after
// snapshot, and remembers every violation it saw.
type Watcher struct {
	c client.Reader
	// pools reads the FleetNodePools: c, unless the Cluster API objects
	// live in a cell (PoolsFrom).
	pools client.Reader
	start time.Time

	mu   sync.Mutex
	last invariant.Snapshot
	// lastHeldBy is why each pool's FleetNodePool said it was held in the
	// last snapshot (HeldBy), by namespace/name.
	lastHeldBy map[string]string
	// concurrency is each Cluster's rollout concurrency, by namespace/name,
	// as the test set it.
	concurrency map[string]int
	// holds are the pools the test told the function to hold, and why.
	holds map[string]string
	// heldSnapshots counts, by pool, the snapshots checked with it held.
	heldSnapshots map[string]int
	// waves are the fleet's waves as the test set them, nil when not
	// checked; failing are the pools the test made fail, and since when
	// each is not settled (zero while it is).
	waves   *Waves
	failing map[string]time.Time
	// notSettledAt is when the read of the last snapshot that saw each
	// pool not settled at the target began. lastWaveHeld and lastHalted are
	// the wave holds of the last snapshot, before the one before.
	notSettledAt                       map[string]time.Time
	lastWaveHeld, lastHalted           map[string]string
	waveHeldSnapshots, haltedSnapshots map[string]int
	seen                               map[string]bool
	found                              []Seen
	snapshots                          int
	errs                               int
}

// A WatcherOption configures a Watcher.
type WatcherOption func(*Watcher)

// PoolsFrom has the watcher read the FleetNodePools through r: the
// central API server of a cell's pools, whose Cluster API objects it reads
// in the cell.
func PoolsFrom(r client.Reader) WatcherOption { return func(w *Watcher) { w.pools = r } }

// NewWatcher returns a watcher reading through c.
func NewWatcher(c client.Reader, o ...WatcherOption) *Watcher {
	w := &Watcher{c: c, pools: c, seen: map[string]bool{}, start: time.Now(),
		concurrency: map[string]int{}, holds: map[string]string{}, heldSnapshots: map[string]int{},
		failing: map[string]time.Time{}, notSettledAt: map[string]time.Time{}, waveHeldSnapshots: map[string]int{}, haltedSnapshots: map[string]int{}}
	for _, fn := range o {
		fn(w)
	}
	return w
}

// SetConcurrency tells the watcher how many pools of a Cluster
// (namespace/name) may be rolling at once, from the next snapshot on: the
// rule ConcurrencyBounded is checked for it. n < 1 stops the check.
func (w *Watcher) SetConcurrency(cluster string, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n < 1 {
		delete(w.concurrency, cluster)
		return
	}
	w.concurrency[cluster] = n
}

// Hold tells the watcher the test told the function to hold a pool
// (namespace/name) for a reason (Paused): the rule NoStartWhileHeld is
// checked for it once the function acted on it, that is from the snapshot
// after one where the pool's FleetNodePool says it is held for that reason
// (HeldBy). Until then the function may not have seen the change, and a
// rollout it started just before is a rollout under way, which finishes:
// that is no start while held. Call Release before undoing the hold.
func (w *Watcher) Hold(pool, reason string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.holds[pool] = reason
}

// Release undoes Hold.
func (w *Watcher) Release(pool string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.holds, pool)
}

// Run takes a snapshot every interval until ctx is done.
func (w *Watcher) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		at := time.Now()
		objs, err := read(ctx, w.c, w.pools)
		if err != nil {
			w.mu.Lock()
			w.errs++
			w.mu.Unlock()
		} else {
			w.check(objs, at, time.Now())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// check checks the fleet the objects, by kind, make against the last
// snapshot checked, with what the test told the watcher. at and end are
// when their reading began and ended: they show the fleet at one moment in
// between.
func (w *Watcher) check(objs map[string][]unstructured.Unstructured, at, end time.Time) {
	s := snapshot(objs)
	heldBy := map[string]string{}
	for _, p := range objs["FleetNodePool"] {
		if why := HeldBy(&p); why != "" {
			heldBy[p.GetNamespace()+"/"+p.GetName()] = why
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	s.Concurrency = maps.Clone(w.concurrency)
	// A pool is held from the snapshot after the one where its
	// FleetNodePool said so: every change of its backings since that
	// snapshot comes from a later reconcile, which saw the hold.
	s.Held = map[string]string{}
	for p, why := range w.holds {
		if w.lastHeldBy[p] == why {
			s.Held[p] = why
			w.heldSnapshots[p]++
		}
	}
	s.WaveHeld, s.Halted = w.waveHolds(objs, at, end)
	w.snapshots++
	vs := invariant.Check(w.last, s)
	w.last, w.lastHeldBy = s, heldBy
	for _, v := range vs {
		if k := v.String(); !w.seen[k] {
			w.seen[k] = true
			w.found = append(w.found, Seen{Violation: v, At: time.Since(w.start)})
		}
	}
}

// HeldBy is why a FleetNodePool says its disruptive changes wait: the
// reason of its condition RolloutHeld when True, else status.rollout's
// reason when its state is Held; "" when not held.
func HeldBy(xr *unstructured.Unstructured) string {
	conds, _, _ := unstructured.NestedSlice(xr.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == conditionRolloutHeld && m["status"] == "True" {
			why, _ := m["reason"].(string)
			return why
		}
	}
	if state, _, _ := unstructured.NestedString(xr.Object, "status", "rollout", "state"); state == "Held" {
		why, _, _ := unstructured.NestedString(xr.Object, "status", "rollout", "reason")
		return why
	}
	return ""
}

// Violations returns every violation seen so far.
func (w *Watcher) Violations() []Seen {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Seen(nil), w.found...)
}

// HeldSnapshots returns, by pool (namespace/name), how many snapshots were
// checked with it held (Hold, once the function acted on it): whether
// NoRolloutStartWhileHeld judged it at all.
func (w *Watcher) HeldSnapshots() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.heldSnapshots)
}

// Snapshots returns how many snapshots were checked, and how many could
// not be taken.
func (w *Watcher) Snapshots() (checked, failed int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.snapshots, w.errs
}

// A lister lists kinds at one resource version: every list after the first
// reads the same etcd revision, so a snapshot is one consistent moment
// across kinds (a template and the MachineSet using it are never read at
// different times).
type lister struct {
	c  client.Reader
	rv string
}

func (l *lister) list(ctx context.Context, apiVersion, kind string) ([]unstructured.Unstructured, error) {
	ul := &unstructured.UnstructuredList{}
	ul.SetAPIVersion(apiVersion)
	ul.SetKind(kind + "List")
	o := &client.ListOptions{}
	if l.rv != "" {
		o.Raw = &metav1.ListOptions{ResourceVersion: l.rv, ResourceVersionMatch: metav1.ResourceVersionMatchExact}
	}
	if err := l.c.List(ctx, ul, o); err != nil {
		return nil, fmt.Errorf("cannot list %s: %w", kind, err)
	}
	if l.rv == "" {
		l.rv = ul.GetResourceVersion()
	}
	return ul.Items, nil
}

// FunctionManager reports whether a field manager is the function's, that
// is Crossplane applying the function's desired state.
func FunctionManager(m string) bool { return strings.HasPrefix(m, "apiextensions.crossplane.io") }

// Take reads a snapshot of the fleet from the API server, every kind at one
// resource version. What only the test knows (Snapshot.Concurrency and
// Held) is left empty: the Watcher fills it.
func Take(ctx context.Context, c client.Reader) (invariant.Snapshot, error) {
	objs, err := read(ctx, c, c)
	if err != nil {
		return invariant.Snapshot{}, err
	}
	return snapshot(objs), nil
}

// read lists the kinds a snapshot is made of, at one resource version, and
// the FleetNodePools through pools (at that version, where that is c).
func read(ctx context.Context, c, pools client.Reader) (map[string][]unstructured.Unstructured, error) {
	l := &lister{c: c}
	objs := map[string][]unstructured.Unstructured{}
	for _, k := range []struct{ apiVersion, kind string }{
		{"infrastructure.cluster.x-k8s.io/v1beta2", "DevMachineTemplate"},
		{"bootstrap.cluster.x-k8s.io/v1beta2", "KubeadmConfigTemplate"},
		{"cluster.x-k8s.io/v1beta2", "MachineSet"},
		{"cluster.x-k8s.io/v1beta2", "Machine"},
		{"cluster.x-k8s.io/v1beta2", "MachineDeployment"},
		{"fleet.nodepool.dev/v1alpha1", "FleetNodePool"},
	} {
		if k.kind == "FleetNodePool" && pools != c {
			l = &lister{c: pools}
		}
		items, err := l.list(ctx, k.apiVersion, k.kind)
		if err != nil {
			return nil, err
		}
		objs[k.kind] = items
	}
	return objs, nil
}

// snapshot is the fleet the objects, by kind, make. Backings carry no
// version: a MachineDeployment's spec may lead a control-plane machine
// being replaced by moments; the machines it runs are checked instead.
// A backing's Template is its machines' version and template names: what
// changes when the function starts a disruptive rollout. A MachineSet's
// Deployment is its label cluster.x-k8s.io/deployment-name, else its
// MachineDeployment owner.
func snapshot(objs map[string][]unstructured.Unstructured) invariant.Snapshot {
	s := invariant.Snapshot{ControlPlanes: map[string]string{}, Templates: map[invariant.Ref]bool{}}
	for _, kind := range []string{"DevMachineTemplate", "KubeadmConfigTemplate"} {
		for _, t := range objs[kind] {
			s.Templates[invariant.Ref{Kind: kind, Namespace: t.GetNamespace(), Name: t.GetName()}] = true
		}
	}
	for _, ms := range objs["MachineSet"] {
		ref := func(path ...string) invariant.Ref {
			m, _, _ := unstructured.NestedStringMap(ms.Object, path...)
			return invariant.Ref{Kind: m["kind"], Name: m["name"]}
		}
		cluster, _, _ := unstructured.NestedString(ms.Object, "spec", "clusterName")
		ready, _, _ := unstructured.NestedInt64(ms.Object, "status", "readyReplicas")
		s.MachineSets = append(s.MachineSets, invariant.MachineSet{
			Ref:  invariant.Ref{Kind: "MachineSet", Namespace: ms.GetNamespace(), Name: ms.GetName()},
			Pool: ms.GetLabels()[labelPool], Cluster: cluster, Deployment: deployment(&ms),
			Infra:     ref("spec", "template", "spec", "infrastructureRef"),
			Bootstrap: ref("spec", "template", "spec", "bootstrap", "configRef"),
			Running:   int32(ready), //nolint:gosec // A replica count.
		})
	}
	running := map[string]int32{} // By namespace/MachineDeployment.
	for _, m := range objs["Machine"] {
		cluster, _, _ := unstructured.NestedString(m.Object, "spec", "clusterName")
		version, _, _ := unstructured.NestedString(m.Object, "spec", "version")
		if _, cp := m.GetLabels()[labelControlPlane]; cp {
			k := m.GetNamespace() + "/" + cluster
			if old, ok := s.ControlPlanes[k]; version != "" && (!ok || invariant.Newer(old, version)) {
				s.ControlPlanes[k] = version
			}
			continue
		}
		s.Machines = append(s.Machines, invariant.Machine{Ref: invariant.Ref{Kind: "Machine", Namespace: m.GetNamespace(), Name: m.GetName()},
			Pool: m.GetLabels()[labelPool], Cluster: cluster, Version: version})
		if phase, _, _ := unstructured.NestedString(m.Object, "status", "phase"); phase == "Running" && m.GetDeletionTimestamp() == nil {
			running[m.GetNamespace()+"/"+m.GetLabels()[labelDeployment]]++
		}
	}
	for _, md := range objs["MachineDeployment"] {
		if md.GetDeletionTimestamp() != nil {
			continue
		}
		_, auto := md.GetAnnotations()[annotationMinSize]
		cluster, _, _ := unstructured.NestedString(md.Object, "spec", "clusterName")
		b := invariant.Backing{Ref: invariant.Ref{Kind: "MachineDeployment", Namespace: md.GetNamespace(), Name: md.GetName()}, UID: string(md.GetUID()),
			Pool: md.GetLabels()[labelPool], Cluster: cluster, Autoscaled: auto, Running: running[md.GetNamespace()+"/"+md.GetName()],
			Template: Template(&md)}
		for _, mf := range md.GetManagedFields() {
			if mf.FieldsV1 != nil && FunctionManager(mf.Manager) && ownsReplicas(mf.FieldsV1.GetRawBytes()) {
				b.FunctionSetsReplicas = true
			}
		}
		s.Backings = append(s.Backings, b)
	}
	for _, p := range objs["FleetNodePool"] {
		if p.GetDeletionTimestamp() == nil {
			s.Pools = append(s.Pools, invariant.Pool{Namespace: p.GetNamespace(), Name: p.GetName(),
				AllowReplacement: p.GetAnnotations()[annotationAllowReplacement] == "true"})
		}
	}
	return s
}

// ownsReplicas reports whether managed fields (FieldsV1 JSON) own
// spec.replicas.
func ownsReplicas(fields []byte) bool {
	var f struct {
		Spec map[string]any `json:"f:spec"`
	}
	if err := json.Unmarshal(fields, &f); err != nil {
		return false
	}
	_, ok := f.Spec["f:replicas"]
	return ok
}

// deployment is the name of a MachineSet's MachineDeployment: its label
// cluster.x-k8s.io/deployment-name, else its MachineDeployment owner; ""
// if none.
func deployment(ms *unstructured.Unstructured) string {
	if d := ms.GetLabels()[labelDeployment]; d != "" {
		return d
	}
	for _, o := range ms.GetOwnerReferences() {
		if o.Kind == "MachineDeployment" {
			return o.Name
		}
	}
	return ""
}

// Template is what a MachineDeployment's machines are cloned from: its
// version and its infrastructure and bootstrap templates' names,
// version/infrastructure/bootstrap, and, where set, @spec.rollout.after
// (a later one replaces every machine made before it: a node rotation);
// "" (not checked) if it names none. A change of it starts a disruptive
// rollout.
func Template(md *unstructured.Unstructured) string {
	spec := func(path ...string) string {
		v, _, _ := unstructured.NestedString(md.Object, append([]string{"spec", "template", "spec"}, path...)...)
		return v
	}
	v, infra, boot := spec("version"), spec("infrastructureRef", "name"), spec("bootstrap", "configRef", "name")
	if v == "" && infra == "" && boot == "" {
		return ""
	}
	t := v + "/" + infra + "/" + boot
	if after, _, _ := unstructured.NestedString(md.Object, "spec", "rollout", "after"); after != "" {
		t += "@" + after
	}
	return t
}
