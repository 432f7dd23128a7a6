//go:build fleet

// Package fleet is the fleet e2e tier: the function behind the real
// Crossplane core and the real Cluster API v1.14 managers (CAPD's in-memory
// machines), on a local control plane, at fleet shape. Pools are created,
// held while their control planes are behind a channel bump, follow the
// control planes, and rotate templates on a class change, while a watcher
// checks the lifecycle invariants on the live API. A last phase runs a
// build of the function with template retention switched off and proves the
// watcher sees it.
//
// The first cluster is the rollout gates' proof (issue #13): it keeps the
// policy's rollout concurrency, 1, so its pools roll one at a time, which the
// watcher checks at every snapshot from MachineSets and Machines; on its
// class change the policy is paused mid-way, and no pool may start until it
// is unpaused. The other clusters roll all their pools at once (annotation
// fleet.nodepool.dev/rollout-concurrency), and a second watcher told a
// concurrency of 1 for one of them must see that break its rule.
//
// The waves' proof (issue #14, waves_test.go) follows: each cluster's first
// pool in the first wave, the others in the second, a channel bump the
// second wave may only start once the first is at it, Available and soaked;
// then a first-wave pool that fails halts the second wave until it
// recovers. The watcher judges both from the API server.
//
// Then node rotation (issue #21, rotation_test.go): a max node age of
// minutes rotates every MachineDeployment, none before its window, one pool
// at a time per Cluster.
//
// The default size fits CI (3 clusters x 3 pools x 2 replicas); flags make
// the bigger documented run:
//
//	make test-fleet FLEET_ARGS='-fleet.clusters=10 -fleet.pools=5 -fleet.replicas=3'
//
// The tiers, their tags, targets and environments: test/README.md.
package fleet

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fleetnodepool/function-fleetnodepool/test/internal/fleet"
	"github.com/fleetnodepool/function-fleetnodepool/test/internal/sandbox"
	"github.com/fleetnodepool/function-fleetnodepool/test/internal/tier"
	"github.com/fleetnodepool/function-fleetnodepool/test/invariant"
)

var (
	clusters    = flag.Int("fleet.clusters", 3, "simulated clusters")
	pools       = flag.Int("fleet.pools", 3, "pools per cluster")
	replicas    = flag.Int("fleet.replicas", 2, "replicas per pool")
	timeout     = flag.Duration("fleet.phase-timeout", 10*time.Minute, "longest wait for one phase")
	upgradeOnly = flag.Bool("fleet.upgrade-only", false, "stop once the pools followed their control planes' upgrade, "+
		"to repeat that phase at a bigger size when chasing a rare failure")
	rotationOnly = flag.Bool("fleet.rotation-only", false, "create the pools, then run only the node rotation phase")
	xpArgs       = flag.String("fleet.crossplane-args", "", "flags of crossplane core start, space-separated, instead of the recommended ones "+
		"(package/crossplane/values.yaml); \"none\" runs Crossplane's defaults")
)

const (
	ns          = "fleet"
	config      = "../../../package/configuration"
	fromVersion = "v1.33.4"
	toVersion   = "v1.34.1"

	annotationMinSize = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size"
	annotationMaxSize = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size"
	// annotationConcurrency is a Cluster's rollout concurrency.
	annotationConcurrency = "fleet.nodepool.dev/rollout-concurrency"
	labelPool             = "fleet.nodepool.dev/pool"
	labelDeployment       = "cluster.x-k8s.io/deployment-name"
	// reasonPaused and reasonControlPlane are RolloutHeld's reasons: a
	// paused policy, a control plane behind.
	reasonPaused       = "Paused"
	reasonControlPlane = "ControlPlane"

	// heldFor is how long, once the paused pools' rollouts under way are
	// done, the test watches that no paused pool starts: longer than an
	// unpaused pool waits for its turn (the function asks again after 15s,
	// and Crossplane's watch circuit breaker, once open, lets an event
	// through every 30s).
	heldFor = 40 * time.Second
)

// A phase of the run and how long it took.
type phase struct {
	name  string
	took  time.Duration
	noise string
}

// probes are a phase's edit-latency probes.
type probes struct {
	phase  string
	probes []*latencyProbe
}

type run struct {
	t      *testing.T
	ctx    context.Context
	sb     *sandbox.Sandbox
	c      client.Client
	w      *fleet.Watcher
	phases []phase
	noise  *noise
	probes []probes
	// peak is the processes' peak memory before the function is swapped
	// for the broken build.
	peak map[string]uint64
	// failures are the test's failures so far, repeated at the end of the
	// report: CI shows the end of the output.
	failures []string
}

