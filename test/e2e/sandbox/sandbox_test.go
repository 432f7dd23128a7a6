//go:build sandbox

// Package sandbox is the sandbox e2e tier: the real Crossplane core
// continuously reconciling the example FleetNodePools through the function
// on a local control plane with the garbage collector running
// (`make test-sandbox`, build tag sandbox). The tiers, their tags, targets
// and environments: test/README.md.
package sandbox

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fleetnodepool/function-fleetnodepool/test/internal/sandbox"
	"github.com/fleetnodepool/function-fleetnodepool/test/internal/tier"
)

var sb *sandbox.Sandbox

const (
	examples = "../../../examples"
	config   = "../../../package/configuration"
	ns       = "team-a"
	pool     = "workers"
)

func TestMain(m *testing.M) {
	os.Exit(tier.Main(m, tier.Tier{Name: "sandbox", Env: sandbox.Env()}, setup))
}

// setup starts the sandbox with every example composed, and the AWS
// example's control plane at v1.33.4.
func setup() (func(), error) {
	bins, err := sandbox.BinariesFromEnv()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "fleetnodepool-sandbox-")
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	t0 := time.Now()
	progress := func(f string, a ...any) { fmt.Printf(f+"\n", a...) }
	if sb, err = sandbox.Start(ctx, dir, bins, progress); err != nil {
		return nil, err
	}
	if _, err := sb.Examples(ctx, examples, config, sandbox.AllExamples, progress); err != nil {
		sb.Stop()
		return nil, fmt.Errorf("%w\ncrossplane log:\n%s", err, sb.Log("crossplane"))
	}
	// The control plane of the AWS example's Cluster, at v1.33.4.
	if err := sb.SetControlPlaneVersion(ctx, ns, "prod-eu-1", "v1.33.4"); err != nil {
		sb.Stop()
		return nil, err
	}
	fmt.Printf("sandbox with every example composed in %s\n", time.Since(t0).Round(100*time.Millisecond))
	return sb.Stop, nil
}

func get(ctx context.Context, apiVersion, kind, name string) *unstructured.Unstructured {
	return sb.Get(ctx, apiVersion, kind, ns, name)
}

func xr(ctx context.Context) *unstructured.Unstructured {
	return get(ctx, "fleet.nodepool.dev/v1alpha1", "FleetNodePool", pool)
}

func mds(ctx context.Context) map[string]*unstructured.Unstructured {
	items := sb.List(ctx, "cluster.x-k8s.io/v1beta2", "MachineDeployment", client.InNamespace(ns), client.MatchingLabels{"fleet.nodepool.dev/pool": pool})
	out := map[string]*unstructured.Unstructured{}
	for i := range items {
		out[items[i].GetName()] = &items[i]
	}
	return out
}

func editXR(t *testing.T, edit func(spec map[string]any)) {
	t.Helper()
	sandbox.Eventually(t, "edit the FleetNodePool", 5*time.Second, func() error {
		x := xr(t.Context())
		spec, _ := x.Object["spec"].(map[string]any)
		edit(spec)
		return sb.Client.Update(t.Context(), x)
	})
}

// TestComposed: every example's objects exist, controlled by its XR, and the
// XRs report the function's conditions.
func TestComposed(t *testing.T) {
	ctx := t.Context()
	x := xr(ctx)
	for _, typ := range []string{"PoolAvailable", "ChangeRefused", "UpgradePending", "RolloutInProgress", "Synced"} {
		if s, _ := sandbox.Condition(x, typ); s == "" {
			t.Errorf("the FleetNodePool reports no %s condition", typ)
		}
	}
	for name, md := range mds(ctx) {
		owner := md.GetOwnerReferences()
		if len(owner) == 0 || owner[0].Kind != "FleetNodePool" || owner[0].Name != pool || owner[0].Controller == nil || !*owner[0].Controller {
			t.Errorf("%s is not controlled by the FleetNodePool: %v", name, owner)
		}
	}
	if len(mds(ctx)) != 2 {
		t.Errorf("want 2 MachineDeployments (one per zone), got %d", len(mds(ctx)))
	}
}

