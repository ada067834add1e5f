package costreport

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The charts' geometry: SVG user units, which a viewBox scales to the page
// (760 wide fits A4 at its margins). Floats place things; every number a
// chart shows is a Money's text, never a float's.
const (
	chartW  = 760.0
	rowH    = 32.0 // a bar of a horizontal chart, with two lines of label
	fontPx  = 11.0
	charPx  = 6.4 // an average character at fontPx, for fitting labels
	labelPx = 250.0
)

// Okabe and Ito's palette, which readers with any common colour vision
// deficiency tell apart; each service also gets a pattern of its own, and
// every bar a label or a legend entry, so colour is never the only cue.
var palette = []string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"}

// marks are the patterns laid over a fill: index i gets mark i%len(marks)
// and colour i%len(palette), a pair of its own for the first 24.
var marks = []string{"solid", "diagonal", "dots", "horizontal", "crosshatch", "vertical"}

// pattern is one SVG <pattern>: a fill colour and a mark over it.
type pattern struct {
	ID, Fill, Mark, Ink string // Ink: the mark's and a label's colour on Fill
	Rotate              bool
}

func newPattern(id string, i int) pattern {
	fill := palette[i%len(palette)]
	mark := marks[i%len(marks)]
	return pattern{ID: id, Fill: fill, Mark: mark, Ink: ink(fill), Rotate: mark == "diagonal" || mark == "crosshatch"}
}

// ink is black on a light colour, white on a dark one.
func ink(hex string) string {
	r, _ := strconv.ParseUint(hex[1:3], 16, 8)
	g, _ := strconv.ParseUint(hex[3:5], 16, 8)
	b, _ := strconv.ParseUint(hex[5:7], 16, 8)
	if 0.299*float64(r)+0.587*float64(g)+0.114*float64(b) > 150 {
		return "#000000"
	}
	return "#FFFFFF"
}

// scale maps values to positions, linearly; lo..hi always holds 0.
type scale struct {
	lo, hi   float64 // values
	from, to float64 // positions
	ticks    []float64
}

// newScale covers lo..hi (and 0) with round ticks.
func newScale(lo, hi, from, to float64) scale {
	lo, hi = math.Min(lo, 0), math.Max(hi, 0)
	if hi == lo {
		hi = lo + 1
	}
	step := niceStep((hi - lo) / 5)
	// The top is a round tick; the bottom is the lowest value, a little
	// below, so that a small credit does not take a whole tick of room.
	s := scale{lo: lo, hi: math.Ceil(hi/step) * step, from: from, to: to}
	if lo < 0 {
		s.lo -= (hi - lo) * 0.03
	}
	for v := math.Ceil(s.lo/step) * step; v <= s.hi+step/2; v += step {
		s.ticks = append(s.ticks, math.Round(v/step)*step)
	}
	return s
}

// niceStep is the smallest of 1, 2, 2.5 or 5 times a power of ten that is at
// least x.
func niceStep(x float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= x {
			return m * p
		}
	}
	return 10 * p
}

func (s scale) at(v float64) float64 { return s.from + (v-s.lo)/(s.hi-s.lo)*(s.to-s.from) }

// size is the length a value spans from 0.
func (s scale) size(v float64) float64 { return math.Abs(s.at(v) - s.at(0)) }

// compact writes an axis tick: 0, 250k, 1.5M. Ticks are positions, not
// figures of the data.
func compact(v float64) string {
	a := math.Abs(v)
	var s string
	switch {
	case a >= 1e9:
		s = trimFloat(a/1e9) + "B"
	case a >= 1e6:
		s = trimFloat(a/1e6) + "M"
	case a >= 1e3:
		s = trimFloat(a/1e3) + "k"
	default:
		s = trimFloat(a)
	}
	if v < 0 {
		s = "-" + s
	}
	return s
}

func trimFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// fit shortens s to at most width user units of text, with an ellipsis.
func fit(s string, width float64) string {
	n := int(width / charPx)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:max(n-1, 1)])) + "…"
}

// num writes a coordinate.
func num(f float64) string { return strconv.FormatFloat(math.Round(f*10)/10, 'f', -1, 64) }

// textPx is about how wide s is at fontPx.
func textPx(s string) float64 { return float64(utf8.RuneCountInString(s)) * charPx }