// fatalf fails the test and stops it, noting the failure for the report.
func (r *run) fatalf(format string, a ...any) {
	r.t.Helper()
	r.failures = append(r.failures, fmt.Sprintf(format, a...))
	r.t.Fatalf(format, a...)
}

// fatal is fatalf of a value.
func (r *run) fatal(v any) {
	r.t.Helper()
	r.fatalf("%v", v)
}

// errorf fails the test, noting the failure for the report.
func (r *run) errorf(format string, a ...any) {
	r.t.Helper()
	r.failures = append(r.failures, fmt.Sprintf(format, a...))
	r.t.Errorf(format, a...)
}

// envBroken is the test-only build of the function without template
// retention (build tag fleetnodepool_break_retention).
const envBroken = "FUNCTION_BROKEN_RETENTION_BIN"

func TestMain(m *testing.M) {
	env := append(append(sandbox.Env(), sandbox.CAPIEnv()...), envBroken)
	os.Exit(tier.Main(m, tier.Tier{Name: "fleet", Env: env}, nil))
}

func TestFleet(t *testing.T) {
	bins, err := sandbox.BinariesFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	capi, err := sandbox.CAPIBinariesFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	broken := os.Getenv(envBroken)
	// Crossplane runs with the recommended settings
	// (package/crossplane/values.yaml) and its default poll interval: it
	// re-runs a pool when what it composes or requires changes, when its
	// Composition gets a new revision, and at the TTL the function answers.
	if *xpArgs != "" {
		bins.CrossplaneArgs = strings.Fields(strings.TrimPrefix(*xpArgs, "none"))
	}
	dir := t.TempDir()
	ctx := t.Context()
	progress := func(f string, a ...any) { t.Logf(f, a...) }
	t0 := time.Now()
	sb, err := sandbox.Start(ctx, dir, bins, progress)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Stop()
	if err := sb.StartCAPI(ctx, capi); err != nil {
		t.Fatal(err)
	}
	r := &run{t: t, ctx: ctx, sb: sb, c: sb.Client}
	r.phase("start: control plane, Crossplane, function, Cluster API managers", t0)
	defer r.report()

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	r.w = fleet.NewWatcher(sb.Client)
	go r.w.Run(watchCtx, time.Second)
	wc, err := client.NewWithWatch(sb.Config, client.Options{})
	if err != nil {
		r.fatal(err)
	}
	r.noise = &noise{sb: sb, c: sb.Client, events: fleet.CountEvents(watchCtx, wc, ns, fleet.Sources...)}
	go r.noise.run(watchCtx)

	r.create()
	if *rotationOnly {
		r.rotation()
		if v := r.w.Violations(); len(v) > 0 {
			r.errorf("the watcher saw %d invariant violations:\n%s", len(v), violations(v))
		}
		return
	}
	r.autoscale()
	r.channelBump()
	r.controlPlanesMove()
	if *upgradeOnly {
		return
	}
	r.classChange()
	r.rapidEdits()
	r.restarts()
	r.waves()
	r.rotation()
	if v := r.w.Violations(); len(v) > 0 {
		r.errorf("the watcher saw %d invariant violations:\n%s", len(v), violations(v))
	}
	r.brokenRetention(broken)
}

func (r *run) phase(name string, since time.Time) {
	p := phase{name: name, took: time.Since(since)}
	if r.noise != nil {
		if d, ok := r.noise.between(since, time.Now()); ok {
			p.noise = d.String()
		}
	}
	r.phases = append(r.phases, p)
	r.t.Logf("phase %q done in %s", name, time.Since(since).Round(100*time.Millisecond))
}

