// Package sandbox runs the real Crossplane core reconciling FleetNodePools
// on a local control plane: etcd and kube-apiserver (envtest) with the
// pinned CAPI, CAPA and CAPZ CRDs, kube-controller-manager running only the
// garbage collector, Crossplane core (External package runtime, no
// webhooks) and the function served with mTLS by a certificate of the CA
// that `crossplane core init` creates. `make sandbox` and the sandbox e2e
// tier use it.
package sandbox

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	pkgv1 "github.com/crossplane/crossplane/apis/v2/pkg/v1"
	pkgv1beta1 "github.com/crossplane/crossplane/apis/v2/pkg/v1beta1"

	"github.com/fleetnodepool/function-fleetnodepool/test/exampleio"
	"github.com/fleetnodepool/function-fleetnodepool/test/internal/upstream"
)

// Names Crossplane is set up with.
const (
	Namespace        = "crossplane-system"
	caSecret         = "crossplane-root-ca"
	clientCertSecret = "crossplane-tls-client"
	FunctionName     = "fleetnodepool-function-fleetnodepool"
)

// Binaries the sandbox runs.
type Binaries struct {
	APIServer, Etcd, ControllerManager, Crossplane, Function string
	// CrossplaneCRDs is the crossplane/v2 module's cluster/crds folder.
	CrossplaneCRDs string
	// CRDDirs hold the Cluster API, CAPA, CAPZ and CAPD CRDs.
	CRDDirs []string
	// CrossplaneArgs are extra flags of crossplane core start;
	// BinariesFromEnv sets the recommended ones (RecommendedCrossplaneArgs).
	CrossplaneArgs []string
}

// A Sandbox is the running control plane, Crossplane and function.
type Sandbox struct {
	Dir        string
	Kubeconfig string
	Config     *rest.Config
	Client     client.Client

	env    *envtest.Environment
	bins   Binaries
	procs  map[string]*exec.Cmd
	logs   map[string]*os.File
	fnAddr string
	// fnMetricsAddr is where the function serves its Prometheus metrics.
	fnMetricsAddr string
	// monitors are the monitoring processes StartKubeStateMetrics and
	// StartPrometheus ran.
	monitors []string
	// metricsPort is where Crossplane serves its Prometheus metrics.
	metricsPort int
	progress    func(string, ...any)
	// managers are the Cluster API managers StartCAPI ran, if it did.
	managers []string
	// stoppedAPIServer is the command line of the kube-apiserver
	// StopAPIServer stopped, until StartAPIServer starts it again.
	stoppedAPIServer []string

	// Registry is the host:port of the loopback OCI registry the sandbox
	// serves when started WithPackages.
	Registry    string
	packages    *Packages
	registry    *http.Server
	stopRuntime context.CancelFunc
}

