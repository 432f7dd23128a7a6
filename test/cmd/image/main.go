// Command image builds the function's runtime image as an OCI tarball
// without a Docker engine: the same image the Dockerfile describes (one
// layer holding the static binary at /function, nonroot user, entrypoint
// /function, port 9443), on an empty base. `make xpkg` embeds it in the
// Function package with `crossplane xpkg build --embed-runtime-image-tarball`.
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// nonroot is the uid and gid of distroless's nonroot user.
const nonroot = "65532:65532"

func main() {
	binary := flag.String("binary", "bin/image/function", "the static function binary")
	output := flag.String("output", "bin/runtime.tar", "where to write the OCI image tarball")
	tag := flag.String("tag", "function-fleetnodepool:dev", "the image's tag in the tarball")
	flag.Parse()
	if err := build(*binary, *output, *tag); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func build(binary, output, tag string) error {
	bin, err := os.ReadFile(binary) //nolint:gosec // The binary make built.
	if err != nil {
		return fmt.Errorf("cannot read the function binary: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "function", Mode: 0o755, Size: int64(len(bin)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(bin); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		return fmt.Errorf("cannot make the layer: %w", err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	cfg.Config.Entrypoint = []string{"/function"}
	cfg.Config.User = nonroot
	cfg.Config.WorkingDir = "/"
	cfg.Config.ExposedPorts = map[string]struct{}{"9443/tcp": {}}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return err
	}
	ref, err := name.NewTag(tag)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(output, ref, img)
}
