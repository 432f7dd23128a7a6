package fleetsim

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"

	"github.com/fleetnodepool/function-fleetnodepool/test/exampleio"
	"github.com/fleetnodepool/function-fleetnodepool/test/invariant"
)

// Kinds and API versions of the objects the model holds.
const (
	kindMachineDeployment = "MachineDeployment"
	kindMachineSet        = "MachineSet"
	kindCluster           = "Cluster"
	kindKCP               = "KubeadmControlPlane"
	kindAWSCluster        = "AWSCluster"

	groupCluster      = "cluster.x-k8s.io"
	groupControlPlane = "controlplane.cluster.x-k8s.io"
	groupInfra        = "infrastructure.cluster.x-k8s.io"
	apiVersionCluster = groupCluster + "/v1beta2"
	apiVersionKCP     = groupControlPlane + "/v1beta2"

	labelClusterName    = "cluster.x-k8s.io/cluster-name"
	labelDeploymentName = "cluster.x-k8s.io/deployment-name"
	labelPool           = "fleet.nodepool.dev/pool"

	annotationMinSize     = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size"
	annotationMaxSize     = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size"
	annotationCompositeRN = "crossplane.io/composition-resource-name"
)

// An objKey identifies an object: namespace, kind and name.
type objKey struct{ namespace, kind, name string }

func (k objKey) String() string { return k.kind + " " + k.namespace + "/" + k.name }

// A ref is a template reference of a MachineDeployment or MachineSet.
type ref struct{ apiGroup, kind, name string }

// A machineTemplate is what a MachineSet clones machines from: the part of
// a MachineDeployment's template that makes Cluster API roll machines.
type machineTemplate struct {
	version, failureDomain string
	infra, bootstrap       ref
}

// An mdSpec is what the Cluster API model reads of a MachineDeployment.
type mdSpec struct {
	replicas         int32
	template         machineTemplate
	labels           map[string]string // Of the machine template: copied to its MachineSets.
	maxSurge, maxUnv *structpb.Value
	minSize, maxSize int32 // Autoscaler annotations; -1 when absent.
	// rolloutAfter is spec.rollout.after, zero if unset: once it is past,
	// a MachineSet created before it is outdated, whatever its template.
	rolloutAfter time.Time
}

func (s *mdSpec) autoscaled() bool { return s.minSize >= 0 && s.maxSize >= 0 }

// An mdStatus is the status the Cluster API model reports on a
// MachineDeployment.
type mdStatus struct {
	observedGeneration                   int64
	replicas, ready, available, upToDate int32
	availableCond                        bool
}

// A composed object is one object Crossplane composed for a pool, as the API
// server holds it.
type composed struct {
	id         objKey
	apiVersion string
	uid        string
	rv         int64 // resourceVersion: bumped on any change.
	generation int64 // Bumped on spec changes.
	labels     *structpb.Value
	annots     *structpb.Value
	spec       *structpb.Struct
	// applied is the desired resource last applied: an identical answer
	// (the function's cache hands out the same objects) changes nothing.
	applied *fnv1.Resource
	// MachineDeployments only.
	md     *mdSpec
	status *mdStatus
	// data of a ConfigMap (a rollout marker), and the bucket of markers
	// it is filed in ("" for none).
	data   *structpb.Value
	bucket string
	// body is the object as Crossplane observes it, made on first use after
	// a change.
	body *structpb.Struct
	// owner is the pool that composed it.
	owner *pool
}

// A machineSet is a Cluster API MachineSet: machines cloned from one
// template, replicas of which ready are ready.
type machineSet struct {
	id       objKey
	uid      string
	rv       int64
	md       string // Name of its MachineDeployment.
	labels   map[string]string
	template machineTemplate
	replicas int32
	ready    int32
	body     *structpb.Struct
	// created is its creationTimestamp, the model's time it was made at;
	// rotation: it was made because spec.rollout.after outdated a
	// MachineSet of the same template (a node rotation).
	created  time.Time
	rotation bool
}

