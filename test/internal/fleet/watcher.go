package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Labels and annotations the watcher reads.
const (
	labelControlPlane = "cluster.x-k8s.io/control-plane"
	labelPool         = "fleet.nodepool.dev/pool"
	annotationMinSize = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size"
)

// A Seen violation, with when it was first seen.
type Seen struct {
	Violation
	At time.Duration
}

// A Watcher checks the invariants on a live API server, snapshot after
// snapshot, and remembers every violation it saw.
type Watcher struct {
	c       client.Reader
	history History
	start   time.Time

	mu        sync.Mutex
	seen      map[string]bool
	found     []Seen
	snapshots int
	errs      int
}

// NewWatcher returns a watcher reading through c.
func NewWatcher(c client.Reader) *Watcher {
	return &Watcher{c: c, seen: map[string]bool{}, start: time.Now()}
}

// Run takes a snapshot every interval until ctx is done.
func (w *Watcher) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s, err := Take(ctx, w.c)
		w.mu.Lock()
		if err != nil {
			w.errs++
		} else {
			w.snapshots++
			for _, v := range w.history.Check(s) {
				if k := v.String(); !w.seen[k] {
					w.seen[k] = true
					w.found = append(w.found, Seen{Violation: v, At: time.Since(w.start)})
				}
			}
		}
		w.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Violations returns every violation seen so far.
func (w *Watcher) Violations() []Seen {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Seen(nil), w.found...)
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

// Take reads a snapshot of the fleet from the API server.
func Take(ctx context.Context, c client.Reader) (Snapshot, error) {
	s := Snapshot{Templates: map[string]bool{}}
	l := &lister{c: c}
	for _, k := range []struct{ apiVersion, kind string }{
		{"infrastructure.cluster.x-k8s.io/v1beta2", "DevMachineTemplate"},
		{"bootstrap.cluster.x-k8s.io/v1beta2", "KubeadmConfigTemplate"},
	} {
		items, err := l.list(ctx, k.apiVersion, k.kind)
		if err != nil {
			return s, err
		}
		for _, t := range items {
			s.Templates[k.kind+"/"+t.GetNamespace()+"/"+t.GetName()] = true
		}
	}
	sets, err := l.list(ctx, "cluster.x-k8s.io/v1beta2", "MachineSet")
	if err != nil {
		return s, err
	}
	for _, ms := range sets {
		ref := func(path ...string) Ref {
			m, _, _ := unstructured.NestedStringMap(ms.Object, path...)
			return Ref{Kind: m["kind"], Name: m["name"]}
		}
		r, _, _ := unstructured.NestedInt64(ms.Object, "spec", "replicas")
		ready, _, _ := unstructured.NestedInt64(ms.Object, "status", "readyReplicas")
		s.MachineSets = append(s.MachineSets, MachineSet{
			Namespace: ms.GetNamespace(), Name: ms.GetName(),
			Infra:     ref("spec", "template", "spec", "infrastructureRef"),
			Bootstrap: ref("spec", "template", "spec", "bootstrap", "configRef"),
			Deleting:  ms.GetDeletionTimestamp() != nil, Replicas: int32(r), Running: int32(ready), //nolint:gosec // Replica counts.
		})
	}
	machines, err := l.list(ctx, "cluster.x-k8s.io/v1beta2", "Machine")
	if err != nil {
		return s, err
	}
	for _, m := range machines {
		cluster, _, _ := unstructured.NestedString(m.Object, "spec", "clusterName")
		version, _, _ := unstructured.NestedString(m.Object, "spec", "version")
		phase, _, _ := unstructured.NestedString(m.Object, "status", "phase")
		_, cp := m.GetLabels()[labelControlPlane]
		s.Machines = append(s.Machines, Machine{Namespace: m.GetNamespace(), Name: m.GetName(), Cluster: cluster, Version: version,
			ControlPlane: cp, Pool: m.GetLabels()[labelPool], Running: phase == "Running" && m.GetDeletionTimestamp() == nil})
	}
	mds, err := l.list(ctx, "cluster.x-k8s.io/v1beta2", "MachineDeployment")
	if err != nil {
		return s, err
	}
	for _, md := range mds {
		_, auto := md.GetAnnotations()[annotationMinSize]
		d := Deployment{Namespace: md.GetNamespace(), Name: md.GetName(), Pool: md.GetLabels()[labelPool], Autoscaled: auto}
		for _, mf := range md.GetManagedFields() {
			if mf.FieldsV1 != nil && ownsReplicas(mf.FieldsV1.GetRawBytes()) {
				d.ReplicasWriters = append(d.ReplicasWriters, mf.Manager)
			}
		}
		s.Deployments = append(s.Deployments, d)
	}
	pools, err := l.list(ctx, "fleet.nodepool.dev/v1alpha1", "FleetNodePool")
	if err != nil {
		return s, err
	}
	for _, p := range pools {
		s.Pools = append(s.Pools, p.GetNamespace()+"/"+p.GetName())
	}
	return s, nil
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
