package compose

import (
	"encoding/binary"
	"hash/maphash"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/structpb"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"

	"github.com/fleetnodepool/function-fleetnodepool/fn/plan"
)

// DefaultCacheSize is how many pools a Function remembers the plan of.
const DefaultCacheSize = 16384

// A fingerprint identifies everything planning reads from a request: the
// XR's identity and spec, the policy input, the observed state planning
// uses, and the rollout state the XR's status says. Two independently seeded 64-bit hashes make a collision (which
// would serve another request's answer) practically impossible.
type fingerprint [2]uint64

// A poolPlan is a pool's last plan and the fingerprint it was planned from.
type poolPlan struct {
	fp fingerprint
	p  *planned
}

// A planCache remembers planned pools, and the decoded policies they were
// planned with. Crossplane calls the function on every reconcile of every
// pool, nearly always with what it sent the last time: a hit skips decoding,
// planning and encoding, the bulk of the work. Every pool of a Composition
// shares its policy, so a miss usually still finds the policy decoded.
type planCache struct {
	seeds    [2]maphash.Seed
	plans    *bounded[*poolPlan] // One per pool, keyed by its identity.
	policies *bounded[decodedPolicy]
	views    *bounded[plan.WaveView] // Sets of markers read, by markersFingerprint.

	hits, misses atomic.Uint64
}

// Metrics of the plan cache.
var (
	descHits = prometheus.NewDesc("function_fleetnodepool_plan_cache_hits_total",
		"Requests answered from the plan cache: the pool was planned from the same request before.", nil, nil)
	descMisses = prometheus.NewDesc("function_fleetnodepool_plan_cache_misses_total",
		"Requests the function decoded, planned and encoded: a new or changed pool, or one the cache had dropped.", nil, nil)
	descPools = prometheus.NewDesc("function_fleetnodepool_plan_cache_pools",
		"Pools whose last plan the cache holds.", nil, nil)
	descPoolsMax = prometheus.NewDesc("function_fleetnodepool_plan_cache_pools_max",
		"Pools the cache can hold (--cache-size): size it to the pools one replica serves.", nil, nil)
)

// Describe the cache's metrics.
func (c *planCache) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHits, descMisses, descPools, descPoolsMax} {
		ch <- d
	}
}

// Collect the cache's metrics.
func (c *planCache) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descHits, prometheus.CounterValue, float64(c.hits.Load()))
	ch <- prometheus.MustNewConstMetric(descMisses, prometheus.CounterValue, float64(c.misses.Load()))
	ch <- prometheus.MustNewConstMetric(descPools, prometheus.GaugeValue, float64(c.plans.len()))
	ch <- prometheus.MustNewConstMetric(descPoolsMax, prometheus.GaugeValue, float64(c.plans.max))
}

// wrap answers a request from the cache where the pool was planned from the
// same request before, and from next otherwise, remembering what next
// planned. waves reads the markers of the earlier waves (Function.waves):
// the plan is fingerprinted by what they say, which changes far less often
// than they do.
// A plan is good until its wake: then time alone may change it (a
// maintenance window opens or closes).
func (c *planCache) wrap(next func(*fnv1.RunFunctionRequest, map[string]plan.WaveView, time.Time) *planned, waves func(*fnv1.RunFunctionRequest) map[string]plan.WaveView) func(*fnv1.RunFunctionRequest, time.Time) *planned {
	return func(req *fnv1.RunFunctionRequest, now time.Time) *planned {
		fleet := waves(req)
		pool, fp := c.fingerprint(req, fleet)
		if p, ok := c.get(pool, fp); ok && (p.wake.IsZero() || now.Before(p.wake)) {
			c.hits.Add(1)
			return p
		}
		c.misses.Add(1)
		p := next(req, fleet, now)
		if p.cacheable {
			c.put(pool, fp, p)
		}
		return p
	}
}

// policyCacheSize is how many distinct policies (Composition revisions) are
// kept decoded.
const policyCacheSize = 64

