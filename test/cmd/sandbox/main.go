// Command sandbox is `make sandbox`: the real Crossplane core continuously
// reconciling the example FleetNodePools on a local control plane, until
// interrupted.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fleetnodepool/function-fleetnodepool/test/internal/sandbox"
)

func main() {
	dir := flag.String("dir", "bin/sandbox", "where the sandbox keeps its kubeconfig, certificates and logs")
	flag.Parse()
	if err := run(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "sandbox:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	unlock, err := sandbox.Lock(dir)
	if err != nil {
		return err
	}
	defer unlock()
	bins, err := sandbox.BinariesFromEnv()
	if err != nil {
		return err
	}
	progress := func(f string, a ...any) { fmt.Printf(">> "+f+"\n", a...) }
	t0 := time.Now()
	s, err := sandbox.Start(ctx, dir, bins, progress)
	if err != nil {
		return err
	}
	defer func() {
		progress("stopping every process")
		s.Stop()
	}()
	pools, err := s.Examples(ctx, "examples", "package/configuration", progress)
	if err != nil {
		return err
	}
	progress("everything up in %s", time.Since(t0).Round(time.Second))
	fmt.Print(pools)
	fmt.Printf(`
The sandbox runs until Ctrl-C. Look around with kubectl (v1.36.3, in bin/kube-v1.36.3/):

  export KUBECONFIG=%s PATH=$PWD/bin/kube-v1.36.3:$PATH
  kubectl get fleetnodepools -A
  kubectl get machinedeployments,machinepools,awsmachinetemplates,kubeadmconfigtemplates -A
  kubectl describe fleetnodepool -n team-a workers
  kubectl edit fleetnodepool -n team-a workers        # Crossplane reconciles the change
  kubectl delete machinedeployment -n team-a prod-eu-1-workers-eu-west-1a   # and recreates it

Logs: %s/{crossplane,function,kube-controller-manager}.log
`, s.Kubeconfig, dir)
	<-ctx.Done()
	return nil
}