func (r *run) report() {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	_, _ = fmt.Fprintf(tw, "fleet\t%d clusters x %d pools x %d replicas\n", *clusters, *pools, *replicas)
	for _, p := range r.phases {
		_, _ = fmt.Fprintf(tw, "%s\t%s\n", p.name, p.took.Round(100*time.Millisecond))
	}
	mem := r.peak
	if mem == nil {
		mem = r.sb.PeakMemory()
	}
	names := make([]string, 0, len(mem))
	for n := range mem {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		_, _ = fmt.Fprintf(tw, "peak RSS %s\t%d MiB\n", n, mem[n]>>20)
	}
	if r.w != nil {
		checked, failed := r.w.Snapshots()
		_, _ = fmt.Fprintf(tw, "watcher\t%d snapshots checked (%d could not be read), %d violations\n", checked, failed, len(r.w.Violations()))
		held := r.w.HeldSnapshots()
		for _, p := range slices.Sorted(maps.Keys(held)) {
			_, _ = fmt.Fprintf(tw, "watcher: %s held (paused)\tin %d snapshots\n", p, held[p])
		}
		waveHeld, halted := r.w.WaveSnapshots()
		for _, p := range slices.Sorted(maps.Keys(waveHeld)) {
			_, _ = fmt.Fprintf(tw, "watcher: %s held for its waves\tin %d snapshots, halted in %d\n", p, waveHeld[p], halted[p])
		}
	}
	_ = tw.Flush()
	b.WriteString("what woke the pools (issue #20), by phase:\n")
	for _, p := range r.phases {
		if p.noise != "" {
			fmt.Fprintf(&b, "  %s: %s\n", p.name, p.noise)
		}
	}
	b.WriteString("edit to MachineSet, while another pool of the Cluster rolls (issue #20):\n")
	for _, ps := range r.probes {
		for _, p := range ps.probes {
			fmt.Fprintf(&b, "  %s: %s\n", ps.phase, p)
		}
	}
	if r.w != nil {
		if v := r.w.Violations(); len(v) > 0 {
			fmt.Fprintf(&b, "the watcher's violations, first seen:\n%s", violations(v))
		}
	}
	for _, f := range r.failures {
		fmt.Fprintf(&b, "FAILED: %s\n", f)
	}
	r.t.Log("\n" + b.String())
}

func violations(v []fleet.Seen) string {
	var b strings.Builder
	for _, s := range v {
		fmt.Fprintf(&b, "  at %s: %s\n", s.At.Round(time.Second), s.Violation)
	}
	return b.String()
}

func clusterName(i int) string { return fmt.Sprintf("sim-%d", i+1) }

// concurrency is how many pools of cluster i roll at once: the first
// cluster keeps the policy's (package/configuration's rollouts.concurrency,
// 1, which is also the default); the others are annotated to roll every
// pool at once, as before rollouts were gated.
func concurrency(i int) int {
	if i == 0 {
		return 1
	}
	return *pools
}

// shape is what pool j of a cluster looks like: a fixed pool, an
// autoscaled pool, and a fixed pool over two zones, in turn.
func shape(j int) string { return []string{"fixed", "auto", "zones"}[j%3] }

func poolName(i, j int) string { return fmt.Sprintf("%s-%s-%d", clusterName(i), shape(j), j) }

func (r *run) pool(i, j int) *unstructured.Unstructured {
	spec := map[string]any{"clusterName": clusterName(i), "channel": "stable", "machine": map[string]any{"class": "small"}}
	n := int64(*replicas)
	switch shape(j) {
	case "fixed":
		spec["scaling"] = map[string]any{"replicas": n}
	case "auto":
		spec["scaling"] = map[string]any{"min": n, "max": n + 2}
	case "zones":
		spec["scaling"] = map[string]any{"replicas": n}
		spec["zones"] = []any{"zone-a", "zone-b"}
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "fleet.nodepool.dev/v1alpha1", "kind": "FleetNodePool",
		"metadata": map[string]any{"name": poolName(i, j), "namespace": ns}, "spec": spec,
	}}
}

// create installs the XRD and Composition, the simulated clusters and the
// pools, and waits until every pool is Ready: its machines and nodes up.
func (r *run) create() {
	t0 := time.Now()
	if err := r.sb.InstallConfiguration(r.ctx, config); err != nil {
		r.fatal(err)
	}
	if err := r.sb.Create(r.ctx, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}); err != nil {
		r.fatal(err)
	}
	for i := range *clusters {
		objs := sandbox.SimCluster(ns, clusterName(i), fromVersion)
		r.w.SetConcurrency(ns+"/"+clusterName(i), concurrency(i))
		for _, o := range objs {
			if o.GetKind() == "Cluster" && i > 0 {
				o.SetAnnotations(map[string]string{annotationConcurrency: strconv.Itoa(concurrency(i))})
			}
		}
		if err := r.sb.Create(r.ctx, objs...); err != nil {
			r.fatal(err)
		}
		for j := range *pools {
			if err := r.sb.Create(r.ctx, r.pool(i, j)); err != nil {
				r.fatal(err)
			}
		}
	}
	r.wait("every pool Ready", func() error { return r.fleetAt(fromVersion) })
	r.phase(fmt.Sprintf("create %d pools, all machines Running", *clusters**pools), t0)
	// The replicas rule is not vacuous: the watcher does see the function
	// own the size of every fixed pool's MachineDeployment.
	snap, err := fleet.Take(r.ctx, r.c)
	if err != nil {
		r.fatal(err)
	}
	for _, d := range snap.Backings {
		if !d.Autoscaled && !d.FunctionSetsReplicas {
			r.errorf("fixed-size MachineDeployment %s: the watcher does not see the function own spec.replicas", d.Name)
		}
	}
}

