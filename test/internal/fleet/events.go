package fleet

import (
	"context"
	"maps"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// A Kind is an API version and kind to count the watch events of.
type Kind struct{ APIVersion, Kind string }

// Sources are the kinds a FleetNodePool's XR watches under Crossplane's
// realtime compositions: what it composes (MachineDeployments, templates,
// MachineHealthChecks, the rollout marker's ConfigMap) and what the function requires (the
// Cluster, its control plane, MachineSets, and while a disruptive change
// waits, the Cluster's MachineDeployments; the earlier waves' markers), and
// the XR itself. Machines are counted for scale: nothing watches them for
// the pool.
var Sources = []Kind{
	{"cluster.x-k8s.io/v1beta2", "Cluster"},
	{"controlplane.cluster.x-k8s.io/v1beta2", "KubeadmControlPlane"},
	{"cluster.x-k8s.io/v1beta2", "MachineDeployment"},
	{"cluster.x-k8s.io/v1beta2", "MachineSet"},
	{"cluster.x-k8s.io/v1beta2", "MachineHealthCheck"},
	{"cluster.x-k8s.io/v1beta2", "Machine"},
	{"infrastructure.cluster.x-k8s.io/v1beta2", "DevMachineTemplate"},
	{"bootstrap.cluster.x-k8s.io/v1beta2", "KubeadmConfigTemplate"},
	{"v1", "ConfigMap"},
	{"fleet.nodepool.dev/v1alpha1", "FleetNodePool"},
}

// Events counts the watch events (added, modified, deleted) of kinds in a
// namespace, by kind: what Crossplane's watches see of them. A watch the
// API server ends is resumed from a fresh list, whose objects are not
// counted again; events between the two are lost to the count.
type Events struct {
	mu     sync.Mutex
	counts map[string]int
}

// CountEvents counts the events of kinds in namespace until ctx is done.
func CountEvents(ctx context.Context, c client.WithWatch, namespace string, kinds ...Kind) *Events {
	e := &Events{counts: map[string]int{}}
	for _, k := range kinds {
		go e.count(ctx, c, namespace, k)
	}
	return e
}

// Counts are the events counted so far, by kind.
func (e *Events) Counts() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.counts)
}

func (e *Events) count(ctx context.Context, c client.WithWatch, namespace string, k Kind) {
	for ctx.Err() == nil {
		l := &unstructured.UnstructuredList{}
		l.SetAPIVersion(k.APIVersion)
		l.SetKind(k.Kind + "List")
		if err := c.List(ctx, l, client.InNamespace(namespace)); err != nil {
			pause(ctx) // The kind's CRD may not be there yet.
			continue
		}
		w, err := c.Watch(ctx, l, &client.ListOptions{Namespace: namespace, Raw: &metav1.ListOptions{ResourceVersion: l.GetResourceVersion()}})
		if err != nil {
			pause(ctx)
			continue
		}
		for ev := range w.ResultChan() {
			switch ev.Type { //nolint:exhaustive // Bookmarks and errors are no change.
			case watch.Added, watch.Modified, watch.Deleted:
				e.mu.Lock()
				e.counts[k.Kind]++
				e.mu.Unlock()
			}
		}
		w.Stop()
	}
}

func pause(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(time.Second):
	}
}
