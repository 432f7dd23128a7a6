//go:build fleet

package fleet

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fleetnodepool/function-fleetnodepool/test/internal/fleet"
	"github.com/fleetnodepool/function-fleetnodepool/test/internal/sandbox"
	"github.com/fleetnodepool/function-fleetnodepool/test/invariant"
)

// xrController is the name of Crossplane's FleetNodePool controller, the
// controller label of its metrics.
const xrController = "composite/fleetnodepools.fleet.nodepool.dev"

// noise samples, every second, what wakes the pools' XRs (issue #20): the
// watch events of their sources by kind, Crossplane's reconciles of them
// and its watch circuit breaker's outcomes, and the pools whose breaker is
// open (Responsive=False), with the source it names.
type noise struct {
	sb     *sandbox.Sandbox
	c      client.Reader
	events *fleet.Events

	mu      sync.Mutex
	samples []noiseSample
}

type noiseSample struct {
	at     time.Time
	events map[string]int
	// reconciles, breaker and cpu are Crossplane's counters: XR
	// reconciles, breaker events by result (Allowed, Dropped,
	// HalfOpenAllowed) and "opens", and its CPU seconds.
	reconciles, cpu float64
	breaker         map[string]float64
	// unresponsive are the pools Responsive=False, with the kind of the
	// source their breaker names.
	unresponsive map[string]string
}

func (n *noise) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		n.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *noise) sample(ctx context.Context) {
	m, err := n.sb.CrossplaneMetrics(ctx, "circuit_breaker_", "controller_runtime_reconcile_total", "process_cpu_seconds_total")
	if err != nil {
		return
	}
	controller := map[string]string{"controller": xrController}
	s := noiseSample{
		at:           time.Now(),
		events:       n.events.Counts(),
		reconciles:   m.Sum("controller_runtime_reconcile_total", controller),
		cpu:          m.Sum("process_cpu_seconds_total", nil),
		breaker:      m.Values("circuit_breaker_events_total", "result", controller),
		unresponsive: map[string]string{},
	}
	s.breaker["opens"] = m.Sum("circuit_breaker_opens_total", controller)
	l := &unstructured.UnstructuredList{}
	l.SetAPIVersion("fleet.nodepool.dev/v1alpha1")
	l.SetKind("FleetNodePoolList")
	if err := n.c.List(ctx, l, client.InNamespace(ns)); err != nil {
		return
	}
	for _, p := range l.Items {
		if st, msg := sandbox.Condition(&p, "Responsive"); st == "False" {
			s.unresponsive[p.GetName()] = sourceKind(msg)
		}
	}
	n.mu.Lock()
	n.samples = append(n.samples, s)
	n.mu.Unlock()
}

// sourceKind is the kind of the source a WatchCircuitOpen message names
// ("Too many watch events from MachineSet/fleet/sim-1-... Allowing
// events periodically.").
func sourceKind(msg string) string {
	_, after, ok := strings.Cut(msg, " from ")
	if !ok {
		return "?"
	}
	kind, _, _ := strings.Cut(after, "/")
	return kind
}

// A noiseDelta is what happened between two samples.
type noiseDelta struct {
	seconds      float64
	events       map[string]int
	reconciles   float64
	cpu          float64
	breaker      map[string]float64
	unresponsive map[string]map[string]bool // by source kind, the pools
}

