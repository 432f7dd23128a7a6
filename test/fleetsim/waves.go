package fleetsim

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
)

// The fleet's waves as the model sees them (issue #14): the policy's waves
// select pools by a label of their Cluster; every pool of a policy with
// waves composes a rollout marker, a ConfigMap the pools of later waves
// select by label in every namespace. The model judges the waves itself,
// from what the pools' machines actually run (never from the markers the
// function wrote), so that the invariants WaveOrder and HaltRespected judge
// the function rather than repeat it.

// Labels and kinds of the waves.
const (
	// labelRolloutWave on a Cluster names the wave of its pools.
	labelRolloutWave = "fleet.nodepool.dev/rollout-wave"
	labelFleet       = "fleet.nodepool.dev/fleet"
	labelWave        = "fleet.nodepool.dev/wave"
	kindConfigMap    = "ConfigMap"
	apiVersionV1     = "v1"
	// fleetName is a fleet of the markers the Crossplane model's tests
	// file (the function's default is the Composition's name).
	fleetName = "default"
	// noWave is the wave label of pools in no wave.
	noWave = "none"
)

// A waveSpec is a wave of the policy: the pools of the Clusters labelled
// with its name, which soak for soak once at the target.
type waveSpec struct {
	name string
	soak time.Duration
}

// waveValue is the policy's waves and halt, as the Policy input spells
// them; the halt tolerance is the function's default, 0.
func (g gates) waveValue(r map[string]any) {
	if len(g.waves) == 0 {
		return
	}
	ws := make([]any, len(g.waves))
	for i, wv := range g.waves {
		ws[i] = map[string]any{
			"name":            wv.name,
			"clusterSelector": map[string]any{"matchLabels": map[string]any{labelRolloutWave: wv.name}},
			"soak":            wv.soak.String(),
		}
	}
	r["waves"] = ws
	r["halt"] = map[string]any{"timeout": g.haltTimeout.String()}
}

// waveIndex is the index of the pool's wave, len(waves) for a pool in none
// (it goes last).
func (w *world) waveIndex(p *pool) int {
	v := w.byNS[p.namespace].labels[labelRolloutWave]
	if i := slices.IndexFunc(w.gates.waves, func(wv waveSpec) bool { return wv.name == v }); i >= 0 {
		return i
	}
	return len(w.gates.waves)
}

// waveName names the wave of index i.
func (w *world) waveName(i int) string {
	if i < len(w.gates.waves) {
		return w.gates.waves[i].name
	}
	return noWave
}

// waveTruth is what the model knows of the waves, from the machines: when
// each pool last started a rollout and since when it is at the target.
type waveTruth struct {
	// startedAt is when the pool last started a rollout of a running
	// MachineDeployment (a template change), until it is at the target.
	startedAt map[*pool]time.Time
	// convergedSince is since when the pool is at the target: every
	// MachineDeployment on the channel's version, rolled out, every
	// machine ready.
	convergedSince map[*pool]time.Time
	// held and halted are, by pool, why the waves do not let it start now,
	// as of the start of the step's reconciles (what the function is
	// shown).
	held, halted map[string]string
	// firstStart is, by wave, the step its first pool started a rollout
	// since the channel last changed; settled the step every pool of the
	// wave was at the target and soaked. haltedSteps counts the steps with
	// a wave halted.
	firstStart, settled map[string]int
	haltedSteps         int
}

func newWaveTruth() waveTruth {
	return waveTruth{startedAt: map[*pool]time.Time{}, convergedSince: map[*pool]time.Time{},
		firstStart: map[string]int{}, settled: map[string]int{}}
}

// newTarget forgets the waves' progress: the channel changed.
func (t *waveTruth) newTarget() { t.firstStart, t.settled = map[string]int{}, map[string]int{} }

// running is how many machines a MachineDeployment runs.
func (w *world) running(o *composed) int32 {
	var n int32
	for _, ms := range w.machineSets(o.id.namespace, o.id.name) {
		n += ms.replicas
	}
	return n
}

// started records that the pool started a rollout now.
func (w *world) started(p *pool) {
	if len(w.gates.waves) == 0 {
		return
	}
	w.waves.startedAt[p] = w.now()
	if n := w.waveName(w.waveIndex(p)); !has(w.waves.firstStart, n) {
		w.waves.firstStart[n] = w.step
	}
}

func has[K comparable, V any](m map[K]V, k K) bool { _, ok := m[k]; return ok }

