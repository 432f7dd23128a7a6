package plan

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/capi"
	"github.com/fleetnodepool/function-fleetnodepool/fn/kubeversion"
	"github.com/fleetnodepool/function-fleetnodepool/fn/provider"
)

// DefaultDiskGiB is the root disk size of pools when neither the pool nor
// the policy sets one.
const DefaultDiskGiB int32 = 100

// resolved is a pool after defaults and validation.
type resolved struct {
	provider provider.Provider
	pool     provider.Pool
	scaling  v1alpha1.Scaling
	rollout  v1alpha1.Rollout
	// machineLabels are node labels Cluster API syncs from Machines to
	// Nodes in place.
	machineLabels map[string]string
	// versionPath is the field the version came from.
	versionPath *field.Path
	// channel the pool follows, "" when it pins its version.
	channel string
	// windows are the policy's maintenance windows, by name.
	windows map[string]window
	// waves are the policy's waves, and wave the pool's (nil: none).
	waves []wave
	wave  *wave
	// shape is what a new node of an autoscaled pool looks like, and
	// scaleFromZero whether the autoscaler can grow the pool from zero.
	shape         *capi.NodeShape
	scaleFromZero ScaleFromZero
	// rotation replaces the pool's nodes before a max age, nil if none.
	rotation *rotation
}

var (
	specPath  = field.NewPath("spec")
	inputPath = field.NewPath("input")
)

// resolve applies the policy's defaults to a pool and validates the result.
// It reports every problem at once, each naming the field and the fix.
func (pl *Planner) resolve(in Input) (*resolved, field.ErrorList) {
	var errs field.ErrorList
	spec := &in.Spec
	pol := in.Policy
	r := &resolved{pool: provider.Pool{Name: in.Name, ClusterName: spec.ClusterName, Spec: spec, Policy: pol}}

	if spec.ClusterName == "" {
		errs = append(errs, field.Required(specPath.Child("clusterName"), "name the Cluster API Cluster in this namespace that the pool joins"))
	} else if msgs := validation.IsDNS1123Label(spec.ClusterName); len(msgs) > 0 {
		errs = append(errs, field.Invalid(specPath.Child("clusterName"), spec.ClusterName, strings.Join(msgs, "; ")))
	}

	if err := resolveCell(in); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, pl.resolvePlatform(in, r)...)

	var err *field.Error
	if r.pool.Version, r.versionPath, err = resolveVersion(spec, pol.Channels, pol.Defaults.Channel); err != nil {
		errs = append(errs, err)
	}
	if spec.Version == "" {
		r.channel = cmp.Or(spec.Channel, pol.Defaults.Channel)
	}
	var werrs field.ErrorList
	r.windows, werrs = parseWindows(pol.Rollouts)
	errs = append(errs, werrs...)
	r.waves, werrs = parseWaves(pol.Rollouts)
	errs = append(errs, werrs...)
	r.wave = waveOf(r.waves, in.Labels, in.Cluster)
	if r.provider != nil {
		if r.pool.MachineType, err = resolveMachineType(r.provider, spec.Machine, in); err != nil {
			errs = append(errs, err)
		}
	}
	r.pool.DiskGiB = ptr.Deref(spec.Machine.DiskGiB, ptr.Deref(pol.Defaults.DiskGiB, DefaultDiskGiB))
	r.pool.Spot = ptr.Deref(spec.Machine.Spot, false)

	errs = append(errs, r.resolveScaling(spec, ptr.Deref(pol.Limits.MaxReplicas, 0))...)
	errs = append(errs, r.resolveRollout(spec.Rollout, pol.Defaults.Rollout)...)
	errs = append(errs, validateZones(spec.Zones)...)
	errs = append(errs, r.resolveNode(spec.Labels, spec.Taints)...)
	r.pool.Replicas, r.pool.MaxSurge, r.pool.MaxUnavailable = r.scaling.Replicas, r.rollout.MaxSurge, r.rollout.MaxUnavailable
	r.pool.Min, r.pool.Max = r.scaling.Min, r.scaling.Max
	r.pool.Labels, r.pool.Taints = spec.Labels, spec.Taints
	r.pool.Observed = in.Observed[keyInfraPool].Spec

	if r.provider != nil && len(errs) == 0 {
		errs = append(errs, r.provider.Validate(&r.pool)...)
	}
	if len(errs) == 0 {
		r.resolveShape(in)
		r.rotation, errs = r.resolveRotation(in)
	}
	return r, errs
}

