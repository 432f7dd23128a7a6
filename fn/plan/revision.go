package plan

import (
	"strings"
	"time"

	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
)

// AnnotationRevision is set by the function on a MachineDeployment of a
// pool in a cell, whose MachineSets cannot be read (remoteMachineSets) to
// date its revision for rotation: "<sent> <floor> <machines>". Sent is
// when the function sent the machines described (version, templates,
// spec.rollout.after); floor, "-" when unknown, is a time no node the
// MachineDeployment ran then is older than. See stampRevisions.
const AnnotationRevision = v1alpha1.Group + "/revision"

// A revisionRecord is a MachineDeployment's AnnotationRevision.
type revisionRecord struct {
	sent, floor time.Time
	machines    string
}

// parseRevision reads an AnnotationRevision; false if it has none or it
// does not parse.
func parseRevision(s string) (revisionRecord, bool) {
	sent, rest, ok := strings.Cut(s, " ")
	floor, machines, ok2 := strings.Cut(rest, " ")
	r := revisionRecord{sent: parseTime(sent), floor: parseTime(floor), machines: machines}
	return r, ok && ok2 && !r.sent.IsZero() && machines != ""
}

func (r revisionRecord) String() string {
	floor := "-"
	if !r.floor.IsZero() {
		floor = r.floor.UTC().Format(time.RFC3339)
	}
	return r.sent.UTC().Format(time.RFC3339) + " " + floor + " " + r.machines
}

// oldest is a time no node of the MachineDeployment is older than, whatever
// it runs of the machines sent and those before; zero if unknown.
func (r revisionRecord) oldest() time.Time {
	if r.floor.IsZero() {
		return time.Time{}
	}
	return cmpMin(r.sent, r.floor)
}

// machinesOf describes the machines a MachineDeployment makes, as
// AnnotationRevision records them.
func machinesOf(version string, refs []string, after time.Time) string {
	a := "-"
	if !after.IsZero() {
		a = after.UTC().Format(time.RFC3339)
	}
	var b strings.Builder
	b.WriteString(version)
	for _, r := range refs {
		if r != "" {
			b.WriteString(" " + r)
		}
	}
	b.WriteString(" " + a)
	return b.String()
}

// revisionCreated is when the settled MachineDeployment o's MachineSet was
// made, as its record says: zero (unknown) without a record of the
// machines it runs.
func revisionCreated(o Observed) time.Time {
	r, ok := parseRevision(o.Revision)
	if !ok || r.machines != machinesOf(o.Version, o.References, o.RolloutAfter) {
		return time.Time{}
	}
	return r.sent
}

// stampRevisions records on each MachineDeployment of a pool in a cell
// when its machines were sent (AnnotationRevision):
//   - the record observed, while it describes the machines planned;
//   - sent now, for a new MachineDeployment, or one that changes machines
//     while it settled on what it runs (every machine up to date, and the
//     pool keeps no template it has left: a report just after a template
//     change may still count every machine up to date). Its new machines
//     are made from now on, and its floor is when the machines it ran were
//     sent, where the record says;
//   - otherwise (machines that do not change, or change while it rolls:
//     going back to machines it still runs keeps their nodes) the oldest
//     time of the record observed, or no record: its age is unknown, and
//     it is not rotated. A MachineDeployment made before records were kept
//     is never dated at the function's upgrade: its nodes would look
//     younger than they are.
func stampRevisions(p *Plan, in Input) {
	if in.Spec.Cell == "" {
		return
	}
	fresh := !keepsLeftTemplates(in.Observed)
	for _, r := range p.Resources {
		md, ok := r.Object.(*clusterv1.MachineDeployment)
		if !ok {
			continue
		}
		made := machinesOf(md.Spec.Template.Spec.Version, references(md), md.Spec.Rollout.After.Time)
		o, seen := in.Observed[r.Key]
		rec, recorded := parseRevision(o.Revision)
		runs := machinesOf(o.Version, o.References, o.RolloutAfter)
		_, settled := o.settledMachineSet()
		next, stamp := revisionRecord{}, true
		switch {
		case !seen:
			next = revisionRecord{sent: in.Now, floor: in.Now, machines: made}
		case recorded && rec.machines == made:
			next = rec
		case made != runs && settled && fresh:
			next = revisionRecord{sent: in.Now, floor: rec.oldest(), machines: made}
			if recorded && rec.machines == runs {
				next.floor = rec.sent
			}
		default:
			f := rec.oldest()
			next, stamp = revisionRecord{sent: f, floor: f, machines: made}, recorded && !f.IsZero()
		}
		a := md.GetAnnotations()
		delete(a, AnnotationRevision)
		if stamp {
			if a == nil {
				a = map[string]string{}
			}
			a[AnnotationRevision] = next.String()
		}
		if len(a) == 0 {
			a = nil
		}
		md.SetAnnotations(a)
	}
}

// keepsLeftTemplates reports whether the pool keeps a template none of its
// MachineDeployments or MachinePool references: one it has left, kept
// until it has looked unused for long enough (releaseAfter).
func keepsLeftTemplates(observed map[string]Observed) bool {
	used := referencedBy(backingsOf(observed))
	for k, o := range observed {
		if IsTemplate(k) && !used[o.Name] {
			return true
		}
	}
	return false
}

// referencedBy are the templates backings reference.
func referencedBy(backings []Observed) map[string]bool {
	used := map[string]bool{}
	for _, b := range backings {
		for _, n := range b.References {
			used[n] = true
		}
	}
	return used
}
