package fleetsim

import (
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/crossplane/function-sdk-go/errors"
)

// Versions of the release ladder: the channel and control planes move up
// it one minor at a time.
var ladder = []string{"v1.33.4", "v1.34.1", "v1.35.0"}

// classes are the catalog's size classes and their AWS instance types.
var classes = map[string]string{"small": "m6i.large", "medium": "m6i.xlarge", "large": "m6i.2xlarge"}

// zones are the AWS zones the policy allows.
var zones = []string{"eu-west-1a", "eu-west-1b", "eu-west-1c"}

// poolChannel is the channel every pool follows.
const poolChannel = "stable"

// policy is the Composition step's input with the stable channel at
// version, like examples/aws-machinedeployment: AMIs pinned for the older
// versions (a version bump also rotates their infrastructure templates),
// Cluster API's AMI lookup for the newest; the rollout gates; and the max
// node age, if rot has one.
func policy(version string, g gates, rot rotationSpec) (*structpb.Struct, error) {
	catalog := map[string]any{}
	allowed := []any{}
	for _, c := range sortedKeys(classes) {
		catalog[c] = map[string]any{"aws": classes[c], "azure": "Standard_D4s_v5"}
		allowed = append(allowed, c)
	}
	zs := make([]any, len(zones))
	for i, z := range zones {
		zs[i] = z
	}
	p := map[string]any{
		"apiVersion": "fleetnodepool.fn.crossplane.io/v1beta1",
		"kind":       "Policy",
		"catalog":    catalog,
		"channels":   map[string]any{poolChannel: version},
		"defaults": map[string]any{
			"channel": poolChannel, "backend": "MachineDeployment", "diskGiB": 100,
			"rollout": map[string]any{"maxSurge": 1, "maxUnavailable": 0},
		},
		"limits": map[string]any{"maxReplicas": 50, "allowedClasses": allowed},
		"aws": map[string]any{
			"iamInstanceProfile": "nodes.cluster-api-provider-aws.sigs.k8s.io",
			"rootVolumeType":     "gp3",
			"zones":              zs,
			"amis":               map[string]any{ladder[0]: "ami-0a1b2c3d4e5f67890", ladder[1]: "ami-0f9e8d7c6b5a43210"},
		},
	}
	if r := g.value(); len(r) > 0 {
		p["rollouts"] = r
	}
	if r := rot.value(); r != nil {
		p["rotation"] = r
	}
	s, err := structpb.NewStruct(p)
	return s, errors.Wrap(err, errPolicy)
}

const errPolicy = "cannot encode the policy"

// meta is the metadata of an object as the API server returns it.
func meta(name, namespace, uid string, rv, generation int64) map[string]*structpb.Value {
	m := map[string]*structpb.Value{
		"name": str(name), "namespace": str(namespace), "uid": str(uid),
		"resourceVersion": str(strconv.FormatInt(rv, 10)),
	}
	if generation > 0 {
		m["generation"] = num(generation)
	}
	return m
}

// withMeta adds labels and annotations to metadata, those that exist.
func withMeta(m map[string]*structpb.Value, labels, annotations map[string]string) map[string]*structpb.Value {
	if len(labels) > 0 {
		m["labels"] = strMap(labels)
	}
	if len(annotations) > 0 {
		m["annotations"] = strMap(annotations)
	}
	return m
}

// xr is the pool's FleetNodePool as Crossplane observes it.
func (p *pool) xr() *structpb.Struct {
	if p.body != nil {
		return p.body
	}
	scaling := map[string]*structpb.Value{"replicas": num(p.spec.replicas)}
	if p.spec.autoscaled() {
		scaling = map[string]*structpb.Value{"min": num(p.spec.min), "max": num(p.spec.max)}
	}
	spec := map[string]*structpb.Value{
		"clusterName": str(p.cluster),
		"provider":    str("aws"),
		"channel":     str(poolChannel),
		"machine":     obj(map[string]*structpb.Value{"class": str(p.spec.class)}),
		"scaling":     obj(scaling),
		"labels":      strMap(map[string]string{"team": p.namespace, "node-role.kubernetes.io/worker": ""}),
		"crossplane":  obj(map[string]*structpb.Value{"compositionRef": obj(map[string]*structpb.Value{"name": str("fleetnodepool")})}),
	}
	if len(p.spec.zones) > 0 {
		spec["zones"] = strList(p.spec.zones)
	}
	f := map[string]*structpb.Value{
		"apiVersion": str("fleet.nodepool.dev/v1alpha1"),
		"kind":       str("FleetNodePool"),
		"metadata":   obj(withMeta(meta(p.name, p.namespace, p.uid, p.rv, p.generation), p.labels, p.annotations)),
		"spec":       obj(spec),
	}
	if p.status != nil {
		f["status"] = p.status
	}
	p.body = &structpb.Struct{Fields: f}
	return p.body
}

