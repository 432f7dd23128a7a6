package fleetsim

import (
	"maps"
	"slices"
	"time"
)

// Node rotation as the model sees it (issue #21): the policy's
// input.rotation gives every pool a max node age; the function rotates a
// MachineDeployment by setting spec.rollout.after to the time its newest
// MachineSet is due (its creation + maxNodeAge - spread + the pool's
// offset in [0, spread)), gated as a disruptive change; the Cluster API
// model (capi.go) then replaces the MachineSets created before it with a
// new one of the same template. The model counts what it sees: the
// rotations the function asks for (a new spec.rollout.after on a running
// MachineDeployment), the MachineSets made for them, the pools rotating at
// once, and the age of the oldest machine running.

// A rotationSpec is the policy's input.rotation; a zero maxAge is none.
type rotationSpec struct {
	maxAge, spread time.Duration
}

// value is input.rotation as the Policy input spells it, nil for none.
func (r rotationSpec) value() map[string]any {
	if r.maxAge <= 0 {
		return nil
	}
	return map[string]any{"maxNodeAge": r.maxAge.String(), "spread": r.spread.String()}
}

// rotationCounters count the fleet's rotations.
type rotationCounters struct {
	// asked is, by step, how many pools asked for a rotation (a new
	// spec.rollout.after on a running MachineDeployment); lastAsked the
	// step each pool last did, so that a pool counts once a step.
	asked     map[int]int
	lastAsked map[*pool]int
	// sets counts the MachineSets made for a rotation, by MachineDeployment
	// (namespace/name); ran says which MachineDeployments ran machines
	// (one of no machines, a zone of an autoscaled pool at its minimum,
	// has nothing to rotate).
	sets map[string]int
	ran  map[string]bool
	// peakRotating is the most pools rotating at once (a MachineDeployment
	// running machines on an outdated MachineSet beside a rotation's) and
	// its step; oldest the age of the oldest machine seen running, its pool
	// and step.
	peakRotating, peakRotatingStep int
	// since is, by MachineDeployment, the step its rotation was first seen
	// under way; durations are the rotations' lengths in steps, from then
	// until no outdated MachineSet is left.
	since      map[string]int
	durations  []int
	oldest     time.Duration
	oldestPool string
	oldestStep int
}

func newRotationCounters() rotationCounters {
	return rotationCounters{asked: map[int]int{}, lastAsked: map[*pool]int{}, sets: map[string]int{}, ran: map[string]bool{}, since: map[string]int{}}
}

// askedBy records that the pool asked for a rotation at step.
func (c *rotationCounters) askedBy(p *pool, step int) {
	if last, ok := c.lastAsked[p]; ok && last == step {
		return
	}
	c.lastAsked[p] = step
	c.asked[step]++
}

// rotated records a MachineSet made for a rotation of the MachineDeployment.
func (c *rotationCounters) rotated(o *composed) { c.sets[o.id.namespace+"/"+o.id.name]++ }

// measureRotations records the pools rotating now and the age of the
// oldest machine running: the model's time less its MachineSet's creation
// (a MachineSet's first machine is made with it).
func (w *world) measureRotations() {
	if w.rotation.maxAge <= 0 {
		return
	}
	c, now := &w.stats.rotations, w.now()
	rotating := map[string]bool{} // By pool.
	under := map[string]bool{}    // By MachineDeployment.
	for _, ns := range sortedKeys(w.sets) {
		type md struct {
			sets     int
			rotation bool
		}
		mds := map[string]*md{}
		for _, n := range sortedKeys(w.sets[ns]) {
			ms := w.sets[ns][n]
			if mds[ms.md] == nil {
				mds[ms.md] = &md{}
			}
			mds[ms.md].sets++
			mds[ms.md].rotation = mds[ms.md].rotation || ms.rotation
			if ms.replicas > 0 {
				c.ran[ns+"/"+ms.md] = true
			}
			if age := now.Sub(ms.created); ms.replicas > 0 && age > c.oldest {
				c.oldest, c.oldestPool, c.oldestStep = age, ns+"/"+ms.labels[labelPool], w.step
			}
		}
		for _, n := range sortedKeys(w.sets[ns]) {
			if ms := w.sets[ns][n]; mds[ms.md].sets > 1 && mds[ms.md].rotation {
				rotating[ns+"/"+ms.labels[labelPool]] = true
				under[ns+"/"+ms.md] = true
			}
		}
	}
	for md := range under {
		if _, ok := c.since[md]; !ok {
			c.since[md] = w.step
		}
	}
	for _, md := range sortedKeys(c.since) {
		if !under[md] {
			c.durations = append(c.durations, w.step-c.since[md])
			delete(c.since, md)
		}
	}
	if len(rotating) > c.peakRotating {
		c.peakRotating, c.peakRotatingStep = len(rotating), w.step
	}
}

