//go:build conformance

package conformance

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fleetnodepool/function-fleetnodepool/test/internal/sandbox"
	"github.com/fleetnodepool/function-fleetnodepool/test/internal/upstream"
)

var update = flag.Bool("update", false, "rewrite the golden file of the webhooks that judge each composed kind")

// judgesGolden lists, for every kind the examples compose, the upstream
// webhooks that admitted it and who served them.
const judgesGolden = "testdata/judges.golden"

const (
	errUpstreamManifests = "cannot read the upstream webhook manifests"
	errServedWebhooks    = "cannot list the webhook configurations the API server has"
	errResource          = "cannot map a composed kind to its resource"
)

// unjudged are composed kinds whose provider ships webhooks this tier does
// not serve, and why. Anything else a provider ships a webhook for must be
// served, or the tier fails.
var unjudged = map[schema.GroupResource]string{
	{Group: "infrastructure.cluster.x-k8s.io", Resource: "devmachinetemplates"}: "CAPD (the sim provider, test infrastructure): its webhooks are internal Go, " +
		"and its manager binds a fixed port (19000) that the CAPI sandbox, metrics and fleet tiers' CAPD uses; the fleet tier runs it with its webhooks",
}

// upstreamManifests are the webhook manifests of every pinned module whose
// kinds the function composes, by the name of the manager that serves them
// in a real install.
func upstreamManifests() (map[string]string, error) {
	capi, err := upstream.Dir("sigs.k8s.io/cluster-api", "")
	if err != nil {
		return nil, err
	}
	capd, err := upstream.Dir("sigs.k8s.io/cluster-api/test", "")
	if err != nil {
		return nil, err
	}
	out := map[string]string{
		"capi-core":                  filepath.Join(capi, "core/config/webhook/manifests.yaml"),
		"capi-kubeadm-bootstrap":     filepath.Join(capi, "bootstrap/kubeadm/config/webhook/manifests.yaml"),
		"capi-kubeadm-control-plane": filepath.Join(capi, "controlplane/kubeadm/config/webhook/manifests.yaml"),
		"capd":                       filepath.Join(capd, "infrastructure/docker/config/webhook/manifests.yaml"),
	}
	providers, err := sandbox.ProviderWebhookManifests()
	if err != nil {
		return nil, err
	}
	for name, m := range providers {
		out[name] = m
	}
	return out, nil
}

// A hook is one admission webhook: its name and its configuration's.
type hook struct {
	Name, Config string
	Mutating     bool
}

// hooks are the webhooks of configurations that admit creates or updates,
// by the resources they admit.
func hooks(mutating []admissionv1.MutatingWebhookConfiguration, validating []admissionv1.ValidatingWebhookConfiguration) map[schema.GroupResource][]hook {
	out := map[schema.GroupResource][]hook{}
	add := func(config, name string, mutating bool, rules []admissionv1.RuleWithOperations) {
		for _, r := range rules {
			if !slices.ContainsFunc(r.Operations, func(op admissionv1.OperationType) bool {
				return op == admissionv1.Create || op == admissionv1.Update || op == admissionv1.OperationAll
			}) {
				continue
			}
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					gr := schema.GroupResource{Group: g, Resource: res}
					if !slices.Contains(out[gr], hook{Name: name, Config: config, Mutating: mutating}) {
						out[gr] = append(out[gr], hook{Name: name, Config: config, Mutating: mutating})
					}
				}
			}
		}
	}
	for _, c := range mutating {
		for _, w := range c.Webhooks {
			add(c.Name, w.Name, true, w.Rules)
		}
	}
	for _, c := range validating {
		for _, w := range c.Webhooks {
			add(c.Name, w.Name, false, w.Rules)
		}
	}
	return out
}

