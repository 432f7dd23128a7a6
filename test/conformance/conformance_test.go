//go:build conformance

package conformance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/fleetnodepool/function-fleetnodepool/test/internal/render"
	"github.com/fleetnodepool/function-fleetnodepool/test/internal/sandbox"
	"github.com/fleetnodepool/function-fleetnodepool/test/internal/tier"
)

const (
	examplesDir = "../../examples"
	xrdPath     = "../../package/configuration/xrd.yaml"
	// fieldOwner is the field manager Crossplane applies composed
	// resources with (one per XR).
	fieldOwner = "apiextensions.crossplane.io/composed/conformance"
)

var (
	api   *apiServer
	tools render.Tools
	fn    *render.Function
)

// The variables of the API server's binaries, which the Makefile sets.
const (
	envAPIServer = "KUBE_APISERVER"
	envEtcd      = "ETCD"
)

// capiEnv are the variables of the Cluster API managers the tier runs (of
// sandbox.CAPIEnv: core and kubeadm bootstrap, whose webhooks judge the
// kinds the function composes; the kubeadm control plane and CAPD are not
// run).
var capiEnv = sandbox.CAPIEnv()[:2]

func TestMain(m *testing.M) {
	env := append(append(append(render.Env(), envAPIServer, envEtcd), capiEnv...), sandbox.ProvidersEnv()...)
	os.Exit(tier.Main(m, tier.Tier{Name: "conformance", Env: env}, setup))
}

// setup starts the API server, the provider managers and the function.
func setup() (func(), error) {
	var err error
	if tools, err = render.ToolsFromEnv(); err != nil {
		return nil, err
	}
	capi := sandbox.CAPIBinaries{Core: os.Getenv(capiEnv[0]), Bootstrap: os.Getenv(capiEnv[1])}
	providers, err := sandbox.ProviderBinariesFromEnv()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "conformance-")
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	if api, err = startAPIServer(os.Getenv(envAPIServer), os.Getenv(envEtcd), capi, providers, dir); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	fmt.Printf("kube-apiserver with %d CRDs and the Cluster API, CAPA and CAPZ managers ready in %s (their logs: %s)\n",
		api.crds, time.Since(t0).Round(100*time.Millisecond), dir)
	if fn, err = render.StartFunction(context.Background(), tools.Function); err != nil {
		api.Stop()
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return func() { fn.Stop(); api.Stop(); _ = os.RemoveAll(dir) }, nil
}

// A revision is one state of an example's FleetNodePool.
type revision struct {
	name string
	edit func(xr map[string]any, managed bool)
}

// nextRevision is the edit users make: a new version and node label, and
// (except on managed node groups, where EKS cannot change the machine in
// place and the function refuses it) a new machine class: new templates
// and an updated MachineDeployment or MachinePool.
func nextRevision(xr map[string]any, managed bool) {
	s := render.Spec(xr)
	delete(s, "channel")
	s["version"] = "v1.34.1"
	s["labels"] = map[string]any{"revision": "2"}
	if !managed {
		s["machine"] = map[string]any{"class": "small"}
	}
}

// revisions an example goes through: as written, the next revision, and the
// same again (an idempotent re-apply, which catches webhook defaulting that
// fights immutability), then new scaling, and the same again.
var revisions = []revision{
	{name: "create"},
	{name: "update", edit: nextRevision},
	{name: "reapply", edit: nextRevision},
	{name: "rescale", edit: rescaled},
	{name: "rescale-reapply", edit: rescaled},
}

// rescaled is the next revision with new autoscaler bounds: a fixed pool
// handed over to the autoscaler, an autoscaled one's bounds moved (the
// scaling rules of CAPA's managed node group webhook, CAPI's replica
// defaulting).
func rescaled(xr map[string]any, managed bool) {
	nextRevision(xr, managed)
	render.Spec(xr)["scaling"] = map[string]any{"min": int64(3), "max": int64(9)}
}

