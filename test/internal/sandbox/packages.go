package sandbox

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	pkgv1 "github.com/crossplane/crossplane/apis/v2/pkg/v1"
	pkgv1beta1 "github.com/crossplane/crossplane/apis/v2/pkg/v1beta1"
)

// Where the project publishes its packages. Users install them by these
// names; the sandbox keeps the names and rewrites where Crossplane pulls
// them from with an ImageConfig.
const (
	Repository                 = "xpkg.crossplane.io/fleetnodepool"
	FunctionPackage            = Repository + "/function-fleetnodepool"
	ConfigurationPackage       = Repository + "/configuration-fleetnodepool"
	LegacyConfigurationPackage = Repository + "/configuration-legacy-fleetnodepool"
	// ConfigurationName is the name of the Configuration users install.
	ConfigurationName = "configuration-fleetnodepool"
	imageConfigName   = "fleetnodepool-sandbox-registry"
)

const (
	errPush            = "cannot push %s to %s"
	errConfiguration   = "the Configuration %s is not installed and healthy"
	errRegistry        = "cannot serve the OCI registry"
	errRuntimeRevision = "cannot play the package runtime of FunctionRevision %s"
)

// Packages are the package files `make xpkg` builds, which the sandbox
// pushes to its loopback registry and installs through Crossplane's
// package manager.
type Packages struct {
	// CLI is the crossplane CLI, which pushes them.
	CLI string
	// Dir holds function-fleetnodepool.xpkg,
	// configuration-fleetnodepool.xpkg and
	// configuration-legacy-fleetnodepool.xpkg.
	Dir string
}

// PackagesEnv are the variables PackagesFromEnv reads, which the Makefile
// sets.
func PackagesEnv() []string { return []string{"CROSSPLANE_CLI", "XPKG_DIR"} }

// PackagesFromEnv reads where the CLI and the package files are from the
// variables of PackagesEnv.
func PackagesFromEnv() (Packages, error) {
	v, err := fromEnv(PackagesEnv())
	if err != nil {
		return Packages{}, err
	}
	return Packages{CLI: v[0], Dir: v[1]}, nil
}

// An Option configures a sandbox.
type Option func(*Sandbox)

// WithPackages makes Crossplane's package manager install the function, as
// a user's cluster does: the sandbox serves an OCI registry on loopback,
// and instead of registering the function by hand it plays the package
// runtime, and only that, for the FunctionRevisions the package manager
// creates. Examples then pushes the packages and installs the
// Configuration.
func WithPackages(p Packages) Option {
	return func(s *Sandbox) { s.packages = &p }
}

// serveRegistry serves an in-memory OCI registry on a free loopback port.
// Both the crossplane CLI and the core speak plain HTTP to a 127.0.0.1
// registry.
func (s *Sandbox) serveRegistry(_ context.Context) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("%s: %w", errRegistry, err)
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0))), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	s.registry = srv
	s.Registry = l.Addr().String()
	return nil
}

// Push pushes a package file to the sandbox's registry, at the place a
// package of the given user-facing repository (under Repository) is pulled
// from after the ImageConfig rewrite.
func (s *Sandbox) Push(ctx context.Context, file, repository, tag string) error {
	ref := s.Registry + strings.TrimPrefix(repository, "xpkg.crossplane.io") + ":" + tag
	cmd := exec.CommandContext(ctx, s.packages.CLI, "xpkg", "push", "-f", file, ref) //nolint:gosec // The pinned crossplane CLI.
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf(errPush+": %w\n%s", file, ref, err, out)
	}
	return nil
}

// Publish pushes the Function and both Configuration packages at a tag, as
// the project's release does.
func (s *Sandbox) Publish(ctx context.Context, tag string) error {
	for file, repo := range map[string]string{
		"function-fleetnodepool.xpkg":             FunctionPackage,
		"configuration-fleetnodepool.xpkg":        ConfigurationPackage,
		"configuration-legacy-fleetnodepool.xpkg": LegacyConfigurationPackage,
	} {
		if err := s.Push(ctx, filepath.Join(s.packages.Dir, file), repo, tag); err != nil {
			return err
		}
	}
	return nil
}

