// Package plan is the pure core of the function: from a FleetNodePool, the
// platform policy and what is observed, it decides the Cluster API objects a
// pool needs (defaults, validation, backend and provider choice, names and
// content hashes, readiness). It knows nothing of gRPC or Crossplane's wire
// format; package compose adapts it to RunFunction.
package plan

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/crossplane/crossplane-runtime/v2/pkg/errors"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/apis/input/v1beta1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/capi"
	"github.com/fleetnodepool/function-fleetnodepool/fn/provider"
)

// Error strings.
const (
	errFmtHash          = "cannot hash %s spec"
	errFmtKeepImmutable = "cannot keep the immutable fields of the running %s"
)

// Composition resource keys. Templates carry their content hash in the key:
// Crossplane keeps the first name it saw for a key, so a template with a new
// spec (and name) needs a new key. MachineDeployments carry their zone.
const (
	keyMachineDeployment = "machinedeployment"
	keyMachinePool       = "machinepool"
	keyInfraPool         = "infrapool"
	keyInfra             = "infra"
	keyBootstrap         = "bootstrap"
	keyHealthCheck       = "machinehealthcheck"
)

// An Input is everything one plan is made from.
type Input struct {
	// Name of the pool: the FleetNodePool's name (the claim's name when it
	// is claimed through the legacy XRD).
	Name string
	// Namespace the pool and its Cluster live in.
	Namespace string
	// Spec of the FleetNodePool.
	Spec v1alpha1.FleetNodePoolSpec
	// Policy is the platform policy (the function input).
	Policy *v1beta1.Policy
	// Cluster is the pool's Cluster API Cluster, nil if it does not exist.
	Cluster *Cluster
	// ControlPlane is the Cluster's control plane, nil when not known.
	ControlPlane *ControlPlane
	// Observed is what exists of the pool's composed objects, by key.
	Observed map[string]Observed
	// MachineSets are the live MachineSets of the pool's MachineDeployments,
	// by MachineDeployment name; nil when they were not fetched (yet).
	MachineSets map[string][]MachineSet
	// AllowReplacement opts in to replacing the backing of a running pool.
	AllowReplacement bool
	// Annotations and Labels of the FleetNodePool: the rollout gates read
	// them (defer, hold the sequence, maintenance window).
	Annotations, Labels map[string]string
	// Siblings are the Cluster's other pools, as their live
	// MachineDeployments, MachinePools and MachineSets show them; nil when
	// they were not fetched (yet).
	Siblings []Sibling
	// Now is the instant planned at: maintenance windows and the rollout
	// queue read it. The same input at the same instant plans the same.
	Now time.Time
	// Previous is the rollout state the previous reconcile wrote
	// (status.rollout.state), "" for a new pool. A MachineDeployment whose
	// controller has not caught up with its spec continues a rollout under
	// way; it does not start one: an autoscaler's resize looks the same.
	Previous v1alpha1.RolloutState
	// Target is the policy's target (Target(Policy)), where it has waves.
	Target string
	// Fleet is what the markers of the waves before the pool's say of the
	// target (ViewWave), by wave name; nil when they were not fetched (yet).
	Fleet map[string]WaveView
	// Marker is the pool's own marker as observed, nil if none.
	Marker *Marker
	// CRDs are the management cluster's CRDs the plan asked for
	// (Plan.NeedsCRDs), by name: nil for one that does not exist, absent
	// for one not read (yet).
	CRDs map[string]*CRD
	// Composition is the name of the Composition composing the pool, ""
	// when not known: its waves' fleet unless the policy names one.
	Composition string
}

