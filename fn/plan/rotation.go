package plan

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/apis/input/v1beta1"
)

// AnnotationRotation is set on a MachinePool's bootstrap config made to
// rotate the pool's nodes: the time the rotation was due. It is part of the
// config's content, so of its hashed name, and a new name is what rolls the
// pool's instances. Every later config of the pool carries the value of
// the one it replaces, so only a rotation renames it.
const AnnotationRotation = v1alpha1.Group + "/rotation"

// A rotation replaces a pool's nodes before they reach a max age. A pool's
// revision (its MachineSet, or its MachinePool's bootstrap config) is due
// at its creation + maxAge - spread + offset, where offset is the pool's
// fixed point in [0, spread): pools whose nodes were replaced together
// rotate apart. A rotation starts by maxAge at the latest, unless the
// rollout rules hold it; its machines are replaced over the rollout that
// follows.
type rotation struct {
	maxAge, spread, offset time.Duration
}

// due is when a revision created at created is due for rotation.
func (rt *rotation) due(created time.Time) time.Time {
	return created.Add(rt.maxAge - rt.spread + rt.offset).Truncate(time.Second)
}

// resolveRotation reads the pool's max node age from its spec or the
// policy, nil where it has none. A pool that cannot rotate (its backend has
// no safe way) is refused a max age it asks for; the policy's default does
// not apply to it.
func (r *resolved) resolveRotation(in Input) (*rotation, field.ErrorList) {
	pol := ptr.Deref(in.Policy.Rotation, v1beta1.RotationPolicy{})
	ppath, ipath := specPath.Child("maxNodeAge"), inputPath.Child("rotation")
	maxAge, path := pol.MaxNodeAge, ipath.Child("maxNodeAge")
	own := in.Spec.MaxNodeAge != nil
	if own {
		maxAge, path = in.Spec.MaxNodeAge, ppath
	}
	if maxAge == nil {
		return nil, nil
	}
	if maxAge.Duration < time.Minute {
		return nil, field.ErrorList{field.Invalid(path, maxAge.Duration.String(), "set a max node age of at least 1m, e.g. 720h")}
	}
	if limit := cmp.Or(pol.LongestNodeAge, pol.MaxNodeAge); own && limit != nil && maxAge.Duration > limit.Duration {
		return nil, field.ErrorList{field.Invalid(path, maxAge.Duration.String(), fmt.Sprintf(
			"the platform policy allows at most %s (input.rotation.longestNodeAge, else input.rotation.maxNodeAge): set a shorter age, or leave it out for the policy's", limit.Duration))}
	}
	spread := maxAge.Duration / 10
	if pol.Spread != nil {
		spread = pol.Spread.Duration
	}
	if own && spread >= maxAge.Duration {
		spread = maxAge.Duration / 10 // The pool asks for less than the policy's spread.
	}
	if spread < 0 || spread >= maxAge.Duration {
		return nil, field.ErrorList{field.Invalid(ipath.Child("spread"), spread.String(), fmt.Sprintf(
			"set a spread of at least 0 and less than the max node age %s", maxAge.Duration))}
	}
	if msg := r.provider.CannotRotate(&r.pool); msg != "" {
		if own {
			return nil, field.ErrorList{field.Forbidden(ppath, fmt.Sprintf("the pool's nodes (backend %s on %s) cannot be replaced for their age: %s", r.pool.Backend, r.provider.Name(), msg))}
		}
		return nil, nil
	}
	return &rotation{maxAge: maxAge.Duration, spread: spread, offset: offset(in.Namespace+"/"+in.Name, spread)}, nil
}

// offset is a pool's fixed point in [0, spread), in whole seconds, from a
// hash of its identity.
func offset(identity string, spread time.Duration) time.Duration {
	s := uint64(spread / time.Second) //nolint:gosec // Checked non-negative.
	if s == 0 {
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(identity))
	return time.Duration(h.Sum64()%s) * time.Second //nolint:gosec // Less than spread.
}

// A revision is one MachineDeployment's or MachinePool's current revision:
// when it was made and when it is due for rotation.
type revision struct {
	created, due time.Time
}

// A rotationStep is what one revision's rotation does now.
type rotationStep int

const (
	rotationWait  rotationStep = iota // Not due yet: plan again when it is.
	rotationStart                     // Due and not asked for yet: start it.
	rotationNone                      // Asked for already, or held while its backing rolls.
)

