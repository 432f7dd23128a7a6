package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Cells are separate Cluster API management clusters, each its
// own etcd, kube-apiserver, garbage collector and Cluster API managers
// (core, kubeadm bootstrap and control plane, CAPD in memory) with
// simulated workload clusters, next to the central sandbox, which composes
// into them through provider-kubernetes (providerkubernetes.go).
//
// Each cell runs as one process tree, the cell command (RunCell), in new
// network, PID and mount namespaces (unshare): CAPD binds a fixed port
// (19000, its debug server) and a fixed range (20000 up, its workload API
// servers) on every interface, so two CAPDs cannot share a network
// namespace; inside its own, each cell's managers reach CAPD's workload API
// servers and the cell's kube-apiserver reaches the managers' webhooks on
// 127.0.0.1, unchanged from the single-cluster sandbox. The PID namespace
// ends every process of the cell when the cell command ends, however it
// ends (its PID 1), and unshare ends with the test (parent-death signal):
// no process outlives a cell. The host reaches a cell's kube-apiserver
// through a TCP port on 127.0.0.1 forwarded to the cell's apiserver.sock
// (the serving certificate is for 127.0.0.1).

const (
	errCellStart     = "cannot start cell"
	errCellControl   = "cannot reach the control channel of cell"
	errCellReady     = "cell did not become ready"
	errCellConfig    = "cannot read the kubeconfig of cell"
	errCellSimCreate = "cannot create the simulated cluster"
	errCellSimWait   = "the simulated cluster's control plane did not become available"
)

// CellCmdEnv is the variable with the cell command's path (test/cmd/cell),
// which the Makefile builds and sets; StartCells reads it, and the cell
// command reads CellEnv and CAPIEnv from the environment it inherits.
const CellCmdEnv = "CELL_CMD"

// CellsEnv are the variables StartCells needs.
func CellsEnv() []string { return append(append([]string{CellCmdEnv}, CellEnv()...), CAPIEnv()...) }

// cellStartTimeout bounds a cell's start: a control plane with the CRDs and
// four managers, on a shared 2-core machine with other cells starting.
const cellStartTimeout = 5 * time.Minute

// A Cell is a running Cluster API management cluster of its own.
type Cell struct {
	Name, Dir string
	// Kubeconfig is the host's kubeconfig of the cell: its kube-apiserver
	// through a TCP port on 127.0.0.1 of the host.
	Kubeconfig string
	Config     *rest.Config
	Client     client.Client

	cmd    *exec.Cmd
	exited chan struct{}
	api    net.Listener
	ctl    *http.Client
}

// StartCells starts a cell in dir/<name> for each name, all at once, and
// returns them once every one serves with its managers ready. On an error
// the cells started are stopped.
func StartCells(ctx context.Context, dir string, names []string, progress func(string, ...any)) ([]*Cell, error) {
	v, err := fromEnv(CellsEnv())
	if err != nil {
		return nil, err
	}
	cells := make([]*Cell, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			cells[i], errs[i] = startCell(ctx, v[0], filepath.Join(dir, name), name, progress)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, c := range cells {
			if c != nil {
				c.Stop()
			}
		}
		return nil, err
	}
	return cells, nil
}

// startCell runs the cell command in its namespaces, waits until it is
// ready, and connects to it.
func startCell(ctx context.Context, bin, dir, name string, progress func(string, ...any)) (*Cell, error) {
	t0 := time.Now()
	progress("starting cell %s (etcd, kube-apiserver, the Cluster API managers, in its own network namespace; log %s)", name, filepath.Join(dir, cellLog))
	c, err := launchCell(bin, dir, name)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", errCellStart, name, err)
	}
	if err := c.connect(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	progress("  cell %s ready in %s: KUBECONFIG=%s", name, time.Since(t0).Round(100*time.Millisecond), c.Kubeconfig)
	return c, nil
}

// cellNetwork sets up a cell's network namespace: loopback up, and an
// address other than 127.0.0.1 on it with a default route: kube-apiserver
// refuses to start without a default route (it advertises the address of
// its interface), and there is no other interface to give it (no dummy
// or veth devices here). Every cell has the same: each is alone in its
// namespace.
const cellNetwork = `ip link set lo up && ip addr add 10.255.0.1/32 dev lo && ip route add default dev lo`