// shippedHooks are the webhooks the upstream manifests ship, their
// configurations named after the manager that serves them.
func shippedHooks() (map[schema.GroupResource][]hook, error) {
	manifests, err := upstreamManifests()
	if err != nil {
		return nil, err
	}
	var mutating []admissionv1.MutatingWebhookConfiguration
	var validating []admissionv1.ValidatingWebhookConfiguration
	for name, path := range manifests {
		m, v, err := upstream.WebhookConfigs(path, name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		for _, c := range m {
			c.Name = name
			mutating = append(mutating, *c)
		}
		for _, c := range v {
			c.Name = name
			validating = append(validating, *c)
		}
	}
	return hooks(mutating, validating), nil
}

// servedHooks are the webhooks the API server calls.
func servedHooks(ctx context.Context, c client.Client) (map[schema.GroupResource][]hook, error) {
	m := &admissionv1.MutatingWebhookConfigurationList{}
	if err := c.List(ctx, m); err != nil {
		return nil, err
	}
	v := &admissionv1.ValidatingWebhookConfigurationList{}
	if err := c.List(ctx, v); err != nil {
		return nil, err
	}
	return hooks(m.Items, v.Items), nil
}

// judge is who serves a configuration: its name starts with the manager's
// (sandbox.StartCAPIWebhooks, StartProviders).
func judge(config string) string {
	for prefix, who := range map[string]string{
		"capa-":                   "CAPA manager",
		"capz-":                   "CAPZ manager",
		"capi-core-":              "Cluster API core manager",
		"capi-kubeadm-bootstrap-": "Cluster API kubeadm bootstrap manager",
	} {
		if strings.HasPrefix(config, prefix) {
			return who
		}
	}
	return config
}

// composedKinds collects the kinds of composed objects, by resource.
type composedKinds map[schema.GroupResource]string

func (k composedKinds) add(o *unstructured.Unstructured) error {
	gvk := o.GroupVersionKind()
	m, err := api.client.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return fmt.Errorf("%s %s: %w", errResource, gvk, err)
	}
	k[m.Resource.GroupResource()] = gvk.Kind
	return nil
}

// checkJudged fails the test for every composed kind that an upstream
// webhook ships for and the API server does not call, unless unjudged says
// why, and compares who judged what with the golden file.
func checkJudged(t *testing.T, kinds composedKinds) {
	t.Helper()
	shipped, err := shippedHooks()
	if err != nil {
		t.Fatalf("%s: %v", errUpstreamManifests, err)
	}
	served, err := servedHooks(t.Context(), api.client)
	if err != nil {
		t.Fatalf("%s: %v", errServedWebhooks, err)
	}
	grs := make([]schema.GroupResource, 0, len(kinds))
	for gr := range kinds {
		grs = append(grs, gr)
	}
	slices.SortFunc(grs, func(a, b schema.GroupResource) int { return strings.Compare(kinds[a]+a.Group, kinds[b]+b.Group) })
	var table []string
	for _, gr := range grs {
		line := fmt.Sprintf("%s (%s):", kinds[gr], gr.Group)
		if len(shipped[gr]) == 0 {
			table = append(table, line+" no upstream webhook: the API server's schema judges (for a custom kind, its CRD's schema and CEL rules)")
			continue
		}
		for _, h := range shipped[gr] {
			i := slices.IndexFunc(served[gr], func(s hook) bool { return s.Name == h.Name && s.Mutating == h.Mutating })
			kind := "validating"
			if h.Mutating {
				kind = "mutating"
			}
			switch {
			case i >= 0:
				table = append(table, fmt.Sprintf("%s %s webhook %s (shipped by %s), served by the %s", line, kind, h.Name, h.Config, judge(served[gr][i].Config)))
			case unjudged[gr] != "":
				table = append(table, fmt.Sprintf("%s %s webhook %s (shipped by %s) NOT served: %s", line, kind, h.Name, h.Config, unjudged[gr]))
			default:
				t.Errorf("%s is composed and %s ships the %s webhook %s for it, but the API server calls none: serve it (its manager in startAPIServer), or say in unjudged why not",
					kinds[gr], h.Config, kind, h.Name)
			}
		}
	}
	got := strings.Join(table, "\n") + "\n"
	t.Logf("who judged each composed kind:\n%s", got)
	if *update {
		if err := os.WriteFile(judgesGolden, []byte(got), 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(judgesGolden)
	if err != nil {
		t.Fatalf("cannot read %s (`make test-conformance GOLDEN=1` writes it): %v", judgesGolden, err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("the webhooks judging the composed kinds changed (review, then rewrite %s with `make test-conformance GOLDEN=1`): -want, +got:\n%s", judgesGolden, diff)
	}
}

// checkManagers fails the test if a manager stopped running as it
// should (exited, a watched kind without its CRD, a panic). Reconcile
// errors for want of cloud credentials are expected and not checked.
func checkManagers(t *testing.T) {
	t.Helper()
	for name, why := range api.managers.ManagerErrors() {
		t.Errorf("the %s manager does not run as it should: %s", name, why)
	}
}