// A cluster is a CAPI Cluster with its KubeadmControlPlane.
type cluster struct {
	name, namespace string
	uid             string
	rv              int64
	// specVersion is what the control plane is asked to run, statusVersion
	// what all its machines run (KCP status.version); upgradeDone is the
	// step at which an upgrade in progress completes.
	specVersion, statusVersion string
	upgradeDone                int
	clusterBody, kcpBody       *structpb.Struct
	// labels and annotations of the Cluster (its maintenance window, its
	// rollout concurrency); metaRV is its resourceVersion.
	labels, annotations map[string]string
	metaRV              int64
	// pools are the cluster's FleetNodePools.
	pools []*pool
}

// A poolSpec is what the model varies of a FleetNodePool's spec.
type poolSpec struct {
	class              string
	zones              []string
	replicas, min, max int32 // replicas when fixed (min, max < 0), else min and max.
}

func (s poolSpec) autoscaled() bool { return s.min >= 0 }

// A pool is a FleetNodePool and what Crossplane knows of it.
type pool struct {
	name, namespace, cluster string
	uid                      string
	spec                     poolSpec
	generation, rv           int64
	status                   *structpb.Value // From the last applied desired composite.
	body                     *structpb.Struct
	// composed are the pool's composed objects by composition resource name.
	composed map[string]*composed
	// requirements are what the function last returned, which Crossplane
	// pre-satisfies on the next reconcile.
	requirements *fnv1.Requirements
	// labels and annotations of the FleetNodePool: its maintenance window,
	// its deferral and sequence hold.
	labels, annotations map[string]string
	// seen is what the pool's last reconcile read, and heldSeen why the
	// model's gates held it then: a quiet simulation (Config.Quiet)
	// reconciles the pool again once either changed.
	seen     readState
	heldSeen string
}

// A readState is what a pool's reconcile reads, as versions: its
// namespace's objects (the pool, its composed objects, its Cluster, the
// Cluster's MachineDeployments and MachineSets) and the policy.
type readState struct {
	namespace, pool int64
	policy          *structpb.Struct
}

func (p *pool) String() string { return p.namespace + "/" + p.name }

// A world is the fleet: clusters, pools, what exists of their composed
// objects, the MachineSets, and the platform policy.
type world struct {
	step     int
	rng      *rand.Rand
	channel  string
	gates    gates
	policy   *structpb.Struct
	clusters []*cluster
	byNS     map[string]*cluster
	pools    []*pool
	objects  map[objKey]*composed
	// sets are MachineSets by namespace and name.
	sets map[string]map[string]*machineSet
	// nsRV is, by namespace, the last change of an object in it.
	nsRV map[string]int64
	// checked is the state the invariants were checked on last.
	checked invariant.Snapshot
	// queuedAfterHolder are the pools queued after a pool holding its
	// Cluster's sequence, as the step's reconciles see them.
	queuedAfterHolder map[*pool]bool
	// upgrades are the clusters waiting to start a control plane upgrade.
	upgrades []*cluster
	// waves is what the model knows of the fleet's waves; markers are the
	// rollout markers by fleet and wave; failing is the pool whose new
	// machines never become ready, for a while.
	waves   waveTruth
	markers map[string]*markerBucket
	failing failure
	// rotation is the policy's input.rotation, if any.
	rotation rotationSpec
	// crds are the management cluster's CRDs by name, as Crossplane sends
	// them (test/exampleio).
	crds map[string]*fnv1.Resources
	// seq numbers uids and resourceVersions, as the API server would.
	seq   int64
	stats counters
}

// counters count what happened in the fleet.
type counters struct {
	machineSets, machinesCreated, machinesDeleted int
	cpUpgrades, classChanges, autoscales          int
	applies, deletes                              int
	heldBy, gated                                 map[string]int
	peakRolling                                   map[int]int
	rotations                                     rotationCounters
}

// newWorld is an empty fleet on the channel version.
func newWorld(seed uint64, channel string) (*world, error) {
	w := &world{
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), //nolint:gosec // A seeded, reproducible fleet: no secrets.
		byNS:    map[string]*cluster{},
		objects: map[objKey]*composed{},
		sets:    map[string]map[string]*machineSet{},
		nsRV:    map[string]int64{},
		stats:   counters{heldBy: map[string]int{}, gated: map[string]int{}, peakRolling: map[int]int{}, rotations: newRotationCounters()},
		waves:   newWaveTruth(),
		markers: map[string]*markerBucket{},
		crds:    map[string]*fnv1.Resources{},
	}
	for k, rs := range exampleio.ServedCRDs() {
		w.crds[strings.TrimPrefix(k, "crd-")] = rs
	}
	if err := w.setChannel(channel); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *world) next() int64 { w.seq++; return w.seq }

