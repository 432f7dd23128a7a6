//go:build conformance

package conformance

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestChanged(t *testing.T) {
	cases := map[string]struct {
		reason          string
		applied, stored any
		want            []string
	}{
		"Same": {
			reason:  "What was applied is stored: nothing changed.",
			applied: map[string]any{"a": "x", "n": int64(1), "l": []any{"p"}},
			stored:  map[string]any{"a": "x", "n": int64(1), "l": []any{"p"}},
		},
		"Defaulted": {
			reason:  "A field the webhook added is not a change of the function's.",
			applied: map[string]any{"a": "x"},
			stored:  map[string]any{"a": "x", "defaulted": "y"},
		},
		"Removed": {
			reason:  "A field the function set and the server does not store is reported.",
			applied: map[string]any{"a": "x", "b": map[string]any{"c": "y"}},
			stored:  map[string]any{"a": "x", "b": map[string]any{}},
			want:    []string{"spec.b.c"},
		},
		"Changed": {
			reason:  "A value the server stores otherwise is reported, in lists too.",
			applied: map[string]any{"l": []any{"p", "q"}, "n": int64(1)},
			stored:  map[string]any{"l": []any{"p", "r"}, "n": int64(2)},
			want:    []string{"spec.l[1]", "spec.n"},
		},
		"NullApplied": {
			reason:  "A null the function sends asks for nothing.",
			applied: map[string]any{"a": nil},
			stored:  map[string]any{},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := changed(tc.applied, tc.stored, "spec")
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\n-want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestHooks(t *testing.T) {
	rule := func(ops []admissionv1.OperationType, groups, resources []string) []admissionv1.RuleWithOperations {
		return []admissionv1.RuleWithOperations{{Operations: ops, Rule: admissionv1.Rule{APIGroups: groups, Resources: resources}}}
	}
	gr := schema.GroupResource{Group: "infrastructure.cluster.x-k8s.io", Resource: "azuremachinetemplates"}
	cases := map[string]struct {
		reason     string
		mutating   []admissionv1.MutatingWebhookConfiguration
		validating []admissionv1.ValidatingWebhookConfiguration
		want       map[schema.GroupResource][]hook
	}{
		"CreateAndUpdate": {
			reason: "A mutating and a validating webhook of creates and updates both judge the resource.",
			mutating: []admissionv1.MutatingWebhookConfiguration{{Webhooks: []admissionv1.MutatingWebhook{{
				Name: "default.azuremachinetemplate", Rules: rule([]admissionv1.OperationType{admissionv1.Create, admissionv1.Update}, []string{gr.Group}, []string{gr.Resource}),
			}}}},
			validating: []admissionv1.ValidatingWebhookConfiguration{{Webhooks: []admissionv1.ValidatingWebhook{{
				Name: "validation.azuremachinetemplate", Rules: rule([]admissionv1.OperationType{admissionv1.Update}, []string{gr.Group}, []string{gr.Resource}),
			}}}},
			want: map[schema.GroupResource][]hook{gr: {{Name: "default.azuremachinetemplate", Mutating: true}, {Name: "validation.azuremachinetemplate"}}},
		},
		"DeleteOnly": {
			reason: "A webhook of deletes only does not judge what the function applies.",
			validating: []admissionv1.ValidatingWebhookConfiguration{{Webhooks: []admissionv1.ValidatingWebhook{{
				Name: "delete.azuremachinetemplate", Rules: rule([]admissionv1.OperationType{admissionv1.Delete}, []string{gr.Group}, []string{gr.Resource}),
			}}}},
			want: map[schema.GroupResource][]hook{},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, hooks(tc.mutating, tc.validating)); diff != "" {
				t.Errorf("%s\n-want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}
