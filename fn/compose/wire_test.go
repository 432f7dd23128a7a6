package compose

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/fleetnodepool/function-fleetnodepool/fn/plan"
	"github.com/fleetnodepool/function-fleetnodepool/fn/providers"
	"github.com/fleetnodepool/function-fleetnodepool/test/exampleio"
)

// TestWhatIsHashedIsSent checks, for every template of every example, that
// its name is the hash of the encoding planning made of it, and that what
// is sent is that encoding with the name set: the same as encoding the
// named object anew.
func TestWhatIsHashedIsSent(t *testing.T) {
	f := New(WithPlanner(plan.New(plan.WithProviders(providers.All()...))), WithCacheSize(0))
	examples, err := filepath.Glob(filepath.Join("..", "..", "examples", "*", "xr.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	templates := 0
	for _, x := range examples {
		dir := filepath.Dir(x)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			req, err := exampleio.ForExample(dir)
			if err != nil {
				t.Fatal(err)
			}
			in, err := f.decode(req, f.waves(req))
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := f.require(req, &in); err != nil {
				t.Fatal(err)
			}
			p, err := f.planner.Plan(in)
			if err != nil {
				return // The invalid example.
			}
			for _, r := range p.Resources {
				if r.Wire == nil {
					continue
				}
				templates++
				if !strings.HasSuffix(r.Object.GetName(), "-"+plan.Hash(r.Wire)) {
					t.Errorf("%s: name %s is not named by the hash %s of what is sent", r.Key, r.Object.GetName(), plan.Hash(r.Wire))
				}
				sent, err := encode(r)
				if err != nil {
					t.Fatal(err)
				}
				anew, err := ToStruct(r.Object)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(anew, sent, protocmp.Transform()); diff != "" {
					t.Errorf("%s: what is sent differs from the named object's encoding: -encoded anew, +sent:\n%s", r.Key, diff)
				}
			}
		})
	}
	if templates < 8 {
		t.Errorf("only %d templates checked: the examples do not exercise it", templates)
	}
}
