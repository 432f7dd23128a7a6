// Package wire is the one encoding of the objects the function composes:
// the JSON that becomes the composed resources Crossplane applies, and the
// bytes their content-hashed names are derived from. Keeping both in one
// function is what makes a template's name change exactly when what is sent
// changes.
package wire

import (
	"github.com/go-json-experiment/json"
	jsonv1 "github.com/go-json-experiment/json/v1"
)

// options encode typed objects the way every upstream Kubernetes Go client
// does (encoding/json): `omitempty` omits zero numbers, false and nil
// pointers, and keeps a non-nil pointer to an empty struct. Map keys are
// sorted, so the same object always gives the same bytes.
//
// JSON v2's own omitempty gets provider types wrong: CAPA's AWSMachineSpec
// would carry placementGroupPartition: 0 (the CRD's minimum is 1, so the API
// server rejects it) and a spot pool's spotMarketOptions: {} would be
// dropped, silently running on demand.
var options = json.JoinOptions(jsonv1.OmitEmptyWithLegacyDefinition(true), json.Deterministic(true))

// Marshal encodes v as the function sends it.
func Marshal(v any) ([]byte, error) {
	return json.Marshal(v, options)
}
