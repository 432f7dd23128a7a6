package fleetsim

import (
	"fmt"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"

	"github.com/fleetnodepool/function-fleetnodepool/test/internal/fleet"
)

// A Rule is an invariant of the fleet.
type Rule string

// The invariants.
const (
	// RuleMissingTemplate: no MachineSet clones from an infrastructure or
	// bootstrap template that does not exist.
	RuleMissingTemplate Rule = "MissingTemplate"
	// RuleWorkerAhead: no worker machine runs a Kubernetes version newer
	// than its control plane.
	RuleWorkerAhead Rule = "WorkerAheadOfControlPlane"
	// RuleAutoscaledReplicas: the function never sets spec.replicas on a
	// MachineDeployment of an autoscaled pool.
	RuleAutoscaledReplicas Rule = "AutoscaledReplicas"
	// RuleBackingLost: a MachineDeployment with running machines is never
	// garbage-collected without a replacement in its zone.
	RuleBackingLost Rule = "BackingLost"
	// RuleFatal: no response has a Fatal result.
	RuleFatal Rule = "FatalResult"
	// RuleRequirements: the function's requirements stabilize.
	RuleRequirements Rule = "RequirementsUnstable"
)

// A Violation of an invariant.
type Violation struct {
	Step   int
	Pool   string
	Rule   Rule
	Detail string
}

func (v Violation) String() string {
	return fmt.Sprintf("step %d, pool %s: %s: %s", v.Step, v.Pool, v.Rule, v.Detail)
}

// checkState checks the invariants of the model state: every MachineSet's
// templates exist, no machine runs newer than its control plane, and the
// MachineDeployments garbage-collected this step ran no machines or were
// replaced.
func checkState(w *world) []Violation {
	var vs []Violation
	for _, ns := range sortedKeys(w.sets) {
		c := w.byNS[ns]
		for _, n := range sortedKeys(w.sets[ns]) {
			ms := w.sets[ns][n]
			pool := ns + "/" + ms.labels[labelPool]
			for _, r := range []ref{ms.template.infra, ms.template.bootstrap} {
				if w.objects[objKey{ns, r.kind, r.name}] == nil {
					vs = append(vs, Violation{w.step, pool, RuleMissingTemplate, fmt.Sprintf("MachineSet %s clones from %s %s, which does not exist", n, r.kind, r.name)})
				}
			}
			if ms.replicas > 0 && c != nil && fleet.Newer(ms.template.version, c.statusVersion) {
				vs = append(vs, Violation{w.step, pool, RuleWorkerAhead, fmt.Sprintf("MachineSet %s runs %d machines of %s, the control plane %s",
					n, ms.replicas, ms.template.version, c.statusVersion)})
			}
		}
	}
	for _, d := range w.deleted {
		if d.running > 0 && !replaced(d) {
			vs = append(vs, Violation{w.step, d.pool.String(), RuleBackingLost, fmt.Sprintf("MachineDeployment %s (zone %q) was deleted with %d machines running and no replacement",
				d.name, d.zone, d.running)})
		}
	}
	return vs
}

// replaced reports whether the pool of a deleted MachineDeployment has
// another one in its zone.
func replaced(d deletion) bool {
	for _, o := range d.pool.composed {
		if o.id.kind == kindMachineDeployment && o.id.name != d.name && o.md != nil && o.md.template.failureDomain == d.zone {
			return true
		}
	}
	return false
}

// checkResponse checks a pool's final response: no Fatal result, and no
// spec.replicas on the MachineDeployments of an autoscaled pool.
func checkResponse(step int, p *pool, rsp *fnv1.RunFunctionResponse) []Violation {
	var vs []Violation
	for _, r := range rsp.GetResults() {
		if r.GetSeverity() == fnv1.Severity_SEVERITY_FATAL {
			vs = append(vs, Violation{step, p.String(), RuleFatal, r.GetMessage()})
		}
	}
	if !p.spec.autoscaled() {
		return vs
	}
	rs := rsp.GetDesired().GetResources()
	for _, k := range sortedKeys(rs) {
		d := rs[k].GetResource()
		if stringAt(d, "kind") != kindMachineDeployment {
			continue
		}
		if n, ok := int32At(d, "spec", "replicas"); ok {
			vs = append(vs, Violation{step, p.String(), RuleAutoscaledReplicas, fmt.Sprintf("MachineDeployment %s of a pool autoscaled %d-%d sets spec.replicas %d",
				stringAt(d, "metadata", "name"), p.spec.min, p.spec.max, n)})
		}
	}
	return vs
}

// unsettled says why the fleet has not converged, "" once it has: every
// control plane and pool on the channel's version, every pool on its class,
// every MachineDeployment rolled out (one MachineSet of its template, all
// machines ready), and no template kept that nothing uses. It also returns
// how many pools have not converged.
func unsettled(w *world) (string, int) {
	why, n := "", 0
	for _, c := range w.clusters {
		if c.statusVersion != w.channel || c.upgradeDone >= 0 {
			n++
			if why == "" {
				why = fmt.Sprintf("control plane %s/%s runs %s", c.namespace, c.name, c.statusVersion)
			}
		}
	}
	for _, p := range w.pools {
		if r := w.poolUnsettled(p); r != "" {
			n++
			if why == "" {
				why = p.String() + ": " + r
			}
		}
	}
	return why, n
}

func (w *world) poolUnsettled(p *pool) string {
	if v := stringAt(p.status.GetStructValue(), "version"); v != w.channel {
		return "status.version " + v
	}
	used := map[string]bool{}
	mds := 0
	for _, k := range sortedKeys(p.composed) {
		o := p.composed[k]
		if o.id.kind != kindMachineDeployment {
			continue
		}
		mds++
		t := o.md.template
		if t.version != w.channel {
			return fmt.Sprintf("%s asks for %s", o.id.name, t.version)
		}
		infra := w.objects[objKey{o.id.namespace, t.infra.kind, t.infra.name}]
		if infra == nil {
			return fmt.Sprintf("%s uses %s, which does not exist", o.id.name, t.infra.name)
		}
		if it := stringAt(infra.spec, "template", "spec", "instanceType"); it != classes[p.spec.class] {
			return fmt.Sprintf("%s uses %s %q, want class %s", o.id.name, t.infra.name, it, p.spec.class)
		}
		used[t.infra.name], used[t.bootstrap.name] = true, true
		if o.status.observedGeneration != o.generation {
			return o.id.name + " not observed at its generation"
		}
		sets := w.machineSets(o.id.namespace, o.id.name)
		if len(sets) != 1 || sets[0].template != t || sets[0].replicas != o.md.replicas || sets[0].ready != sets[0].replicas {
			return fmt.Sprintf("%s rolling: %d MachineSets", o.id.name, len(sets))
		}
	}
	if mds != max(len(p.spec.zones), 1) {
		return fmt.Sprintf("%d MachineDeployments", mds)
	}
	for _, k := range sortedKeys(p.composed) {
		if o := p.composed[k]; o.id.kind != kindMachineDeployment && o.id.kind != "MachineHealthCheck" && !used[o.id.name] {
			return "keeps unused " + o.id.String()
		}
	}
	return ""
}
