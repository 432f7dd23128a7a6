package v1beta1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
)

// A Policy is the platform team's rules for every FleetNodePool composed by
// one Composition: which machine sizes exist, which Kubernetes versions each
// channel means, defaults, and limits. Bumping a channel's version here rolls
// every pool that follows the channel.
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:resource:categories=crossplane
type Policy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Catalog maps a size class (e.g. medium) to a machine type per provider.
	// +optional
	Catalog map[string]MachineClass `json:"catalog,omitempty"`

	// Channels maps a channel name (e.g. stable) to a Kubernetes version
	// (e.g. v1.33.4).
	// +optional
	Channels map[string]string `json:"channels,omitempty"`

	// Defaults apply where a FleetNodePool leaves a field unset.
	// +optional
	Defaults Defaults `json:"defaults,omitempty,omitzero"`

	// Limits bound what a FleetNodePool may ask for.
	// +optional
	Limits Limits `json:"limits,omitempty,omitzero"`

	// AWS holds the AWS-wide settings.
	// +optional
	AWS *AWSPolicy `json:"aws,omitempty"`

	// Azure holds the Azure-wide settings.
	// +optional
	Azure *AzurePolicy `json:"azure,omitempty"`

	// Sim holds the settings of simulated (in-memory) clusters.
	// +optional
	Sim *SimPolicy `json:"sim,omitempty"`

	// Rollouts gate the disruptive changes of running pools (new templates
	// or a new version, which replace machines): how many pools of a
	// Cluster roll at once, pauses, and maintenance windows. Creating a
	// pool, scaling it and in-place changes are never held.
	// +optional
	Rollouts *RolloutPolicy `json:"rollouts,omitempty"`

	// Rotation replaces the nodes of pools before they reach a maximum
	// age. A rotation is a disruptive change: the rollout rules gate it.
	// +optional
	Rotation *RotationPolicy `json:"rotation,omitempty"`

	// ScaleFromZero says what the cluster-autoscaler learns of a pool
	// that has no nodes.
	// +optional
	ScaleFromZero *ScaleFromZeroPolicy `json:"scaleFromZero,omitempty"`

	// Cells are the Cluster API management clusters, other than the one
	// Crossplane runs in, that pools may live in (spec.cell), by name. A
	// pool in a cell has its objects applied there by provider-kubernetes
	// Objects, and reads its Cluster, control plane and machine pools back
	// from them.
	// +optional
	Cells map[string]Cell `json:"cells,omitempty"`
}

// A Cell is a Cluster API management cluster that provider-kubernetes
// reaches.
type Cell struct {
	// ProviderConfigRef names the provider-kubernetes (namespaced API,
	// kubernetes.m.crossplane.io) provider config whose credentials reach
	// the cell's API server.
	// +required
	ProviderConfigRef ProviderConfigReference `json:"providerConfigRef"`

	// Watch asks provider-kubernetes to watch, in the cell, the objects
	// whose state pools read (their MachineDeployments and MachinePools,
	// Clusters and control planes), instead of reading them every poll
	// interval (--poll, 10m by default): rollouts then move as soon as
	// Cluster API does. It needs provider-kubernetes' --enable-watches,
	// an alpha feature (Object spec.watch); without it, it does nothing.
	// +optional
	Watch bool `json:"watch,omitempty"`
}

// Kinds of provider-kubernetes provider configs (its namespaced API). An
// Object without a kind names a ClusterProviderConfig.
const (
	ClusterProviderConfigKind = "ClusterProviderConfig"
	ProviderConfigKind        = "ProviderConfig"
)

