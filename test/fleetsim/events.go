package fleetsim

import (
	"fmt"
	"slices"
	"time"
)

// A schedule is what happens to the fleet when.
type schedule struct {
	// bumps are the platform team's channel bumps, by step.
	bumps map[int]string
	// cpStart is the first step control planes start upgrading.
	cpStart int
	// classChanges are the fractions of pools that change machine class,
	// by step.
	classChanges map[int]float64
	// The autoscaler resizes a fraction autoscale of the autoscaled
	// MachineDeployments each step until autoscaleUntil.
	autoscaleUntil int
	autoscale      float64

	// The rollout gates. gates are the policy's rollouts from step 0.
	gates gates
	// clusterConcurrency and clusterWindow annotate and label, from step
	// 0, the clusters whose index modulo 10 is the key; in a cluster of a
	// window, poolWindow labels its first pool (pool-00) with another.
	clusterConcurrency, clusterWindow map[int]string
	poolWindow                        string
	// concurrencyChanges change, by step, the concurrency annotation of
	// the clusters annotated with a key to its value.
	concurrencyChanges map[int]map[string]string
	// pauses pause the policy (true) or resume it (false), by step;
	// channelPauses set its paused channels, by step.
	pauses        map[int]bool
	channelPauses map[int][]string
	// defers defer a fraction of the pools, by step (one in five of them
	// with a value that is neither true nor false); undefer lifts every
	// deferral.
	defers  map[int]float64
	undefer int
	// holdSequence is the pool that holds its cluster's rollout sequence,
	// in the clusters of concurrency annotation holdIn, from step
	// holdFrom until holdUntil.
	holdSequence        string
	holdIn              string
	holdFrom, holdUntil int

	// The waves (gates.waves). clusterWave labels, from step 0, the
	// clusters whose index modulo 100 is a key with the wave of its value.
	// failPool of the first cluster of wave failIn fails: its machines of
	// version failVersion never become ready until step failUntil.
	clusterWave      map[int]string
	failPool, failIn string
	failVersion      string
	failUntil        int

	// rotation is the policy's max node age (rotation.go), from step 0;
	// the simulation runs at least until step until.
	rotation rotationSpec
	until    int
}

// defaultSchedule bumps the channel twice (v1.34.1 while every control
// plane runs v1.33.4, then v1.35.0 while most are still upgrading), starts
// the control plane upgrades two steps after the first bump, moves a tenth
// of the pools to another class twice, and autoscales for 20 steps.
//
// Its gates (an hour a step from Monday 00:00 UTC): three pools of a
// cluster roll at once, one or two in a tenth of the clusters each (the one
// raised to two at step 30); every pool starts only in a daily window
// closed from 12:00 to 15:00 UTC, a tenth of the clusters only on weekday
// evenings (20:00 UTC for 8h), another tenth from 07:00 Tokyo time for 8h
// (22:00 UTC); the policy pauses for two steps, the stable channel for two
// more; a tenth of the pools are deferred for 14 steps; one pool of each
// concurrency-2 cluster holds the sequence for 8.
func defaultSchedule() schedule {
	return schedule{
		bumps:          map[int]string{3: ladder[1], 10: ladder[2]},
		cpStart:        5,
		classChanges:   map[int]float64{6: 0.1, 14: 0.1},
		autoscaleUntil: 20,
		autoscale:      0.05,

		gates: gates{
			concurrency: 3,
			windows: []window{
				mustWindow("daytime", nil, "15:00", 21*time.Hour, ""),
				mustWindow("evening", []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}, "18:00", 12*time.Hour, ""),
				mustWindow("tokyo-morning", nil, "07:00", 12*time.Hour, "Asia/Tokyo"),
			},
			defaultWindow: "daytime",
		},
		clusterConcurrency: map[int]string{1: "1", 2: "2"},
		clusterWindow:      map[int]string{3: "evening", 4: "tokyo-morning"},
		concurrencyChanges: map[int]map[string]string{30: {"1": "2"}},
		poolWindow:         "daytime",
		pauses:             map[int]bool{7: true, 9: false},
		channelPauses:      map[int][]string{15: {poolChannel}, 17: nil},
		defers:             map[int]float64{2: 0.1},
		undefer:            16,
		holdSequence:       "pool-03",
		holdIn:             "2",
		holdFrom:           12,
		holdUntil:          20,
	}
}

// ungated is the default schedule without a gate: every pool of a cluster
// may roll at once, at any time.
func ungated() schedule {
	s := defaultSchedule()
	s.gates = gates{concurrency: 100}
	s.clusterConcurrency, s.clusterWindow, s.poolWindow, s.concurrencyChanges = nil, nil, "", nil
	s.pauses, s.channelPauses, s.defers, s.holdSequence = nil, nil, nil, ""
	return s
}

// mustWindow is a window of the schedule, which names only zones and
// starts that exist.
func mustWindow(name string, days []time.Weekday, start string, d time.Duration, zone string) window {
	win, err := newWindow(name, days, start, d, zone)
	if err != nil {
		panic(err)
	}
	return win
}

// last is the step of the last scheduled event.
func (s schedule) last() int {
	l := max(s.autoscaleUntil, s.cpStart, s.undefer, s.holdUntil, s.failUntil, s.until)
	for _, m := range []map[int]float64{s.classChanges, s.defers} {
		for k := range m {
			l = max(l, k)
		}
	}
	for k := range s.bumps {
		l = max(l, k)
	}
	for k := range s.pauses {
		l = max(l, k)
	}
	for k := range s.channelPauses {
		l = max(l, k)
	}
	for k := range s.concurrencyChanges {
		l = max(l, k)
	}
	return l
}

