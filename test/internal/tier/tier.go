// Package tier runs a test tier only where its environment is. Every tier
// that needs tools (binaries the Makefile builds, packages it packs) reads
// their paths from environment variables its make target sets; run without
// them, e.g. a plain `go test -tags xpkg ./test/e2e/xpkg/`, the tier is
// skipped with a message naming the missing variables and the make target,
// instead of failing. Under CI (CI=true, as CI systems and .ci/run set it)
// a missing environment fails instead: CI never skips a tier silently.
//
// The tiers, their directories, build tags and environments are listed in
// one place: test/README.md.
package tier

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
)

// EnvCI is the variable CI systems set to true: a tier without its
// environment fails there rather than skip.
const EnvCI = "CI"

// A Tier is one test tier.
type Tier struct {
	// Name is the tier's name; its make target is test-<Name>.
	Name string
	// Env are the environment variables it needs, which its make target
	// sets.
	Env []string
}

// Target is the make target that runs the tier with its environment.
func (t Tier) Target() string { return "make test-" + t.Name }

// decide says what a tier does in an environment: run, or not, with
// why; under CI, not running is a failure.
func (t Tier) decide(getenv func(string) string) (run, fail bool, msg string) {
	var missing []string
	for _, e := range t.Env {
		if getenv(e) == "" {
			missing = append(missing, e)
		}
	}
	if len(missing) == 0 {
		return true, false, ""
	}
	msg = fmt.Sprintf("the %s tier needs %s, not set: run it with `%s`, which builds what it needs and sets them",
		t.Name, strings.Join(missing, ", "), t.Target())
	if ci, err := strconv.ParseBool(getenv(EnvCI)); err == nil && ci {
		return false, true, msg + " (" + EnvCI + " is true: a tier may not skip there)"
	}
	return false, false, msg
}

// Main is a tier's TestMain: with its environment set it runs setup, the
// tests, and setup's teardown, and returns the exit code. Without, no test
// runs: it prints why and returns 0 (`go test` reports "[no tests to
// run]"), or 1 under CI. setup may be nil.
func Main(m *testing.M, t Tier, setup func() (teardown func(), err error)) int {
	return run(m, t, os.Getenv, os.Stdout, setup)
}

func run(m interface{ Run() int }, t Tier, getenv func(string) string, out io.Writer, setup func() (func(), error)) int {
	ok, fail, msg := t.decide(getenv)
	switch {
	case fail:
		_, _ = fmt.Fprintln(out, "FAIL:", msg)
		return 1
	case !ok:
		_, _ = fmt.Fprintln(out, "SKIP:", msg)
		if !flag.Parsed() {
			flag.Parse()
		}
		// Every test is skipped: -test.skip matches them all.
		if err := flag.Set("test.skip", "."); err != nil {
			_, _ = fmt.Fprintln(out, "FAIL: cannot skip the tests:", err)
			return 1
		}
		return m.Run()
	}
	if setup != nil {
		teardown, err := setup()
		if err != nil {
			_, _ = fmt.Fprintln(out, "FAIL:", err)
			return 1
		}
		if teardown != nil {
			defer teardown()
		}
	}
	return m.Run()
}