// object is the composed object as Crossplane observes it.
func (o *composed) object(owner *pool) *structpb.Struct {
	if o.body != nil {
		return o.body
	}
	m := meta(o.id.name, o.id.namespace, o.uid, o.rv, o.generation)
	if o.labels != nil {
		m["labels"] = o.labels
	}
	if o.annots != nil {
		m["annotations"] = o.annots
	}
	m["ownerReferences"] = structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{obj(map[string]*structpb.Value{
		"apiVersion": str("fleet.nodepool.dev/v1alpha1"), "kind": str("FleetNodePool"),
		"name": str(owner.name), "uid": str(owner.uid), "controller": structpb.NewBoolValue(true),
	})}})
	f := map[string]*structpb.Value{
		"apiVersion": str(o.apiVersion),
		"kind":       str(o.id.kind),
		"metadata":   obj(m),
	}
	if o.spec != nil {
		f["spec"] = structpb.NewStructValue(o.spec)
	}
	if o.data != nil {
		f["data"] = o.data
	}
	if s := o.status; s != nil {
		cond := "False"
		if s.availableCond {
			cond = "True"
		}
		f["status"] = obj(map[string]*structpb.Value{
			"observedGeneration": num(s.observedGeneration),
			"replicas":           num(s.replicas),
			"readyReplicas":      num(s.ready),
			"availableReplicas":  num(s.available),
			"upToDateReplicas":   num(s.upToDate),
			"conditions": structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{
				obj(map[string]*structpb.Value{"type": str("Available"), "status": str(cond), "reason": str("Available")}),
			}}),
		})
	}
	o.body = &structpb.Struct{Fields: f}
	return o.body
}

func (r ref) value() *structpb.Value {
	return obj(map[string]*structpb.Value{"apiGroup": str(r.apiGroup), "kind": str(r.kind), "name": str(r.name)})
}

// object is the MachineSet as the API server returns it.
func (ms *machineSet) object() *structpb.Struct {
	if ms.body != nil {
		return ms.body
	}
	m := meta(ms.id.name, ms.id.namespace, ms.uid, ms.rv, 1)
	m["labels"] = strMap(ms.labels)
	m["creationTimestamp"] = str(ms.created.UTC().Format(time.RFC3339))
	m["ownerReferences"] = structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{obj(map[string]*structpb.Value{
		"apiVersion": str(apiVersionCluster), "kind": str(kindMachineDeployment), "name": str(ms.md), "controller": structpb.NewBoolValue(true),
	})}})
	ts := map[string]*structpb.Value{
		"clusterName":       str(ms.labels[labelClusterName]),
		"version":           str(ms.template.version),
		"infrastructureRef": ms.template.infra.value(),
		"bootstrap":         obj(map[string]*structpb.Value{"configRef": ms.template.bootstrap.value()}),
	}
	if ms.template.failureDomain != "" {
		ts["failureDomain"] = str(ms.template.failureDomain)
	}
	ms.body = &structpb.Struct{Fields: map[string]*structpb.Value{
		"apiVersion": str(apiVersionCluster),
		"kind":       str(kindMachineSet),
		"metadata":   obj(m),
		"spec": obj(map[string]*structpb.Value{
			"clusterName": str(ms.labels[labelClusterName]),
			"replicas":    num(ms.replicas),
			"selector":    obj(map[string]*structpb.Value{"matchLabels": strMap(map[string]string{labelClusterName: ms.labels[labelClusterName], labelDeploymentName: ms.md})}),
			"template": obj(map[string]*structpb.Value{
				"metadata": obj(map[string]*structpb.Value{"labels": strMap(ms.labels)}),
				"spec":     obj(ts),
			}),
		}),
		"status": obj(map[string]*structpb.Value{
			"replicas": num(ms.replicas), "readyReplicas": num(ms.ready), "availableReplicas": num(ms.ready), "observedGeneration": num(int64(1)),
		}),
	}}
	return ms.body
}

// clusterObject is the CAPI Cluster: self-managed kubeadm on AWS.
func (c *cluster) clusterObject() *structpb.Struct {
	if c.clusterBody != nil {
		return c.clusterBody
	}
	c.clusterBody = &structpb.Struct{Fields: map[string]*structpb.Value{
		"apiVersion": str(apiVersionCluster),
		"kind":       str(kindCluster),
		"metadata":   obj(withMeta(meta(c.name, c.namespace, c.uid, c.metaRV, 1), c.labels, c.annotations)),
		"spec": obj(map[string]*structpb.Value{
			"infrastructureRef": ref{groupInfra, kindAWSCluster, c.name}.value(),
			"controlPlaneRef":   ref{groupControlPlane, kindKCP, c.name}.value(),
		}),
	}}
	return c.clusterBody
}

// kcpObject is the cluster's KubeadmControlPlane.
func (c *cluster) kcpObject() *structpb.Struct {
	if c.kcpBody != nil {
		return c.kcpBody
	}
	c.kcpBody = &structpb.Struct{Fields: map[string]*structpb.Value{
		"apiVersion": str(apiVersionKCP),
		"kind":       str(kindKCP),
		"metadata":   obj(meta(c.name, c.namespace, c.uid+"-kcp", c.rv, 1)),
		"spec":       obj(map[string]*structpb.Value{"replicas": num(int32(3)), "version": str(c.specVersion)}),
		"status":     obj(map[string]*structpb.Value{"replicas": num(int32(3)), "readyReplicas": num(int32(3)), "version": str(c.statusVersion)}),
	}}
	return c.kcpBody
}