// Start brings the sandbox up, reporting progress. By default the function
// is registered by hand; WithPackages lets the package manager install it.
func Start(ctx context.Context, dir string, bins Binaries, progress func(string, ...any), opts ...Option) (*Sandbox, error) {
	s := &Sandbox{Dir: dir, bins: bins, procs: map[string]*exec.Cmd{}, logs: map[string]*os.File{}, progress: progress}
	for _, o := range opts {
		o(s)
	}
	ok := false
	defer func() {
		if !ok {
			s.Stop()
		}
	}()
	steps := append(s.controlPlaneSteps(),
		step{"crossplane core init", s.crossplaneInit},
		step{"the function, served with mTLS", s.function},
		step{"crossplane core start", s.crossplaneStart},
		step{"the function's registration", s.register},
	)
	if s.packages != nil {
		steps = append(steps[:len(steps)-1],
			step{"an OCI registry on loopback", s.serveRegistry},
			step{"the package runtime (TLS Secret, endpoint and health of the FunctionRevisions the package manager creates)", s.playRuntime})
	}
	if err := s.runSteps(ctx, steps); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// StartControlPlane brings up the control plane alone, without Crossplane:
// etcd and kube-apiserver with the CRDs of bins.CRDDirs and their contract
// labels, and the garbage collector. A cell (cells.go) is one, with the
// Cluster API managers (StartCAPI) next to it; only the fields of bins it
// runs need be set.
func StartControlPlane(ctx context.Context, dir string, bins Binaries, progress func(string, ...any)) (*Sandbox, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	s := &Sandbox{Dir: dir, bins: bins, procs: map[string]*exec.Cmd{}, logs: map[string]*os.File{}, progress: progress}
	if err := s.runSteps(ctx, s.controlPlaneSteps()); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// A step is one stage of a start, named for the progress report.
type step struct {
	what string
	fn   func(context.Context) error
}

// controlPlaneSteps start what every sandbox and cell runs before any
// controller: the API server with the CRDs, and the garbage collector.
func (s *Sandbox) controlPlaneSteps() []step {
	return []step{
		{"etcd, kube-apiserver and the Cluster API CRDs", s.controlPlane},
		{"the CRDs' Cluster API contract labels", s.contractLabels},
		{"kube-controller-manager (garbage collector only)", s.garbageCollector},
	}
}

// runSteps runs steps in order, reporting how long each took.
func (s *Sandbox) runSteps(ctx context.Context, steps []step) error {
	for _, st := range steps {
		t0 := time.Now()
		s.progress("starting %s", st.what)
		if err := st.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", st.what, err)
		}
		s.progress("  ready in %s", time.Since(t0).Round(100*time.Millisecond))
	}
	return nil
}

func (s *Sandbox) controlPlane(_ context.Context) error {
	sch := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(sch); err != nil {
		return err
	}
	for _, add := range []func(*runtime.Scheme) error{apiextensionsv1.AddToScheme, pkgv1.AddToScheme, pkgv1beta1.AddToScheme} {
		if err := add(sch); err != nil {
			return err
		}
	}
	// kube-apiserver's output goes to its log (Kill's restarts append to
	// it): why it did not start is there.
	apiLog, err := os.OpenFile(s.Log(processAPIServer), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	s.logs[processAPIServer+"-envtest"] = apiLog
	s.env = &envtest.Environment{
		ControlPlane: envtest.ControlPlane{
			APIServer: &envtest.APIServer{Path: s.bins.APIServer, Out: apiLog, Err: apiLog},
			Etcd:      &envtest.Etcd{Path: s.bins.Etcd},
		},
		CRDDirectoryPaths:     s.bins.CRDDirs,
		ErrorIfCRDPathMissing: true,
		Scheme:                sch,
	}
	cfg, err := s.env.Start()
	if err != nil {
		return err
	}
	user, err := s.env.ControlPlane.AddUser(envtest.User{Name: "sandbox-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return err
	}
	s.Kubeconfig = filepath.Join(s.Dir, "kubeconfig")
	if err := os.WriteFile(s.Kubeconfig, kc, 0o600); err != nil {
		return err
	}
	s.Config = cfg
	s.Client, err = client.New(cfg, client.Options{Scheme: sch})
	return err
}

// contractLabels labels the CRDs as the providers' releases label them
// (envtest installs the raw CRDs): Cluster API resolves references to
// their kinds with them, and the function refuses a kind whose CRD
// declares no contract Cluster API accepts.
func (s *Sandbox) contractLabels(ctx context.Context) error {
	labels, err := upstream.ContractLabels()
	if err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(labels)) {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := s.Client.Get(ctx, client.ObjectKey{Name: name}, crd); err != nil {
			return err
		}
		patch := client.MergeFrom(crd.DeepCopy())
		if crd.Labels == nil {
			crd.Labels = map[string]string{}
		}
		maps.Copy(crd.Labels, labels[name])
		if err := s.Client.Patch(ctx, crd, patch); err != nil {
			return err
		}
	}
	return nil
}

// RemoveCRD deletes a CRD and waits until it is gone, returning it as it
// was (ready to create again).
func (s *Sandbox) RemoveCRD(ctx context.Context, name string) (*apiextensionsv1.CustomResourceDefinition, error) {
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := s.Client.Get(ctx, client.ObjectKey{Name: name}, crd); err != nil {
		return nil, err
	}
	if err := s.Client.Delete(ctx, crd); err != nil {
		return nil, err
	}
	err := eventually(ctx, time.Minute, func() error {
		switch err := s.Client.Get(ctx, client.ObjectKey{Name: name}, &apiextensionsv1.CustomResourceDefinition{}); {
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return fmt.Errorf("cannot read CRD %s: %w", name, err)
		}
		return fmt.Errorf("CRD %s still there", name)
	})
	again := &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: crd.Name, Labels: crd.Labels}, Spec: crd.Spec}
	return again, err
}