// TestDriftReverted: a deleted composed object is recreated, a hand edit of
// a field the function owns is reverted.
func TestDriftReverted(t *testing.T) {
	ctx := t.Context()
	const md = "prod-eu-1-workers-eu-west-1a"
	if err := sb.Client.Delete(ctx, get(ctx, "cluster.x-k8s.io/v1beta2", "MachineDeployment", md)); err != nil {
		t.Fatal(err)
	}
	sandbox.Eventually(t, "deleted MachineDeployment recreated", sandbox.ReactTimeout, func() error {
		if get(ctx, "cluster.x-k8s.io/v1beta2", "MachineDeployment", md) == nil {
			return fmt.Errorf("not there")
		}
		return nil
	})
	sandbox.Eventually(t, "hand-edit the MachineDeployment", 5*time.Second, func() error {
		m := get(ctx, "cluster.x-k8s.io/v1beta2", "MachineDeployment", md)
		_ = unstructured.SetNestedField(m.Object, "v1.20.0", "spec", "template", "spec", "version")
		return sb.Client.Update(ctx, m)
	})
	sandbox.Eventually(t, "hand-edited version reverted", sandbox.ReactTimeout, func() error {
		m := get(ctx, "cluster.x-k8s.io/v1beta2", "MachineDeployment", md)
		if v, _, _ := unstructured.NestedString(m.Object, "spec", "template", "spec", "version"); v != "v1.33.4" {
			return fmt.Errorf("version %s", v)
		}
		return nil
	})
}

// TestEdits: a new machine class rotates templates, new scaling bounds
// stay in place, a removed zone's MachineDeployment is deleted.
func TestEdits(t *testing.T) {
	ctx := t.Context()
	before := mds(ctx)["prod-eu-1-workers-eu-west-1a"]
	oldInfra, _, _ := unstructured.NestedString(before.Object, "spec", "template", "spec", "infrastructureRef", "name")

	editXR(t, func(s map[string]any) { s["machine"] = map[string]any{"class": "large"} })
	sandbox.Eventually(t, "machine class: templates rotated", sandbox.ReactTimeout, func() error {
		m := mds(ctx)["prod-eu-1-workers-eu-west-1a"]
		infra, _, _ := unstructured.NestedString(m.Object, "spec", "template", "spec", "infrastructureRef", "name")
		if infra == oldInfra || get(ctx, "infrastructure.cluster.x-k8s.io/v1beta2", "AWSMachineTemplate", infra) == nil {
			return fmt.Errorf("infrastructureRef %s", infra)
		}
		return nil
	})

	editXR(t, func(s map[string]any) { s["scaling"] = map[string]any{"min": int64(4), "max": int64(12)} })
	sandbox.Eventually(t, "scaling: in place", sandbox.ReactTimeout, func() error {
		m := mds(ctx)["prod-eu-1-workers-eu-west-1a"]
		if m.GetAnnotations()["cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size"] != "6" {
			return fmt.Errorf("annotations %v", m.GetAnnotations())
		}
		if infra, _, _ := unstructured.NestedString(m.Object, "spec", "template", "spec", "infrastructureRef", "name"); infra == oldInfra {
			return fmt.Errorf("template went back")
		}
		return nil
	})

	editXR(t, func(s map[string]any) { s["zones"] = []any{"eu-west-1a"} })
	sandbox.Eventually(t, "zone removed: its MachineDeployment deleted", sandbox.ReactTimeout, func() error {
		got := mds(ctx)
		if _, ok := got["prod-eu-1-workers-eu-west-1b"]; ok || len(got) != 1 {
			return fmt.Errorf("MachineDeployments %v", slices.Collect(mapKeys(got)))
		}
		return nil
	})
}

