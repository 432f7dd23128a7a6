package fleetsim

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // Windows in time zones, on machines without a zone database.

	"github.com/crossplane/function-sdk-go/errors"
)

// The rollout gates as the model sees them: its clock, the policy's
// rollouts, and which pools may not start a disruptive rollout now. The
// model computes them from what it gives the function, independently of
// fn/plan, so that the invariants judge the function rather than repeat it.

// Annotations and labels of the rollout gates.
const (
	annotationDefer       = "fleet.nodepool.dev/defer-rollout"
	annotationHoldSeq     = "fleet.nodepool.dev/hold-rollout-sequence"
	annotationConcurrency = "fleet.nodepool.dev/rollout-concurrency"
	annotationQueued      = "fleet.nodepool.dev/rollout-queued-since"
	labelWindow           = "fleet.nodepool.dev/maintenance-window"
)

// Why a pool may not start a disruptive rollout: the function's reasons.
const (
	heldPaused   = "Paused"
	heldDeferred = "Deferred"
	heldWindow   = "MaintenanceWindow"
	heldSequence = "SequenceHeld"
)

// Errors of a window the model cannot read.
const (
	errFmtZone  = "cannot load the time zone of window %s"
	errFmtStart = "cannot parse the start of window %s"
)

// epoch is the model's time at step 0: a Monday, midnight UTC.
func epoch() time.Time { return time.Date(2026, time.March, 2, 0, 0, 0, 0, time.UTC) }

// stepEvery is the model's time per step: an hour, so that a daily window
// opens and closes within a simulation.
const stepEvery = time.Hour

// now is the model's clock, which the function is given.
func (w *world) now() time.Time { return epoch().Add(time.Duration(w.step) * stepEvery) }

// A window is a weekly maintenance window.
type window struct {
	name string
	// days it opens on; none: every day.
	days []time.Weekday
	// start is when it opens, HH:MM in zone ("" for UTC), for how long.
	start    string
	duration time.Duration
	zone     string
	// loc and hour, minute are zone and start, read by newWindow.
	loc          *time.Location
	hour, minute int
}

// newWindow is a window, its zone and start read.
func newWindow(name string, days []time.Weekday, start string, d time.Duration, zone string) (window, error) {
	win := window{name: name, days: days, start: start, duration: d, zone: zone, loc: time.UTC}
	if zone != "" {
		var err error
		if win.loc, err = time.LoadLocation(zone); err != nil {
			return win, errors.Wrapf(err, errFmtZone, name)
		}
	}
	t, err := time.Parse("15:04", start)
	if err != nil {
		return win, errors.Wrapf(err, errFmtStart, name)
	}
	win.hour, win.minute = t.Hour(), t.Minute()
	return win, nil
}

// open reports whether the window is open at t: it opened at its start on
// one of the last eight days (a window lasts up to a week) and has not
// closed yet.
func (win window) open(t time.Time) bool {
	local := t.In(win.loc)
	for back := range 8 {
		d := local.AddDate(0, 0, -back)
		opened := time.Date(d.Year(), d.Month(), d.Day(), win.hour, win.minute, 0, 0, win.loc)
		if len(win.days) > 0 && !slices.Contains(win.days, opened.Weekday()) {
			continue
		}
		if !t.Before(opened) && t.Before(opened.Add(win.duration)) {
			return true
		}
	}
	return false
}

// gates are the policy's rollouts.
type gates struct {
	// concurrency is rollouts.concurrency, 0 for none (the function's
	// default, 1).
	concurrency    int
	paused         bool
	pausedChannels []string
	windows        []window
	defaultWindow  string
	// waves are the policy's waves (waves.go), halting a wave's successors
	// once a pool has not reached the target haltTimeout after it started.
	waves       []waveSpec
	haltTimeout time.Duration
}