// computeRotation decides a revision's rotation at now. done is the last
// rotation asked for (a MachineDeployment's spec.rollout.after, a
// MachinePool config's stamp): a revision is rotated once. A backing still
// rolling does not start another: the new revision would be made while
// the last one is still replacing machines (and CAPA cancels an instance
// refresh under way for new bootstrap data); its progress plans the pool
// again.
func computeRotation(rev revision, done, now time.Time, rolling bool) rotationStep {
	switch {
	case now.Before(rev.due):
		return rotationWait
	case !done.Before(rev.due), rolling:
		return rotationNone
	}
	return rotationStart
}

// rotateMachineDeployment decides a MachineDeployment's spec.rollout.after:
// what is observed, so a rotation under way runs to its end (without it
// Cluster API would take an older MachineSet of the same template for the
// current one), or the time its newest MachineSet is due, once it is. Then
// every MachineSet made before that is replaced, as by a new template.
func (p *Plan) rotateMachineDeployment(in Input, rt *rotation, key string, after *metav1.Time) {
	o, ok := in.Observed[key]
	if ok {
		*after = metav1.NewTime(o.RolloutAfter)
	}
	if rt == nil || !ok {
		return
	}
	var created time.Time
	for _, ms := range in.MachineSets[o.Name] {
		if ms.Created.After(created) {
			created = ms.Created
		}
	}
	if created.IsZero() {
		return // Not fetched yet, or not made yet: nothing to date.
	}
	rev := revision{created: created, due: rt.due(created)}
	if p.rotation(in, rev, o.RolloutAfter, o.rolling()) == rotationStart {
		*after = metav1.NewTime(rev.due)
		p.rotated(key, rotationReason(rt, rev), rev.due)
	}
}

// rotationStamp decides the AnnotationRotation of a MachinePool's bootstrap
// config: the value of the config it runs, or, once that config is due,
// the time it was due.
func (p *Plan) rotationStamp(in Input, rt *rotation) string {
	o, ok := in.Observed[keyMachinePool]
	if !ok || o.Bootstrap == "" {
		return ""
	}
	var cur *Observed
	for k, b := range in.Observed {
		if strings.HasPrefix(k, keyBootstrap+"-") && b.Name == o.Bootstrap {
			cur = &b
			break
		}
	}
	if cur == nil {
		return ""
	}
	if rt == nil || cur.Created.IsZero() {
		return cur.Rotation
	}
	rev := revision{created: cur.Created, due: rt.due(cur.Created)}
	if p.rotation(in, rev, parseTime(cur.Rotation), o.rolling()) != rotationStart {
		return cur.Rotation
	}
	p.rotated(keyMachinePool, rotationReason(rt, rev), rev.due)
	return rev.due.UTC().Format(time.RFC3339)
}

// rotation records a revision for the status and decides its rotation
// (computeRotation), asking to be planned again when it falls due. A
// backing that runs no machines rotates all the same: it replaces none, so
// the rollout rules do not hold it (preview), and a pool the autoscaler
// grows from zero after its due time does not replace the nodes it just
// made.
func (p *Plan) rotation(in Input, rev revision, done time.Time, rolling bool) rotationStep {
	if p.oldest.created.IsZero() || rev.created.Before(p.oldest.created) {
		p.oldest.created = rev.created
	}
	if p.oldest.due.IsZero() || rev.due.Before(p.oldest.due) {
		p.oldest.due = rev.due
	}
	step := computeRotation(rev, done, in.Now, rolling)
	if step == rotationWait {
		p.Wake = cmpMin(p.Wake, rev.due)
	}
	return step
}

// rotationReason is a rotation's reason in status.changes.
func rotationReason(rt *rotation, rev revision) string {
	return fmt.Sprintf("rotation: nodes since %s reach the max node age %s", rev.created.UTC().Format(time.RFC3339), rt.maxAge)
}

// parseTime reads an RFC 3339 time, zero if it does not parse: unreadable
// is absent.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// rotationStatus is the pool's status.rotation, nil without a max age.
func (p *Plan) rotationStatus(rt *rotation) *v1alpha1.RotationStatus {
	if rt == nil {
		return nil
	}
	s := &v1alpha1.RotationStatus{MaxNodeAge: &metav1.Duration{Duration: rt.maxAge}}
	if !p.oldest.created.IsZero() {
		s.RevisionCreated, s.NextRotation = ptr.To(metav1.NewTime(p.oldest.created)), ptr.To(metav1.NewTime(p.oldest.due))
	}
	return s
}
