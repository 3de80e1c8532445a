package kbuild

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/reprolab/reprolab/lab/kbuild/probe"
)

// Metadata is metadata.json, written last into an artifact folder: its
// presence with the right key is what makes the folder a cache hit.
type Metadata struct {
	Schema        int                `json:"schema"`
	Key           string             `json:"key"`
	Name          string             `json:"name,omitempty"`
	Arch          string             `json:"arch"`
	KernelVersion string             `json:"kernel_version"`
	Source        map[string]string  `json:"source"`
	Base          string             `json:"base"`
	Fragments     []FileRef          `json:"fragments"`
	ConfigOptions []string           `json:"config_options"`
	Patches       []FileRef          `json:"patches"`
	Probes        []ProbeRef         `json:"probes"`
	CompatFixes   []FixRef           `json:"compat_fixes"`
	Toolchain     map[string]string  `json:"toolchain"`
	Host          map[string]string  `json:"host"`
	Durations     map[string]float64 `json:"durations_s"`
	Compiled      int                `json:"compiled_files"`
	CmdlineParams []string           `json:"cmdline_params"`
	Warnings      []string           `json:"warnings,omitempty"`
	Artifacts     map[string]string  `json:"artifacts"`
	Built         time.Time          `json:"built"`
}

type FileRef struct {
	File    string `json:"file"`
	Subject string `json:"subject,omitempty"`
	SHA256  string `json:"sha256"`
}

type ProbeRef struct {
	Name     string `json:"name"`
	File     string `json:"spec"`
	Param    string `json:"param"`
	Default  uint   `json:"default_us"`
	Site     string `json:"site"`
	Function string `json:"function"`
}

type FixRef struct {
	Name string `json:"name"`
	File string `json:"file"`
	Why  string `json:"why"`
}

func (b *builder) collect(pristine, tree, out, key, logPath string, touched []string, compiled int) (*Result, error) {
	obj := filepath.Join(tree, "obj")
	tmp := out + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, err
	}
	copies := map[string]string{
		filepath.Join(obj, b.ai.image):   filepath.Base(b.ai.image),
		filepath.Join(obj, "vmlinux"):    "vmlinux",
		filepath.Join(obj, "System.map"): "System.map",
		filepath.Join(obj, ".config"):    "config",
		logPath:                          "build.log",
	}
	for from, to := range copies {
		if err := copyFile(from, filepath.Join(tmp, to)); err != nil {
			return nil, fmt.Errorf("collecting artifacts: %w", err)
		}
	}
	// applied.patch: what this kernel has that the pristine source has not.
	var diff bytes.Buffer
	src := filepath.Join(tree, "src")
	for _, p := range touched {
		a, bb := filepath.Join(pristine, p), filepath.Join(src, p)
		if _, err := os.Stat(a); err != nil {
			a = "/dev/null"
		}
		if _, err := os.Stat(bb); err != nil {
			bb = "/dev/null"
		}
		d, _ := exec.Command("diff", "-u", "--label", "a/"+p, "--label", "b/"+p, a, bb).Output()
		diff.Write(d)
	}
	if err := os.WriteFile(filepath.Join(tmp, "applied.patch"), diff.Bytes(), 0o644); err != nil {
		return nil, err
	}

	b.durations["total"] = time.Since(b.t0).Seconds()
	m := Metadata{
		Schema: 1, Key: key, Name: b.spec.Name, Arch: b.spec.Arch, KernelVersion: b.version.String(),
		Source: map[string]string{"kind": b.src.Kind, "id": b.src.ID},
		Base:   b.spec.Base, Toolchain: b.toolchain, Durations: b.durations, Compiled: compiled,
		CmdlineParams: b.params, Warnings: b.warnings, Built: time.Now().UTC(),
		Host:          map[string]string{"goos": runtime.GOOS, "goarch": runtime.GOARCH, "jobs": fmt.Sprint(b.spec.Jobs), "ccache": fmt.Sprint(b.ccache != "")},
		ConfigOptions: b.optionLines(),
		Artifacts:     map[string]string{},
	}
	for k, v := range b.src.Info {
		m.Source[k] = v
	}
	for _, f := range b.frags {
		m.Fragments = append(m.Fragments, FileRef{File: f.File, SHA256: hash(string(f.Raw))})
	}
	for _, p := range b.patches {
		m.Patches = append(m.Patches, FileRef{File: p.Source, Subject: p.Subject, SHA256: hash(string(p.Text))})
	}
	for i, p := range b.probes {
		var site probe.Site
		if i < len(b.sites) {
			site = b.sites[i]
		}
		m.Probes = append(m.Probes, ProbeRef{Name: p.Name, File: p.Path, Param: p.Param(), Default: p.DelayUS,
			Site: fmt.Sprintf("%s:%d", site.File, site.Line), Function: site.Function})
	}
	for _, f := range b.applied {
		m.CompatFixes = append(m.CompatFixes, FixRef{Name: f.Name, File: f.File, Why: f.Why})
	}
	for _, to := range copies {
		m.Artifacts[to] = to
	}
	m.Artifacts["applied.patch"] = "applied.patch"
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "metadata.json"), data, 0o644); err != nil {
		return nil, err
	}
	os.RemoveAll(out)
	if err := os.Rename(tmp, out); err != nil {
		return nil, err
	}
	return b.result(out, key, compiled), nil
}
