package console_test

import (
	"context"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/console"
	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
)

// EnvBenchSeed enables BenchmarkConsolePages: "1" seeds desks of 1,000 and 100,000 tickets
// (10 audit events a ticket; about a minute in all), a comma list of ticket counts seeds those.
const EnvBenchSeed = "RECOVERYDESK_BENCH_SEED"

// EnvBenchDir keeps the seeded databases (bench-<tickets>.db) in a directory for inspection,
// e.g. with sqlite3 and EXPLAIN QUERY PLAN; by default they go to a temporary directory.
const EnvBenchDir = "RECOVERYDESK_BENCH_DIR"

// BenchmarkConsolePages measures the server-side time of the console's heaviest reads (issue
// 4, Performance): the queue's first page, its 50th page (reached by following the keyset
// "Next page" links 49 times), a ticket page and the audit log page, each requested as a
// signed-in supervisor straight through the handler's ServeHTTP (no network), on SQLite
// desks of 1,000 and of 100,000 tickets (10 audit events a ticket). It reports p50 and p95
// of the per-request times in ms; the goal is p95 ≤ 30 ms for every page at 100,000 tickets
// and a queue p50 at 100,000 tickets within 1.5× of the one at 1,000, which it logs. The
// audit page's first request walks the whole chain for its verify status (cached for a
// minute); that walk is timed apart as verify-ms.
//
//	RECOVERYDESK_BENCH_SEED=1 go test -run '^$' -bench ConsolePages -benchtime 200x ./console/
func BenchmarkConsolePages(b *testing.B) {
	if os.Getenv(EnvBenchSeed) == "" {
		b.Skipf("set %s=1 to seed 100,000 tickets and 1,000,000 audit events and run this benchmark", EnvBenchSeed)
	}
	queueP50 := map[int]float64{}
	sizes := []int{1000, 100000}
	if v := os.Getenv(EnvBenchSeed); v != "1" {
		// A comma list of desk sizes, e.g. 100000 or 1000,10000,100000.
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				b.Fatalf("%s: want 1 or a comma list of ticket counts, got %q", EnvBenchSeed, v)
			}
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("tickets=%d", n), func(b *testing.B) {
			d := newBenchDesk(b, n)
			pages := []struct {
				name, path string
			}{
				{"queue-page1", "/console"},
				{"queue-page50", d.queuePage(b, 50)},
				{"ticket", "/console/tickets/" + d.ticketID},
				{"audit", "/console/audit"},
			}
			for _, p := range pages {
				if p.path == "" {
					continue // fewer than 50 pages in the small desk
				}
				b.Run(p.name, func(b *testing.B) {
					first := d.get(b, p.path).took // for the audit page: the chain walk
					d.get(b, p.path)               // warm the statement cache
					var took []time.Duration
					for b.Loop() {
						took = append(took, d.get(b, p.path).took)
					}
					p50, p95 := percentile(took, 50), percentile(took, 95)
					b.ReportMetric(ms(p50), "p50-ms")
					b.ReportMetric(ms(p95), "p95-ms")
					if p.name == "audit" {
						b.ReportMetric(ms(first), "verify-ms")
					}
					if p.name == "queue-page1" {
						queueP50[n] = ms(p50)
					}
				})
			}
		})
	}
	if small, big := queueP50[1000], queueP50[100000]; small > 0 && big > 0 {
		b.Logf("queue page 1 p50: %.3f ms at 1,000 tickets, %.3f ms at 100,000: ratio %.2f (goal ≤ 1.5)", small, big, big/small)
	}
}

// benchDesk is a seeded database behind the real console handler, with a signed-in supervisor.
type benchDesk struct {
	h        http.Handler
	cookie   *http.Cookie
	ticketID string // an active ticket with a full page (checklist, thread, timeline)
}

