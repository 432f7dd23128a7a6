package sandbox

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"path/filepath"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fleetnodepool/function-fleetnodepool/test/internal/upstream"
)

// CAPIBinaries are the Cluster API managers the CAPI sandbox runs.
type CAPIBinaries struct {
	// Core, Bootstrap (kubeadm), ControlPlane (kubeadm) and Infrastructure
	// (CAPD, whose inMemory backend simulates machines).
	Core, Bootstrap, ControlPlane, Infrastructure string
}

// CAPIEnv are the variables CAPIBinariesFromEnv reads, which the Makefile
// sets.
func CAPIEnv() []string {
	return []string{"CAPI_CORE", "CAPI_BOOTSTRAP", "CAPI_CONTROLPLANE", "CAPI_INFRASTRUCTURE"}
}

// CAPIBinariesFromEnv reads the managers' paths from the variables of
// CAPIEnv.
func CAPIBinariesFromEnv() (CAPIBinaries, error) {
	v, err := fromEnv(CAPIEnv())
	if err != nil {
		return CAPIBinaries{}, err
	}
	return CAPIBinaries{Core: v[0], Bootstrap: v[1], ControlPlane: v[2], Infrastructure: v[3]}, nil
}

// A manager is one Cluster API manager: its binary, and where its module
// keeps the webhook manifest it serves; env and args are added to the test's
// environment and to the flags every manager gets (startManagers).
type manager struct {
	name, bin, module, webhooks string
	env, args                   []string
}

// contractLabel tells Cluster API core which API version of a provider's
// CRD implements the v1beta2 contract (kustomize adds it in a real
// install): core resolves apiGroup-only references with it.
const contractLabel = "cluster.x-k8s.io/v1beta2"

// capdDebugPort is the port CAPD's in-memory backend always listens on.
const capdDebugPort = 19000

const errFmtCAPDPort = "cannot run CAPD's in-memory backend: port %d is taken (%v); another CAPI sandbox or fleet e2e runs on this machine, and CAPD binds that port (fixed upstream): run one at a time"

// StartCAPI runs the real Cluster API managers out of cluster: core, the
// kubeadm bootstrap and control-plane providers, and CAPD with its
// in-memory backend. Each serves its own webhooks (they cannot be switched
// off), with a certificate for 127.0.0.1 and the upstream webhook
// configurations rewritten from a Service to its local URL.
func (s *Sandbox) StartCAPI(ctx context.Context, bins CAPIBinaries) error {
	t0 := time.Now()
	s.progress("starting the Cluster API managers (core, kubeadm bootstrap and control plane, CAPD in-memory)")
	// CAPD's in-memory workload API servers share a debug listener on a
	// fixed port (upstream, not configurable): a second CAPD on the machine
	// exits at once, which looked like a quiet stop.
	l, err := net.Listen("tcp", fmt.Sprintf(":%d", capdDebugPort))
	if err != nil {
		return fmt.Errorf(errFmtCAPDPort, capdDebugPort, err)
	}
	_ = l.Close()
	if err := s.labelContracts(ctx); err != nil {
		return fmt.Errorf("cannot label the provider CRDs: %w", err)
	}
	certDir := filepath.Join(s.Dir, "capi-webhook")
	caPEM, err := selfSignedCA(certDir)
	if err != nil {
		return err
	}
	capi, err := upstream.Dir("sigs.k8s.io/cluster-api", "")
	if err != nil {
		return err
	}
	capd, err := upstream.Dir("sigs.k8s.io/cluster-api/test", "")
	if err != nil {
		return err
	}
	managers := append(capiManagers(bins, capi),
		// The in-memory workload API servers listen on POD_IP.
		manager{name: "capd", bin: bins.Infrastructure, module: capd, webhooks: "infrastructure/docker/config/webhook/manifests.yaml", env: []string{"POD_IP=127.0.0.1"}})
	if err := s.startManagers(ctx, certDir, caPEM, managers); err != nil {
		return err
	}
	s.progress("  ready in %s", time.Since(t0).Round(100*time.Millisecond))
	return nil
}

// capiManagers are Cluster API's core, kubeadm bootstrap and kubeadm
// control-plane managers, with their webhook manifests in the module capi
// and args added to the flags every manager gets.
func capiManagers(bins CAPIBinaries, capi string, args ...string) []manager {
	return []manager{
		{name: "capi-core", bin: bins.Core, module: capi, webhooks: "core/config/webhook/manifests.yaml", args: args},
		{name: "capi-kubeadm-bootstrap", bin: bins.Bootstrap, module: capi, webhooks: "bootstrap/kubeadm/config/webhook/manifests.yaml", args: args},
		{name: "capi-kubeadm-control-plane", bin: bins.ControlPlane, module: capi, webhooks: "controlplane/kubeadm/config/webhook/manifests.yaml", args: args},
	}
}

