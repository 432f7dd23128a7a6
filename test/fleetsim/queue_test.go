package fleetsim

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestQueueHeldThroughResize is the fleet model's smallest queue: a cluster
// of concurrency 1 with a fixed pool and an autoscaled one, both waiting to
// roll to a new version. The fixed pool, first by name, starts; the
// cluster-autoscaler then resizes the autoscaled pool (a new generation,
// not yet observed by Cluster API), which is no rollout: it must keep its
// place in the queue until the fixed pool is done, then start.
func TestQueueHeldThroughResize(t *testing.T) {
	w, err := newWorld(1, ladder[0])
	if err != nil {
		t.Fatal(err)
	}
	c := w.addCluster("c-0000", "fleet-0000", ladder[0])
	w.addPool(c, "pool-00", poolSpec{class: "medium", zones: []string{"eu-west-1a"}, replicas: 3, min: -1, max: -1})
	scaled := w.addPool(c, "pool-01", poolSpec{class: "medium", zones: []string{"eu-west-1a"}, replicas: -1, min: 1, max: 4})
	if err := w.setGates(gates{concurrency: 1}); err != nil {
		t.Fatal(err)
	}
	fn, m := function(Config{CacheSize: -1}, w.now), &meter{}
	var vs []Violation
	step := func(event func()) {
		t.Helper()
		event()
		got, _, err := w.reconcileAll(context.Background(), fn, m, false)
		if err != nil {
			t.Fatalf("step %d: %v", w.step, err)
		}
		vs = append(vs, got...)
		vs = append(vs, w.check()...)
		w.rollout(0)
		vs = append(vs, w.check()...)
		w.step++
	}
	version := func(p *pool) string {
		return p.composed["machinedeployment-eu-west-1a"].md.template.version
	}
	// Created, and up.
	for range 5 {
		step(func() {})
	}
	// The channel and the control plane move on: both pools queue.
	step(func() {
		if err := w.setChannel(ladder[1]); err != nil {
			t.Fatal(err)
		}
		c.specVersion, c.statusVersion = ladder[1], ladder[1]
		w.touchCluster(c)
	})
	// pool-00 starts.
	step(func() {})
	// The autoscaler resizes pool-01 while pool-00 rolls.
	step(func() {
		o := scaled.composed["machinedeployment-eu-west-1a"]
		o.md.replicas++
		o.spec = with(o.spec, "replicas", num(o.md.replicas))
		o.generation++
		w.touch(o)
	})
	if diff := cmp.Diff([]Violation(nil), vs, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("violations: -want, +got:\n%s", diff)
	}
	got := map[string]string{"pool-00": version(w.pools[0]), "pool-01": version(scaled)}
	want := map[string]string{"pool-00": ladder[1], "pool-01": ladder[0]}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the pools' MachineDeployments' versions after the resize: -want, +got:\n%s", diff)
	}
	// Then pool-01's turn comes.
	for range 10 {
		step(func() {})
	}
	if diff := cmp.Diff([]Violation(nil), vs, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("violations, 10 steps later: -want, +got:\n%s", diff)
	}
	if v := version(scaled); v != ladder[1] {
		t.Errorf("pool-01, 10 steps later: asks for %s, want %s", v, ladder[1])
	}
}