func newBenchDesk(b *testing.B, n int) *benchDesk {
	b.Helper()
	dir := os.Getenv(EnvBenchDir)
	if dir == "" {
		dir = b.TempDir()
	}
	path := filepath.Join(dir, fmt.Sprintf("bench-%d.db", n))
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(path + suffix) // a desk kept from an earlier run
	}
	took := seedBench(b, path, n)
	b.Logf("seeded %d tickets and %d audit events in %s", n, n*benchEventsPerTicket, took.Round(time.Millisecond))
	b.Logf("query plans:\n%s", explainQueue(b, path))
	ctx := context.Background()
	s, err := sqlstore.Open(ctx, path, sqlstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	now := func() time.Time { return benchNow }
	svc, err := recovery.New(s, recovery.Options{Now: now, Keys: testKeyring(b), Issuer: "RecoveryDesk", BaseURL: "http://127.0.0.1:8080"})
	if err != nil {
		b.Fatal(err)
	}
	h, err := console.New(console.Options{Service: svc, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), BaseURL: "http://127.0.0.1:8080"})
	if err != nil {
		b.Fatal(err)
	}
	// A supervisor made through the domain (setup link, password, TOTP) with a verified session.
	sys := recovery.Actor{Type: recovery.ActorSystem, ID: "bench"}
	a, link, err := svc.CreateAgent(ctx, sys, "sup@bench.example", "Bench Supervisor", recovery.RoleSupervisor)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := svc.CompleteSetup(ctx, tokenOf(link), agentPassword); err != nil {
		b.Fatal(err)
	}
	actor := recovery.Actor{Type: recovery.ActorAgent, ID: a.ID}
	en, err := svc.AgentBeginEnrollment(ctx, actor, a.ID)
	if err != nil {
		b.Fatal(err)
	}
	token, _, err := svc.StartAgentSession(ctx, actor, a.Email, agentPassword, "")
	if err != nil {
		b.Fatal(err)
	}
	code, err := recovery.CodeAt(en.Secret, recovery.Step(benchNow))
	if err != nil {
		b.Fatal(err)
	}
	if token, err = svc.ConfirmAgentSessionEnrollment(ctx, actor, token, code); err != nil {
		b.Fatal(err)
	}
	d := &benchDesk{h: h, cookie: &http.Cookie{Name: "rd_console", Value: token}}
	// The newest pending-approval ticket in the middle of the history: its page shows the
	// approve form, the checklist and a timeline of 10 events.
	for i := n / 2; ; i++ {
		if st, _ := benchState(i); st == recovery.TicketPendingApproval {
			d.ticketID = benchTicketID(i)
			break
		}
	}
	return d
}

type benchAnswer struct {
	body string
	took time.Duration
}

// get runs one GET through the handler and fails unless it answers 200.
func (d *benchDesk) get(b *testing.B, path string) benchAnswer {
	b.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.AddCookie(d.cookie)
	w := httptest.NewRecorder()
	start := time.Now()
	d.h.ServeHTTP(w, r)
	took := time.Since(start)
	if w.Code != http.StatusOK {
		b.Fatalf("GET %s: %d %s", path, w.Code, w.Body.String())
	}
	return benchAnswer{body: w.Body.String(), took: took}
}

var (
	nextPageRE = regexp.MustCompile(`<a href="([^"]+)" id="next-page">`)
	queueRowRE = regexp.MustCompile(`<td><a href="/console/tickets/(RD-[A-Z2-7]{10})">`)
)

// queuePage follows the queue's "Next page" links from the first page and returns the path of
// page number (1-based), or "" when the queue has fewer pages. Every page must hold 25 tickets
// none of which an earlier page showed, newest first.
func (d *benchDesk) queuePage(b *testing.B, number int) string {
	b.Helper()
	path, seen := "/console", map[string]bool{}
	for page := 1; ; page++ {
		body := d.get(b, path).body
		ids := queueRowRE.FindAllStringSubmatch(body, -1)
		for _, m := range ids {
			if seen[m[1]] {
				b.Fatalf("queue page %d repeats %s", page, m[1])
			}
			seen[m[1]] = true
		}
		m := nextPageRE.FindStringSubmatch(body)
		if m == nil && page < number {
			return "" // the last page
		}
		if len(ids) != 25 {
			b.Fatalf("queue page %d has %d tickets", page, len(ids))
		}
		if page == number {
			return path
		}
		path = html.UnescapeString(m[1])
		if !strings.Contains(path, "after=") {
			b.Fatalf("next-page link without a cursor: %s", path)
		}
	}
}

func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p+99)/100 - 1
	return s[max(i, 0)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
