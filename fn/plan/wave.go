package plan

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/apis/input/v1beta1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/capi"
	"github.com/fleetnodepool/function-fleetnodepool/fn/wire"
)

// Labels of a pool's rollout marker, which the pools of later waves select.
const (
	LabelFleet = v1alpha1.Group + "/fleet"
	LabelWave  = v1alpha1.Group + "/wave"
)

// Reasons the waves hold a disruptive change (condition RolloutHeld).
const (
	HoldWave             = "Wave"
	HoldSoak             = "Soak"
	HoldHalted           = "Halted"
	HoldAwaitingApproval = "AwaitingApproval"
)

// DefaultFleet is the fleet of a policy that names none, composing for a
// Composition the function does not know the name of.
const DefaultFleet = "default"

// fleetOf is the fleet a pool's waves order: the policy's, else its
// Composition's name. Pools of one Composition follow one policy, so one
// target: pools of Compositions whose policies differ must not wait for
// each other's targets, so only a policy that names a fleet shares it.
func fleetOf(pol v1beta1.RolloutPolicy, composition string) string {
	if pol.Fleet != "" {
		return pol.Fleet
	}
	if composition == "" {
		return DefaultFleet
	}
	return labelValue(composition)
}

// labelValue is s as a label value: at most 63 characters, the long ones
// shortened with a hash of the whole.
func labelValue(s string) string {
	if len(s) <= 63 {
		return s
	}
	return strings.TrimRight(s[:54], "-.") + "-" + Hash([]byte(s))
}

// defaultHaltTimeout is how long a pool may take to converge after it
// started a change before it counts as failed.
const defaultHaltTimeout = time.Hour

// keyMarker is the composition resource key of a pool's rollout marker.
const keyMarker = "rollout"

// Marker data keys.
const (
	markerTarget  = "target"
	markerState   = "state"
	markerSince   = "since"
	markerStarted = "startedAt"
)

// A MarkerState is where a pool is with the fleet's target.
type MarkerState string

// Marker states.
const (
	// MarkerSettled: at the target, Available, not rolling.
	MarkerSettled MarkerState = "Settled"
	// MarkerRolling: moving to the target, or not Available.
	MarkerRolling MarkerState = "Rolling"
	// MarkerHeld: a change toward the target waits.
	MarkerHeld MarkerState = "Held"
	// MarkerFailed: not settled within the halt timeout of its start.
	MarkerFailed MarkerState = "Failed"
)

// A Marker is what a pool publishes of its rollout, in a small object of its
// own the pools of later waves select by label: a pool reads the markers of
// the waves before its own, never the fleet.
type Marker struct {
	// Namespace and Pool name the pool.
	Namespace, Pool string
	// Target is the policy target the state is about.
	Target string
	State  MarkerState
	// Since is when the pool settled (state Settled).
	Since time.Time
	// StartedAt is when the pool started its change (state Rolling or
	// Failed).
	StartedAt time.Time
}

// A WaveView is what the markers of one wave say of a target: all a pool
// of a later wave reads of them. Thousands of pools wait on the same
// markers; the view is what they share (fn/compose computes it once per
// set of markers), and it changes far less often than the markers do: not
// while the wave's pools roll, only when the last arrives or one fails.
type WaveView struct {
	// Pools is how many markers the wave has: what a halt tolerance given
	// as a percentage is of.
	Pools int
	// Waiting: a pool of the wave is not at the target, or not settled.
	Waiting bool
	// Failed names (namespace/pool) the pools failed at the target,
	// sorted.
	Failed []string
	// Since is when the last pool settled at the target, zero while the
	// wave is Waiting: the wave's soak counts from it.
	Since time.Time
}

// ViewWave reads a wave's markers for a target.
func ViewWave(ms []Marker, target string) WaveView {
	v := WaveView{Pools: len(ms)}
	for _, m := range ms {
		switch {
		case m.State == MarkerFailed && m.Target == target:
			v.Failed = append(v.Failed, m.Namespace+"/"+m.Pool)
		case m.Target != target || m.State != MarkerSettled:
			v.Waiting = true
		default:
			v.Since = maxTime(v.Since, m.Since)
		}
	}
	if v.Waiting {
		v.Since = time.Time{}
	}
	sort.Strings(v.Failed)
	return v
}

