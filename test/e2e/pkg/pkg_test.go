//go:build pkg

// Package pkg is the package tier: the Function and Configuration packages
// `make xpkg` builds are pushed with `crossplane xpkg push` to an OCI
// registry on loopback, Crossplane pulls them through an ImageConfig
// rewrite (the package names stay the published ones), the Configuration
// alone is installed and the package manager installs its Function. The
// tier then checks that every example composes, and that a new
// Configuration version whose policy bumps a channel, installed through the
// package manager, rolls the pools: control plane first, old templates kept
// until their MachineSets are gone, Manual pools on their revision until
// moved. The test plays the package runtime (the Function's TLS Secret,
// endpoint and health) and the Cluster API controllers (control plane
// version, MachineSets), and nothing else.
package pkg

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	pkgv1 "github.com/crossplane/crossplane/apis/v2/pkg/v1"

	"github.com/fleetnodepool/function-fleetnodepool/test/internal/sandbox"
	"github.com/fleetnodepool/function-fleetnodepool/test/internal/tier"
)

const (
	examples      = root + "/examples"
	configuration = root + "/package/configuration"

	ns         = "team-a"
	cluster    = "prod-eu-1"
	pool       = "workers"
	manualPool = "workers-manual"

	// The Configuration version the platform team publishes next: its
	// policy moves the stable channel from v1.33.4 to v1.34.1.
	v2          = "v0.2.0"
	oldVersion  = "v1.33.4"
	newVersion  = "v1.34.1"
	compositeGV = "fleet.nodepool.dev/v1alpha1"
)

var (
	sb   *sandbox.Sandbox
	pkgs sandbox.Packages
)

func TestMain(m *testing.M) {
	env := append(sandbox.Env(), sandbox.PackagesEnv()...)
	os.Exit(tier.Main(m, tier.Tier{Name: "package", Env: env}, setup))
}

func logf(f string, a ...any) { fmt.Printf(f+"\n", a...) }

// setup pushes the packages, installs the Configuration through the
// package manager and composes every example, plus a Manual pool.
func setup() (func(), error) {
	bins, err := sandbox.BinariesFromEnv()
	if err != nil {
		return nil, err
	}
	if pkgs, err = sandbox.PackagesFromEnv(); err != nil {
		return nil, err
	}
	// Crossplane checks every composite for drift each poll interval (1m by
	// default); required resources (the control plane, MachineSets) are
	// not watched, so the tier polls more often to see their changes soon.
	bins.CrossplaneArgs = append(bins.CrossplaneArgs, "--poll-interval=5s")
	dir, err := os.MkdirTemp("", "fleetnodepool-pkg-")
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	t0 := time.Now()
	if sb, err = sandbox.Start(ctx, dir, bins, logf, sandbox.WithPackages(pkgs)); err != nil {
		return nil, err
	}
	fail := func(err error) (func(), error) { sb.Stop(); return nil, err }
	if err := sb.SetControlPlaneVersion(ctx, ns, cluster, oldVersion); err != nil {
		return fail(err)
	}
	if _, err := sb.Examples(ctx, examples, configuration, sandbox.AllExamples, logf); err != nil {
		return fail(fmt.Errorf("%w\ncrossplane log: %s", err, sb.Log("crossplane")))
	}
	// A pool that stays on its Composition revision until moved.
	manual, err := manualXR(dir)
	if err != nil {
		return fail(err)
	}
	if err := sb.Apply(ctx, manual); err != nil {
		return fail(err)
	}
	if _, err := sb.WaitComposed(ctx, manual, 2*time.Minute); err != nil {
		return fail(err)
	}
	logf("packages installed through the package manager, every example composed in %s", time.Since(t0).Round(100*time.Millisecond))
	return sb.Stop, nil
}

// manualXR writes the AWS example's pool under another name, with
// compositionUpdatePolicy Manual.
func manualXR(dir string) (string, error) {
	objs, err := sandbox.ReadObjects(filepath.Join(examples, "aws-machinedeployment", "xr.yaml"))
	if err != nil {
		return "", err
	}
	xr := objs[0]
	xr.SetName(manualPool)
	_ = unstructured.SetNestedField(xr.Object, "Manual", "spec", "crossplane", "compositionUpdatePolicy")
	b, err := xr.MarshalJSON()
	if err != nil {
		return "", err
	}
	f := filepath.Join(dir, "manual-xr.json")
	return f, os.WriteFile(f, b, 0o600)
}

func xr(ctx context.Context, name string) *unstructured.Unstructured {
	return sb.Get(ctx, compositeGV, "FleetNodePool", ns, name)
}