// TestVersionBump: the platform team bumps the channel in the Composition;
// the pool holds while its control plane is behind, and moves after.
func TestVersionBump(t *testing.T) {
	ctx := t.Context()
	comp := get(ctx, "apiextensions.crossplane.io/v1", "Composition", "fleetnodepool")
	if comp == nil {
		comp = &unstructured.Unstructured{}
		comp.SetAPIVersion("apiextensions.crossplane.io/v1")
		comp.SetKind("Composition")
		if err := sb.Client.Get(ctx, client.ObjectKey{Name: "fleetnodepool"}, comp); err != nil {
			t.Fatal(err)
		}
	}
	steps, _, _ := unstructured.NestedSlice(comp.Object, "spec", "pipeline")
	input := steps[0].(map[string]any)["input"].(map[string]any)
	input["channels"].(map[string]any)["stable"] = "v1.34.1"
	_ = unstructured.SetNestedSlice(comp.Object, steps, "spec", "pipeline")
	if err := sb.Client.Update(ctx, comp); err != nil {
		t.Fatal(err)
	}
	sandbox.Eventually(t, "channel bumped, control plane behind: held", sandbox.ReactTimeout, func() error {
		if s, msg := sandbox.Condition(xr(ctx), "UpgradePending"); s != "True" || !strings.Contains(msg, "v1.34.1") {
			rs, rmsg := sandbox.Condition(xr(ctx), "Responsive")
			return fmt.Errorf("UpgradePending %s %q (Responsive %s %q)", s, msg, rs, rmsg)
		}
		return nil
	})
	for name, m := range mds(ctx) {
		if v, _, _ := unstructured.NestedString(m.Object, "spec", "template", "spec", "version"); v != "v1.33.4" {
			t.Errorf("%s moved to %s before its control plane", name, v)
		}
	}
	if err := sb.SetControlPlaneVersion(ctx, ns, "prod-eu-1", "v1.34.1"); err != nil {
		t.Fatal(err)
	}
	sandbox.Eventually(t, "control plane at v1.34.1: the pool follows", sandbox.ReactTimeout, func() error {
		for name, m := range mds(ctx) {
			if v, _, _ := unstructured.NestedString(m.Object, "spec", "template", "spec", "version"); v != "v1.34.1" {
				return fmt.Errorf("%s at %s", name, v)
			}
		}
		return nil
	})
}