// between is what happened from the last sample at or before from (the
// first sample if none) to the last sample at or before to.
func (n *noise) between(from, to time.Time) (noiseDelta, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.samples) == 0 {
		return noiseDelta{}, false
	}
	i := max(0, sort.Search(len(n.samples), func(i int) bool { return n.samples[i].at.After(from) })-1)
	j := max(i, sort.Search(len(n.samples), func(i int) bool { return n.samples[i].at.After(to) })-1)
	a, b := n.samples[i], n.samples[j]
	span := n.samples[i : j+1]
	d := noiseDelta{
		seconds:      b.at.Sub(a.at).Seconds(),
		events:       map[string]int{},
		reconciles:   increase(span, func(s noiseSample) float64 { return s.reconciles }),
		cpu:          increase(span, func(s noiseSample) float64 { return s.cpu }),
		breaker:      map[string]float64{},
		unresponsive: map[string]map[string]bool{},
	}
	for k, v := range b.events {
		d.events[k] = v - a.events[k]
	}
	for k := range b.breaker {
		d.breaker[k] = increase(span, func(s noiseSample) float64 { return s.breaker[k] })
	}
	for _, s := range n.samples[i : j+1] {
		for p, kind := range s.unresponsive {
			if d.unresponsive[kind] == nil {
				d.unresponsive[kind] = map[string]bool{}
			}
			d.unresponsive[kind][p] = true
		}
	}
	return d, true
}

// increase is how much a counter of Crossplane's grew over samples,
// restarts counted (the restarts phase kills Crossplane).
func increase(samples []noiseSample, counter func(noiseSample) float64) float64 {
	values := make([]float64, len(samples))
	for i, s := range samples {
		values[i] = counter(s)
	}
	return sandbox.Increase(values)
}

// String is a phase's noise as one report line, per pool where it is a
// count: the events of each source kind, the XR reconciles, the breaker's
// outcomes and the pools it opened for.
func (d noiseDelta) String() string {
	per := float64(*clusters * *pools)
	var b strings.Builder
	fmt.Fprintf(&b, "per pool, %.0fs: events", d.seconds)
	for _, k := range fleet.Sources {
		if n := d.events[k.Kind]; n > 0 {
			fmt.Fprintf(&b, " %s %.0f", k.Kind, float64(n)/per)
		}
	}
	xr := d.breaker["Allowed"] + d.breaker["Dropped"] + d.breaker["HalfOpenAllowed"]
	fmt.Fprintf(&b, "; XR watch events %.0f (%.1f/s): allowed %.0f, dropped %.0f, half-open %.0f; breaker opened %.0f times; XR reconciles %.0f; Crossplane CPU %.1fs in all",
		xr/per, xr/per/max(d.seconds, 1), d.breaker["Allowed"]/per, d.breaker["Dropped"]/per, d.breaker["HalfOpenAllowed"]/per, d.breaker["opens"], d.reconciles/per, d.cpu)
	if len(d.unresponsive) > 0 {
		b.WriteString("; Responsive=False")
		for _, kind := range slices.Sorted(maps.Keys(d.unresponsive)) {
			fmt.Fprintf(&b, " %d pools (from %s)", len(d.unresponsive[kind]), kind)
		}
	}
	return b.String()
}

// probeEvery is how often the latency probe edits a pool.
const probeEvery = 5 * time.Second

// probeTimeout is how long a probe waits for its edit to reach a
// MachineSet before it counts it as lost.
const probeTimeout = 3 * time.Minute

// A latencyProbe measures, during a phase, how long a FleetNodePool edit
// takes to reach the pool's MachineSets while another pool of its Cluster
// rolls (issue #20): it edits the autoscaled pool's maximum size, which the
// function writes to its MachineDeployments' autoscaler annotations and
// Cluster API copies to their MachineSets in place. No machine changes.
type latencyProbe struct {
	c       client.Client
	cluster string
	pool    string

	mu   sync.Mutex
	took []time.Duration
	lost int
}

// probing starts a phase's latency probes: on the autoscaled pool of the
// first Cluster (concurrency 1: it waits for its turn) and of the last
// (every pool at once). The func it returns stops them, records their
// figures under label, and fails the test for an edit that never reached a
// MachineSet.
func (r *run) probing(label string) func() {
	if *pools < 2 {
		return func() {}
	}
	var ps []*latencyProbe
	var stops []func()
	for _, i := range slices.Compact([]int{0, *clusters - 1}) {
		p, stop := r.probe(clusterName(i), poolName(i, 1))
		ps, stops = append(ps, p), append(stops, stop)
	}
	return func() {
		for _, stop := range stops {
			stop()
		}
		r.probes = append(r.probes, probes{label, ps})
		for _, p := range ps {
			if p.lost > 0 {
				r.errorf("%s: %d edits of %s did not reach its MachineSets in %s", label, p.lost, p.pool, probeTimeout)
			}
		}
	}
}