// autoscale plays the cluster-autoscaler: it grows every autoscaled
// MachineDeployment by one. Later reconciles must leave the size alone.
func (r *run) autoscale() {
	t0 := time.Now()
	for _, md := range r.list("cluster.x-k8s.io/v1beta2", "MachineDeployment") {
		if _, ok := md.GetAnnotations()[annotationMinSize]; !ok {
			continue
		}
		patch := client.MergeFrom(md.DeepCopy())
		n, _, _ := unstructured.NestedInt64(md.Object, "spec", "replicas")
		_ = unstructured.SetNestedField(md.Object, n+1, "spec", "replicas")
		if err := r.c.Patch(r.ctx, &md, patch, client.FieldOwner("cluster-autoscaler")); err != nil {
			r.fatal(err)
		}
	}
	r.wait("autoscaled pools grown", func() error { return r.fleetAt(fromVersion) })
	r.phase("autoscaler grows every autoscaled pool by one", t0)
}

// channelBump moves the stable channel in the Composition while the
// control planes stay behind: every pool must hold, and say so
// (UpgradePending, and RolloutHeld for its ControlPlane: a version held
// back is no change to queue for).
func (r *run) channelBump() {
	t0 := time.Now()
	r.setPolicy(toVersion, "channels", "stable")
	r.wait("every pool UpgradePending", func() error {
		for _, p := range r.list("fleet.nodepool.dev/v1alpha1", "FleetNodePool") {
			if s, msg := sandbox.Condition(&p, "UpgradePending"); s != "True" {
				return fmt.Errorf("%s: UpgradePending %s %s", p.GetName(), s, msg)
			}
			if why := fleet.HeldBy(&p); why != reasonControlPlane {
				return fmt.Errorf("%s: held by %q, want %s", p.GetName(), why, reasonControlPlane)
			}
		}
		return nil
	})
	for _, md := range r.list("cluster.x-k8s.io/v1beta2", "MachineDeployment") {
		if v, _, _ := unstructured.NestedString(md.Object, "spec", "template", "spec", "version"); v != fromVersion {
			r.errorf("MachineDeployment %s moved to %s while its control plane is at %s", md.GetName(), v, fromVersion)
		}
	}
	r.phase("channel bump, control planes behind: every pool held (UpgradePending, RolloutHeld ControlPlane)", t0)
}

// controlPlanesMove upgrades every control plane; pools follow, each after
// its own.
func (r *run) controlPlanesMove() {
	t0 := time.Now()
	defer r.probing("control planes upgrade, pools follow")()
	r.moveControlPlanes(toVersion)
	ro := r.rollouts(0)
	r.wait("every pool at "+toVersion, func() error {
		r.observe(ro)
		return r.fleetAt(toVersion)
	})
	r.phase("control planes upgrade, pools follow: all machines at "+toVersion, t0)
	r.t.Logf("%s's rollouts, from the control planes' upgrade (one at a time at concurrency 1):\n%s", clusterName(0), ro)
	// The autoscaler's sizes survived every reconcile of the upgrade.
	for _, md := range r.list("cluster.x-k8s.io/v1beta2", "MachineDeployment") {
		if _, auto := md.GetAnnotations()[annotationMinSize]; !auto {
			continue
		}
		if n, _, _ := unstructured.NestedInt64(md.Object, "spec", "replicas"); n != int64(*replicas)+1 {
			r.errorf("autoscaled MachineDeployment %s: spec.replicas %d, the autoscaler set %d", md.GetName(), n, *replicas+1)
		}
	}
}

// moveControlPlanes upgrades every control plane to a version.
func (r *run) moveControlPlanes(version string) {
	for i := range *clusters {
		kcp := r.get("controlplane.cluster.x-k8s.io/v1beta2", "KubeadmControlPlane", ns, clusterName(i))
		patch := client.MergeFrom(kcp.DeepCopy())
		_ = unstructured.SetNestedField(kcp.Object, version, "spec", "version")
		if err := r.c.Patch(r.ctx, kcp, patch); err != nil {
			r.fatal(err)
		}
	}
}