// InstallPackage installs (or upgrades to) a Configuration package, as
// docs/install.md tells users to, and waits until it is installed and
// healthy: its dependency, the Function, is the package manager's to
// resolve. Crossplane pulls the project's packages from the sandbox's
// registry through an ImageConfig, so their names stay the published ones.
func (s *Sandbox) InstallPackage(ctx context.Context, pkg string) error {
	ic := &pkgv1beta1.ImageConfig{
		TypeMeta:   metav1.TypeMeta{APIVersion: pkgv1beta1.SchemeGroupVersion.String(), Kind: pkgv1beta1.ImageConfigKind},
		ObjectMeta: metav1.ObjectMeta{Name: imageConfigName},
		Spec: pkgv1beta1.ImageConfigSpec{
			MatchImages:  []pkgv1beta1.ImageMatch{{Type: pkgv1beta1.Prefix, Prefix: Repository + "/"}},
			RewriteImage: &pkgv1beta1.ImageRewrite{Prefix: s.Registry + "/fleetnodepool/"},
		},
	}
	cfg := &pkgv1.Configuration{
		TypeMeta:   metav1.TypeMeta{APIVersion: pkgv1.SchemeGroupVersion.String(), Kind: pkgv1.ConfigurationKind},
		ObjectMeta: metav1.ObjectMeta{Name: ConfigurationName},
		Spec:       pkgv1.ConfigurationSpec{PackageSpec: pkgv1.PackageSpec{Package: pkg}},
	}
	for _, o := range []client.Object{ic, cfg} {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			return err
		}
		if err := s.ApplyObjects(ctx, &unstructured.Unstructured{Object: m}); err != nil {
			return err
		}
	}
	if err := s.WaitConfiguration(ctx, pkg, 2*time.Minute); err != nil {
		return err
	}
	return s.waitCRD(ctx, "fleetnodepools.fleet.nodepool.dev")
}

