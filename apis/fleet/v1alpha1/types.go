package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// A Provider is the cloud a node pool runs on.
// +kubebuilder:validation:Enum=aws;azure;sim
type Provider string

// Providers.
const (
	ProviderAWS   Provider = "aws"
	ProviderAzure Provider = "azure"
	// ProviderSim is Cluster API's in-memory infrastructure (CAPD's
	// inMemory backend): machines and nodes that exist only as API objects.
	// It is for simulation, demos and tests, never for workloads.
	ProviderSim Provider = "sim"
)

// A Backend is the Cluster API object family that runs a node pool.
// +kubebuilder:validation:Enum=Auto;MachineDeployment;MachinePool;Managed
type Backend string

// Backends.
const (
	// BackendAuto lets the platform policy (and, where known, the Cluster)
	// choose the backend.
	BackendAuto Backend = "Auto"
	// BackendMachineDeployment runs the pool as Cluster API Machines: a
	// MachineDeployment with infrastructure and bootstrap templates.
	BackendMachineDeployment Backend = "MachineDeployment"
	// BackendMachinePool runs the pool as the cloud's own scale group (ASG,
	// VMSS) through a Cluster API MachinePool.
	BackendMachinePool Backend = "MachinePool"
	// BackendManaged runs the pool as a managed node group (EKS, AKS).
	BackendManaged Backend = "Managed"
)