// TestExamplesAccepted applies every rendered object of every example, for
// each revision, to the real API server: zero rejections.
func TestExamplesAccepted(t *testing.T) {
	xrs, err := filepath.Glob(filepath.Join(examplesDir, "*", "xr.yaml"))
	if err != nil || len(xrs) == 0 {
		t.Fatalf("no examples under %s: %v", examplesDir, err)
	}
	t.Cleanup(func() { checkManagers(t) })
	kinds := composedKinds{}
	for _, xr := range xrs {
		dir := filepath.Dir(xr)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			managed := false
			var applied []*unstructured.Unstructured
			for _, rev := range revisions {
				c := render.ExampleCase(dir, xrdPath)
				if rev.edit != nil {
					if c.XR, err = render.EditXR(c.XR, t.TempDir(), func(xr map[string]any) { rev.edit(xr, managed) }); err != nil {
						t.Fatal(err)
					}
				}
				out, err := render.Render(t.Context(), tools, fn, c)
				if err != nil {
					t.Fatalf("%s: render: %v", rev.name, err)
				}
				objs, err := render.Composed(out)
				if err != nil {
					t.Fatal(err)
				}
				managed = managed || slices.ContainsFunc(objs, func(o *unstructured.Unstructured) bool {
					return o.GetKind() == "AWSManagedMachinePool" || o.GetKind() == "AzureASOManagedMachinePool"
				})
				if err := createFixtures(t.Context(), c.Required); err != nil {
					t.Fatal(err)
				}
				// Crossplane applies composed resources in map order, so every
				// order must be admitted: apply the hardest one, each
				// MachineDeployment before the templates it references.
				slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int {
					return rank(a) - rank(b)
				})
				t0 := time.Now()
				for _, o := range objs {
					if err := kinds.add(o); err != nil {
						t.Fatal(err)
					}
					if err := apply(t.Context(), api.client, o); err != nil {
						t.Errorf("%s: the API server rejected %s %s: %v", rev.name, o.GetKind(), o.GetName(), err)
						continue
					}
					if d, err := changedByAdmission(t.Context(), o); err != nil {
						t.Error(err)
					} else if len(d) > 0 {
						t.Errorf("%s: the API server stored %s %s with fields the function set removed or changed (a webhook's defaulting or the schema's pruning; Crossplane would fight it on every reconcile): %v",
							rev.name, o.GetKind(), o.GetName(), d)
					}
				}
				t.Logf("%s: applied %d objects in %s", rev.name, len(objs), time.Since(t0).Round(time.Millisecond))
				applied = objs
			}
			observedRevision(t, dir, applied, kinds, managed)
		})
	}
	checkJudged(t, kinds)
}

