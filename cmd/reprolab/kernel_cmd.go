package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/reprolab/reprolab/lab/campaign"
	"github.com/reprolab/reprolab/lab/fault"
	"github.com/reprolab/reprolab/lab/kbuild"
)

const kernelLong = `Build a kernel (or only its verified .config) from a spec file or flags.

Source flags (one): --git REPO --ref REF [--exclude PATH]..., --dir DIR, --tarball FILE
[--sha256 X], --url URL --sha256 X, --kernel-org 4.11 [--mirror URL], --debian PKG.
Flags given with --spec override the file's arch, add fragments, patches and probes.

Prints the artifact paths and the kernel parameters of the probes; --json prints
the result as JSON. Exit: 0 ok, 2 bad input, 3 infrastructure or build failure.`

const kernelExample = `  reprolab kernel build --spec kconfigs/ci-6.1-x86_64.yaml
  reprolab kernel build --arch arm64 --git ~/linux --ref v4.11 \
      --probe reproducers/memcg-writeback-null/probes/seed.yaml
  reprolab kernel config --arch x86_64 --debian linux-source-6.1`

func newKernelCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "kernel build|config [flags]",
		Short:   "build kernels (or only their verified .config)",
		Long:    kernelLong,
		Example: kernelExample,
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return usagef("a subcommand is needed: build or config") },
	}
	cmd.AddCommand(newKernelBuildCmd("build"), newKernelBuildCmd("config"))
	return cmd
}

// kernelFlags are `reprolab kernel build|config`'s flags.
type kernelFlags struct {
	spec, arch, git, ref, dir, tarball, url, kernelOrg, mirror, sha256, debian string
	base, fragments, cache                                                     string
	excludes, fragmentDirs, patches, probes                                    []string
	jobs                                                                       int
	json                                                                       bool
}

