// Package provider defines what a cloud contributes to a node pool. Each cloud
// lives in its own package (aws, azure, sim) behind the Provider interface,
// which also carries everything the provider-neutral core needs to know of
// the cloud (its Cluster kinds, managed control planes and the skew they
// allow, the kinds it composes). Adding a cloud is one new folder, one line
// in package providers, and a catalog column in the policy.
package provider

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/apis/input/v1beta1"
)

// An Object is a typed Kubernetes object with metadata.
type Object interface {
	metav1.Object
	runtime.Object
}

// A Platform is how a cluster's control plane is run, which decides the node
// pool backends and bootstrap it supports.
type Platform string

// Platforms.
const (
	// PlatformKubeadm is a self-managed cluster (KubeadmControlPlane).
	PlatformKubeadm Platform = "kubeadm"
	// PlatformEKS is an Amazon EKS cluster (AWSManagedControlPlane).
	PlatformEKS Platform = "eks"
	// PlatformAKS is an Azure AKS cluster (AzureASOManagedControlPlane).
	PlatformAKS Platform = "aks"
)

// A ControlPlaneKind is a kind of Cluster API control plane, and what it
// means for the pools of its clusters.
type ControlPlaneKind struct {
	// Kind of the control plane, e.g. AWSManagedControlPlane.
	Kind string
	// APIVersion to read the control plane's status.version at.
	APIVersion string
	// Platform the control plane's clusters run.
	Platform Platform
	// MaxSkew is how many minors older than the control plane a node may
	// run: 0 where nodes must run its minor.
	MaxSkew int
	// Skew says who sets the limit, for messages, e.g. "EKS supports nodes
	// up to 3 minors older than the control plane".
	Skew string
}

// A Node is what a pool's nodes are given when they join.
type Node struct {
	// Labels are set by kubelet (--node-labels) when the node registers.
	Labels map[string]string
	// Taints are set when the node registers.
	Taints []v1alpha1.Taint
}

// LabelsFlag renders labels as kubelet's --node-labels value, sorted; ""
// for none.
func (n Node) LabelsFlag() string {
	keys := make([]string, 0, len(n.Labels))
	for k := range n.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + n.Labels[k])
	}
	return b.String()
}

// A Pool is a FleetNodePool after the provider-neutral defaults and checks:
// what a provider builds its objects from.
type Pool struct {
	// Name of the pool and Cluster it joins.
	Name, ClusterName string
	// Spec is the FleetNodePool's spec as written.
	Spec *v1alpha1.FleetNodePoolSpec
	// Policy is the platform policy.
	Policy *v1beta1.Policy
	// Platform and Backend the pool runs on.
	Platform Platform
	Backend  v1alpha1.Backend
	// Version is the resolved Kubernetes version, e.g. v1.33.4.
	Version string
	// MachineType is the resolved provider instance type.
	MachineType string
	// DiskGiB is the resolved root disk size.
	DiskGiB int32
	// Spot is true for pools on spot capacity.
	Spot bool
	// Size of the whole pool: fixed Replicas, or autoscaler Min and Max.
	Replicas, Min, Max *int32
	// Rollout bounds, resolved.
	MaxSurge, MaxUnavailable *intstr.IntOrString
	// Labels and Taints of the pool's nodes.
	Labels map[string]string
	Taints []v1alpha1.Taint
	// Node is what kubelet is given of them when a node registers.
	Node Node
	// Observed is the spec of the pool's infrastructure machine pool as it
	// exists, if it does: providers check immutable fields against it.
	Observed map[string]any
}

// Autoscaled reports whether an autoscaler owns the pool's size.
func (p *Pool) Autoscaled() bool { return p.Replicas == nil }

// Join is what a provider needs in the bootstrap configuration of a node.
type Join struct {
	// NodeName is the kubeadm node name template.
	NodeName string
	// KubeletArgs are kubelet flags, e.g. cloud-provider=external.
	KubeletArgs []bootstrapv1.Arg
	// Files are written on the node before kubeadm runs.
	Files []bootstrapv1.File
	// Template is the bootstrap template of another format than kubeadm
	// (nil: the core builds a kubeadm one from the fields above), built by
	// the provider (e.g. CAPA's NodeadmConfigTemplate), without
	// name or namespace: the caller names it by a hash of its content.
	Template Object
}

