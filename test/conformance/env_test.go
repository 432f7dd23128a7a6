//go:build conformance

package conformance

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/fleetnodepool/function-fleetnodepool/test/internal/sandbox"
	"github.com/fleetnodepool/function-fleetnodepool/test/internal/upstream"

	awsv1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	awsexpv1 "sigs.k8s.io/cluster-api-provider-aws/v2/exp/api/v1beta2"
	awsexpwebhooks "sigs.k8s.io/cluster-api-provider-aws/v2/exp/webhooks"
	awswebhooks "sigs.k8s.io/cluster-api-provider-aws/v2/webhooks"
	azurev1 "sigs.k8s.io/cluster-api-provider-azure/api/v1beta1"
	azureexpv1 "sigs.k8s.io/cluster-api-provider-azure/exp/api/v1beta1"
	bootstrapv1beta1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta1" //nolint:staticcheck // The upstream webhooks' converters need the v1beta1 types registered.
	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"
	clusterv1beta1 "sigs.k8s.io/cluster-api/api/core/v1beta1" //nolint:staticcheck // The upstream webhooks' converters need the v1beta1 types registered.
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	kubeadmwebhooks "sigs.k8s.io/cluster-api/bootstrap/kubeadm/webhooks/admission"
	capiwebhooks "sigs.k8s.io/cluster-api/core/webhooks/admission"
)

// webhookManifests are the upstream webhook manifests installed, by module,
// each under a name unique to it: every provider names its configurations
// alike.
var webhookManifests = map[string]map[string]string{
	"sigs.k8s.io/cluster-api": {
		"capi-core":    "core/config/webhook/manifests.yaml",
		"capi-kubeadm": "bootstrap/kubeadm/config/webhook/manifests.yaml",
	},
	"sigs.k8s.io/cluster-api-provider-aws/v2": {"capa": "config/webhook/manifests.yaml"},
}

// served are the resources whose upstream webhooks this suite serves:
// the kinds the function composes, and Clusters.
var served = []string{
	"clusters", "machinedeployments", "machinepools", "machinehealthchecks",
	"kubeadmconfigs", "kubeadmconfigtemplates",
	"awsmachinetemplates", "awsmachinepools", "awsmanagedmachinepools",
}

// webhooks registers the upstream webhook handlers of the served kinds.
func webhooks(mgr ctrl.Manager) error {
	for _, w := range []interface{ SetupWebhookWithManager(ctrl.Manager) error }{
		&capiwebhooks.Cluster{Client: mgr.GetAPIReader()},
		&capiwebhooks.MachineDeployment{},
		&capiwebhooks.MachinePool{},
		&capiwebhooks.MachineHealthCheck{},
		&kubeadmwebhooks.KubeadmConfig{},
		&kubeadmwebhooks.KubeadmConfigTemplate{},
		&awswebhooks.AWSMachineTemplate{},
		&awsexpwebhooks.AWSMachinePool{},
		&awsexpwebhooks.AWSManagedMachinePool{},
	} {
		if err := w.SetupWebhookWithManager(mgr); err != nil {
			return fmt.Errorf("cannot set up webhook %T: %w", w, err)
		}
	}
	return nil
}

func scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, clusterv1.AddToScheme, clusterv1beta1.AddToScheme, bootstrapv1.AddToScheme, bootstrapv1beta1.AddToScheme,
		awsv1.AddToScheme, awsexpv1.AddToScheme, azurev1.AddToScheme, azureexpv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// An apiServer is the running control plane and webhook server.
type apiServer struct {
	env    *envtest.Environment
	client client.Client
	stop   context.CancelFunc
	crds   int
}

// startAPIServer starts etcd and kube-apiserver with the upstream CRDs, and
// serves the upstream webhooks.
func startAPIServer(apiserverBin, etcdBin string) (*apiServer, error) {
	crdDirs, err := upstream.CRDDirs()
	if err != nil {
		return nil, err
	}
	var mutating []*admissionv1.MutatingWebhookConfiguration
	var validating []*admissionv1.ValidatingWebhookConfiguration
	for module, manifests := range webhookManifests {
		dir, err := upstream.Dir(module, "")
		if err != nil {
			return nil, err
		}
		for name, w := range manifests {
			m, v, err := webhookConfigs(filepath.Join(dir, w), name)
			if err != nil {
				return nil, err
			}
			mutating, validating = append(mutating, m...), append(validating, v...)
		}
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
		WebhookInstallOptions: envtest.WebhookInstallOptions{MutatingWebhooks: mutating, ValidatingWebhooks: validating},
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("cannot start envtest: %w", err)
	}
	a := &apiServer{env: env, crds: len(env.CRDs)}
	wo := env.WebhookInstallOptions
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  s,
		Metrics: metricsserver.Options{BindAddress: "0"},
		WebhookServer: webhook.NewServer(webhook.Options{
			Host: wo.LocalServingHost, Port: wo.LocalServingPort, CertDir: wo.LocalServingCertDir,
		}),
	})
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	if err := webhooks(mgr); err != nil {
		_ = env.Stop()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.stop = cancel
	go func() { _ = mgr.Start(ctx) }()
	if err := sandbox.WaitTLS(ctx, net.JoinHostPort(wo.LocalServingHost, strconv.Itoa(wo.LocalServingPort))); err != nil {
		a.Stop()
		return nil, err
	}
	if a.client, err = client.New(cfg, client.Options{Scheme: s}); err != nil {
		a.Stop()
		return nil, err
	}
	return a, nil
}

func (a *apiServer) Stop() {
	a.stop()
	_ = a.env.Stop()
}

// webhookConfigs reads an upstream webhook manifest and keeps the webhooks
// of the served resources.
func webhookConfigs(path, prefix string) ([]*admissionv1.MutatingWebhookConfiguration, []*admissionv1.ValidatingWebhookConfiguration, error) {
	mutating, validating, err := upstream.WebhookConfigs(path, prefix)
	for _, c := range mutating {
		c.Webhooks = slices.DeleteFunc(c.Webhooks, func(w admissionv1.MutatingWebhook) bool { return !servedRules(w.Rules) })
	}
	for _, c := range validating {
		c.Webhooks = slices.DeleteFunc(c.Webhooks, func(w admissionv1.ValidatingWebhook) bool { return !servedRules(w.Rules) })
	}
	return mutating, validating, err
}

func servedRules(rules []admissionv1.RuleWithOperations) bool {
	for _, r := range rules {
		for _, res := range r.Resources {
			if slices.Contains(served, res) {
				return true
			}
		}
	}
	return false
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