func (s *Sandbox) garbageCollector(_ context.Context) error {
	return s.run("kube-controller-manager", nil, s.bins.ControllerManager,
		"--kubeconfig="+s.Kubeconfig, "--controllers=garbage-collector-controller",
		"--leader-elect=false", "--secure-port=0")
}

func (s *Sandbox) crossplaneEnv() []string {
	return []string{
		"KUBECONFIG=" + s.Kubeconfig, "POD_NAMESPACE=" + Namespace, "ENABLE_WEBHOOKS=false",
		"CRDS_PATH=" + s.bins.CrossplaneCRDs, "TLS_CA_SECRET_NAME=" + caSecret, "TLS_CLIENT_SECRET_NAME=" + clientCertSecret,
	}
}

func (s *Sandbox) crossplaneInit(ctx context.Context) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}
	if err := s.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	// The first run on a fresh API server fails to find the CRDs it just
	// installed (discovery lags); in a cluster it is an init container that
	// restarts.
	var out []byte
	var err error
	for range 5 {
		cmd := exec.CommandContext(ctx, s.bins.Crossplane, "core", "init") //nolint:gosec // The pinned Crossplane core.
		cmd.Env = append(os.Environ(), s.crossplaneEnv()...)
		if out, err = cmd.CombinedOutput(); err == nil {
			return nil
		}
		time.Sleep(time.Second)
	}
	return fmt.Errorf("%w\n%s", err, out)
}

func (s *Sandbox) function(ctx context.Context) error {
	ca := &corev1.Secret{}
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: caSecret}, ca); err != nil {
		return err
	}
	dir := filepath.Join(s.Dir, "tls-server")
	if err := serverCert(dir, ca.Data["tls.crt"], ca.Data["tls.key"]); err != nil {
		return err
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	s.fnAddr = addr
	if s.fnMetricsAddr, err = freeAddr(); err != nil {
		return err
	}
	if err := s.run("function", nil, s.bins.Function, "--address="+addr, "--tls-server-certs-dir="+dir, "--metrics-address="+s.fnMetricsAddr); err != nil {
		return err
	}
	return waitTCP(ctx, addr)
}

func (s *Sandbox) crossplaneStart(ctx context.Context) error {
	cl := &corev1.Secret{}
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: clientCertSecret}, cl); err != nil {
		return err
	}
	dir := filepath.Join(s.Dir, "tls-client")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, f := range []string{"ca.crt", "tls.crt", "tls.key"} {
		if err := os.WriteFile(filepath.Join(dir, f), cl.Data[f], 0o600); err != nil {
			return err
		}
	}
	// The package manager caches the packages it pulls there, and fails
	// to unpack them if the directory does not exist.
	for _, d := range []string{"xpkg-cache", "xfn-cache"} {
		if err := os.MkdirAll(filepath.Join(s.Dir, d), 0o700); err != nil {
			return err
		}
	}
	metrics, err := freePort()
	if err != nil {
		return err
	}
	s.metricsPort = metrics
	health, err := freePort()
	if err != nil {
		return err
	}
	args := append([]string{"core", "start",
		"--package-runtime=External", "--enable-webhooks=false", "--tls-client-certs-dir=" + dir,
		"--xpkg-cache-dir=" + filepath.Join(s.Dir, "xpkg-cache"), "--xfn-cache-dir=" + filepath.Join(s.Dir, "xfn-cache"),
		fmt.Sprintf("--metrics-port=%d", metrics), fmt.Sprintf("--health-probe-port=%d", health)}, s.bins.CrossplaneArgs...)
	return s.run("crossplane", s.crossplaneEnv(), s.bins.Crossplane, args...)
}

