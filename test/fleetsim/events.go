package fleetsim

import (
	"fmt"
	"slices"
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
}

// defaultSchedule bumps the channel twice (v1.34.1 while every control
// plane runs v1.33.4, then v1.35.0 while most are still upgrading), starts
// the control plane upgrades two steps after the first bump, moves a tenth
// of the pools to another class twice, and autoscales for 20 steps.
func defaultSchedule() schedule {
	return schedule{
		bumps:          map[int]string{3: ladder[1], 10: ladder[2]},
		cpStart:        5,
		classChanges:   map[int]float64{6: 0.1, 14: 0.1},
		autoscaleUntil: 20,
		autoscale:      0.05,
	}
}

// last is the step of the last scheduled event.
func (s schedule) last() int {
	l := max(s.autoscaleUntil, s.cpStart)
	for k := range s.bumps {
		l = max(l, k)
	}
	for k := range s.classChanges {
		l = max(l, k)
	}
	return l
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
