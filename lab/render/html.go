package render

import (
	"embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
)

//go:embed report.html.tmpl
var htmlFS embed.FS

var htmlTmpl = template.Must(template.New("report.html.tmpl").Funcs(template.FuncMap{
	"sig":   sig,
	"pct":   pct,
	"lower": strings.ToLower,
	// safeCSS passes colours this package computed (never user text) into style="".
	"safeCSS": func(s string) template.CSS { return template.CSS(s) },
}).ParseFS(htmlFS, "report.html.tmpl"))

// heatRow is one row of the heat-map: the cells sharing every axis but arch and probe.
type heatRow struct {
	Label string
	Cells []*heatCell
}

type heatCell struct {
	Cell  *Cell // nil where the combination is excluded
	Color string
	Text  string
	Title string
}

type htmlData struct {
	*Report
	Columns  []string
	Rows     []heatRow
	Fixed    string
	Fixes    []FixVerdict
	Plots    map[string]template.HTML
	MaxTTC   float64
	Failures []*Cell
}

// HTML writes one self-contained page: no scripts, no external resources; console and
// crash text go through html/template's escaping, so a console line holding markup is
// shown as text.
func HTML(w io.Writer, r *Report) error {
	d := htmlData{Report: r, Fixes: r.Fixes, Plots: map[string]template.HTML{}}
	// Columns: arch × probe (what a maintainer compares side by side); rows: the rest.
	var arches, probes []string
	rowAxes := []string{}
	for _, a := range r.Axes {
		switch a.Name {
		case "arch":
			arches = a.Values
		case "probe":
			probes = a.Values
		default:
			if len(a.Values) > 1 {
				rowAxes = append(rowAxes, a.Name)
			}
		}
	}
	var fixed []string
	for _, a := range r.Axes {
		if len(a.Values) == 1 && a.Name != "arch" && a.Name != "probe" {
			fixed = append(fixed, a.Name+" "+a.Values[0])
		}
	}
	d.Fixed = strings.Join(fixed, ", ")
	type colKey struct{ arch, probe string }
	var cols []colKey
	for _, a := range arches {
		for _, p := range probes {
			cols = append(cols, colKey{a, p})
			d.Columns = append(d.Columns, fmt.Sprintf("%s · probe %s µs", a, p))
		}
	}
	rowIdx := map[string]int{}
	for _, c := range r.Cells {
		var parts []string
		for _, ax := range rowAxes {
			parts = append(parts, ax+" "+c.AxisValue(ax))
		}
		label := strings.Join(parts, " · ")
		if label == "" {
			label = c.Kernel
		}
		i, ok := rowIdx[label]
		if !ok {
			i = len(d.Rows)
			rowIdx[label] = i
			d.Rows = append(d.Rows, heatRow{Label: label, Cells: make([]*heatCell, len(cols))})
		}
		for j, k := range cols {
			if k.arch == c.Arch && k.probe == c.Probe {
				d.Rows[i].Cells[j] = heat(c)
			}
		}
		if c.Stats.TimeToCrash.Max > d.MaxTTC {
			d.MaxTTC = c.Stats.TimeToCrash.Max
		}
		if c.Verdict != Pass {
			d.Failures = append(d.Failures, c)
		}
	}
	for _, row := range d.Rows {
		for j := range row.Cells {
			if row.Cells[j] == nil {
				row.Cells[j] = &heatCell{Color: "#eeeeee", Text: "excluded"}
			}
		}
	}
	for _, c := range r.Cells {
		d.Plots[c.ID] = ttcPlot(c, d.MaxTTC)
	}
	return htmlTmpl.Execute(w, d)
}

// heat colours a cell by the fraction of runs that crashed: green (none) through yellow
// to red (all); grey when no run said anything.
func heat(c *Cell) *heatCell {
	h := &heatCell{Cell: c}
	f := c.Fraction()
	if math.IsNaN(f) {
		h.Color, h.Text = "#bdbdbd", "no data"
	} else {
		hue := 120 * (1 - f)
		h.Color = fmt.Sprintf("hsl(%.0f, 70%%, 55%%)", hue)
		h.Text = fmt.Sprintf("%d/%d crashed", c.Stats.Crashes+c.Stats.Hangs, c.Stats.Valid())
	}
	h.Title = c.ID + ": " + c.Reason + "; rate/h " + c.RateText()
	return h
}

// ttcPlot draws each crashed run's time to crash as a dot on a shared linear axis
// (0…the matrix's longest), with the median as a bar, as inline SVG.
func ttcPlot(c *Cell, max float64) template.HTML {
	const w, h, left, right = 360.0, 44.0, 10.0, 10.0
	t := c.Stats.TimeToCrash
	if t.N == 0 || max <= 0 {
		return ""
	}
	x := func(v float64) float64 { return left + (w-left-right)*v/max }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="ttc" xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img" aria-label="time to crash">`, w, h, w, h)
	fmt.Fprintf(&b, `<line x1="%.1f" y1="22" x2="%.1f" y2="22" stroke="#999"/>`, x(0), x(max))
	fmt.Fprintf(&b, `<rect x="%.1f" y="14" width="%.1f" height="16" fill="#fdd" stroke="none"/>`, x(t.Q1), math.Max(1, x(t.Q3)-x(t.Q1)))
	for _, v := range t.Values {
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="22" r="4" fill="#c62828" fill-opacity="0.7"><title>%.1f s</title></circle>`, x(v), v)
	}
	fmt.Fprintf(&b, `<line x1="%.1f" y1="10" x2="%.1f" y2="34" stroke="#000" stroke-width="2"/>`, x(t.Median), x(t.Median))
	fmt.Fprintf(&b, `<text x="%.1f" y="43" font-size="9">0</text><text x="%.1f" y="43" font-size="9" text-anchor="end">%s s</text>`, x(0), x(max), sig(max))
	b.WriteString(`</svg>`)
	// Only numbers we formatted go into this markup.
	return template.HTML(b.String())
}
