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
// The default size fits CI (3 clusters x 3 pools x 2 replicas); flags make
// the bigger documented run:
//
//	make test-fleet FLEET_ARGS='-fleet.clusters=10 -fleet.pools=5 -fleet.replicas=3'
//
// The tiers, their tags, targets and environments: test/README.md.
package fleet

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
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
	clusters = flag.Int("fleet.clusters", 3, "simulated clusters")
	pools    = flag.Int("fleet.pools", 3, "pools per cluster")
	replicas = flag.Int("fleet.replicas", 2, "replicas per pool")
	timeout  = flag.Duration("fleet.phase-timeout", 10*time.Minute, "longest wait for one phase")
)

const (
	ns          = "fleet"
	config      = "../../../package/configuration"
	fromVersion = "v1.33.4"
	toVersion   = "v1.34.1"

	annotationMinSize = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size"
)

// A phase of the run and how long it took.
type phase struct {
	name string
	took time.Duration
}

type run struct {
	t      *testing.T
	ctx    context.Context
	sb     *sandbox.Sandbox
	c      client.Client
	w      *fleet.Watcher
	phases []phase
	// peak is the processes' peak memory before the function is swapped
	// for the broken build.
	peak map[string]uint64
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
	// Crossplane re-runs a pool when its composed resources or the Cluster
	// change, and on its poll: a Composition change (the channel bump) is
	// picked up on the poll, so it is shorter than the 1m default here.
	bins.CrossplaneArgs = []string{"--poll-interval=20s"}
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

	r.create()
	r.autoscale()
	r.channelBump()
	r.controlPlanesMove()
	r.classChange()
	if v := r.w.Violations(); len(v) > 0 {
		t.Errorf("the watcher saw %d invariant violations:\n%s", len(v), violations(v))
	}
	r.brokenRetention(broken)
}

func (r *run) phase(name string, since time.Time) {
	r.phases = append(r.phases, phase{name, time.Since(since)})
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
	}
	_ = tw.Flush()
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
		r.t.Fatal(err)
	}
	if err := r.sb.Create(r.ctx, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}); err != nil {
		r.t.Fatal(err)
	}
	for i := range *clusters {
		if err := r.sb.Create(r.ctx, sandbox.SimCluster(ns, clusterName(i), fromVersion)...); err != nil {
			r.t.Fatal(err)
		}
		for j := range *pools {
			if err := r.sb.Create(r.ctx, r.pool(i, j)); err != nil {
				r.t.Fatal(err)
			}
		}
	}
	r.wait("every pool Ready", func() error { return r.fleetAt(fromVersion) })
	r.phase(fmt.Sprintf("create %d pools, all machines Running", *clusters**pools), t0)
	// The replicas rule is not vacuous: the watcher does see the function
	// own the size of every fixed pool's MachineDeployment.
	snap, err := fleet.Take(r.ctx, r.c)
	if err != nil {
		r.t.Fatal(err)
	}
	for _, d := range snap.Backings {
		if !d.Autoscaled && !d.FunctionSetsReplicas {
			r.t.Errorf("fixed-size MachineDeployment %s: the watcher does not see the function own spec.replicas", d.Name)
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
			r.t.Fatal(err)
		}
	}
	r.wait("autoscaled pools grown", func() error { return r.fleetAt(fromVersion) })
	r.phase("autoscaler grows every autoscaled pool by one", t0)
}

// channelBump moves the stable channel in the Composition while the
// control planes stay behind: every pool must hold, and say so.
func (r *run) channelBump() {
	t0 := time.Now()
	comp := r.get("apiextensions.crossplane.io/v1", "Composition", "", "fleetnodepool")
	patch := client.MergeFrom(comp.DeepCopy())
	steps, _, _ := unstructured.NestedSlice(comp.Object, "spec", "pipeline")
	_ = unstructured.SetNestedField(steps[0].(map[string]any), toVersion, "input", "channels", "stable")
	_ = unstructured.SetNestedSlice(comp.Object, steps, "spec", "pipeline")
	if err := r.c.Patch(r.ctx, comp, patch); err != nil {
		r.t.Fatal(err)
	}
	r.wait("every pool UpgradePending", func() error {
		for _, p := range r.list("fleet.nodepool.dev/v1alpha1", "FleetNodePool") {
			if s, msg := sandbox.Condition(&p, "UpgradePending"); s != "True" {
				return fmt.Errorf("%s: UpgradePending %s %s", p.GetName(), s, msg)
			}
		}
		return nil
	})
	for _, md := range r.list("cluster.x-k8s.io/v1beta2", "MachineDeployment") {
		if v, _, _ := unstructured.NestedString(md.Object, "spec", "template", "spec", "version"); v != fromVersion {
			r.t.Errorf("MachineDeployment %s moved to %s while its control plane is at %s", md.GetName(), v, fromVersion)
		}
	}
	r.phase("channel bump, control planes behind: every pool held (UpgradePending)", t0)
}

