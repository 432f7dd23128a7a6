package fleetsim

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/crossplane/function-sdk-go/errors"

	"github.com/fleetnodepool/function-fleetnodepool/fn/compose"
	"github.com/fleetnodepool/function-fleetnodepool/fn/plan"
	"github.com/fleetnodepool/function-fleetnodepool/fn/providers"
	"github.com/fleetnodepool/function-fleetnodepool/test/invariant"
)

// A Config sizes a simulation.
type Config struct {
	// Clusters and PoolsPerCluster size the fleet.
	Clusters, PoolsPerCluster int
	// Seed makes the fleet's shapes and events reproducible.
	Seed uint64
	// MaxSteps bounds the simulation; it stops earlier once converged.
	MaxSteps int
	// Wave is how many control planes start an upgrade per step; 0 means a
	// tenth of the clusters.
	Wave int
	// CacheSize is the function's --cache-size; negative keeps its default.
	CacheSize int
	// Lag is the probability that Cluster API's controller of a
	// MachineDeployment does not act in a step.
	Lag float64
	// StopAtViolation stops the simulation at the first check that finds a
	// violation: the broken-function tests stop there.
	StopAtViolation bool
	// Quiet reconciles a pool only when something it reads changed (an
	// object of its namespace, the policy), the gates the model computes
	// for it changed (a window opened or closed), or the next rotation its
	// status names is due; otherwise every pool is reconciled every step,
	// as Crossplane's poll (a minute) does in a step of an hour. A quiet
	// pool's answer would be the function's cached one, applying nothing,
	// so long as the function's plan depends on time only through its
	// gates and rotations: quiet simulations are what a long run of a big
	// fleet can afford. Not with waves: the markers are read across
	// namespaces.
	Quiet bool
	// SizeRequests measures every request's size (Report.LargestRequest):
	// a quarter of the model's time on the part-1 schedule, so only where
	// asked.
	SizeRequests bool
}

// maxViolations bounds the violations a Report keeps; it counts them all.
const maxViolations = 1000

// A Report is what a simulation measured and found.
type Report struct {
	Clusters, Pools int
	// Steps run; ConvergedAt is the step the fleet converged at, -1 if it
	// did not, and Unconverged then says why and how many pools are not.
	Steps, ConvergedAt int
	Unconverged        string
	UnconvergedPools   int
	// Wall is the whole simulation's wall time.
	Wall time.Duration
	// Reconciles are Crossplane reconciles; Calls are RunFunction calls.
	Reconciles, Calls int
	// FnWall and FnCPU are the wall and process CPU time spent in
	// RunFunction; Mallocs and Bytes what it allocated.
	FnWall, FnCPU  time.Duration
	Mallocs, Bytes uint64
	// Latencies of the calls answered from the function's cache (the
	// previous answer, unchanged) and of those planned afresh.
	Cached, Planned latencies
	UnchangedAnswer int
	// Violations found (the first maxViolations) and their number.
	Violations     []Violation
	ViolationCount int
	// Fleet activity.
	MachineSets, MachinesCreated, MachinesDeleted  int
	ControlPlaneUpgrades, ClassChanges, Autoscales int
	Applies, Deletes                               int
	// HeldBy counts the reconciles whose pool the function reported held
	// (status.rollout), by reason; Gated those whose pool the model held
	// (paused, deferred, window, sequence), whether or not a change was
	// pending.
	HeldBy, Gated map[string]int
	// PeakRolling is, by rollout concurrency, the most pools of one
	// Cluster of that concurrency seen rolling at once.
	PeakRolling map[int]int
	// LargestRequest is the largest RunFunctionRequest in bytes (proto.Size)
	// and the pool it was for; MarkerList and MarkerItems the largest list
	// of rollout markers a request carried, in bytes and markers.
	LargestRequest          int
	LargestRequestPool      string
	MarkerList, MarkerItems int
	// WaveStarts and WaveSettled are, by wave, the step its first pool
	// started a rollout of the last target and the step all its pools were
	// at that target and soaked (model's judgement); HaltedSteps the steps
	// a wave was halted.
	WaveStarts, WaveSettled map[string]int
	HaltedSteps             int
	// Rotation is what the simulation measured of node rotations, where
	// the policy has a max node age.
	Rotation RotationReport
}

