package console

import (
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// dashboardWeeks is how many weeks the dashboard's charts cover.
const dashboardWeeks = 8

// barChart is a server-rendered SVG bar chart: the template draws each bar and label from
// these numbers, so the page needs no script and no outside library (and the values pass
// through the template's escaping like any other).
type barChart struct {
	Title, Unit   string
	Width, Height int
	Base          int // y of the baseline
	Bars          []chartBar
	Empty         bool
}

// chartBar is one bar: its box, its label under the baseline and its value above it.
type chartBar struct {
	X, Y, W, H int
	LabelX     int
	Label      string
	Value      string
	Class      string
}

// newBarChart lays out values (at most one per label) in a fixed viewBox.
func newBarChart(title, unit string, labels []string, values []float64, texts []string, class string) barChart {
	const width, height, top, bottom, gap = 640, 240, 24, 40, 12
	ch := barChart{Title: title, Unit: unit, Width: width, Height: height, Base: height - bottom, Empty: true}
	maxV := 0.0
	for _, v := range values {
		maxV = max(maxV, v)
	}
	n := len(values)
	if n == 0 {
		return ch
	}
	slot := width / n
	for i, v := range values {
		h := 0
		if maxV > 0 {
			h = int(v / maxV * float64(height-top-bottom))
			ch.Empty = false
		}
		x := i*slot + gap/2
		ch.Bars = append(ch.Bars, chartBar{X: x, Y: ch.Base - h, W: slot - gap, H: h, LabelX: x + (slot-gap)/2,
			Label: labels[i], Value: texts[i], Class: class})
	}
	return ch
}

// hours formats a duration for a bar's value: "31.5 h".
func hours(d time.Duration) string {
	if d == 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f h", d.Hours())
}

// dashboardCharts turns the domain's figures into the three charts.
func dashboardCharts(st recovery.DashboardStats) []barChart {
	var labels, stateTexts []string
	var states []float64
	for _, sc := range st.OpenByState {
		labels = append(labels, string(sc.State))
		states = append(states, float64(sc.Count))
		stateTexts = append(stateTexts, fmt.Sprint(sc.Count))
	}
	var weeks, medTexts, vetoTexts, rejTexts []string
	var med, vetoes, rejections []float64
	for _, w := range st.Weeks {
		weeks = append(weeks, w.Start.Format("Jan 2"))
		med = append(med, w.MedianRecovery.Hours())
		medTexts = append(medTexts, hours(w.MedianRecovery))
		vetoes = append(vetoes, float64(w.Vetoes))
		vetoTexts = append(vetoTexts, fmt.Sprint(w.Vetoes))
		rejections = append(rejections, float64(w.Rejections))
		rejTexts = append(rejTexts, fmt.Sprint(w.Rejections))
	}
	for i := range labels {
		labels[i] = humanizeState(labels[i])
	}
	return []barChart{
		newBarChart("Open tickets by state", "tickets", labels, states, stateTexts, "bar-state"),
		newBarChart("Median time to recover per week (opened → re-enrolled)", "hours", weeks, med, medTexts, "bar-time"),
		newBarChart("Vetoes per week", "vetoes", weeks, vetoes, vetoTexts, "bar-veto"),
		newBarChart("Rejections and denials per week", "tickets", weeks, rejections, rejTexts, "bar-reject"),
	}
}

func humanizeState(s string) string {
	out := []rune(s)
	for i, r := range out {
		if r == '_' {
			out[i] = ' '
		}
	}
	return string(out)
}

// dashboardPage shows the desk's figures as SVG charts, with the numbers in a table too.
func (s *server) dashboardPage() gin.HandlerFunc {
	return func(c *gin.Context) {
		st, err := s.svc.Dashboard(c.Request.Context(), dashboardWeeks)
		if err != nil {
			s.failPage(c, err)
			return
		}
		s.renderConsole(c, http.StatusOK, "console/admin_dashboard", map[string]any{"Stats": st, "Charts": dashboardCharts(st)})
	}
}
