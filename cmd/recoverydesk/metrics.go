package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// gaugeTimeout bounds the database read of one scrape (below Prometheus's default 10 s scrape
// timeout, so a slow database shows as recoverydesk_scrape_database_ok 0, not a failed scrape).
const gaugeTimeout = 5 * time.Second

// requestBuckets are the request-latency histogram's bounds in seconds: fine below 25 ms, where
// the verify path's p99 goal lies, and up to the server's 30 s write timeout.
var requestBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// metrics is serve's Prometheus registry (its own, not the library's global one) and what feeds
// it: it is the domain's recovery.Observer, the bot's OnAPIError, the wrapper that times the
// console's requests, and, once watch has given it the service, the collector that reads the
// tickets and the outbox backlog from the database at each scrape. Every label value comes from
// a fixed set: no account, address, path or code ever becomes a label.
type metrics struct {
	reg   *prometheus.Registry
	token string // RECOVERYDESK_METRICS_TOKEN, "" for loopback clients only
	log   *slog.Logger

	verifications    *prometheus.CounterVec
	throttles        *prometheus.CounterVec
	suspensions      *prometheus.CounterVec
	deliveryFailures *prometheus.CounterVec
	telegramErrors   *prometheus.CounterVec
	requests         *prometheus.HistogramVec
}

// newMetrics builds the registry with the Go runtime and process collectors and the counters,
// each of the usual label combinations present from the start at 0 (so that a rate over them
// works before the first event).
func newMetrics(token string, log *slog.Logger) *metrics {
	m := &metrics{
		reg:   prometheus.NewRegistry(),
		token: token,
		log:   log,
		verifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recoverydesk_verifications_total",
			Help: "Code checks by factor (totp, recovery_code), purpose (verify, step_up, confirm, sign_in, …) and result (ok, wrong, replayed, throttled, suspended, not_enrolled).",
		}, []string{"factor", "purpose", "result"}),
		throttles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recoverydesk_throttles_total",
			Help: "Backoffs and blocks started by failed codes, by scope: totp and recovery_code (one account's counter), ip (the per-address limiter).",
		}, []string{"scope"}),
		suspensions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recoverydesk_suspensions_total",
			Help: "Factors suspended after 20 consecutive failures, by factor (totp, recovery_code).",
		}, []string{"factor"}),
		deliveryFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recoverydesk_outbox_delivery_failures_total",
			Help: "Failed delivery tries of outbox notices by channel (email, telegram, webhook) and outcome (retry, deferred, given_up).",
		}, []string{"channel", "outcome"}),
		telegramErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recoverydesk_telegram_api_errors_total",
			Help: "Failed Telegram Bot API calls by method and code (429, 4xx, 5xx, or network when no answer came).",
		}, []string{"method", "code"}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "recoverydesk_http_request_duration_seconds",
			Help:    "HTTP request latency by route class (api, console, account, telegram, health, static, other), method and status class.",
			Buckets: requestBuckets,
		}, []string{"route", "method", "status"}),
	}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.verifications, m.throttles, m.suspensions, m.deliveryFailures, m.telegramErrors, m.requests)
	for _, r := range []string{recovery.ResultOK, recovery.ResultWrong, recovery.ResultReplayed, recovery.ResultThrottled,
		recovery.ResultSuspended, recovery.ResultNotEnrolled} {
		m.verifications.WithLabelValues(recovery.FactorTOTP, "verify", r)
	}
	for _, s := range []string{recovery.ScopeTOTP, recovery.ScopeRecoveryCode, recovery.ScopeIP} {
		m.throttles.WithLabelValues(s)
	}
	for _, f := range []string{recovery.FactorTOTP, recovery.FactorRecoveryCode} {
		m.suspensions.WithLabelValues(f)
	}
	for _, ch := range []string{recovery.NoticeEmail, recovery.NoticeTelegram, recovery.NoticeWebhook} {
		for _, o := range []string{recovery.DeliveryRetry, recovery.DeliveryDeferred, recovery.DeliveryGivenUp} {
			m.deliveryFailures.WithLabelValues(ch, o)
		}
	}
	return m
}

// The recovery.Observer methods.

func (m *metrics) CodeChecked(factor, purpose, result string) {
	m.verifications.WithLabelValues(factor, purpose, result).Inc()
}
func (m *metrics) ThrottleStarted(scope string) { m.throttles.WithLabelValues(scope).Inc() }
func (m *metrics) Suspended(factor string)      { m.suspensions.WithLabelValues(factor).Inc() }
func (m *metrics) DeliveryFailed(channel, outcome string) {
	m.deliveryFailures.WithLabelValues(channel, outcome).Inc()
}

// telegramError is the bot's OnAPIError. The code is reduced to a class so that an odd answer
// cannot add series.
func (m *metrics) telegramError(method string, code int) {
	class := "network"
	switch {
	case code == http.StatusTooManyRequests:
		class = "429"
	case code >= 400 && code < 500:
		class = "4xx"
	case code >= 500:
		class = "5xx"
	case code != 0:
		class = "other"
	}
	m.telegramErrors.WithLabelValues(method, class).Inc()
}

