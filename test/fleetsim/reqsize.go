package fleetsim

import (
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
)

// requestSizes measures the requests the function receives, in bytes on
// the wire (proto.Size), sizing each object the model shares between
// requests once a step: the last wave's pools share the lists of markers
// they fetch, and every object is a body the model keeps until it changes.
type requestSizes struct {
	// largest is the largest request and the pool it was for.
	largest     int
	largestPool string
	// list is the largest list of required markers, in bytes and items.
	list, listItems int
	// structs and lists memoize sizes; reset each step (run).
	structs map[*structpb.Struct]int
	lists   map[*fnv1.Resources]int
}

// Field numbers of the messages' fields sized apart (run_function.proto;
// TestFieldNumbers holds them to the descriptors).
const (
	fieldObserved  protowire.Number = 2 // RunFunctionRequest.observed
	fieldInput     protowire.Number = 4 // RunFunctionRequest.input
	fieldRequired  protowire.Number = 8 // RunFunctionRequest.required_resources
	fieldComposite protowire.Number = 1 // State.composite
	fieldResources protowire.Number = 2 // State.resources
	fieldResource  protowire.Number = 1 // Resource.resource
	fieldItems     protowire.Number = 1 // Resources.items
	fieldMapKey    protowire.Number = 1 // A map entry's key.
	fieldMapValue  protowire.Number = 2 // A map entry's value.
)

// reset forgets the sizes of the step's objects: the next step makes some
// afresh, at addresses the old ones may have had.
func (s *requestSizes) reset() {
	s.structs, s.lists = map[*structpb.Struct]int{}, map[*fnv1.Resources]int{}
}

// field is the size of a length-delimited field of n bytes.
func field(num protowire.Number, n int) int { return protowire.SizeTag(num) + protowire.SizeBytes(n) }

// entry is the size of a map entry of a string key and a message value of
// n bytes.
func entry(num protowire.Number, key string, n int) int {
	return field(num, field(fieldMapKey, len(key))+field(fieldMapValue, n))
}

// size is proto.Size(req).
func (s *requestSizes) size(req *fnv1.RunFunctionRequest) int {
	if s.structs == nil || s.lists == nil {
		s.reset() // A meter used before run reset it, as the step tests do.
	}
	obs, rr, in := req.Observed, req.RequiredResources, req.Input
	req.Observed, req.RequiredResources, req.Input = nil, nil, nil
	n := proto.Size(req)
	req.Observed, req.RequiredResources, req.Input = obs, rr, in
	if in != nil {
		n += field(fieldInput, s.structSize(in))
	}
	if obs != nil {
		o := 0
		if c := obs.Composite; c != nil {
			o += field(fieldComposite, s.resource(c))
		}
		for k, r := range obs.Resources {
			o += entry(fieldResources, k, s.resource(r))
		}
		n += field(fieldObserved, o)
	}
	for k, v := range rr {
		n += entry(fieldRequired, k, s.resources(v))
	}
	return n
}

func (s *requestSizes) structSize(st *structpb.Struct) int {
	n, ok := s.structs[st]
	if !ok {
		n = proto.Size(st)
		s.structs[st] = n
	}
	return n
}

// resource is proto.Size(r): its object memoized, its other fields sized.
func (s *requestSizes) resource(r *fnv1.Resource) int {
	st := r.Resource
	r.Resource = nil
	n := proto.Size(r)
	r.Resource = st
	if st != nil {
		n += field(fieldResource, s.structSize(st))
	}
	return n
}

// resources is proto.Size(rs), memoized.
func (s *requestSizes) resources(rs *fnv1.Resources) int {
	if rs == nil {
		return 0
	}
	n, ok := s.lists[rs]
	if ok {
		return n
	}
	for _, r := range rs.Items {
		n += field(fieldItems, s.resource(r))
	}
	s.lists[rs] = n
	if len(rs.Items) > 0 && n > s.list && stringAt(rs.Items[0].GetResource(), "kind") == kindConfigMap {
		s.list, s.listItems = n, len(rs.Items)
	}
	return n
}

// measure records the size of a request for a pool.
func (s *requestSizes) measure(r *reconcile) {
	if n := s.size(r.req); n > s.largest {
		s.largest, s.largestPool = n, r.pool.String()
	}
}