// probe edits pool, one of cluster's, every probeEvery while another pool
// of the cluster rolls, until stop; stop restores its maximum size.
func (r *run) probe(cluster, pool string) (p *latencyProbe, stop func()) {
	p = &latencyProbe{c: r.c, cluster: cluster, pool: pool}
	ctx, cancel := context.WithCancel(r.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.run(ctx)
	}()
	return p, func() {
		cancel()
		<-done
		_ = p.setMax(r.ctx, int64(*replicas+2))
	}
}

func (p *latencyProbe) run(ctx context.Context) {
	for edit := int64(0); ; edit++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(probeEvery):
		}
		if !p.siblingRolling(ctx) {
			continue
		}
		// The maximum alternates between replicas+3 and replicas+4: never
		// the pool's own replicas+2, so every edit is a change.
		size := int64(*replicas + 3 + int(edit%2))
		t0 := time.Now()
		if err := p.setMax(ctx, size); err != nil {
			continue
		}
		took, ok := p.reached(ctx, size, t0)
		if ctx.Err() != nil {
			return
		}
		p.mu.Lock()
		if ok {
			p.took = append(p.took, took)
		} else {
			p.lost++
		}
		p.mu.Unlock()
	}
}

// siblingRolling says whether another pool of the probe's Cluster runs
// machines on more than one MachineSet.
func (p *latencyProbe) siblingRolling(ctx context.Context) bool {
	snap, err := fleet.Take(ctx, p.c)
	if err != nil {
		return false
	}
	for pool := range invariant.Rolling(snap)[ns+"/"+p.cluster] {
		if pool != p.pool {
			return true
		}
	}
	return false
}

func (p *latencyProbe) setMax(ctx context.Context, size int64) error {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("fleet.nodepool.dev/v1alpha1")
	u.SetKind("FleetNodePool")
	if err := p.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: p.pool}, u); err != nil {
		return err
	}
	patch := client.MergeFrom(u.DeepCopy())
	_ = unstructured.SetNestedField(u.Object, size, "spec", "scaling", "max")
	return p.c.Patch(ctx, u, patch)
}

// reached waits until a MachineSet of the pool carries the new maximum.
func (p *latencyProbe) reached(ctx context.Context, size int64, since time.Time) (time.Duration, bool) {
	want := fmt.Sprint(size)
	for time.Since(since) < probeTimeout {
		l := &unstructured.UnstructuredList{}
		l.SetAPIVersion("cluster.x-k8s.io/v1beta2")
		l.SetKind("MachineSetList")
		if err := p.c.List(ctx, l, client.InNamespace(ns), client.MatchingLabels{labelPool: p.pool}); err == nil {
			for _, ms := range l.Items {
				if ms.GetAnnotations()[annotationMaxSize] == want {
					return time.Since(since), true
				}
			}
		}
		select {
		case <-ctx.Done():
			return 0, false
		case <-time.After(200 * time.Millisecond):
		}
	}
	return 0, false
}

// String is the probe's figures: how many edits, their median and
// slowest, and how many never arrived.
func (p *latencyProbe) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.took) == 0 {
		return fmt.Sprintf("%s: no edit during a sibling's rollout (%d lost)", p.pool, p.lost)
	}
	took := slices.Clone(p.took)
	slices.Sort(took)
	return fmt.Sprintf("%s: %d edits, median %s, slowest %s, %d lost", p.pool, len(took),
		median(took).Round(100*time.Millisecond), took[len(took)-1].Round(100*time.Millisecond), p.lost)
}

// median of sorted durations.
func median(d []time.Duration) time.Duration {
	n := len(d)
	if n%2 == 1 {
		return d[n/2]
	}
	return (d[n/2-1] + d[n/2]) / 2
}
