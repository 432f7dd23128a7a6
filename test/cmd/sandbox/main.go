// Command sandbox is `make sandbox`: the real Crossplane core continuously
// reconciling the example FleetNodePools on a local control plane, until
// interrupted. With --capi (`make sandbox CAPI=1`) the real Cluster API
// managers run too, with simulated clusters, and the sim example pools
// become machines and nodes. With --providers (`make sandbox PROVIDERS=1`)
// the CAPA and CAPZ managers run as well, and the AWS and Azure examples
// are composed next to the sim ones: their clouds are never provisioned
// (no credentials), but every object is admitted by the providers' own
// webhooks and applied, in whatever order Crossplane applies them.
//
// The packages are installed as users install them: `make xpkg`'s
// Function and Configuration packages are pushed to a registry on loopback
// and the Configuration is installed through Crossplane's package manager,
// which installs the Function. With --direct (`make sandbox DIRECT=1`) the
// XRD and Composition files are applied and the function registered by
// hand instead, which needs no package build.
//
// With --cells N (`make sandbox CELLS=N`, docs/cells.md) N cells run next
// to it: separate Cluster API management clusters (cell-1 ... cell-N), each
// its own etcd and kube-apiserver with the Cluster API managers, in a
// network namespace of its own, holding the cells example's Cluster; and
// provider-kubernetes runs against the central cluster with a
// ClusterProviderConfig per cell. The policy lists the cells, and the cells
// example's pool is created in each. The central sandbox is as without it
// (with --capi, its own Cluster API managers too: it does not depend on
// the cells).
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

	"github.com/fleetnodepool/function-fleetnodepool/test/exampleio"
	"github.com/fleetnodepool/function-fleetnodepool/test/internal/sandbox"
)

func main() {
	dir := flag.String("dir", "bin/sandbox", "where the sandbox keeps its kubeconfig, certificates and logs")
	capi := flag.Bool("capi", false, "also run the Cluster API managers with simulated (in-memory) clusters")
	direct := flag.Bool("direct", false, "apply the XRD and Composition files and register the function by hand, instead of installing the packages through the package manager")
	providers := flag.Bool("providers", false, "with --capi, also run the CAPA and CAPZ managers and compose the AWS and Azure examples")
	cells := flag.Int("cells", 0, "also run this many cells (cell-1 ...): Cluster API management clusters of their own, reached through provider-kubernetes, with the cells example's pool in each")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	set := sandbox.AllExamples
	switch {
	case *providers:
		*capi, set = true, sandbox.ProviderExamples
	case *capi:
		set = sandbox.SimExamples
	}
	err := run(ctx, *dir, *capi, *direct, set, *cells)
	// Ctrl-C while starting is a stop, not a failure. Read it before stop(),
	// which cancels the context too (and hid every start error).
	interrupted := ctx.Err() != nil
	stop()
	if err != nil && !interrupted {
		fmt.Fprintln(os.Stderr, "sandbox:", err)
		os.Exit(1)
	}
}

// simSiblings creates the pools the sandbox adds next to the sim example's,
// on its Cluster: copies of it under other names.
func simSiblings(ctx context.Context, s *sandbox.Sandbox, progress func(string, ...any)) error {
	xr, err := exampleio.Object(filepath.Join("examples", "sim-machinedeployment", "xr.yaml"))
	if err != nil {
		return err
	}
	// batch is in the policy's staging wave, system in none: a channel
	// bump moves workers (canary), then batch, then system.
	for name, wave := range map[string]string{"batch": "staging", "system": ""} {
		u := xr.DeepCopy()
		u.SetName(name)
		u.SetLabels(nil)
		if wave != "" {
			u.SetLabels(map[string]string{"fleet.nodepool.dev/rollout-wave": wave})
		}
		if err := s.Create(ctx, u); err != nil {
			return err
		}
	}
	progress("created FleetNodePools %s/batch and %s/system on the sim example's Cluster", xr.GetNamespace(), xr.GetNamespace())
	return nil
}