// mds are a pool's MachineDeployments by name.
func mds(ctx context.Context, p string) map[string]unstructured.Unstructured {
	out := map[string]unstructured.Unstructured{}
	for _, md := range sb.List(ctx, "cluster.x-k8s.io/v1beta2", "MachineDeployment", client.InNamespace(ns), client.MatchingLabels{"fleet.nodepool.dev/pool": p}) {
		out[md.GetName()] = md
	}
	return out
}

func str(u unstructured.Unstructured, path ...string) string {
	s, _, _ := unstructured.NestedString(u.Object, path...)
	return s
}

// holds fails the test if cond does not hold all along d.
func holds(t *testing.T, what string, d time.Duration, cond func() error) {
	t.Helper()
	for t0 := time.Now(); time.Since(t0) < d; time.Sleep(200 * time.Millisecond) {
		if err := cond(); err != nil {
			t.Fatalf("%s: not after %s: %v", what, time.Since(t0).Round(10*time.Millisecond), err)
		}
	}
	t.Logf("%s: held for %s", what, d)
}

// TestPackageManagerInstalledTheFunction: the Configuration's dependency
// is the one Function, named and sourced as the package manager chose, and
// it owns nothing the test made.
func TestPackageManagerInstalledTheFunction(t *testing.T) {
	ctx := t.Context()
	fns := &pkgv1.FunctionList{}
	if err := sb.Client.List(ctx, fns); err != nil {
		t.Fatal(err)
	}
	if len(fns.Items) != 1 {
		t.Fatalf("want the one Function the package manager installed, got %d:\n%s", len(fns.Items), sb.PackageReport(ctx))
	}
	fn := fns.Items[0]
	if fn.GetName() != sandbox.FunctionName {
		t.Errorf("the package manager named the Function %q; the Compositions reference %q", fn.GetName(), sandbox.FunctionName)
	}
	if want := sandbox.FunctionPackage + ":" + sandbox.Version; fn.GetSource() != want {
		t.Errorf("Function package: want %s (the published name), got %s", want, fn.GetSource())
	}
	for _, c := range []xpv2.ConditionType{pkgv1.TypeInstalled, pkgv1.TypeHealthy} {
		if got := fn.GetCondition(c); got.Status != "True" {
			t.Errorf("Function %s: %s %s", c, got.Reason, got.Message)
		}
	}
	comp := sb.Get(ctx, "apiextensions.crossplane.io/v1", "Composition", "", "fleetnodepool")
	if comp == nil {
		t.Fatal("no Composition fleetnodepool")
	}
	if o := comp.GetOwnerReferences(); len(o) == 0 || o[0].Kind != pkgv1.ConfigurationRevisionKind {
		t.Errorf("the Composition is not the Configuration's: owners %v", o)
	}
}

// TestEveryExampleComposed: every example FleetNodePool is Synced, has
// composed objects and reports the function's conditions.
func TestEveryExampleComposed(t *testing.T) {
	ctx := t.Context()
	xrs, _ := filepath.Glob(filepath.Join(examples, "*", "xr.yaml"))
	if len(xrs) == 0 {
		t.Fatal("no examples")
	}
	for _, f := range xrs {
		x, err := sb.WaitComposed(ctx, f, 10*time.Second)
		if err != nil {
			t.Error(err)
			continue
		}
		if s, _ := sandbox.Condition(x, "PoolAvailable"); s == "" {
			t.Errorf("%s/%s reports no PoolAvailable condition", x.GetNamespace(), x.GetName())
		}
	}
}

// playMachineSets creates, as Cluster API's MachineDeployment controller
// does, a MachineSet per MachineDeployment of the pool, cloning from the
// MachineDeployment's current templates; it returns them.
func playMachineSets(t *testing.T, p, suffix string) []*unstructured.Unstructured {
	t.Helper()
	ctx := t.Context()
	var out []*unstructured.Unstructured
	for name, md := range mds(ctx, p) {
		tmpl, _, _ := unstructured.NestedMap(md.Object, "spec", "template")
		sel, _, _ := unstructured.NestedMap(md.Object, "spec", "selector")
		labels, _, _ := unstructured.NestedStringMap(tmpl, "metadata", "labels")
		if labels == nil {
			labels = map[string]string{}
		}
		labels["cluster.x-k8s.io/cluster-name"] = cluster
		labels["cluster.x-k8s.io/deployment-name"] = name
		labels["fleet.nodepool.dev/pool"] = p
		ms := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "MachineSet",
			"metadata": map[string]any{"name": name + "-" + suffix, "namespace": ns},
			"spec":     map[string]any{"clusterName": cluster, "selector": sel, "template": tmpl},
		}}
		ms.SetLabels(labels)
		if err := sb.Create(ctx, ms); err != nil {
			t.Fatal(err)
		}
		out = append(out, ms)
		observeGeneration(t, name)
	}
	return out
}