// watch registers the collector of the levels read from the database through svc at each
// scrape: tickets by state and the outbox's queued notices per channel.
func (m *metrics) watch(svc *recovery.Service) {
	m.reg.MustRegister(&levels{svc: svc, log: m.log,
		tickets: prometheus.NewDesc("recoverydesk_tickets", "Recovery tickets by state (read from the database at scrape time).", []string{"state"}, nil),
		queued:  prometheus.NewDesc("recoverydesk_outbox_queued", "Outbox notices waiting for delivery (a first try or a retry), by channel.", []string{"channel"}, nil),
		oldest: prometheus.NewDesc("recoverydesk_outbox_oldest_queued_age_seconds",
			"Age of the oldest queued outbox notice by channel; 0 when none waits.", []string{"channel"}, nil),
		ok: prometheus.NewDesc("recoverydesk_scrape_database_ok",
			"1 when this scrape read the tickets and the outbox from the database, 0 when the read failed (those series are then absent).", nil, nil),
	})
}

// levels reads the gauges from the database at scrape time, so that every replica reports the
// shared figures and nothing has to keep them up to date.
type levels struct {
	svc                         *recovery.Service
	log                         *slog.Logger
	tickets, queued, oldest, ok *prometheus.Desc
}

func (l *levels) Describe(ch chan<- *prometheus.Desc) {
	ch <- l.tickets
	ch <- l.queued
	ch <- l.oldest
	ch <- l.ok
}

func (l *levels) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), gaugeTimeout)
	defer cancel()
	g, err := l.svc.Gauges(ctx)
	if err != nil {
		l.log.Warn("metrics: reading tickets and outbox failed", "err", err)
		ch <- prometheus.MustNewConstMetric(l.ok, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(l.ok, prometheus.GaugeValue, 1)
	for _, s := range g.Tickets {
		ch <- prometheus.MustNewConstMetric(l.tickets, prometheus.GaugeValue, float64(s.Count), string(s.State))
	}
	for _, b := range g.Backlog {
		ch <- prometheus.MustNewConstMetric(l.queued, prometheus.GaugeValue, float64(b.Queued), b.Channel)
		age := 0.0
		if !b.Oldest.IsZero() {
			age = max(0, g.At.Sub(b.Oldest).Seconds())
		}
		ch <- prometheus.MustNewConstMetric(l.oldest, prometheus.GaugeValue, age, b.Channel)
	}
}

// handler serves the registry at /metrics under the access rule:
//   - without RECOVERYDESK_METRICS_TOKEN, only clients whose own address (the connection's, never
//     X-Forwarded-For) is loopback; others get 403;
//   - with a token, every client must send "Authorization: Bearer <token>", loopback included:
//     behind a reverse proxy on the same machine every request comes from loopback, so once the
//     operator has chosen a token, the address proves nothing. A missing or wrong token gets 401.
//
// The token is compared in constant time (as SHA-256 digests, so its length does not show
// either), and no answer or log line quotes it.
func (m *metrics) handler() http.Handler {
	serve := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(m.log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
	want := sha256.Sum256([]byte(m.token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "metrics: GET only", http.StatusMethodNotAllowed)
			return
		}
		if m.token == "" {
			if !loopbackClient(r) {
				http.Error(w, "metrics: loopback clients only (set RECOVERYDESK_METRICS_TOKEN to scrape from elsewhere)", http.StatusForbidden)
				return
			}
		} else {
			got := sha256.Sum256([]byte(bearer(r)))
			if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="recoverydesk metrics"`)
				http.Error(w, "metrics: a valid bearer token is required", http.StatusUnauthorized)
				return
			}
		}
		w.Header().Set("Cache-Control", "no-store")
		serve.ServeHTTP(w, r)
	})
}

// loopbackClient reports whether the connection itself comes from a loopback address.
func loopbackClient(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// bearer returns the token of an "Authorization: Bearer <token>" header (scheme in any case),
// or "" (which matches no configured token: an empty one means none is configured).
func bearer(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// instrument times every request h serves into recoverydesk_http_request_duration_seconds,
// labelled by route class, method and status class: never by the raw path, which holds tokens
// (/reenroll/<token>, /veto/<token>, /setup/<token>) and account ids. The duration is real
// time (time.Now, not the service's clock, which a test build may move).
func (m *metrics) instrument(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		route, method := routeClass(r.URL.Path), methodLabel(r.Method)
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		// A panic that escapes the console (which recovers its own) is not timed: the server
		// drops that connection.
		m.requests.WithLabelValues(route, method, statusClass(sw.status)).Observe(time.Since(start).Seconds())
	})
}

// routeClass maps a path to one of a fixed set of classes.
func routeClass(path string) string {
	under := func(prefixes ...string) bool {
		for _, p := range prefixes {
			if path == p || strings.HasPrefix(path, p+"/") {
				return true
			}
		}
		return false
	}
	switch {
	case under("/api"):
		return "api"
	case under("/console", "/setup"):
		return "console"
	case under("/account", "/reenroll", "/veto"):
		return "account"
	case under("/telegram"):
		return "telegram"
	case path == "/healthz" || path == "/readyz":
		return "health"
	case under("/static"):
		return "static"
	}
	return "other"
}

// methodLabel keeps the standard methods and folds anything else into "other".
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// statusClass is "2xx", "3xx", "4xx" or "5xx" ("2xx" for a handler that wrote nothing).
func statusClass(code int) string {
	if code == 0 {
		code = http.StatusOK
	}
	if code < 100 || code > 599 {
		return "other"
	}
	return strconv.Itoa(code/100) + "xx"
}

// statusWriter remembers the status a handler sent. Unwrap lets http.ResponseController reach
// the connection's own writer (flush, deadlines); Flush is passed on for handlers that assert
// http.Flusher.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