// resolvePlatform decides the provider, platform and backend from the
// Cluster, and checks what the pool asks for agrees with it.
func (pl *Planner) resolvePlatform(in Input, r *resolved) field.ErrorList {
	spec, path := &in.Spec, specPath.Child("clusterName")
	if in.Cluster == nil {
		return nil // spec.clusterName is reported missing.
	}
	name, pf, err := pl.platform(in.Cluster, path)
	if err != nil {
		return field.ErrorList{err}
	}
	var errs field.ErrorList
	p, ok := pl.providers[name]
	switch {
	case !ok:
		return append(errs, field.Invalid(path, spec.ClusterName, fmt.Sprintf("the Cluster runs on %s, which no provider of this function supports", name)))
	case spec.Provider != "" && spec.Provider != name:
		errs = append(errs, field.Invalid(specPath.Child("provider"), spec.Provider, fmt.Sprintf(
			"the Cluster %s runs on %s (infrastructure %s): set spec.provider to %s, or leave it out", spec.ClusterName, name, in.Cluster.InfrastructureKind, name)))
	default:
		r.provider = p
	}
	r.pool.Platform = pf
	supported := p.Backends(pf)
	if len(supported) == 0 {
		return append(errs, field.Invalid(path, spec.ClusterName, fmt.Sprintf(
			"the Cluster runs %s on %s (control plane %s), which this function composes no node pool for", pf, name, orNone(in.Cluster.ControlPlaneKind))))
	}
	b := spec.Backend
	if b == "" || b == v1alpha1.BackendAuto {
		b = supported[0]
		if d := in.Policy.Defaults.Backend; pf == provider.PlatformKubeadm && d != "" && slices.Contains(supported, d) {
			b, path = in.Policy.Defaults.Backend, inputPath.Child("defaults", "backend")
		} else {
			path = specPath.Child("backend")
		}
	} else {
		path = specPath.Child("backend")
	}
	if !slices.Contains(supported, b) {
		errs = append(errs, field.Invalid(path, b, fmt.Sprintf("the Cluster runs %s on %s (control plane %s), which supports the backends %s",
			pf, name, orNone(in.Cluster.ControlPlaneKind), quoted(backendNames(supported)))))
	}
	r.pool.Backend = b
	return errs
}

