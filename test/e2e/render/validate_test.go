//go:build render

package render

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// validate runs `crossplane resource validate` offline (no Crossplane
// image) of a FleetNodePool against the generated XRD.
func validate(t *testing.T, xrd, resource string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.CommandContext(t.Context(), tools.CLI, "resource", "validate", "--crossplane-image=", "--cache-dir="+t.TempDir(), xrd, resource) //nolint:gosec // The pinned CLI.
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestValidateExamples validates every example FleetNodePool against the
// XRD generated from the Go types, and checks the XRD's own rules (schema
// and CEL) reject what they must, with their messages.
func TestValidateExamples(t *testing.T) {
	xrs, err := filepath.Glob(filepath.Join(examplesDir, "*", "xr.yaml"))
	if err != nil || len(xrs) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, xr := range xrs {
		t.Run(filepath.Base(filepath.Dir(xr)), func(t *testing.T) {
			if out, err := validate(t, xrdPath, xr); err != nil {
				t.Errorf("%s does not validate against the XRD: %v\n%s", xr, err, out)
			}
		})
	}

	const head = "apiVersion: fleet.nodepool.dev/v1alpha1\nkind: FleetNodePool\nmetadata: {name: bad, namespace: team-a}\nspec:\n  clusterName: prod-eu-1\n"
	cases := map[string]struct {
		reason string
		spec   string
		want   string
	}{
		"ClassAndType": {
			reason: "A catalog class and a raw type exclude each other.",
			spec:   "  machine: {class: medium, type: m6i.large}\n  scaling: {replicas: 1}\n",
			want:   "set exactly one of spec.machine.class (a catalog size class) or spec.machine.type (a provider instance type)",
		},
		"MinAboveMax": {
			reason: "Autoscaler bounds must be ordered.",
			spec:   "  machine: {class: medium}\n  scaling: {min: 5, max: 2}\n",
			want:   "spec.scaling.min must be less than or equal to spec.scaling.max",
		},
		"ReplicasAndBounds": {
			reason: "A fixed size and autoscaler bounds exclude each other.",
			spec:   "  machine: {class: medium}\n  scaling: {replicas: 3, min: 1, max: 4}\n",
			want:   "set either spec.scaling.replicas (fixed size) or spec.scaling.min and spec.scaling.max (autoscaled), not both",
		},
		"ChannelAndVersion": {
			reason: "A channel and a pinned version exclude each other.",
			spec:   "  channel: stable\n  version: v1.33.4\n  machine: {class: medium}\n  scaling: {replicas: 1}\n",
			want:   "set either spec.channel or spec.version, not both",
		},
		"VersionPattern": {
			reason: "A version must look like v1.33.4.",
			spec:   "  version: \"1.33\"\n  machine: {class: medium}\n  scaling: {replicas: 1}\n",
			want:   "spec.version: Invalid value",
		},
		"UnknownBackend": {
			reason: "The backend is an enum.",
			spec:   "  backend: Karpenter\n  machine: {class: medium}\n  scaling: {replicas: 1}\n",
			want:   `spec.backend: Unsupported value: "Karpenter"`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "xr.yaml")
			if err := os.WriteFile(f, []byte(head+tc.spec), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := validate(t, xrdPath, f)
			if err == nil {
				t.Fatalf("%s\nthe XRD accepted it:\n%s", tc.reason, out)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("%s\nwant %q in:\n%s", tc.reason, tc.want, out)
			}
		})
	}
}
