package fleetsim

import (
	"maps"
	"slices"
)

// upgradeSteps is how many steps a control plane upgrade takes before the
// KubeadmControlPlane reports the new status.version.
const upgradeSteps = 2

// rollout moves the MachineDeployments of the fleet one step. Each one's
// controller lags a step with probability lag, so Crossplane also sees
// MachineDeployments whose new spec Cluster API has not acted on yet.
func (w *world) rollout(lag float64) {
	for _, p := range w.pools {
		for _, k := range sortedKeys(p.composed) {
			if o := p.composed[k]; o.id.kind == kindMachineDeployment && w.rng.Float64() >= lag {
				w.rolloutMD(o)
			}
		}
	}
}

// rolloutMD is one step of Cluster API's MachineDeployment controller with
// the RollingUpdate strategy: machines created last step join; the
// MachineSet of the current template is created if missing, or if
// spec.rollout.after outdated those of the template (a rotation); one old
// machine goes if availability allows (maxUnavailable) and one new machine
// comes if the surge allows (maxSurge); empty old MachineSets are deleted;
// the status is reported.
func (w *world) rolloutMD(o *composed) {
	s, ns := o.md, o.id.namespace
	sets := w.machineSets(ns, o.id.name)
	for _, ms := range sets {
		if ms.ready != ms.replicas && !w.stuck(o, ms) {
			ms.ready = ms.replicas
			w.touchSet(ms)
		}
	}
	var cur *machineSet
	var olds []*machineSet
	rotation := false // A MachineSet of the template exists, outdated by spec.rollout.after.
	for _, ms := range sets {
		if cur == nil && ms.template == s.template {
			if !w.outdated(s, ms) {
				cur = ms
				continue
			}
			rotation = true
		}
		olds = append(olds, ms)
	}
	if cur == nil {
		cur = w.addMachineSet(ns, o.id.name, maps.Clone(s.labels), s.template)
		cur.rotation = rotation
		if rotation {
			w.stats.rotations.rotated(o)
		}
	} else if !maps.Equal(cur.labels, s.labels) {
		cur.labels = maps.Clone(s.labels) // Synced in place: no rollout.
		w.touchSet(cur)
	}

	want := s.replicas
	surge, unavailable := intOrPercent(s.maxSurge, want, true), intOrPercent(s.maxUnv, want, false)
	if surge == 0 && unavailable == 0 {
		surge = 1 // Cluster API refuses both 0; never deadlock the model.
	}
	var total, available int32
	for _, ms := range append(slices.Clone(olds), cur) {
		total += ms.replicas
		available += ms.ready
	}
	for _, ms := range olds {
		if ms.replicas == 0 {
			continue
		}
		if available-1 >= want-unavailable {
			ms.replicas--
			ms.ready--
			total--
			available--
			w.touchSet(ms)
			w.stats.machinesDeleted++
		}
		break // One machine per step.
	}
	switch {
	case cur.replicas < want && total < want+surge:
		cur.replicas++
		total++
		w.touchSet(cur)
		w.stats.machinesCreated++
	case cur.replicas > want:
		cur.replicas--
		cur.ready = min(cur.ready, cur.replicas)
		total--
		available = min(available, total)
		w.touchSet(cur)
		w.stats.machinesDeleted++
	}
	for _, ms := range olds {
		if ms.replicas == 0 {
			delete(w.sets[ns], ms.id.name)
			w.changed(ns)
		}
	}
	st := mdStatus{
		observedGeneration: o.generation,
		replicas:           total, ready: available, available: available, upToDate: cur.replicas,
		availableCond: available >= want-unavailable,
	}
	if *o.status != st {
		*o.status = st
		w.touch(o)
	}
}

// outdated reports whether spec.rollout.after makes a MachineSet of the
// current template outdated, as Cluster API v1.14 decides
// (mdutil.FindNewMachineSet): rollout.after is set and not in the future,
// and the MachineSet was created before it.
func (w *world) outdated(s *mdSpec, ms *machineSet) bool {
	return !s.rolloutAfter.IsZero() && !w.now().Before(s.rolloutAfter) && ms.created.Before(s.rolloutAfter)
}

// controlPlanes finishes the control plane upgrades that are done, and
// starts up to wave new ones, one minor up the ladder towards the channel,
// in the order the clusters fell behind.
func (w *world) controlPlanes(wave int) {
	for _, c := range w.clusters {
		if c.upgradeDone >= 0 && w.step >= c.upgradeDone {
			c.statusVersion, c.upgradeDone = c.specVersion, -1
			w.touchCluster(c)
			w.stats.cpUpgrades++
			w.enqueue(c)
		}
	}
	for started := 0; started < wave && len(w.upgrades) > 0; {
		c := w.upgrades[0]
		w.upgrades = w.upgrades[1:]
		next := nextVersion(c.statusVersion, w.channel)
		if c.upgradeDone >= 0 || next == c.statusVersion {
			continue
		}
		c.specVersion, c.upgradeDone = next, w.step+upgradeSteps
		w.touchCluster(c)
		started++
	}
}

// enqueue queues a cluster for an upgrade if it is behind the channel.
func (w *world) enqueue(c *cluster) {
	if nextVersion(c.statusVersion, w.channel) != c.statusVersion && !slices.Contains(w.upgrades, c) {
		w.upgrades = append(w.upgrades, c)
	}
}

func (w *world) touchCluster(c *cluster) { c.rv, c.kcpBody = w.next(), nil; w.changed(c.namespace) }

// nextVersion is the next version up the ladder from v towards target: a
// control plane moves one minor at a time.
func nextVersion(v, target string) string {
	i, j := slices.Index(ladder, v), slices.Index(ladder, target)
	if i < 0 || j <= i {
		return v
	}
	return ladder[i+1]
}

// autoscale is the cluster-autoscaler: each autoscaled MachineDeployment
// changes size with probability f, within its node group bounds, through
// the scale subresource (a spec change: a new generation).
func (w *world) autoscale(f float64) {
	for _, p := range w.pools {
		for _, k := range sortedKeys(p.composed) {
			o := p.composed[k]
			if o.id.kind != kindMachineDeployment || !o.md.autoscaled() || o.md.maxSize < o.md.minSize || w.rng.Float64() >= f {
				continue
			}
			n := o.md.minSize + w.rng.Int32N(o.md.maxSize-o.md.minSize+1)
			if n == o.md.replicas {
				continue
			}
			o.md.replicas = n
			o.spec = with(o.spec, "replicas", num(n))
			o.generation++
			w.touch(o)
			w.stats.autoscales++
		}
	}
}