func backendNames(bs []v1alpha1.Backend) []string {
	out := make([]string, 0, len(bs))
	for _, b := range bs {
		out = append(out, string(b))
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func resolveVersion(spec *v1alpha1.FleetNodePoolSpec, channels map[string]string, defaultChannel string) (string, *field.Path, *field.Error) {
	if spec.Version != "" {
		if msg := checkVersion(spec.Version); msg != "" {
			return "", nil, field.Invalid(specPath.Child("version"), spec.Version, msg)
		}
		return spec.Version, specPath.Child("version"), nil
	}
	ch, path := spec.Channel, specPath.Child("channel")
	if ch == "" {
		if defaultChannel == "" {
			return "", nil, field.Required(specPath.Child("version"),
				"set spec.version or spec.channel: the platform policy defines no default channel (input.defaults.channel)")
		}
		ch, path = defaultChannel, inputPath.Child("defaults", "channel")
	}
	v, ok := channels[ch]
	if !ok {
		return "", nil, field.NotSupported(path, ch, sortedKeys(channels))
	}
	vpath := inputPath.Child("channels").Key(ch)
	if msg := checkVersion(v); msg != "" {
		return "", nil, field.Invalid(vpath, v, msg)
	}
	return v, vpath, nil
}

// checkVersion returns why v is not a version a pool's machines can run,
// or "".
func checkVersion(v string) string {
	if _, err := kubeversion.ParseNode(v); err != nil {
		return "must be a Kubernetes version like v1.33.4"
	}
	return ""
}

func resolveMachineType(p provider.Provider, m v1alpha1.Machine, in Input) (string, *field.Error) {
	path := specPath.Child("machine")
	lim := in.Policy.Limits
	switch {
	case m.Class != "" && m.Type != "":
		return "", field.Invalid(path, m.Class+"/"+m.Type, "set exactly one of spec.machine.class or spec.machine.type")
	case m.Type != "":
		if !lim.AllowMachineTypes {
			return "", field.Forbidden(path.Child("type"),
				"the platform policy does not allow machine types (input.limits.allowMachineTypes); use spec.machine.class, one of "+quoted(allowedClasses(in)))
		}
		return m.Type, nil
	case m.Class == "":
		return "", field.Required(path.Child("class"), "set a size class from the platform catalog, one of "+quoted(allowedClasses(in)))
	}
	c, ok := in.Policy.Catalog[m.Class]
	if !ok {
		return "", field.NotSupported(path.Child("class"), m.Class, allowedClasses(in))
	}
	if len(lim.AllowedClasses) > 0 && !slices.Contains(lim.AllowedClasses, m.Class) {
		return "", field.NotSupported(path.Child("class"), m.Class, allowedClasses(in))
	}
	t := p.CatalogType(c)
	if t == "" {
		return "", field.Invalid(path.Child("class"), m.Class, fmt.Sprintf(
			"the platform catalog has no %s machine type for this class: the platform team must set input.catalog.%s.%s", p.Name(), m.Class, p.Name()))
	}
	return t, nil
}

// allowedClasses are the catalog classes a pool may use, sorted.
func allowedClasses(in Input) []string {
	out := sortedKeys(in.Policy.Catalog)
	if allowed := in.Policy.Limits.AllowedClasses; len(allowed) > 0 {
		out = slices.DeleteFunc(out, func(c string) bool { return !slices.Contains(allowed, c) })
	}
	return out
}

func (r *resolved) resolveScaling(spec *v1alpha1.FleetNodePoolSpec, maxReplicas int32) field.ErrorList {
	var errs field.ErrorList
	s, path := spec.Scaling, specPath.Child("scaling")
	r.scaling = s
	zones := int32(max(len(spec.Zones), 1)) //nolint:gosec // At most six zones.
	switch {
	case s.Replicas != nil && s.Autoscaled():
		errs = append(errs, field.Invalid(path, "replicas and min/max",
			"set either spec.scaling.replicas (fixed size) or spec.scaling.min and spec.scaling.max (autoscaled), not both"))
	case s.Replicas != nil:
		if *s.Replicas < 0 {
			errs = append(errs, field.Invalid(path.Child("replicas"), *s.Replicas, "must be 0 or more"))
		}
		if maxReplicas > 0 && *s.Replicas > maxReplicas {
			errs = append(errs, field.Invalid(path.Child("replicas"), *s.Replicas,
				fmt.Sprintf("must be at most %d (input.limits.maxReplicas)", maxReplicas)))
		}
	case s.Min == nil || s.Max == nil:
		errs = append(errs, field.Required(path,
			"set spec.scaling.replicas for a fixed size, or both spec.scaling.min and spec.scaling.max to autoscale"))
	default:
		if *s.Min < 0 {
			errs = append(errs, field.Invalid(path.Child("min"), *s.Min, "must be 0 or more"))
		}
		if *s.Min > *s.Max {
			errs = append(errs, field.Invalid(path.Child("min"), *s.Min,
				fmt.Sprintf("must be less than or equal to spec.scaling.max (%d): lower min or raise max", *s.Max)))
		}
		if *s.Max < zones {
			errs = append(errs, field.Invalid(path.Child("max"), *s.Max,
				fmt.Sprintf("must be at least the number of zones (%d), so that every zone can run a node", zones)))
		}
		if maxReplicas > 0 && *s.Max > maxReplicas {
			errs = append(errs, field.Invalid(path.Child("max"), *s.Max,
				fmt.Sprintf("must be at most %d (input.limits.maxReplicas)", maxReplicas)))
		}
	}
	return errs
}

// size is the share of MachineDeployment i of n: the pool's size spread
// over its zones, the first zones taking one more when it does not divide.
func (r *resolved) size(i, n int) capi.Size {
	if r.scaling.Replicas != nil {
		return capi.Size{Replicas: ptr.To(share(*r.scaling.Replicas, i, n))}
	}
	return capi.Size{Min: ptr.To(share(*r.scaling.Min, i, n)), Max: ptr.To(share(*r.scaling.Max, i, n)), Shape: r.shape}
}

func share(total int32, i, n int) int32 {
	q, rem := total/int32(n), total%int32(n) //nolint:gosec // At most six zones.
	if int32(i) < rem {                      //nolint:gosec // At most six zones.
		q++
	}
	return q
}

func (r *resolved) resolveRollout(spec, policy *v1alpha1.Rollout) field.ErrorList {
	path := specPath.Child("rollout")
	r.rollout = v1alpha1.Rollout{MaxSurge: ptr.To(intstr.FromInt32(1)), MaxUnavailable: ptr.To(intstr.FromInt32(0))}
	for _, src := range []*v1alpha1.Rollout{policy, spec} {
		if src == nil {
			continue
		}
		if src.MaxSurge != nil {
			r.rollout.MaxSurge = src.MaxSurge
		}
		if src.MaxUnavailable != nil {
			r.rollout.MaxUnavailable = src.MaxUnavailable
		}
	}
	var errs field.ErrorList
	surge, err := scaled(r.rollout.MaxSurge, path.Child("maxSurge"))
	errs = append(errs, err...)
	unavailable, err := scaled(r.rollout.MaxUnavailable, path.Child("maxUnavailable"))
	errs = append(errs, err...)
	if len(errs) == 0 && surge == 0 && unavailable == 0 {
		errs = append(errs, field.Invalid(path, "maxSurge=0, maxUnavailable=0",
			"maxSurge and maxUnavailable cannot both be 0: the rollout could never replace a machine"))
	}
	return errs
}

// scaled checks a rollout bound and returns it scaled against 100 machines.
func scaled(v *intstr.IntOrString, path *field.Path) (int, field.ErrorList) {
	n, err := intstr.GetScaledValueFromIntOrPercent(v, 100, true)
	if err != nil || n < 0 {
		return 0, field.ErrorList{field.Invalid(path, v.String(), "must be a number of machines (e.g. 1) or a percentage (e.g. 25%), not negative")}
	}
	return n, nil
}

func validateZones(zones []string) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]string{}
	for i, z := range zones {
		path := specPath.Child("zones").Index(i)
		s := sanitize(z)
		switch prev, dup := seen[s]; {
		case s == "":
			errs = append(errs, field.Invalid(path, z, "must name a failure domain, e.g. eu-west-1a or 1"))
		case dup:
			errs = append(errs, field.Duplicate(path, fmt.Sprintf("%s (same as %s)", z, prev)))
		}
		seen[s] = z
	}
	return errs
}