// A Provider builds the cloud-specific objects of a pool.
type Provider interface {
	// Name of the provider, as written in spec.provider.
	Name() v1alpha1.Provider

	// InfrastructureKinds lists the kinds of Cluster spec.infrastructureRef
	// whose clusters run on this provider, e.g. AWSCluster.
	InfrastructureKinds() []string

	// ControlPlaneKinds lists the managed control planes of this provider,
	// which decide a cluster's platform. Clusters of any other control
	// plane are self-managed (kubeadm).
	ControlPlaneKinds() []ControlPlaneKind

	// ComposedKinds lists the infrastructure kinds the provider composes
	// (machine templates, machine pools): what tells an observed object's
	// cloud.
	ComposedKinds() []string

	// Backends lists the backends the provider runs on a platform, the first
	// being what Auto means where the policy does not decide; none where it
	// does not run the platform.
	Backends(pf Platform) []v1alpha1.Backend

	// CatalogType returns the provider's instance type for a catalog class,
	// or "" when the class has none for this provider.
	CatalogType(c v1beta1.MachineClass) string

	// CatalogCapacity returns what a node of a catalog class has on this
	// provider, or nil when the class declares none for it.
	CatalogCapacity(c v1beta1.MachineClass) *v1beta1.NodeCapacity

	// CannotRotate says why the pool's nodes cannot be replaced for their
	// age ("" when they can): a MachineDeployment rolls them by its
	// spec.rollout.after, a MachinePool by a new bootstrap config, and a
	// backend where neither replaces nodes safely refuses a max node age.
	CannotRotate(p *Pool) string

	// ServedBy says what serves a kind the provider composes (its manager,
	// and the feature gates its controllers need), for a message telling the platform team what to
	// install where the management cluster does not serve it; "" for
	// another kind.
	ServedBy(kind string) string

	// Validate checks the pool's provider-specific settings against the
	// policy and the provider's own rules for the pool's backend. Errors
	// name the field to fix (spec.* or input.*).
	Validate(p *Pool) field.ErrorList

	// MachineTemplate builds the infrastructure machine template of the
	// MachineDeployment for one zone ("" for none), without name or
	// namespace: the caller names it by a hash of its spec.
	MachineTemplate(p *Pool, zone string) Object

	// MachinePool builds the infrastructure machine pool of a MachinePool:
	// the cloud's scale group for BackendMachinePool, its managed node group
	// for BackendManaged. The caller names it.
	MachinePool(p *Pool) Object

	// ParentFirst reports whether the provider admits the pool's
	// infrastructure machine pool only once its MachinePool exists (CAPZ
	// looks a Flexible AzureMachinePool's parent up): Crossplane applies
	// composed objects in no set order, so the planner composes it on the
	// reconcile after the MachinePool's.
	ParentFirst(p *Pool) bool

	// KeepImmutable sets back, on the infrastructure machine pool
	// MachinePool built, the fields its running counterpart (p.Observed)
	// cannot change in place, and says which it set back, each error naming
	// the pool's field to revert. The planner refuses those changes
	// (condition ChangeRefused) and reconciles the rest of the pool.
	KeepImmutable(p *Pool, infra Object) field.ErrorList

	// ReplicasManagedBy is the cluster.x-k8s.io/replicas-managed-by value of
	// an autoscaled MachinePool whose size an external scaler owns, or ""
	// where Cluster API's autoscaler (or the provider itself) decides.
	ReplicasManagedBy(p *Pool) string

	// Join is the provider's part of the bootstrap configuration of nodes
	// built from the named infrastructure object.
	Join(p *Pool, infraName string) Join
}

// JSONMap is v as the generic JSON values an observed object decodes to:
// what to compare desired values with observed ones.
func JSONMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	return m, json.Unmarshal(b, &m)
}

// FromJSONMap decodes generic JSON values (JSONMap's) into v.
func FromJSONMap(m map[string]any, v any) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// An ImmutableField is a field of a running infrastructure machine pool
// that its cloud cannot change in place: its JSON keys (the first named in
// messages, the others set back with it) and the pool's field that sets it.
// Unset is a value of an Optional field (the cloud's default: no zones,
// regular priority); of others, an unset observed field is not compared
// (an object created before the function set it).
type ImmutableField struct {
	Keys     []string
	Path     *field.Path
	Optional bool
}

const errFmtImmutable = "would change %s of the running %s from %v to %v, which %s cannot do in place: " +
	"the change waits, and the rest of the pool is reconciled. Revert it, or create a new FleetNodePool and delete this one when its nodes are ready"

// KeepImmutable sets back, in desired (the spec being built, as JSONMap
// makes it), each field of fields whose value differs from observed (the
// running object's), and says which it set back: what a Provider's
// KeepImmutable does for its kind. what names the running object and cloud
// the cloud, in messages.
func KeepImmutable(observed, desired map[string]any, fields []ImmutableField, what, cloud string) field.ErrorList {
	var errs field.ErrorList
	for _, f := range fields {
		k := f.Keys[0]
		old, ok := observed[k]
		if !ok && !f.Optional || reflect.DeepEqual(old, desired[k]) {
			continue
		}
		errs = append(errs, field.Forbidden(f.Path, fmt.Sprintf(errFmtImmutable, k, what, orUnset(old), orUnset(desired[k]), cloud)))
		for _, k := range f.Keys {
			if v, ok := observed[k]; ok {
				desired[k] = v
			} else {
				delete(desired, k)
			}
		}
	}
	return errs
}

func orUnset(v any) any {
	if v == nil {
		return "unset"
	}
	return v
}