func (w *world) uid() string { return "uid-" + strconv.FormatInt(w.next(), 10) }

// addCluster adds a cluster whose control plane runs version.
func (w *world) addCluster(name, namespace, version string) *cluster {
	c := &cluster{name: name, namespace: namespace, uid: w.uid(), rv: w.next(), specVersion: version, statusVersion: version, upgradeDone: -1,
		labels: map[string]string{}, annotations: map[string]string{}, metaRV: 1}
	w.clusters = append(w.clusters, c)
	w.byNS[namespace] = c
	return c
}

// addPool adds a FleetNodePool of the cluster.
func (w *world) addPool(c *cluster, name string, s poolSpec) *pool {
	p := &pool{name: name, namespace: c.namespace, cluster: c.name, uid: w.uid(), spec: s, generation: 1, rv: w.next(), composed: map[string]*composed{},
		labels: map[string]string{}, annotations: map[string]string{}}
	w.pools = append(w.pools, p)
	c.pools = append(c.pools, p)
	return p
}

// addMachineSet adds a MachineSet of a MachineDeployment.
func (w *world) addMachineSet(namespace, md string, labels map[string]string, t machineTemplate) *machineSet {
	ms := &machineSet{
		id:  objKey{namespace, kindMachineSet, fmt.Sprintf("%s-%06x", md, w.next()&0xffffff)},
		uid: w.uid(), rv: w.next(), md: md, labels: labels, template: t, created: w.now(),
	}
	if w.sets[namespace] == nil {
		w.sets[namespace] = map[string]*machineSet{}
	}
	w.changed(namespace)
	w.sets[namespace][ms.id.name] = ms
	w.stats.machineSets++
	return ms
}

// machineSets of a MachineDeployment, oldest first (by creation, then
// name: Cluster API sorts them so).
func (w *world) machineSets(namespace, md string) []*machineSet {
	var out []*machineSet
	for _, ms := range w.sets[namespace] {
		if ms.md == md {
			out = append(out, ms)
		}
	}
	slices.SortFunc(out, func(a, b *machineSet) int {
		return cmp.Or(a.created.Compare(b.created), strings.Compare(a.id.name, b.id.name))
	})
	return out
}

// touch records a change of a MachineSet.
func (w *world) touchSet(ms *machineSet) { ms.rv, ms.body = w.next(), nil; w.changed(ms.id.namespace) }

// touch records a change of a composed object.
func (w *world) touch(o *composed) { o.rv, o.body = w.next(), nil; w.changed(o.id.namespace) }

// changed records a change of an object of the namespace: what its pools
// read changed (sim.go's quiet reconciles).
func (w *world) changed(namespace string) { w.nsRV[namespace] = w.next() }

// setChannel sets the policy's stable channel.
func (w *world) setChannel(version string) error {
	p, err := policy(version, w.gates, w.rotation)
	if err != nil {
		return err
	}
	if version != w.channel {
		w.waves.newTarget()
	}
	w.channel, w.policy = version, p
	return nil
}

// setGates sets the policy's rollouts.
func (w *world) setGates(g gates) error {
	p, err := policy(w.channel, g, w.rotation)
	if err != nil {
		return err
	}
	w.gates, w.policy = g, p
	return nil
}

// setClusterMeta sets (or, with "", removes) a label or an annotation of a
// Cluster.
func (w *world) setClusterMeta(c *cluster, m map[string]string, k, v string) {
	if setMeta(m, k, v) {
		c.metaRV, c.clusterBody = w.next(), nil
		w.changed(c.namespace)
	}
}

// setPoolMeta sets (or, with "", removes) a label or an annotation of a
// FleetNodePool: no new generation.
func (w *world) setPoolMeta(p *pool, m map[string]string, k, v string) {
	if setMeta(m, k, v) {
		p.rv, p.body = w.next(), nil
		w.changed(p.namespace)
	}
}

// setMeta sets k to v in m, removes it if v is "", and reports a change.
func setMeta(m map[string]string, k, v string) bool {
	if old, ok := m[k]; ok == (v != "") && old == v {
		return false
	}
	if v == "" {
		delete(m, k)
	} else {
		m[k] = v
	}
	return true
}
