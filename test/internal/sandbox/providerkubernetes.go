package sandbox

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/fleetnodepool/function-fleetnodepool/test/internal/upstream"
)

// provider-kubernetes (crossplane-contrib, pinned in
// test/tools/provider-kubernetes) carries what the central Crossplane
// composes into the cells: a namespaced Object of the central cluster,
// whose providerConfigRef names a cell's ClusterProviderConfig, applies its
// manifest to that cell, or (managementPolicies: [Observe]) reports the
// cell's object in status.atProvider.manifest.

// ProviderKubernetesEnv is the variable with provider-kubernetes' path,
// which the Makefile builds and sets.
const ProviderKubernetesEnv = "PROVIDER_KUBERNETES"

// ProviderKubernetesFromEnv reads provider-kubernetes' path.
func ProviderKubernetesFromEnv() (string, error) {
	v, err := fromEnv([]string{ProviderKubernetesEnv})
	if err != nil {
		return "", err
	}
	return v[0], nil
}

// Where provider-kubernetes is pinned, and what of its module the sandbox
// installs.
const (
	providerKubernetesModule  = "github.com/crossplane-contrib/provider-kubernetes"
	providerKubernetesTools   = "test/tools/provider-kubernetes"
	providerKubernetesCRDs    = "package/crds"
	processProviderKubernetes = "provider-kubernetes"
	// providerKubernetesWebhookPort is where it serves its conversion
	// webhook (the cluster-scoped Object's v1alpha1 to v1alpha2): the
	// controller-runtime default, which it has no flag to change.
	providerKubernetesWebhookPort = 9443
	// cellSecretKey is the key of a cell's kubeconfig in its Secret.
	cellSecretKey = "kubeconfig"
)

const (
	errPKModule  = "cannot locate provider-kubernetes' module"
	errPKCRDs    = "cannot install provider-kubernetes' CRDs"
	errPKPort    = "cannot run provider-kubernetes: its webhook port is taken (it has no flag to move it; another provider-kubernetes or `make run` of the function runs on this machine)"
	errPKReady   = "provider-kubernetes did not become ready"
	errPKConfigs = "cannot create the cells' ProviderConfigs"
)

// ProviderKubernetesArgs are the flags the sandbox runs provider-kubernetes
// with, beside its health probe address and those the caller adds: a poll
// of 15 s instead of 10 min, so that what changes in a cell shows within a
// test's patience even unwatched; watches of the remote objects (Objects
// with spec.watch: true see a change at once); debug logs; no leader
// election (one replica; its default, said explicitly: its boolean flags
// are kingpin's, --no-X, and refuse --X=false).
func ProviderKubernetesArgs() []string {
	return []string{"--debug", "--poll=15s", "--enable-watches", "--no-leader-election"}
}

// StartProviderKubernetes installs provider-kubernetes' CRDs from the
// module bin was built from, runs it out of cluster against the central
// kube-apiserver (log provider-kubernetes.log), and gives each cell a
// Secret with its host kubeconfig in crossplane-system and a
// ClusterProviderConfig named after the cell. args are added to
// ProviderKubernetesArgs.
func (s *Sandbox) StartProviderKubernetes(ctx context.Context, bin string, cells []*Cell, args ...string) error {
	t0 := time.Now()
	s.progress("starting provider-kubernetes and a ClusterProviderConfig for each of %d cells", len(cells))
	certDir := filepath.Join(s.Dir, "provider-kubernetes-webhook")
	caPEM, err := selfSignedCA(certDir)
	if err != nil {
		return err
	}
	if err := s.installProviderKubernetesCRDs(ctx, caPEM); err != nil {
		return fmt.Errorf("%s: %w", errPKCRDs, err)
	}
	l, err := net.Listen("tcp", fmt.Sprintf(":%d", providerKubernetesWebhookPort))
	if err != nil {
		return fmt.Errorf("%s: %w", errPKPort, err)
	}
	_ = l.Close()
	health, err := freeAddr()
	if err != nil {
		return err
	}
	env := []string{"KUBECONFIG=" + s.Kubeconfig, "TLS_SERVER_CERTS_DIR=" + certDir}
	flags := withFlags(append(ProviderKubernetesArgs(), "--health-probe-bind-addr="+health), args)
	if err := s.run(processProviderKubernetes, env, bin, flags...); err != nil {
		return err
	}
	s.managers = append(s.managers, processProviderKubernetes)
	if err := waitHTTP(ctx, "http://"+health+"/readyz", time.Minute); err != nil {
		return fmt.Errorf("%s (log %s): %w\n%s", errPKReady, s.Log(processProviderKubernetes), err, tail(s.Log(processProviderKubernetes), 20))
	}
	for _, c := range cells {
		if err := s.CellProviderConfig(ctx, c); err != nil {
			return fmt.Errorf("%s: %w", errPKConfigs, err)
		}
	}
	s.progress("  ready in %s", time.Since(t0).Round(100*time.Millisecond))
	return nil
}