func (r *Report) add(vs ...Violation) {
	r.ViolationCount += len(vs)
	r.Violations = append(r.Violations, vs[:min(len(vs), max(maxViolations-len(r.Violations), 0))]...)
}

// Run simulates a fleet with the real function in the loop: each step the
// scheduled events, one Crossplane reconcile of every pool, a check of the
// invariants, one Cluster API step, and another check; until the fleet
// converges after the last event, or MaxSteps.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	return run(ctx, cfg, defaultSchedule(), nil)
}

// function is the real function as fn/main.go wires it, on the model's
// clock.
func function(cfg Config, now func() time.Time) runner {
	opts := []compose.Option{compose.WithPlanner(plan.New(plan.WithProviders(providers.All()...))), compose.WithClock(now)}
	if cfg.CacheSize >= 0 {
		opts = append(opts, compose.WithCacheSize(cfg.CacheSize))
	}
	return compose.New(opts...)
}

// run is Run on a schedule, with the function wrapped if wrap is not nil:
// broken on purpose.
func run(ctx context.Context, cfg Config, s schedule, wrap func(runner) runner) (*Report, error) {
	if cfg.Clusters <= 0 || cfg.PoolsPerCluster <= 0 {
		return nil, errors.Errorf(errFmtFleet, cfg.Clusters, cfg.PoolsPerCluster)
	}
	start := time.Now()
	wave := cfg.Wave
	if wave <= 0 {
		wave = (cfg.Clusters + 9) / 10
	}
	w, err := newWorld(cfg.Seed, ladder[0])
	if err != nil {
		return nil, err
	}
	w.populate(cfg.Clusters, cfg.PoolsPerCluster)
	if err := w.setup(s); err != nil {
		return nil, err
	}
	fn := function(cfg, w.now)
	if wrap != nil {
		fn = wrap(fn)
	}

	rep := &Report{Clusters: cfg.Clusters, Pools: len(w.pools), ConvergedAt: -1}
	m := &meter{sizeRequests: cfg.SizeRequests}
	for w.step = 0; w.step < cfg.MaxSteps; w.step++ {
		if err := w.events(s, wave); err != nil {
			return nil, errors.Wrapf(err, "step %d", w.step)
		}
		m.sizes.reset()
		vs, n, err := w.reconcileAll(ctx, fn, m, cfg.Quiet && len(w.gates.waves) == 0)
		if err != nil {
			return nil, errors.Wrapf(err, "step %d", w.step)
		}
		rep.Reconciles += n
		vs = append(vs, w.check()...)
		w.measureRotations()
		if !cfg.StopAtViolation || len(vs) == 0 {
			w.rollout(cfg.Lag)
			vs = append(vs, w.check()...)
			w.measureRotations()
		}
		rep.add(dedupe(vs)...)
		rep.Steps = w.step + 1
		if cfg.StopAtViolation && len(vs) > 0 {
			break
		}
		if w.step < s.last() {
			continue
		}
		if rep.Unconverged, rep.UnconvergedPools = unsettled(w); rep.Unconverged == "" {
			rep.ConvergedAt = w.step
			break
		}
	}
	rep.Wall = time.Since(start)
	rep.Calls, rep.FnWall, rep.FnCPU, rep.Mallocs, rep.Bytes = m.calls, m.wall, m.cpu, m.mallocs, m.bytes
	rep.Cached, rep.Planned, rep.UnchangedAnswer = m.cached.summary(), m.planned.summary(), m.unchangedAnswer
	st := w.stats
	rep.MachineSets, rep.MachinesCreated, rep.MachinesDeleted = st.machineSets, st.machinesCreated, st.machinesDeleted
	rep.ControlPlaneUpgrades, rep.ClassChanges, rep.Autoscales = st.cpUpgrades, st.classChanges, st.autoscales
	rep.Applies, rep.Deletes = st.applies, st.deletes
	rep.HeldBy, rep.Gated, rep.PeakRolling = st.heldBy, st.gated, st.peakRolling
	rep.LargestRequest, rep.LargestRequestPool = m.sizes.largest, m.sizes.largestPool
	rep.MarkerList, rep.MarkerItems = m.sizes.list, m.sizes.listItems
	rep.WaveStarts, rep.WaveSettled, rep.HaltedSteps = w.waves.firstStart, w.waves.settled, w.waves.haltedSteps
	rep.Rotation = w.rotationReport()
	return rep, nil
}

