package sandbox

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fleetnodepool/function-fleetnodepool/test/internal/upstream"
)

// ProviderBinaries are the infrastructure providers' managers, built from
// the modules pinned in test/tools/capa and test/tools/capz.
type ProviderBinaries struct {
	// AWS is the CAPA manager, Azure the CAPZ manager.
	AWS, Azure string
}

// ProvidersEnv are the variables ProviderBinariesFromEnv reads, which the
// Makefile sets.
func ProvidersEnv() []string { return []string{"CAPA_MANAGER", "CAPZ_MANAGER"} }

// ProviderBinariesFromEnv reads the managers' paths from the variables of
// ProvidersEnv.
func ProviderBinariesFromEnv() (ProviderBinaries, error) {
	v, err := fromEnv(ProvidersEnv())
	if err != nil {
		return ProviderBinaries{}, err
	}
	return ProviderBinaries{AWS: v[0], Azure: v[1]}, nil
}

// The modules the provider managers are built from, and the folders under
// the repository root that pin them: the webhook manifests installed are
// read from exactly the version the binary was built from.
const (
	capaModule = "sigs.k8s.io/cluster-api-provider-aws/v2"
	capzModule = "sigs.k8s.io/cluster-api-provider-azure"
	capaTools  = "test/tools/capa"
	capzTools  = "test/tools/capz"
	// webhookManifest is where both providers keep their webhook
	// configurations (kubebuilder's layout).
	webhookManifest = "config/webhook/manifests.yaml"
)

// ProviderWebhookManifests are the upstream webhook manifests of the
// provider managers StartProviders runs, by manager name.
func ProviderWebhookManifests() (map[string]string, error) {
	dirs, err := providerModules()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for name, d := range dirs {
		out[name] = filepath.Join(d, webhookManifest)
	}
	return out, nil
}

