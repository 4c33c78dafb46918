package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// metricsAPIKey is the static host API key of the metrics tests.
const metricsAPIKey = "metrics-test-host-key-0123456789abcdef"

// metricsCall makes one host API call and returns the status and the decoded JSON answer.
func metricsCall(t *testing.T, base, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+metricsAPIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// metricsScrape GETs /metrics with an optional bearer token and returns the status and body.
func metricsScrape(t *testing.T, base, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// metricsValue finds the sample of name with exactly labels in a text exposition; ok is false
// when there is none.
func metricsValue(t *testing.T, body, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		parts = append(parts, fmt.Sprintf("%s=%q", k, labels[k]))
	}
	series := name
	if len(parts) > 0 {
		series += "{" + strings.Join(parts, ",") + "}"
	}
	for line := range strings.Lines(body) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: value %q", series, v)
			}
			return f, true
		}
	}
	return 0, false
}

// TestMetricsScrape runs serve in-process, drives the host API through a confirmation, a good
// code, five wrong codes (the fifth starts the backoff) and a throttled attempt, opens a
// ticket, visits a page with a token in its path, and then scrapes /metrics from loopback: the
// counters, the ticket gauge and the request histogram hold exactly those calls, the runtime
// and process collectors are there, and nothing of the account, its codes, its secret or the
// path's token appears.
func TestMetricsScrape(t *testing.T) {
	env := with(testEnv(t), "RECOVERYDESK_API_KEYS", "host="+metricsAPIKey)
	srv := startServer(t, env)

	if code, _ := metricsCall(t, srv.base, http.MethodPut, "/api/v1/accounts/metrics-alice", map[string]any{"email": "alice@example.com"}); code != http.StatusCreated {
		t.Fatalf("upsert: %d", code)
	}
	code, en := metricsCall(t, srv.base, http.MethodPost, "/api/v1/accounts/metrics-alice/2fa/enrollment", map[string]any{})
	secret, _ := en["secret"].(string)
	if code != http.StatusCreated || secret == "" {
		t.Fatalf("enrollment: %d %v", code, en)
	}
	step := recovery.Step(time.Now())
	totp := func(step int64) string {
		c, err := recovery.CodeAt(secret, step)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	used := []string{totp(step), totp(step + 1)}
	code, conf := metricsCall(t, srv.base, http.MethodPost, "/api/v1/accounts/metrics-alice/2fa/enrollment/confirm", map[string]any{"code": used[0]})
	if code != http.StatusOK {
		t.Fatalf("confirm: %d %v", code, conf)
	}
	// The next step's code: the confirmation consumed this one, and ±1 step is accepted.
	if code, v := metricsCall(t, srv.base, http.MethodPost, "/api/v1/accounts/metrics-alice/2fa/verify", map[string]any{"code": used[1]}); code != http.StatusOK {
		t.Fatalf("verify: %d %v", code, v)
	}
	wrong := "000000"
	for d := int64(-2); d <= 3; d++ {
		if totp(step+d) == wrong {
			wrong = "999999"
		}
	}
	for i := range 5 {
		if code, v := metricsCall(t, srv.base, http.MethodPost, "/api/v1/accounts/metrics-alice/2fa/verify", map[string]any{"code": wrong}); code != http.StatusUnauthorized {
			t.Fatalf("wrong code %d: %d %v", i+1, code, v)
		}
	}
	if code, v := metricsCall(t, srv.base, http.MethodPost, "/api/v1/accounts/metrics-alice/2fa/verify", map[string]any{"code": used[1]}); code != http.StatusTooManyRequests {
		t.Fatalf("during the backoff: %d %v", code, v)
	}
	vetoToken := "metricsVetoTokenThatMustNotShow0123"
	if code := httpGet(t, srv.base+"/veto/"+vetoToken, ""); code >= 500 {
		t.Fatalf("veto page: %d", code)
	}

	// A ticket opened through a second service on the same database: the gauge is read from
	// the database at scrape time, not counted by the serving process.
	svc := openService(t, env)
	if _, err := svc.OpenTicket(context.Background(), recovery.Actor{Type: recovery.ActorAPIKey, ID: "test"},
		recovery.OpenRequest{Channel: recovery.ChannelAPI, Claimed: "metrics-alice", Message: "lost my phone"}); err != nil {
		t.Fatal(err)
	}

	status, body := metricsScrape(t, srv.base, "")
	if status != http.StatusOK {
		t.Fatalf("GET /metrics from loopback: %d\n%s", status, body)
	}
	want := []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"recoverydesk_verifications_total", map[string]string{"factor": "totp", "purpose": "confirm", "result": "ok"}, 1},
		{"recoverydesk_verifications_total", map[string]string{"factor": "totp", "purpose": "verify", "result": "ok"}, 1},
		{"recoverydesk_verifications_total", map[string]string{"factor": "totp", "purpose": "verify", "result": "wrong"}, 5},
		{"recoverydesk_verifications_total", map[string]string{"factor": "totp", "purpose": "verify", "result": "throttled"}, 1},
		{"recoverydesk_verifications_total", map[string]string{"factor": "totp", "purpose": "verify", "result": "replayed"}, 0},
		{"recoverydesk_verifications_total", map[string]string{"factor": "totp", "purpose": "verify", "result": "suspended"}, 0},
		{"recoverydesk_throttles_total", map[string]string{"scope": "totp"}, 1},
		{"recoverydesk_throttles_total", map[string]string{"scope": "ip"}, 0},
		{"recoverydesk_suspensions_total", map[string]string{"factor": "totp"}, 0},
		{"recoverydesk_outbox_delivery_failures_total", map[string]string{"channel": "email", "outcome": "given_up"}, 0},
		{"recoverydesk_tickets", map[string]string{"state": "open"}, 1},
		{"recoverydesk_tickets", map[string]string{"state": "closed"}, 0},
		{"recoverydesk_outbox_queued", map[string]string{"channel": "webhook"}, 0},
		{"recoverydesk_scrape_database_ok", nil, 1},
		{"recoverydesk_http_request_duration_seconds_count", map[string]string{"route": "api", "method": "PUT", "status": "2xx"}, 1},
		// enrollment, confirmation, good verify; five wrong codes and the throttled one
		{"recoverydesk_http_request_duration_seconds_count", map[string]string{"route": "api", "method": "POST", "status": "2xx"}, 3},
		{"recoverydesk_http_request_duration_seconds_count", map[string]string{"route": "api", "method": "POST", "status": "4xx"}, 6},
	}
	for _, w := range want {
		got, ok := metricsValue(t, body, w.name, w.labels)
		if !ok || got != w.value {
			t.Errorf("%s%v = %v (present %v), want %v", w.name, w.labels, got, ok, w.value)
		}
	}
	if n, ok := metricsValue(t, body, "recoverydesk_http_request_duration_seconds_count", map[string]string{"route": "account", "method": "GET", "status": "2xx"}); !ok || n != 1 {
		if n4, ok4 := metricsValue(t, body, "recoverydesk_http_request_duration_seconds_count", map[string]string{"route": "account", "method": "GET", "status": "4xx"}); !ok4 || n4 != 1 {
			t.Errorf("the veto page is not timed under route account: 2xx %v, 4xx %v", n, n4)
		}
	}
	for _, family := range []string{"go_goroutines ", "process_resident_memory_bytes ", "recoverydesk_outbox_oldest_queued_age_seconds{channel=\"email\"} "} {
		if !strings.Contains(body, family) {
			t.Errorf("the scrape lacks %q", family)
		}
	}
	for _, secretish := range append(used, secret, metricsAPIKey, "metrics-alice", "alice@example.com", vetoToken, "/veto/", "/api/v1") {
		if strings.Contains(body, secretish) {
			t.Errorf("the scrape shows %q", secretish)
		}
	}
	for _, code := range conf["recovery_codes"].([]any) {
		if strings.Contains(body, code.(string)) {
			t.Error("the scrape shows a recovery code")
		}
	}
	srv.stop(t)
}