// Observed is the part of an observed composed object that planning uses.
type Observed struct {
	// APIVersion and Kind the object was read at.
	APIVersion, Kind string
	// Generation and ObservedGeneration of the object.
	Generation, ObservedGeneration int64
	// Available is true when the object's Available condition is True.
	Available bool
	// Replica counts from the object's status, if it has any.
	Replicas, ReadyReplicas, AvailableReplicas, UpToDateReplicas *int32
	// OtherVersions counts the machines a MachineDeployment's or
	// MachinePool's status.versions reports at another version than its
	// spec's: a version rollout under way, even while its up-to-date count
	// still lags (Cluster API's MachineSets report it first).
	OtherVersions int32
	// Spec of the object, kept only for the infrastructure machine pool,
	// whose immutable fields providers check.
	Spec map[string]any
	// Name of the object, the cluster it belongs to (spec.clusterName) and
	// its spec.replicas.
	Name, ClusterName string
	// Version and infrastructure kind of a MachineDeployment's or
	// MachinePool's machines.
	Version, InfraKind string
	SpecReplicas       *int32
	// References are the templates a MachineDeployment or MachinePool
	// points at; Bootstrap is its bootstrap config's (template's) name.
	References []string
	Bootstrap  string
	// QueuedSince and HoldsSequence are the rollout queue's annotations of
	// a MachineDeployment or MachinePool (AnnotationQueuedSince,
	// AnnotationHoldSequence).
	QueuedSince   string
	HoldsSequence bool
	// Created is the object's creationTimestamp, zero if not known.
	Created time.Time
	// RolloutAfter is a MachineDeployment's spec.rollout.after, zero if
	// unset.
	RolloutAfter time.Time
	// Rotation is a bootstrap config's AnnotationRotation.
	Rotation string
	// Revision is a MachineDeployment's AnnotationRevision, in a cell.
	Revision string
	// Cell is the cell the object lives in (its provider-kubernetes
	// Object's), "" for one in the local management cluster.
	Cell string
	// Object is the observed object with what an apply must not carry
	// removed (status, server metadata): what keeping it emits. Load, if
	// set, makes it when Object is nil: most plans never need it.
	Object map[string]any
	Load   func() map[string]any
}

// object is the observed object, made on first use.
func (o Observed) object() map[string]any {
	if o.Object == nil && o.Load != nil {
		return o.Load()
	}
	return o.Object
}

// A Resource is one object of the plan.
type Resource struct {
	// Key is the composition resource name.
	Key string
	// Object is the typed object, with apiVersion, kind, name and namespace.
	Object provider.Object
	// Ready reports whether the object is ready, from what was observed.
	Ready bool
	// Wire is the object's wire encoding without its identity (name,
	// namespace, labels), where planning made it to name the object by its
	// hash: encoding it again would only repeat the work.
	Wire []byte
}

// A Plan is the desired state of one pool.
type Plan struct {
	// Status is the pool's status as far as planning knows it.
	Status v1alpha1.FleetNodePoolStatus
	// Resources in the order they should be created: templates before the
	// MachineDeployment that references them.
	Resources []Resource
	// Refused says why the spec's change was not made, if it was not: the
	// plan then keeps what exists.
	Refused *Refusal
	// UpgradePending says the pool waits for its control plane, if it does.
	UpgradePending *UpgradePending
	// Rolling names the MachineDeployments and MachinePool still rolling.
	Rolling []string
	// Hold says why the pool's disruptive change waits, if it does.
	Hold *Hold
	// ScaleFromZero says whether the cluster-autoscaler can grow the pool
	// from zero nodes.
	ScaleFromZero ScaleFromZero
	// NeedsSiblings says the pool has a disruptive change to start: the
	// rollout gates read the Cluster's other pools (Input.Siblings).
	NeedsSiblings bool
	// NeedsMachineSets says the plan reads the pool's own MachineSets
	// (Input.MachineSets): a template of an earlier revision may still be
	// in use, a MachineDeployment is rolling, or the pool's rollout marker
	// has not settled at the target. Otherwise nothing they say changes the
	// plan, and Crossplane need not fetch them, nor wake the pool on each
	// of their status changes.
	NeedsMachineSets bool
	// NeedsCRDs names the CRDs of the kinds the plan composes that nothing
	// observed shows served (Input.CRDs): until every one is read, nothing
	// of the plan may be applied.
	NeedsCRDs []string
	// Wake is when time alone may change the plan (a maintenance window
	// opens or closes): plan again then. Zero when only a change of input
	// can change it.
	Wake time.Time
	// Recheck asks to plan again this soon though nothing the input shows
	// changed: the pool waits for another pool, which Crossplane does not
	// watch for it. Zero: Crossplane's poll will do.
	Recheck time.Duration

	window      string
	queuedSince time.Time
	// immutable refuses the fields of the running infrastructure machine
	// pool its provider cannot change in place (set back on the plan's
	// object): the rest of the pool is reconciled.
	immutable *Refusal
	// starting: a disruptive change starts with this plan.
	starting bool
	// fleet and earlier: the fleet of the pool's waves, and the waves
	// before its own, whose markers it reads while it has a change to start.
	fleet   string
	earlier []string
	// waveName and target for the status.
	waveName, target string
	// oldest is the pool's oldest current revision, where it has a max
	// node age; rotating says why a MachineDeployment or MachinePool
	// rotates, by key; datesRevisions: the plan reads MachineSets' age.
	oldest         revision
	rotating       map[string]rotating
	datesRevisions bool
}

