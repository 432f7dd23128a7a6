//go:build fleet

package fleet

import (
	"bufio"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// explainLogs are the logs explain searches, and logLines how many of the
// last lines naming an object it prints.
var explainLogs = []string{"capi-core", "kube-controller-manager"}

const (
	logLines = 12
	maxLine  = 600
)

// explain describes what is odd about the fleet's machines when a wait
// fails: Machines whose MachineSet is gone, that are being deleted or not
// Running; MachineDeployments with more than one MachineSet; and the last
// lines of the Cluster API core's and the controller manager's logs that
// name them. CI keeps only the test's output, so this is all a red run
// leaves to go on.
func (r *run) explain() string {
	var b strings.Builder
	sets := map[string]unstructured.Unstructured{}
	byDeployment := map[string][]string{}
	for _, ms := range r.list("cluster.x-k8s.io/v1beta2", "MachineSet") {
		sets[ms.GetName()] = ms
		md := ms.GetLabels()[labelDeployment]
		byDeployment[md] = append(byDeployment[md], ms.GetName())
	}
	var named []string
	for _, m := range r.list("cluster.x-k8s.io/v1beta2", "Machine") {
		var odd []string
		owner := ""
		for _, o := range m.GetOwnerReferences() {
			if o.Kind == "MachineSet" {
				owner = o.Name
			}
		}
		if _, ok := sets[owner]; !ok {
			odd = append(odd, fmt.Sprintf("its MachineSet %q is gone", owner))
		}
		if ts := m.GetDeletionTimestamp(); ts != nil {
			odd = append(odd, fmt.Sprintf("deleting since %s (finalizers %v)", ts.UTC().Format("15:04:05"), m.GetFinalizers()))
		}
		if phase, _, _ := unstructured.NestedString(m.Object, "status", "phase"); phase != "Running" {
			odd = append(odd, "phase "+phase)
		}
		if len(odd) == 0 {
			continue
		}
		v, _, _ := unstructured.NestedString(m.Object, "spec", "version")
		fmt.Fprintf(&b, "  Machine %s (%s, created %s): %s\n", m.GetName(), v,
			m.GetCreationTimestamp().UTC().Format("15:04:05"), strings.Join(odd, "; "))
		named = append(named, m.GetName(), owner)
	}
	for _, md := range slices.Sorted(maps.Keys(byDeployment)) {
		if len(byDeployment[md]) < 2 {
			continue
		}
		fmt.Fprintf(&b, "  MachineDeployment %s has %d MachineSets:", md, len(byDeployment[md]))
		for _, n := range byDeployment[md] {
			ms := sets[n]
			want, _, _ := unstructured.NestedInt64(ms.Object, "spec", "replicas")
			got, _, _ := unstructured.NestedInt64(ms.Object, "status", "replicas")
			v, _, _ := unstructured.NestedString(ms.Object, "spec", "template", "spec", "version")
			fmt.Fprintf(&b, " %s (%s, %d/%d)", n, v, got, want)
		}
		b.WriteString("\n")
		named = append(named, byDeployment[md]...)
	}
	named = slices.Compact(slices.Sorted(slices.Values(named)))
	for _, log := range explainLogs {
		for _, n := range named {
			if n == "" {
				continue
			}
			if lines := lastLines(r.sb.Log(log), n, logLines); len(lines) > 0 {
				fmt.Fprintf(&b, "  %s.log, the last lines naming %s:\n    %s\n", log, n, strings.Join(lines, "\n    "))
			}
		}
	}
	if b.Len() == 0 {
		return "  nothing odd in Machines and MachineSets\n"
	}
	return b.String()
}

// lastLines returns the last n lines of a file that contain s.
func lastLines(path, s string, n int) []string {
	f, err := os.Open(path) //nolint:gosec // The sandbox's own log.
	if err != nil {
		return []string{err.Error()}
	}
	defer func() { _ = f.Close() }()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if line := sc.Text(); strings.Contains(line, s) {
			if len(line) > maxLine {
				line = line[:maxLine] + "..."
			}
			out = append(out, line)
			if len(out) > n {
				out = out[1:]
			}
		}
	}
	return out
}