// observeGeneration plays the MachineDeployment controller's status: it
// has acted on the MachineDeployment's latest spec (the function releases
// an old template only then).
func observeGeneration(t *testing.T, name string) {
	t.Helper()
	ctx := t.Context()
	sandbox.Eventually(t, "MachineDeployment "+name+" observed", sandbox.ReactTimeout, func() error {
		md := &unstructured.Unstructured{}
		md.SetAPIVersion("cluster.x-k8s.io/v1beta2")
		md.SetKind("MachineDeployment")
		if err := sb.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, md); err != nil {
			return err
		}
		_ = unstructured.SetNestedField(md.Object, md.GetGeneration(), "status", "observedGeneration")
		return sb.Client.Status().Update(ctx, md)
	})
}

// templates are the infrastructure and bootstrap templates a pool's
// MachineDeployments use.
func templates(ctx context.Context, p string) []string {
	var out []string
	for _, md := range mds(ctx, p) {
		out = append(out, "AWSMachineTemplate/"+str(md, "spec", "template", "spec", "infrastructureRef", "name"),
			"KubeadmConfigTemplate/"+str(md, "spec", "template", "spec", "bootstrap", "configRef", "name"))
	}
	sort.Strings(out)
	return out
}

func exists(ctx context.Context, tmpl string) bool {
	kind, name, _ := strings.Cut(tmpl, "/")
	gv := "infrastructure.cluster.x-k8s.io/v1beta2"
	if kind == "KubeadmConfigTemplate" {
		gv = "bootstrap.cluster.x-k8s.io/v1beta2"
	}
	return sb.Get(ctx, gv, kind, ns, name) != nil
}

func revisionOf(ctx context.Context, p string) string {
	return str(*xr(ctx, p), "spec", "crossplane", "compositionRevisionRef", "name")
}

// latestCompositionRevision is the newest revision of the Composition.
func latestCompositionRevision(ctx context.Context) (string, int64) {
	var name string
	var latest int64
	for _, r := range sb.List(ctx, "apiextensions.crossplane.io/v1", "CompositionRevision", client.MatchingLabels{"crossplane.io/composition-name": "fleetnodepool"}) {
		if n, _, _ := unstructured.NestedInt64(r.Object, "spec", "revision"); n > latest {
			name, latest = r.GetName(), n
		}
	}
	return name, latest
}

// atVersion fails unless every MachineDeployment of the pool runs version.
func atVersion(ctx context.Context, p, version string) error {
	got := mds(ctx, p)
	if len(got) == 0 {
		return fmt.Errorf("pool %s has no MachineDeployments", p)
	}
	for name, md := range got {
		if v := str(md, "spec", "template", "spec", "version"); v != version {
			return fmt.Errorf("%s at %s", name, v)
		}
	}
	return nil
}