// A Planner plans pools.
type Planner struct {
	providers map[v1alpha1.Provider]provider.Provider
	// What the providers say of their clouds, by kind: the Cluster
	// infrastructure kinds, control planes and composed kinds.
	infra         map[string]v1alpha1.Provider
	controlPlanes map[string]provider.ControlPlaneKind
	composed      map[string]v1alpha1.Provider
	// broken switches rules off. Only tests set it, to prove the property
	// test catches each rule broken.
	broken rule
}

// A rule is one of the lifecycle rules the property test checks.
type rule int

// Rules a test may break.
const (
	ruleRetention   rule = 1 << iota // Keep templates in use.
	ruleSequence                     // Never overtake the control plane.
	ruleReplicas                     // Never own an autoscaled size.
	ruleGuard                        // Never delete a running backing unasked.
	rulePause                        // Never start while paused or deferred.
	ruleWindow                       // Never start outside the maintenance window.
	ruleConcurrency                  // Never roll more pools of a Cluster than allowed.
	ruleWave                         // Never start before the earlier waves are done.
	ruleHalt                         // Never start after an earlier wave failed.
	ruleRelease                      // Release an unused template only once a stale view cannot hide its use.
	ruleRotation                     // Hold a due rotation like any disruptive change.
)

// An Option configures a Planner.
type Option func(*Planner)

// WithProviders adds (or replaces) providers: the clouds the planner
// composes for. Package providers lists the ones the function ships.
func WithProviders(ps ...provider.Provider) Option {
	return func(pl *Planner) {
		for _, p := range ps {
			pl.providers[p.Name()] = p
			for _, k := range p.InfrastructureKinds() {
				pl.infra[k] = p.Name()
			}
			for _, cp := range p.ControlPlaneKinds() {
				pl.controlPlanes[cp.Kind] = cp
			}
			for _, k := range p.ComposedKinds() {
				pl.composed[k] = p.Name()
			}
		}
	}
}

// New returns a Planner that knows Cluster API's kubeadm control plane, and
// the clouds of the providers it is given.
func New(o ...Option) *Planner {
	pl := &Planner{
		providers:     map[v1alpha1.Provider]provider.Provider{},
		infra:         map[string]v1alpha1.Provider{},
		controlPlanes: map[string]provider.ControlPlaneKind{capi.KubeadmControlPlane.Kind: capi.KubeadmControlPlane},
		composed:      map[string]v1alpha1.Provider{},
		broken:        builtBroken,
	}
	for _, fn := range o {
		fn(pl)
	}
	return pl
}

// ControlPlaneKind is what the planner knows of a kind of control plane:
// false for a kind it cannot read the version of.
func (pl *Planner) ControlPlaneKind(kind string) (provider.ControlPlaneKind, bool) {
	k, ok := pl.controlPlanes[kind]
	return k, ok
}

// An InvalidError reports input that cannot be planned. Each error names the
// field (spec.* of the FleetNodePool, input.* of the policy) and the fix.
type InvalidError struct {
	Errs field.ErrorList
}

func (e *InvalidError) Error() string {
	msgs := make([]string, 0, len(e.Errs))
	for _, err := range e.Errs {
		msgs = append(msgs, err.Error())
	}
	return "invalid FleetNodePool: " + strings.Join(msgs, "; ")
}

// A ClusterNotFoundError reports that the pool's Cluster does not exist.
// Nothing can be planned without it, and nothing that exists is touched.
type ClusterNotFoundError struct {
	Namespace, Name string
}