// setup applies the schedule's gates at step 0: the policy's rollouts and
// rotation, the clusters' concurrency annotations and window labels.
func (w *world) setup(s schedule) error {
	w.rotation = s.rotation
	for i, c := range w.clusters {
		if v, ok := s.clusterWave[i%100]; ok {
			w.setClusterMeta(c, c.labels, labelRolloutWave, v)
			if v == s.failIn && w.failing.pool == nil {
				if j := slices.IndexFunc(c.pools, func(p *pool) bool { return p.name == s.failPool }); j >= 0 {
					w.failing = failure{pool: c.pools[j], version: s.failVersion, until: s.failUntil}
				}
			}
		}
		if v, ok := s.clusterConcurrency[i%10]; ok {
			w.setClusterMeta(c, c.annotations, annotationConcurrency, v)
		}
		if v, ok := s.clusterWindow[i%10]; ok {
			w.setClusterMeta(c, c.labels, labelWindow, v)
			if s.poolWindow != "" {
				w.setPoolMeta(c.pools[0], c.pools[0].labels, labelWindow, s.poolWindow)
			}
		}
	}
	return w.setGates(s.gates)
}

// events applies the step's events.
func (w *world) events(s schedule, wave int) error {
	if v, ok := s.bumps[w.step]; ok {
		if err := w.setChannel(v); err != nil {
			return err
		}
		for _, c := range w.clusters {
			w.enqueue(c)
		}
	}
	if err := w.gateEvents(s); err != nil {
		return err
	}
	if w.step >= s.cpStart {
		w.controlPlanes(wave)
	}
	if f, ok := s.classChanges[w.step]; ok {
		for _, p := range w.pools {
			if w.rng.Float64() < f {
				p.setClass(nextClass(p.spec.class), w.next())
				w.stats.classChanges++
			}
		}
	}
	if w.step > 0 && w.step <= s.autoscaleUntil {
		w.autoscale(s.autoscale)
	}
	return nil
}

// gateEvents applies the step's pauses, deferrals and sequence holds.
func (w *world) gateEvents(s schedule) error {
	g, changed := w.gates, false
	if v, ok := s.pauses[w.step]; ok {
		g.paused, changed = v, true
	}
	if v, ok := s.channelPauses[w.step]; ok {
		g.pausedChannels, changed = v, true
	}
	if changed {
		if err := w.setGates(g); err != nil {
			return err
		}
	}
	if f, ok := s.defers[w.step]; ok {
		for _, p := range w.pools {
			if w.rng.Float64() >= f {
				continue
			}
			v := "true"
			if w.rng.IntN(5) == 0 {
				v = "soon" // Neither true nor false: it holds all the same.
			}
			w.setPoolMeta(p, p.annotations, annotationDefer, v)
		}
	}
	if w.step == s.undefer {
		for _, p := range w.pools {
			w.setPoolMeta(p, p.annotations, annotationDefer, "")
		}
	}
	for from, to := range s.concurrencyChanges[w.step] {
		for _, c := range w.clusters {
			if c.annotations[annotationConcurrency] == from {
				w.setClusterMeta(c, c.annotations, annotationConcurrency, to)
			}
		}
	}
	if w.step == s.holdFrom || w.step == s.holdUntil {
		v := "true"
		if w.step == s.holdUntil {
			v = ""
		}
		for _, c := range w.clusters {
			if c.annotations[annotationConcurrency] != s.holdIn || s.holdSequence == "" {
				continue
			}
			for _, p := range c.pools {
				if p.name == s.holdSequence {
					w.setPoolMeta(p, p.annotations, annotationHoldSeq, v)
				}
			}
		}
	}
	return nil
}

// setClass edits the pool's machine class.
func (p *pool) setClass(class string, rv int64) {
	p.spec.class = class
	p.generation++
	p.rv, p.body = rv, nil
}

// nextClass is another class of the catalog.
func nextClass(c string) string {
	cs := sortedKeys(classes)
	return cs[(slices.Index(cs, c)+1)%len(cs)]
}

// populate adds the fleet: clusters on the first version of the ladder,
// each with its pools in a few shapes: fixed (1-3 replicas) or autoscaled,
// over 1-3 zones, of a random class.
func (w *world) populate(clusters, pools int) {
	cs := sortedKeys(classes)
	for i := range clusters {
		c := w.addCluster(fmt.Sprintf("c-%04d", i), fmt.Sprintf("fleet-%04d", i), ladder[0])
		for j := range pools {
			s := poolSpec{class: cs[w.rng.IntN(len(cs))], replicas: -1, min: -1, max: -1}
			first, n := w.rng.IntN(len(zones)), 1+w.rng.IntN(len(zones))
			for k := range n {
				s.zones = append(s.zones, zones[(first+k)%len(zones)])
			}
			slices.Sort(s.zones)
			if w.rng.IntN(5) < 2 {
				s.min = 1 + w.rng.Int32N(3)
				s.max = s.min + 2 + w.rng.Int32N(4)
			} else {
				s.replicas = 1 + w.rng.Int32N(3)
			}
			w.addPool(c, fmt.Sprintf("pool-%02d", j), s)
		}
	}
}
