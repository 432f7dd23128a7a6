package plan

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/apis/input/v1beta1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/provider"
)

// Annotations and labels the rollout gates read and write.
const (
	// AnnotationDeferRollout on a FleetNodePool holds its disruptive
	// changes ("true"), like ClusterClass's defer-upgrade.
	AnnotationDeferRollout = v1alpha1.Group + "/defer-rollout"
	// AnnotationHoldSequence on a FleetNodePool holds its disruptive
	// changes and those of every pool of its Cluster queued after it, like
	// ClusterClass's hold-upgrade-sequence. The function copies it to the
	// pool's MachineDeployments and MachinePool while the pool is queued,
	// where the other pools read it.
	AnnotationHoldSequence = v1alpha1.Group + "/hold-rollout-sequence"
	// AnnotationConcurrency on a Cluster is how many of its pools may be in
	// a disruptive rollout at once.
	AnnotationConcurrency = v1alpha1.Group + "/rollout-concurrency"
	// AnnotationQueuedSince is set by the function on the MachineDeployments
	// and MachinePool of a pool queued for a disruptive rollout: when it
	// took its place in its Cluster's queue.
	AnnotationQueuedSince = v1alpha1.Group + "/rollout-queued-since"
	// LabelMaintenanceWindow on a FleetNodePool or its Cluster selects the
	// maintenance window its disruptive changes start in.
	LabelMaintenanceWindow = v1alpha1.Group + "/maintenance-window"
)

// Reasons a disruptive change is held (condition RolloutHeld).
const (
	HoldPaused            = "Paused"
	HoldDeferred          = "Deferred"
	HoldMaintenanceWindow = "MaintenanceWindow"
	HoldConcurrency       = "Concurrency"
	HoldSequence          = "SequenceHeld"
	HoldControlPlane      = "ControlPlane"
)

// How soon to plan a held pool again when what it waits for is another
// pool, which Crossplane does not watch for it.
const (
	// recheckQueued: the pool just published its place in the queue; the
	// next plan reads it back and decides.
	recheckQueued = 5 * time.Second
	// recheckSiblings: the pool waits for another to finish.
	recheckSiblings = 15 * time.Second
	// queueSettle is how long after the second it took its place in the
	// queue a pool may start. A sibling that queued in the same second can
	// have written its place after this pool read the Cluster's pools, and
	// Crossplane's view of it lags the write: two such pools each saw no one
	// ahead and both started (the fleet e2e's watcher caught it). After
	// queueSettle, a pool has seen every pool queued no later than itself.
	queueSettle = recheckQueued
)

// defaultConcurrency is how many pools of a Cluster roll at once when
// neither the policy nor the Cluster says.
const defaultConcurrency = 1

// A Hold says why a pool's disruptive change waits.
type Hold struct {
	// Reason is one of the Hold* constants.
	Reason string
	// Message says what the pool waits for and when it expects to move.
	Message string
	// NextStart is when time alone lets the change start (a maintenance
	// window opens); zero when it is not time that decides.
	NextStart time.Time
	// Transient: the pool takes its place in its Cluster's rollout queue,
	// or reads its siblings first, and starts within seconds if its turn:
	// no event announces such a hold.
	Transient bool
	// VersionOnly: the pool holds its version until its control plane runs
	// the target, and its other changes go on (UpgradePending).
	VersionOnly bool
}

// A Sibling is another pool of the Cluster, as its live objects show it.
type Sibling struct {
	// Pool is the FleetNodePool's name.
	Pool string
	// Backings are its MachineDeployments and MachinePool.
	Backings []Observed
	// MachineSets of its MachineDeployments, by MachineDeployment name.
	MachineSets map[string][]MachineSet
	// Templates are the templates a pool in a cell keeps (its MachineSets
	// cannot be read there), by name, each with when its pool first saw it
	// unused (AnnotationUnusedSince; zero if not): nil for a local pool.
	Templates map[string]time.Time
}