// providerModules are where the modules of the provider managers are, by
// manager name, at the versions their tools modules pin.
func providerModules() (map[string]string, error) {
	root, err := upstream.Root()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for name, m := range map[string][2]string{"capa": {capaModule, capaTools}, "capz": {capzModule, capzTools}} {
		if out[name], err = upstream.Dir(m[0], filepath.Join(root, m[1])); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Attach returns a Sandbox around an API server started elsewhere (the
// conformance tier's envtest), to run managers next to it with StartCAPI
// or StartProviders: kubeconfig is a file for them, c the client to install
// their webhook configurations with, dir where their logs and certificates
// go. Its Stop stops only the processes it started.
func Attach(dir, kubeconfig string, c client.Client, progress func(string, ...any)) *Sandbox {
	return &Sandbox{Dir: dir, Kubeconfig: kubeconfig, Client: c, procs: map[string]*exec.Cmd{}, logs: map[string]*os.File{}, progress: progress}
}

// Fake cloud settings the managers start with. They have no cloud
// credentials and need none to serve their webhooks: a reconcile that
// reaches a cloud API fails and is retried, logged in the manager's log,
// and must not crash it (StartProviders' caller checks that it still runs).
// The tier creates no AWSCluster or AzureCluster, so few reconciles get
// that far.
var (
	// capaEnv: the AWS SDK reads a region and static keys from the
	// environment; without them it would probe the EC2 instance metadata
	// service, which is disabled so that nothing waits for it.
	capaEnv = []string{
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIAFLEETNODEPOOLTEST", "AWS_SECRET_ACCESS_KEY=not-a-secret",
		"AWS_EC2_METADATA_DISABLED=true",
	}
	// capzEnv: CAPZ reads its credentials per cluster (AzureClusterIdentity),
	// not at start; these placeholders only keep any SDK default chain from
	// looking further.
	capzEnv = []string{
		"AZURE_SUBSCRIPTION_ID=00000000-0000-0000-0000-000000000000", "AZURE_TENANT_ID=00000000-0000-0000-0000-000000000000",
		"AZURE_CLIENT_ID=00000000-0000-0000-0000-000000000000", "AZURE_ENVIRONMENT=AzurePublicCloud",
	}
)

// Feature gates of the kinds the function composes (names from each
// module's feature package). CAPA: MachinePool (AWSMachinePool) and EKS
// (AWSManagedMachinePool; its webhooks are registered only with the gate),
// both on by default in v2.13. CAPZ shares Cluster API's gates: MachinePool
// (AzureMachinePool) and ASOAPI (AzureASOManagedControlPlane and
// AzureASOManagedMachinePool, GA and on by default in v1.26; their
// webhooks are registered only with it). Set explicitly so that a new
// default cannot drop a webhook unnoticed.
var (
	capaGates = "--feature-gates=MachinePool=true,EKS=true"
	capzGates = "--feature-gates=MachinePool=true,ASOAPI=true"
)

// StartProviders runs the CAPA and CAPZ managers out of cluster, the way
// StartCAPI runs Cluster API's: each serves its own webhooks with a
// certificate for 127.0.0.1, and its upstream webhook configurations are
// installed rewritten from a Service to its local URL. The providers' CRDs
// must be installed (upstream.CRDDirs); CAPZ also watches Azure Service
// Operator kinds, whose stand-in CRDs it installs (asoCRDs).
func (s *Sandbox) StartProviders(ctx context.Context, bins ProviderBinaries) error {
	t0 := time.Now()
	s.progress("starting the provider managers (CAPA, CAPZ)")
	if err := s.installASOCRDs(ctx); err != nil {
		return err
	}
	modules, err := providerModules()
	if err != nil {
		return err
	}
	certDir := filepath.Join(s.Dir, "providers-webhook")
	caPEM, err := selfSignedCA(certDir)
	if err != nil {
		return err
	}
	managers := []manager{
		{name: "capa", bin: bins.AWS, module: modules["capa"], webhooks: webhookManifest, env: capaEnv, args: []string{capaGates}},
		{name: "capz", bin: bins.Azure, module: modules["capz"], webhooks: webhookManifest, env: capzEnv, args: []string{capzGates}},
	}
	if err := s.startManagers(ctx, certDir, caPEM, managers); err != nil {
		return err
	}
	s.progress("  ready in %s", time.Since(t0).Round(100*time.Millisecond))
	return nil
}

// asoCRDs are the Azure Service Operator kinds CAPZ's ASOAPI
// controllers watch from the start (the ManagedCluster and
// ManagedClustersAgentPool adoption controllers): without their CRDs those
// controllers never sync and the manager exits after its cache sync
// timeout. ASO generates its CRDs at release time (a release asset CAPZ's
// kustomization downloads): the Go module has none. These stand-ins serve
// the version CAPZ reads, with an open schema; they are enough for the
// watches, and the tier creates no ASO objects (CAPZ's webhooks do not
// read them). A kind CAPZ watches that is missing here shows in its log as
// "if kind is a CRD, it should be installed" (ManagerErrors).
var asoCRDs = []struct{ group, version, kind, plural string }{
	{"containerservice.azure.com", "v1api20250801", "ManagedCluster", "managedclusters"},
	{"containerservice.azure.com", "v1api20250801", "ManagedClustersAgentPool", "managedclustersagentpools"},
}

// installASOCRDs creates the stand-in ASO CRDs and waits until they are
// served.
func (s *Sandbox) installASOCRDs(ctx context.Context) error {
	for _, k := range asoCRDs {
		crd := &apiextensionsv1.CustomResourceDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: k.plural + "." + k.group},
			Spec: apiextensionsv1.CustomResourceDefinitionSpec{
				Group: k.group,
				Names: apiextensionsv1.CustomResourceDefinitionNames{
					Kind: k.kind, ListKind: k.kind + "List", Plural: k.plural, Singular: strings.ToLower(k.kind),
				},
				Scope: apiextensionsv1.NamespaceScoped,
				Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
					Name: k.version, Served: true, Storage: true,
					Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
						Type: "object", XPreserveUnknownFields: ptr.To(true),
					}},
					Subresources: &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}},
				}},
			},
		}
		if err := s.Client.Create(ctx, crd); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("cannot create the stand-in ASO CRD %s: %w", crd.Name, err)
		}
		if err := eventually(ctx, 30*time.Second, func() error {
			got := &apiextensionsv1.CustomResourceDefinition{}
			if err := s.Client.Get(ctx, client.ObjectKeyFromObject(crd), got); err != nil {
				return err
			}
			for _, c := range got.Status.Conditions {
				if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
					return nil
				}
			}
			return fmt.Errorf("CRD %s is not established", crd.Name)
		}); err != nil {
			return err
		}
	}
	return nil
}

// managerErrorMarks are log lines of a manager that mean it does not run as
// it should, whatever its webhooks answer: a kind it watches without a CRD,
// a cache that never synced, a panic.
var managerErrorMarks = []string{
	"if kind is a CRD, it should be installed",
	"timed out waiting for cache to be synced",
	"problem running manager",
	"panic:",
}

// ManagerErrors returns, for each manager this sandbox ran, why it does not
// run as it should: it exited, or its log has a line of managerErrorMarks.
// Reconcile errors (no cloud credentials) are expected and not reported.
func (s *Sandbox) ManagerErrors() map[string]string {
	out := map[string]string{}
	for _, name := range s.managers {
		cmd, ok := s.procs[name]
		if !ok || cmd.Process == nil {
			continue
		}
		if !alive(cmd.Process.Pid) {
			out[name] = fmt.Sprintf("exited; the last lines of its log (%s):\n%s", s.Log(name), tail(s.Log(name), 20))
			continue
		}
		b, err := os.ReadFile(s.Log(name))
		if err != nil {
			out[name] = err.Error()
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			for _, mark := range managerErrorMarks {
				if strings.Contains(line, mark) {
					out[name] += line + "\n"
				}
			}
		}
	}
	return out
}