// classChange moves pools to another class: templates rotate and real
// rolling updates run; the old templates go once no MachineSet uses them.
//
// Every pool of the first cluster changes, and that cluster rolls one pool
// at a time (the policy's concurrency; the watcher checks it at every
// snapshot). Once its first pool has started, the policy is paused
// (rollouts.paused): once the function says it holds the others
// (RolloutHeld Paused) none of them may start, checked by the watcher
// (NoRolloutStartWhileHeld) and directly here, until the rollouts under way
// are done and heldFor more has passed; then it is unpaused and every pool
// rolls. The other clusters' fixed and zoned pools change too, all at once;
// a second watcher, told the second cluster's concurrency is 1, must report
// that broken.
func (r *run) classChange() {
	t0 := time.Now()
	before := r.templates()
	proof := clusterName(0)
	ro := r.rollouts(0)
	stopProbes := r.probing("class change")
	var liar *fleet.Watcher
	ctx, stopLiar := context.WithCancel(r.ctx)
	defer stopLiar()
	if *clusters > 1 {
		liar = fleet.NewWatcher(r.c)
		liar.SetConcurrency(ns+"/"+clusterName(1), 1)
		go liar.Run(ctx, 2*time.Second)
	}
	changed := map[string]bool{}
	for i := range *clusters {
		for j := range *pools {
			if i == 0 || shape(j) != "auto" {
				r.setClass(poolName(i, j), "medium")
				changed[poolName(i, j)] = true
			}
		}
	}
	r.wait("a pool of "+proof+" starts rolling", func() error {
		if r.observe(ro); len(ro.started) == 0 {
			return fmt.Errorf("no pool of %s started", proof)
		}
		return nil
	})
	r.phase(fmt.Sprintf("class change: the first pool of %s starts rolling", proof), t0)
	held := r.pause(ro)
	r.paused(ro, held)

	t1 := time.Now()
	for _, p := range r.list("fleet.nodepool.dev/v1alpha1", "FleetNodePool") {
		r.w.Release(ns + "/" + p.GetName())
	}
	r.setPolicy(false, "rollouts", "paused")
	r.wait("every changed pool rolled to its new class", func() error {
		r.observe(ro)
		if err := r.fleetAt(toVersion); err != nil {
			return err
		}
		for _, md := range r.list("cluster.x-k8s.io/v1beta2", "MachineDeployment") {
			name, _, _ := unstructured.NestedString(md.Object, "spec", "template", "spec", "infrastructureRef", "name")
			if changed[md.GetLabels()[labelPool]] && before[name] {
				return fmt.Errorf("%s still uses %s", md.GetName(), name)
			}
		}
		return nil
	})
	r.phase(fmt.Sprintf("unpause: the held pools of %s roll, one at a time; every pool at its new class", proof), t1)
	stopProbes()
	r.phase("class change, all of it", t0)
	r.t.Logf("%s's rollouts, from the class change (one at a time at concurrency 1):\n%s", proof, ro)
	stopLiar()
	if liar != nil {
		r.liar(liar)
	}

	t2 := time.Now()
	r.wait("old templates released", func() error {
		now := r.templates()
		used := r.usedTemplates()
		for n := range before {
			if now[n] && !used[n] {
				return fmt.Errorf("template %s is no longer used and still kept", n)
			}
		}
		return nil
	})
	r.phase("old templates released after the rollout", t2)
}