// A wave is a resolved wave of the policy.
type wave struct {
	index           int
	name            string
	soak            time.Duration
	pools, clusters labels.Selector
	approval        bool
}

// Target identifies what a policy asks of its fleet: a digest of everything
// but its rollout settings, so pausing, approving or windows do not make a
// new target. Pools of earlier waves report the target they are at; later
// waves start a target once the earlier ones are at it. What says nothing
// of what nodes run is left out too: the node rotation settings and the
// catalog's capacities (the autoscaler's knowledge), so that declaring them
// needs no wave to settle or be approved again.
func Target(p *v1beta1.Policy) (string, error) {
	c := *p
	c.Rollouts, c.Rotation, c.ScaleFromZero = nil, nil, nil
	if len(p.Catalog) > 0 {
		c.Catalog = make(map[string]v1beta1.MachineClass, len(p.Catalog))
		for k, v := range p.Catalog {
			v.Capacity = nil
			c.Catalog[k] = v
		}
	}
	b, err := wire.Marshal(&c)
	if err != nil {
		return "", err
	}
	return Hash(b), nil
}

// parseWaves reads the policy's waves, reporting every problem on its
// field.
func parseWaves(pol *v1beta1.RolloutPolicy) ([]wave, field.ErrorList) {
	if pol == nil {
		return nil, nil
	}
	path := inputPath.Child("rollouts", "waves")
	var errs field.ErrorList
	seen := map[string]bool{}
	out := make([]wave, 0, len(pol.Waves))
	for i, w := range pol.Waves {
		p := path.Index(i)
		if w.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), "name the wave: approvals and pools' status name it"))
		} else if seen[w.Name] {
			errs = append(errs, field.Duplicate(p.Child("name"), w.Name))
		} else if w.Name == noWave {
			errs = append(errs, field.Invalid(p.Child("name"), w.Name, "is the name of pools in no wave: choose another"))
		}
		seen[w.Name] = true
		wv := wave{index: i, name: w.Name, soak: w.Soak.Duration, approval: w.RequireApproval, pools: labels.Nothing(), clusters: labels.Everything()}
		if w.PoolSelector == nil && w.ClusterSelector == nil {
			errs = append(errs, field.Required(p.Child("poolSelector"), "select the wave's pools by their labels (poolSelector), their Cluster's (clusterSelector), or both"))
		}
		if w.PoolSelector != nil {
			s, err := metav1.LabelSelectorAsSelector(w.PoolSelector)
			if err != nil {
				errs = append(errs, field.Invalid(p.Child("poolSelector"), w.PoolSelector, err.Error()))
			}
			wv.pools = s
		} else {
			wv.pools = labels.Everything()
		}
		if w.ClusterSelector != nil {
			s, err := metav1.LabelSelectorAsSelector(w.ClusterSelector)
			if err != nil {
				errs = append(errs, field.Invalid(p.Child("clusterSelector"), w.ClusterSelector, err.Error()))
			}
			wv.clusters = s
		}
		if w.Soak.Duration < 0 {
			errs = append(errs, field.Invalid(p.Child("soak"), w.Soak.Duration.String(), "must not be negative, e.g. 1h"))
		}
		out = append(out, wv)
	}
	for name := range pol.Approvals {
		if !seen[name] {
			errs = append(errs, field.NotSupported(inputPath.Child("rollouts", "approvals").Key(name), name, sortedKeys(seen)))
		}
	}
	if h := pol.Halt; h != nil {
		if h.Timeout != nil && h.Timeout.Duration <= 0 {
			errs = append(errs, field.Invalid(inputPath.Child("rollouts", "halt", "timeout"), h.Timeout.Duration.String(), "must be longer than 0, e.g. 1h"))
		}
		if h.Tolerance != nil {
			if _, err := intstr.GetScaledValueFromIntOrPercent(h.Tolerance, 100, false); err != nil {
				errs = append(errs, field.Invalid(inputPath.Child("rollouts", "halt", "tolerance"), h.Tolerance.String(), "must be a count or a percentage, e.g. 1 or 10%"))
			}
		}
	}
	return out, errs
}

