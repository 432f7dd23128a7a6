package fleetsim

import (
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
)

// requestSizes measures the requests the function receives, in bytes on
// the wire (proto.Size), without sizing a list of required resources more
// than once: the last wave's pools share the lists of markers they fetch.
type requestSizes struct {
	// largest is the largest request and the pool it was for.
	largest     int
	largestPool string
	// list is the largest list of required markers, in bytes and items.
	list, listItems int
	// memo sizes lists of required resources; reset each step.
	memo map[*fnv1.Resources]int
}

// requiredField is the field number of RunFunctionRequest's
// required_resources.
var requiredField = (&fnv1.RunFunctionRequest{}).ProtoReflect().Descriptor().Fields().ByName("required_resources").Number()

// size is proto.Size(req): the request without its required resources,
// plus each map entry of them.
func (s *requestSizes) size(req *fnv1.RunFunctionRequest) int {
	if s.memo == nil {
		s.memo = map[*fnv1.Resources]int{}
	}
	rr := req.RequiredResources
	req.RequiredResources = nil
	n := proto.Size(req)
	req.RequiredResources = rr
	for k, v := range rr {
		vs, ok := s.memo[v]
		if !ok {
			vs = proto.Size(v)
			s.memo[v] = vs
		}
		if len(v.GetItems()) > 0 && vs > s.list && isMarker(v.GetItems()[0]) {
			s.list, s.listItems = vs, len(v.GetItems())
		}
		entry := protowire.SizeTag(1) + protowire.SizeBytes(len(k)) + protowire.SizeTag(2) + protowire.SizeBytes(vs)
		n += protowire.SizeTag(requiredField) + protowire.SizeBytes(entry)
	}
	return n
}

func isMarker(r *fnv1.Resource) bool { return stringAt(r.GetResource(), "kind") == kindConfigMap }

// measure records the size of a request for a pool.
func (s *requestSizes) measure(r *reconcile) {
	if n := s.size(r.req); n > s.largest {
		s.largest, s.largestPool = n, r.pool.String()
	}
}
