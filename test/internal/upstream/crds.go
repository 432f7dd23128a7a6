package upstream

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// contractPrefix starts the labels that name the Cluster API contracts a
// provider's CRD implements (cluster.x-k8s.io/<contract>).
const contractPrefix = "cluster.x-k8s.io/"

// A kustomization is what ContractLabels reads of a CRD folder's
// kustomization.yaml: the labels it gives every CRD.
type kustomization struct {
	CommonLabels map[string]string `json:"commonLabels"`
	Labels       []struct {
		Pairs map[string]string `json:"pairs"`
	} `json:"labels"`
}

// ContractLabels are the Cluster API contract labels each module's install
// puts on its CRDs, by CRD name. Upstream, kustomize adds them when a
// release is built: the labels or commonLabels of the kustomization.yaml
// next to the CRDs (CAPI, CAPA), or a capicontract_in_<plural>.yaml patch
// per CRD (CAPZ). Installs from the raw CRDs lack them, and Cluster API
// cannot resolve a reference to their kinds without them.
func ContractLabels() (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	for _, m := range Modules {
		d, err := Dir(m.Path, "")
		if err != nil {
			return nil, err
		}
		for _, c := range m.CRDs {
			if err := contractLabels(filepath.Join(d, c), out); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// contractLabels adds the contract labels of the CRDs in dir to out.
func contractLabels(dir string, out map[string]map[string]string) error {
	common := map[string]string{}
	k := kustomization{}
	if err := readYAML(filepath.Join(filepath.Dir(dir), "kustomization.yaml"), &k); err != nil && !os.IsNotExist(err) {
		return err
	}
	maps.Copy(common, k.CommonLabels)
	for _, l := range k.Labels {
		maps.Copy(common, l.Pairs)
	}
	crds, err := readCRDs(dir)
	if err != nil {
		return err
	}
	for _, crd := range crds {
		labels := contracts(common)
		patch := &metav1.PartialObjectMetadata{}
		err := readYAML(filepath.Join(filepath.Dir(dir), "patches", "capicontract_in_"+crd.Spec.Names.Plural+".yaml"), patch)
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		maps.Copy(labels, contracts(patch.Labels))
		if len(labels) > 0 {
			out[crd.Name] = labels
		}
	}
	return nil
}

// contracts are the contract labels among labels.
func contracts(labels map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range labels {
		if strings.HasPrefix(k, contractPrefix) {
			out[k] = v
		}
	}
	return out
}

// ServedCRDs are every module's CRDs as a management cluster that installed
// their releases serves them: labelled with their contracts
// (ContractLabels), their schemas left out. It is what the function reads
// of them (names, served versions, contract labels), in name order.
func ServedCRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	labels, err := ContractLabels()
	if err != nil {
		return nil, err
	}
	dirs, err := CRDDirs()
	if err != nil {
		return nil, err
	}
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, d := range dirs {
		crds, err := readCRDs(d)
		if err != nil {
			return nil, err
		}
		for _, crd := range crds {
			stub := &apiextensionsv1.CustomResourceDefinition{
				TypeMeta:   crd.TypeMeta,
				ObjectMeta: metav1.ObjectMeta{Name: crd.Name, Labels: labels[crd.Name]},
				Spec: apiextensionsv1.CustomResourceDefinitionSpec{
					Group: crd.Spec.Group, Names: crd.Spec.Names, Scope: crd.Spec.Scope,
				},
			}
			for _, v := range crd.Spec.Versions {
				stub.Spec.Versions = append(stub.Spec.Versions, apiextensionsv1.CustomResourceDefinitionVersion{
					Name: v.Name, Served: v.Served, Storage: v.Storage, Deprecated: v.Deprecated,
				})
			}
			out = append(out, stub)
		}
	}
	slices.SortFunc(out, func(a, b *apiextensionsv1.CustomResourceDefinition) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// readCRDs reads the CRDs of a folder.
func readCRDs(dir string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := readYAML(f, crd); err != nil {
			return nil, err
		}
		if crd.Kind == "CustomResourceDefinition" {
			out = append(out, crd)
		}
	}
	return out, nil
}

func readYAML(path string, into any) error {
	b, err := os.ReadFile(path) //nolint:gosec // A file of a pinned upstream module.
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(b, into); err != nil {
		return fmt.Errorf("cannot parse %s: %w", path, err)
	}
	return nil
}