// rolling reports whether a MachineDeployment or MachinePool has not caught
// up with its spec or not replaced every machine yet.
func (o Observed) rolling() bool {
	return o.ObservedGeneration < o.Generation || o.Replicas != nil && o.UpToDateReplicas != nil && *o.UpToDateReplicas < *o.Replicas || o.OtherVersions > 0
}

// makes reports whether a MachineDeployment makes a MachineSet's machines:
// the same version and templates.
func (o Observed) makes(ms MachineSet) bool {
	return ms.Version == o.Version && slices.Contains(o.References, ms.Infra) && (ms.Bootstrap == "" || slices.Contains(o.References, ms.Bootstrap))
}

// rollingPool reports whether another pool may be in a disruptive
// rollout: one of its backings is rolling (or its controller has not caught
// up with its spec: a rollout that just started looks so), or one of its
// MachineDeployments runs machines of more than one MachineSet.
func rollingPool(backings []Observed, sets map[string][]MachineSet) bool {
	for _, b := range backings {
		if b.rolling() {
			return true
		}
	}
	return replacing(backings, sets)
}

// replacing reports whether a pool is replacing machines: some run an
// older spec, one of its MachineDeployments runs machines of more than one
// MachineSet, or of a MachineSet made from another template than its own
// (a rollout Cluster API has just begun: for a moment its status still
// counts the old machines up to date). A new generation alone is no
// evidence: a resize by the autoscaler makes one too, and must not let a
// pool skip its queue.
func replacing(backings []Observed, sets map[string][]MachineSet) bool {
	for _, b := range backings {
		if b.Replicas != nil && b.UpToDateReplicas != nil && *b.UpToDateReplicas < *b.Replicas || b.OtherVersions > 0 {
			return true
		}
		for _, ms := range sets[b.Name] {
			if ms.Replicas > 0 && !b.makes(ms) {
				return true
			}
		}
	}
	for _, mss := range sets {
		n := 0
		for _, ms := range mss {
			if ms.Replicas > 0 {
				n++
			}
		}
		if n > 1 {
			return true
		}
	}
	return false
}

// queued is when a pool took its place in the queue, from the annotation on
// its backings (the earliest); ok false when it is not queued, err set when
// an annotation is not a time.
func queued(backings []Observed) (since time.Time, ok bool, bad string) {
	for _, b := range backings {
		if b.QueuedSince == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, b.QueuedSince)
		if err != nil {
			return time.Time{}, false, b.QueuedSince
		}
		if !ok || t.Before(since) {
			since, ok = t, true
		}
	}
	return since, ok, ""
}

// A gated plan is what the rollout gates decided of a pool with a pending
// disruptive change.
type gated struct {
	hold *Hold
	// queue is the place the pool takes (or keeps) in its Cluster's queue:
	// zero when it is not queued.
	queue time.Time
	// holdsSequence: the pool queues holding the sequence.
	holdsSequence bool
	window        string
	// wake and recheck: see Plan.
	wake    time.Time
	recheck time.Duration
}

// gate decides whether a pool's pending disruptive change may start now.
// The gates are checked in order, the first that holds names the reason:
// the policy's pause, the pool's deferral, its maintenance window, then its
// Cluster's rollout concurrency.
func (pl *Planner) gate(in Input, r *resolved, windows map[string]window) gated {
	pol := ptr.Deref(in.Policy.Rollouts, v1beta1.RolloutPolicy{})
	if pl.broken&rulePause == 0 {
		if h := computePause(pol, r.channel); h != nil {
			return gated{hold: h}
		}
		if h := computeDefer(in.Annotations); h != nil {
			return gated{hold: h}
		}
	}
	if len(r.waves) > 0 {
		if g := computeWave(in, r, pol, pl.broken); g.hold != nil {
			return g
		}
	}
	g := gated{}
	if pl.broken&ruleWindow == 0 {
		g = computeWindow(in, pol, windows)
		if g.hold != nil {
			return g
		}
	}
	if pl.broken&ruleConcurrency == 0 {
		q := computeQueue(in, pol)
		q.window, q.wake = g.window, cmpMin(g.wake, q.wake)
		return q
	}
	return g
}