// withFlags is flags with more added, each replacing a flag of the same
// name (--X, --X=v and --no-X are one flag): provider-kubernetes' flag
// parser (kingpin) refuses a flag given twice.
func withFlags(flags, more []string) []string {
	name := func(f string) string {
		n, _, _ := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		return strings.TrimPrefix(n, "no-")
	}
	out := make([]string, 0, len(flags)+len(more))
	for _, f := range flags {
		if !slices.ContainsFunc(more, func(m string) bool { return name(m) == name(f) }) {
			out = append(out, f)
		}
	}
	return append(out, more...)
}

// installProviderKubernetesCRDs creates the CRDs of the pinned module,
// the conversion webhook of the cluster-scoped Object pointed at the
// provider's local port, and waits until they are established.
func (s *Sandbox) installProviderKubernetesCRDs(ctx context.Context, caPEM []byte) error {
	root, err := upstream.Root()
	if err != nil {
		return err
	}
	dir, err := upstream.Dir(providerKubernetesModule, filepath.Join(root, providerKubernetesTools))
	if err != nil {
		return fmt.Errorf("%s: %w", errPKModule, err)
	}
	files, err := filepath.Glob(filepath.Join(dir, providerKubernetesCRDs, "*.yaml"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no CRDs in %s", filepath.Join(dir, providerKubernetesCRDs))
	}
	for _, f := range files {
		crd, err := readCRD(f)
		if err != nil {
			return err
		}
		if w := crd.Spec.Conversion; w != nil && w.Webhook != nil && w.Webhook.ClientConfig != nil {
			path := "/convert"
			if svc := w.Webhook.ClientConfig.Service; svc != nil && svc.Path != nil {
				path = *svc.Path
			}
			w.Webhook.ClientConfig = &apiextensionsv1.WebhookClientConfig{
				URL: ptr.To(fmt.Sprintf("https://127.0.0.1:%d%s", providerKubernetesWebhookPort, path)), CABundle: caPEM,
			}
		}
		if err := s.Client.Create(ctx, crd); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("cannot create CRD %s: %w", crd.Name, err)
		}
		if err := s.waitCRD(ctx, crd.Name); err != nil {
			return err
		}
	}
	return nil
}

// readCRD reads a CRD file.
func readCRD(path string) (*apiextensionsv1.CustomResourceDefinition, error) {
	b, err := os.ReadFile(path) //nolint:gosec // A CRD of a pinned module.
	if err != nil {
		return nil, err
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.Unmarshal(b, crd); err != nil {
		return nil, fmt.Errorf("cannot parse %s: %w", path, err)
	}
	return crd, nil
}

// CellProviderConfig gives provider-kubernetes the credentials of a cell:
// a Secret in crossplane-system (<cell>-kubeconfig) holding the cell's
// host kubeconfig, and a cluster-scoped ClusterProviderConfig named after
// the cell that reads it. An Object reaches the cell with
// providerConfigRef {kind: ClusterProviderConfig, name: <cell>}.
func (s *Sandbox) CellProviderConfig(ctx context.Context, c *Cell) error {
	kc, err := os.ReadFile(c.Kubeconfig)
	if err != nil {
		return err
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: c.Name + "-kubeconfig"},
		Data:       map[string][]byte{cellSecretKey: kc},
	}
	if err := s.Client.Create(ctx, secret); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("cannot create Secret %s/%s: %w", secret.Namespace, secret.Name, err)
	}
	pc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kubernetes.m.crossplane.io/v1alpha1", "kind": "ClusterProviderConfig",
		"metadata": map[string]any{"name": c.Name},
		"spec": map[string]any{"credentials": map[string]any{
			"source":    "Secret",
			"secretRef": map[string]any{"namespace": Namespace, "name": secret.Name, "key": cellSecretKey},
		}},
	}}
	return s.Create(ctx, pc)
}