func newPlanCache(size int) *planCache {
	return &planCache{
		seeds:    [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		plans:    newBounded[*poolPlan](size),
		policies: newBounded[decodedPolicy](policyCacheSize),
		views:    newBounded[plan.WaveView](viewCacheSize),
	}
}

// A bounded map holds at most max entries; when full, a new entry replaces
// a random one. Not least-recently-used: Crossplane reconciles every pool in
// a cycle (its poll), and under a cycle longer than the map an LRU evicts
// every entry just before it is asked for again, so a fleet one pool larger
// than the cache would never hit. Random replacement degrades gracefully
// instead: a share of the cycle stays cached (TestCacheUnderCyclicAccess).
// Its values are shared by every caller and must never be modified.
type bounded[V any] struct {
	max int

	mu      sync.Mutex
	keys    []fingerprint // Every key, in no order: what a random pick draws from.
	entries map[fingerprint]slot[V]
}

type slot[V any] struct {
	v V
	i int // Index of the key in keys.
}

func newBounded[V any](size int) *bounded[V] {
	// Grown as pools arrive: a small fleet never pays for a big bound.
	return &bounded[V]{max: size, entries: map[fingerprint]slot[V]{}}
}

func (c *bounded[V]) get(fp fingerprint) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[fp]
	return e.v, ok
}

func (c *bounded[V]) put(fp fingerprint, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[fp]; ok {
		c.entries[fp] = slot[V]{v: v, i: e.i}
		return
	}
	if len(c.keys) < c.max {
		c.entries[fp] = slot[V]{v: v, i: len(c.keys)}
		c.keys = append(c.keys, fp)
		return
	}
	i := rand.IntN(len(c.keys)) //nolint:gosec // Which entry to evict: no security decision.
	delete(c.entries, c.keys[i])
	c.keys[i] = fp
	c.entries[fp] = slot[V]{v: v, i: i}
}

func (c *bounded[V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.keys)
}

// policyFingerprint hashes the policy input.
func (c *planCache) policyFingerprint(input *structpb.Struct) fingerprint {
	return fingerprint{hashStruct(c.seeds[0], input), hashStruct(c.seeds[1], input)}
}

// fingerprint hashes what planning reads from a request: the markers of the
// earlier waves as fleet, what they say (Function.waves). The pool is the
// XR's identity: the key of its one cache entry.
func (c *planCache) fingerprint(req *fnv1.RunFunctionRequest, fleet map[string]plan.WaveView) (pool, fp fingerprint) {
	xr := req.GetObserved().GetComposite().GetResource().GetFields()
	md := xr["metadata"].GetStructValue().GetFields()
	labels := md["labels"].GetStructValue().GetFields()
	previous := string(previousRollout(req.GetObserved().GetComposite().GetResource()))
	for i, seed := range c.seeds {
		h := hashValue(seed, md["name"])
		h = mix(seed, h, hashValue(seed, md["namespace"]))
		h = mix(seed, h, hashValue(seed, xr["kind"]))
		pool[i] = h
		h = mix(seed, h, hashValue(seed, labels[labelClaimName]))
		h = mix(seed, h, hashValue(seed, labels[labelClaimNamespace]))
		h = mix(seed, h, hashValue(seed, xr["spec"]))
		h = mix(seed, h, hashStruct(seed, req.GetInput()))
		h = mix(seed, h, hashObserved(seed, req.GetObserved().GetResources()))
		for name, rs := range req.GetRequiredResources() {
			if strings.HasPrefix(name, requirementWavePrefix) {
				continue // Read as fleet.
			}
			// Every other requirement planning reads: order independent, as
			// the map's.
			h += mix(seed, maphash.String(seed, name), hashResources(seed, rs))
		}
		h = mix(seed, h, hashViews(seed, fleet))
		h = mix(seed, h, hashValue(seed, md["annotations"]))
		h = mix(seed, h, hashValue(seed, md["labels"]))
		// Planning reads the rollout state the previous reconcile wrote.
		h = mix(seed, h, maphash.String(seed, previous))
		fp[i] = h
	}
	return pool, fp
}

// get returns the pool's plan if it was planned from the same fingerprint.
func (c *planCache) get(pool, fp fingerprint) (*planned, bool) {
	e, ok := c.plans.get(pool)
	if !ok || e.fp != fp {
		return nil, false
	}
	return e.p, true
}