func run(ctx context.Context, dir string, capi, direct bool, set sandbox.ExampleSet, cells int) error {
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
	var opts []sandbox.Option
	if !direct {
		pkgs, err := sandbox.PackagesFromEnv()
		if err != nil {
			return err
		}
		opts = append(opts, sandbox.WithPackages(pkgs))
	}
	progress := func(f string, a ...any) { fmt.Printf(">> "+f+"\n", a...) }
	t0 := time.Now()
	s, err := sandbox.Start(ctx, dir, bins, progress, opts...)
	if err != nil {
		return err
	}
	defer func() {
		progress("stopping every process")
		s.Stop()
	}()
	if capi {
		cb, err := sandbox.CAPIBinariesFromEnv()
		if err != nil {
			return err
		}
		if err := s.StartCAPI(ctx, cb); err != nil {
			return err
		}
	}
	if set == sandbox.ProviderExamples {
		pb, err := sandbox.ProviderBinariesFromEnv()
		if err != nil {
			return err
		}
		if err := s.StartProviders(ctx, pb); err != nil {
			return err
		}
	}
	pools, err := s.Examples(ctx, "examples", "package/configuration", set, progress)
	if err != nil {
		return err
	}
	var cs []*sandbox.Cell
	if cells > 0 {
		if cs, err = startCells(ctx, s, dir, cells, progress); err != nil {
			return err
		}
		defer stopCells(cs, progress)
	}
	if capi {
		// Two more pools on the sim cluster: a class change of all three
		// shows the rollout gates roll them one at a time.
		if err := simSiblings(ctx, s, progress); err != nil {
			return err
		}
		t1 := time.Now()
		progress("waiting for the sim pools' machines and nodes (Cluster API: control plane first, then workers)")
		if err := s.WaitAvailable(ctx, "examples", 10*time.Minute, progress); err != nil {
			return err
		}
		progress("  sim pools available in %s", time.Since(t1).Round(time.Second))
	}
	progress("everything up in %s", time.Since(t0).Round(time.Second))
	fmt.Print(pools)
	if capi {
		fmt.Printf(`
The sandbox runs until Ctrl-C, with the real Cluster API v1.14 managers and
in-memory machines. Look around with kubectl (v1.36.3, in bin/kube-v1.36.3/):

  export KUBECONFIG=%s PATH=$PWD/bin/kube-v1.36.3:$PATH
  kubectl get configurations,functions,functionrevisions   # what the package manager installed
  kubectl get fleetnodepools -A
  kubectl get clusters,kubeadmcontrolplanes,machinedeployments,machinesets,machines -A
  kubectl describe fleetnodepool -n team-sim workers
  kubectl patch fleetnodepool -n team-sim workers --type=merge -p '{"spec":{"machine":{"class":"medium"}}}'
  kubectl get machines -n team-sim -w                  # a real rolling update

The Cluster sim-1 runs three pools (workers, batch, system). Change the class
of all three: they roll one at a time, and the others show why they wait.
The policy's rollout concurrency (1) allows one at a time; its waves (below)
order them first: workers, then batch, then system, each once the one
before has run its new machines for 2 minutes (Held-By Wave, then Soak):

  for p in workers batch system; do kubectl patch fleetnodepool -n team-sim $p --type=merge -p '{"spec":{"machine":{"class":"large"}}}'; done
  kubectl get fleetnodepools -n team-sim -w           # Rollout, Held-By
  kubectl get machinesets -n team-sim -w

The policy orders pools in waves (canary: workers, staging: batch, then the
rest: system), each after the one before runs the new target for 2 minutes.
Bump the channel in the Composition. Workers never overtake their control
plane, so every pool waits for it (Held-By ControlPlane) until you upgrade
it; then they move wave by wave:

  kubectl patch composition fleetnodepool --type=json -p '[{"op":"replace","path":"/spec/pipeline/0/input/channels/stable","value":"v1.34.1"}]'
  kubectl get fleetnodepools -n team-sim              # Held-By ControlPlane
  kubectl patch kubeadmcontrolplane -n team-sim sim-1 --type=merge -p '{"spec":{"version":"v1.34.1"}}'
  kubectl get fleetnodepools -n team-sim -w           # Wave, Rollout, Held-By (Wave, Soak)
  kubectl get configmaps -n team-sim -l fleet.nodepool.dev/wave   # the pools' rollout markers

A change of what the policy asks that needs no control plane (here the sim
machine type of the class small) moves wave by wave at once:

  kubectl patch composition fleetnodepool --type=json -p '[{"op":"replace","path":"/spec/pipeline/0/input/catalog/small/sim","value":"sim.small-v2"}]'

Logs: %s/{crossplane,function,kube-controller-manager,capi-core,capi-kubeadm-bootstrap,capi-kubeadm-control-plane,capd}.log
`, s.Kubeconfig, dir)
		if set == sandbox.ProviderExamples {
			fmt.Printf(`
With PROVIDERS=1 the CAPA and CAPZ managers run too (logs capa.log, capz.log),
without cloud credentials: the AWS and Azure pools above are composed and
admitted by their webhooks, and their reconciles stop where a cloud would be
needed. Look at what they hold:

  kubectl get machinepools,awsmachinepools,awsmanagedmachinepools,azuremachinepools,azureasomanagedmachinepools -A
  kubectl get awsmachinetemplates,azuremachinetemplates,kubeadmconfigs -A
`)
		}
		printCells(cs, s.Kubeconfig, dir)
		<-ctx.Done()
		return nil
	}
	fmt.Printf(`
The sandbox runs until Ctrl-C. Look around with kubectl (v1.36.3, in bin/kube-v1.36.3/):

  export KUBECONFIG=%s PATH=$PWD/bin/kube-v1.36.3:$PATH
  kubectl get configurations,functions,functionrevisions   # what the package manager installed
  kubectl get fleetnodepools -A
  kubectl get machinedeployments,machinepools,awsmachinetemplates,kubeadmconfigtemplates -A
  kubectl describe fleetnodepool -n team-a workers
  kubectl edit fleetnodepool -n team-a workers        # Crossplane reconciles the change
  kubectl delete machinedeployment -n team-a prod-eu-1-workers-eu-west-1a   # and recreates it

Logs: %s/{crossplane,function,kube-controller-manager}.log
`, s.Kubeconfig, dir)
	printCells(cs, s.Kubeconfig, dir)
	<-ctx.Done()
	return nil
}