// waveOf is the wave a pool is in: the first whose selectors match the
// pool's and its Cluster's labels; nil for a pool in no wave (it goes
// last).
func waveOf(waves []wave, pool map[string]string, cl *Cluster) *wave {
	var cls map[string]string
	if cl != nil {
		cls = cl.Labels
	}
	for i := range waves {
		if waves[i].pools.Matches(labels.Set(pool)) && waves[i].clusters.Matches(labels.Set(cls)) {
			return &waves[i]
		}
	}
	return nil
}

// earlierWaves are the waves before a pool's: every wave for a pool in
// none.
func earlierWaves(waves []wave, w *wave) []wave {
	if w == nil {
		return waves
	}
	return waves[:w.index]
}

// EarlierWaves names the waves whose markers a pool reads while it has a
// disruptive change to start.
func (p *Plan) EarlierWaves() []string { return p.earlier }

// Fleet is the fleet the pool's waves order, "" when the policy has none.
func (p *Plan) Fleet() string { return p.fleet }

// computeWave holds a change until the waves before the pool's are at the
// target, healthy and soaked, and until the pool's own wave is approved
// where it must be.
func computeWave(in Input, r *resolved, pol v1beta1.RolloutPolicy, broken rule) gated {
	w := r.wave
	if w != nil && w.approval && pol.Approvals[w.name] != in.Target {
		return gated{hold: &Hold{Reason: HoldAwaitingApproval, Message: fmt.Sprintf(
			"holding the pool's disruptive change until the platform approves target %s for wave %s: set input.rollouts.approvals.%s: %q",
			in.Target, w.name, w.name, in.Target)}}
	}
	earlier := earlierWaves(r.waves, w)
	if len(earlier) == 0 {
		return gated{}
	}
	for _, e := range earlier {
		if _, known := in.Fleet[e.name]; !known {
			return gated{hold: &Hold{Reason: HoldWave, Message: fmt.Sprintf(
				"holding the pool's disruptive change until the rollouts of the waves before %s are known (wave %s's are not)", waveName(w), e.name)}}
		}
	}
	var tolerance *intstr.IntOrString
	if pol.Halt != nil {
		tolerance = pol.Halt.Tolerance
	}
	var (
		soakEnd time.Time
		waiting string // The first wave with a pool not there yet.
		halted  []string
	)
	for _, e := range earlier {
		v := in.Fleet[e.name]
		if v.Waiting && waiting == "" {
			waiting = e.name
		}
		if !v.Since.IsZero() && in.Now.Before(v.Since.Add(e.soak)) {
			soakEnd = maxTime(soakEnd, v.Since.Add(e.soak))
		}
		allowed, _ := intstr.GetScaledValueFromIntOrPercent(ptr.To(ptr.Deref(tolerance, intstr.FromInt32(0))), v.Pools, false)
		if len(v.Failed) > allowed {
			halted = append(halted, fmt.Sprintf("wave %s: %s", e.name, list(v.Failed)))
		}
	}
	if broken&ruleHalt != 0 {
		halted = nil
	}
	if broken&ruleWave != 0 {
		waiting, soakEnd = "", time.Time{}
	}
	switch {
	case len(halted) > 0:
		return gated{hold: &Hold{Reason: HoldHalted, Message: fmt.Sprintf(
			"holding the pool's disruptive change: the rollout halted, pools of an earlier wave failed (%s); it resumes when they recover, or with a higher input.rollouts.halt.tolerance",
			strings.Join(halted, "; "))}}
	case waiting != "":
		// One message per wave and target, not per pool: thousands of
		// waiting pools would rewrite their status on every marker change.
		return gated{hold: &Hold{Reason: HoldWave, Message: fmt.Sprintf(
			"holding the pool's disruptive change until every pool of wave %s (before %s) is at target %s, Available, done rolling and soaked; "+
				"their markers: kubectl get configmaps -A -l %s=%s,%s=%s",
			waiting, waveName(w), in.Target, LabelFleet, fleetOf(pol, in.Composition), LabelWave, waiting)}}
	case !soakEnd.IsZero():
		return gated{wake: soakEnd, hold: &Hold{Reason: HoldSoak, NextStart: soakEnd, Message: fmt.Sprintf(
			"holding the pool's disruptive change while the waves before %s soak at target %s, until %s",
			waveName(w), in.Target, soakEnd.UTC().Format(time.RFC3339))}}
	}
	return gated{}
}

