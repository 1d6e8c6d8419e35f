// Package stats summarizes per-round benchmark ratios: median and range, so that a report shows
// how much a figure moved between rounds on a shared machine.
package stats

import (
	"fmt"
	"sort"
)

// Median of v (the mean of the two middle values for an even count). v must not be empty.
func Median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Range returns the smallest and largest of v. v must not be empty.
func Range(v []float64) (lo, hi float64) {
	lo, hi = v[0], v[0]
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}

func min(a, b float64) float64 {
	if a < b {
		return a
	}
	return b
}

func max(a, b float64) float64 {
	if a > b {
		return a
	}
	return b
}

// Summary formats "median F (range F to F over N rounds)" with the value format F, e.g. "%.2fx".
func Summary(v []float64, format string) string {
	lo, hi := Range(v)
	return fmt.Sprintf("median "+format+" (range "+format+" to "+format+" over %d rounds)", Median(v), lo, hi, len(v))
}
