package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/reprolab/reprolab/lab/kbuild"
)

const kernelUsage = `usage: reprolab kernel build|config [flags]

Build a kernel (or only its verified .config) from a spec file or flags:

  reprolab kernel build --spec kconfigs/ci-6.1-x86_64.yaml
  reprolab kernel build --arch arm64 --git ~/linux --ref v4.11 \
      --probe reproducers/memcg-writeback-null/probes/seed.yaml
  reprolab kernel config --arch x86_64 --debian linux-source-6.1

Source flags (one): --git REPO --ref REF [--exclude PATH]..., --dir DIR, --tarball FILE
[--sha256 X], --url URL --sha256 X, --kernel-org 4.11 [--mirror URL], --debian PKG.
Flags given with --spec override the file's arch, add fragments, patches and probes.

Prints the artifact paths and the kernel parameters of the probes; --json prints
the result as JSON. Exit: 0 ok, 2 bad input, 3 infrastructure or build failure.
`

func kernelMain(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(os.Stderr, kernelUsage)
		if len(args) == 0 {
			return exitBadInput
		}
		return exitOK
	}
	sub := args[0]
	if sub != "build" && sub != "config" {
		fmt.Fprintf(os.Stderr, "reprolab kernel: unknown subcommand %q\n\n%s", sub, kernelUsage)
		return exitBadInput
	}
	fs := flag.NewFlagSet("reprolab kernel "+sub, flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), kernelUsage); fs.PrintDefaults() }
	specF := fs.String("spec", "", "YAML kernel spec file")
	arch := fs.String("arch", "", "x86_64 or arm64 (default x86_64, or the spec's)")
	gitF := fs.String("git", "", "local git repository")
	ref := fs.String("ref", "", "commit, tag or branch (with --git)")
	dir := fs.String("dir", "", "local kernel tree")
	tarball := fs.String("tarball", "", "local kernel tarball")
	url := fs.String("url", "", "tarball URL (http, https, file); needs --sha256")
	kernelOrg := fs.String("kernel-org", "", "kernel.org release, e.g. 4.11 (layout v4.x/linux-4.11.tar.xz)")
	mirror := fs.String("mirror", "", "base URL for --kernel-org")
	sum := fs.String("sha256", "", "tarball checksum")
	debian := fs.String("debian", "", "Debian source package, e.g. linux-source-6.1")
	base := fs.String("base", "", "base config target: tinyconfig (default), defconfig, ...")
	frags := fs.String("fragments", "", "comma-separated fragments (default: "+strings.Join(kbuild.DefaultFragments, ",")+")")
	var excludes, fragDirs, patches, probes multiFlag
	fs.Var(&excludes, "exclude", "path left out of git archive (repeatable)")
	fs.Var(&fragDirs, "fragment-dir", "folder of NAME.config fragments (repeatable; default: the repo's kconfigs/)")
	fs.Var(&patches, "patch", "patch, format-patch or mbox file (repeatable, applied in order)")
	fs.Var(&probes, "probe", "delay probe YAML (repeatable)")
	cache := fs.String("cache", cacheDir(), "cache folder (env REPROLAB_CACHE)")
	jobs := fs.Int("j", 2, "make jobs")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitBadInput
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "reprolab kernel %s: unexpected argument %q\n", sub, fs.Arg(0))
		return exitBadInput
	}

	var spec kbuild.Spec
	if *specF != "" {
		s, err := kbuild.LoadSpec(*specF)
		if err != nil {
			fmt.Fprintln(os.Stderr, "reprolab kernel:", err)
			return exitBadInput
		}
		spec = *s
	}
	src := spec.Source
	if *gitF+*dir+*tarball+*url+*kernelOrg+*debian != "" {
		src = spec.Source
		src.Git, src.Ref, src.Exclude, src.Dir, src.Tarball, src.URL = *gitF, *ref, excludes, *dir, *tarball, *url
		src.KernelOrg, src.Mirror, src.SHA256, src.Debian = *kernelOrg, *mirror, *sum, *debian
		spec.Source = src
	}
	if *arch != "" {
		spec.Arch = *arch
	}
	if spec.Arch == "" {
		spec.Arch = "x86_64"
	}
	if *base != "" {
		spec.Base = *base
	}
	if *frags != "" {
		spec.Fragments = append(spec.Fragments, strings.Split(*frags, ",")...)
	}
	spec.Patches = append(spec.Patches, patches...)
	spec.Probes = append(spec.Probes, probes...)
	spec.FragmentDirs = fragDirs
	if len(spec.FragmentDirs) == 0 {
		spec.FragmentDirs = []string{findKconfigs(*specF)}
	}
	spec.CacheDir, spec.Jobs, spec.ConfigOnly = *cache, *jobs, sub == "config"
	spec.Progress = os.Stderr

	ctx, cancel := signalContext()
	defer cancel()
	res, err := kbuild.Build(ctx, spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reprolab kernel:", err)
		if ctx.Err() != nil {
			return 130
		}
		if kbuild.IsBadInput(err) {
			return exitBadInput
		}
		return exitInfra
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
		return exitOK
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(os.Stderr, "warning:", w)
	}
	if spec.ConfigOnly {
		fmt.Printf("config:   %s\nversion:  %s\n", res.Config, res.Version)
		return exitOK
	}
	state := "built"
	if res.Cached {
		state = "cached"
	}
	fmt.Printf("kernel:   %s (%s, %s, %d files compiled)\nvmlinux:  %s\nsystem.map: %s\nconfig:   %s\nmetadata: %s\n",
		res.Kernel, res.Version, state, res.Compiled, res.Vmlinux, res.SystemMap, res.Config, res.Metadata)
	if len(res.CmdlineParams) > 0 {
		fmt.Printf("cmdline:  %s\n", strings.Join(res.CmdlineParams, " "))
	}
	return exitOK
}

// findKconfigs locates the repo's kconfigs/ folder: next to the spec file's
// repo, the working directory or one of its parents, or the executable's.
func findKconfigs(specFile string) string {
	var starts []string
	if specFile != "" {
		if a, err := filepath.Abs(specFile); err == nil {
			starts = append(starts, filepath.Dir(a))
		}
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, s := range starts {
		for d := s; ; d = filepath.Dir(d) {
			if fi, err := os.Stat(filepath.Join(d, "kconfigs")); err == nil && fi.IsDir() {
				return filepath.Join(d, "kconfigs")
			}
			if d == filepath.Dir(d) {
				break
			}
		}
	}
	return "kconfigs"
}