// launchCell starts the cell command with `unshare`: new network, PID and
// mount namespaces (a /proc of its own, so that the sandbox finds its
// processes by their PIDs in it), set up by cellNetwork. --kill-child ends
// the cell when unshare ends; the parent-death signal ends unshare when
// the test does.
func launchCell(bin, dir, name string) (*Cell, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	for _, f := range []string{cellControlSocket, cellAPIServerSocket} {
		_ = os.Remove(filepath.Join(dir, f))
	}
	log, err := os.OpenFile(filepath.Join(dir, cellLog), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600) //nolint:gosec // The cell's own log.
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("unshare", "--net", "--pid", "--fork", "--mount-proc", "--kill-child", //nolint:gosec // The cell command make builds.
		"sh", "-c", cellNetwork+` && exec "$0" "$@"`, bin, "--dir="+dir, "--name="+name)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return nil, err
	}
	c := &Cell{Name: name, Dir: dir, cmd: cmd, exited: make(chan struct{}), ctl: unixClient(filepath.Join(dir, cellControlSocket))}
	go func() { _ = cmd.Wait(); _ = log.Close(); close(c.exited) }()
	return c, nil
}

// unixClient is an HTTP client of a unix socket.
func unixClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}
}

// connect waits until the cell is ready, forwards a host port to its
// kube-apiserver socket, and writes the host's kubeconfig of it.
func (c *Cell) connect(ctx context.Context) error {
	if err := c.waitReady(ctx); err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("%s %s: %w", errCellStart, c.Name, err)
	}
	c.api = l
	sock := filepath.Join(c.Dir, cellAPIServerSocket)
	go forward(l, func() (net.Conn, error) { return net.DialTimeout("unix", sock, 5*time.Second) })
	if err := c.hostKubeconfig(l.Addr().String()); err != nil {
		return fmt.Errorf("%s %s: %w", errCellConfig, c.Name, err)
	}
	return c.newClient()
}

// waitReady polls the cell's status until it is ready, failing early with
// its log if the cell command exits.
func (c *Cell) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(cellStartTimeout)
	for {
		if err := c.control(ctx, http.MethodGet, cellPathStatus); err == nil {
			return nil
		}
		select {
		case <-c.exited:
			return fmt.Errorf("%s %s: it exited; the last lines of its log (%s):\n%s", errCellReady, c.Name, c.Log(), tail(c.Log(), 30))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s %s in %s; the last lines of its log (%s):\n%s", errCellReady, c.Name, cellStartTimeout, c.Log(), tail(c.Log(), 30))
		}
	}
}

// hostKubeconfig writes the cell's kubeconfig with the server moved to the
// host's forwarded address.
func (c *Cell) hostKubeconfig(addr string) error {
	kc, err := clientcmd.LoadFromFile(filepath.Join(c.Dir, "kubeconfig"))
	if err != nil {
		return err
	}
	for _, cl := range kc.Clusters {
		cl.Server = "https://" + addr
	}
	c.Kubeconfig = filepath.Join(c.Dir, cellHostKubeconfig)
	return clientcmd.WriteToFile(*kc, c.Kubeconfig)
}

func (c *Cell) newClient() error {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return fmt.Errorf("%s %s: %w", errCellConfig, c.Name, err)
	}
	sch := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(sch); err != nil {
		return err
	}
	if err := apiextensionsv1.AddToScheme(sch); err != nil {
		return err
	}
	c.Config = cfg
	c.Client, err = client.New(cfg, client.Options{Scheme: sch})
	return err
}

// control calls the cell's control channel.
func (c *Cell) control(ctx context.Context, method, path string) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://cell"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.ctl.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", errCellControl, c.Name, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("cell %s %s %s: %s: %s", c.Name, method, path, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// Log is the path of the cell command's log; each process of the cell
// logs to <name>.log next to it.
func (c *Cell) Log() string { return filepath.Join(c.Dir, cellLog) }

// StopAPIServer stops the cell's kube-apiserver (etcd keeps the data; the
// managers keep running, failing to reach it): a cell's outage as the
// central sandbox sees it.
func (c *Cell) StopAPIServer(ctx context.Context) error {
	return c.control(ctx, http.MethodPost, cellPathStopAPIServer)
}