// computePause holds every change of a paused policy or channel.
func computePause(pol v1beta1.RolloutPolicy, channel string) *Hold {
	switch {
	case pol.Paused:
		return &Hold{Reason: HoldPaused, Message: "holding the pool's disruptive change: the platform policy pauses every rollout (input.rollouts.paused); " +
			"it starts once the pause is lifted. Rollouts under way finish"}
	case channel != "" && slices.Contains(pol.PausedChannels, channel):
		return &Hold{Reason: HoldPaused, Message: fmt.Sprintf("holding the pool's disruptive change: the platform policy pauses the rollouts of channel %s "+
			"(input.rollouts.pausedChannels); it starts once the pause is lifted. Rollouts under way finish", channel)}
	}
	return nil
}

// computeDefer holds the changes of a pool annotated to defer them.
func computeDefer(annotations map[string]string) *Hold {
	switch v, ok := annotations[AnnotationDeferRollout]; {
	case !ok || v == "false":
		return nil
	case v == "true":
		return &Hold{Reason: HoldDeferred, Message: fmt.Sprintf("holding the pool's disruptive change: the FleetNodePool is annotated %s=true; "+
			"remove the annotation to let it start", AnnotationDeferRollout)}
	default:
		return &Hold{Reason: HoldDeferred, Message: fmt.Sprintf("holding the pool's disruptive change: cannot read the annotation %s=%q of the FleetNodePool; "+
			"set it to true to defer the pool's rollouts, or remove it", AnnotationDeferRollout, v)}
	}
}

// computeWindow holds a change outside the pool's maintenance window. The
// pool's label names the window, else its Cluster's, else the policy's
// default; no window means any time.
func computeWindow(in Input, pol v1beta1.RolloutPolicy, windows map[string]window) gated {
	name, from := in.Labels[LabelMaintenanceWindow], "the FleetNodePool's label "+LabelMaintenanceWindow
	if name == "" && in.Cluster != nil {
		name, from = in.Cluster.Labels[LabelMaintenanceWindow], "the Cluster's label "+LabelMaintenanceWindow
	}
	if name == "" {
		name, from = pol.DefaultMaintenanceWindow, "input.rollouts.defaultMaintenanceWindow"
	}
	if name == "" {
		return gated{}
	}
	w, ok := windows[name]
	if !ok {
		return gated{window: name, hold: &Hold{Reason: HoldMaintenanceWindow, Message: fmt.Sprintf(
			"holding the pool's disruptive change: cannot find the maintenance window %q that %s names; the platform policy defines %s (input.rollouts.maintenanceWindows)",
			name, from, quoted(sortedKeys(windows)))}}
	}
	open, edge := w.at(in.Now)
	if open {
		// Open: a change may start until it closes.
		return gated{window: name, wake: edge}
	}
	return gated{window: name, wake: edge, hold: &Hold{Reason: HoldMaintenanceWindow, NextStart: edge, Message: fmt.Sprintf(
		"holding the pool's disruptive change until its maintenance window %s (%s, from %s) opens at %s",
		name, w, from, edge.UTC().Format(time.RFC3339))}}
}

