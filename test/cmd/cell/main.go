// Command cell is one cell: a Cluster API management cluster of
// its own, with etcd, kube-apiserver, the garbage collector and the real
// Cluster API managers (core, kubeadm bootstrap and control plane, CAPD in
// memory), until SIGTERM, SIGINT or its control channel stops it, stopping
// every process it started. sandbox.StartCells runs it in network, PID and
// mount namespaces of its own (CAPD binds fixed ports); it is not meant to
// be run by hand. Its binaries come from the environment
// (sandbox.CellEnv, sandbox.CAPIEnv), which make sets.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fleetnodepool/function-fleetnodepool/test/internal/sandbox"
)

func main() {
	dir := flag.String("dir", "", "the cell's directory: its sockets, kubeconfig, certificates and logs")
	name := flag.String("name", "cell", "the cell's name, for its log")
	flag.Parse()
	if err := run(*dir, *name); err != nil {
		fmt.Fprintf(os.Stderr, "cell %s: %v\n", *name, err)
		os.Exit(1)
	}
}

// run runs the cell until a signal; RunCell stops every process it started
// before it returns, whatever the outcome.
func run(dir, name string) error {
	if dir == "" {
		return errors.New("--dir is required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	progress := func(f string, a ...any) {
		fmt.Printf("%s %s: "+f+"\n", append([]any{time.Now().Format(time.TimeOnly), name}, a...)...)
	}
	bins, capi, err := sandbox.CellBinariesFromEnv()
	if err != nil {
		return err
	}
	return sandbox.RunCell(ctx, dir, bins, capi, progress)
}
