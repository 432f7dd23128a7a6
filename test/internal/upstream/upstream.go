// Package upstream locates what the pinned upstream modules ship: the
// Cluster API, CAPA, CAPZ and CAPD CRDs and webhook manifests.
package upstream

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// A Module is an upstream module and the folders of its CRDs.
type Module struct {
	Path string
	CRDs []string
	// Tools is the folder, from the repository root, whose go.mod pins the
	// module: the tools module its managers are built from, so that the
	// CRDs installed are those the managers were built with; "" for the
	// repository's own go.mod (the API types the function imports).
	Tools string
}

// Modules whose CRDs the tests and the sandbox install, at the versions
// their go.mod pins.
var Modules = []Module{
	{Path: "sigs.k8s.io/cluster-api", Tools: "test/tools/capi", CRDs: []string{"core/config/crd/bases", "bootstrap/kubeadm/config/crd/bases", "controlplane/kubeadm/config/crd/bases"}},
	{Path: "sigs.k8s.io/cluster-api-provider-aws/v2", CRDs: []string{"config/crd/bases"}},
	{Path: "sigs.k8s.io/cluster-api-provider-azure", CRDs: []string{"config/crd/bases"}},
	// CAPD: the in-memory DevCluster, DevMachine and DevMachineTemplate of
	// the sim provider.
	{Path: "sigs.k8s.io/cluster-api/test", Tools: "test/tools/capi", CRDs: []string{"infrastructure/docker/config/crd/bases"}},
}

// Root is the repository root: the folder of the go.mod above the working
// directory.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the module root (go.mod) above the working directory")
		}
		dir = parent
	}
}

// Dir is where the pinned version of a module is in the module cache, as
// the module in dir requires it. An empty dir is where Modules says the
// module is pinned (the repository, by default).
func Dir(module, dir string) (string, error) {
	if dir == "" {
		root, err := Root()
		if err != nil {
			return "", err
		}
		dir = root
		for _, m := range Modules {
			if m.Path == module {
				dir = filepath.Join(root, m.Tools)
			}
		}
	}
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module) //nolint:gosec // A fixed module path.
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("cannot locate module %s: %w", module, err)
	}
	d := strings.TrimSpace(string(out))
	if d == "" {
		return "", fmt.Errorf("module %s is not downloaded: run go mod download", module)
	}
	return d, nil
}

// CRDDirs are the folders of every module's CRDs.
func CRDDirs() ([]string, error) {
	var dirs []string
	for _, m := range Modules {
		d, err := Dir(m.Path, "")
		if err != nil {
			return nil, err
		}
		for _, c := range m.CRDs {
			dirs = append(dirs, filepath.Join(d, c))
		}
	}
	return dirs, nil
}

// WebhookConfigs reads an upstream webhook manifest, naming its
// configurations prefix-<name>: CAPI core's and the kubeadm providers'
// manifests use the same names, and installing both unprefixed silently
// keeps only one.
func WebhookConfigs(path, prefix string) ([]*admissionv1.MutatingWebhookConfiguration, []*admissionv1.ValidatingWebhookConfiguration, error) {
	b, err := os.ReadFile(path) //nolint:gosec // An upstream manifest of a pinned module.
	if err != nil {
		return nil, nil, err
	}
	var mutating []*admissionv1.MutatingWebhookConfiguration
	var validating []*admissionv1.ValidatingWebhookConfiguration
	for _, doc := range strings.Split(string(b), "\n---") {
		meta := &metav1.TypeMeta{}
		if err := yaml.Unmarshal([]byte(doc), meta); err != nil {
			return nil, nil, fmt.Errorf("cannot parse %s: %w", path, err)
		}
		switch meta.Kind {
		case "MutatingWebhookConfiguration":
			c := &admissionv1.MutatingWebhookConfiguration{}
			if err := yaml.Unmarshal([]byte(doc), c); err != nil {
				return nil, nil, fmt.Errorf("cannot parse %s: %w", path, err)
			}
			c.Name = prefix + "-" + c.Name
			mutating = append(mutating, c)
		case "ValidatingWebhookConfiguration":
			c := &admissionv1.ValidatingWebhookConfiguration{}
			if err := yaml.Unmarshal([]byte(doc), c); err != nil {
				return nil, nil, fmt.Errorf("cannot parse %s: %w", path, err)
			}
			c.Name = prefix + "-" + c.Name
			validating = append(validating, c)
		}
	}
	return mutating, validating, nil
}