// FleetNodePoolSpec is what an application team asks for: a pool of worker
// nodes in one Cluster API cluster, described without cloud specifics.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.channel) && has(self.version))",message="set either spec.channel or spec.version, not both"
type FleetNodePoolSpec struct {
	// ClusterName is the name of the Cluster API Cluster, in the
	// FleetNodePool's namespace, that the pool joins. It cannot be changed:
	// create a new FleetNodePool to move nodes to another cluster.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.clusterName is immutable: create a new FleetNodePool for another cluster"
	ClusterName string `json:"clusterName"`

	// Cell is the Cluster API management cluster (a cell of the fleet) the
	// Cluster lives in, one of the platform policy's cells. The pool's
	// objects are applied there through provider-kubernetes, and its state
	// is read back from there. Unset: the management cluster Crossplane runs
	// in. It cannot be changed: nodes cannot move between management
	// clusters.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.cell is immutable: create a new FleetNodePool in the other cell"
	Cell string `json:"cell,omitempty"`

	// Provider is the cloud the cluster runs on. When omitted it is derived
	// from the Cluster's infrastructure.
	// +optional
	Provider Provider `json:"provider,omitempty"`

	// Backend selects how the pool is run. Auto (the default) lets the
	// platform policy decide.
	// +optional
	// +kubebuilder:default=Auto
	Backend Backend `json:"backend,omitempty"`

	// Channel is a version channel defined by the platform policy, e.g.
	// stable. The policy's default channel applies when neither channel nor
	// version is set.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Channel string `json:"channel,omitempty"`

	// Version pins the pool's Kubernetes version, e.g. v1.33.4, instead of
	// following a channel.
	// +optional
	// +kubebuilder:validation:Pattern=`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`
	Version string `json:"version,omitempty"`

	// Machine describes each node.
	// +required
	Machine Machine `json:"machine"`

	// Scaling is either a fixed replica count or autoscaler bounds.
	// +required
	Scaling Scaling `json:"scaling"`

	// Zones spreads the pool over these failure domains (e.g. eu-west-1a on
	// AWS, 1 on Azure): one MachineDeployment per zone. Omit to let the
	// cluster place machines.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=6
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=63
	Zones []string `json:"zones,omitempty"`

	// Labels are added to every node of the pool (kubelet --node-labels).
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	Labels map[string]string `json:"labels,omitempty"`

	// Taints are added to every node of the pool when it registers.
	// +optional
	// +listType=map
	// +listMapKey=key
	// +listMapKey=effect
	// +kubebuilder:validation:MaxItems=16
	Taints []Taint `json:"taints,omitempty"`

	// Rollout bounds how many machines are added or removed at once while
	// the pool rolls. Platform policy supplies the defaults.
	// +optional
	Rollout *Rollout `json:"rollout,omitempty"`

	// MaxNodeAge replaces the pool's nodes before they are this old, e.g.
	// 168h, within the platform policy's limit. Default: the policy's.
	// +optional
	MaxNodeAge *metav1.Duration `json:"maxNodeAge,omitempty"`

	// HealthCheck turns the pool's MachineHealthCheck on or off. The
	// platform policy decides the default and the checks. MachinePools have
	// none: Cluster API cannot remediate their machines.
	// +optional
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`

	// AWS holds the few AWS-only settings a pool may override.
	// +optional
	AWS *AWSOptions `json:"aws,omitempty"`

	// Azure holds the few Azure-only settings a pool may override.
	// +optional
	Azure *AzureOptions `json:"azure,omitempty"`
}

// Machine describes one node of a pool.
//
// +kubebuilder:validation:XValidation:rule="has(self.class) != has(self.type)",message="set exactly one of spec.machine.class (a catalog size class) or spec.machine.type (a provider instance type)"
type Machine struct {
	// Class is a size class from the platform catalog, e.g. medium.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Class string `json:"class,omitempty"`

	// Type is a provider instance type used as is, e.g. m6i.2xlarge or
	// Standard_D8s_v5. Platform policy may forbid it.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	Type string `json:"type,omitempty"`

	// DiskGiB is the size of the root disk. Platform policy supplies the
	// default.
	// +optional
	// +kubebuilder:validation:Minimum=8
	// +kubebuilder:validation:Maximum=2048
	DiskGiB *int32 `json:"diskGiB,omitempty"`

	// Spot runs the pool on spot (preemptible) capacity.
	// +optional
	Spot *bool `json:"spot,omitempty"`
}

// Scaling is either a fixed replica count or autoscaler bounds.
//
// +kubebuilder:validation:XValidation:rule="has(self.replicas) != (has(self.min) || has(self.max))",message="set either spec.scaling.replicas (fixed size) or spec.scaling.min and spec.scaling.max (autoscaled), not both"
// +kubebuilder:validation:XValidation:rule="has(self.min) == has(self.max)",message="set both spec.scaling.min and spec.scaling.max for an autoscaled pool"
// +kubebuilder:validation:XValidation:rule="!has(self.min) || !has(self.max) || self.min <= self.max",message="spec.scaling.min must be less than or equal to spec.scaling.max"
type Scaling struct {
	// Replicas is the fixed number of nodes.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Replicas *int32 `json:"replicas,omitempty"`

	// Min is the smallest size the cluster-autoscaler may scale the pool to.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Min *int32 `json:"min,omitempty"`

	// Max is the largest size the cluster-autoscaler may scale the pool to.
	// +optional
	// +kubebuilder:validation:Minimum=1
	Max *int32 `json:"max,omitempty"`
}

// Autoscaled reports whether the cluster-autoscaler owns the pool's size.
func (s Scaling) Autoscaled() bool { return s.Min != nil || s.Max != nil }

// A TaintEffect is what a taint does to pods that do not tolerate it.
// +kubebuilder:validation:Enum=NoSchedule;PreferNoSchedule;NoExecute
type TaintEffect string

// Taint is a Kubernetes node taint.
type Taint struct {
	// Key of the taint.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key"`

	// Value of the taint.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Value string `json:"value,omitempty"`

	// Effect of the taint.
	// +required
	Effect TaintEffect `json:"effect"`
}

// Rollout bounds a rolling replacement of the pool's machines.
type Rollout struct {
	// MaxSurge is how many machines may be created above the desired size
	// during a rollout: a number or a percentage.
	// +optional
	// +kubebuilder:validation:XIntOrString
	MaxSurge *intstr.IntOrString `json:"maxSurge,omitempty"`

	// MaxUnavailable is how many machines may be unavailable during a
	// rollout: a number or a percentage.
	// +optional
	// +kubebuilder:validation:XIntOrString
	MaxUnavailable *intstr.IntOrString `json:"maxUnavailable,omitempty"`
}

// HealthCheck configures a pool's MachineHealthCheck.
type HealthCheck struct {
	// Enabled turns the health check on or off.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
}

// AWSOptions are AWS-only settings of a pool.
type AWSOptions struct {
	// AMI is the ID of the machine image to boot, e.g. ami-0123456789abcdef0.
	// By default the platform policy's image for the pool's version is used,
	// or Cluster API looks one up for the version.
	// +optional
	// +kubebuilder:validation:Pattern=`^ami-[0-9a-f]{8,17}$`
	AMI string `json:"ami,omitempty"`

	// ExtraInstanceTypes are further EC2 instance types an Auto Scaling
	// group (backend MachinePool) may launch when the pool's own type is
	// short: a mixed instances policy, the pool's type first.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=10
	// +kubebuilder:validation:items:MinLength=1
	ExtraInstanceTypes []string `json:"extraInstanceTypes,omitempty"`
}