// observedRevision renders the pool again with what the API server stored
// as observed, as Crossplane's next reconcile does, and applies it: what a
// first render leaves for later is composed now (a Flexible AzureMachinePool
// once its MachinePool exists). A managed pool (an EKS node group, an AKS
// agent pool) is edited the way its cloud cannot apply in place, a new
// machine class and disk: the function keeps those fields as they run
// (ChangeRefused, ImmutableField), and what it sends must be admitted
// (CAPA's webhook rejects an instance type or disk change of an
// AWSManagedMachinePool). Any other keeps the last revision.
func observedRevision(t *testing.T, dir string, applied []*unstructured.Unstructured, kinds composedKinds, managed bool) {
	t.Helper()
	name := "observed"
	edit := func(xr map[string]any) { rescaled(xr, managed) }
	if managed {
		name = "immutable"
		edit = func(xr map[string]any) {
			nextRevision(xr, false)
			render.Spec(xr)["machine"].(map[string]any)["diskGiB"] = int64(120)
		}
	}
	c := render.ExampleCase(dir, xrdPath)
	var err error
	if c.XR, err = render.EditXR(c.XR, t.TempDir(), edit); err != nil {
		t.Fatal(err)
	}
	// The objects as stored, each with the composition resource name
	// Crossplane observes it under.
	c.Observed = t.TempDir()
	for i, o := range applied {
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(o.GroupVersionKind())
		if err := api.client.Get(t.Context(), client.ObjectKeyFromObject(o), got); err != nil {
			t.Fatal(err)
		}
		got.SetManagedFields(nil)
		b, err := yaml.Marshal(got.Object)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(c.Observed, fmt.Sprintf("%02d.yaml", i)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, err := render.Render(t.Context(), tools, fn, c)
	if err != nil {
		t.Fatalf("%s: render: %v", name, err)
	}
	if managed && !strings.Contains(string(out), "ImmutableField") {
		t.Errorf("%s: the function did not refuse the fields the running pool cannot change (no ChangeRefused ImmutableField):\n%s", name, out)
	}
	objs, err := render.Composed(out)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int { return rank(a) - rank(b) })
	for _, o := range objs {
		if err := kinds.add(o); err != nil {
			t.Fatal(err)
		}
		if err := apply(t.Context(), api.client, o); err != nil {
			t.Errorf("%s: the API server rejected %s %s: %v", name, o.GetKind(), o.GetName(), err)
		}
	}
	t.Logf("%s: rendered with the stored objects as observed, %d objects applied", name, len(objs))
}

const errReadBack = "cannot read back an applied object"

// changedByAdmission reads back an applied object and returns the paths of
// its spec that the API server did not store as applied: defaulting may add
// fields, never remove or change the function's.
func changedByAdmission(ctx context.Context, o *unstructured.Unstructured) ([]string, error) {
	got := &unstructured.Unstructured{}
	got.SetGroupVersionKind(o.GroupVersionKind())
	if err := api.client.Get(ctx, client.ObjectKeyFromObject(o), got); err != nil {
		return nil, fmt.Errorf("%s %s %s: %w", errReadBack, o.GetKind(), o.GetName(), err)
	}
	return changed(o.Object["spec"], got.Object["spec"], "spec"), nil
}

// changed returns the paths under path where stored lacks or differs from
// applied.
func changed(applied, stored any, path string) []string {
	switch a := applied.(type) {
	case nil:
		return nil
	case map[string]any:
		s, ok := stored.(map[string]any)
		if !ok {
			return []string{path}
		}
		var out []string
		for k, v := range a {
			out = append(out, changed(v, s[k], path+"."+k)...)
		}
		slices.Sort(out)
		return out
	case []any:
		s, ok := stored.([]any)
		if !ok || len(s) != len(a) {
			return []string{path}
		}
		var out []string
		for i := range a {
			out = append(out, changed(a[i], s[i], fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	}
	if stored == nil || fmt.Sprint(applied) != fmt.Sprint(stored) {
		return []string{path}
	}
	return nil
}

// rank orders composed objects: each MachineDeployment before the
// templates it references (the hardest order for them), and each
// MachinePool before its infrastructure machine pool, which is the only
// order CAPZ admits for a Flexible AzureMachinePool: its webhook looks up
// the parent MachinePool (for its version) and rejects it when there is
// none yet (TestNegativeControls, AzureMachinePoolBeforeItsMachinePool).
// Crossplane applies composed resources in map order, so on a first
// reconcile that applies the AzureMachinePool first, that apply fails and
// the next reconcile, with the MachinePool there, succeeds.
func rank(o *unstructured.Unstructured) int {
	switch o.GetKind() {
	case "MachineDeployment", "MachinePool":
		return 0
	}
	return 1
}

// TestWebhooksAreServed checks that the upstream webhooks really run, by a
// default each sets that the function leaves unset: CAPI's MachineDeployment
// defaulter sets the replicas of an autoscaled MachineDeployment to the
// autoscaler's minimum, CAPA's AWSMachinePool defaulter a cooldown of 300 s,
// CAPZ's AzureMachineTemplate defaulter a random SSH public key.
func TestWebhooksAreServed(t *testing.T) {
	ns := "webhooks-served"
	if err := ensureCluster(t.Context(), api.client, ns, "c", "AWSCluster"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { checkManagers(t) })
	cases := map[string]struct {
		reason string
		apply  func(t *testing.T) (string, error)
		// want is the defaulted field; any is any non-empty value (a random
		// default).
		want string
	}{
		"CAPIMachineDeploymentReplicas": {
			reason: "The Cluster API core manager's MachineDeployment defaulter sets spec.replicas of a new autoscaled MachineDeployment to the autoscaler minimum.",
			apply: func(t *testing.T) (string, error) {
				return strconv.FormatInt(applyAutoscaled(t, ns, "autoscaled", "2", "5"), 10), nil
			},
			want: "2",
		},
		"CAPAAWSMachinePoolCooldown": {
			reason: "The CAPA manager's AWSMachinePool defaulter sets spec.defaultCoolDown to 300 s.",
			apply: func(t *testing.T) (string, error) {
				return applyAndRead(t, awsMachinePool(ns, "defaulted"), "spec", "defaultCoolDown")
			},
			want: "5m0s",
		},
		"CAPZAzureMachineTemplateSSHKey": {
			reason: "The CAPZ manager's AzureMachineTemplate defaulter generates an SSH public key when none is set (the function always sets one, so re-applies do not fight it).",
			apply: func(t *testing.T) (string, error) {
				return applyAndRead(t, azureMachineTemplate(ns, "defaulted", "Standard_D2s_v5"), "spec", "template", "spec", "sshPublicKey")
			},
			want: "any",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := tc.apply(t)
			if err != nil {
				t.Fatalf("%s\n%v", tc.reason, err)
			}
			if tc.want == "any" && got != "" {
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nthe webhook did not run: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// applyAndRead applies o and returns the string field at path of what the
// API server stored.
func applyAndRead(t *testing.T, o *unstructured.Unstructured, path ...string) (string, error) {
	t.Helper()
	if err := apply(t.Context(), api.client, o); err != nil {
		return "", err
	}
	got := &unstructured.Unstructured{}
	got.SetGroupVersionKind(o.GroupVersionKind())
	if err := api.client.Get(t.Context(), client.ObjectKeyFromObject(o), got); err != nil {
		return "", err
	}
	v, _, err := unstructured.NestedString(got.Object, path...)
	return v, err
}

// awsMachinePool is a minimal valid AWSMachinePool.
func awsMachinePool(ns, name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "AWSMachinePool",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"minSize": int64(1), "maxSize": int64(3),
			"awsLaunchTemplate": map[string]any{"instanceType": "m6i.large"},
		},
	}}
}

// azureMachineTemplate is a minimal valid AzureMachineTemplate without an
// SSH key.
func azureMachineTemplate(ns, name, vmSize string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "AzureMachineTemplate",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			"vmSize": vmSize, "osDisk": map[string]any{"osType": "Linux", "diskSizeGB": int64(128)},
		}}},
	}}
}