// computeQueue holds a change while its Cluster has as many pools rolling,
// or queued ahead of it, as its rollout concurrency allows. A pool first
// publishes its place in the queue and starts only once it observes it:
// two pools planned at the same moment then see each other, and the earlier
// one (by time, then name) goes first.
func computeQueue(in Input, pol v1beta1.RolloutPolicy) gated {
	cluster := in.Spec.ClusterName
	n, h := concurrency(in.Cluster, pol, cluster)
	if h != nil {
		return gated{hold: h, recheck: recheckSiblings}
	}
	if in.Siblings == nil {
		return gated{recheck: recheckQueued, hold: &Hold{Reason: HoldConcurrency, Transient: true, Message: fmt.Sprintf(
			"holding the pool's disruptive change until the rollouts of Cluster %s's other pools are known (its MachineDeployments and MachinePools)", cluster)}}
	}
	self := backingsOf(in.Observed)
	holds := in.Annotations[AnnotationHoldSequence] == "true"
	if !holds && (len(in.Siblings) < n && !anyHoldsSequence(in.Siblings) || replacing(self, in.MachineSets)) {
		return gated{} // No one to wait for, or already rolling.
	}
	since, ok, _ := queued(self)
	if !ok {
		now := in.Now.UTC().Truncate(time.Second)
		return gated{queue: now, holdsSequence: holds, wake: now.Add(recheckQueued), hold: &Hold{Reason: HoldConcurrency, Transient: !holds, Message: fmt.Sprintf(
			"taking the pool's place in Cluster %s's rollout queue (%s); it starts when fewer than %d of the Cluster's pools roll", cluster, AnnotationQueuedSince, n)}}
	}
	g := gated{queue: since, holdsSequence: holds, recheck: recheckSiblings}
	if holds {
		g.hold = &Hold{Reason: HoldSequence, Message: fmt.Sprintf("holding the pool's disruptive change, and those of every pool of Cluster %s queued after it: "+
			"the FleetNodePool is annotated %s=true; remove the annotation to let them start", cluster, AnnotationHoldSequence)}
		return g
	}
	if settle := since.Add(queueSettle); in.Now.Before(settle) {
		return gated{queue: since, wake: settle, hold: &Hold{Reason: HoldConcurrency, Transient: true, Message: fmt.Sprintf(
			"queued in Cluster %s's rollout at %s; it looks for pools that queued at the same time until %s, then starts if its turn",
			cluster, since.UTC().Format(time.RFC3339), settle.UTC().Format(time.RFC3339))}}
	}
	var rolling, ahead []string
	for _, s := range in.Siblings {
		t, queuedToo, bad := queued(s.Backings)
		// Unreadable: it may be ahead, so it is.
		isAhead := bad != "" || queuedToo && cmp.Or(t.Compare(since), strings.Compare(s.Pool, in.Name)) < 0
		// A pool ahead that holds the sequence holds it whatever else it
		// does (a resize by the autoscaler looks like a rollout).
		if isAhead && s.holdsSequence() {
			g.hold = &Hold{Reason: HoldSequence, Message: fmt.Sprintf("holding the pool's disruptive change: pool %s, queued ahead of it in Cluster %s, holds the sequence (%s=true)",
				s.Pool, cluster, AnnotationHoldSequence)}
			return g
		}
		switch {
		case rollingPool(s.Backings, s.MachineSets):
			rolling = append(rolling, s.Pool)
		case s.retiring(in.Now, releaseAfter(in)):
			rolling = append(rolling, s.Pool+" (it keeps the templates it left until its cell reports them unused)")
		case bad != "":
			ahead = append(ahead, fmt.Sprintf("%s (queued since %q, which is not a time)", s.Pool, bad))
		case isAhead:
			ahead = append(ahead, s.Pool)
		}
	}
	if len(rolling)+len(ahead) < n {
		return gated{} // Its turn.
	}
	var waits []string
	if len(rolling) > 0 {
		waits = append(waits, strings.Join(rolling, ", ")+" rolling")
	}
	if len(ahead) > 0 {
		waits = append(waits, strings.Join(ahead, ", ")+" queued ahead")
	}
	g.hold = &Hold{Reason: HoldConcurrency, Message: fmt.Sprintf("waiting its turn: %d pool(s) of Cluster %s may roll at once, and %s; it starts when one of them finishes",
		n, cluster, strings.Join(waits, ", "))}
	return g
}

