package fleetsim

import (
	"context"
	"flag"
	"testing"
)

// Flags size the fleet: the defaults are CI-sized; the full size is
// -fleet.clusters=1000 -fleet.pools=10 (10,000 pools).
var (
	flagClusters = flag.Int("fleet.clusters", 50, "clusters of the simulated fleet")
	flagPools    = flag.Int("fleet.pools", 10, "FleetNodePools per cluster")
	flagSeed     = flag.Uint64("fleet.seed", 1, "seed of the fleet's shapes and events")
	flagSteps    = flag.Int("fleet.steps", 200, "the most steps to simulate")
	flagWave     = flag.Int("fleet.wave", 0, "control planes starting an upgrade per step (0: a tenth of the clusters)")
	flagCache    = flag.Int("fleet.cache", -1, "the function's --cache-size (-1: its default)")
	flagLag      = flag.Float64("fleet.lag", 0.2, "probability that Cluster API does not act on a MachineDeployment in a step")
)

// TestFleetModel drives a fleet through channel bumps, staggered control
// plane upgrades, class changes and autoscaling with the real function in
// the loop, under the rollout gates (pauses, deferrals, maintenance windows,
// concurrency 1, 2 and 3, a held sequence), and requires no invariant
// violated, a converged fleet, every gate seen holding a pool, and the
// pools of a cluster of concurrency 1 rolled one at a time.
func TestFleetModel(t *testing.T) {
	cfg := Config{
		Clusters: *flagClusters, PoolsPerCluster: *flagPools, Seed: *flagSeed,
		MaxSteps: *flagSteps, Wave: *flagWave, CacheSize: *flagCache, Lag: *flagLag,
	}
	rep := simulate(t, "fleet simulation", cfg, defaultSchedule())
	if cfg.Clusters < 10 {
		return // Not every kind of cluster of the schedule exists.
	}
	for _, reason := range []string{heldPaused, heldDeferred, heldWindow, "Concurrency", heldSequence, "ControlPlane"} {
		if rep.HeldBy[reason] == 0 {
			t.Errorf("no pool was held by %s: the schedule's gate did not hold, or the function did not report it", reason)
		}
	}
	// The invariant bounds the pools rolling; this requires them rolling.
	for n, want := range map[int]int{1: 1, 2: 2, 3: 3} {
		if got := rep.PeakRolling[n]; got != want {
			t.Errorf("the most pools of a cluster of concurrency %d rolling at once: got %d, want %d", n, got, want)
		}
	}
}

// simulate runs the simulation on a schedule with the real function, logs
// its report, and fails the test on every violation (the first 20 listed)
// and if the fleet did not converge.
func simulate(t *testing.T, what string, cfg Config, s schedule) *Report {
	t.Helper()
	rep, err := run(context.Background(), cfg, s, nil)
	if err != nil {
		t.Fatalf("run(%+v): %v", cfg, err)
	}
	t.Logf("%s, %d clusters x %d pools (seed %d):\n%s", what, cfg.Clusters, cfg.PoolsPerCluster, cfg.Seed, rep.Table())
	for i, v := range rep.Violations {
		if i == 20 {
			t.Errorf("... and %d more violations", rep.ViolationCount-i)
			break
		}
		t.Errorf("violation: %s", v)
	}
	if rep.ConvergedAt < 0 {
		t.Errorf("the fleet did not converge in %d steps: %s (%d not converged)", rep.Steps, rep.Unconverged, rep.UnconvergedPools)
	}
	return rep
}