// pause pauses the policy's rollouts, tells the watcher every pool is held
// for it, and waits until the function holds every pool of the tracked
// cluster that has not started (RolloutHeld Paused); it returns them. At
// least one must be: a pause after every pool started proves nothing.
func (r *run) pause(ro *rolloutsOf) (held []string) {
	t0 := time.Now()
	for _, p := range r.list("fleet.nodepool.dev/v1alpha1", "FleetNodePool") {
		r.w.Hold(ns+"/"+p.GetName(), reasonPaused)
	}
	r.setPolicy(true, "rollouts", "paused")
	r.wait("the function holds the pools of "+ro.cluster+" that have not started (RolloutHeld "+reasonPaused+")", func() error {
		r.observe(ro)
		held = nil
		var waiting []string
		for _, p := range ro.pools {
			if _, ok := ro.started[p]; ok {
				continue
			}
			if why := fleet.HeldBy(r.get("fleet.nodepool.dev/v1alpha1", "FleetNodePool", ns, p)); why != reasonPaused {
				waiting = append(waiting, fmt.Sprintf("%s held by %q", p, why))
				continue
			}
			held = append(held, p)
		}
		if len(waiting) > 0 {
			return errors.New(strings.Join(waiting, ", "))
		}
		return nil
	})
	if len(held) == 0 {
		r.fatalf("every pool of %s started before the function held it: the pause came too late to prove anything", ro.cluster)
	}
	// What kubectl get fleetnodepools shows (Rollout, Held-By).
	for _, p := range held {
		xr := r.get("fleet.nodepool.dev/v1alpha1", "FleetNodePool", ns, p)
		state, _, _ := unstructured.NestedString(xr.Object, "status", "rollout", "state")
		reason, _, _ := unstructured.NestedString(xr.Object, "status", "rollout", "reason")
		if state != "Held" || reason != reasonPaused {
			r.errorf("paused pool %s: status.rollout state %q reason %q, want Held %s", p, state, reason, reasonPaused)
		}
	}
	r.phase(fmt.Sprintf("pause: the function holds %d pools of %s (RolloutHeld %s)", len(held), ro.cluster, reasonPaused), t0)
	return held
}

// paused waits, the policy paused, until the tracked cluster's rollouts
// under way are done and heldFor more has passed: no held pool may start.
func (r *run) paused(ro *rolloutsOf, held []string) {
	t0 := time.Now()
	var doneAt time.Time
	r.wait(fmt.Sprintf("the rollouts under way end, then %s without a start", heldFor), func() error {
		r.observe(ro)
		for _, p := range held {
			if at, ok := ro.started[p]; ok {
				r.fatalf("paused pool %s started rolling %s into the class change, after the function said it held it", p, at.Round(time.Second))
			}
		}
		for p := range ro.started {
			if _, ok := ro.done[p]; !ok {
				doneAt = time.Time{}
				return fmt.Errorf("%s is still rolling", p)
			}
		}
		if doneAt.IsZero() {
			doneAt = time.Now()
		}
		if d := time.Since(doneAt); d < heldFor {
			return fmt.Errorf("no paused pool started in %s", d.Round(time.Second))
		}
		return nil
	})
	// NoRolloutStartWhileHeld was not vacuous: the watcher judged every
	// held pool.
	counts := r.w.HeldSnapshots()
	for _, p := range held {
		if counts[ns+"/"+p] == 0 {
			r.errorf("the watcher never counted paused pool %s held: NoRolloutStartWhileHeld did not judge it", p)
		}
	}
	r.phase(fmt.Sprintf("paused: the rollouts under way end, no paused pool starts in %s more", heldFor), t0)
}

// liar checks what a watcher told a concurrency of 1 for the second
// cluster, whose pools all rolled at once, saw: its first violation must be
// that cluster's RolloutConcurrencyBounded.
func (r *run) liar(w *fleet.Watcher) {
	vs := w.Violations()
	want := "Cluster/" + ns + "/" + clusterName(1)
	switch {
	case len(vs) == 0:
		r.errorf("a watcher told %s's concurrency is 1 saw no violation while its pools rolled at once", want)
	case vs[0].Rule != invariant.ConcurrencyBounded || vs[0].Object != want:
		r.errorf("a watcher told %s's concurrency is 1: first violation %s, want a %s violation of it", want, vs[0].Violation, invariant.ConcurrencyBounded)
	default:
		r.t.Logf("a watcher told %s's concurrency is 1 saw, as it should: %s", want, vs[0].Violation)
	}
}

// rolloutsOf tracks the pools of one cluster (every cluster if "") through a change: when each
// started rolling (a MachineDeployment's version or templates changed) and
// when it was rolled out (each of its MachineDeployments on one MachineSet,
// every replica up to date and ready), from the API server.
type rolloutsOf struct {
	cluster string
	// pools are the cluster's pools.
	pools []string
	t0    time.Time
	// from are the MachineDeployments' templates when the change began.
	from    map[string]string
	started map[string]time.Duration
	done    map[string]time.Duration
}

// rollouts tracks the pools of cluster i from now on.
func (r *run) rollouts(i int) *rolloutsOf {
	ro := &rolloutsOf{cluster: clusterName(i), t0: time.Now(), from: r.deploymentTemplates(),
		started: map[string]time.Duration{}, done: map[string]time.Duration{}}
	for j := range *pools {
		ro.pools = append(ro.pools, poolName(i, j))
	}
	return ro
}