// retiring reports whether a pool in a cell keeps a template none of its
// MachineDeployments or MachinePools references: it has just changed
// templates, and keeps the old ones until they have looked unused for
// longer than its cell takes to report again (wait, releaseAfter). The
// first report after a change may count every machine up to date (Cluster
// API's MachineSets update the count after the MachineDeployment acts),
// and a cell's MachineSets cannot be read: until the old templates have
// looked unused for that long, the pool counts as rolling. A template left
// longer ago than that, and still kept (the pool's changes are refused, or
// its function fails), holds no one.
func (s Sibling) retiring(now time.Time, wait time.Duration) bool {
	used := referencedBy(s.Backings)
	for n, since := range s.Templates {
		if !used[n] && (since.IsZero() || now.Before(since.Add(wait))) {
			return true
		}
	}
	return false
}

// holdsSequence reports whether the sibling holds its Cluster's sequence.
func (s Sibling) holdsSequence() bool {
	for _, b := range s.Backings {
		if b.HoldsSequence {
			return true
		}
	}
	return false
}

// anyHoldsSequence reports whether a sibling holds the sequence.
func anyHoldsSequence(siblings []Sibling) bool {
	return slices.ContainsFunc(siblings, Sibling.holdsSequence)
}

// concurrency is how many pools of the Cluster may roll at once: its
// annotation, ClusterClass's, the policy's, or 1. A value that cannot be
// read holds.
func concurrency(cl *Cluster, pol v1beta1.RolloutPolicy, name string) (int, *Hold) {
	if cl != nil {
		for _, k := range []string{AnnotationConcurrency, clusterv1.ClusterTopologyUpgradeConcurrencyAnnotation} {
			v, ok := cl.Annotations[k]
			if !ok {
				continue
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return 0, &Hold{Reason: HoldConcurrency, Message: fmt.Sprintf(
					"holding the pool's disruptive change: cannot read the rollout concurrency %q of Cluster %s (annotation %s): make it a whole number of at least 1",
					v, name, k)}
			}
			return n, nil
		}
	}
	return int(ptr.Deref(pol.Concurrency, defaultConcurrency)), nil
}

// backingsOf are the observed MachineDeployments and MachinePool.
func backingsOf(observed map[string]Observed) []Observed {
	var out []Observed
	for _, k := range sortedKeys(observed) {
		if k == keyMachinePool || strings.HasPrefix(k, keyMachineDeployment) {
			out = append(out, observed[k])
		}
	}
	return out
}

// holdAsRunning keeps what the pool's held backings run: their observed
// version and template names (the infrastructure machine pool's observed
// spec, beyond its size), so no machine is replaced, while the rest of the
// change (size, autoscaler bounds, labels) applies. Templates only the held
// change would use are not created.
func holdAsRunning(p *Plan, in Input, held []string) {
	for _, k := range held {
		o := in.Observed[k]
		for i, r := range p.Resources {
			if r.Key != k {
				continue
			}
			switch t := r.Object.(type) {
			case *clusterv1.MachineDeployment:
				keepTemplateSpec(&t.Spec.Template.Spec, o)
				t.Spec.Rollout.After = metav1.NewTime(o.RolloutAfter)
			case *clusterv1.MachinePool:
				keepTemplateSpec(&t.Spec.Template.Spec, o)
			default:
				p.Resources[i] = keepSize(k, o, r)
			}
		}
	}
	referenced := map[string]bool{}
	for _, r := range p.Resources {
		if IsPool(r.Object) {
			for _, n := range references(r.Object) {
				referenced[n] = true
			}
		}
	}
	kept := p.Resources[:0]
	for _, r := range p.Resources {
		if _, exists := in.Observed[r.Key]; IsTemplate(r.Key) && !exists && !referenced[r.Object.GetName()] {
			continue
		}
		kept = append(kept, r)
	}
	p.Resources = kept
}