// value is the policy's rollouts, as the Policy input spells them.
func (g gates) value() map[string]any {
	r := map[string]any{}
	if g.concurrency > 0 {
		r["concurrency"] = g.concurrency
	}
	if g.paused {
		r["paused"] = true
	}
	if len(g.pausedChannels) > 0 {
		cs := make([]any, len(g.pausedChannels))
		for i, c := range g.pausedChannels {
			cs[i] = c
		}
		r["pausedChannels"] = cs
	}
	if len(g.windows) > 0 {
		ws := make([]any, len(g.windows))
		for i, win := range g.windows {
			days := make([]any, len(win.days))
			for j, d := range win.days {
				days[j] = d.String()
			}
			m := map[string]any{"name": win.name, "start": win.start, "duration": win.duration.String()}
			if len(days) > 0 {
				m["days"] = days
			}
			if win.zone != "" {
				m["timeZone"] = win.zone
			}
			ws[i] = m
		}
		r["maintenanceWindows"] = ws
	}
	if g.defaultWindow != "" {
		r["defaultMaintenanceWindow"] = g.defaultWindow
	}
	g.waveValue(r)
	return r
}

// concurrency is how many pools of the cluster may roll at once: its
// annotation, else the policy's, else 1; false when the annotation is not
// an integer of at least 1 (the function then holds every pool of it), with 0.
func (w *world) concurrency(c *cluster) (int, bool) {
	if v, ok := c.annotations[annotationConcurrency]; ok {
		if n, err := strconv.Atoi(v); err == nil && n >= 1 {
			return n, true
		}
		return 0, false
	}
	if w.gates.concurrency > 0 {
		return w.gates.concurrency, true
	}
	return 1, true
}

// held says why the pool may not start a disruptive rollout at the model's
// time, "" if it may: the policy paused it or its channel, its annotation
// defers it, its maintenance window is closed (or unknown), or it holds its
// Cluster's rollout sequence.
func (w *world) held(p *pool) string {
	c := w.byNS[p.namespace]
	if w.gates.paused || slices.Contains(w.gates.pausedChannels, poolChannel) {
		return heldPaused
	}
	if v, ok := p.annotations[annotationDefer]; ok && v != "false" {
		return heldDeferred
	}
	name := cmp.Or(p.labels[labelWindow], c.labels[labelWindow], w.gates.defaultWindow)
	i := slices.IndexFunc(w.gates.windows, func(win window) bool { return win.name == name })
	if name != "" && (i < 0 || !w.gates.windows[i].open(w.now())) {
		return heldWindow // Closed, or unknown.
	}
	// A pool holding the sequence queues, when its Cluster has more pools
	// than may roll at once, and never starts; nor do the pools queued
	// after it.
	if n, _ := w.concurrency(c); p.annotations[annotationHoldSeq] == "true" && len(c.pools) > n || w.queuedAfterHolder[p] {
		return heldSequence
	}
	return ""
}

// queuedAfterHolders are the pools queued after a pool that holds its
// Cluster's rollout sequence, in the queue the function published on the
// MachineDeployments (each pool's earliest rollout-queued-since, then its
// name): what the function sees when it next reconciles them.
func (w *world) queuedAfterHolders() map[*pool]bool {
	out := map[*pool]bool{}
	for _, c := range w.clusters {
		type place struct {
			p *pool
			t time.Time
		}
		var queue, holders []place
		for _, p := range c.pools {
			if t, ok := queuedSince(p); ok {
				queue = append(queue, place{p, t})
				if p.annotations[annotationHoldSeq] == "true" {
					holders = append(holders, place{p, t})
				}
			}
		}
		for _, q := range queue {
			for _, h := range holders {
				if cmp.Or(h.t.Compare(q.t), strings.Compare(h.p.name, q.p.name)) < 0 {
					out[q.p] = true
				}
			}
		}
	}
	return out
}

// queuedSince is the earliest rollout-queued-since annotation of the
// pool's MachineDeployments, if one has a time.
func queuedSince(p *pool) (time.Time, bool) {
	var first time.Time
	for _, o := range p.composed {
		if o.id.kind != kindMachineDeployment {
			continue
		}
		t, err := time.Parse(time.RFC3339, at(o.annots.GetStructValue(), annotationQueued).GetStringValue())
		if err == nil && (first.IsZero() || t.Before(first)) {
			first = t
		}
	}
	return first, !first.IsZero()
}