const errFmtFleet = "a fleet needs clusters and pools, not %d and %d"

// reconcileAll reconciles every pool once, as Crossplane does (only those
// whose inputs changed if quiet: Config.Quiet): the function is called (in
// measured batches) until each pool's requirements settle, each final
// response is checked, then applied. It returns how many pools it
// reconciled.
func (w *world) reconcileAll(ctx context.Context, fn runner, m *meter, quiet bool) ([]Violation, int, error) {
	w.queuedAfterHolder = w.queuedAfterHolders()
	w.judgeWaves()
	all := make([]*reconcile, 0, len(w.pools))
	for _, p := range w.pools {
		rs, held := readState{w.nsRV[p.namespace], p.rv, w.policy}, w.held(p)
		if quiet && p.requirements != nil && rs == p.seen && held == p.heldSeen && !w.rotationDue(p) {
			continue
		}
		p.seen, p.heldSeen = rs, held
		all = append(all, w.newReconcile(p))
	}
	for batch := all; len(batch) > 0; {
		if err := m.run(ctx, fn, batch); err != nil {
			return nil, 0, err
		}
		var next []*reconcile
		for _, r := range batch {
			if !w.settle(r) {
				next = append(next, r)
			}
		}
		batch = next
	}
	var vs []Violation
	for _, r := range all {
		if r.err != nil {
			vs = append(vs, Violation{w.step, invariant.Violation{Rule: RuleRequirements, Pool: r.pool.String(), Object: "FleetNodePool/" + r.pool.String(), Detail: r.err.Error()}})
		}
		vs = append(vs, checkResponse(w.step, r.pool, r.rsp)...)
		if err := w.apply(r); err != nil {
			return nil, 0, err
		}
		if st := at(r.pool.status.GetStructValue(), "rollout").GetStructValue(); stringAt(st, "state") == "Held" {
			w.stats.heldBy[stringAt(st, "reason")]++
		}
		if why := w.held(r.pool); why != "" {
			w.stats.gated[why]++
		}
	}
	return vs, len(all), nil
}