func newKernelBuildCmd(sub string) *cobra.Command {
	var f kernelFlags
	short := "build a kernel from a spec file or flags"
	if sub == "config" {
		short = "make and verify only the kernel's .config (no compiler run)"
	}
	cmd := &cobra.Command{
		Use: sub + " [flags]", Short: short, Long: kernelLong, Example: kernelExample, Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runKernel(cmd, sub, &f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.arch, "arch", "", "x86_64 or arm64 (default x86_64, or the spec's)")
	addSourceFlags(fl, &f)
	fl.StringArrayVar(&f.patches, "patch", nil, "patch, format-patch or mbox file (repeatable, applied in order)")
	fl.StringVar(&f.cache, "cache", cacheDir(), "cache folder (env REPROLAB_CACHE)")
	fl.IntVarP(&f.jobs, "make-jobs", "j", 2, "make jobs")
	fl.BoolVar(&f.json, "json", false, "print the result as JSON")
	return cmd
}

// addSourceFlags registers the flags that describe a kernel to build (source, config,
// probes): shared by kernel build and validate.
func addSourceFlags(fl *pflag.FlagSet, f *kernelFlags) {
	fl.StringVar(&f.spec, "spec", "", "YAML kernel spec file")
	fl.StringVar(&f.git, "git", "", "local git repository")
	fl.StringVar(&f.ref, "ref", "", "commit, tag or branch (with --git)")
	fl.StringVar(&f.dir, "dir", "", "local kernel tree")
	fl.StringVar(&f.tarball, "tarball", "", "local kernel tarball")
	fl.StringVar(&f.url, "url", "", "tarball URL (http, https, file); needs --sha256")
	fl.StringVar(&f.kernelOrg, "kernel-org", "", "kernel.org release, e.g. 4.11 (layout v4.x/linux-4.11.tar.xz)")
	fl.StringVar(&f.mirror, "mirror", "", "base URL for --kernel-org")
	fl.StringVar(&f.sha256, "sha256", "", "tarball checksum")
	fl.StringVar(&f.debian, "debian", "", "Debian source package, e.g. linux-source-6.1")
	fl.StringVar(&f.base, "base", "", "base config target: tinyconfig (default), defconfig, ...")
	fl.StringVar(&f.fragments, "fragments", "", "comma-separated fragments (default: "+strings.Join(kbuild.DefaultFragments, ",")+")")
	fl.StringArrayVar(&f.excludes, "exclude", nil, "path left out of git archive (repeatable)")
	fl.StringArrayVar(&f.fragmentDirs, "fragment-dir", nil, "folder of NAME.config fragments (repeatable; default: the repo's kconfigs/)")
	fl.StringArrayVar(&f.probes, "probe", nil, "delay probe YAML (repeatable)")
}

// kbuildSpec merges the spec file and the flags into one build spec.
func (f *kernelFlags) kbuildSpec(sub string) (kbuild.Spec, error) {
	var spec kbuild.Spec
	if f.spec != "" {
		s, err := kbuild.LoadSpec(f.spec)
		if err != nil {
			return spec, fault.AsInput(err)
		}
		spec = *s
	}
	if f.git+f.dir+f.tarball+f.url+f.kernelOrg+f.debian != "" {
		src := &spec.Source
		src.Git, src.Ref, src.Exclude, src.Dir, src.Tarball, src.URL = f.git, f.ref, f.excludes, f.dir, f.tarball, f.url
		src.KernelOrg, src.Mirror, src.SHA256, src.Debian = f.kernelOrg, f.mirror, f.sha256, f.debian
	}
	if f.arch != "" {
		spec.Arch = f.arch
	}
	if spec.Arch == "" {
		spec.Arch = "x86_64"
	}
	if f.base != "" {
		spec.Base = f.base
	}
	if f.fragments != "" {
		spec.Fragments = append(spec.Fragments, strings.Split(f.fragments, ",")...)
	}
	spec.Patches = append(spec.Patches, f.patches...)
	spec.Probes = append(spec.Probes, f.probes...)
	spec.FragmentDirs = f.fragmentDirs
	if len(spec.FragmentDirs) == 0 {
		spec.FragmentDirs = []string{findKconfigs(f.spec)}
	}
	spec.CacheDir, spec.Jobs, spec.ConfigOnly = f.cache, f.jobs, sub == "config"
	spec.Progress = os.Stderr
	return spec, nil
}

func runKernel(cmd *cobra.Command, sub string, f *kernelFlags) error {
	if err := positiveFlags(cmd, "make-jobs"); err != nil {
		return err
	}
	spec, err := f.kbuildSpec(sub)
	if err != nil {
		return err
	}
	ctx, cancel := signalContext("stopping the build")
	defer cancel()
	res, err := campaign.BuildKernel(ctx, spec)
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "reprolab kernel:", err)
			return exitStatus(fault.ExitInterrupted)
		}
		return err
	}
	out := cmd.OutOrStdout()
	if f.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printKernel(cmd, spec, res)
	return nil
}

func printKernel(cmd *cobra.Command, spec kbuild.Spec, res *kbuild.Result) {
	out := cmd.OutOrStdout()
	for _, w := range res.Warnings {
		fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
	}
	if spec.ConfigOnly {
		fmt.Fprintf(out, "config:   %s\nversion:  %s\n", res.Config, res.Version)
		return
	}
	state := "built"
	if res.Cached {
		state = "cached"
	}
	fmt.Fprintf(out, "kernel:   %s (%s, %s, %d files compiled)\nvmlinux:  %s\nsystem.map: %s\nconfig:   %s\nmetadata: %s\n",
		res.Kernel, res.Version, state, res.Compiled, res.Vmlinux, res.SystemMap, res.Config, res.Metadata)
	if len(res.CmdlineParams) > 0 {
		fmt.Fprintf(out, "cmdline:  %s\n", strings.Join(res.CmdlineParams, " "))
	}
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