func (e *ClusterNotFoundError) Error() string {
	return fmt.Sprintf("cannot find Cluster %s/%s (spec.clusterName): create the Cluster, or fix spec.clusterName; "+
		"until it exists nothing is composed, changed or deleted", e.Namespace, e.Name)
}

// Plan decides the objects of one pool.
func (pl *Planner) Plan(in Input) (*Plan, error) {
	if in.Cluster == nil && in.Spec.ClusterName != "" {
		return nil, &ClusterNotFoundError{Namespace: in.Namespace, Name: in.Spec.ClusterName}
	}
	r, errs := pl.resolve(in)
	if len(errs) > 0 {
		return nil, &InvalidError{Errs: errs}
	}
	if in.Spec.Cell != "" && in.MachineSets == nil {
		in.MachineSets = remoteMachineSets(in.Observed)
	}

	target := r.pool.Version
	var cpKind provider.ControlPlaneKind
	if in.ControlPlane != nil {
		cpKind = pl.controlPlanes[in.ControlPlane.Kind]
	}
	seq, ferr := sequence(target, in.Observed, in.Cluster, in.ControlPlane, cpKind, r.versionPath)
	if pl.broken&ruleSequence != 0 {
		seq, ferr = sequenced{version: target}, nil
	}
	if ferr != nil {
		return nil, &InvalidError{Errs: field.ErrorList{ferr}}
	}
	r.pool.Version = seq.version
	p := &Plan{UpgradePending: seq.pending, ScaleFromZero: r.scaleFromZero, Status: v1alpha1.FleetNodePoolStatus{
		Provider:      r.provider.Name(),
		Backend:       r.pool.Backend,
		Version:       r.pool.Version,
		TargetVersion: target,
		MachineType:   r.pool.MachineType,
	}}
	if seq.asIs {
		// Nothing may change until the version can be read.
		p.Resources = passThroughAll(in.Observed)
		p.Status = rollup(p, in.Observed)
		p.Rolling = rolling(p, in.Observed)
		p.Hold = &Hold{Reason: HoldControlPlane, Message: seq.pending.Message}
		p.NeedsMachineSets = true // Held as it is: read all it read.
		p.waves(in, r)
		p.Status.ControlPlaneVersion, p.Status.VersionSkew = computeSkew(p, in, cpKind)
		return p, nil
	}
	if r.pool.Backend == v1alpha1.BackendMachineDeployment {
		p.datesRevisions = r.rotation != nil // MachineSets date the revisions.
		zones := in.Spec.Zones
		if len(zones) == 0 {
			zones = []string{""}
		}
		for i, zone := range zones {
			if err := pl.machineDeployment(p, in, r, zone, i, len(zones)); err != nil {
				return nil, err
			}
		}
		healthCheck(p, in)
	} else if err := pl.machinePool(p, in, r); err != nil {
		return nil, err
	}
	if pl.broken&ruleReplicas != 0 {
		breakReplicas(p, r)
	}
	changes, disruptive := preview(p, in)
	if len(disruptive) > 0 {
		p.NeedsSiblings = true
		g := pl.gate(in, r, r.windows)
		p.Hold, p.Recheck, p.window, p.queuedSince = g.hold, g.recheck, g.window, g.queue
		p.Wake = cmpMin(p.Wake, g.wake) // Rotations may wake it earlier.
		if g.hold != nil {
			holdAsRunning(p, in, disruptive)
			if pl.broken&ruleRotation != 0 {
				breakRotation(p)
			}
			queue(p, g)
		}
		p.starting = g.hold == nil
	}
	p.Refused = pl.keep(p, in) // Also decides NeedsMachineSets.
	if p.Refused == nil {
		p.Refused = p.immutable
	}
	stampRevisions(p, in)
	p.Status = rollup(p, in.Observed)
	p.Status.Revisions = revisions(p)
	if p.applies() {
		p.Status.Changes = changes
	}
	p.Rolling = rolling(p, in.Observed)
	if p.Hold == nil && p.UpgradePending != nil {
		p.Hold = &Hold{Reason: HoldControlPlane, Message: p.UpgradePending.Message, VersionOnly: true}
	}
	p.waves(in, r)
	p.Status.Rollout = rolloutStatus(p, in)
	p.Status.Rotation = p.rotationStatus(r.rotation)
	p.Status.ControlPlaneVersion, p.Status.VersionSkew = computeSkew(p, in, cpKind)
	need, err := pl.computeServed(p, in)
	if err != nil {
		return nil, err
	}
	p.NeedsCRDs = need
	return p, nil
}

