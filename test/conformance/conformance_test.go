//go:build conformance

package conformance

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fleetnodepool/function-fleetnodepool/test/internal/render"
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

func TestMain(m *testing.M) {
	os.Exit(tier.Main(m, tier.Tier{Name: "conformance", Env: append(render.Env(), envAPIServer, envEtcd)}, setup))
}

// setup starts the API server and the function.
func setup() (func(), error) {
	var err error
	if tools, err = render.ToolsFromEnv(); err != nil {
		return nil, err
	}
	t0 := time.Now()
	if api, err = startAPIServer(os.Getenv(envAPIServer), os.Getenv(envEtcd)); err != nil {
		return nil, err
	}
	fmt.Printf("kube-apiserver with %d CRDs and upstream webhooks ready in %s\n", api.crds, time.Since(t0).Round(100*time.Millisecond))
	if fn, err = render.StartFunction(context.Background(), tools.Function); err != nil {
		api.Stop()
		return nil, err
	}
	return func() { fn.Stop(); api.Stop() }, nil
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
// fights immutability).
var revisions = []revision{
	{name: "create"},
	{name: "update", edit: nextRevision},
	{name: "reapply", edit: nextRevision},
}

// TestExamplesAccepted applies every rendered object of every example, for
// each revision, to the real API server: zero rejections.
func TestExamplesAccepted(t *testing.T) {
	xrs, err := filepath.Glob(filepath.Join(examplesDir, "*", "xr.yaml"))
	if err != nil || len(xrs) == 0 {
		t.Fatalf("no examples under %s: %v", examplesDir, err)
	}
	for _, xr := range xrs {
		dir := filepath.Dir(xr)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			managed := false
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
					return cmp.Compare(rank(a), rank(b))
				})
				t0 := time.Now()
				for _, o := range objs {
					if err := apply(t.Context(), api.client, o); err != nil {
						t.Errorf("%s: the API server rejected %s %s: %v", rev.name, o.GetKind(), o.GetName(), err)
					}
				}
				t.Logf("%s: applied %d objects in %s", rev.name, len(objs), time.Since(t0).Round(time.Millisecond))
			}
		})
	}
}

func rank(o *unstructured.Unstructured) int {
	if o.GetKind() == "MachineDeployment" {
		return 0
	}
	return 1
}

// TestWebhooksAreServed checks that the upstream webhooks really run: CAPI's
// MachineDeployment defaulter sets the replicas of a new autoscaled
// MachineDeployment to the autoscaler's minimum, which the function leaves
// unset.
func TestWebhooksAreServed(t *testing.T) {
	ns := "webhooks-served"
	if err := ensureCluster(t.Context(), api.client, ns, "c", "AWSCluster"); err != nil {
		t.Fatal(err)
	}
	if r := applyAutoscaled(t, ns, "autoscaled", "2", "5"); r != 2 {
		t.Errorf("CAPI's defaulting webhook did not run: want spec.replicas defaulted to the autoscaler minimum 2, got %d", r)
	}
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
		want   string
	}{
		"WrongFieldType": {
			reason: "The CRD schema rejects a field of the wrong type.",
			create: awsTemplate("wrong-type", map[string]any{"instanceType": 5}),
			want:   `spec.template.spec.instanceType: Invalid value: "integer": spec.template.spec.instanceType in body must be of type string: "integer"`,
		},
		"WrongFieldTypeThroughWebhook": {
			reason: "CAPI's MachineDeployment webhook, which runs before schema validation, rejects a field of the wrong type.",
			create: func() *unstructured.Unstructured {
				md := machineDeployment(ns, "wrong-type")
				_ = unstructured.SetNestedField(md.Object, "three", "spec", "replicas")
				return md
			}(),
			want: `admission webhook "default.machinedeployment.cluster.x-k8s.io" denied the request: json: cannot unmarshal string into Go struct field MachineDeploymentSpec.spec.replicas of type int32`,
		},
		"MissingRequiredField": {
			reason: "The CRD schema rejects a template without its required instance type.",
			create: awsTemplate("missing-required", map[string]any{"iamInstanceProfile": "p"}),
			want:   "spec.template.spec.instanceType: Required value",
		},
		"InPlaceTemplateChange": {
			reason: "CAPA's webhook rejects an in-place change of an AWSMachineTemplate's spec: templates must rotate.",
			setup:  awsTemplate("immutable", map[string]any{"instanceType": "m6i.large"}),
			create: awsTemplate("immutable", map[string]any{"instanceType": "m6i.xlarge"}),
			want:   "AWSMachineTemplate.Spec is immutable",
		},
	}
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
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s\nwant an error containing %q, got: %v", tc.reason, tc.want, err)
			}
		})
	}
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
