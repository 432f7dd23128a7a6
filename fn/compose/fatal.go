package compose

import (
	"strings"

	"github.com/crossplane/function-sdk-go/errors"

	"github.com/fleetnodepool/function-fleetnodepool/fn/plan"
)

// Reasons of the Fatal results the function returns: the label reason of
// function_fleetnodepool_fatal_results_total. A small, stable set that says
// whose mistake a Fatal result is; the result's message says what it is.
const (
	// FatalInvalidPool: the FleetNodePool cannot be planned as it is: its
	// spec does not decode or fails validation (errors on spec.* fields),
	// or a legacy XR has no claim namespace. The app team fixes it.
	FatalInvalidPool = "InvalidPool"
	// FatalInvalidPolicy: the Composition step's input, the platform
	// policy, is missing, of another kind, does not decode or fails
	// validation (errors on input.* fields). Every pool of the Composition
	// has it: the platform team fixes it.
	FatalInvalidPolicy = "InvalidPolicy"
	// FatalClusterNotFound: the pool's Cluster does not exist.
	FatalClusterNotFound = ReasonClusterNotFound
	// FatalUnsupportedCrossplane: the Crossplane calling the function does
	// not resolve required resources (older than v2.2).
	FatalUnsupportedCrossplane = "UnsupportedCrossplane"
	// FatalKindNotServed: the management cluster does not serve a kind the
	// pool composes, at the version the function composes it, or serves it
	// from a provider whose Cluster API contract is not accepted. The
	// platform team installs or upgrades the provider.
	FatalKindNotServed = "KindNotServed"
	// FatalCellUnreachable: the pool lives in a cell whose Cluster or
	// control plane provider-kubernetes cannot read (its API server is
	// down, or its provider config is wrong): the pool is held as it is.
	FatalCellUnreachable = "CellUnreachable"
	// FatalInvalidRequest: the request has no observed composite resource.
	FatalInvalidRequest = "InvalidRequest"
	// FatalInternalError: a bug of the function: a panic it recovered from
	// (the stack is in its log), or a plan it cannot encode.
	FatalInternalError = "InternalError"
)

// fatalReasons are every reason a Fatal result is counted under.
var fatalReasons = []string{FatalInvalidPool, FatalInvalidPolicy, FatalClusterNotFound, FatalKindNotServed, FatalCellUnreachable, FatalUnsupportedCrossplane, FatalInvalidRequest, FatalInternalError}

// A fatalError is an error that becomes a Fatal result, with the reason it
// is counted under. It says what the error it wraps says.
type fatalError struct {
	reason string
	err    error
}

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

// withReason gives err the reason its Fatal result is counted under.
func withReason(reason string, err error) error {
	if err == nil {
		return nil
	}
	return &fatalError{reason: reason, err: err}
}

// fatalReason is the reason a Fatal result of err is counted under: the
// one it was given, else what planning says of it. An error nothing
// explains is a bug.
func fatalReason(err error) string {
	var (
		fe        *fatalError
		notFound  *plan.ClusterNotFoundError
		notServed *plan.NotServedError
		invalid   *plan.InvalidError
	)
	switch {
	case errors.As(err, &fe):
		return fe.reason
	case errors.As(err, &notFound):
		return FatalClusterNotFound
	case errors.As(err, &notServed):
		return FatalKindNotServed
	case errors.As(err, &invalid):
		// The policy's mistakes stop every pool of the Composition: they
		// decide, even beside mistakes of the pool's own.
		for _, e := range invalid.Errs {
			if e.Field == "input" || strings.HasPrefix(e.Field, "input.") || strings.HasPrefix(e.Field, "input[") {
				return FatalInvalidPolicy
			}
		}
		return FatalInvalidPool
	}
	return FatalInternalError
}