// applies reports whether the plan's changes are applied: not when a change
// is refused and what exists is kept, but with only immutable fields of
// the running machine pool refused, the rest of the change is.
func (p *Plan) applies() bool { return p.Refused == nil || p.Refused == p.immutable }

// waves publishes the pool's marker where the policy has waves, and says
// which markers it reads.
func (p *Plan) waves(in Input, r *resolved) {
	if len(r.waves) == 0 {
		return
	}
	pol := ptr.Deref(in.Policy.Rollouts, v1beta1.RolloutPolicy{})
	p.fleet = fleetOf(pol, in.Composition)
	wn := noWave
	if r.wave != nil {
		wn = r.wave.name
	}
	if p.NeedsSiblings {
		for _, e := range earlierWaves(r.waves, r.wave) {
			p.earlier = append(p.earlier, e.name)
		}
	}
	p.waveName, p.target = wn, in.Target
	m, deadline := p.marker(in, r, pol)
	p.Wake = cmpMin(p.Wake, deadline)
	res := Resource{Key: keyMarker, Object: markerObject(in, p.fleet, wn, m), Ready: true}
	for i := range p.Resources {
		if p.Resources[i].Key == keyMarker {
			p.Resources[i] = res
			return
		}
	}
	p.Resources = append(p.Resources, res)
}

// machineDeployment plans the MachineDeployment of one zone, with its
// infrastructure and bootstrap templates.
func (pl *Planner) machineDeployment(p *Plan, in Input, r *resolved, zone string, i, n int) error {
	labels := map[string]string{capi.PoolLabel: in.Name}
	zkey := sanitize(zone)

	// Templates are named by their content alone, so the zones of a pool
	// share a template wherever its spec does not depend on the zone.
	infra, err := p.template(in, keyInfra, r.provider.MachineTemplate(&r.pool, zone), labels)
	if err != nil {
		return err
	}
	j := r.provider.Join(&r.pool, infra.GetName())
	bootstrap := j.Template
	if bootstrap == nil {
		bootstrap = capi.KubeadmConfigTemplate(j, r.pool.Node)
	}
	boot, err := p.template(in, keyBootstrap, bootstrap, labels)
	if err != nil {
		return err
	}

	md := capi.MachineDeployment(capi.MachineDeploymentParams{
		Name:          Name(in.Spec.ClusterName, in.Name, zone),
		Namespace:     in.Namespace,
		ClusterName:   in.Spec.ClusterName,
		Version:       r.pool.Version,
		Zone:          zone,
		Size:          r.size(i, n),
		Rollout:       r.rollout,
		Labels:        labels,
		MachineLabels: r.machineLabels,
		Bootstrap:     capi.RefTo(boot),
		Infra:         capi.RefTo(infra),
	})
	k := key(keyMachineDeployment, zkey)
	p.rotateMachineDeployment(in, r.rotation, k, &md.Spec.Rollout.After)
	p.add(in.Observed, Resource{Key: k, Object: md}, false)
	return nil
}

// Health check defaults.
const (
	defaultNodeStartupTimeout = 600
	defaultUnhealthyTimeout   = 300
	defaultMaxUnhealthy       = "40%"
)