// resolveNode validates node labels and taints, and splits the labels into
// those Cluster API syncs from Machines to Nodes in place and those kubelet
// sets when the node registers.
func (r *resolved) resolveNode(labels map[string]string, taints []v1alpha1.Taint) field.ErrorList {
	var errs field.ErrorList
	path := specPath.Child("labels")
	for _, k := range sortedKeys(labels) {
		v := labels[k]
		for _, msg := range validation.IsQualifiedName(k) {
			errs = append(errs, field.Invalid(path.Key(k), k, msg))
		}
		for _, msg := range validation.IsValidLabelValue(v) {
			errs = append(errs, field.Invalid(path.Key(k), v, msg))
		}
		switch labelRoute(k) {
		case routeMachine:
			if r.machineLabels == nil {
				r.machineLabels = map[string]string{}
			}
			r.machineLabels[k] = v
		case routeKubelet:
			if r.pool.Node.Labels == nil {
				r.pool.Node.Labels = map[string]string{}
			}
			r.pool.Node.Labels[k] = v
		case routeForbidden:
			errs = append(errs, field.Invalid(path.Key(k), k,
				"kubelet may not set labels in the kubernetes.io and k8s.io namespaces; use node-role.kubernetes.io/, node.kubernetes.io/ or your own domain"))
		}
	}
	tpath := specPath.Child("taints")
	for i, t := range taints {
		for _, msg := range validation.IsQualifiedName(t.Key) {
			errs = append(errs, field.Invalid(tpath.Index(i).Child("key"), t.Key, msg))
		}
		for _, msg := range validation.IsValidLabelValue(t.Value) {
			errs = append(errs, field.Invalid(tpath.Index(i).Child("value"), t.Value, msg))
		}
		switch t.Effect {
		case "NoSchedule", "PreferNoSchedule", "NoExecute":
		default:
			errs = append(errs, field.NotSupported(tpath.Index(i).Child("effect"), t.Effect,
				[]string{"NoExecute", "NoSchedule", "PreferNoSchedule"}))
		}
	}
	r.pool.Node.Taints = taints
	return errs
}

type route int

const (
	routeKubelet route = iota
	routeMachine
	routeForbidden
)

// labelRoute decides how a node label reaches the Node. Cluster API syncs
// labels in the node-role.kubernetes.io, node-restriction.kubernetes.io and
// node.cluster.x-k8s.io domains from Machines to Nodes, in place. Kubelet
// sets the others at registration, except in the kubernetes.io and k8s.io
// namespaces, which the NodeRestriction admission plugin reserves.
func labelRoute(key string) route {
	domain, _, ok := strings.Cut(key, "/")
	if !ok {
		return routeKubelet
	}
	in := func(d string) bool { return domain == d || strings.HasSuffix(domain, "."+d) }
	switch {
	case domain == "node-role.kubernetes.io", in("node-restriction.kubernetes.io"), in("node.cluster.x-k8s.io"):
		return routeMachine
	case in("kubelet.kubernetes.io"), in("node.kubernetes.io"):
		return routeKubelet
	case in("kubernetes.io"), in("k8s.io"):
		return routeForbidden
	}
	return routeKubelet
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func quoted(s []string) string {
	if len(s) == 0 {
		return "(none defined)"
	}
	return `"` + strings.Join(s, `", "`) + `"`
}
