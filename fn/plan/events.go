package plan

import (
	"fmt"
	"strings"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
)

// A pool's events tell the humans who operate it when its state changes in
// a way they act on: a rollout starts or finishes, a change is held, a wave
// halts, a change is refused. Conditions and status say where a pool is;
// events say when it got there, once. They are transitions, so they compare
// two states: the one the previous reconcile left (what the XR's status
// says) and the one this plan sets (Plan.State). The same pool in the same
// state emits nothing, however often Crossplane reconciles it.

// Reasons of the events a pool emits. The set is small and stable: what
// varies (which hold, which refusal) is in the message.
const (
	// EventRolloutStarted (Normal): the pool's rollout state became
	// RollingOut: machines are being replaced with its current spec.
	EventRolloutStarted = "RolloutStarted"
	// EventRolloutFinished (Normal): the pool went from RollingOut to
	// UpToDate: every machine runs its current spec.
	EventRolloutFinished = "RolloutFinished"
	// EventRolloutHeld (Normal): the pool's disruptive change became held,
	// or is now held for another reason; the message starts with the reason
	// (a Hold* constant) and goes on with the RolloutHeld condition's.
	EventRolloutHeld = "RolloutHeld"
	// EventWaveHalted (Warning): the pool is held because an earlier wave
	// failed (HoldHalted): a human looks at the failed pools the message
	// names. Emitted instead of EventRolloutHeld.
	EventWaveHalted = "WaveHalted"
	// EventChangeRefused (Warning): a change of the spec was refused, or
	// another change is now refused (its message changed); the message
	// starts with the refusal's reason (BackingReplaced, ClusterChanged,
	// ProviderChanged, ImmutableField).
	EventChangeRefused = "ChangeRefused"
)

// EventReasons are the reasons of every event a pool emits.
func EventReasons() []string {
	return []string{EventRolloutStarted, EventRolloutFinished, EventRolloutHeld, EventWaveHalted, EventChangeRefused}
}

// An Event is a transition of a pool's state a human acts on. Crossplane
// records it as a Kubernetes Event of the FleetNodePool (and its claim).
type Event struct {
	// Warning events need a human; the others inform.
	Warning bool
	// Reason is one of the Event* constants.
	Reason string
	// Message says what happened and, from the condition, why.
	Message string
}

// A PoolState is what a pool's events compare: where its disruptive changes
// are, what holds them, and what was refused. A brand-new pool, which no
// reconcile has written a status for, has the zero PoolState.
type PoolState struct {
	// Rollout is the state of the pool's disruptive changes
	// (status.rollout.state); "" when not known.
	Rollout v1alpha1.RolloutState
	// HoldReason (a Hold* constant) and HoldMessage say why a held change
	// waits (condition RolloutHeld).
	HoldReason, HoldMessage string
	// HoldTransient: the hold lasts seconds (Hold.Transient). Of the next
	// state only: a status does not say it.
	HoldTransient bool
	// Unknown: the previous state cannot be told (Crossplane reset the
	// conditions after a Fatal result): nothing is announced.
	Unknown bool
	// Refused is true while a change is refused; RefusedReason and
	// RefusedMessage are why (condition ChangeRefused).
	Refused                       bool
	RefusedReason, RefusedMessage string

	// Changes, Rolling and Version describe the pool in the messages of the
	// next state only; they are never compared.
	Changes []v1alpha1.Change
	Rolling []string
	Version string
}

// State is the pool's state as the plan leaves it: what its events compare
// with the state the previous reconcile left. A pool whose version cannot
// be read has no status.rollout; its hold alone says it is held.
func (p *Plan) State() PoolState {
	s := PoolState{Changes: p.Status.Changes, Rolling: p.Rolling, Version: p.Status.Version}
	if r := p.Status.Rollout; r != nil {
		s.Rollout = r.State
	}
	if h := p.Hold; h != nil && s.Rollout != v1alpha1.RolloutRollingOut {
		s.Rollout, s.HoldReason, s.HoldMessage, s.HoldTransient = v1alpha1.RolloutHeld, h.Reason, h.Message, h.Transient
	}
	if r := p.Refused; r != nil {
		s.Refused, s.RefusedReason, s.RefusedMessage = true, r.Reason, r.Message
	}
	return s
}

// Events are the transitions from prev, the state the previous reconcile
// left, to next, the one this plan sets, in a set order: the rollout's
// first, then the refusal's. None when nothing a human acts on changed.
// A brand-new pool (prev is the zero PoolState) comes from nowhere: it
// emits what it starts in, except UpToDate, which is no news (a pool
// created from scratch is UpToDate and emits nothing).
func Events(prev, next PoolState) []Event {
	if prev.Unknown {
		return nil
	}
	var out []Event
	if e, ok := rolloutEvent(prev, next); ok {
		out = append(out, e)
	}
	if e, ok := refusalEvent(prev, next); ok {
		out = append(out, e)
	}
	return out
}

// rolloutEvent is the transition of the pool's rollout state, if any.
func rolloutEvent(prev, next PoolState) (Event, bool) {
	switch next.Rollout {
	case v1alpha1.RolloutRollingOut:
		if prev.Rollout != v1alpha1.RolloutRollingOut {
			return Event{Reason: EventRolloutStarted, Message: rolls(next)}, true
		}
	case v1alpha1.RolloutUpToDate:
		if prev.Rollout == v1alpha1.RolloutRollingOut {
			return Event{Reason: EventRolloutFinished, Message: finished(next)}, true
		}
	case v1alpha1.RolloutHeld:
		if next.HoldTransient || prev.Rollout == v1alpha1.RolloutHeld && prev.HoldReason == next.HoldReason {
			return Event{}, false // A new message alone (the queue moved, a soak's end) is no news.
		}
		e := Event{Reason: EventRolloutHeld, Message: because(next.HoldReason, next.HoldMessage)}
		if next.HoldReason == HoldHalted {
			e.Warning, e.Reason = true, EventWaveHalted
		}
		return e, true
	}
	return Event{}, false
}

// refusalEvent is a refusal that starts, or a refusal of another change.
func refusalEvent(prev, next PoolState) (Event, bool) {
	if !next.Refused || prev.Refused && prev.RefusedMessage == next.RefusedMessage {
		return Event{}, false
	}
	return Event{Warning: true, Reason: EventChangeRefused, Message: because(next.RefusedReason, next.RefusedMessage)}, true
}

// because is a message that starts with its reason.
func because(reason, message string) string {
	if message == "" {
		return reason
	}
	return reason + ": " + message
}

// rolls says what a pool that starts rolling replaces, and why: its
// changes that replace machines; else, as condition RolloutInProgress, the
// objects that have not caught up with their spec.
func rolls(s PoolState) string {
	var out []string
	for _, c := range s.Changes {
		if c.Action != v1alpha1.ChangeReplace {
			continue
		}
		if len(c.Reasons) == 0 {
			out = append(out, c.Object)
			continue
		}
		out = append(out, fmt.Sprintf("%s (%s)", c.Object, strings.Join(c.Reasons, ", ")))
	}
	if len(out) > 0 {
		return "replacing machines: " + strings.Join(out, "; ")
	}
	if len(s.Rolling) > 0 {
		return "rolling out: " + strings.Join(s.Rolling, ", ")
	}
	return "rolling out"
}

// finished says what a pool that finished rolling runs.
func finished(s PoolState) string {
	if s.Version == "" {
		return "every machine of the pool runs its current spec"
	}
	return "every machine of the pool runs its current spec, at " + s.Version
}