// healthCheck adds the pool's MachineHealthCheck, unless the pool or the
// policy turns it off. Only MachineDeployment pools get one: Cluster API
// cannot remediate MachinePool machines.
func healthCheck(p *Plan, in Input) {
	pol := in.Policy.Defaults.HealthCheck
	if pol == nil {
		pol = &v1beta1.HealthCheckPolicy{}
	}
	enabled := ptr.Deref(pol.Enabled, true)
	if hc := in.Spec.HealthCheck; hc != nil && hc.Enabled != nil {
		enabled = *hc.Enabled
	}
	if !enabled {
		return
	}
	conds := []clusterv1.UnhealthyNodeCondition{
		{Type: corev1.NodeReady, Status: corev1.ConditionFalse, TimeoutSeconds: ptr.To[int32](defaultUnhealthyTimeout)},
		{Type: corev1.NodeReady, Status: corev1.ConditionUnknown, TimeoutSeconds: ptr.To[int32](defaultUnhealthyTimeout)},
	}
	if len(pol.UnhealthyNodeConditions) > 0 {
		conds = conds[:0]
		for _, c := range pol.UnhealthyNodeConditions {
			conds = append(conds, clusterv1.UnhealthyNodeCondition{
				Type: corev1.NodeConditionType(c.Type), Status: corev1.ConditionStatus(c.Status), TimeoutSeconds: ptr.To(c.TimeoutSeconds),
			})
		}
	}
	maxUnhealthy := pol.MaxUnhealthy
	if maxUnhealthy == nil {
		maxUnhealthy = ptr.To(intstr.FromString(defaultMaxUnhealthy))
	}
	mhc := capi.MachineHealthCheck(capi.HealthCheckParams{
		Name:        Name(in.Spec.ClusterName, in.Name),
		Namespace:   in.Namespace,
		ClusterName: in.Spec.ClusterName,
		Selector: map[string]string{
			clusterv1.ClusterNameLabel: in.Spec.ClusterName,
			capi.PoolLabel:             in.Name,
		},
		NodeStartupTimeoutSeconds: ptr.Deref(pol.NodeStartupTimeoutSeconds, defaultNodeStartupTimeout),
		UnhealthyNodeConditions:   conds,
		MaxUnhealthy:              maxUnhealthy,
	})
	mhc.Labels[capi.PoolLabel] = in.Name
	p.add(in.Observed, Resource{Key: keyHealthCheck, Object: mhc}, true)
}

// machinePool plans the MachinePool of a pool, with its infrastructure
// machine pool (the cloud's scale group or managed node group) and, for
// self-managed nodes, its bootstrap config.
func (pl *Planner) machinePool(p *Plan, in Input, r *resolved) error {
	labels := map[string]string{capi.PoolLabel: in.Name}
	mpName := Name(in.Spec.ClusterName, in.Name)

	infra := r.provider.MachinePool(&r.pool)
	// Only a running machine pool of the same kind has fields to keep (a
	// backend replaced by opt-in is another kind).
	if o, ok := in.Observed[keyInfraPool]; ok && o.Kind != "" && o.Kind != infra.GetObjectKind().GroupVersionKind().Kind {
		r.pool.Observed = nil
	}
	if errs := r.provider.KeepImmutable(&r.pool, infra); len(errs) > 0 {
		// A spec that cannot be encoded is a bug, not a refusal.
		if i := slices.IndexFunc(errs, func(e *field.Error) bool { return e.Type == field.ErrorTypeInternal }); i >= 0 {
			return errors.Wrapf(errs[i], errFmtKeepImmutable, infra.GetObjectKind().GroupVersionKind().Kind)
		}
		p.immutable = &Refusal{Reason: ReasonImmutableField, Message: errs.ToAggregate().Error()}
	}
	name(infra, mpName, in.Namespace, in.Spec.ClusterName, labels)
	_, mpExists := in.Observed[keyMachinePool]
	_, infraExists := in.Observed[keyInfraPool]
	if mpExists || infraExists || !r.provider.ParentFirst(&r.pool) {
		p.add(in.Observed, Resource{Key: keyInfraPool, Object: infra}, true)
	}

	var bootRef *capi.Ref
	if r.pool.Backend == v1alpha1.BackendMachinePool {
		// Named by a hash of its content: a MachinePool rolls its nodes only
		// when its bootstrap config's name changes.
		cfg := capi.KubeadmConfig(r.provider.Join(&r.pool, mpName), r.pool.Node)
		if stamp := p.rotationStamp(in, r.rotation); stamp != "" {
			cfg.Annotations = map[string]string{AnnotationRotation: stamp}
		}
		boot, err := p.template(in, keyBootstrap, cfg, labels)
		if err != nil {
			return err
		}
		ref := capi.RefTo(boot)
		bootRef = &ref
	}

	mp := capi.MachinePool(capi.MachinePoolParams{
		Name:        mpName,
		Namespace:   in.Namespace,
		ClusterName: in.Spec.ClusterName,
		Version:     r.pool.Version,
		Zones:       in.Spec.Zones,
		Size:        r.size(0, 1),
		// AKS scales its agent pools itself, from the agent pool's own
		// autoscaler settings.
		Autoscaler:        r.pool.Platform != provider.PlatformAKS,
		ReplicasManagedBy: r.provider.ReplicasManagedBy(&r.pool),
		Labels:            labels,
		MachineLabels:     r.machineLabels,
		Bootstrap:         bootRef,
		Infra:             capi.RefTo(infra),
	})
	p.add(in.Observed, Resource{Key: keyMachinePool, Object: mp}, false)
	return nil
}