// atTarget reports whether the pool runs the channel's version everywhere,
// rolled out: each MachineDeployment observed at its generation, one
// MachineSet of its template with every machine ready.
func (w *world) atTarget(p *pool) bool {
	mds := 0
	for _, o := range p.composed {
		if o.id.kind != kindMachineDeployment {
			continue
		}
		mds++
		if o.md == nil || o.status == nil || o.md.template.version != w.channel || o.status.observedGeneration != o.generation {
			return false
		}
		sets := w.machineSets(o.id.namespace, o.id.name)
		if len(sets) != 1 || sets[0].template != o.md.template || sets[0].replicas != o.md.replicas || sets[0].ready != sets[0].replicas {
			return false
		}
	}
	return mds > 0
}

// A waveState is a wave's pools as the model judges them.
type waveState struct {
	pools           int
	waiting, failed []string
	soakEnd         time.Time
}

// judgeWaves judges the waves at the start of the step's reconciles: a
// pool of an earlier wave not at the target has failed once the halt
// timeout passed since it started its rollout, else it is waiting; one at
// the target soaks for its wave's soak. A pool is held while an earlier
// wave has a pool waiting or soaking, and halted while an earlier wave has
// more failed pools than the tolerance (0).
func (w *world) judgeWaves() {
	t := &w.waves
	t.held, t.halted = map[string]string{}, map[string]string{}
	if len(w.gates.waves) == 0 {
		return
	}
	now := w.now()
	states := make([]waveState, len(w.gates.waves)+1)
	for _, p := range w.pools {
		i := w.waveIndex(p)
		s := &states[i]
		s.pools++
		if w.atTarget(p) {
			delete(t.startedAt, p)
			if !has(t.convergedSince, p) {
				t.convergedSince[p] = now
			}
			if i < len(w.gates.waves) {
				if end := t.convergedSince[p].Add(w.gates.waves[i].soak); now.Before(end) && end.After(s.soakEnd) {
					s.soakEnd = end
				}
			}
			continue
		}
		delete(t.convergedSince, p)
		if st, ok := t.startedAt[p]; ok && !now.Before(st.Add(w.gates.haltTimeout)) {
			s.failed = append(s.failed, p.String())
			continue
		}
		s.waiting = append(s.waiting, p.String())
	}
	halted := false
	for i, s := range states {
		if len(s.waiting) == 0 && len(s.failed) == 0 && s.soakEnd.IsZero() && !has(t.settled, w.waveName(i)) {
			t.settled[w.waveName(i)] = w.step
		}
		halted = halted || len(s.failed) > 0
	}
	if halted {
		t.haltedSteps++
	}
	for _, p := range w.pools {
		for i, s := range states[:w.waveIndex(p)] {
			name := w.waveName(i)
			switch {
			case len(s.failed) > 0 && !has(t.halted, p.String()):
				t.halted[p.String()] = fmt.Sprintf("wave %s halted: %s failed", name, strings.Join(s.failed, ", "))
			case len(s.waiting) > 0 && !has(t.held, p.String()):
				t.held[p.String()] = fmt.Sprintf("wave %s not at the target: %d pool(s), %s first", name, len(s.waiting), s.waiting[0])
			case !s.soakEnd.IsZero() && !has(t.held, p.String()):
				t.held[p.String()] = fmt.Sprintf("wave %s soaking until %s", name, s.soakEnd.Format(time.RFC3339))
			}
		}
	}
}

// A markerBucket is the rollout markers of a fleet's wave, and the list a
// selector of the two labels fetches, sorted by namespace and name (nil
// after a change).
type markerBucket struct {
	objs map[objKey]*composed
	list *fnv1.Resources
}

// bucketOf is the key of a marker's bucket: its fleet and wave labels.
func bucketOf(labels map[string]string) string { return labels[labelFleet] + "/" + labels[labelWave] }

// indexMarker files a marker under its labels, after a change of it or of
// its labels; nil labels take it out.
func (w *world) indexMarker(o *composed, labels *structpb.Value) {
	if o.bucket != "" {
		b := w.markers[o.bucket]
		delete(b.objs, o.id)
		b.list = nil
		o.bucket = ""
	}
	if labels == nil {
		return
	}
	k := bucketOf(stringsOf(labels))
	b := w.markers[k]
	if b == nil {
		b = &markerBucket{objs: map[objKey]*composed{}}
		w.markers[k] = b
	}
	b.objs[o.id], b.list, o.bucket = o, nil, k
}