// AzureOptions are Azure-only settings of a pool.
type AzureOptions struct {
	// ImageID is the resource ID of the image to boot. By default the platform
	// policy's image for the pool's version is used, or Cluster API picks its
	// reference image for the version.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	ImageID string `json:"imageID,omitempty"`

	// AgentPoolName is the AKS agent pool name of a managed pool: lowercase
	// letters and digits, starting with a letter, at most 12 characters.
	// By default it is derived from the FleetNodePool's name.
	// +optional
	// +kubebuilder:validation:Pattern=`^[a-z][a-z0-9]{0,11}$`
	AgentPoolName string `json:"agentPoolName,omitempty"`
}

// FleetNodePoolStatus is what the function observed of the pool.
type FleetNodePoolStatus struct {
	// Provider the pool runs on.
	// +optional
	Provider Provider `json:"provider,omitempty"`

	// Backend that runs the pool.
	// +optional
	Backend Backend `json:"backend,omitempty"`

	// Version is the Kubernetes version the pool's machines are asked to run.
	// +optional
	Version string `json:"version,omitempty"`

	// TargetVersion is the version the pool moves to once its control plane
	// runs it (condition UpgradePending).
	// +optional
	TargetVersion string `json:"targetVersion,omitempty"`

	// MachineType is the provider instance type the pool resolved to.
	// +optional
	MachineType string `json:"machineType,omitempty"`

	// ControlPlaneVersion is the Kubernetes version the pool's control plane
	// runs, as last read.
	// +optional
	ControlPlaneVersion string `json:"controlPlaneVersion,omitempty"`

	// VersionSkew is how far the pool's machines are behind their control
	// plane, and how far the platform supports.
	// +optional
	VersionSkew *VersionSkew `json:"versionSkew,omitempty"`

	// Replicas is the number of machines, summed over the pool's zones.
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// ReadyReplicas is the number of ready machines.
	// +optional
	ReadyReplicas *int32 `json:"readyReplicas,omitempty"`

	// AvailableReplicas is the number of available machines.
	// +optional
	AvailableReplicas *int32 `json:"availableReplicas,omitempty"`

	// UpToDateReplicas is the number of machines that run the current
	// templates and version.
	// +optional
	UpToDateReplicas *int32 `json:"upToDateReplicas,omitempty"`

	// Revisions are the templates the pool keeps: the current ones and the
	// previous ones machines still run from.
	// +optional
	// +listType=atomic
	Revisions []string `json:"revisions,omitempty"`

	// Changes preview what the current change does to each
	// MachineDeployment or MachinePool: which replace their nodes and why,
	// and which change in place.
	// +optional
	// +listType=atomic
	Changes []Change `json:"changes,omitempty"`

	// Rollout says whether the pool's disruptive changes roll now or wait,
	// and for what. A held pool's pending change is in changes.
	// +optional
	Rollout *RolloutStatus `json:"rollout,omitempty"`

	// Rotation says how old the pool's nodes are and when they are next
	// replaced, where they have a maximum age.
	// +optional
	Rotation *RotationStatus `json:"rotation,omitempty"`
}

// RotationStatus says how old a pool's nodes are and when they are next
// replaced.
type RotationStatus struct {
	// MaxNodeAge of the pool's nodes.
	// +optional
	MaxNodeAge *metav1.Duration `json:"maxNodeAge,omitempty"`

	// RevisionCreated is when the pool's oldest current revision was
	// created (a MachineDeployment's newest MachineSet, or its MachinePool's
	// bootstrap config), over its zones. Machines of an earlier revision
	// still rolling out may be older.
	// +optional
	RevisionCreated *metav1.Time `json:"revisionCreated,omitempty"`

	// NextRotation is when the pool's nodes are next replaced: the rollout
	// rules may hold it past then (status.rollout).
	// +optional
	NextRotation *metav1.Time `json:"nextRotation,omitempty"`
}