// add appends a resource, deciding its readiness from what was observed:
// templates and infrastructure pools are ready once they exist; a
// MachineDeployment or MachinePool once its controller has seen its latest
// spec and reports it Available.
func (p *Plan) add(observed map[string]Observed, r Resource, template bool) {
	o, ok := observed[r.Key]
	switch {
	case !ok:
		r.Ready = false
	case template:
		r.Ready = true
	default:
		r.Ready = o.Available && o.ObservedGeneration >= o.Generation
	}
	p.Resources = append(p.Resources, r)
}

// rollup fills the status replica counts from the observed
// MachineDeployments or MachinePool of the plan.
func rollup(p *Plan, observed map[string]Observed) v1alpha1.FleetNodePoolStatus {
	s := p.Status
	for _, r := range p.Resources {
		o, ok := observed[r.Key]
		if !ok || o.Replicas == nil || !IsPool(r.Object) {
			continue
		}
		s.Replicas = add(s.Replicas, o.Replicas)
		s.ReadyReplicas = add(s.ReadyReplicas, o.ReadyReplicas)
		s.AvailableReplicas = add(s.AvailableReplicas, o.AvailableReplicas)
		s.UpToDateReplicas = add(s.UpToDateReplicas, o.UpToDateReplicas)
	}
	return s
}

// breakRotation starts the due rotations of MachineDeployments the gates
// held: a deliberately broken plan, for tests only.
func breakRotation(p *Plan) {
	for _, res := range p.Resources {
		if md, ok := res.Object.(*clusterv1.MachineDeployment); ok && p.rotating[res.Key].why != "" {
			md.Spec.Rollout.After.Time = p.rotating[res.Key].due
		}
	}
}

// breakReplicas makes autoscaled MachineDeployments set their size: a
// deliberately broken plan, for tests only.
func breakReplicas(p *Plan, r *resolved) {
	for _, res := range p.Resources {
		if md, ok := res.Object.(*clusterv1.MachineDeployment); ok && r.pool.Autoscaled() {
			md.Spec.Replicas = r.pool.Min
		}
	}
}

// IsPool reports whether an object runs the pool's machines: a
// MachineDeployment or MachinePool.
func IsPool(o provider.Object) bool {
	switch o.GetObjectKind().GroupVersionKind().Kind {
	case "MachineDeployment", "MachinePool":
		return true
	}
	return false
}

func add(sum, v *int32) *int32 {
	out := int32(0)
	if sum != nil {
		out = *sum
	}
	if v != nil {
		out += *v
	}
	return &out
}

// name sets the identity of a composed object.
func name(o provider.Object, n, namespace, cluster string, labels map[string]string) {
	o.SetName(n)
	o.SetNamespace(namespace)
	l := maps.Clone(labels)
	l["cluster.x-k8s.io/cluster-name"] = cluster
	o.SetLabels(l)
}

func key(parts ...string) string {
	return strings.Join(slices.DeleteFunc(parts, func(s string) bool { return s == "" }), "-")
}

// A rotating MachineDeployment or MachinePool: why, and the due time it
// rotates for.
type rotating struct {
	why string
	due time.Time
}

// rotated records why a MachineDeployment or MachinePool rotates.
func (p *Plan) rotated(key, why string, due time.Time) {
	if p.rotating == nil {
		p.rotating = map[string]rotating{}
	}
	p.rotating[key] = rotating{why: why, due: due}
}