// WaitConfiguration waits until the Configuration's active revision is of
// pkg, and it is installed and healthy.
func (s *Sandbox) WaitConfiguration(ctx context.Context, pkg string, timeout time.Duration) error {
	err := eventually(ctx, timeout, func() error {
		cfg := &pkgv1.Configuration{}
		if err := s.Client.Get(ctx, client.ObjectKey{Name: ConfigurationName}, cfg); err != nil {
			return err
		}
		if cfg.GetSource() != pkg {
			return fmt.Errorf("at %s", cfg.GetSource())
		}
		revs := &pkgv1.ConfigurationRevisionList{}
		if err := s.Client.List(ctx, revs, client.MatchingLabels{pkgv1.LabelParentPackage: ConfigurationName}); err != nil {
			return err
		}
		active := false
		for _, r := range revs.Items {
			active = active || (r.GetDesiredState() == pkgv1.PackageRevisionActive && r.GetSource() == pkg)
		}
		if !active {
			return fmt.Errorf("no active revision of %s", pkg)
		}
		for _, t := range []xpv2.ConditionType{pkgv1.TypeInstalled, pkgv1.TypeHealthy} {
			if c := cfg.GetCondition(t); c.Status != corev1.ConditionTrue {
				return fmt.Errorf("%s: %s %s", t, c.Reason, c.Message)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf(errConfiguration+": %w\n%s", pkg, err, s.PackageReport(ctx))
	}
	return nil
}

// PackageReport is what the package manager says about the packages and
// revisions it manages, for failures.
func (s *Sandbox) PackageReport(ctx context.Context) string {
	var b strings.Builder
	cfgs := &pkgv1.ConfigurationList{}
	fns := &pkgv1.FunctionList{}
	frs := &pkgv1.FunctionRevisionList{}
	crs := &pkgv1.ConfigurationRevisionList{}
	_ = s.Client.List(ctx, cfgs)
	_ = s.Client.List(ctx, fns)
	_ = s.Client.List(ctx, crs)
	_ = s.Client.List(ctx, frs)
	for _, o := range cfgs.Items {
		fmt.Fprintf(&b, "Configuration %s (%s): %s\n", o.GetName(), o.Spec.Package, conds(o.Status.Conditions))
	}
	for _, o := range crs.Items {
		fmt.Fprintf(&b, "ConfigurationRevision %s (%s, %s): %s\n", o.GetName(), o.GetSource(), o.GetDesiredState(), conds(o.Status.Conditions))
	}
	for _, o := range fns.Items {
		fmt.Fprintf(&b, "Function %s (%s): %s\n", o.GetName(), o.Spec.Package, conds(o.Status.Conditions))
	}
	for _, o := range frs.Items {
		fmt.Fprintf(&b, "FunctionRevision %s (%s, %s, endpoint %q): %s\n", o.GetName(), o.GetSource(), o.GetDesiredState(), o.Status.Endpoint, conds(o.Status.Conditions))
	}
	return b.String()
}

// playRuntime is the package runtime of the function, in place of the
// Deployment runtime a cluster runs: for each active FunctionRevision the
// package manager creates, it writes the TLS server Secret, points the
// revision's endpoint at the locally served function and reports the
// runtime healthy. It runs until ctx is done.
func (s *Sandbox) playRuntime(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	s.stopRuntime = cancel
	go func() {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			revs := &pkgv1.FunctionRevisionList{}
			if err := s.Client.List(ctx, revs); err == nil {
				for i := range revs.Items {
					if err := s.runRevision(ctx, &revs.Items[i]); err != nil && !apierrors.IsConflict(err) && ctx.Err() == nil {
						s.progress(errRuntimeRevision+": %v", revs.Items[i].GetName(), err)
					}
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return nil
}

// runRevision plays the runtime of one FunctionRevision, if it is active
// and not yet served.
func (s *Sandbox) runRevision(ctx context.Context, rev *pkgv1.FunctionRevision) error {
	if rev.GetDesiredState() != pkgv1.PackageRevisionActive {
		return nil
	}
	fn := &pkgv1.Function{ObjectMeta: metav1.ObjectMeta{Name: rev.GetLabels()[pkgv1.LabelParentPackage]}}
	secret := fn.GetTLSServerSecretName()
	served := rev.Status.Endpoint == s.fnAddr && ptr.Deref(rev.GetObservedTLSServerSecretName(), "") == *secret &&
		rev.GetCondition(pkgv1.TypeRuntimeHealthy).Status == corev1.ConditionTrue
	if served {
		return nil
	}
	if err := s.tlsServerSecret(ctx, *secret); err != nil {
		return err
	}
	rev.Status.Endpoint = s.fnAddr
	rev.SetObservedTLSServerSecretName(secret)
	rev.SetConditions(pkgv1.RuntimeHealthy())
	return s.Client.Status().Update(ctx, rev)
}

// tlsServerSecret writes the function's server certificate, signed by
// Crossplane's CA, as the Deployment runtime's Secret of that name.
func (s *Sandbox) tlsServerSecret(ctx context.Context, name string) error {
	data := map[string][]byte{}
	for _, f := range []string{"tls.crt", "tls.key", "ca.crt"} {
		b, err := os.ReadFile(filepath.Join(s.Dir, "tls-server", f)) //nolint:gosec // The sandbox's own certificate.
		if err != nil {
			return err
		}
		data[f] = b
	}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: name}, Data: data}
	return client.IgnoreAlreadyExists(s.Client.Create(ctx, sec))
}

func conds(cs []xpv2.Condition) string {
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s=%s %s %s", c.Type, c.Status, c.Reason, c.Message))
	}
	if len(out) == 0 {
		return "no conditions"
	}
	return strings.Join(out, "; ")
}
