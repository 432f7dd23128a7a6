package plan

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
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

// resolveCell checks the pool's cell is one of the policy's.
func resolveCell(in Input) *field.Error {
	c := in.Spec.Cell
	if c == "" {
		return nil
	}
	if _, ok := in.Policy.Cells[c]; ok {
		return nil
	}
	if len(in.Policy.Cells) == 0 {
		return field.Invalid(specPath.Child("cell"), c,
			"the platform policy defines no cells: remove spec.cell to compose into this management cluster, or ask the platform team to add the cell to the Composition's input.cells")
	}
	return field.NotSupported(specPath.Child("cell"), c, sortedKeys(in.Policy.Cells))
}

// cellChange refuses moving running objects to another management cluster:
// the cell's Cluster API would create new nodes and the old ones would be
// deleted with their objects. It returns the refusal and the cell they run
// in.
func cellChange(in Input) (_ *Refusal, was string) {
	var moved []string
	for _, k := range sortedKeys(in.Observed) {
		o := in.Observed[k]
		if !isBacking(k) || o.Cell == in.Spec.Cell || !o.running() {
			continue
		}
		moved, was = append(moved, o.Name), o.Cell
	}
	if len(moved) == 0 {
		return nil, ""
	}
	return &Refusal{Reason: ReasonCellChanged, Message: fmt.Sprintf(
		"%s run nodes in %s, and the pool is now in %s (spec.cell): nodes cannot move between management clusters; nothing was changed. "+
			"Create a new FleetNodePool in the new cell and delete this one", strings.Join(moved, ", "), cellName(was), cellName(in.Spec.Cell))}, was
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
// once they have none (ReleaseAfter covers the moment it takes). While any
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
	return ms, true
}
