package plan

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/fleetnodepool/function-fleetnodepool/fn/capi"
)

// A CRD is what the management cluster's CustomResourceDefinition of a
// composed kind says of it.
type CRD struct {
	// Served are the API versions it serves.
	Served []string
	// Labels are its labels, where a provider's CRD names the Cluster API
	// contracts it implements (capi.ContractLabel).
	Labels map[string]string
}

// CRDName is the name of the CRD of a kind: its plural and group, as
// Cluster API's contract requires of a provider's CRDs.
func CRDName(gk schema.GroupKind) string {
	plural, _ := meta.UnsafeGuessKindToResource(gk.WithVersion(""))
	return plural.Resource + "." + gk.Group
}

// A NotServedError says the management cluster does not serve a kind the
// pool composes, at the version the function composes it, or serves it
// from a provider whose contract Cluster API does not accept. Nothing is
// applied or deleted until it does.
type NotServedError struct {
	// Kind and APIVersion as composed.
	Kind, APIVersion string
	// Why, and what serves it.
	Why, ServedBy string
	// CRDs the plan read: asked for again with the error, so that
	// Crossplane watches them and a provider installed wakes the pool.
	CRDs []string
}

func (e *NotServedError) Error() string {
	return fmt.Sprintf("%s %s is not served by the management cluster (%s): install or upgrade %s; until it is, nothing of the pool is applied or deleted",
		e.Kind, e.APIVersion, e.Why, e.ServedBy)
}

// computeServed checks that the management cluster serves every kind the
// plan composes, at the version it composes it. A kind observed at that
// version is served (the API server returned it); of any other, the CRD
// says (in.CRDs), once read. It returns the names of those CRDs, or the
// error naming a kind that is not served.
func (pl *Planner) computeServed(p *Plan, in Input) ([]string, error) {
	if in.Spec.Cell != "" {
		// Crossplane reads only its own API server's CRDs: the cell's
		// show in its Objects' Synced condition.
		return nil, nil
	}
	// Served: every kind observed (or checked already) at its version.
	served := make(map[schema.GroupVersionKind]bool, len(in.Observed))
	for _, o := range in.Observed {
		if gv, err := schema.ParseGroupVersion(o.APIVersion); err == nil {
			served[gv.WithKind(o.Kind)] = true
		}
	}
	var (
		need []string
		err  *NotServedError
	)
	for _, r := range p.Resources {
		gvk := r.Object.GetObjectKind().GroupVersionKind()
		if served[gvk] || !strings.Contains(gvk.Group, ".") {
			continue // Kubernetes' own kinds (the marker's ConfigMap) are.
		}
		served[gvk] = true
		name := CRDName(gvk.GroupKind())
		need = append(need, name)
		crd, read := in.CRDs[name]
		if !read {
			continue
		}
		if why := pl.notServed(gvk, name, crd); why != "" && err == nil {
			err = &NotServedError{Kind: gvk.Kind, APIVersion: gvk.GroupVersion().String(), Why: why, ServedBy: pl.servedBy(gvk.Kind)}
		}
	}
	slices.Sort(need)
	if err != nil {
		err.CRDs = need
		return nil, err
	}
	return need, nil
}

// notServed says why a CRD does not serve gvk, "" when it does.
func (pl *Planner) notServed(gvk schema.GroupVersionKind, name string, crd *CRD) string {
	if crd == nil {
		return "no CustomResourceDefinition " + name
	}
	if !slices.Contains(crd.Served, gvk.Version) {
		if len(crd.Served) == 0 {
			return fmt.Sprintf("its CustomResourceDefinition %s serves no version", name)
		}
		return fmt.Sprintf("its CustomResourceDefinition %s serves %s only", name, strings.Join(crd.Served, ", "))
	}
	if gvk.Group == clusterv1.GroupVersion.Group {
		return "" // Cluster API's own kinds implement no contract.
	}
	for _, c := range capi.Contracts() {
		if slices.Contains(strings.Split(crd.Labels[capi.ContractLabel(c)], "_"), gvk.Version) {
			return ""
		}
	}
	var want []string
	for _, c := range capi.Contracts() {
		want = append(want, capi.ContractLabel(c))
	}
	return fmt.Sprintf("its CustomResourceDefinition %s implements no Cluster API contract this Cluster API accepts at %s: "+
		"none of its labels %s lists %s", name, gvk.Version, strings.Join(want, ", "), gvk.Version)
}

// servedBy says what serves a kind: its provider, or Cluster API.
func (pl *Planner) servedBy(kind string) string {
	if s := capi.ServedBy(kind); s != "" {
		return s
	}
	for _, n := range slices.Sorted(maps.Keys(pl.providers)) {
		if s := pl.providers[n].ServedBy(kind); s != "" {
			return s
		}
	}
	return "the provider that serves " + kind
}
