package fleetsim

import (
	"fmt"
	"time"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"

	"github.com/fleetnodepool/function-fleetnodepool/test/invariant"
)

// Rules of the function's answers, which the simulation checks besides the
// fleet invariants of test/invariant.
const (
	// RuleFatal: no response has a Fatal result.
	RuleFatal invariant.Rule = "FatalResult"
	// RuleRequirements: the function's requirements stabilize.
	RuleRequirements invariant.Rule = "RequirementsUnstable"
)

// A Violation of a rule, at a step.
type Violation struct {
	Step int
	invariant.Violation
}

func (v Violation) String() string { return fmt.Sprintf("step %d: %s", v.Step, v.Violation) }

// check checks the fleet invariants on the model state, against the state
// checked last.
func (w *world) check() []Violation {
	now := w.snapshot()
	vs := invariant.Check(w.checked, now)
	w.checked = now
	for c, pools := range invariant.Rolling(now) {
		if n, ok := now.Concurrency[c]; ok {
			w.stats.peakRolling[n] = max(w.stats.peakRolling[n], len(pools))
		}
	}
	out := make([]Violation, len(vs))
	for i, v := range vs {
		out[i] = Violation{w.step, v}
	}
	return out
}

// snapshot is the model state as the invariants see it: the control planes'
// status.version, the MachineSets and the templates they reference that
// exist, the pools' MachineDeployments as last applied (a template of
// their machine template and spec.rollout.after), with the machines
// running on them; each Cluster's rollout concurrency and the pools held
// at the model's time, as the model told the function.
func (w *world) snapshot() invariant.Snapshot {
	s := invariant.Snapshot{
		ControlPlanes: make(map[string]string, len(w.clusters)), Templates: map[invariant.Ref]bool{},
		Concurrency: make(map[string]int, len(w.clusters)), Held: map[string]string{},
		WaveHeld: w.waves.held, Halted: w.waves.halted,
	}
	for _, c := range w.clusters {
		s.ControlPlanes[c.namespace+"/"+c.name] = c.statusVersion
		if n, ok := w.concurrency(c); ok {
			s.Concurrency[c.namespace+"/"+c.name] = n
		}
	}
	running := map[objKey]int32{} // By MachineDeployment.
	for _, ns := range sortedKeys(w.sets) {
		var cluster string // A namespace holds one cluster.
		if c := w.byNS[ns]; c != nil {
			cluster = c.name
		}
		for _, n := range sortedKeys(w.sets[ns]) {
			ms := w.sets[ns][n]
			running[objKey{ns, kindMachineDeployment, ms.md}] += ms.replicas
			set := invariant.MachineSet{Ref: invariant.Ref{Kind: kindMachineSet, Namespace: ns, Name: n},
				Pool: ms.labels[labelPool], Cluster: cluster, Deployment: ms.md, Version: ms.template.version, Running: ms.replicas}
			for i, r := range []ref{ms.template.infra, ms.template.bootstrap} {
				tr := invariant.Ref{Kind: r.kind, Name: r.name}
				if i == 0 {
					set.Infra = tr
				} else {
					set.Bootstrap = tr
				}
				if w.objects[objKey{ns, r.kind, r.name}] != nil {
					s.Templates[invariant.Ref{Kind: r.kind, Namespace: ns, Name: r.name}] = true
				}
			}
			s.MachineSets = append(s.MachineSets, set)
		}
	}
	for _, p := range w.pools {
		s.Pools = append(s.Pools, invariant.Pool{Namespace: p.namespace, Name: p.name})
		if why := w.held(p); why != "" {
			s.Held[p.String()] = why
		}
		for _, k := range sortedKeys(p.composed) {
			o := p.composed[k]
			if o.id.kind != kindMachineDeployment || o.md == nil {
				continue
			}
			_, sets := int32At(o.applied.GetResource(), "spec", "replicas")
			t := o.md.template
			template := t.version + "/" + t.infra.name + "/" + t.bootstrap.name
			if after := o.md.rolloutAfter; !after.IsZero() {
				// A new spec.rollout.after replaces every machine as a new
				// template would: the invariants count it as a start.
				template += "/after=" + after.UTC().Format(time.RFC3339)
			}
			s.Backings = append(s.Backings, invariant.Backing{
				Ref: invariant.Ref{Kind: o.id.kind, Namespace: o.id.namespace, Name: o.id.name}, UID: o.uid,
				Pool: p.name, Cluster: p.cluster, Version: t.version,
				Autoscaled: p.spec.autoscaled(), FunctionSetsReplicas: sets, Running: running[o.id],
				Template: template,
			})
		}
	}
	return s
}

// checkResponse checks a pool's final response: no Fatal result.
func checkResponse(step int, p *pool, rsp *fnv1.RunFunctionResponse) []Violation {
	var vs []Violation
	for _, r := range rsp.GetResults() {
		if r.GetSeverity() == fnv1.Severity_SEVERITY_FATAL {
			vs = append(vs, Violation{step, invariant.Violation{Rule: RuleFatal, Pool: p.String(), Object: "FleetNodePool/" + p.String(), Detail: r.GetMessage()}})
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
		if o := p.composed[k]; o.id.kind != kindMachineDeployment && o.id.kind != "MachineHealthCheck" && o.id.kind != kindConfigMap && !used[o.id.name] {
			return "keeps unused " + o.id.String()
		}
	}
	return ""
}