// fetchConfigMaps resolves a selector of ConfigMaps, the rollout markers:
// by name in a namespace; by labels in a namespace, or in all of them when
// it names none, sorted by namespace and name as the API server lists
// them. A selector of a fleet and a wave reads that bucket alone.
func (w *world) fetchConfigMaps(sel *fnv1.ResourceSelector) *fnv1.Resources {
	ns := sel.GetNamespace()
	switch m := sel.GetMatch().(type) {
	case *fnv1.ResourceSelector_MatchName:
		o := w.objects[objKey{ns, kindConfigMap, m.MatchName}]
		if o == nil {
			return nil
		}
		return &fnv1.Resources{Items: []*fnv1.Resource{{Resource: o.object(o.owner)}}}
	case *fnv1.ResourceSelector_MatchLabels:
		selector := m.MatchLabels.GetLabels()
		buckets := w.markers
		if f, ok := selector[labelFleet]; ok {
			if v, ok := selector[labelWave]; ok {
				buckets = map[string]*markerBucket{}
				if b := w.markers[bucketOf(map[string]string{labelFleet: f, labelWave: v})]; b != nil {
					buckets[""] = b
				}
			}
		}
		if len(buckets) == 1 && ns == "" && len(selector) == 2 {
			for _, b := range buckets {
				return b.sorted()
			}
		}
		var os []*composed
		for _, b := range buckets {
			for _, o := range b.objs {
				if (ns == "" || o.id.namespace == ns) && matchesValue(o.labels, selector) {
					os = append(os, o)
				}
			}
		}
		return resources(os)
	}
	return nil
}

// sorted is the bucket's list, made after a change.
func (b *markerBucket) sorted() *fnv1.Resources {
	if b.list == nil {
		os := make([]*composed, 0, len(b.objs))
		for _, o := range b.objs {
			os = append(os, o)
		}
		b.list = resources(os)
	}
	return b.list
}

// resources lists objects sorted by namespace and name.
func resources(os []*composed) *fnv1.Resources {
	slices.SortFunc(os, func(a, b *composed) int {
		return cmp.Or(strings.Compare(a.id.namespace, b.id.namespace), strings.Compare(a.id.name, b.id.name))
	})
	out := &fnv1.Resources{Items: make([]*fnv1.Resource, len(os))}
	for i, o := range os {
		out.Items[i] = &fnv1.Resource{Resource: o.object(o.owner)}
	}
	return out
}

// stuck reports whether the machines of a MachineSet never become ready:
// those of the schedule's failing pool on the failing version, until it
// recovers.
func (w *world) stuck(o *composed, ms *machineSet) bool {
	f := w.failing
	return f.pool != nil && o.owner == f.pool && ms.template.version == f.version && w.step < f.until
}

// A failure is a pool whose machines of a version never become ready until
// a step: the failing canary.
type failure struct {
	pool    *pool
	version string
	until   int
}

// wavesSchedule rolls one channel bump (step 2) through three waves by
// Cluster label: canary (1% of the clusters), staging (9%) and the rest in
// no wave, soaking 2h each, halting after 12h; no other gate, no class
// change nor autoscaling. A canary pool fails: its machines of the new
// version never become ready until step 30, so its wave halts the later
// ones 12h after it started, until it recovers.
func wavesSchedule() schedule {
	s := ungated()
	s.bumps, s.cpStart = map[int]string{2: ladder[1]}, 3
	s.classChanges, s.autoscaleUntil, s.autoscale, s.undefer, s.holdFrom, s.holdUntil = nil, 0, 0, 0, 0, 0
	s.gates.waves = []waveSpec{{"canary", 2 * time.Hour}, {"staging", 2 * time.Hour}}
	s.gates.haltTimeout = 12 * time.Hour
	s.clusterWave = map[int]string{0: "canary"}
	for i := 1; i < 10; i++ {
		s.clusterWave[i] = "staging"
	}
	s.failPool, s.failIn, s.failVersion, s.failUntil = "pool-00", "canary", ladder[1], 30
	return s
}

// waveSteps formats the steps each wave started and settled at.
func waveSteps(starts, settled map[string]int) string {
	names := map[string]bool{}
	for k := range starts {
		names[k] = true
	}
	for k := range settled {
		names[k] = true
	}
	if len(names) == 0 {
		return "-"
	}
	step := func(m map[string]int, k string) string {
		if v, ok := m[k]; ok {
			return fmt.Sprint(v)
		}
		return "-"
	}
	parts := make([]string, 0, len(names))
	for _, k := range sortedKeys(names) {
		parts = append(parts, fmt.Sprintf("%s %s, %s", k, step(starts, k), step(settled, k)))
	}
	return strings.Join(parts, "; ")
}