// idleFilter is a watch filter no object matches: the managers started
// with it (--watch-filter) reconcile nothing and only serve their webhooks.
const idleFilter = "fleetnodepool-webhooks-only"

// StartCAPIWebhooks runs the real Cluster API core and kubeadm bootstrap
// managers, as StartCAPI does, to judge what is applied with their
// webhooks, and nothing more: their controllers watch only objects labelled
// with a filter none carries, so no MachineSet, Machine or bootstrap data is
// made from what is applied (the conformance tier).
func (s *Sandbox) StartCAPIWebhooks(ctx context.Context, bins CAPIBinaries) error {
	t0 := time.Now()
	s.progress("starting the Cluster API core and kubeadm bootstrap managers (webhooks only)")
	certDir := filepath.Join(s.Dir, "capi-webhook")
	caPEM, err := selfSignedCA(certDir)
	if err != nil {
		return err
	}
	capi, err := upstream.Dir("sigs.k8s.io/cluster-api", "")
	if err != nil {
		return err
	}
	// Core and the kubeadm bootstrap manager: the kinds the function
	// composes have no kubeadm control-plane webhook.
	managers := capiManagers(bins, capi, "--watch-filter="+idleFilter)[:2]
	if err := s.startManagers(ctx, certDir, caPEM, managers); err != nil {
		return err
	}
	s.progress("  ready in %s", time.Since(t0).Round(100*time.Millisecond))
	return nil
}

// startManagers installs each manager's upstream webhook configurations,
// pointed at its local port, runs it with the flags the Cluster API
// managers share (they all build them with cluster-api's util/flags), and
// waits until it serves its webhooks before the next starts.
func (s *Sandbox) startManagers(ctx context.Context, certDir string, caPEM []byte, managers []manager) error {
	for _, m := range managers {
		ports, err := freePorts(3)
		if err != nil {
			return err
		}
		if err := s.installWebhooks(ctx, m, ports[0], caPEM); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		args := append([]string{"--kubeconfig=" + s.Kubeconfig,
			fmt.Sprintf("--webhook-port=%d", ports[0]), "--webhook-cert-dir=" + certDir,
			fmt.Sprintf("--health-addr=127.0.0.1:%d", ports[1]),
			fmt.Sprintf("--diagnostics-address=127.0.0.1:%d", ports[2]), "--insecure-diagnostics"}, m.args...)
		if err := s.run(m.name, m.env, m.bin, args...); err != nil {
			return err
		}
		s.managers = append(s.managers, m.name)
		if err := WaitTLS(ctx, fmt.Sprintf("127.0.0.1:%d", ports[0])); err != nil {
			return fmt.Errorf("%s webhooks (log %s): %w\n%s", m.name, s.Log(m.name), err, tail(s.Log(m.name), 20))
		}
	}
	return nil
}

// labelContracts labels the CRDs of the kubeadm and in-memory providers
// with the contract version they implement.
func (s *Sandbox) labelContracts(ctx context.Context) error {
	crds := &apiextensionsv1.CustomResourceDefinitionList{}
	if err := s.Client.List(ctx, crds); err != nil {
		return err
	}
	for i := range crds.Items {
		crd := &crds.Items[i]
		if !providerCRD(crd) {
			continue
		}
		patch := client.MergeFrom(crd.DeepCopy())
		if crd.Labels == nil {
			crd.Labels = map[string]string{}
		}
		crd.Labels[contractLabel] = "v1beta2"
		if err := s.Client.Patch(ctx, crd, patch); err != nil {
			return err
		}
	}
	return nil
}

// providerCRD is a CRD of the kubeadm providers or CAPD.
func providerCRD(crd *apiextensionsv1.CustomResourceDefinition) bool {
	switch crd.Spec.Group {
	case "bootstrap.cluster.x-k8s.io", "controlplane.cluster.x-k8s.io":
		return true
	case "infrastructure.cluster.x-k8s.io":
		k := crd.Spec.Names.Kind
		return strings.HasPrefix(k, "Dev") || strings.HasPrefix(k, "Docker")
	}
	return false
}

