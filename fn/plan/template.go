package plan

import (
	"encoding/json"
	"reflect"
	"strings"

	"github.com/crossplane/crossplane-runtime/v2/pkg/errors"

	"github.com/fleetnodepool/function-fleetnodepool/fn/provider"
	"github.com/fleetnodepool/function-fleetnodepool/fn/wire"
)

// template names an immutable template by the hash of its wire encoding
// (what Crossplane applies) and adds it to the plan, once: it returns the
// template of the plan with that name. A running pool whose template was
// named by an earlier encoding keeps that name while the content is the
// same: upgrading the function never renames, so never rolls, a template.
func (p *Plan) template(in Input, prefix string, t provider.Object, labels map[string]string) (provider.Object, error) {
	b, err := wire.Marshal(t)
	if err != nil {
		return nil, errors.Wrapf(err, errFmtHash, t.GetObjectKind().GroupVersionKind().Kind)
	}
	h := Hash(b)
	k, n := key(prefix, h), HashedName(h, in.Spec.ClusterName, in.Name)
	if _, ok := in.Observed[k]; !ok {
		if lk, ln, ok := legacyName(in.Observed, prefix, t, b); ok {
			k, n = lk, ln
		}
	}
	for _, r := range p.Resources {
		if r.Key == k {
			return r.Object, nil
		}
	}
	name(t, n, in.Namespace, in.Spec.ClusterName, labels)
	p.add(in.Observed, Resource{Key: k, Object: t, Wire: b}, true)
	return t, nil
}

// legacyName finds the observed template an earlier encoding named for the
// same content: the one under the key legacyHash gives, whose observed spec
// is what is sent now. Same means every value sent is there, and no empty
// value ({}, "", []) is there that is not sent: the legacy hash cannot see
// those (spot on or off), so the spec must. Values the API server defaulted
// may be there too.
func legacyName(observed map[string]Observed, prefix string, t provider.Object, wired []byte) (k, n string, ok bool) {
	if !hasPrefixed(observed, prefix) {
		return "", "", false // A new pool: nothing to keep.
	}
	h, err := legacyHash(t)
	if err != nil {
		return "", "", false
	}
	o, found := observed[key(prefix, h)]
	if !found || !strings.HasSuffix(o.Name, "-"+h) {
		return "", "", false
	}
	obj := o.object()
	if obj == nil {
		return "", "", false
	}
	sent := map[string]any{}
	if err := json.Unmarshal(wired, &sent); err != nil {
		return "", "", false
	}
	if !within(sent["spec"], obj["spec"]) || !emptiesWithin(obj["spec"], sent["spec"]) {
		return "", "", false
	}
	return key(prefix, h), o.Name, true
}

// hasPrefixed reports whether any observed key has the prefix.
func hasPrefixed(observed map[string]Observed, prefix string) bool {
	for k := range observed {
		if strings.HasPrefix(k, prefix+"-") {
			return true
		}
	}
	return false
}

// within reports whether every value of a is in b, equal: b may have more
// (fields the API server defaulted).
func within(a, b any) bool {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range av {
			if !within(v, bv[k]) {
				return false
			}
		}
		return true
	case []any:
		bv, ok := b.([]any)
		if !ok || len(av) != len(bv) {
			return false
		}
		for i := range av {
			if !within(av[i], bv[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

// emptiesWithin reports whether every empty value ({}, "", []) of a is in
// b, at the same place.
func emptiesWithin(a, b any) bool {
	switch av := a.(type) {
	case map[string]any:
		bv, _ := b.(map[string]any)
		if len(av) == 0 {
			return bv != nil
		}
		for k, v := range av {
			if !emptiesWithin(v, bv[k]) {
				return false
			}
		}
		return true
	case []any:
		bv, _ := b.([]any)
		if len(av) == 0 {
			return bv != nil
		}
		for i := range av {
			if i >= len(bv) || !emptiesWithin(av[i], bv[i]) {
				return false
			}
		}
		return true
	case string:
		if av == "" {
			_, ok := b.(string)
			return ok
		}
	}
	return true
}