// observe notes the pools of the tracked cluster that started or rolled
// out since the last call.
func (r *run) observe(ro *rolloutsOf) {
	sets := r.machineSets()
	rolling := map[string]bool{}
	now := time.Since(ro.t0)
	mds := r.list("cluster.x-k8s.io/v1beta2", "MachineDeployment")
	for _, md := range mds {
		p := md.GetLabels()[labelPool]
		if c, _, _ := unstructured.NestedString(md.Object, "spec", "clusterName"); ro.cluster != "" && c != ro.cluster {
			continue
		}
		if _, ok := ro.started[p]; !ok && fleet.Template(&md) != ro.from[md.GetName()] {
			ro.started[p] = now
		}
		if settled(&md, sets) != nil {
			rolling[p] = true
		}
	}
	for p := range ro.started {
		if _, ok := ro.done[p]; !ok && !rolling[p] {
			ro.done[p] = now
		}
	}
}

// String is the tracked pools' timeline, in the order they started.
func (ro *rolloutsOf) String() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	ps := make([]string, 0, len(ro.started))
	for p := range ro.started {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ro.started[ps[i]] < ro.started[ps[j]] })
	for _, p := range ps {
		_, _ = fmt.Fprintf(tw, "  %s\tstarted at %s\trolled out at %s\n", p, ro.started[p].Round(time.Second), ro.done[p].Round(time.Second))
	}
	_ = tw.Flush()
	return b.String()
}

// deploymentTemplates are the MachineDeployments' templates, by name.
func (r *run) deploymentTemplates() map[string]string {
	out := map[string]string{}
	for _, md := range r.list("cluster.x-k8s.io/v1beta2", "MachineDeployment") {
		out[md.GetName()] = fleet.Template(&md)
	}
	return out
}

// brokenRetention serves a build of the function that drops templates as
// soon as the spec moves on, changes a class, and stops at the first
// violation the watcher sees: it must be a MachineSet left without its
// template.
func (r *run) brokenRetention(bin string) {
	t0 := time.Now()
	r.peak = r.sb.PeakMemory()
	before := len(r.w.Violations())
	if err := r.sb.SwapFunction(r.ctx, bin); err != nil {
		r.fatal(err)
	}
	r.setClass(poolName(0, 0), "large")
	r.wait("the watcher reports the broken retention", func() error {
		if vs := r.w.Violations(); len(vs) > before {
			return nil
		}
		return fmt.Errorf("no violation seen")
	})
	first := r.w.Violations()[before]
	if first.Rule != invariant.TemplateExists {
		r.errorf("with template retention broken, the watcher's first violation is %s, want a %s violation", first.Violation, invariant.TemplateExists)
	} else {
		r.t.Logf("the watcher saw, as it should: %s", first.Violation)
	}
	r.phase("test-only build without template retention: watcher reports it", t0)
}

// setPolicy sets a field of the Composition's policy (its pipeline's
// function input), as a platform team edits it.
func (r *run) setPolicy(value any, path ...string) {
	comp := r.get("apiextensions.crossplane.io/v1", "Composition", "", "fleetnodepool")
	patch := client.MergeFrom(comp.DeepCopy())
	steps, _, _ := unstructured.NestedSlice(comp.Object, "spec", "pipeline")
	if err := unstructured.SetNestedField(steps[0].(map[string]any), value, append([]string{"input"}, path...)...); err != nil {
		r.fatalf("cannot set the policy's %s: %v", strings.Join(path, "."), err)
	}
	_ = unstructured.SetNestedSlice(comp.Object, steps, "spec", "pipeline")
	if err := r.c.Patch(r.ctx, comp, patch); err != nil {
		r.fatal(err)
	}
}

func (r *run) setClass(pool, class string) {
	p := r.get("fleet.nodepool.dev/v1alpha1", "FleetNodePool", ns, pool)
	patch := client.MergeFrom(p.DeepCopy())
	_ = unstructured.SetNestedField(p.Object, class, "spec", "machine", "class")
	if err := r.c.Patch(r.ctx, p, patch); err != nil {
		r.fatal(err)
	}
}

