package console_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image/png"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestWalkThrough follows one account through the whole host API over HTTP, and then checks
// that the request log named every route by its template and request id and never carried a
// secret, code or key.
func TestWalkThrough(t *testing.T) {
	e := newEnv(t, envOptions{})
	const id = "cust-1001"
	var requestIDs []string
	call := func(r req) response {
		t.Helper()
		resp := e.do(t, r)
		if got := resp.header.Get("Cache-Control"); got != "no-store" {
			t.Fatalf("%s %s: Cache-Control %q, want no-store", r.method, r.path, got)
		}
		if ct := resp.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("%s %s: Content-Type %q", r.method, r.path, ct)
		}
		requestIDs = append(requestIDs, resp.header.Get("X-Request-ID"))
		return resp
	}
	var secrets []string // everything that must never reach the log

	// Upsert: created, then updated.
	r := call(req{method: http.MethodPut, path: accountPath(id), body: map[string]any{
		"email": "Ann@Example.com", "display_name": "Ann", "phone": "+49 30 1234567", "staff": false,
		"password": "correct horse battery", "facts": map[string]any{"postcode": "10115", "orders": 3, "vip": true},
	}})
	expect(t, r, http.StatusCreated, "")
	for _, k := range []string{"id", "email", "display_name", "phone", "staff", "has_password", "created_at", "updated_at"} {
		if _, ok := r.body[k]; !ok {
			t.Errorf("account lacks %q: %s", k, r.raw)
		}
	}
	if len(r.body) != 8 {
		t.Errorf("account has extra fields (password hash or facts?): %s", r.raw)
	}
	if r.str("id") != id || r.str("email") != "Ann@Example.com" || r.body["has_password"] != true ||
		r.str("created_at") != t0.Format(time.RFC3339) {
		t.Errorf("account: %s", r.raw)
	}
	e.clock.Add(time.Second)
	r = call(req{method: http.MethodPut, path: accountPath(id), body: map[string]any{"display_name": "Ann B."}})
	expect(t, r, http.StatusOK, "")
	if r.str("display_name") != "Ann B." || r.str("email") != "Ann@Example.com" || r.str("phone") != "+49 30 1234567" ||
		r.str("updated_at") != t0.Add(time.Second).Format(time.RFC3339) || r.str("created_at") != t0.Format(time.RFC3339) {
		t.Errorf("update: %s", r.raw)
	}

	// Status before enrollment.
	r = call(req{method: http.MethodGet, path: twoFA(id, "")})
	expect(t, r, http.StatusOK, "")
	if r.str("state") != "disabled" || r.body["hold_until"] != nil || r.num("recovery_codes_left") != 0 {
		t.Errorf("status: %s", r.raw)
	}
	if _, ok := r.body["hold_until"]; !ok {
		t.Errorf("hold_until must be present (null): %s", r.raw)
	}

	// Enrollment.
	r = call(req{method: http.MethodPost, path: twoFA(id, "/enrollment"), body: map[string]any{}})
	expect(t, r, http.StatusCreated, "")
	secret := r.str("secret")
	secrets = append(secrets, secret, r.str("otpauth_uri"))
	if !regexp.MustCompile(`^[A-Z2-7]{32}$`).MatchString(secret) {
		t.Fatalf("secret %q is not 160 bits of unpadded base32", secret)
	}
	manual := r.str("manual_code")
	if !regexp.MustCompile(`^[A-Z2-7]{4}( [A-Z2-7]{4})*$`).MatchString(manual) || strings.ReplaceAll(manual, " ", "") != secret {
		t.Errorf("manual_code %q is not the secret in groups of 4", manual)
	}
	secrets = append(secrets, strings.Fields(manual)...)
	qr, err := base64.StdEncoding.DecodeString(r.str("qr_png"))
	if err != nil {
		t.Fatalf("qr_png is not standard base64: %v", err)
	}
	if img, err := png.Decode(bytes.NewReader(qr)); err != nil || img.Bounds().Dx() < 100 {
		t.Fatalf("qr_png is not a PNG of a usable size: %v", err)
	}
	u, err := url.Parse(r.str("otpauth_uri"))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "otpauth" || u.Host != "totp" || q.Get("secret") != secret || q.Get("issuer") != "RecoveryDesk" ||
		q.Get("algorithm") != "SHA1" || q.Get("digits") != "6" || q.Get("period") != "30" ||
		!strings.HasPrefix(u.Path, "/RecoveryDesk:") {
		t.Errorf("otpauth_uri %q", u)
	}
	if r.str("expires_at") != e.clock.Now().Add(10*time.Minute).Format(time.RFC3339) {
		t.Errorf("expires_at %q", r.str("expires_at"))
	}
	r = call(req{method: http.MethodGet, path: twoFA(id, "")})
	if r.str("state") != "pending" {
		t.Errorf("status after enrollment: %s", r.raw)
	}

	// Confirmation consumes the current step.
	code := codeAt(t, secret, e.clock.Now(), 0)
	secrets = append(secrets, code)
	r = call(req{method: http.MethodPost, path: twoFA(id, "/enrollment/confirm"), body: map[string]any{"code": code}})
	expect(t, r, http.StatusOK, "")
	recoveryCodes, _ := r.body["recovery_codes"].([]any)
	if r.str("state") != "active" || len(recoveryCodes) != 10 || r.num("drift_seconds") != 0 {
		t.Fatalf("confirm: %s", r.raw)
	}
	for _, c := range recoveryCodes {
		secrets = append(secrets, c.(string))
	}
	r = call(req{method: http.MethodPost, path: twoFA(id, "/verify"), body: map[string]any{"code": code}})
	expect(t, r, http.StatusUnauthorized, "invalid_code")

	// The next step's code (the phone runs 30 s ahead) is accepted and reports the drift.
	next := codeAt(t, secret, e.clock.Now(), 1)
	secrets = append(secrets, next)
	r = call(req{method: http.MethodPost, path: twoFA(id, "/verify"), body: map[string]any{"code": next}})
	expect(t, r, http.StatusOK, "")
	if r.body["ok"] != true || r.num("drift_seconds") != 30 {
		t.Errorf("verify: %s", r.raw)
	}
	r = call(req{method: http.MethodGet, path: twoFA(id, "")})
	if r.str("state") != "active" || r.num("recovery_codes_left") != 10 || r.body["hold_until"] != nil {
		t.Errorf("status when active: %s", r.raw)
	}

	// Recovery codes are single use.
	rc := recoveryCodes[0].(string)
	r = call(req{method: http.MethodPost, path: twoFA(id, "/recovery-code"), body: map[string]any{"code": rc}})
	expect(t, r, http.StatusOK, "")
	if r.body["ok"] != true || r.num("remaining") != 9 {
		t.Errorf("recovery-code: %s", r.raw)
	}
	r = call(req{method: http.MethodPost, path: twoFA(id, "/recovery-code"), body: map[string]any{"code": rc}})
	expect(t, r, http.StatusUnauthorized, "invalid_code")

	// Regeneration replaces the set.
	e.clock.Add(60 * time.Second)
	regen := codeAt(t, secret, e.clock.Now(), 0)
	secrets = append(secrets, regen)
	r = call(req{method: http.MethodPost, path: twoFA(id, "/recovery-codes"), body: map[string]any{"code": regen}})
	expect(t, r, http.StatusOK, "")
	fresh, _ := r.body["recovery_codes"].([]any)
	if len(fresh) != 10 || slices.Contains(fresh, recoveryCodes[1]) {
		t.Fatalf("regenerated: %s", r.raw)
	}
	for _, c := range fresh {
		secrets = append(secrets, c.(string))
	}
	r = call(req{method: http.MethodPost, path: twoFA(id, "/recovery-code"), body: map[string]any{"code": recoveryCodes[1]}})
	expect(t, r, http.StatusUnauthorized, "invalid_code")

	// Disable.
	e.clock.Add(30 * time.Second)
	off := codeAt(t, secret, e.clock.Now(), 0)
	secrets = append(secrets, off)
	r = call(req{method: http.MethodDelete, path: twoFA(id, ""), body: map[string]any{"code": off}})
	expect(t, r, http.StatusOK, "")
	if r.str("state") != "disabled" {
		t.Errorf("delete: %s", r.raw)
	}
	r = call(req{method: http.MethodGet, path: twoFA(id, "")})
	if r.str("state") != "disabled" || r.num("recovery_codes_left") != 0 {
		t.Errorf("status after disable: %s", r.raw)
	}

	// The log: one line per request, in order, with the route template and the request id.
	var requests []map[string]any
	for _, l := range e.logs.lines(t) {
		if l["msg"] == "request" {
			requests = append(requests, l)
		}
	}
	if len(requests) != len(requestIDs) {
		t.Fatalf("%d request log lines for %d requests", len(requests), len(requestIDs))
	}
	for i, l := range requests {
		if l["request_id"] != requestIDs[i] || !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(requestIDs[i]) {
			t.Errorf("line %d: request_id %v, response said %q", i, l["request_id"], requestIDs[i])
		}
		route, _ := l["route"].(string)
		if !strings.HasPrefix(route, "/api/v1/accounts/:account") {
			t.Errorf("line %d: route %q is not a template", i, route)
		}
		for _, k := range []string{"method", "status", "duration_ms", "client_ip"} {
			if _, ok := l[k]; !ok {
				t.Errorf("line %d lacks %s: %v", i, k, l)
			}
		}
	}
	assertLogFree(t, e.logs, append(secrets, e.key, id, "Ann@Example.com", "correct horse battery", "10115"))
}

// assertLogFree fails if any log line holds one of the needles. The time, the random request id
// and the duration are left out: their digits could hold a 6-digit code by chance.
func assertLogFree(t *testing.T, logs *logBuffer, needles []string) {
	t.Helper()
	for _, l := range logs.lines(t) {
		delete(l, "time")
		delete(l, "request_id")
		delete(l, "duration_ms")
		var b strings.Builder
		for k, v := range l {
			b.WriteString(k + "=" + strings.TrimSpace(strings.ReplaceAll(fmt.Sprint(v), "\n", " ")) + "\n")
		}
		text := b.String()
		for _, n := range needles {
			if n != "" && strings.Contains(text, n) {
				t.Errorf("log line holds %q: %s", n, text)
			}
		}
	}
}