// machineDeployment is a minimal valid MachineDeployment of Cluster c.
// applyAutoscaled applies the MachineDeployment ns/name autoscaled between
// min and max, without spec.replicas, as the function composes it, and
// returns the spec.replicas the API server stored.
func applyAutoscaled(t *testing.T, ns, name, minSize, maxSize string) int64 {
	t.Helper()
	md := machineDeployment(ns, name)
	md.SetAnnotations(map[string]string{
		"cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size": minSize,
		"cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size": maxSize,
	})
	if err := apply(t.Context(), api.client, md); err != nil {
		t.Fatal(err)
	}
	got := &unstructured.Unstructured{}
	got.SetGroupVersionKind(md.GroupVersionKind())
	if err := api.client.Get(t.Context(), client.ObjectKeyFromObject(md), got); err != nil {
		t.Fatal(err)
	}
	r, _, _ := unstructured.NestedInt64(got.Object, "spec", "replicas")
	return r
}

func machineDeployment(ns, name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "MachineDeployment",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"clusterName": "c",
			"selector":    map[string]any{"matchLabels": map[string]any{"a": "b"}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"a": "b"}},
				"spec": map[string]any{
					"clusterName":       "c",
					"bootstrap":         map[string]any{"dataSecretName": "s"},
					"infrastructureRef": map[string]any{"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "AWSMachineTemplate", "name": "t"},
				},
			},
		},
	}}
}