// buildConfiguration builds the next Configuration version, as the
// platform team does: the same package with its policy's stable channel
// bumped.
func buildConfiguration(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"crossplane.yaml", "xrd.yaml", "composition.yaml"} {
		b, err := os.ReadFile(filepath.Join(configuration, f)) //nolint:gosec // Files of this repository.
		if err != nil {
			t.Fatal(err)
		}
		if f == "composition.yaml" {
			before := string(b)
			b = []byte(strings.Replace(before, "stable: "+oldVersion, "stable: "+newVersion, 1))
			if string(b) == before {
				t.Fatalf("the Composition's policy has no stable: %s", oldVersion)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil { //nolint:gosec // A package file of this repository, into a temporary directory.
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "configuration-fleetnodepool-"+v2+".xpkg")
	cmd := exec.CommandContext(t.Context(), pkgs.CLI, "xpkg", "build", "--package-root="+dir, "--examples-root="+examples, "-o", out) //nolint:gosec // The pinned crossplane CLI.
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("crossplane xpkg build: %v\n%s", err, b)
	}
	return out
}

// TestUpgradeThroughThePackageManager: the platform team publishes a
// Configuration whose policy bumps the stable channel, and upgrades the
// installed Configuration to it. The Composition gets a new revision;
// Automatic pools take it and roll once their control plane runs the new
// version, keeping their old templates until the MachineSets using them
// are gone; a Manual pool stays on its revision until moved.
func TestUpgradeThroughThePackageManager(t *testing.T) {
	ctx := t.Context()
	oldTemplates := templates(ctx, pool)
	oldMachineSets := playMachineSets(t, pool, "v1")
	oldRevision, oldN := latestCompositionRevision(ctx)
	if got := revisionOf(ctx, manualPool); got != oldRevision {
		t.Fatalf("the Manual pool is on %q, not the current revision %q", got, oldRevision)
	}

	file := buildConfiguration(t)
	if err := sb.Push(ctx, file, sandbox.ConfigurationPackage, v2); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := sb.InstallPackage(ctx, sandbox.ConfigurationPackage+":"+v2); err != nil {
		t.Fatal(err)
	}
	t.Logf("Configuration %s installed and healthy: %s", v2, time.Since(t0).Round(10*time.Millisecond))

	var newRevision string
	sandbox.Eventually(t, "the Composition has a new revision with the bumped channel", 30*time.Second, func() error {
		name, n := latestCompositionRevision(ctx)
		if n <= oldN {
			return fmt.Errorf("latest revision %d", n)
		}
		comp := sb.Get(ctx, "apiextensions.crossplane.io/v1", "Composition", "", "fleetnodepool")
		steps, _, _ := unstructured.NestedSlice(comp.Object, "spec", "pipeline")
		if v, _, _ := unstructured.NestedString(steps[0].(map[string]any), "input", "channels", "stable"); v != newVersion {
			return fmt.Errorf("stable channel %s", v)
		}
		newRevision = name
		return nil
	})

	sandbox.Eventually(t, "the Automatic pool takes the new revision and holds: its control plane is behind", sandbox.ReactTimeout, func() error {
		if got := revisionOf(ctx, pool); got != newRevision {
			return fmt.Errorf("on revision %s", got)
		}
		if s, msg := sandbox.Condition(xr(ctx, pool), "UpgradePending"); s != "True" || !strings.Contains(msg, newVersion) {
			return fmt.Errorf("UpgradePending %s %q", s, msg)
		}
		return nil
	})
	if err := atVersion(ctx, pool, oldVersion); err != nil {
		t.Errorf("the pool moved before its control plane: %v", err)
	}

	if err := sb.SetControlPlaneVersion(ctx, ns, cluster, newVersion); err != nil {
		t.Fatal(err)
	}
	sandbox.Eventually(t, "control plane at "+newVersion+": the Automatic pool rolls", sandbox.ReactTimeout, func() error {
		return atVersion(ctx, pool, newVersion)
	})
	newTemplates := templates(ctx, pool)
	if strings.Join(newTemplates, ",") == strings.Join(oldTemplates, ",") {
		t.Errorf("the rollout kept the templates: %v", newTemplates)
	}
	// For two poll intervals, in which Crossplane reconciles every pool
	// again: the old templates stay while MachineSets clone from them, and
	// the Manual pool stays where it was.
	holds(t, "old templates kept while their MachineSets exist; the Manual pool stays on its revision", 10*time.Second, func() error {
		for _, tmpl := range oldTemplates {
			if !exists(ctx, tmpl) {
				return fmt.Errorf("%s was deleted while a MachineSet still clones from it", tmpl)
			}
		}
		if got := revisionOf(ctx, manualPool); got != oldRevision {
			return fmt.Errorf("the Manual pool moved to revision %s by itself", got)
		}
		if err := atVersion(ctx, manualPool, oldVersion); err != nil {
			return fmt.Errorf("the Manual pool rolled by itself: %w", err)
		}
		return nil
	})

	// Cluster API rolls the machines over: the new MachineSets come up, the
	// old ones are scaled down and deleted.
	playMachineSets(t, pool, "v2")
	for _, ms := range oldMachineSets {
		if err := sb.Client.Delete(ctx, ms); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
	}
	sandbox.Eventually(t, "old MachineSets gone: the old templates are deleted", sandbox.ReactTimeout, func() error {
		for _, tmpl := range oldTemplates {
			if !strings.Contains(strings.Join(newTemplates, ","), tmpl) && exists(ctx, tmpl) {
				return fmt.Errorf("%s still there", tmpl)
			}
		}
		return nil
	})
	for _, tmpl := range newTemplates {
		if !exists(ctx, tmpl) {
			t.Errorf("%s, which the pool uses, was deleted", tmpl)
		}
	}

	m := xr(ctx, manualPool)
	_ = unstructured.SetNestedField(m.Object, newRevision, "spec", "crossplane", "compositionRevisionRef", "name")
	if err := sb.Client.Update(ctx, m); err != nil {
		t.Fatal(err)
	}
	sandbox.Eventually(t, "the Manual pool moved to the new revision: it rolls", sandbox.ReactTimeout, func() error {
		return atVersion(ctx, manualPool, newVersion)
	})
}