// keepTemplateSpec sets what a machine template's spec runs to what is
// observed.
func keepTemplateSpec(s *clusterv1.MachineSpec, o Observed) {
	obj := o.object()
	s.Version = o.Version
	s.InfrastructureRef.Name, _, _ = unstructured.NestedString(obj, "spec", "template", "spec", "infrastructureRef", "name")
	s.Bootstrap.ConfigRef.Name, _, _ = unstructured.NestedString(obj, "spec", "template", "spec", "bootstrap", "configRef", "name")
}

// keepSize is an observed infrastructure machine pool as it runs, with the
// planned size.
func keepSize(k string, o Observed, r Resource) Resource {
	kept := passThrough(k, o)
	u := kept.Object.(*unstructured.Unstructured) //nolint:forcetypeassert // passThrough makes one.
	desired, err := provider.JSONMap(r.Object)
	if err != nil {
		return kept
	}
	spec, _ := u.Object["spec"].(map[string]any)
	spec = maps.Clone(spec)
	if spec == nil {
		spec = map[string]any{}
	}
	for _, f := range sizeFields {
		if v := valueAt(desired, "spec", f); v != nil {
			spec[f] = v
		} else {
			delete(spec, f)
		}
	}
	u.Object["spec"] = spec
	kept.Ready = r.Ready
	return kept
}

// references are the template names a MachineDeployment or MachinePool
// points at.
func references(o provider.Object) []string {
	var s *clusterv1.MachineSpec
	switch t := o.(type) {
	case *clusterv1.MachineDeployment:
		s = &t.Spec.Template.Spec
	case *clusterv1.MachinePool:
		s = &t.Spec.Template.Spec
	default:
		return nil
	}
	return []string{s.InfrastructureRef.Name, s.Bootstrap.ConfigRef.Name}
}

// queue publishes the pool's place in its Cluster's queue on its
// MachineDeployments and MachinePool: metadata, which rolls nothing.
func queue(p *Plan, g gated) {
	if g.queue.IsZero() {
		return
	}
	for _, r := range p.Resources {
		if !IsPool(r.Object) {
			continue
		}
		a := r.Object.GetAnnotations()
		if a == nil {
			a = map[string]string{}
		}
		a[AnnotationQueuedSince] = g.queue.UTC().Format(time.RFC3339)
		if g.holdsSequence {
			a[AnnotationHoldSequence] = "true"
		}
		r.Object.SetAnnotations(a)
	}
}

// rolloutStatus is where the pool is with its disruptive changes: rolling
// out when one starts now (a refused change starts nothing; one whose
// immutable fields alone are refused starts the rest), while machines
// are being replaced, and, while the pool was rolling out, until its
// controllers caught up with their spec; held otherwise while a hold holds
// it, but a pool that only holds its version for its control plane rolls
// out its other changes. A controller lagging behind its
// spec alone is no rollout: an autoscaler's resize makes a new generation
// too, and must not show (nor announce) one.
func rolloutStatus(p *Plan, in Input) *v1alpha1.RolloutStatus {
	s := &v1alpha1.RolloutStatus{State: v1alpha1.RolloutUpToDate, Window: p.window, Wave: p.waveName, Target: p.target}
	switch {
	case p.starting && p.applies(),
		replacing(backingsOf(in.Observed), in.MachineSets),
		len(p.Rolling) > 0 && in.Previous == v1alpha1.RolloutRollingOut:
		s.State = v1alpha1.RolloutRollingOut
	}
	if h := p.Hold; h != nil && (!h.VersionOnly || s.State != v1alpha1.RolloutRollingOut) {
		s.State, s.Reason = v1alpha1.RolloutHeld, h.Reason
		if !h.NextStart.IsZero() {
			s.NextStart = ptr.To(metaTime(h.NextStart))
		}
	}
	if !p.queuedSince.IsZero() {
		s.QueuedSince = ptr.To(metaTime(p.queuedSince))
	}
	return s
}

func metaTime(t time.Time) metav1.Time { return metav1.NewTime(t.UTC()) }

// cmpMin is the earlier of two times, zero meaning none.
func cmpMin(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}