// TestMetricsToken: with RECOVERYDESK_METRICS_TOKEN set, the real server asks every client for
// it, loopback included; the right bearer gets the scrape; the token appears in no answer or
// log line.
func TestMetricsToken(t *testing.T) {
	const token = "metrics-token-for-the-test-0123456789"
	srv := startServer(t, with(testEnv(t), "RECOVERYDESK_METRICS_TOKEN", token))
	for _, tc := range []struct {
		bearer string
		want   int
	}{{"", http.StatusUnauthorized}, {token + "x", http.StatusUnauthorized}, {token[:10], http.StatusUnauthorized}, {token, http.StatusOK}} {
		status, body := metricsScrape(t, srv.base, tc.bearer)
		if status != tc.want {
			t.Errorf("bearer %q: %d, want %d", tc.bearer, status, tc.want)
		}
		if strings.Contains(body, token) {
			t.Errorf("bearer %q: the answer shows the token", tc.bearer)
		}
		if tc.want == http.StatusOK && !strings.Contains(body, "recoverydesk_tickets{") {
			t.Errorf("the scrape lacks the ticket gauge:\n%s", body)
		}
	}
	srv.stop(t)
	if strings.Contains(srv.stderr.String()+srv.stdout.String(), token) {
		t.Error("the metrics token appears in the output")
	}
}

