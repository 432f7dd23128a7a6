package plan

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/provider"
)

// legacyObserved is what the function left running before template names
// hashed the wire encoding: the plan's objects, every template under the
// key and name its legacy hash gives, the pools pointing at them.
func legacyObserved(t *testing.T, p *Plan) map[string]Observed {
	t.Helper()
	renamed := map[string]string{}
	keys := map[string]string{}
	for _, r := range p.Resources {
		if !IsTemplate(r.Key) {
			continue
		}
		c := r.Object.DeepCopyObject().(provider.Object)
		n := c.GetName()
		c.SetName("")
		c.SetNamespace("")
		c.SetLabels(nil)
		h, err := legacyHash(c)
		if err != nil {
			t.Fatal(err)
		}
		prefix, _, _ := strings.Cut(r.Key, "-")
		renamed[n] = HashedName(h, strings.TrimSuffix(n, n[strings.LastIndex(n, "-"):]))
		keys[r.Key] = key(prefix, h)
	}
	out := map[string]Observed{}
	for k, o := range observe(t, p, 2) {
		if nk, ok := keys[k]; ok {
			o.Name = renamed[o.Name]
			o.Object["metadata"].(map[string]any)["name"] = o.Name
			k = nk
		}
		for i, ref := range o.References {
			if n, ok := renamed[ref]; ok {
				o.References[i] = n
			}
		}
		if ts, ok := valueAt(o.Object, "spec", "template", "spec").(map[string]any); ok {
			for _, ref := range []map[string]any{asMap(ts["infrastructureRef"]), asMap(asMap(ts["bootstrap"])["configRef"])} {
				if n, ok := renamed[str(ref, "name")]; ok {
					ref["name"] = n
				}
			}
		}
		out[k] = o
	}
	return out
}

func asMap(v any) map[string]any { m, _ := v.(map[string]any); return m }

// TestLegacyNames checks that a pool whose templates an earlier encoding
// named keeps those names while their content is the same (upgrading the
// function must not roll nodes), and gets new ones exactly when the content
// changes, including what the earlier encoding could not see.
func TestLegacyNames(t *testing.T) {
	type kept struct{ Infra, Bootstrap bool }
	cases := map[string]struct {
		reason string
		base   func(*Input)
		edit   func(*Input)
		// alter changes what is observed of the running infrastructure template.
		alter func(map[string]any)
		want  kept
	}{
		"Unchanged": {reason: "Nothing changed but the function: every name is kept.",
			want: kept{Infra: true, Bootstrap: true}},
		"ServerDefaults": {reason: "A value the API server defaulted on the running template is not a change.",
			alter: func(spec map[string]any) {
				asMap(asMap(spec["template"])["spec"])["instanceMetadataOptions"] = map[string]any{"httpTokens": "optional"}
			},
			want: kept{Infra: true, Bootstrap: true}},
		"ServerEmptyDefault": {reason: "An empty value on the running template that is not sent could be one the function sent before: the template rotates, the safe side.",
			alter: func(spec map[string]any) {
				asMap(asMap(spec["template"])["spec"])["spotMarketOptions"] = map[string]any{}
			},
			want: kept{Infra: false, Bootstrap: true}},
		"SpotOn": {reason: "The earlier encoding could not see spot turned on: the name must change all the same.",
			edit: func(in *Input) { in.Spec.Machine.Spot = ptr.To(true) },
			want: kept{Infra: false, Bootstrap: true}},
		"SpotOff": {reason: "Nor spot turned off.",
			base: func(in *Input) { in.Spec.Machine.Spot = ptr.To(true) },
			edit: func(in *Input) { in.Spec.Machine.Spot = ptr.To(false) },
			want: kept{Infra: false, Bootstrap: true}},
		"EmptyStringSet": {reason: "Nor an optional string set to \"\".",
			edit: func(in *Input) { in.Policy.AWS.SSHKeyName = ptr.To("") },
			want: kept{Infra: false, Bootstrap: true}},
		"ClassChange": {reason: "A change the earlier encoding saw rotates too.",
			edit: func(in *Input) { in.Spec.Machine.Class = "large" },
			want: kept{Infra: false, Bootstrap: true}},
		"TaintChange": {reason: "A bootstrap change rotates the bootstrap template only.",
			edit: func(in *Input) {
				in.Spec.Taints = append(in.Spec.Taints, v1alpha1.Taint{Key: "dedicated", Value: "gpu", Effect: "NoSchedule"})
			},
			want: kept{Infra: true, Bootstrap: false}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			running := mustPlan(t, input(tc.base))
			obs := legacyObserved(t, running)
			if tc.alter != nil {
				for k, o := range obs {
					if strings.HasPrefix(k, keyInfra+"-") {
						tc.alter(asMap(o.Object["spec"]))
					}
				}
			}
			p := mustPlan(t, input(tc.base, tc.edit, func(in *Input) { in.Observed, in.MachineSets = obs, map[string][]MachineSet{} }))
			names := map[string]bool{}
			for _, o := range obs {
				names[o.Name] = true
			}
			got := kept{Infra: true, Bootstrap: true}
			for _, md := range summarize(t, p).MDs {
				got.Infra = got.Infra && names[md.Infra]
				got.Bootstrap = got.Bootstrap && names[md.Bootstrap]
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nlegacy names kept: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}
