//go:build conformance

package conformance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/fleetnodepool/function-fleetnodepool/test/internal/sandbox"
	"github.com/fleetnodepool/function-fleetnodepool/test/internal/upstream"

	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
)

// scheme holds the types the tier reads and writes typed: the rest it
// applies as unstructured objects, which every manager decodes itself.
func scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, clusterv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// An apiServer is the running control plane and the managers whose
// webhooks judge what is applied.
type apiServer struct {
	env    *envtest.Environment
	client client.Client
	crds   int
	// managers runs the Cluster API, CAPA and CAPZ managers.
	managers *sandbox.Sandbox
}

const (
	errStartEnvtest   = "cannot start envtest"
	errKubeconfig     = "cannot write a kubeconfig for the managers"
	errStartCAPI      = "cannot start the Cluster API managers"
	errStartProviders = "cannot start the provider managers"
)

// startAPIServer starts etcd and kube-apiserver with the upstream CRDs, and
// runs the real managers whose webhooks judge what the tier applies:
// Cluster API core and kubeadm bootstrap (webhooks only), CAPA and CAPZ;
// dir holds their logs.
func startAPIServer(apiserverBin, etcdBin string, capi sandbox.CAPIBinaries, providers sandbox.ProviderBinaries, dir string) (*apiServer, error) {
	crdDirs, err := upstream.CRDDirs()
	if err != nil {
		return nil, err
	}
	s, err := scheme()
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		ControlPlane: envtest.ControlPlane{
			APIServer: &envtest.APIServer{Path: apiserverBin},
			Etcd:      &envtest.Etcd{Path: etcdBin},
		},
		Scheme:                s,
		CRDDirectoryPaths:     crdDirs,
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", errStartEnvtest, err)
	}
	a := &apiServer{env: env, crds: len(env.CRDs)}
	if a.client, err = client.New(cfg, client.Options{Scheme: s}); err != nil {
		a.Stop()
		return nil, err
	}
	kubeconfig, err := writeKubeconfig(env, dir)
	if err != nil {
		a.Stop()
		return nil, fmt.Errorf("%s: %w", errKubeconfig, err)
	}
	ctx := context.Background()
	a.managers = sandbox.Attach(dir, kubeconfig, a.client, func(format string, args ...any) { fmt.Printf(format+"\n", args...) })
	if err := a.managers.StartCAPIWebhooks(ctx, capi); err != nil {
		a.Stop()
		return nil, fmt.Errorf("%s: %w", errStartCAPI, err)
	}
	if err := a.managers.StartProviders(ctx, providers); err != nil {
		a.Stop()
		return nil, fmt.Errorf("%s: %w", errStartProviders, err)
	}
	return a, nil
}

// writeKubeconfig writes an admin kubeconfig of env's API server into dir.
func writeKubeconfig(env *envtest.Environment, dir string) (string, error) {
	user, err := env.ControlPlane.AddUser(envtest.User{Name: "provider-managers", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", err
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "kubeconfig")
	return path, os.WriteFile(path, kc, 0o600)
}

func (a *apiServer) Stop() {
	if a.managers != nil {
		a.managers.Stop()
	}
	_ = a.env.Stop()
}

// ensureNamespace creates a namespace if it does not exist.
func ensureNamespace(ctx context.Context, c client.Client, namespace string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("cannot create namespace %s: %w", namespace, err)
	}
	return nil
}

// ensureCluster creates the namespace and a CAPI Cluster in it, as the
// function's FleetNodePools expect to find, on the named infrastructure kind.
func ensureCluster(ctx context.Context, c client.Client, namespace, name, infraKind string) error {
	if err := ensureNamespace(ctx, c, namespace); err != nil {
		return err
	}
	cl := &clusterv1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: clusterv1.ClusterSpec{InfrastructureRef: clusterv1.ContractVersionedObjectReference{
			APIGroup: "infrastructure.cluster.x-k8s.io", Kind: infraKind, Name: name,
		}},
	}
	if err := c.Create(ctx, cl); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("cannot create Cluster %s/%s: %w", namespace, name, err)
	}
	return nil
}