// dedupe drops repeated violations: a state checked twice in a step.
func dedupe(vs []Violation) []Violation {
	seen := make(map[Violation]bool, len(vs))
	out := vs[:0]
	for _, v := range vs {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// counts formats counts by key, sorted.
func counts[K cmp.Ordered](m map[K]int) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%v: %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// Table formats the report.
func (r *Report) Table() string {
	per := func(d time.Duration, n int) string {
		if n == 0 {
			return "-"
		}
		return fmt.Sprintf("%d ns", d.Nanoseconds()/int64(n))
	}
	perN := func(v uint64, n int) string {
		if n == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f", float64(v)/float64(n))
	}
	converged := "no: " + r.Unconverged + fmt.Sprintf(" (%d not converged)", r.UnconvergedPools)
	if r.ConvergedAt >= 0 {
		converged = fmt.Sprintf("yes, at step %d", r.ConvergedAt)
	}
	rows := [][2]string{
		{"clusters", fmt.Sprint(r.Clusters)},
		{"pools", fmt.Sprint(r.Pools)},
		{"steps", fmt.Sprint(r.Steps)},
		{"reconciles", fmt.Sprint(r.Reconciles)},
		{"RunFunction calls", fmt.Sprint(r.Calls)},
		{"answers unchanged (function cache)", fmt.Sprintf("%d (%.1f%%)", r.UnchangedAnswer, 100*float64(r.UnchangedAnswer)/float64(max(r.Calls, 1)))},
		{"wall (whole simulation)", r.Wall.Round(time.Millisecond).String()},
		{"wall in RunFunction", r.FnWall.Round(time.Millisecond).String()},
		{"CPU in RunFunction", r.FnCPU.Round(time.Millisecond).String()},
		{"CPU/call", per(r.FnCPU, r.Calls)},
		{"CPU/reconcile", per(r.FnCPU, r.Reconciles)},
		{"wall/call (mean)", per(r.FnWall, r.Calls)},
		{"wall/call cached answer (n, p50, p99)", r.Cached.String()},
		{"wall/call planned (n, p50, p99)", r.Planned.String()},
		{"allocs/call", perN(r.Mallocs, r.Calls)},
		{"bytes/call", perN(r.Bytes, r.Calls)},
		{"MachineSets created", fmt.Sprint(r.MachineSets)},
		{"machines created, deleted", fmt.Sprintf("%d, %d", r.MachinesCreated, r.MachinesDeleted)},
		{"control plane upgrades", fmt.Sprint(r.ControlPlaneUpgrades)},
		{"class changes, autoscaler resizes", fmt.Sprintf("%d, %d", r.ClassChanges, r.Autoscales)},
		{"composed applies, deletes", fmt.Sprintf("%d, %d", r.Applies, r.Deletes)},
		{"pool reconciles held, by reason", counts(r.HeldBy)},
		{"pool reconciles gated in the model", counts(r.Gated)},
		{"peak pools rolling, by concurrency", counts(r.PeakRolling)},
		{"largest request (bytes, pool)", fmt.Sprintf("%d, %s", r.LargestRequest, cmp.Or(r.LargestRequestPool, "not measured"))},
		{"largest marker list (bytes, markers, bytes/marker)", fmt.Sprintf("%d, %d, %.0f", r.MarkerList, r.MarkerItems, float64(r.MarkerList)/float64(max(r.MarkerItems, 1)))},
		{"waves: first start, settled and soaked (step)", waveSteps(r.WaveStarts, r.WaveSettled)},
		{"steps with a wave halted", fmt.Sprint(r.HaltedSteps)},
	}
	if rt := r.Rotation; rt.MaxNodeAge > 0 {
		rows = append(rows, [][2]string{
			{"rotation: max node age, spread", fmt.Sprintf("%s, %s", rt.MaxNodeAge, rt.Spread)},
			{"rotations asked (pool-steps), MachineSets made", fmt.Sprintf("%d, %d", rt.Asked, rt.Sets)},
			{"pools rotated at least once, twice; not at all; no machines", fmt.Sprintf("%d, %d; %d; %d", rt.Rotated, rt.RotatedTwice, len(rt.Unrotated), rt.Idle)},
			{"peak pools rotating at once (step)", fmt.Sprintf("%d (%d)", rt.PeakRotating, rt.PeakRotatingStep)},
			{"peak rotation starts per step (step)", fmt.Sprintf("%d (%d)", rt.PeakAsked, rt.PeakAskedStep)},
			{"rotation of a MachineDeployment: mean, longest (steps); most machines", fmt.Sprintf("%.1f, %d; %d", rt.MeanSteps, rt.MaxSteps, rt.Largest)},
			{"oldest machine seen (pool, step)", fmt.Sprintf("%s (%s, %d)", rt.OldestNode, rt.OldestPool, rt.OldestStep)},
		}...)
	}
	rows = append(rows, [][2]string{
		{"violations", fmt.Sprint(r.ViolationCount)},
		{"converged", converged},
	}...)
	width := 0
	for _, row := range rows {
		width = max(width, len(row[0]))
	}
	var b strings.Builder
	for _, row := range rows {
		b.WriteString(row[0] + strings.Repeat(" ", width+2-len(row[0])) + row[1] + "\n")
	}
	return b.String()
}
