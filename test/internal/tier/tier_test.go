package tier

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// env is an environment of set variables.
func env(vars ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(vars); i += 2 {
		m[vars[i]] = vars[i+1]
	}
	return func(k string) string { return m[k] }
}

var xpkg = Tier{Name: "xpkg", Env: []string{"XPKG_DIR", "OTHER"}}

func TestDecide(t *testing.T) {
	type want struct {
		Run, Fail bool
		Msg       string
	}
	cases := map[string]struct {
		reason string
		env    func(string) string
		want   want
	}{
		"Set": {
			reason: "A tier whose environment is set runs.",
			env:    env("XPKG_DIR", "bin", "OTHER", "x"),
			want:   want{Run: true},
		},
		"Missing": {
			reason: "A tier without its environment skips, naming what is missing and the make target.",
			env:    env("OTHER", "x"),
			want:   want{Msg: "the xpkg tier needs XPKG_DIR, not set: run it with `make test-xpkg`, which builds what it needs and sets them"},
		},
		"AllMissing": {
			reason: "Every missing variable is named, in order.",
			env:    env(),
			want:   want{Msg: "the xpkg tier needs XPKG_DIR, OTHER, not set: run it with `make test-xpkg`, which builds what it needs and sets them"},
		},
		"MissingUnderCI": {
			reason: "Under CI a tier without its environment fails: it may not skip silently.",
			env:    env("CI", "true"),
			want: want{Fail: true, Msg: "the xpkg tier needs XPKG_DIR, OTHER, not set: run it with `make test-xpkg`, which builds what it needs and sets them" +
				" (CI is true: a tier may not skip there)"},
		},
		"CIFalse": {
			reason: "CI=false is not CI.",
			env:    env("CI", "false"),
			want:   want{Msg: "the xpkg tier needs XPKG_DIR, OTHER, not set: run it with `make test-xpkg`, which builds what it needs and sets them"},
		},
		"SetUnderCI": {
			reason: "Under CI a tier with its environment runs.",
			env:    env("CI", "true", "XPKG_DIR", "bin", "OTHER", "x"),
			want:   want{Run: true},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var got want
			got.Run, got.Fail, got.Msg = xpkg.decide(tc.env)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\ndecide(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// runner counts the tests run.
type runner struct{ runs int }

func (r *runner) Run() int { r.runs++; return 0 }

func TestRun(t *testing.T) {
	cases := map[string]struct {
		reason   string
		env      func(string) string
		setupErr error
		wantCode int
		wantRuns int
		wantOut  string
		wantDown bool
	}{
		"Runs": {
			reason:   "With its environment, setup runs, then the tests, then teardown.",
			env:      env("XPKG_DIR", "bin", "OTHER", "x"),
			wantRuns: 1,
			wantDown: true,
		},
		"SetupFails": {
			reason:   "A setup that fails fails the tier, and no test runs.",
			env:      env("XPKG_DIR", "bin", "OTHER", "x"),
			setupErr: errors.New("cannot start"),
			wantCode: 1,
			wantOut:  "FAIL: cannot start\n",
		},
		"FailsUnderCI": {
			reason:   "Under CI, a missing environment fails before any setup or test.",
			env:      env("CI", "1"),
			wantCode: 1,
			wantOut: "FAIL: the xpkg tier needs XPKG_DIR, OTHER, not set: run it with `make test-xpkg`, which builds what it needs and sets them" +
				" (CI is true: a tier may not skip there)\n",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			r := &runner{}
			down := false
			code := run(r, xpkg, tc.env, &out, func() (func(), error) {
				if tc.setupErr != nil {
					return nil, tc.setupErr
				}
				return func() { down = true }, nil
			})
			got := []any{code, r.runs, out.String(), down}
			want := []any{tc.wantCode, tc.wantRuns, tc.wantOut, tc.wantDown}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s\nrun(...): -want [code, runs, output, teardown], +got:\n%s", tc.reason, diff)
			}
		})
	}
}
