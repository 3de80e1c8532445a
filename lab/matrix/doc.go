/*
Package matrix runs a reproducer over a matrix of arches, kernels, configs, probe delays,
patch sets and command lines, unattended and resumable: each distinct kernel is built
once, cells run in parallel within the host's CPU and memory, every run is recorded in
the results database before it boots and counted only once its evidence is on disk, and
a second invocation after Ctrl-C, SIGKILL or a reboot redoes exactly what is missing.

A matrix spec (YAML, unknown keys are errors):

	name: memcg-writeback-null        # names result folders and run IDs
	reproducer: repro.yaml            # relative to this file
	budget:
	  runs: 3                         # boots per cell
	  duration: 3m                    # per run; overrides the reproducer (iterations: too)
	probes: [probes/seed.yaml]        # compiled into every kernel built from source
	axes:
	  arch: [x86_64, arm64]
	  kernel:                         # a source lab/kbuild accepts, or prebuilt images
	    - name: v4.11
	      source: {kernel_org: "4.11", sha256: …}   # or git+ref, dir, tarball, url+sha256, debian
	    - name: debian-6.1
	      prebuilt:
	        x86_64: {image: $REPROLAB_CACHE/debian/amd64/boot/vmlinuz-*, modules: …}
	      probe_params: [reprolab.delay_seed]       # what the probe axis sets on a prebuilt kernel
	  config:  [{name: seed, base: tinyconfig, fragments: [base, arch, memcg]}]  # default: kbuild's
	  probe:   [0, 100]               # µs on every compiled-in probe's reprolab.delay_<name>; 0 = off
	  patches: [{name: none}, {name: fix, files: [fix.patch], probes: [extra.yaml]}]
	  cmdline: [{name: plain}, {name: nosmp, args: [nosmp]}]
	exclude:      [{kernel: v4.13, patches: fix}]   # drop cells; all keys must match
	expect_crash: [{kernel: v4.11, probe: 100, patches: none}]  # the rest are expected clean
	clean: {rate_per_hour: 300, confidence: 0.99}  # see below

A clean cell passes only when its clean loop time T reaches the confidence (0.99 by
default) against λ_low, the lower end of the exact Poisson interval of its crashing
counterpart's rate (same arch and kernel, probe on, expected to crash), or against
clean.rate_per_hour when it has none: confidence = 1 − exp(−λ_low·T). Short of that it
is "clean, not yet conclusive (confidence 12%, needs 1.8 h more)" (lab/verdict).

A cell is one value per axis; its ID joins them with '_' (x86_64_v4.11_default_p100_none_plain)
and its k-th run is <matrix>-<cell>-r<k> under the results directory. Cells that differ
only in probe or cmdline share one kernel build.

Run state lives in the results database (lab/store): a run's row is "running" from before
its guest boots until its artifacts are durable, then "finished" with its crashes in one
transaction. A new invocation discards "running" rows and their folders and redoes them,
keeps "finished" ones, and so ends with exactly the planned runs whatever interrupted it.
*/
package matrix
