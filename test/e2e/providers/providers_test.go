//go:build providers

// Package providers is the providers e2e tier (`make test-providers`, build
// tag providers): every example composed by the real Crossplane core, with
// the real Cluster API managers (the sim examples on simulated clusters)
// and the CAPA and CAPZ managers running out of cluster with their
// webhooks, as `make sandbox PROVIDERS=1` runs them. No cloud is reachable:
// what is proven is that every object the function composes for AWS and
// Azure is admitted by its provider's own webhooks and applied, in whatever
// order Crossplane applies them (a Flexible AzureMachinePool is refused
// until its MachinePool exists), and that the managers keep running. The
// tiers, their tags, targets and environments: test/README.md.
package providers

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fleetnodepool/function-fleetnodepool/test/exampleio"
	"github.com/fleetnodepool/function-fleetnodepool/test/internal/sandbox"
	"github.com/fleetnodepool/function-fleetnodepool/test/internal/tier"
)

const (
	examples = "../../../examples"
	config   = "../../../package/configuration"
)

func TestMain(m *testing.M) {
	env := append(append(sandbox.Env(), sandbox.CAPIEnv()...), sandbox.ProvidersEnv()...)
	os.Exit(tier.Main(m, tier.Tier{Name: "providers", Env: env}, nil))
}

// TestExamplesConverge: every example, AWS and Azure ones included, is
// composed (Synced, every object it references applied) within the time
// Crossplane's retries take, and no manager exits or logs a missing CRD.
func TestExamplesConverge(t *testing.T) {
	providers, err := sandbox.ProviderBinariesFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	progress := func(f string, a ...any) { t.Logf(f, a...) }
	sb, err := sandbox.StartWithCAPI(ctx, t.TempDir(), progress)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Stop()
	if err := sb.StartProviders(ctx, providers); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	composed, err := sb.Examples(ctx, examples, config, sandbox.ProviderExamples, progress)
	if err != nil {
		t.Fatalf("%v\ncrossplane log: %s", err, sb.Log("crossplane"))
	}
	t.Logf("every example composed %s after its FleetNodePool was created:%s", time.Since(t0).Round(100*time.Millisecond), composed)

	// Every example's pool, not only the simulated ones.
	xrs, _ := filepath.Glob(filepath.Join(examples, "*", "xr.yaml"))
	for _, f := range xrs {
		want, err := exampleio.Object(f)
		if err != nil {
			t.Fatal(err)
		}
		xr := sb.Get(ctx, want.GetAPIVersion(), want.GetKind(), want.GetNamespace(), want.GetName())
		if xr == nil {
			t.Errorf("%s/%s was not created", want.GetNamespace(), want.GetName())
			continue
		}
		if st, msg := sandbox.Condition(xr, "Synced"); st != "True" {
			t.Errorf("%s/%s is not Synced: %s", xr.GetNamespace(), xr.GetName(), msg)
		}
	}
	// The AzureMachinePool of the Flexible example exists next to its
	// MachinePool: Crossplane got past CAPZ's parent lookup.
	for _, kind := range []string{"AzureMachinePool", "AWSMachinePool", "AWSManagedMachinePool", "AzureASOManagedMachinePool"} {
		av := "infrastructure.cluster.x-k8s.io/v1beta2"
		if strings.HasPrefix(kind, "Azure") {
			av = "infrastructure.cluster.x-k8s.io/v1beta1"
		}
		if n := len(sb.List(ctx, av, kind)); n == 0 {
			t.Errorf("no %s composed", kind)
		}
	}
	// Crossplane applies composed objects in map order, a new order on
	// each reconcile, and CAPZ refuses a Flexible AzureMachinePool while its
	// MachinePool does not exist (after ~5 s of retries; Crossplane then
	// backs off, and a run of bad orders held a pool for minutes): the
	// function composes the scale set on the reconcile after its
	// MachinePool's. The policy moved to Flexible scale sets (as the
	// azure-machinepool example's own Composition has them), three more
	// pools like team-d/web converge, and CAPZ never refuses one.
	if err := sb.EditPolicy(ctx, func(input map[string]any) {
		input["azure"].(map[string]any)["orchestrationMode"] = "Flexible"
	}); err != nil {
		t.Fatal(err)
	}
	// New pools take the Composition's latest revision, which Crossplane
	// makes from the edit asynchronously: one composed from the one before
	// would have Uniform scale sets, and the mode is immutable.
	sandbox.Eventually(t, "a CompositionRevision with Flexible scale sets", time.Minute, func() error {
		input := sb.LatestPolicy(ctx)
		if mode, _, _ := unstructured.NestedString(input, "azure", "orchestrationMode"); mode != "Flexible" {
			return fmt.Errorf("the latest revision has orchestrationMode %q", mode)
		}
		return nil
	})
	web, err := exampleio.Object(filepath.Join(examples, "azure-machinepool", "xr.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web-2", "web-3", "web-4"} {
		t1 := time.Now()
		u := web.DeepCopy()
		u.SetName(name)
		if err := sb.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
		sandbox.Eventually(t, "team-d/"+name+" composed", 3*time.Minute, func() error {
			xr := sb.Get(ctx, u.GetAPIVersion(), u.GetKind(), "team-d", name)
			if st, msg := sandbox.Condition(xr, "Synced"); st != "True" {
				return fmt.Errorf("not Synced: %s", msg)
			}
			if sb.Get(ctx, "cluster.x-k8s.io/v1beta2", "MachinePool", "team-d", "prod-weu-3-"+name) == nil {
				return fmt.Errorf("no MachinePool yet")
			}
			amp := sb.Get(ctx, "infrastructure.cluster.x-k8s.io/v1beta1", "AzureMachinePool", "team-d", "prod-weu-3-"+name)
			if amp == nil {
				return fmt.Errorf("no AzureMachinePool yet")
			}
			if mode, _, _ := unstructured.NestedString(amp.Object, "spec", "orchestrationMode"); mode != "Flexible" {
				return fmt.Errorf("no Flexible AzureMachinePool yet (%q)", mode)
			}
			return nil
		})
		t.Logf("team-d/%s: composed in %s", name, time.Since(t1).Round(100*time.Millisecond))
	}
	refused := 0
	for _, e := range sb.List(ctx, "v1", "Event", client.InNamespace("team-d")) {
		msg, _, _ := unstructured.NestedString(e.Object, "message")
		if strings.Contains(msg, "failed to find parent MachinePool") {
			c, _, _ := unstructured.NestedInt64(e.Object, "count")
			refused += int(max(c, 1))
		}
	}
	if refused > 0 {
		t.Errorf("CAPZ refused an AzureMachinePool %d times before its MachinePool existed (team-d's events): the function must compose it after", refused)
	}
	for name, why := range sb.ManagerErrors() {
		if why != "" {
			t.Errorf("manager %s: %s", name, why)
		}
	}
}