// createFixtures creates an example's required resources (its Cluster) in
// their namespaces, if they do not exist yet.
func createFixtures(ctx context.Context, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no required resources (the example's Cluster) under %q: %w", dir, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f) //nolint:gosec // An example's fixture.
		if err != nil {
			return err
		}
		objs, err := render.Objects(b)
		if err != nil {
			return err
		}
		for _, o := range objs {
			if err := ensureNamespace(ctx, api.client, o.GetNamespace()); err != nil {
				return err
			}
			if err := api.client.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("cannot create %s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err)
			}
		}
	}
	return nil
}

// apply server-side applies a composed object the way Crossplane does. It
// applies a copy: the client writes the server's answer into what it is
// given.
func apply(ctx context.Context, c client.Client, o *unstructured.Unstructured) error {
	return c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()), client.FieldOwner(fieldOwner), client.ForceOwnership)
}

// TestNegativeControls proves the judge can fail: each of these must be
// rejected with the upstream message.
func TestNegativeControls(t *testing.T) {
	ns := "negative-controls"
	if err := ensureCluster(t.Context(), api.client, ns, "c", "AWSCluster"); err != nil {
		t.Fatal(err)
	}
	awsTemplate := func(name string, spec map[string]any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "AWSMachineTemplate",
			"metadata": map[string]any{"name": name, "namespace": ns},
			"spec":     map[string]any{"template": map[string]any{"spec": spec}},
		}}
	}
	cases := map[string]struct {
		reason string
		// setup is applied first and must be accepted.
		setup *unstructured.Unstructured
		// create is created and must be rejected.
		create *unstructured.Unstructured
		// want are parts of the error: the webhook that denied it and its
		// message.
		want []string
	}{
		"WrongFieldType": {
			reason: "The CRD schema rejects a field of the wrong type.",
			create: awsTemplate("wrong-type", map[string]any{"instanceType": 5}),
			want:   []string{`spec.template.spec.instanceType: Invalid value: "integer": spec.template.spec.instanceType in body must be of type string: "integer"`},
		},
		"WrongFieldTypeThroughWebhook": {
			reason: "CAPI's MachineDeployment webhook, which runs before schema validation, rejects a field of the wrong type.",
			create: func() *unstructured.Unstructured {
				md := machineDeployment(ns, "wrong-type")
				_ = unstructured.SetNestedField(md.Object, "three", "spec", "replicas")
				return md
			}(),
			want: []string{`admission webhook "default.machinedeployment.cluster.x-k8s.io" denied the request: json: cannot unmarshal string into Go struct field MachineDeploymentSpec.spec.replicas of type int32`},
		},
		"MissingRequiredField": {
			reason: "The CRD schema rejects a template without its required instance type.",
			create: awsTemplate("missing-required", map[string]any{"iamInstanceProfile": "p"}),
			want:   []string{"spec.template.spec.instanceType: Required value"},
		},
		"CAPAInPlaceTemplateChange": {
			reason: "The CAPA manager's webhook rejects an in-place change of an AWSMachineTemplate's spec: templates must rotate.",
			setup:  awsTemplate("immutable", map[string]any{"instanceType": "m6i.large"}),
			create: awsTemplate("immutable", map[string]any{"instanceType": "m6i.xlarge"}),
			want:   []string{`admission webhook "validation.awsmachinetemplate.infrastructure.cluster.x-k8s.io" denied the request`, "AWSMachineTemplate.Spec is immutable"},
		},
		"CAPZInPlaceTemplateChange": {
			reason: "The CAPZ manager's webhook rejects an in-place change of an AzureMachineTemplate's spec: templates must rotate.",
			setup:  withSSHKey(azureMachineTemplate(ns, "immutable", "Standard_D2s_v5")),
			create: withSSHKey(azureMachineTemplate(ns, "immutable", "Standard_D4s_v5")),
			want:   []string{`admission webhook "validation.azuremachinetemplate.infrastructure.cluster.x-k8s.io" denied the request`, "AzureMachineTemplate spec.template.spec field is immutable"},
		},
		"CAPZAzureMachinePoolBeforeItsMachinePool": {
			reason: "The CAPZ manager's webhook rejects a Flexible AzureMachinePool whose MachinePool does not exist yet: it reads the parent's Kubernetes version (after 5 tries a second apart).",
			create: flexibleAzureMachinePool(ns, "orphan"),
			want:   []string{`admission webhook "validation.azuremachinepool.infrastructure.cluster.x-k8s.io" denied the request`, "failed to find parent MachinePool"},
		},
	}
	t.Cleanup(func() { checkManagers(t) })
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if tc.setup != nil {
				if err := apply(t.Context(), api.client, tc.setup); err != nil {
					t.Fatalf("%s\nsetup: %v", tc.reason, err)
				}
			}
			var err error
			if tc.setup != nil {
				err = apply(t.Context(), api.client, tc.create) // An update of the existing object.
			} else {
				err = api.client.Create(t.Context(), tc.create) // Type errors are 422 on create (500 via SSA).
			}
			if err == nil {
				t.Fatalf("%s\nthe API server accepted %s %s", tc.reason, tc.create.GetKind(), tc.create.GetName())
			}
			t.Logf("rejected as it must be: %v", err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s\nwant an error containing %q, got: %v", tc.reason, w, err)
				}
			}
		})
	}
}

