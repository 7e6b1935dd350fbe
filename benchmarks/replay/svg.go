package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// chartColors are distinguishable on white, one per strategy.
var chartColors = []string{"#d62728", "#ff7f0e", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#7f7f7f"}

// WriteSVG draws the Redis commands each strategy sent per simulated
// minute as a line chart with a logarithmic y axis, in plain SVG.
func WriteSVG(w io.Writer, results []*Result, title string) error {
	const (
		width, height         = 1000, 480
		left, right, top, bot = 80, 290, 50, 60
		plotW, plotH          = width - left - right, height - top - bot
	)
	minutes, peak := 0, int64(1)
	for _, r := range results {
		minutes = max(minutes, len(r.PerMinute))
		for _, v := range r.PerMinute {
			peak = max(peak, v)
		}
	}
	minutes = max(minutes, 1)
	decades := int(math.Ceil(math.Log10(float64(peak))))
	decades = max(decades, 1)
	// y maps a count to a pixel row; zero sits on the axis below 1.
	y := func(v int64) float64 {
		lv := -0.3
		if v > 0 {
			lv = math.Log10(float64(v))
		}
		return top + plotH - (lv+0.3)/(float64(decades)+0.3)*plotH
	}
	x := func(m int) float64 { return left + float64(m)/float64(max(minutes-1, 1))*plotW }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="28" font-size="16" font-weight="bold">%s</text>`+"\n", left, xmlEscape(title))
	// Grid and y labels, one per decade.
	for d := 0; d <= decades; d++ {
		v := int64(math.Pow(10, float64(d)))
		yy := y(v)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, yy, left+plotW, yy)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-8, yy+4, groupInt(v))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">0</text>`+"\n", left-8, y(0)+4)
	// X labels every 30 simulated minutes (or fewer for short runs).
	step := 30
	if minutes <= 30 {
		step = 5
	}
	for m := 0; m < minutes; m += step {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/>`+"\n", x(m), top, x(m), top+plotH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%d</text>`+"\n", x(m), top+plotH+18, m)
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#888"/>`+"\n", left, top, plotW, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">simulated minute</text>`+"\n", left+plotW/2, height-15)
	fmt.Fprintf(&b, `<text transform="translate(18 %d) rotate(-90)" text-anchor="middle">Redis commands per minute (log scale)</text>`+"\n", top+plotH/2)
	for i, r := range results {
		color := chartColors[i%len(chartColors)]
		var pts strings.Builder
		for m, v := range r.PerMinute {
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(m), y(v))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", color, strings.TrimSpace(pts.String()))
		if len(r.PerMinute) > 0 && len(r.PerMinute) < 3 { // too short to see as a line
			last := len(r.PerMinute) - 1
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="4" fill="%s"/>`+"\n", x(last), y(r.PerMinute[last]), color)
		}
		ly := top + 10 + i*36
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", left+plotW+14, ly, left+plotW+34, ly, color)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", left+plotW+40, ly+4, xmlEscape(r.Spec.Name))
		sub := fmtRatio(r.CommandsPerRequest()) + " commands/request"
		if r.Duration < time.Duration(minutes)*time.Minute {
			sub += ", first " + fmtSpan(r.Duration)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555">%s</text>`+"\n", left+plotW+40, ly+19, xmlEscape(sub))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