// fleetAt checks the whole fleet settled at a version: every pool Ready,
// every MachineDeployment rolled out with one MachineSet, every worker
// Machine Running at the version.
func (r *run) fleetAt(version string) error {
	for _, p := range r.list("fleet.nodepool.dev/v1alpha1", "FleetNodePool") {
		if s, msg := sandbox.Condition(&p, "Ready"); s != "True" {
			return fmt.Errorf("pool %s: Ready %s %s", p.GetName(), s, msg)
		}
	}
	sets := r.machineSets()
	for _, md := range r.list("cluster.x-k8s.io/v1beta2", "MachineDeployment") {
		if v, _, _ := unstructured.NestedString(md.Object, "spec", "template", "spec", "version"); v != version {
			return fmt.Errorf("MachineDeployment %s: version %s", md.GetName(), v)
		}
		if err := settled(&md, sets); err != nil {
			return err
		}
	}
	for _, m := range r.list("cluster.x-k8s.io/v1beta2", "Machine") {
		v, _, _ := unstructured.NestedString(m.Object, "spec", "version")
		phase, _, _ := unstructured.NestedString(m.Object, "status", "phase")
		if v != version || phase != "Running" {
			return fmt.Errorf("Machine %s: %s %s", m.GetName(), v, phase)
		}
	}
	return nil
}

// machineSets counts the MachineSets of each MachineDeployment.
func (r *run) machineSets() map[string]int {
	sets := map[string]int{}
	for _, ms := range r.list("cluster.x-k8s.io/v1beta2", "MachineSet") {
		sets[ms.GetLabels()[labelDeployment]]++
	}
	return sets
}

// settled checks a MachineDeployment rolled out: its spec observed, one
// MachineSet (of sets, by MachineDeployment), every replica up to date and
// ready.
func settled(md *unstructured.Unstructured, sets map[string]int) error {
	if g, _, _ := unstructured.NestedInt64(md.Object, "status", "observedGeneration"); g < md.GetGeneration() {
		return fmt.Errorf("MachineDeployment %s: generation %d not observed yet (%d)", md.GetName(), md.GetGeneration(), g)
	}
	want, _, _ := unstructured.NestedInt64(md.Object, "spec", "replicas")
	var got [3]int64
	for k, f := range []string{"replicas", "readyReplicas", "upToDateReplicas"} {
		got[k], _, _ = unstructured.NestedInt64(md.Object, "status", f)
	}
	if got != [3]int64{want, want, want} || sets[md.GetName()] != 1 {
		return fmt.Errorf("MachineDeployment %s: replicas %d, status replicas/ready/up-to-date %v, %d MachineSets",
			md.GetName(), want, got, sets[md.GetName()])
	}
	return nil
}

func (r *run) templates() map[string]bool {
	out := map[string]bool{}
	for _, t := range r.list("infrastructure.cluster.x-k8s.io/v1beta2", "DevMachineTemplate") {
		if !strings.HasSuffix(t.GetName(), "-control-plane") {
			out[t.GetName()] = true
		}
	}
	return out
}

func (r *run) usedTemplates() map[string]bool {
	out := map[string]bool{}
	for _, ms := range r.list("cluster.x-k8s.io/v1beta2", "MachineSet") {
		n, _, _ := unstructured.NestedString(ms.Object, "spec", "template", "spec", "infrastructureRef", "name")
		out[n] = true
	}
	for _, md := range r.list("cluster.x-k8s.io/v1beta2", "MachineDeployment") {
		n, _, _ := unstructured.NestedString(md.Object, "spec", "template", "spec", "infrastructureRef", "name")
		out[n] = true
	}
	return out
}

func (r *run) list(apiVersion, kind string) []unstructured.Unstructured {
	l := &unstructured.UnstructuredList{}
	l.SetAPIVersion(apiVersion)
	l.SetKind(kind + "List")
	if err := r.c.List(r.ctx, l, client.InNamespace(ns)); err != nil {
		r.fatalf("cannot list %s: %v", kind, err)
	}
	return l.Items
}

func (r *run) get(apiVersion, kind, namespace, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	if err := r.c.Get(r.ctx, client.ObjectKey{Namespace: namespace, Name: name}, u); err != nil {
		r.fatalf("cannot get %s %s: %v", kind, name, err)
	}
	return u
}

// wait polls cond until it holds, failing the test with cond's last error
// after the phase timeout.
func (r *run) wait(what string, cond func() error) {
	r.t.Helper()
	var err error
	for deadline := time.Now().Add(*timeout); time.Now().Before(deadline); time.Sleep(time.Second) {
		if err = cond(); err == nil {
			return
		}
	}
	r.fatalf("%s: not after %s: %v\nwhat is odd:\n%swatcher so far:\n%s", what, *timeout, err, r.explain(), violations(r.w.Violations()))
}