// installWebhooks creates a manager's upstream webhook configurations,
// named after the manager (CAPI core's and the kubeadm providers' share
// names) and pointed at its local port.
func (s *Sandbox) installWebhooks(ctx context.Context, m manager, port int, caPEM []byte) error {
	mutating, validating, err := upstream.WebhookConfigs(filepath.Join(m.module, m.webhooks), m.name)
	if err != nil {
		return err
	}
	local := func(c *admissionv1.WebhookClientConfig) {
		path := ""
		if c.Service != nil && c.Service.Path != nil {
			path = *c.Service.Path
		}
		*c = admissionv1.WebhookClientConfig{URL: ptr.To(fmt.Sprintf("https://127.0.0.1:%d%s", port, path)), CABundle: caPEM}
	}
	var objs []client.Object
	for _, c := range mutating {
		for i := range c.Webhooks {
			local(&c.Webhooks[i].ClientConfig)
		}
		objs = append(objs, c)
	}
	for _, c := range validating {
		for i := range c.Webhooks {
			local(&c.Webhooks[i].ClientConfig)
		}
		objs = append(objs, c)
	}
	for _, o := range objs {
		if err := s.Client.Create(ctx, o); err != nil {
			return fmt.Errorf("cannot create webhook configuration %s: %w", o.GetName(), err)
		}
	}
	return nil
}

// selfSignedCA writes a CA and a serving certificate for 127.0.0.1 signed
// by it into dir, and returns the CA.
func selfSignedCA(dir string) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "sandbox-webhook-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return caPEM, serverCert(dir, caPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// WaitTLS waits until a webhook server accepts TLS connections.
func WaitTLS(ctx context.Context, addr string) error {
	return eventually(ctx, 60*time.Second, func() error {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // Readiness probe of a local server.
		if err == nil {
			_ = c.Close()
		}
		return err
	})
}

// SimCluster returns the objects of a simulated cluster: a Cluster on an
// in-memory DevCluster with a one-replica KubeadmControlPlane at version
// (the in-memory workload API server only starts once a control-plane
// Machine exists, so workers alone never get Nodes).
func SimCluster(namespace, name, version string) []*unstructured.Unstructured {
	obj := func(apiVersion, kind, n string, spec map[string]any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind,
			"metadata": map[string]any{"name": n, "namespace": namespace}, "spec": spec}}
	}
	provisioning := func(d string) map[string]any {
		return map[string]any{"provisioning": map[string]any{"startupDuration": d, "startupJitter": "0.2"}}
	}
	ref := func(group, kind, n string) map[string]any {
		return map[string]any{"apiGroup": group, "kind": kind, "name": n}
	}
	dev := obj("infrastructure.cluster.x-k8s.io/v1beta2", "DevCluster", name, map[string]any{"backend": map[string]any{"inMemory": map[string]any{}}})
	// CAPD v1.14.0's in-memory DevCluster reconciler writes an annotation
	// without making the map: a DevCluster with none panics it (a
	// ClusterClass always sets some).
	dev.SetAnnotations(map[string]string{"fleet.nodepool.dev/sim": "true"})
	return []*unstructured.Unstructured{
		dev,
		obj("infrastructure.cluster.x-k8s.io/v1beta2", "DevMachineTemplate", name+"-control-plane", map[string]any{"template": map[string]any{"spec": map[string]any{
			"backend": map[string]any{"inMemory": map[string]any{"vm": provisioning("2s"), "node": provisioning("1s"), "apiServer": provisioning("1s"), "etcd": provisioning("1s")}},
		}}}),
		obj("controlplane.cluster.x-k8s.io/v1beta2", "KubeadmControlPlane", name, map[string]any{
			"replicas": int64(1),
			"version":  version,
			"machineTemplate": map[string]any{"spec": map[string]any{
				"infrastructureRef": ref("infrastructure.cluster.x-k8s.io", "DevMachineTemplate", name+"-control-plane"),
			}},
			"kubeadmConfigSpec": map[string]any{
				"clusterConfiguration": map[string]any{"apiServer": map[string]any{"certSANs": []any{"localhost", "127.0.0.1"}}},
				"initConfiguration":    map[string]any{"nodeRegistration": map[string]any{"criSocket": "unix:///var/run/containerd/containerd.sock"}},
				"joinConfiguration":    map[string]any{"nodeRegistration": map[string]any{"criSocket": "unix:///var/run/containerd/containerd.sock"}},
			},
		}),
		obj("cluster.x-k8s.io/v1beta2", "Cluster", name, map[string]any{
			"infrastructureRef": ref("infrastructure.cluster.x-k8s.io", "DevCluster", name),
			"controlPlaneRef":   ref("controlplane.cluster.x-k8s.io", "KubeadmControlPlane", name),
		}),
	}
}

// StartWithCAPI starts a sandbox in dir with the binaries of Env, and the
// Cluster API managers of CAPIEnv next to it: what the tiers that run
// Cluster API start from.
func StartWithCAPI(ctx context.Context, dir string, progress func(string, ...any), opts ...Option) (*Sandbox, error) {
	bins, err := BinariesFromEnv()
	if err != nil {
		return nil, err
	}
	capi, err := CAPIBinariesFromEnv()
	if err != nil {
		return nil, err
	}
	s, err := Start(ctx, dir, bins, progress, opts...)
	if err != nil {
		return nil, err
	}
	if err := s.StartCAPI(ctx, capi); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}