// controlPlanesMove upgrades every control plane; pools follow, each after
// its own.
func (r *run) controlPlanesMove() {
	t0 := time.Now()
	for i := range *clusters {
		kcp := r.get("controlplane.cluster.x-k8s.io/v1beta2", "KubeadmControlPlane", ns, clusterName(i))
		patch := client.MergeFrom(kcp.DeepCopy())
		_ = unstructured.SetNestedField(kcp.Object, toVersion, "spec", "version")
		if err := r.c.Patch(r.ctx, kcp, patch); err != nil {
			r.t.Fatal(err)
		}
	}
	r.wait("every pool at "+toVersion, func() error { return r.fleetAt(toVersion) })
	r.phase("control planes upgrade, pools follow: all machines at "+toVersion, t0)
	// The autoscaler's sizes survived every reconcile of the upgrade.
	for _, md := range r.list("cluster.x-k8s.io/v1beta2", "MachineDeployment") {
		if _, auto := md.GetAnnotations()[annotationMinSize]; !auto {
			continue
		}
		if n, _, _ := unstructured.NestedInt64(md.Object, "spec", "replicas"); n != int64(*replicas)+1 {
			r.t.Errorf("autoscaled MachineDeployment %s: spec.replicas %d, the autoscaler set %d", md.GetName(), n, *replicas+1)
		}
	}
}

// classChange moves every fixed pool to another class: templates rotate and
// real rolling updates run; the old templates go once no MachineSet uses
// them.
func (r *run) classChange() {
	t0 := time.Now()
	before := r.templates()
	for i := range *clusters {
		for j := range *pools {
			if shape(j) != "auto" {
				r.setClass(poolName(i, j), "medium")
			}
		}
	}
	r.wait("every pool rolled to its new class", func() error {
		if err := r.fleetAt(toVersion); err != nil {
			return err
		}
		for _, md := range r.list("cluster.x-k8s.io/v1beta2", "MachineDeployment") {
			name, _, _ := unstructured.NestedString(md.Object, "spec", "template", "spec", "infrastructureRef", "name")
			if _, auto := md.GetAnnotations()[annotationMinSize]; !auto && before[name] {
				return fmt.Errorf("%s still uses %s", md.GetName(), name)
			}
		}
		return nil
	})
	r.phase("class change: templates rotate, rolling updates", t0)
	t1 := time.Now()
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
	r.phase("old templates released after the rollout", t1)
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
		r.t.Fatal(err)
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
		r.t.Errorf("with template retention broken, the watcher's first violation is %s, want a %s violation", first.Violation, invariant.TemplateExists)
	} else {
		r.t.Logf("the watcher saw, as it should: %s", first.Violation)
	}
	r.phase("test-only build without template retention: watcher reports it", t0)
}

func (r *run) setClass(pool, class string) {
	p := r.get("fleet.nodepool.dev/v1alpha1", "FleetNodePool", ns, pool)
	patch := client.MergeFrom(p.DeepCopy())
	_ = unstructured.SetNestedField(p.Object, class, "spec", "machine", "class")
	if err := r.c.Patch(r.ctx, p, patch); err != nil {
		r.t.Fatal(err)
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
	sets := map[string]int{}
	for _, ms := range r.list("cluster.x-k8s.io/v1beta2", "MachineSet") {
		sets[ms.GetLabels()["cluster.x-k8s.io/deployment-name"]]++
	}
	for _, md := range r.list("cluster.x-k8s.io/v1beta2", "MachineDeployment") {
		v, _, _ := unstructured.NestedString(md.Object, "spec", "template", "spec", "version")
		want, _, _ := unstructured.NestedInt64(md.Object, "spec", "replicas")
		var got [3]int64
		for k, f := range []string{"replicas", "readyReplicas", "upToDateReplicas"} {
			got[k], _, _ = unstructured.NestedInt64(md.Object, "status", f)
		}
		if v != version || got != [3]int64{want, want, want} || sets[md.GetName()] != 1 {
			return fmt.Errorf("MachineDeployment %s: version %s, replicas %d, status replicas/ready/up-to-date %v, %d MachineSets",
				md.GetName(), v, want, got, sets[md.GetName()])
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
		r.t.Fatalf("cannot list %s: %v", kind, err)
	}
	return l.Items
}

func (r *run) get(apiVersion, kind, namespace, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	if err := r.c.Get(r.ctx, client.ObjectKey{Namespace: namespace, Name: name}, u); err != nil {
		r.t.Fatalf("cannot get %s %s: %v", kind, name, err)
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
	r.t.Fatalf("%s: not after %s: %v\nwatcher so far:\n%s", what, *timeout, err, violations(r.w.Violations()))
}