// VersionSkew is how many minor versions the pool's machines run behind
// their control plane.
type VersionSkew struct {
	// Minors the oldest version the pool's machines are asked to run is
	// behind the control plane's: 0 at its minor.
	Minors int32 `json:"minors"`

	// Supported is how many minors behind the control plane nodes may run
	// on this kind of control plane (Kubernetes' kubelet skew, or the
	// managed service's).
	Supported int32 `json:"supported"`
}

// A RolloutState is where a pool is with its disruptive changes.
type RolloutState string

// Rollout states.
const (
	// RolloutUpToDate: nothing to roll.
	RolloutUpToDate RolloutState = "UpToDate"
	// RolloutRollingOut: machines are being replaced.
	RolloutRollingOut RolloutState = "RollingOut"
	// RolloutHeld: a disruptive change waits (reason says for what).
	RolloutHeld RolloutState = "Held"
)

// RolloutStatus says whether the pool's disruptive changes roll now or
// wait, and for what.
type RolloutStatus struct {
	// State of the pool's disruptive changes.
	// +optional
	State RolloutState `json:"state,omitempty"`

	// Reason a held change waits: ControlPlane, Paused, Deferred,
	// AwaitingApproval, Halted, Wave, Soak, MaintenanceWindow, Concurrency
	// or SequenceHeld (condition RolloutHeld has the message).
	// +optional
	Reason string `json:"reason,omitempty"`

	// Window is the maintenance window the pool's changes start in, if
	// any.
	// +optional
	Window string `json:"window,omitempty"`

	// QueuedSince is when the pool took its place in its Cluster's queue:
	// pools start in this order, then by name.
	// +optional
	QueuedSince *metav1.Time `json:"queuedSince,omitempty"`

	// NextStart is the earliest time the held change may start, when time
	// alone decides it (a maintenance window opens, a soak ends).
	// +optional
	NextStart *metav1.Time `json:"nextStart,omitempty"`

	// Wave is the wave of the fleet's rollouts the pool is in.
	// +optional
	Wave string `json:"wave,omitempty"`

	// Target identifies what the platform policy asks of the fleet: pools
	// of earlier waves are at it before later ones start, and approvals
	// name it.
	// +optional
	Target string `json:"target,omitempty"`
}

// A ChangeAction is what a change does to the machines of an object.
type ChangeAction string

// Change actions.
const (
	// ChangeCreate creates a new MachineDeployment or MachinePool.
	ChangeCreate ChangeAction = "Create"
	// ChangeReplace rolls the object's nodes: each is replaced.
	ChangeReplace ChangeAction = "Replace"
	// ChangeInPlace changes the object without replacing nodes.
	ChangeInPlace ChangeAction = "InPlace"
)

// A Change is what the current change does to one MachineDeployment or
// MachinePool of the pool.
type Change struct {
	// Object is the MachineDeployment or MachinePool, as Kind/name.
	Object string `json:"object"`
	// Action is what happens to its nodes.
	Action ChangeAction `json:"action"`
	// Reasons say what changed, e.g. "version v1.33.4 -> v1.34.1".
	// +optional
	// +listType=atomic
	Reasons []string `json:"reasons,omitempty"`
}

// A FleetNodePool is a provider-neutral pool of worker nodes for a Cluster
// API cluster.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=crossplane
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=`.spec.clusterName`
// +kubebuilder:printcolumn:name="Cell",type=string,JSONPath=`.spec.cell`,priority=1
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.status.provider`
// +kubebuilder:printcolumn:name="Backend",type=string,JSONPath=`.status.backend`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.status.version`
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.status.replicas`
// +kubebuilder:printcolumn:name="Ready-Replicas",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Wave",type=string,JSONPath=`.status.rollout.wave`
// +kubebuilder:printcolumn:name="Rollout",type=string,JSONPath=`.status.rollout.state`
// +kubebuilder:printcolumn:name="Held-By",type=string,JSONPath=`.status.rollout.reason`
// +kubebuilder:printcolumn:name="Next-Start",type=string,JSONPath=`.status.rollout.nextStart`,priority=1
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.status.rollout.target`,priority=1
// +kubebuilder:printcolumn:name="Next-Rotation",type=string,JSONPath=`.status.rotation.nextRotation`,priority=1
type FleetNodePool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   FleetNodePoolSpec   `json:"spec"`
	Status FleetNodePoolStatus `json:"status,omitempty"`
}
