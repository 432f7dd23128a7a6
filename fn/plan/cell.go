package plan

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fleetnodepool/function-fleetnodepool/apis/input/v1beta1"
)

// ReasonCellChanged refuses moving a running pool to another management
// cluster (spec.cell): its nodes cannot move.
const ReasonCellChanged = "CellChanged"

// CheckCell checks the pool's cell (spec.cell) is one of the policy's: an
// InvalidError naming the field if not.
func CheckCell(in Input) error {
	if err := resolveCell(in); err != nil {
		return &InvalidError{Errs: field.ErrorList{err}}
	}
	return nil
}

// resolveCell checks the pool's cell is one of the policy's, and that the
// policy says how to reach it.
func resolveCell(in Input) *field.Error {
	c := in.Spec.Cell
	if c == "" {
		return nil
	}
	cell, ok := in.Policy.Cells[c]
	switch {
	case !ok && len(in.Policy.Cells) == 0:
		return field.Invalid(specPath.Child("cell"), c,
			"the platform policy defines no cells: ask the platform team to add the cell to the Composition's input.cells, "+
				"or leave spec.cell out if the pool's Cluster is in the management cluster Crossplane runs in")
	case !ok:
		return field.NotSupported(specPath.Child("cell"), c, sortedKeys(in.Policy.Cells))
	}
	ref := inputPath.Child("cells").Key(c).Child("providerConfigRef")
	switch k := cell.ProviderConfigRef.Kind; {
	case cell.ProviderConfigRef.Name == "":
		return field.Required(ref.Child("name"), "name the provider-kubernetes provider config whose kubeconfig reaches the cell's API server")
	case k != "" && k != v1beta1.ClusterProviderConfigKind && k != v1beta1.ProviderConfigKind:
		return field.NotSupported(ref.Child("kind"), k, []string{v1beta1.ClusterProviderConfigKind, v1beta1.ProviderConfigKind})
	}
	return nil
}

// Release waits of the templates of a pool in a cell. The cell's
// MachineSets cannot be read (remoteMachineSets), and a cell's report of a
// MachineDeployment that has just begun replacing its machines may still
// count them up to date: only the next report shows the rollout, and resets
// the wait. It comes as soon as Cluster API acts on a watched cell, and at
// provider-kubernetes' next poll otherwise (--poll, 10m by default, plus
// 10% jitter): the waits outlast either.
const (
	CellReleaseAfter        = 15 * time.Minute
	WatchedCellReleaseAfter = 2 * time.Minute
)

// releaseAfter is how long a template of the pool that nothing uses is kept
// before it is released.
func releaseAfter(in Input) time.Duration {
	c, ok := in.Policy.Cells[in.Spec.Cell]
	switch {
	case in.Spec.Cell == "" || !ok:
		return ReleaseAfter
	case c.Watch:
		return WatchedCellReleaseAfter
	default:
		return CellReleaseAfter
	}
}

// cellChange refuses moving a pool's MachineDeployments or MachinePool to
// another management cluster: its Cluster API would create new nodes, the
// old ones would be deleted with their objects, and Crossplane would
// replace each Object with a local object of another kind under the same
// key. Running or not, the pool is re-created instead.
func cellChange(in Input) *Refusal {
	var (
		moved []string
		was   string
	)
	for _, k := range sortedKeys(in.Observed) {
		o := in.Observed[k]
		if !isBacking(k) || o.Cell == in.Spec.Cell {
			continue
		}
		moved, was = append(moved, o.Name), o.Cell
	}
	if len(moved) == 0 {
		return nil
	}
	return &Refusal{Reason: ReasonCellChanged, Message: fmt.Sprintf(
		"%s live in %s, and the pool is now in %s (spec.cell): a pool cannot move between management clusters; nothing was changed. "+
			"Create a new FleetNodePool in the new cell and delete this one", strings.Join(moved, ", "), cellName(was), cellName(in.Spec.Cell))}
}

// cellName names a cell in messages.
func cellName(c string) string {
	if c == "" {
		return "the local management cluster"
	}
	return "cell " + c
}

// remoteMachineSets stands in for the live MachineSets of a pool in a cell.
// Crossplane reads only its own API server, and provider-kubernetes
// observes an object by name, while Cluster API names MachineSets at
// random: the function cannot list them. It reads, instead, what the
// cell's MachineDeployments report: one whose controller has acted on its
// latest spec and runs every machine up to date has one MachineSet with
// machines, made from its own templates; Cluster API deletes the others
// once they have none (CellReleaseAfter covers the moment it takes). While any
// MachineDeployment rolls, or reports nothing yet, the MachineSets are
// unknown (nil): every template is kept, as for a local pool whose
// MachineSets were not fetched.
func remoteMachineSets(observed map[string]Observed) map[string][]MachineSet {
	out := map[string][]MachineSet{}
	for k, o := range observed {
		if !strings.HasPrefix(k, keyMachineDeployment) {
			continue
		}
		ms, ok := o.settledMachineSet()
		if !ok {
			return nil
		}
		out[o.Name] = []MachineSet{ms}
	}
	return out
}

// settledMachineSet is the one MachineSet of a MachineDeployment that has
// acted on its latest spec and runs every machine up to date, and false
// for one that has not (or reports nothing).
func (o Observed) settledMachineSet() (MachineSet, bool) {
	if o.Generation == 0 || o.ObservedGeneration < o.Generation || o.Replicas == nil || o.UpToDateReplicas == nil || o.OtherVersions > 0 ||
		*o.UpToDateReplicas != *o.Replicas || o.SpecReplicas != nil && *o.SpecReplicas != *o.Replicas {
		return MachineSet{}, false
	}
	ms := MachineSet{Version: o.Version, Bootstrap: o.Bootstrap, Replicas: *o.Replicas}
	for _, n := range o.References {
		if n != o.Bootstrap {
			ms.Infra = n
		}
	}
	// Dated by the function's record of the machines it runs, if it has
	// one (stampRevisions): a revision of unknown age is not rotated.
	ms.Created = revisionCreated(o)
	return ms, true
}