// TestMetricsAccess checks the access rule on the handler itself, with the remote addresses a
// test cannot connect from: without a token only a loopback connection is served (a forged
// X-Forwarded-For changes nothing); with one, only the right bearer, from anywhere.
func TestMetricsAccess(t *testing.T) {
	const token = "s3cret-metrics-token-0123456789abcdef"
	cases := []struct {
		token, remote, auth, xff, method string
		want                             int
	}{
		{"", "127.0.0.1:5000", "", "", "GET", http.StatusOK},
		{"", "127.10.0.3:5000", "", "", "GET", http.StatusOK},
		{"", "[::1]:5000", "", "", "GET", http.StatusOK},
		{"", "[::ffff:127.0.0.1]:5000", "", "", "HEAD", http.StatusOK},
		{"", "203.0.113.5:4000", "", "", "GET", http.StatusForbidden},
		{"", "203.0.113.5:4000", "", "127.0.0.1", "GET", http.StatusForbidden},
		{"", "10.1.2.3:4000", "Bearer anything", "", "GET", http.StatusForbidden},
		{"", "garbage", "", "", "GET", http.StatusForbidden},
		{"", "127.0.0.1:5000", "", "", "POST", http.StatusMethodNotAllowed},
		{token, "203.0.113.5:4000", "Bearer " + token, "", "GET", http.StatusOK},
		{token, "203.0.113.5:4000", "bearer " + token, "", "GET", http.StatusOK},
		{token, "203.0.113.5:4000", "", "", "GET", http.StatusUnauthorized},
		{token, "203.0.113.5:4000", "Bearer " + token + "x", "", "GET", http.StatusUnauthorized},
		{token, "203.0.113.5:4000", "Bearer " + token[:8], "", "GET", http.StatusUnauthorized},
		{token, "203.0.113.5:4000", "Basic " + token, "", "GET", http.StatusUnauthorized},
		{token, "203.0.113.5:4000", "Bearer", "", "GET", http.StatusUnauthorized},
		// With a token, loopback alone is not enough: a reverse proxy on the machine is loopback.
		{token, "127.0.0.1:5000", "", "", "GET", http.StatusUnauthorized},
		{token, "127.0.0.1:5000", "Bearer " + token, "", "GET", http.StatusOK},
	}
	for _, tc := range cases {
		h := newMetrics(tc.token, discardLogger()).handler()
		req := httptest.NewRequest(tc.method, "/metrics", nil)
		req.RemoteAddr = tc.remote
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		if tc.xff != "" {
			req.Header.Set("X-Forwarded-For", tc.xff)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		name := fmt.Sprintf("token %v, %s %s from %s, auth %q, xff %q", tc.token != "", tc.method, "/metrics", tc.remote, tc.auth, tc.xff)
		if rec.Code != tc.want {
			t.Errorf("%s: %d, want %d", name, rec.Code, tc.want)
		}
		if strings.Contains(rec.Body.String(), token) || strings.Contains(fmt.Sprint(rec.Header()), token) {
			t.Errorf("%s: the answer shows the token", name)
		}
		switch {
		case rec.Code == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "":
			t.Errorf("%s: 401 without WWW-Authenticate", name)
		case rec.Code == http.StatusOK && tc.method == "GET" && !strings.Contains(rec.Body.String(), "go_goroutines"):
			t.Errorf("%s: no metrics in the answer", name)
		}
	}
}

// TestMetricsRouteClass: the request histogram's route label is a class, never the path (paths
// hold tokens and account ids).
func TestMetricsRouteClass(t *testing.T) {
	for path, want := range map[string]string{
		"/api/v1/accounts/a/2fa/verify": "api", "/api/openapi.yaml": "api", "/console": "console",
		"/console/tickets/RD-X": "console", "/setup/tok": "console", "/account": "account",
		"/account/security": "account", "/reenroll/tok/confirm": "account", "/veto/tok": "account",
		"/telegram/webhook": "telegram", "/healthz": "health", "/readyz": "health", "/static/app.css": "static",
		"/": "other", "/apix": "other", "/consoles": "other", "/vetoes": "other", "/favicon.ico": "other",
	} {
		if got := routeClass(path); got != want {
			t.Errorf("routeClass(%q) = %q, want %q", path, got, want)
		}
	}
	for code, want := range map[int]string{0: "2xx", 200: "2xx", 201: "2xx", 302: "3xx", 404: "4xx", 429: "4xx", 503: "5xx", 42: "other"} {
		if got := statusClass(code); got != want {
			t.Errorf("statusClass(%d) = %q, want %q", code, got, want)
		}
	}
	if methodLabel("PROPFIND") != "other" || methodLabel("GET") != "GET" {
		t.Error("methodLabel keeps an odd method or drops a standard one")
	}
	// A request that is timed shows under its class only.
	m := newMetrics("", discardLogger())
	h := m.instrument(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/reenroll/a-secret-token", nil))
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	rec := httptest.NewRecorder()
	m.handler().ServeHTTP(rec, req)
	body := rec.Body.String()
	if v, ok := metricsValue(t, body, "recoverydesk_http_request_duration_seconds_count", map[string]string{"route": "account", "method": "GET", "status": "4xx"}); !ok || v != 1 {
		t.Errorf("the timed request: %v %v", v, ok)
	}
	if regexp.MustCompile(`a-secret-token|reenroll`).MatchString(body) {
		t.Error("the scrape shows the path")
	}
}
