package fleetsim

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestWindowOpen(t *testing.T) {
	utc := func(day, hour, minute int) time.Time {
		return time.Date(2026, time.March, day, hour, minute, 0, 0, time.UTC)
	}
	weekdays := []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}
	type at struct {
		t    time.Time
		open bool
	}
	cases := map[string]struct {
		reason string
		days   []time.Weekday
		start  string
		d      time.Duration
		zone   string
		want   []at
	}{
		"EveryNightUTC": {
			reason: "A daily window opens at its start and closes after its duration, across midnight.",
			start:  "22:00", d: 6 * time.Hour,
			// 2026-03-02 is a Monday.
			want: []at{{utc(2, 21, 59), false}, {utc(2, 22, 0), true}, {utc(3, 3, 59), true}, {utc(3, 4, 0), false}, {utc(7, 23, 0), true}},
		},
		"Weekdays": {
			reason: "A window opens on its days only; one that opened on Friday night is still open on Saturday morning.",
			days:   weekdays, start: "22:00", d: 6 * time.Hour,
			want: []at{{utc(6, 22, 30), true}, {utc(7, 2, 0), true}, {utc(7, 23, 0), false}, {utc(8, 2, 0), false}, {utc(8, 22, 0), false}, {utc(9, 22, 0), true}},
		},
		"WholeWeek": {
			reason: "A window of 168h from Monday midnight is always open.",
			days:   []time.Weekday{time.Monday}, start: "00:00", d: 168 * time.Hour,
			want: []at{{utc(2, 0, 0), true}, {utc(5, 12, 0), true}, {utc(8, 23, 59), true}, {utc(9, 0, 0), true}},
		},
		"TimeZone": {
			reason: "Start and days are of the window's time zone: 07:00 on Monday in Tokyo is 22:00 UTC on Sunday.",
			days:   []time.Weekday{time.Monday}, start: "07:00", d: 2 * time.Hour, zone: "Asia/Tokyo",
			want: []at{{utc(1, 21, 59), false}, {utc(1, 22, 0), true}, {utc(1, 23, 59), true}, {utc(2, 0, 0), false}, {utc(2, 22, 30), false}},
		},
		"DaylightSaving": {
			reason: "A duration is elapsed time: New York's clocks skip 02:00 on 2026-03-08, and a window from 01:00 EST for 3h closes at 05:00 EDT (09:00 UTC).",
			start:  "01:00", d: 3 * time.Hour, zone: "America/New_York",
			want: []at{{utc(8, 5, 59), false}, {utc(8, 6, 0), true}, {utc(8, 8, 59), true}, {utc(8, 9, 0), false}, {utc(9, 5, 0), true}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			win, err := newWindow("w", tc.days, tc.start, tc.d, tc.zone)
			if err != nil {
				t.Fatalf("%s\nnewWindow(...): %v", tc.reason, err)
			}
			got := make([]at, len(tc.want))
			for i, a := range tc.want {
				got[i] = at{a.t, win.open(a.t)}
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(at{})); diff != "" {
				t.Errorf("%s\nopen(t): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestNewWindowErrors(t *testing.T) {
	cases := map[string]struct {
		reason      string
		start, zone string
	}{
		"Zone":  {reason: "A time zone that does not exist is an error of the model.", start: "01:00", zone: "Mars/Olympus"},
		"Start": {reason: "A start that is not HH:MM is an error of the model.", start: "25:00"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := newWindow("w", nil, tc.start, time.Hour, tc.zone); err == nil {
				t.Errorf("%s\nnewWindow(...): no error", tc.reason)
			}
		})
	}
}

func TestHeld(t *testing.T) {
	// The hand-made fleet runs at step 7: Monday 07:00 UTC.
	windows := func() gates {
		open, _ := newWindow("open", nil, "06:00", 2*time.Hour, "")
		closed, _ := newWindow("closed", nil, "08:00", 2*time.Hour, "")
		return gates{windows: []window{open, closed}}
	}
	cases := map[string]struct {
		reason string
		edit   func(w *world, p *pool, g *gates)
		want   string
	}{
		"Free": {
			reason: "A pool no gate holds may start.",
			edit:   func(*world, *pool, *gates) {},
		},
		"Paused": {
			reason: "The policy's pause holds every pool.",
			edit:   func(_ *world, _ *pool, g *gates) { g.paused = true },
			want:   heldPaused,
		},
		"ChannelPaused": {
			reason: "A paused channel holds the pools that follow it.",
			edit:   func(_ *world, _ *pool, g *gates) { g.pausedChannels = []string{"rapid", poolChannel} },
			want:   heldPaused,
		},
		"OtherChannelPaused": {
			reason: "Another channel paused holds nothing here.",
			edit:   func(_ *world, _ *pool, g *gates) { g.pausedChannels = []string{"rapid"} },
		},
		"Deferred": {
			reason: "The defer-rollout annotation holds the pool.",
			edit:   func(_ *world, p *pool, _ *gates) { p.annotations[annotationDefer] = "true" },
			want:   heldDeferred,
		},
		"NotDeferred": {
			reason: "defer-rollout false holds nothing.",
			edit:   func(_ *world, p *pool, _ *gates) { p.annotations[annotationDefer] = "false" },
		},
		"DeferredFailClosed": {
			reason: "A defer-rollout value that is neither true nor false holds.",
			edit:   func(_ *world, p *pool, _ *gates) { p.annotations[annotationDefer] = "yes" },
			want:   heldDeferred,
		},
		"PausedFirst": {
			reason: "The first gate that holds names the reason: a pause before a deferral.",
			edit: func(_ *world, p *pool, g *gates) {
				g.paused, p.annotations[annotationDefer] = true, "true"
			},
			want: heldPaused,
		},
		"PoolWindowClosed": {
			reason: "The pool's window label selects a closed window.",
			edit:   func(_ *world, p *pool, _ *gates) { p.labels[labelWindow] = "closed" },
			want:   heldWindow,
		},
		"PoolWindowOpen": {
			reason: "The pool's window wins over its Cluster's.",
			edit: func(w *world, p *pool, _ *gates) {
				p.labels[labelWindow], w.clusters[0].labels[labelWindow] = "open", "closed"
			},
		},
		"ClusterWindowClosed": {
			reason: "The Cluster's window label applies to pools without their own.",
			edit:   func(w *world, _ *pool, _ *gates) { w.clusters[0].labels[labelWindow] = "closed" },
			want:   heldWindow,
		},
		"ClusterWindowOverDefault": {
			reason: "The Cluster's window wins over the policy's default.",
			edit: func(w *world, _ *pool, g *gates) {
				w.clusters[0].labels[labelWindow], g.defaultWindow = "open", "closed"
			},
		},
		"DefaultWindowClosed": {
			reason: "The policy's default window applies to pools that select none.",
			edit:   func(_ *world, _ *pool, g *gates) { g.defaultWindow = "closed" },
			want:   heldWindow,
		},
		"UnknownWindow": {
			reason: "A window that does not exist holds.",
			edit:   func(_ *world, p *pool, _ *gates) { p.labels[labelWindow] = "weekend" },
			want:   heldWindow,
		},
		"DeferredBeforeWindow": {
			reason: "A deferral comes before a closed window.",
			edit: func(_ *world, p *pool, _ *gates) {
				p.labels[labelWindow], p.annotations[annotationDefer] = "closed", "true"
			},
			want: heldDeferred,
		},
		"HoldsSequence": {
			reason: "A pool holding the sequence of a Cluster with more pools than its concurrency never starts.",
			edit: func(w *world, p *pool, _ *gates) {
				w.addPool(w.clusters[0], "pool-01", p.spec)
				p.annotations[annotationHoldSeq] = "true"
			},
			want: heldSequence,
		},
		"SequenceWithoutQueue": {
			reason: "A Cluster whose pools may all roll at once has no queue to hold.",
			edit: func(w *world, p *pool, g *gates) {
				w.addPool(w.clusters[0], "pool-01", p.spec)
				p.annotations[annotationHoldSeq], g.concurrency = "true", 2
			},
		},
		"QueuedAfterHolder": {
			reason: "A pool queued after a pool holding the sequence holds too.",
			edit: func(w *world, p *pool, _ *gates) {
				queue(p, "2026-03-02T06:30:00Z")
				queue(holder(w, p, "pool-01"), "2026-03-02T06:00:00Z")
			},
			want: heldSequence,
		},
		"QueuedBeforeHolder": {
			reason: "A pool queued before the holder goes on.",
			edit: func(w *world, p *pool, _ *gates) {
				queue(p, "2026-03-02T05:00:00Z")
				queue(holder(w, p, "pool-01"), "2026-03-02T06:00:00Z")
			},
		},
		"SameTimeNameAhead": {
			reason: "Queued at the same time, the pool named first is ahead of the holder.",
			edit: func(w *world, p *pool, _ *gates) {
				queue(p, "2026-03-02T06:00:00Z")
				queue(holder(w, p, "pool-01"), "2026-03-02T06:00:00Z")
			},
		},
		"SameTimeNameBehind": {
			reason: "Queued at the same time, the pool named after the holder is behind it.",
			edit: func(w *world, p *pool, _ *gates) {
				queue(p, "2026-03-02T06:00:00Z")
				queue(holder(w, p, "pool-0"), "2026-03-02T06:00:00Z")
			},
			want: heldSequence,
		},
		"HolderNotQueued": {
			reason: "A holder with no place in the queue holds no pool but itself.",
			edit: func(w *world, p *pool, _ *gates) {
				queue(p, "2026-03-02T06:00:00Z")
				holder(w, p, "pool-0")
			},
		},
		"WindowBeforeSequence": {
			reason: "A closed window comes before the sequence hold.",
			edit: func(w *world, p *pool, _ *gates) {
				w.addPool(w.clusters[0], "pool-01", p.spec)
				p.annotations[annotationHoldSeq], p.labels[labelWindow] = "true", "closed"
			},
			want: heldWindow,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			w, p := handMade(t, false)
			g := windows()
			tc.edit(w, p, &g)
			if err := w.setGates(g); err != nil {
				t.Fatal(err)
			}
			w.queuedAfterHolder = w.queuedAfterHolders()
			if got := w.held(p); got != tc.want {
				t.Errorf("%s\nheld(...): want %q, got %q", tc.reason, tc.want, got)
			}
		})
	}
}

// queue sets the rollout-queued-since annotation of the pool's
// MachineDeployments, as the function does.
func queue(p *pool, since string) {
	for _, o := range p.composed {
		if o.id.kind == kindMachineDeployment {
			o.annots = strMap(map[string]string{annotationQueued: since})
		}
	}
}

// holder adds a pool of the cluster of p, holding the sequence, with a
// MachineDeployment.
func holder(w *world, p *pool, name string) *pool {
	h := w.addPool(w.clusters[0], name, p.spec)
	h.annotations[annotationHoldSeq] = "true"
	addComposed(w, h, "machinedeployment-eu-west-1a", kindMachineDeployment, "c-0000-"+name+"-eu-west-1a", &mdSpec{})
	return h
}

func TestConcurrency(t *testing.T) {
	type got struct {
		N     int
		Valid bool
	}
	cases := map[string]struct {
		reason     string
		policy     int
		annotation string // "" for none.
		want       got
	}{
		"Default":        {reason: "Neither the policy nor the Cluster says: 1.", want: got{1, true}},
		"Policy":         {reason: "The policy's concurrency.", policy: 3, want: got{3, true}},
		"Annotation":     {reason: "The Cluster's annotation wins over the policy.", policy: 3, annotation: "2", want: got{2, true}},
		"NotANumber":     {reason: "An annotation that is not an integer is no concurrency: the function holds.", policy: 3, annotation: "two", want: got{0, false}},
		"LessThanOne":    {reason: "Nor is one below 1.", annotation: "0", want: got{0, false}},
		"AnnotationHigh": {reason: "An annotation above the policy's raises it.", policy: 1, annotation: "100", want: got{100, true}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			w, _ := handMade(t, false)
			w.gates.concurrency = tc.policy
			if tc.annotation != "" {
				w.clusters[0].annotations[annotationConcurrency] = tc.annotation
			}
			var g got
			g.N, g.Valid = w.concurrency(w.clusters[0])
			if diff := cmp.Diff(tc.want, g); diff != "" {
				t.Errorf("%s\nconcurrency(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}