// StartAPIServer starts the cell's kube-apiserver again, on its port, and
// returns once the host reaches it.
func (c *Cell) StartAPIServer(ctx context.Context) error {
	if err := c.control(ctx, http.MethodPost, cellPathStartAPIServer); err != nil {
		return err
	}
	return eventually(ctx, 30*time.Second, func() error {
		return c.Client.List(ctx, &apiextensionsv1.CustomResourceDefinitionList{}, client.Limit(1))
	})
}

// Stop shuts the cell down through its control channel, or SIGTERM if it
// does not answer (each process stopped as the sandbox stops its own), and
// kills what is left after a minute: ending unshare ends the cell's PID
// namespace, every process in it.
func (c *Cell) Stop() {
	if c.api != nil {
		_ = c.api.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.control(ctx, http.MethodPost, cellPathShutdown); err != nil {
		// unshare blocks SIGTERM and waits for its child, the cell, which
		// handles it (the PID 1 of its namespace gets only the signals it
		// handles).
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGTERM)
	}
	select {
	case <-c.exited:
		return
	case <-time.After(time.Minute):
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	<-c.exited
}

// Pids are the host PIDs of the cell's processes, by executable name: the
// children of the cell command (itself the child of unshare). Their
// resident memory is in /proc/<pid>/status.
func (c *Cell) Pids() map[string]int {
	out := map[string]int{}
	for _, cell := range children(c.cmd.Process.Pid) {
		out["cell"] = cell
		for _, p := range children(cell) {
			if exe, err := os.Readlink(filepath.Join("/proc", fmt.Sprint(p), "exe")); err == nil {
				out[filepath.Base(exe)] = p
			}
		}
	}
	return out
}

// PeakMemory is the peak resident memory (VmHWM) of each process of the
// cell, in bytes, by executable name.
func (c *Cell) PeakMemory() map[string]uint64 {
	out := map[string]uint64{}
	for name, pid := range c.Pids() {
		out[name] = peakRSS(pid)
	}
	return out
}

// children are the PIDs of a process's children: those of each of its
// threads (a Go program starts a child from any of them).
func children(pid int) []int {
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, f := range files {
		b, err := os.ReadFile(f) //nolint:gosec // A file of /proc.
		if err != nil {
			continue
		}
		for _, w := range strings.Fields(string(b)) {
			var p int
			if _, err := fmt.Sscan(w, &p); err == nil {
				out = append(out, p)
			}
		}
	}
	return out
}

// Create creates objects in the cell, retrying while webhooks and CRDs
// settle, and tolerating ones that exist.
func (c *Cell) Create(ctx context.Context, objs ...*unstructured.Unstructured) error {
	for _, o := range objs {
		if err := eventually(ctx, 60*time.Second, func() error {
			return client.IgnoreAlreadyExists(c.Client.Create(ctx, o.DeepCopy()))
		}); err != nil {
			return fmt.Errorf("cannot create %s %s/%s in cell %s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), c.Name, err)
		}
	}
	return nil
}

// CreateSimCluster creates a simulated cluster (SimCluster) in the cell, in
// namespace (created if missing), and waits until its control plane is
// available: the Cluster's ControlPlaneAvailable condition is True.
func (c *Cell) CreateSimCluster(ctx context.Context, namespace, name, version string, timeout time.Duration) error {
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": namespace}}}
	if err := c.Create(ctx, append([]*unstructured.Unstructured{ns}, SimCluster(namespace, name, version)...)...); err != nil {
		return fmt.Errorf("%s %s/%s: %w", errCellSimCreate, namespace, name, err)
	}
	return c.WaitControlPlane(ctx, namespace, name, timeout)
}

// WaitControlPlane waits until a Cluster of the cell has its control plane
// available.
func (c *Cell) WaitControlPlane(ctx context.Context, namespace, name string, timeout time.Duration) error {
	cl := &unstructured.Unstructured{}
	cl.SetAPIVersion("cluster.x-k8s.io/v1beta2")
	cl.SetKind("Cluster")
	err := eventually(ctx, timeout, func() error {
		if err := c.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, cl); err != nil {
			return err
		}
		if !conditionTrue(cl, "ControlPlaneAvailable") {
			return fmt.Errorf("not yet: %v", conditions(cl))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s (cell %s, Cluster %s/%s): %w", errCellSimWait, c.Name, namespace, name, err)
	}
	return nil
}