// register makes the function known to Crossplane's function runner: an
// active, paused FunctionRevision (the package manager never pulls it)
// whose status gives the endpoint and capabilities.
func (s *Sandbox) register(ctx context.Context) error {
	rev := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "pkg.crossplane.io/v1", "kind": "FunctionRevision",
		"metadata": map[string]any{
			"name":        FunctionName + "-sandbox",
			"labels":      map[string]any{"pkg.crossplane.io/package": FunctionName},
			"annotations": map[string]any{"crossplane.io/paused": "true"},
		},
		"spec": map[string]any{
			"desiredState": "Active", "image": "xpkg.crossplane.io/fleetnodepool/function-fleetnodepool:sandbox", "revision": int64(1),
			"ignoreCrossplaneConstraints": true, "skipDependencyResolution": true,
		},
	}}
	if err := eventually(ctx, 60*time.Second, func() error {
		if err := s.Client.Create(ctx, rev.DeepCopy()); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		return nil
	}); err != nil {
		return err
	}
	return s.SetEndpoint(ctx, s.fnAddr)
}

// SetEndpoint points Crossplane's function runner at addr.
func (s *Sandbox) SetEndpoint(ctx context.Context, addr string) error {
	return eventually(ctx, 30*time.Second, func() error {
		rev := &unstructured.Unstructured{}
		rev.SetAPIVersion("pkg.crossplane.io/v1")
		rev.SetKind("FunctionRevision")
		if err := s.Client.Get(ctx, client.ObjectKey{Name: FunctionName + "-sandbox"}, rev); err != nil {
			return err
		}
		_ = unstructured.SetNestedField(rev.Object, addr, "status", "endpoint")
		_ = unstructured.SetNestedStringSlice(rev.Object, []string{"composition"}, "status", "capabilities")
		return s.Client.Status().Update(ctx, rev)
	})
}

// Apply creates or updates the objects of YAML files.
func (s *Sandbox) Apply(ctx context.Context, files ...string) error {
	for _, f := range files {
		objs, err := ReadObjects(f)
		if err != nil {
			return err
		}
		if err := s.ApplyObjects(ctx, objs...); err != nil {
			return err
		}
	}
	return nil
}

// ApplyObjects creates or updates objects, retrying while CRDs settle.
func (s *Sandbox) ApplyObjects(ctx context.Context, objs ...*unstructured.Unstructured) error {
	for _, u := range objs {
		if err := eventually(ctx, 30*time.Second, func() error {
			return s.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u.DeepCopy()), client.FieldOwner("sandbox"), client.ForceOwnership)
		}); err != nil {
			return fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
	return nil
}

// ReadObjects reads the objects of a multi-document YAML file.
func ReadObjects(file string) ([]*unstructured.Unstructured, error) {
	return exampleio.Objects(file)
}

// PeakMemory is the peak resident memory (VmHWM) of each process of the
// sandbox, by name, in bytes: etcd, kube-apiserver and the processes it
// started.
func (s *Sandbox) PeakMemory() map[string]uint64 {
	out := map[string]uint64{}
	for name, pid := range s.Pids() {
		out[name] = peakRSS(pid)
	}
	return out
}

