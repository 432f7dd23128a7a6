// Command render is `make render`: it starts the function and renders every
// example FleetNodePool under examples/ through the real Crossplane render
// engine, printing the composed Cluster API objects.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fleetnodepool/function-fleetnodepool/test/internal/render"
)

func main() {
	examples := flag.String("examples", "examples", "directory of example directories, each with xr.yaml, composition.yaml and functions.yaml")
	xrd := flag.String("xrd", "package/configuration/xrd.yaml", "the FleetNodePool XRD")
	only := flag.String("only", "", "render only this example")
	flag.Parse()
	if err := run(*examples, *xrd, *only); err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
}

func run(examples, xrd, only string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	tools, err := render.ToolsFromEnv()
	if err != nil {
		return err
	}
	dirs, err := filepath.Glob(filepath.Join(examples, "*", "xr.yaml"))
	if err != nil {
		return err
	}
	sort.Strings(dirs)

	f, err := render.StartFunction(ctx, tools.Function)
	if err != nil {
		return err
	}
	defer f.Stop()

	failed := 0
	for _, xr := range dirs {
		dir := filepath.Dir(xr)
		if only != "" && filepath.Base(dir) != only {
			continue
		}
		fmt.Printf("### %s\n", dir)
		out, err := render.Render(ctx, tools, f, render.ExampleCase(dir, xrd))
		if err != nil {
			failed++
			fmt.Printf("# render failed: %s\n", strings.ReplaceAll(err.Error(), "\n", "\n# "))
			continue
		}
		fmt.Print(string(out))
	}
	if failed > 0 {
		return fmt.Errorf("%d example(s) failed to render", failed)
	}
	return nil
}
