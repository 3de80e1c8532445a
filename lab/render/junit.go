package render

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// JUnit XML as Jenkins, GitLab and GitHub test reporters read it: one testsuite per
// matrix, one testcase per cell. A cell that crashed (or hung) where no crash was expected,
// or stayed clean where one was, is a <failure>; a cell with no run that reached the
// kernel is an <error>; a cell with runs still to do is <skipped>.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     secs         `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Errors    int         `xml:"errors,attr"`
	Skipped   int         `xml:"skipped,attr"`
	Time      secs        `xml:"time,attr"`
	Timestamp string      `xml:"timestamp,attr"`
	Props     []junitProp `xml:"properties>property"`
	Cases     []junitCase `xml:"testcase"`
}

type junitProp struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      secs          `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	Skipped   *junitProblem `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// JUnit writes the report as JUnit XML.
func JUnit(w io.Writer, r *Report) error {
	suite := junitSuite{Name: "reprolab.matrix." + r.Matrix, Timestamp: r.Generated.Format("2006-01-02T15:04:05")}
	suite.Props = append(suite.Props, junitProp{"spec", r.SpecPath})
	for _, a := range r.Axes {
		suite.Props = append(suite.Props, junitProp{"axis." + a.Name, strings.Join(a.Values, ",")})
	}
	for _, c := range r.Cells {
		tc := junitCase{Name: c.ID, Classname: "reprolab.matrix." + r.Matrix}
		var out strings.Builder
		fmt.Fprintf(&out, "expect %s; %d/%d runs, %d crashed, %d hung, %d infra errors; rate/h %s; time to crash %s\n",
			c.ExpectText(), c.Stats.Runs, c.PlannedRuns, c.Stats.Crashes, c.Stats.Hangs, c.Stats.InfraErrors, c.RateText(), c.TTCText())
		for _, run := range c.Runs {
			tc.Time += secs(run.WallSeconds)
			fmt.Fprintf(&out, "%s: %s", run.ID, run.Outcome)
			if len(run.Crashes) > 0 {
				fmt.Fprintf(&out, ": %s (%s/%s)", run.Crashes[0].Title, run.Dir, run.Crashes[0].ReportPath)
			}
			if run.Error != "" {
				fmt.Fprintf(&out, ": %s", firstLine(run.Error))
			}
			fmt.Fprintf(&out, " [%s/console.log]\n", run.Dir)
		}
		tc.SystemOut = xmlSafe(out.String())
		detail := ""
		for _, run := range c.Runs {
			if rep := c.Reports[run.ID]; rep != "" {
				detail = run.ID + ":\n" + rep
				break
			}
		}
		switch c.Verdict {
		case Fail:
			tc.Failure = &junitProblem{Message: c.Reason, Type: "unexpected", Text: xmlSafe(detail)}
			suite.Failures++
		case Error:
			tc.Error = &junitProblem{Message: c.Reason, Type: "infrastructure"}
			suite.Errors++
		case Incomplete:
			tc.Skipped = &junitProblem{Message: c.Reason}
			suite.Skipped++
		}
		suite.Tests++
		suite.Time += tc.Time
		suite.Cases = append(suite.Cases, tc)
	}
	doc := junitSuites{Name: "reprolab", Tests: suite.Tests, Failures: suite.Failures, Errors: suite.Errors, Skipped: suite.Skipped, Time: suite.Time, Suites: []junitSuite{suite}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// xmlSafe drops characters XML 1.0 cannot carry at all (console logs have raw control
// bytes); encoding/xml escapes the rest.
func xmlSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || r >= 0x10000 {
			return r
		}
		return -1
	}, s)
}

// secs is a duration in seconds as JUnit readers parse it: a plain decimal, never the
// exponent form encoding/xml would give a float64.
type secs float64

func (s secs) MarshalXMLAttr(name xml.Name) (xml.Attr, error) {
	return xml.Attr{Name: name, Value: fmt.Sprintf("%.3f", float64(s))}, nil
}