// put remembers the pool's plan, replacing the one it had: a pool's earlier
// plans are never asked for again (its observed resource versions only move
// forward), so memory is bounded by pools, not by how often they change.
func (c *planCache) put(pool, fp fingerprint, p *planned) {
	c.plans.put(pool, &poolPlan{fp: fp, p: p})
}

// hashObserved hashes the observed composed resources. The API server
// changes an object's resourceVersion whenever anything in it changes, so
// where Crossplane sends one (it always does) it stands for the whole
// object; otherwise everything planning reads of it is hashed.
func hashObserved(seed maphash.Seed, rs map[string]*fnv1.Resource) uint64 {
	var sum uint64
	for k, r := range rs {
		f := r.GetResource().GetFields()
		fmd := f["metadata"].GetStructValue().GetFields()
		h := maphash.String(seed, k)
		if rv := fmd["resourceVersion"].GetStringValue(); rv != "" {
			sum += mix(seed, h, mix(seed, hashValue(seed, fmd["uid"]), maphash.String(seed, rv)))
			continue
		}
		// Kept objects are emitted as observed: all of what is kept counts.
		for _, v := range []*structpb.Value{f["spec"], f["apiVersion"], f["kind"], f["status"], fmd["name"], fmd["namespace"], fmd["labels"], fmd["annotations"], fmd["generation"], fmd["creationTimestamp"]} {
			h = mix(seed, h, hashValue(seed, v))
		}
		sum += h // Order independent: map iteration order varies.
	}
	return sum
}

// hashResources hashes required resources the same way.
func hashResources(seed maphash.Seed, rs *fnv1.Resources) uint64 {
	if rs == nil {
		return mix(seed, 7, 0)
	}
	h := mix(seed, 8, uint64(len(rs.GetItems())))
	for _, item := range rs.GetItems() {
		f := item.GetResource().GetFields()
		fmd := f["metadata"].GetStructValue().GetFields()
		if rv := fmd["resourceVersion"].GetStringValue(); rv != "" {
			h += mix(seed, hashValue(seed, fmd["uid"]), maphash.String(seed, rv))
			continue
		}
		h += mix(seed, mix(seed, mix(seed, hashValue(seed, fmd["labels"]), hashValue(seed, fmd["annotations"])), hashValue(seed, fmd["creationTimestamp"])),
			mix(seed, hashValue(seed, fmd["generation"]), mix(seed, hashValue(seed, f["spec"]), hashValue(seed, f["status"]))))
	}
	return h
}

// hashValue is a structural hash of a protobuf Value. Object fields are
// combined order-independently, list items in order.
func hashValue(seed maphash.Seed, v *structpb.Value) uint64 {
	switch k := v.GetKind().(type) {
	case *structpb.Value_StructValue:
		return hashStruct(seed, k.StructValue)
	case *structpb.Value_ListValue:
		h := uint64(0x9e3779b97f4a7c15)
		for _, item := range k.ListValue.GetValues() {
			h = mix(seed, h, hashValue(seed, item))
		}
		return h
	case *structpb.Value_StringValue:
		return maphash.String(seed, k.StringValue)
	case *structpb.Value_NumberValue:
		return mix(seed, 1, math.Float64bits(k.NumberValue))
	case *structpb.Value_BoolValue:
		if k.BoolValue {
			return mix(seed, 2, 1)
		}
		return mix(seed, 2, 0)
	case *structpb.Value_NullValue:
		return mix(seed, 3, 0)
	}
	return mix(seed, 4, 0) // Absent.
}

func hashStruct(seed maphash.Seed, s *structpb.Struct) uint64 {
	if s == nil {
		return mix(seed, 5, 0)
	}
	sum := uint64(len(s.GetFields()))
	for k, v := range s.GetFields() {
		sum += mix(seed, maphash.String(seed, k), hashValue(seed, v))
	}
	return mix(seed, 6, sum)
}

// mix combines two hashes.
func mix(seed maphash.Seed, a, b uint64) uint64 {
	var buf [16]byte
	binary.LittleEndian.PutUint64(buf[:8], a)
	binary.LittleEndian.PutUint64(buf[8:], b)
	return maphash.Bytes(seed, buf[:])
}