// testSSHKey is an SSH public key (base64, as CAPZ takes it) for
// AzureMachineTemplates whose spec must not change by defaulting.
const testSSHKey = "c3NoLWVkMjU1MTkgQUFBQUMzTnphQzFsWkRJMU5URTVBQUFBSUM1TmhGRVZkQjNqS28xcDdvNmNQZGtqcmJOODBhVjRQZU9ON0I1YlJCTnogcGxhdGZvcm1AZXhhbXBsZS5jb20K"

func withSSHKey(o *unstructured.Unstructured) *unstructured.Unstructured {
	_ = unstructured.SetNestedField(o.Object, testSSHKey, "spec", "template", "spec", "sshPublicKey")
	return o
}

// flexibleAzureMachinePool is a minimal AzureMachinePool in Flexible
// orchestration mode, as the function composes them.
func flexibleAzureMachinePool(ns, name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "AzureMachinePool",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"location":          "westeurope",
			"orchestrationMode": "Flexible",
			"template": map[string]any{
				"vmSize":       "Standard_D2s_v5",
				"sshPublicKey": testSSHKey,
				"osDisk":       map[string]any{"osType": "Linux", "diskSizeGB": int64(128)},
			},
		},
	}}
}

// TestReplicaHandover applies a fixed MachineDeployment, then the same one
// autoscaled (no spec.replicas, autoscaler bounds), as the function does
// when a pool goes from a fixed size to autoscaling: the size must not jump,
// only be clamped into the new bounds by CAPI's defaulting.
func TestReplicaHandover(t *testing.T) {
	ns := "replica-handover"
	if err := ensureCluster(t.Context(), api.client, ns, "c", "AWSCluster"); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		reason   string
		min, max string
		want     int64
	}{
		"WithinBounds": {reason: "Five nodes, now autoscaled between 1 and 10: still five.", min: "1", max: "10", want: 5},
		"BelowMin":     {reason: "Five nodes, now autoscaled between 6 and 10: clamped up to six.", min: "6", max: "10", want: 6},
		"AboveMax":     {reason: "Five nodes, now autoscaled between 1 and 3: clamped down to three.", min: "1", max: "3", want: 3},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			md := machineDeployment(ns, strings.ToLower(name))
			_ = unstructured.SetNestedField(md.Object, int64(5), "spec", "replicas")
			if err := apply(t.Context(), api.client, md); err != nil {
				t.Fatal(err)
			}
			if r := applyAutoscaled(t, ns, strings.ToLower(name), tc.min, tc.max); r != tc.want {
				t.Errorf("%s\nspec.replicas after the handover: want %d, got %d", tc.reason, tc.want, r)
			}
		})
	}
}
