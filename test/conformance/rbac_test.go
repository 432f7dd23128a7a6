//go:build conformance

package conformance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/fleetnodepool/function-fleetnodepool/test/internal/render"
)

const (
	rbacNamespace = "crossplane-system"
	rbacAccount   = "crossplane"
)

// TestRBAC applies every example's objects, deletes them, and reads what
// the function requires, as a service account bound only to the shipped
// ClusterRole: all of it must be allowed, and more must not. With any one
// rule removed, something must be denied.
func TestRBAC(t *testing.T) {
	b, err := os.ReadFile("../../package/rbac/clusterrole.yaml")
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.UnmarshalStrict(b, role); err != nil {
		t.Fatal(err)
	}
	objs := renderAll(t)
	if err := ensureNamespace(t.Context(), api.client, rbacNamespace); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "fleetnodepool-rbac-test"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: rbacAccount, Namespace: rbacNamespace}},
	}
	if err := api.client.Create(t.Context(), binding); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(api.env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: fmt.Sprintf("system:serviceaccount:%s:%s", rbacNamespace, rbacAccount)}
	as, err := client.New(cfg, client.Options{Scheme: api.client.Scheme()})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("AllowsEverythingTheFunctionNeeds", func(t *testing.T) {
		setRole(t, role)
		if err := eventually(func() error { return exercise(t.Context(), as, objs) }); err != nil {
			t.Errorf("as a service account bound to %s: %v", role.Name, err)
		}
	})
	t.Run("AllowsNothingMore", func(t *testing.T) {
		setRole(t, role)
		for name, op := range map[string]func() error{
			"read a Secret": func() error {
				return as.Get(t.Context(), client.ObjectKey{Namespace: "team-a", Name: "s"}, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret"}})
			},
			"delete a Cluster": func() error {
				return as.Delete(t.Context(), &unstructured.Unstructured{Object: map[string]any{"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster", "metadata": map[string]any{"name": "prod-eu-1", "namespace": "team-a"}}})
			},
			"update a MachineSet": func() error { return apply(t.Context(), as, machineSetObject()) },
			"create a Pod": func() error {
				return as.Create(t.Context(), &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "x", "namespace": "team-a"},
					"spec": map[string]any{"containers": []any{map[string]any{"name": "x", "image": "x"}}}}})
			},
		} {
			if err := op(); !apierrors.IsForbidden(err) {
				t.Errorf("%s: want Forbidden, got %v", name, err)
			}
		}
	})
	for i := range role.Rules {
		t.Run(fmt.Sprintf("FailsWithoutRule%d", i), func(t *testing.T) {
			reduced := role.DeepCopy()
			reduced.Rules = append(reduced.Rules[:i:i], reduced.Rules[i+1:]...)
			setRole(t, reduced)
			err := eventually(func() error {
				err := exercise(t.Context(), as, objs)
				if apierrors.IsForbidden(err) {
					return nil
				}
				return fmt.Errorf("without rule %d %v, want a Forbidden error, got %w", i, role.Rules[i], err)
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	setRole(t, role)
}

// exercise does what Crossplane does with the function's objects: reads
// the required resources, applies every composed object, and deletes them.
func exercise(ctx context.Context, c client.Client, objs []*unstructured.Unstructured) error {
	reads := []struct {
		gvk  schema.GroupVersionKind
		name string
	}{
		{schema.GroupVersionKind{Group: "cluster.x-k8s.io", Version: "v1beta2", Kind: "Cluster"}, "prod-eu-1"},
		{schema.GroupVersionKind{Group: "controlplane.cluster.x-k8s.io", Version: "v1beta2", Kind: "KubeadmControlPlane"}, "prod-eu-1"},
		{schema.GroupVersionKind{Group: "controlplane.cluster.x-k8s.io", Version: "v1beta2", Kind: "AWSManagedControlPlane"}, "eks-eu-1"},
		{schema.GroupVersionKind{Group: "infrastructure.cluster.x-k8s.io", Version: "v1beta1", Kind: "AzureASOManagedControlPlane"}, "aks-weu-1"},
		{schema.GroupVersionKind{Group: "infrastructure.cluster.x-k8s.io", Version: "v1beta1", Kind: "AzureManagedControlPlane"}, "aks-weu-1"},
	}
	for _, r := range reads {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(r.gvk)
		if err := c.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: r.name}, u); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("get %s: %w", r.gvk.Kind, err)
		}
	}
	for _, kind := range []string{"MachineSetList", "ClusterList"} {
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(schema.GroupVersionKind{Group: "cluster.x-k8s.io", Version: "v1beta2", Kind: kind})
		if err := c.List(ctx, l, client.InNamespace("team-a")); err != nil {
			return fmt.Errorf("list %s: %w", kind, err)
		}
	}
	for _, o := range objs {
		if err := apply(ctx, c, o); err != nil {
			return fmt.Errorf("apply %s %s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	for _, o := range objs {
		if err := c.Delete(ctx, o.DeepCopy()); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete %s %s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	return nil
}

// renderAll renders every example, creating their Clusters.
func renderAll(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	xrs, err := filepath.Glob(filepath.Join(examplesDir, "*", "xr.yaml"))
	if err != nil || len(xrs) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	var all []*unstructured.Unstructured
	for _, xr := range xrs {
		c := render.ExampleCase(filepath.Dir(xr), xrdPath)
		if err := createFixtures(t.Context(), c.Required); err != nil {
			t.Fatal(err)
		}
		_, objs, err := render.RenderComposed(t.Context(), tools, fn, c)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, objs...)
	}
	return all
}

func setRole(t *testing.T, role *rbacv1.ClusterRole) {
	t.Helper()
	r := role.DeepCopy()
	r.ResourceVersion = ""
	if err := api.client.Delete(t.Context(), r); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	if err := eventually(func() error { return api.client.Create(t.Context(), r.DeepCopy()) }); err != nil {
		t.Fatal(err)
	}
}

// eventually retries fn for a few seconds: RBAC changes reach the
// authorizer through an informer.
func eventually(fn func() error) error {
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if err = fn(); err == nil {
			return nil
		}
	}
	return err
}

func machineSetObject() *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "MachineSet",
		"metadata": map[string]any{"name": "ms", "namespace": "team-a"},
		"spec":     map[string]any{"clusterName": "prod-eu-1"},
	}}
}