// A ProviderConfigReference names a provider-kubernetes provider config.
type ProviderConfigReference struct {
	// Kind is ClusterProviderConfig (the default) or ProviderConfig, which
	// must then exist in every namespace with pools in the cell.
	// +optional
	// +kubebuilder:validation:Enum=ClusterProviderConfig;ProviderConfig
	// +kubebuilder:default=ClusterProviderConfig
	Kind string `json:"kind,omitempty"`

	// Name of the provider config.
	// +required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// RotationPolicy bounds how old the nodes of pools may grow.
type RotationPolicy struct {
	// MaxNodeAge of the nodes of pools that set none (spec.maxNodeAge),
	// e.g. 720h. Nodes are replaced before they reach it. Unset: only the
	// pools that set one rotate.
	// +optional
	MaxNodeAge *metav1.Duration `json:"maxNodeAge,omitempty"`

	// LongestNodeAge is the most a pool may set spec.maxNodeAge to.
	// Default: maxNodeAge, if set (pools may only ask for shorter).
	// +optional
	LongestNodeAge *metav1.Duration `json:"longestNodeAge,omitempty"`

	// Spread: a pool's rotation starts at a point of the last spread
	// before its nodes reach their max age, fixed per pool by a hash of its
	// identity, so that a fleet whose nodes were all replaced at once does
	// not rotate all at once. Default a tenth of the max age; less than
	// it.
	// +optional
	Spread *metav1.Duration `json:"spread,omitempty"`
}

// ScaleFromZeroPolicy says what the cluster-autoscaler learns of a pool
// that has no nodes.
type ScaleFromZeroPolicy struct {
	// ProviderCapacity lists the providers whose controllers report the
	// capacity of a MachineDeployment's machine template themselves
	// (status.capacity of CAPA's AWSMachineTemplate, CAPZ's
	// AzureMachineTemplate): their MachineDeployment pools may scale to
	// zero without catalog capacity. The labels and taints of new nodes
	// come from the pool all the same.
	// +optional
	// +listType=set
	ProviderCapacity []v1alpha1.Provider `json:"providerCapacity,omitempty"`
}

// RolloutPolicy gates the disruptive changes of running pools. A held pool
// keeps running what it runs; a rollout that has started runs to its end.
type RolloutPolicy struct {
	// Concurrency is how many pools of one Cluster may be in a disruptive
	// rollout at once. Default 1. The Cluster's annotation
	// fleet.nodepool.dev/rollout-concurrency overrides it, and so does
	// ClusterClass's topology.cluster.x-k8s.io/upgrade-concurrency.
	// +optional
	// +kubebuilder:validation:Minimum=1
	Concurrency *int32 `json:"concurrency,omitempty"`

	// Paused holds every disruptive change of every pool: the fleet's
	// emergency stop. Rollouts under way finish.
	// +optional
	Paused bool `json:"paused,omitempty"`

	// PausedChannels holds the disruptive changes of the pools that follow
	// these channels (spec.channel, or the default channel).
	// +optional
	// +listType=set
	PausedChannels []string `json:"pausedChannels,omitempty"`

	// MaintenanceWindows are the named times disruptive changes may start
	// in. A pool selects one with the label
	// fleet.nodepool.dev/maintenance-window, on itself or on its Cluster
	// (the pool's wins).
	// +optional
	// +listType=map
	// +listMapKey=name
	MaintenanceWindows []MaintenanceWindow `json:"maintenanceWindows,omitempty"`

	// DefaultMaintenanceWindow is the window of pools that select none.
	// Empty: such pools may start at any time.
	// +optional
	DefaultMaintenanceWindow string `json:"defaultMaintenanceWindow,omitempty"`

	// Waves order the fleet's pools: a pool starts a disruptive change only
	// once every pool of the waves before its own runs the same target,
	// Available and not rolling, for that wave's soak. A pool in no wave
	// goes last. Empty: no order across Clusters.
	// +optional
	// +listType=map
	// +listMapKey=name
	Waves []Wave `json:"waves,omitempty"`

	// Fleet names the fleet the waves order: the pools of every Composition
	// whose policy names the same fleet share their waves, so those policies
	// must ask the same of their pools (a pool waits for the earlier waves
	// to run its own policy's target). Default: the Composition's name.
	// +optional
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=63
	Fleet string `json:"fleet,omitempty"`

	// Halt stops the later waves when pools of an earlier one fail.
	// +optional
	Halt *HaltPolicy `json:"halt,omitempty"`

	// Approvals approve a target for a wave that requires it: wave name to
	// the target (status.rollout.target of its pools).
	// +optional
	Approvals map[string]string `json:"approvals,omitempty"`
}

// A Wave is a stage of a fleet's rollouts.
type Wave struct {
	// Name of the wave, e.g. canary.
	// +required
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// PoolSelector selects the wave's FleetNodePools by their labels.
	// +optional
	PoolSelector *metav1.LabelSelector `json:"poolSelector,omitempty"`

	// ClusterSelector selects the wave's pools by their Cluster's labels.
	// With PoolSelector, a pool must match both. A pool matching several
	// waves is in the first.
	// +optional
	ClusterSelector *metav1.LabelSelector `json:"clusterSelector,omitempty"`

	// Soak is how long every pool of the wave must run the target,
	// Available and not rolling, before the next wave starts it.
	// +optional
	Soak metav1.Duration `json:"soak,omitempty"`

	// RequireApproval: the wave starts a target only once approvals names
	// it for the wave.
	// +optional
	RequireApproval bool `json:"requireApproval,omitempty"`
}

// HaltPolicy says when pools of a wave have failed, and how many failures
// the later waves tolerate.
type HaltPolicy struct {
	// Timeout: a pool not at its target, Available and done rolling this
	// long after it started its change has failed. Default 1h.
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// Tolerance is how many of a wave's pools may fail (a count or a
	// percentage) before the later waves halt. Default 0.
	// +optional
	// +kubebuilder:validation:XIntOrString
	Tolerance *intstr.IntOrString `json:"tolerance,omitempty"`
}

// A MaintenanceWindow is a weekly time disruptive changes may start in.
type MaintenanceWindow struct {
	// Name pools and Clusters select the window by.
	// +required
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// Days of the week the window opens on, e.g. [Saturday, Sunday].
	// Empty: every day.
	// +optional
	// +listType=set
	Days []Weekday `json:"days,omitempty"`

	// Start is the time of day the window opens, HH:MM in TimeZone.
	// +required
	// +kubebuilder:validation:Pattern=`^([01][0-9]|2[0-3]):[0-5][0-9]$`
	Start string `json:"start"`

	// Duration the window stays open, e.g. 4h; at most 168h. A rollout
	// that started inside the window runs to its end.
	// +required
	Duration metav1.Duration `json:"duration"`

	// TimeZone of Start: an IANA name such as Europe/Berlin. Default UTC.
	// +optional
	TimeZone string `json:"timeZone,omitempty"`
}

// A Weekday is a day of the week, as Go's time package names it.
// +kubebuilder:validation:Enum=Monday;Tuesday;Wednesday;Thursday;Friday;Saturday;Sunday
type Weekday string

// MachineClass is one size class of the catalog, per provider.
type MachineClass struct {
	// AWS is the EC2 instance type, e.g. m6i.xlarge.
	// +optional
	AWS string `json:"aws,omitempty"`

	// Azure is the VM size, e.g. Standard_D4s_v5.
	// +optional
	Azure string `json:"azure,omitempty"`

	// Sim is the simulated machine type, e.g. sim.medium: a label of the
	// in-memory machines, which rotates their template like a real type.
	// +optional
	Sim string `json:"sim,omitempty"`

	// Capacity is what a node of the class has, per provider: what the
	// cluster-autoscaler assumes of a new node when it grows a pool of the
	// class from zero nodes.
	// +optional
	Capacity *ClassCapacity `json:"capacity,omitempty"`
}

// ClassCapacity is the capacity of a class's nodes, per provider.
type ClassCapacity struct {
	// AWS nodes of the class.
	// +optional
	AWS *NodeCapacity `json:"aws,omitempty"`

	// Azure nodes of the class.
	// +optional
	Azure *NodeCapacity `json:"azure,omitempty"`

	// Sim nodes of the class.
	// +optional
	Sim *NodeCapacity `json:"sim,omitempty"`
}

// NodeCapacity is what one node has, as the cluster-autoscaler reads it
// from the capacity.cluster-autoscaler.kubernetes.io annotations.
type NodeCapacity struct {
	// CPU of the node, e.g. 4 or 3920m.
	// +required
	CPU resource.Quantity `json:"cpu"`

	// Memory of the node, e.g. 16Gi.
	// +required
	Memory resource.Quantity `json:"memory"`

	// EphemeralDisk of the node, e.g. 100Gi. Default: the pool's root disk
	// (spec.machine.diskGiB).
	// +optional
	EphemeralDisk *resource.Quantity `json:"ephemeralDisk,omitempty"`

	// MaxPods the node runs, e.g. 110.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxPods *int32 `json:"maxPods,omitempty"`

	// GPU of the node, if it has any.
	// +optional
	GPU *GPUCapacity `json:"gpu,omitempty"`

	// DRADriver is the Dynamic Resource Allocation driver of the node's
	// devices, e.g. gpu.nvidia.com.
	// +optional
	DRADriver string `json:"draDriver,omitempty"`
}

// GPUCapacity is the GPUs of a node.
type GPUCapacity struct {
	// Type of the GPUs: the extended resource they are scheduled as, e.g.
	// nvidia.com/gpu.
	// +required
	// +kubebuilder:validation:MinLength=1
	Type string `json:"type"`

	// Count of GPUs on the node.
	// +required
	// +kubebuilder:validation:Minimum=1
	Count int32 `json:"count"`
}

// Defaults apply where a FleetNodePool leaves a field unset.
type Defaults struct {
	// Channel is the version channel of pools that name neither a channel
	// nor a version.
	// +optional
	Channel string `json:"channel,omitempty"`

	// Backend is what a pool's backend Auto means on self-managed (kubeadm)
	// clusters: MachineDeployment (the default) or MachinePool. On EKS and
	// AKS clusters Auto means a managed node pool.
	// +optional
	// +kubebuilder:validation:Enum=MachineDeployment;MachinePool
	Backend v1alpha1.Backend `json:"backend,omitempty"`

	// DiskGiB is the root disk size of pools that do not set one.
	// +optional
	// +kubebuilder:validation:Minimum=8
	// +kubebuilder:validation:Maximum=2048
	DiskGiB *int32 `json:"diskGiB,omitempty"`

	// Rollout is the rollout of pools that do not set one.
	// +optional
	Rollout *v1alpha1.Rollout `json:"rollout,omitempty"`

	// HealthCheck is the MachineHealthCheck of MachineDeployment pools.
	// +optional
	HealthCheck *HealthCheckPolicy `json:"healthCheck,omitempty"`
}

// HealthCheckPolicy is how pools' machines are checked and remediated.
type HealthCheckPolicy struct {
	// Enabled is whether pools get a MachineHealthCheck unless they say
	// otherwise. Default true.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`

	// NodeStartupTimeoutSeconds is how long a machine may take to get a
	// Node before it is remediated. Default 600.
	// +optional
	// +kubebuilder:validation:Minimum=30
	NodeStartupTimeoutSeconds *int32 `json:"nodeStartupTimeoutSeconds,omitempty"`

	// UnhealthyNodeConditions mark a machine unhealthy when one holds for
	// its timeout. Default: Ready False or Unknown for 300 seconds.
	// +optional
	// +listType=atomic
	UnhealthyNodeConditions []UnhealthyNodeCondition `json:"unhealthyNodeConditions,omitempty"`

	// MaxUnhealthy stops remediation when more of a pool's machines are
	// unhealthy (a number or a percentage): a wider outage is not fixed by
	// replacing machines. Default 40%.
	// +optional
	// +kubebuilder:validation:XIntOrString
	MaxUnhealthy *intstr.IntOrString `json:"maxUnhealthy,omitempty"`
}

// UnhealthyNodeCondition is a Node condition that makes a machine
// unhealthy when it holds for TimeoutSeconds.
type UnhealthyNodeCondition struct {
	// Type of the Node condition, e.g. Ready.
	// +required
	// +kubebuilder:validation:MinLength=1
	Type string `json:"type"`
	// Status of the condition: True, False or Unknown.
	// +required
	// +kubebuilder:validation:Enum=True;False;Unknown
	Status string `json:"status"`
	// TimeoutSeconds the condition must hold.
	// +required
	// +kubebuilder:validation:Minimum=0
	TimeoutSeconds int32 `json:"timeoutSeconds"`
}

// Limits bound what a FleetNodePool may ask for.
type Limits struct {
	// MaxReplicas is the largest fixed size or autoscaler maximum of a pool.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxReplicas *int32 `json:"maxReplicas,omitempty"`

	// AllowedClasses lists the catalog classes pools may use. Empty allows
	// every class of the catalog.
	// +optional
	// +listType=set
	AllowedClasses []string `json:"allowedClasses,omitempty"`

	// AllowMachineTypes lets pools name a provider instance type directly
	// (spec.machine.type) instead of a catalog class.
	// +optional
	AllowMachineTypes bool `json:"allowMachineTypes,omitempty"`
}

// AWSPolicy holds the AWS-wide settings of a Policy.
type AWSPolicy struct {
	// IAMInstanceProfile is the instance profile of worker nodes.
	// +required
	// +kubebuilder:validation:MinLength=1
	IAMInstanceProfile string `json:"iamInstanceProfile"`

	// SSHKeyName is the EC2 key pair of worker nodes. Unset uses the
	// cluster's key; empty means no key.
	// +optional
	SSHKeyName *string `json:"sshKeyName,omitempty"`

	// RootVolumeType is the EBS volume type of root disks, e.g. gp3.
	// +optional
	// +kubebuilder:validation:Enum=standard;gp2;gp3;io1;io2
	RootVolumeType string `json:"rootVolumeType,omitempty"`

	// AMIs pins a kubeadm machine image per Kubernetes version (version ->
	// AMI ID) for self-managed clusters. Versions without an entry use
	// Cluster API's image lookup; EKS nodes always use the EKS-optimized
	// AL2023 image.
	// +optional
	AMIs map[string]string `json:"amis,omitempty"`

	// Zones lists the availability zones pools may use. Empty allows any.
	// +optional
	// +listType=set
	Zones []string `json:"zones,omitempty"`

	// EKSAMIType is the AMI type of EKS managed node groups. Default
	// AL2023_x86_64_STANDARD.
	// +optional
	EKSAMIType string `json:"eksAMIType,omitempty"`
}

// AzurePolicy holds the Azure-wide settings of a Policy.
type AzurePolicy struct {
	// Location is the Azure region of the clusters, e.g. westeurope.
	// +optional
	Location string `json:"location,omitempty"`

	// SSHPublicKey is the base64-encoded OpenSSH public key of worker nodes.
	// It is always set explicitly: left empty, Cluster API Azure would
	// generate a random key and every later apply would fail.
	// +required
	// +kubebuilder:validation:MinLength=1
	SSHPublicKey string `json:"sshPublicKey"`

	// OSDiskType is the managed disk storage account type of OS disks, e.g.
	// Premium_LRS.
	// +optional
	OSDiskType string `json:"osDiskType,omitempty"`

	// OrchestrationMode of the scale sets of MachinePools: Uniform (the
	// default) or Flexible (Kubernetes v1.26 and later).
	// +optional
	// +kubebuilder:validation:Enum=Uniform;Flexible
	OrchestrationMode string `json:"orchestrationMode,omitempty"`

	// Images pins a machine image per Kubernetes version (version -> image
	// resource ID). Versions without an entry use Cluster API's reference
	// image for the version.
	// +optional
	Images map[string]string `json:"images,omitempty"`

	// Zones lists the failure domains pools may use, e.g. "1". Empty allows
	// any.
	// +optional
	// +listType=set
	Zones []string `json:"zones,omitempty"`
}

// SimPolicy holds the settings of simulated clusters: Cluster API's
// in-memory infrastructure (a DevCluster with the inMemory backend), where
// machines and nodes exist only as API objects. For simulation, demos and
// tests.
type SimPolicy struct {
	// MachineStartupSeconds is how long a simulated machine takes to boot
	// and how long its node then takes to become ready. Default 2.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=600
	MachineStartupSeconds *int32 `json:"machineStartupSeconds,omitempty"`

	// Zones lists the failure domains pools may use. Empty allows any.
	// +optional
	// +listType=set
	Zones []string `json:"zones,omitempty"`
}
