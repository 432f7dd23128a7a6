package compose

import (
	"hash/maphash"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"

	"github.com/fleetnodepool/function-fleetnodepool/fn/capi"
	"github.com/fleetnodepool/function-fleetnodepool/fn/plan"
)

// The rollout markers of the earlier waves are most of a waiting pool's
// request: at 10,000 pools a pool of the last wave reads a thousand. Every
// pool of a wave reads the same markers, and while the waves before it roll
// they change on nearly every reconcile, but what they say of the target
// (plan.WaveView: waiting, failed, soaking since) changes only when the
// last pool arrives or one fails. So the function reads a set of markers
// once for every pool that waits on it (the views cache), and a pool's plan
// is fingerprinted by the views, not by the markers: a waiting pool whose
// earlier waves still roll is answered from the plan cache.

// viewCacheSize is how many sets of markers, each with a target, are kept
// read: a few per wave and target are current, older ones are not asked for
// again.
const viewCacheSize = 256

// waves reads what the markers of the earlier waves Crossplane fetched say
// of the policy's target, by wave: nil when it fetched none, or when the
// policy does not decode (decode reports that).
func (f *Function) waves(req *fnv1.RunFunctionRequest) map[string]plan.WaveView {
	var out map[string]plan.WaveView
	var target string
	for name, rs := range req.GetRequiredResources() {
		wave, ok := strings.CutPrefix(name, requirementWavePrefix)
		if !ok {
			continue
		}
		if out == nil {
			pol, err := f.policy(req.GetInput())
			if err != nil {
				return nil
			}
			target, out = pol.target, map[string]plan.WaveView{}
		}
		out[wave] = f.view(rs, target)
	}
	return out
}

// view reads a wave's markers for a target, or finds them read in the
// cache.
func (f *Function) view(rs *fnv1.Resources, target string) plan.WaveView {
	if f.cache == nil {
		return plan.ViewWave(markers(rs), target)
	}
	key := f.cache.markersFingerprint(rs, target)
	if v, ok := f.cache.views.get(key); ok {
		return v
	}
	v := plan.ViewWave(markers(rs), target)
	f.cache.views.put(key, v)
	return v
}

// markers reads the rollout markers of a wave.
func markers(rs *fnv1.Resources) []plan.Marker {
	ms := make([]plan.Marker, 0, len(rs.GetItems()))
	for _, item := range rs.GetItems() {
		ms = append(ms, marker(item.GetResource().GetFields()))
	}
	return ms
}

// marker reads a pool's rollout marker from its ConfigMap.
func marker(f map[string]*structpb.Value) plan.Marker {
	md := f["metadata"].GetStructValue().GetFields()
	return plan.ReadMarker(md["namespace"].GetStringValue(), field(md, "labels", capi.PoolLabel).GetStringValue(), stringMap(f["data"]))
}

// markersFingerprint identifies a set of markers read for a target: each
// marker by its uid and resourceVersion (the API server's own version of
// the whole object), hashed with both seeds in one pass over the markers.
// Markers without a resourceVersion (tests, render) are hashed whole.
func (c *planCache) markersFingerprint(rs *fnv1.Resources, target string) fingerprint {
	var fp fingerprint
	for i, seed := range c.seeds {
		fp[i] = mix(seed, maphash.String(seed, target), uint64(len(rs.GetItems())))
	}
	for _, item := range rs.GetItems() {
		f := item.GetResource().GetFields()
		md := f["metadata"].GetStructValue().GetFields()
		uid, rv := md["uid"].GetStringValue(), md["resourceVersion"].GetStringValue()
		for i, seed := range c.seeds {
			if rv == "" {
				fp[i] += hashStruct(seed, item.GetResource())
				continue
			}
			// Order independent: Crossplane lists them in no set order.
			fp[i] += mix(seed, maphash.String(seed, uid), maphash.String(seed, rv))
		}
	}
	return fp
}

// hashViews hashes what the pool reads of the earlier waves.
func hashViews(seed maphash.Seed, views map[string]plan.WaveView) uint64 {
	if views == nil {
		return mix(seed, 9, 0)
	}
	sum := mix(seed, 10, uint64(len(views)))
	for name, v := range views {
		h := mix(seed, maphash.String(seed, name), uint64(v.Pools)) //nolint:gosec // A count: never negative.
		if v.Waiting {
			h = mix(seed, h, 1)
		}
		h = mix(seed, h, uint64(v.Since.UnixNano()))
		for _, p := range v.Failed {
			h = mix(seed, h, maphash.String(seed, p))
		}
		sum += h // Order independent: map iteration order varies.
	}
	return sum
}

// withWaves requires the markers of the waves before the pool's, in every
// namespace: a pool reads them only while it has a change to start.
func withWaves(rs *fnv1.Requirements, fleet string, waves []string) {
	for _, w := range waves {
		rs.Resources[requirementWavePrefix+w] = &fnv1.ResourceSelector{
			ApiVersion: "v1",
			Kind:       "ConfigMap",
			Match: &fnv1.ResourceSelector_MatchLabels{MatchLabels: &fnv1.MatchLabels{Labels: map[string]string{
				plan.LabelFleet: fleet, plan.LabelWave: w,
			}}},
		}
	}
}
