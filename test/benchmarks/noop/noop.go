// Package noop is the baseline of the benchmarks: a composition function
// that only decodes the observed XR with the SDK and echoes it as the
// desired XR.
package noop

import (
	"context"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/request"
	"github.com/crossplane/function-sdk-go/response"
)

// Function decodes the XR and echoes it.
type Function struct {
	fnv1.UnimplementedFunctionRunnerServiceServer
}

// RunFunction decodes the observed XR and echoes it as the desired XR.
func (*Function) RunFunction(_ context.Context, req *fnv1.RunFunctionRequest) (*fnv1.RunFunctionResponse, error) {
	rsp := response.To(req, response.DefaultTTL)
	xr, err := request.GetObservedCompositeResource(req)
	if err != nil {
		response.Fatal(rsp, err)
		return rsp, nil
	}
	if err := response.SetDesiredCompositeResource(rsp, xr); err != nil {
		response.Fatal(rsp, err)
	}
	return rsp, nil
}