// Pids are the sandbox's processes, by name.
func (s *Sandbox) Pids() map[string]int {
	out := map[string]int{}
	for name, cmd := range s.procs {
		if cmd.Process != nil {
			out[name] = cmd.Process.Pid
		}
	}
	// envtest starts etcd and kube-apiserver as children of this process:
	// find them by executable (a cell runs the same ones, as children of
	// its own command).
	dirs, _ := os.ReadDir("/proc")
	for name, bin := range map[string]string{"etcd": s.bins.Etcd, "kube-apiserver": s.bins.APIServer} {
		for _, d := range dirs {
			var pid int
			if _, err := fmt.Sscan(d.Name(), &pid); err != nil || parent(pid) != os.Getpid() {
				continue
			}
			if exe, err := os.Readlink(filepath.Join("/proc", d.Name(), "exe")); err == nil && exe == bin {
				out[name] = pid
			}
		}
	}
	return out
}

// peakRSS reads VmHWM of a process from /proc, in bytes; 0 if unknown.
func peakRSS(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb uint64
			if _, err := fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), &kb); err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}

// Stop stops every process and the control plane.
func (s *Sandbox) Stop() {
	if s.stopRuntime != nil {
		s.stopRuntime()
	}
	if s.registry != nil {
		_ = s.registry.Close()
	}
	// kube-apiserver is here once Kill restarted it; envtest stops etcd.
	for _, n := range append(append(s.monitors, s.managers...), "crossplane", "function", "kube-controller-manager", processAPIServer) {
		if cmd, ok := s.procs[n]; ok {
			stop(cmd)
		}
	}
	for _, f := range s.logs {
		_ = f.Close()
	}
	if s.env != nil {
		_ = s.env.Stop()
	}
}

// Log is the path of a process's log.
func (s *Sandbox) Log(name string) string { return filepath.Join(s.Dir, name+".log") }

// run starts a process of the sandbox with env added to the test's.
func (s *Sandbox) run(name string, env []string, bin string, args ...string) error {
	return s.start(name, append(os.Environ(), env...), bin, args...)
}

// start starts a process of the sandbox with exactly env, its output
// appended to its log.
func (s *Sandbox) start(name string, env []string, bin string, args ...string) error {
	f, err := os.OpenFile(s.Log(name), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if old, ok := s.logs[name]; ok {
		_ = old.Close()
	}
	s.logs[name] = f
	cmd := exec.Command(bin, args...) //nolint:gosec // The sandbox's pinned binaries.
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	s.procs[name] = cmd
	return nil
}

func stop(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// serverCert writes a server certificate for 127.0.0.1 and localhost,
// signed by Crossplane's CA, with the CA, as the SDK's MTLSCertificates
// reads them.
func serverCert(dir string, caPEM, caKeyPEM []byte) error {
	caBlock, _ := pem.Decode(caPEM)
	keyBlock, _ := pem.Decode(caKeyPEM)
	if caBlock == nil || keyBlock == nil {
		return errors.New("cannot decode Crossplane's CA")
	}
	ca, err := x509.ParseCertificate(caBlock.Bytes)
	if err != nil {
		return err
	}
	caKey, err := parseKey(keyBlock.Bytes)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: FunctionName},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for f, b := range map[string][]byte{
		"tls.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"tls.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}),
		"ca.crt":  caPEM,
	} {
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func parseKey(der []byte) (any, error) {
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return k, nil
	}
	return x509.ParseECPrivateKey(der)
}

func freePort() (int, error) {
	p, err := freePorts(1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

func freeAddr() (string, error) {
	p, err := freePort()
	return fmt.Sprintf("127.0.0.1:%d", p), err
}

func waitTCP(ctx context.Context, addr string) error {
	return eventually(ctx, 20*time.Second, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err
	})
}

// eventually retries fn until it succeeds or the timeout passes.
func eventually(ctx context.Context, timeout time.Duration, fn func() error) error {
	var err error
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if err = fn(); err == nil || ctx.Err() != nil {
			return err
		}
	}
	return err
}