// A RotationReport is what a simulation measured of the rotations.
type RotationReport struct {
	// MaxNodeAge and Spread are the policy's.
	MaxNodeAge, Spread time.Duration
	// Asked counts the pools' requests for a rotation over all steps (a
	// pool counts once a step); PeakAsked is the most in one step, at
	// PeakAskedStep.
	Asked, PeakAsked, PeakAskedStep int
	// Sets counts the MachineSets made for rotations.
	Sets int
	// Rotated and RotatedTwice count the pools every MachineDeployment of
	// which that ran machines made a rotation's MachineSet at least once
	// and twice; Unrotated names the pools that did not rotate (sorted);
	// Idle counts the pools none of whose MachineDeployments ran machines.
	Rotated, RotatedTwice, Idle int
	Unrotated                   []string
	// PeakRotating is the most pools rotating at once, at PeakRotatingStep.
	PeakRotating, PeakRotatingStep int
	// MeanSteps and MaxSteps are the mean and longest rotation of a
	// MachineDeployment, in steps, from the rotation's MachineSet made to
	// no outdated one left; Largest is the most machines a
	// MachineDeployment asks for.
	MeanSteps float64
	MaxSteps  int
	Largest   int32
	// OldestNode is the age of the oldest machine seen running, of
	// OldestPool, at OldestStep.
	OldestNode time.Duration
	OldestPool string
	OldestStep int
}

// rotationReport sums the rotation counters up.
func (w *world) rotationReport() RotationReport {
	c := w.stats.rotations
	r := RotationReport{
		MaxNodeAge: w.rotation.maxAge, Spread: w.rotation.spread,
		PeakRotating: c.peakRotating, PeakRotatingStep: c.peakRotatingStep,
		OldestNode: c.oldest, OldestPool: c.oldestPool, OldestStep: c.oldestStep,
	}
	for _, step := range slices.Sorted(maps.Keys(c.asked)) {
		n := c.asked[step]
		r.Asked += n
		if n > r.PeakAsked {
			r.PeakAsked, r.PeakAskedStep = n, step
		}
	}
	for _, n := range c.sets {
		r.Sets += n
	}
	sum := 0
	for _, d := range c.durations {
		sum += d
		r.MaxSteps = max(r.MaxSteps, d)
	}
	r.MeanSteps = float64(sum) / float64(max(len(c.durations), 1))
	for _, p := range w.pools {
		least, mds := -1, 0
		for _, o := range p.composed {
			id := o.id.namespace + "/" + o.id.name
			if o.id.kind != kindMachineDeployment || !c.ran[id] {
				continue
			}
			r.Largest = max(r.Largest, o.md.replicas)
			mds++
			if n := c.sets[id]; least < 0 || n < least {
				least = n
			}
		}
		switch {
		case mds == 0:
			r.Idle++
		case least == 0:
			r.Unrotated = append(r.Unrotated, p.String())
		case least >= 2:
			r.RotatedTwice++
			fallthrough
		default:
			r.Rotated++
		}
	}
	slices.Sort(r.Unrotated)
	return r
}

// rotationSchedule is a fleet whose pools are all created at step 0 with a
// max node age and spread, and nothing else happens for until steps: no
// channel bump, class change nor autoscaling. Its gates hold rotations
// sometimes: three pools of a Cluster roll at once (two in a tenth of the
// Clusters), and every pool starts only in a daily window closed from
// 12:00 to 15:00 UTC (rotationWindowClosed). No Cluster rolls one pool at a
// time: its P pools would queue unless the spread were at least P
// rotations long, and a queue is not what this schedule measures.
func rotationSchedule(maxAge, spread time.Duration, until int) schedule {
	return schedule{
		gates: gates{
			concurrency:   3,
			windows:       []window{mustWindow("daytime", nil, "15:00", 24*time.Hour-rotationWindowClosed, "")},
			defaultWindow: "daytime",
		},
		clusterConcurrency: map[int]string{2: "2"},
		rotation:           rotationSpec{maxAge: maxAge, spread: spread},
		until:              until - 1,
	}
}

// rotationWindowClosed is how long the rotation schedule's window is
// closed each day, from 12:00 UTC; rotationConcurrency the least
// concurrency of its Clusters.
const (
	rotationWindowClosed = 3 * time.Hour
	rotationConcurrency  = 2
)

// rotationDue reports whether the next rotation the pool's status names
// (status.rotation.nextRotation) is due: a quiet simulation reconciles it
// then, as the function's wake would have Crossplane do.
func (w *world) rotationDue(p *pool) bool {
	next, err := time.Parse(time.RFC3339, stringAt(p.status.GetStructValue(), "rotation", "nextRotation"))
	return err == nil && !w.now().Before(next)
}
