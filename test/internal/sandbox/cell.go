package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fleetnodepool/function-fleetnodepool/test/internal/upstream"
)

// What is inside a cell: the cell command (test/cmd/cell) runs it in the
// cell's own network namespace, where CAPD can bind its fixed ports.
//
// A cell's directory holds, besides the logs of its processes:
//   - control.sock: the cell's control channel, HTTP on a unix socket
//     (cellPaths below): its status, its kube-apiserver stopped and started,
//     the cell shut down;
//   - apiserver.sock: every connection to it is forwarded to the cell's
//     kube-apiserver on 127.0.0.1 inside the cell. A unix socket is a file,
//     reachable from every network namespace: the host's side of a cell
//     (cells.go) listens on a TCP port and forwards to it;
//   - kubeconfig: the cell's own, for its processes (127.0.0.1 inside);
//   - host.kubeconfig: the host's, written by StartCells.

// Files of a cell's directory.
const (
	cellControlSocket   = "control.sock"
	cellAPIServerSocket = "apiserver.sock"
	cellHostKubeconfig  = "host.kubeconfig"
	cellLog             = "cell.log"
)

// Paths of the control channel.
const (
	cellPathStatus         = "/status"
	cellPathStopAPIServer  = "/apiserver/stop"
	cellPathStartAPIServer = "/apiserver/start"
	cellPathShutdown       = "/shutdown"
)

const (
	errCellListen   = "cannot listen on the cell's socket"
	errCellUpstream = "cannot read the cell's kube-apiserver address"
)

// CellEnv are the variables CellBinariesFromEnv reads: the cell command
// runs the control plane and the Cluster API managers (CAPIEnv too).
func CellEnv() []string {
	return []string{"KUBE_APISERVER", "ETCD", "KUBE_CONTROLLER_MANAGER"}
}

// CellBinariesFromEnv reads what a cell runs from the variables of CellEnv
// and CAPIEnv, and locates the CRDs it serves: those of the central
// sandbox, so that whatever is composed into a cell has its kind there.
func CellBinariesFromEnv() (Binaries, CAPIBinaries, error) {
	v, err := fromEnv(CellEnv())
	if err != nil {
		return Binaries{}, CAPIBinaries{}, err
	}
	capi, err := CAPIBinariesFromEnv()
	if err != nil {
		return Binaries{}, CAPIBinaries{}, err
	}
	crds, err := upstream.CRDDirs()
	if err != nil {
		return Binaries{}, CAPIBinaries{}, err
	}
	return Binaries{APIServer: v[0], Etcd: v[1], ControllerManager: v[2], CRDDirs: crds}, capi, nil
}

// RunCell is the cell command: it starts a control plane (StartControlPlane)
// and the Cluster API managers (StartCAPI) in dir, serves the control
// channel and the kube-apiserver socket, and runs until ctx ends or the
// control channel shuts it down; then it stops every process it started.
// It must run in a network namespace of its own (StartCells sees to it):
// CAPD binds fixed ports on every interface.
func RunCell(ctx context.Context, dir string, bins Binaries, capi CAPIBinaries, progress func(string, ...any)) error {
	ctx, shutdown := context.WithCancel(ctx)
	defer shutdown()
	c := &cellServer{shutdown: shutdown}
	ctl, err := listenUnix(filepath.Join(dir, cellControlSocket))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: c.routes(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ctl) }()
	defer func() { _ = srv.Close() }()

	s, err := StartControlPlane(ctx, dir, bins, progress)
	if err != nil {
		return err
	}
	defer s.Stop()
	if err := s.StartCAPI(ctx, capi); err != nil {
		return err
	}
	u, err := url.Parse(s.Config.Host)
	if err != nil {
		return fmt.Errorf("%s %q: %w", errCellUpstream, s.Config.Host, err)
	}
	api, err := listenUnix(filepath.Join(dir, cellAPIServerSocket))
	if err != nil {
		return err
	}
	defer func() { _ = api.Close() }()
	go forward(api, func() (net.Conn, error) { return net.DialTimeout("tcp", u.Host, 5*time.Second) })
	c.ready(s)
	progress("cell ready: kube-apiserver %s inside, %s outside", u.Host, filepath.Join(dir, cellAPIServerSocket))
	<-ctx.Done()
	progress("stopping every process of the cell")
	return nil
}

// A cellServer answers the control channel.
type cellServer struct {
	mu       sync.Mutex
	s        *Sandbox // Set once ready.
	shutdown context.CancelFunc
}

func (c *cellServer) ready(s *Sandbox) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s = s
}

func (c *cellServer) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+cellPathStatus, func(w http.ResponseWriter, _ *http.Request) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.s == nil {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready")
	})
	mux.HandleFunc("POST "+cellPathStopAPIServer, c.withSandbox((*Sandbox).StopAPIServer))
	mux.HandleFunc("POST "+cellPathStartAPIServer, c.withSandbox((*Sandbox).StartAPIServer))
	mux.HandleFunc("POST "+cellPathShutdown, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "stopping")
		c.shutdown()
	})
	return mux
}

// withSandbox answers with what fn does to the ready cell: one at a time.
func (c *cellServer) withSandbox(fn func(*Sandbox, context.Context) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.s == nil {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		if err := fn(c.s, r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "done")
	}
}

// listenUnix listens on a unix socket, replacing one a previous run left.
func listenUnix(path string) (net.Listener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s %s: %w", errCellListen, path, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", errCellListen, path, err)
	}
	return l, nil
}

// forward copies every connection l accepts to one dial makes, both ways,
// until l is closed. A connection that cannot be made is closed at once: to
// a client that is an API server that is down.
func forward(l net.Listener, dial func() (net.Conn, error)) {
	for {
		in, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer func() { _ = in.Close() }()
			out, err := dial()
			if err != nil {
				return
			}
			defer func() { _ = out.Close() }()
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
			go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
			<-done // Either side closed: close both.
		}()
	}
}
