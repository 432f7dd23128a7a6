package fleetsim

import (
	"flag"
	"testing"
)

// Flags size the waves' fleet: the defaults are CI-sized; issue #14's size
// is -waves.clusters=1000 -waves.pools=10 (10,000 pools).
var (
	flagWaveClusters = flag.Int("waves.clusters", 20, "clusters of the fleet rolled in waves")
	flagWavePools    = flag.Int("waves.pools", 3, "FleetNodePools per cluster of the fleet rolled in waves")
)

// TestWaves rolls a channel bump through three waves (canary, staging, the
// rest) with a failing canary pool, with the real function in the loop, and
// requires no invariant violated (WaveOrder and HaltRespected among them,
// judged by the model from the machines), a converged fleet, the waves
// halted while the canary failed, and each wave started only after the one
// before was at the target and soaked.
func TestWaves(t *testing.T) {
	cfg := Config{Clusters: *flagWaveClusters, PoolsPerCluster: *flagWavePools, Seed: *flagSeed, MaxSteps: 120, Lag: *flagLag, CacheSize: *flagCache}
	s := wavesSchedule()
	rep := simulate(t, "fleet in waves", cfg, s)
	if rep.HaltedSteps == 0 || rep.HeldBy["Halted"] == 0 {
		t.Errorf("the failing canary halted the waves in %d steps of the model and %d reconciles of the function, want both some", rep.HaltedSteps, rep.HeldBy["Halted"])
	}
	// Each wave starts after the one before settled and soaked, which
	// happens after the canary recovered.
	order := []string{"canary", "staging", noWave}
	for i, name := range order {
		start, ok := rep.WaveStarts[name]
		if !ok {
			t.Errorf("wave %s never started a rollout", name)
			continue
		}
		if i == 0 {
			continue
		}
		prev := order[i-1]
		settled, ok := rep.WaveSettled[prev]
		if !ok || start < settled {
			t.Errorf("wave %s started at step %d, before wave %s was at the target and soaked (step %d, known %t)", name, start, prev, settled, ok)
		}
		if start < s.failUntil {
			t.Errorf("wave %s started at step %d, before the failing canary recovered at step %d", name, start, s.failUntil)
		}
	}
}