// marker is the pool's rollout marker after this plan, and when its state
// changes by time alone (a rollout times out).
func (p *Plan) marker(in Input, r *resolved, pol v1beta1.RolloutPolicy) (Marker, time.Time) {
	prev := in.Marker
	m := Marker{Namespace: in.Namespace, Pool: in.Name, Target: in.Target}
	rollingNow := p.starting || len(p.Rolling) > 0 || replacing(backingsOf(in.Observed), in.MachineSets)
	switch {
	case p.Hold != nil:
		m.State = MarkerHeld
	case !rollingNow && p.available(in.Observed):
		m.State = MarkerSettled
		m.Since = in.Now.UTC().Truncate(time.Second)
		if prev != nil && prev.State == MarkerSettled && !prev.Since.IsZero() {
			m.Since = prev.Since
		}
		return m, time.Time{}
	default:
		m.State = MarkerRolling
	}
	if m.State == MarkerHeld && !rollingNow {
		return m, time.Time{}
	}
	// Rolling (or held while rolling): since when, and has it failed?
	m.StartedAt = in.Now.UTC().Truncate(time.Second)
	if prev != nil && !prev.StartedAt.IsZero() && !p.starting {
		m.StartedAt = prev.StartedAt
	}
	timeout := defaultHaltTimeout
	if h := pol.Halt; h != nil && h.Timeout != nil {
		timeout = h.Timeout.Duration
	}
	deadline := m.StartedAt.Add(timeout)
	if !in.Now.Before(deadline) {
		m.State = MarkerFailed
		return m, time.Time{}
	}
	return m, deadline
}

// markerObject is the ConfigMap that carries a pool's marker.
func markerObject(in Input, fleet, waveName string, m Marker) *corev1.ConfigMap {
	data := map[string]string{markerTarget: m.Target, markerState: string(m.State)}
	if !m.Since.IsZero() {
		data[markerSince] = m.Since.UTC().Format(time.RFC3339)
	}
	if !m.StartedAt.IsZero() {
		data[markerStarted] = m.StartedAt.UTC().Format(time.RFC3339)
	}
	cm := &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		Data:     data,
	}
	name(cm, Name(in.Spec.ClusterName, in.Name, keyMarker), in.Namespace, in.Spec.ClusterName,
		map[string]string{capi.PoolLabel: in.Name, LabelFleet: fleet, LabelWave: waveName})
	return cm
}

// ReadMarker reads a marker from a marker object's data, as the function
// wrote it. A value that does not parse reads as not settled: a pool whose
// marker cannot be read holds the later waves.
func ReadMarker(namespace, pool string, data map[string]string) Marker {
	m := Marker{Namespace: namespace, Pool: pool, Target: data[markerTarget], State: MarkerState(data[markerState])}
	var err error
	if v := data[markerSince]; v != "" {
		if m.Since, err = time.Parse(time.RFC3339, v); err != nil {
			m.State = MarkerRolling
		}
	}
	if v := data[markerStarted]; v != "" {
		if m.StartedAt, err = time.Parse(time.RFC3339, v); err != nil {
			m.State = MarkerRolling
		}
	}
	switch m.State {
	case MarkerSettled, MarkerRolling, MarkerHeld, MarkerFailed:
	default:
		m.State = MarkerRolling
	}
	return m
}

// noWave is the wave label of pools in no wave.
const noWave = "none"

func waveName(w *wave) string {
	if w == nil {
		return "the last wave (pools in no wave)"
	}
	return "wave " + w.name
}

// list names up to five of sorted items, and how many more there are.
func list(items []string) string {
	if len(items) <= 5 {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:5], ", "), len(items)-5)
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