// TestKindNotServed: the management cluster stops serving a kind (its CRD
// is deleted) that an edit of a running pool needs: the function returns a
// Fatal result naming the kind, its version and what serves it, Crossplane
// applies and deletes nothing, and the pool moves once the CRD is back.
func TestKindNotServed(t *testing.T) {
	ctx := t.Context()
	const (
		crdName = "awsmachinepools.infrastructure.cluster.x-k8s.io"
		want    = "AWSMachinePool infrastructure.cluster.x-k8s.io/v1beta2 is not served by the management cluster " +
			"(no CustomResourceDefinition awsmachinepools.infrastructure.cluster.x-k8s.io)"
	)
	batch := func() *unstructured.Unstructured {
		return sb.Get(ctx, "fleet.nodepool.dev/v1alpha1", "FleetNodePool", "team-c", "batch")
	}
	mdsOfBatch := func() int {
		return len(sb.List(ctx, "cluster.x-k8s.io/v1beta2", "MachineDeployment", client.InNamespace("team-c"),
			client.MatchingLabels{"fleet.nodepool.dev/pool": "batch"}))
	}
	edit := func(backend string) {
		sandbox.Eventually(t, "set the batch pool's backend to "+backend, 5*time.Second, func() error {
			x := batch()
			spec, _ := x.Object["spec"].(map[string]any)
			spec["backend"] = backend
			delete(spec, "aws") // Extra instance types need an Auto Scaling group.
			return sb.Client.Update(ctx, x)
		})
	}
	// The AWS Auto Scaling group example, moved to MachineDeployments: no
	// AWSMachinePool left.
	edit("MachineDeployment")
	sandbox.Eventually(t, "batch on MachineDeployments", sandbox.ReactTimeout, func() error {
		if n, amps := mdsOfBatch(), sb.List(ctx, "infrastructure.cluster.x-k8s.io/v1beta2", "AWSMachinePool", client.InNamespace("team-c")); n != 3 || len(amps) > 0 {
			return fmt.Errorf("%d MachineDeployments, %d AWSMachinePools", n, len(amps))
		}
		return nil
	})
	crd, err := sb.RemoveCRD(ctx, crdName)
	if err != nil {
		t.Fatal(err)
	}
	edit("MachinePool")
	sandbox.Eventually(t, "batch refused: its AWSMachinePool is not served", sandbox.ReactTimeout, func() error {
		if st, msg := sandbox.Condition(batch(), "Synced"); st != "False" || !strings.Contains(msg, want) {
			return fmt.Errorf("Synced %s: %s", st, msg)
		}
		return nil
	})
	_, msg := sandbox.Condition(batch(), "Synced")
	t.Logf("the pool's Synced condition: %s", msg)
	time.Sleep(5 * time.Second) // Reconciles more, applying nothing.
	if n := mdsOfBatch(); n != 3 {
		t.Errorf("while its kind is not served, the pool's MachineDeployments must stay: %d of 3 left", n)
	}
	if err := sb.Client.Create(ctx, crd); err != nil {
		t.Fatal(err)
	}
	sandbox.Eventually(t, "CRD back: batch on an Auto Scaling group", sandbox.ReactTimeout, func() error {
		amps := sb.List(ctx, "infrastructure.cluster.x-k8s.io/v1beta2", "AWSMachinePool", client.InNamespace("team-c"))
		if st, msg := sandbox.Condition(batch(), "Synced"); st != "True" || len(amps) != 1 {
			return fmt.Errorf("Synced %s (%s), %d AWSMachinePools", st, msg, len(amps))
		}
		return nil
	})
}

// TestRestart: core and the function restart mid-run; reconciliation
// resumes, nothing lost or duplicated.
func TestRestart(t *testing.T) {
	ctx := t.Context()
	before := len(mds(ctx))
	for _, p := range []string{"function", "crossplane"} {
		if err := sb.Restart(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	const md = "prod-eu-1-workers-eu-west-1a"
	if err := sb.Client.Delete(ctx, get(ctx, "cluster.x-k8s.io/v1beta2", "MachineDeployment", md)); err != nil {
		t.Fatal(err)
	}
	sandbox.Eventually(t, "after restarting core and the function: deleted MachineDeployment recreated", sandbox.ReactTimeout, func() error {
		if get(ctx, "cluster.x-k8s.io/v1beta2", "MachineDeployment", md) == nil {
			return fmt.Errorf("not there")
		}
		return nil
	})
	if got := len(mds(ctx)); got != before {
		t.Errorf("MachineDeployments: %d before the restart, %d after", before, got)
	}
}

// TestZDelete: deleting a FleetNodePool deletes everything it composed
// (runs last: it removes the pool the others use).
func TestZDelete(t *testing.T) {
	ctx := t.Context()
	if err := sb.Client.Delete(ctx, xr(ctx)); err != nil {
		t.Fatal(err)
	}
	sandbox.Eventually(t, "FleetNodePool deleted: its objects gone", sandbox.ReactTimeout, func() error {
		if n := len(mds(ctx)); n > 0 {
			return fmt.Errorf("%d MachineDeployments left", n)
		}
		if x := xr(ctx); x != nil {
			return fmt.Errorf("the FleetNodePool is still there")
		}
		return nil
	})
	_ = apierrors.IsNotFound
}

func mapKeys(m map[string]*unstructured.Unstructured) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
