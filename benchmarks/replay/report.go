package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/floodgate-go/floodgate/internal/redisstats"
)

// Table renders rows of cells as an aligned text table, or as Markdown.
type Table struct {
	Header []string
	Rows   [][]string
	// Right marks the columns to align right (numbers).
	Right []bool
}

// WriteText writes t as aligned plain text.
func (t *Table) WriteText(w io.Writer) error {
	width := make([]int, len(t.Header))
	for i, h := range t.Header {
		width[i] = len([]rune(h))
	}
	for _, r := range t.Rows {
		for i, c := range r {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	line := func(cells []string) string {
		var b strings.Builder
		for i, c := range cells {
			pad := strings.Repeat(" ", width[i]-len([]rune(c)))
			if i > 0 {
				b.WriteString("  ")
			}
			if i < len(t.Right) && t.Right[i] {
				b.WriteString(pad + c)
			} else {
				b.WriteString(c + pad)
			}
		}
		return strings.TrimRight(b.String(), " ") + "\n"
	}
	var b strings.Builder
	b.WriteString(line(t.Header))
	sep := make([]string, len(width))
	for i, n := range width {
		sep[i] = strings.Repeat("-", n)
	}
	b.WriteString(line(sep))
	for _, r := range t.Rows {
		b.WriteString(line(r))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteMarkdown writes t as a Markdown table.
func (t *Table) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("| " + strings.Join(t.Header, " | ") + " |\n|")
	for i := range t.Header {
		if i < len(t.Right) && t.Right[i] {
			b.WriteString(" ---: |")
		} else {
			b.WriteString(" --- |")
		}
	}
	b.WriteString("\n")
	for _, r := range t.Rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// SummaryTable is the replay's main table: cost, accuracy and latency per
// strategy.
func SummaryTable(results []*Result, price float64) *Table {
	t := &Table{
		Header: []string{"strategy", "replayed", "commands/hour", "commands/request", fmt.Sprintf("cost/day at $%.2f/10k", price),
			"over the limit", "wrongly denied", "p50 decision", "p99 decision"},
		Right: []bool{false, true, true, true, true, true, true, true, true},
	}
	for _, r := range results {
		t.Rows = append(t.Rows, []string{
			r.Spec.Name,
			fmtSpan(r.Duration),
			groupInt(int64(math.Round(r.CommandsPerHour()))),
			fmtRatio(r.CommandsPerRequest()),
			"$" + groupFloat(r.CostPerDay(price)),
			countShare(r.Exact.OverLimit, r.Requests),
			countShare(r.Exact.WronglyDenied, r.Requests),
			fmtDuration(r.Latency.Quantile(0.50)),
			fmtDuration(r.Latency.Quantile(0.99)),
		})
	}
	return t
}

// CountTable compares the commands the clients sent (go-redis hook) with
// those the server executed.
func CountTable(results []*Result) *Table {
	t := &Table{
		Header: []string{"strategy", "sent (hook)", "round trips", "server, same commands", "difference", "server, incl. in scripts", "sent, by command"},
		Right:  []bool{false, true, true, true, true, true, false},
	}
	for _, r := range results {
		server, diff, all := "n/a", "n/a", "n/a"
		if r.ServerCmds != nil {
			s := r.ServerSent()
			server = groupInt(s)
			diff = fmtPercent(r.Commands, s)
			all = groupInt(redisstats.Total(r.ServerCmds))
		}
		t.Rows = append(t.Rows, []string{r.Spec.Name, groupInt(r.Commands), groupInt(r.RoundTrips), server, diff, all, formatCounts(r.ClientCmds)})
	}
	return t
}

// AccuracyTable gives the exact model's view of each strategy.
func AccuracyTable(results []*Result) *Table {
	t := &Table{
		Header: []string{"strategy", "requests", "admitted", "denied", "over the limit", "wrongly denied", "most admitted in a tenant-minute", "replay wall time"},
		Right:  []bool{false, true, true, true, true, true, true, true},
	}
	for _, r := range results {
		e := r.Exact
		t.Rows = append(t.Rows, []string{r.Spec.Name, groupInt(r.Requests), groupInt(e.Admitted), groupInt(e.Denied),
			groupInt(e.OverLimit), groupInt(e.WronglyDenied), groupInt(e.MaxMinute), fmtDuration(r.Wall)})
	}
	return t
}

// countShare formats n and its share of total: "1,234 (0.56 %)".
func countShare(n, total int64) string {
	if n == 0 || total == 0 {
		return groupInt(n)
	}
	pct := 100 * float64(n) / float64(total)
	prec := 2
	if pct >= 10 {
		prec = 1
	}
	return groupInt(n) + " (" + strconv.FormatFloat(pct, 'f', prec, 64) + " %)"
}

// fmtSpan formats a simulated span: "3 h", "30 min", "1 h 30 min", "45 s".
func fmtSpan(d time.Duration) string {
	h, m := int64(d/time.Hour), int64(d%time.Hour/time.Minute)
	switch {
	case d%time.Minute != 0:
		return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + " s"
	case h > 0 && m > 0:
		return strconv.FormatInt(h, 10) + " h " + strconv.FormatInt(m, 10) + " min"
	case h > 0:
		return strconv.FormatInt(h, 10) + " h"
	}
	return strconv.FormatInt(m, 10) + " min"
}

func fmtPercent(want, got int64) string {
	if want == 0 {
		if got == 0 {
			return "0 %"
		}
		return "∞"
	}
	return strconv.FormatFloat(100*float64(got-want)/float64(want), 'f', 2, 64) + " %"
}

func fmtRatio(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'f', 4, 64)
	}
}

func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return strconv.FormatInt(int64(d), 10) + " ns"
	case d < time.Millisecond:
		return strconv.FormatFloat(float64(d)/1e3, 'f', 1, 64) + " µs"
	case d < time.Second:
		return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) + " ms"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s"
}

// groupInt formats n with thousands separators: 1,234,567.
func groupInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// groupFloat formats v with two decimals and thousands separators.
func groupFloat(v float64) string {
	whole := math.Floor(v)
	cents := int64(math.Round((v - whole) * 100))
	if cents == 100 {
		whole, cents = whole+1, 0
	}
	return groupInt(int64(whole)) + "." + fmt.Sprintf("%02d", cents)
}

// formatCounts renders counts as "evalsha 12, incr 3", largest first.
func formatCounts(m map[string]int64) string {
	type kv struct {
		k string
		v int64
	}
	var s []kv
	for k, v := range m {
		s = append(s, kv{k, v})
	}
	sort.Slice(s, func(i, j int) bool {
		if s[i].v != s[j].v {
			return s[i].v > s[j].v
		}
		return s[i].k < s[j].k
	})
	parts := make([]string, len(s))
	for i, e := range s {
		parts[i] = e.k + " " + strconv.FormatInt(e.v, 10)
	}
	return strings.Join(parts, ", ")
}
