package render

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed schema/kcidb.v5.schema.json schema/junit.xsd
var schemaFS embed.FS

// CheckKCIDB checks a KCIDB document against the KCIDB v5 JSON schema (formats
// asserted, so a malformed URL or timestamp fails too).
func CheckKCIDB(data []byte) error {
	raw, err := schemaFS.ReadFile("schema/kcidb.v5.schema.json")
	if err != nil {
		return err
	}
	sdoc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("kcidb schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("kcidb.v5.schema.json", sdoc); err != nil {
		return err
	}
	sch, err := c.Compile("kcidb.v5.schema.json")
	if err != nil {
		return fmt.Errorf("kcidb schema: %w", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("kcidb document is not JSON: %w", err)
	}
	if err := sch.Validate(inst); err != nil {
		return fmt.Errorf("kcidb document does not match KCIDB v5: %w", err)
	}
	return nil
}

// CheckJUnit checks a JUnit XML file against reprolab's JUnit XSD with xmllint
// (Debian libxml2-utils), the reference XSD validator.
func CheckJUnit(path string) error {
	bin, err := exec.LookPath("xmllint")
	if err != nil {
		return errors.New("validating JUnit XML needs xmllint: apt-get install libxml2-utils")
	}
	xsd, err := schemaFS.ReadFile("schema/junit.xsd")
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "reprolab-xsd-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	xsdPath := filepath.Join(dir, "junit.xsd")
	if err := os.WriteFile(xsdPath, xsd, 0o644); err != nil {
		return err
	}
	out, err := exec.Command(bin, "--noout", "--nonet", "--schema", xsdPath, path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s does not match the JUnit schema: %s", path, strings.TrimSpace(string(out)))
	}
	return nil
}

// Check is one report file checked against its schema.
type Check struct {
	File, Schema string
	Err          error
}

// CheckReports checks the machine-readable reports present in dir (junit.xml against
// the JUnit XSD, kcidb.json against KCIDB v5); absent files are not checked.
func CheckReports(dir string) []Check {
	var out []Check
	if p := filepath.Join(dir, "junit.xml"); exists(p) {
		out = append(out, Check{File: "junit.xml", Schema: "JUnit", Err: CheckJUnit(p)})
	}
	if p := filepath.Join(dir, "kcidb.json"); exists(p) {
		data, err := os.ReadFile(p)
		if err == nil {
			err = CheckKCIDB(data)
		}
		out = append(out, Check{File: "kcidb.json", Schema: "KCIDB v5", Err: err})
	}
	return out
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
