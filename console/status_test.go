package console_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// TestUnauthorized: every /api/v1 route refuses a missing, malformed, unknown or revoked key
// with 401 unauthorized, and accepts keys from configuration (RECOVERYDESK_API_KEYS).
func TestUnauthorized(t *testing.T) {
	static := strings.Repeat("s3cr3t-static-key-", 3)
	e := newEnv(t, envOptions{static: map[string]string{"platform": static}})
	e.createAccount(t, "acc-1")
	k, revokedKey, err := e.svc.CreateAPIKey(context.Background(), recovery.Actor{Type: recovery.ActorSystem}, "old")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RevokeAPIKey(context.Background(), recovery.Actor{Type: recovery.ActorSystem}, k.ID); err != nil {
		t.Fatal(err)
	}
	routes := []struct{ method, path string }{
		{http.MethodPut, accountPath("acc-1")},
		{http.MethodGet, twoFA("acc-1", "")},
		{http.MethodDelete, twoFA("acc-1", "")},
		{http.MethodPost, twoFA("acc-1", "/enrollment")},
		{http.MethodPost, twoFA("acc-1", "/enrollment/confirm")},
		{http.MethodPost, twoFA("acc-1", "/verify")},
		{http.MethodPost, twoFA("acc-1", "/recovery-code")},
		{http.MethodPost, twoFA("acc-1", "/recovery-codes")},
	}
	keys := []struct {
		name   string
		key    *string
		header map[string]string
	}{
		{"missing", ptr(""), nil},
		{"unknown", ptr("rdk_0123456789abcdef_" + strings.Repeat("A", 43)), nil},
		{"garbage", ptr("not-a-key"), nil},
		{"revoked", ptr(revokedKey), nil},
		{"static key with one character changed", ptr(static[:len(static)-1] + "X"), nil},
		{"wrong scheme", ptr(""), map[string]string{"Authorization": "Basic " + e.key}},
		{"bare key", ptr(""), map[string]string{"Authorization": e.key}},
	}
	for _, rt := range routes {
		for _, k := range keys {
			t.Run(rt.method+" "+rt.path+"/"+k.name, func(t *testing.T) {
				r := e.do(t, req{method: rt.method, path: rt.path, key: k.key, header: k.header, body: map[string]any{"code": "123456"}})
				expect(t, r, http.StatusUnauthorized, "unauthorized")
				if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
				}
				if r.header.Get("Cache-Control") != "no-store" {
					t.Error("401 without no-store")
				}
			})
		}
	}
	t.Run("static key", func(t *testing.T) {
		r := e.do(t, req{method: http.MethodGet, path: twoFA("acc-1", ""), key: &static})
		expect(t, r, http.StatusOK, "")
		r = e.do(t, req{method: http.MethodGet, path: twoFA("acc-1", ""), header: map[string]string{"Authorization": "bearer " + static}, key: ptr("")})
		expect(t, r, http.StatusOK, "")
	})
	t.Run("stored key", func(t *testing.T) {
		expect(t, e.do(t, req{method: http.MethodGet, path: twoFA("acc-1", "")}), http.StatusOK, "")
	})
	assertLogFree(t, e.logs, []string{static, revokedKey, e.key})
}

// TestErrorStatuses walks every error status of the Host API table.
func TestErrorStatuses(t *testing.T) {
	e := newEnv(t, envOptions{})
	post := func(id, rest string, body any) response {
		t.Helper()
		return e.do(t, req{method: http.MethodPost, path: twoFA(id, rest), body: body})
	}

	t.Run("404 not_found", func(t *testing.T) {
		for _, r := range []req{
			{method: http.MethodGet, path: twoFA("nobody", "")},
			{method: http.MethodPost, path: twoFA("nobody", "/enrollment")},
			{method: http.MethodPost, path: twoFA("nobody", "/enrollment/confirm"), body: map[string]any{"code": "123456"}},
			{method: http.MethodPost, path: twoFA("nobody", "/verify"), body: map[string]any{"code": "123456"}},
			{method: http.MethodPost, path: twoFA("nobody", "/recovery-code"), body: map[string]any{"code": "AAAA-BBBB-CCCC-DDDD"}},
			{method: http.MethodPost, path: twoFA("nobody", "/recovery-codes"), body: map[string]any{"code": "123456"}},
			{method: http.MethodDelete, path: twoFA("nobody", ""), body: map[string]any{"code": "123456"}},
		} {
			expect(t, e.do(t, r), http.StatusNotFound, "not_found")
		}
	})

	t.Run("409 email_taken, case-insensitively", func(t *testing.T) {
		expect(t, e.do(t, req{method: http.MethodPut, path: accountPath("mail-a"), body: map[string]any{"email": "dup@example.com"}}), http.StatusCreated, "")
		expect(t, e.do(t, req{method: http.MethodPut, path: accountPath("mail-b"), body: map[string]any{"email": "DUP@Example.COM"}}), http.StatusConflict, "email_taken")
		expect(t, e.do(t, req{method: http.MethodPut, path: accountPath("mail-b"), body: map[string]any{"email": "other@example.com"}}), http.StatusCreated, "")
		expect(t, e.do(t, req{method: http.MethodPut, path: accountPath("mail-b"), body: map[string]any{"email": "Dup@example.com"}}), http.StatusConflict, "email_taken")
		// The owner may change the case of its own address.
		expect(t, e.do(t, req{method: http.MethodPut, path: accountPath("mail-a"), body: map[string]any{"email": "Dup@Example.com"}}), http.StatusOK, "")
	})

	t.Run("409 not_enrolled", func(t *testing.T) {
		e.createAccount(t, "plain")
		for _, rest := range []string{"/verify", "/recovery-codes", "/enrollment/confirm"} {
			expect(t, post("plain", rest, map[string]any{"code": "123456"}), http.StatusConflict, "not_enrolled")
		}
		expect(t, post("plain", "/recovery-code", map[string]any{"code": "AAAA-BBBB-CCCC-DDDD"}), http.StatusConflict, "not_enrolled")
		expect(t, e.do(t, req{method: http.MethodDelete, path: twoFA("plain", ""), body: map[string]any{"code": "123456"}}), http.StatusConflict, "not_enrolled")
	})

	t.Run("409 already_enrolled", func(t *testing.T) {
		secret, _ := e.enroll(t, "active")
		expect(t, post("active", "/enrollment", nil), http.StatusConflict, "already_enrolled")
		expect(t, post("active", "/enrollment/confirm", map[string]any{"code": codeAt(t, secret, e.clock.Now(), 1)}), http.StatusConflict, "already_enrolled")
	})

	t.Run("422 invalid_code on confirm, counted", func(t *testing.T) {
		e.createAccount(t, "confirm-wrong")
		secret := e.begin(t, "confirm-wrong")
		for i := 1; i <= 5; i++ {
			r := post("confirm-wrong", "/enrollment/confirm", map[string]any{"code": wrongCode(t, secret, e.clock.Now())})
			expect(t, r, http.StatusUnprocessableEntity, "invalid_code")
		}
		// The 5th failure started a backoff: even the right code waits.
		r := post("confirm-wrong", "/enrollment/confirm", map[string]any{"code": codeAt(t, secret, e.clock.Now(), 0)})
		expect(t, r, http.StatusTooManyRequests, "too_many_attempts")
		e.clock.Add(30 * time.Second)
		expect(t, post("confirm-wrong", "/enrollment/confirm", map[string]any{"code": codeAt(t, secret, e.clock.Now(), 0)}), http.StatusOK, "")
	})

	t.Run("410 expired", func(t *testing.T) {
		e.createAccount(t, "slow")
		secret := e.begin(t, "slow")
		e.clock.Add(11 * time.Minute)
		expect(t, post("slow", "/enrollment/confirm", map[string]any{"code": codeAt(t, secret, e.clock.Now(), 0)}), http.StatusGone, "expired")
		// A new enrollment works.
		secret = e.begin(t, "slow")
		expect(t, post("slow", "/enrollment/confirm", map[string]any{"code": codeAt(t, secret, e.clock.Now(), 0)}), http.StatusOK, "")
	})

	t.Run("429 too_many_attempts with Retry-After", func(t *testing.T) {
		secret, _ := e.enroll(t, "throttled")
		for i := 1; i <= 5; i++ {
			expect(t, post("throttled", "/verify", map[string]any{"code": wrongCode(t, secret, e.clock.Now())}), http.StatusUnauthorized, "invalid_code")
		}
		r := post("throttled", "/verify", map[string]any{"code": codeAt(t, secret, e.clock.Now(), 1)})
		expect(t, r, http.StatusTooManyRequests, "too_many_attempts")
		if r.header.Get("Retry-After") != "30" || r.num("retry_after_seconds") != 30 {
			t.Fatalf("Retry-After %q, body %s", r.header.Get("Retry-After"), r.raw)
		}
		e.clock.Add(10 * time.Second)
		r = post("throttled", "/verify", map[string]any{"code": wrongCode(t, secret, e.clock.Now())})
		expect(t, r, http.StatusTooManyRequests, "too_many_attempts")
		if r.header.Get("Retry-After") != "20" || r.num("retry_after_seconds") != 20 {
			t.Fatalf("Retry-After %q, body %s", r.header.Get("Retry-After"), r.raw)
		}
		// Attempts during the backoff were not counted: after it the right code works.
		e.clock.Add(20 * time.Second)
		expect(t, post("throttled", "/verify", map[string]any{"code": codeAt(t, secret, e.clock.Now(), 0)}), http.StatusOK, "")
	})

	t.Run("423 suspended and 409 recovery_required", func(t *testing.T) {
		secret, codes := e.enroll(t, "victim")
		suspendTOTP(t, e, "victim", secret)
		e.clock.Add(2 * time.Hour)
		right := map[string]any{"code": codeAt(t, secret, e.clock.Now(), 0)}
		expect(t, post("victim", "/verify", right), http.StatusLocked, "suspended")
		expect(t, post("victim", "/recovery-codes", right), http.StatusLocked, "suspended")
		expect(t, e.do(t, req{method: http.MethodDelete, path: twoFA("victim", ""), body: right}), http.StatusLocked, "suspended")
		expect(t, post("victim", "/enrollment", nil), http.StatusConflict, "recovery_required")
		expect(t, post("victim", "/enrollment/confirm", right), http.StatusConflict, "recovery_required")
		r := e.do(t, req{method: http.MethodGet, path: twoFA("victim", "")})
		if r.str("state") != "suspended" || r.num("recovery_codes_left") != 10 {
			t.Errorf("status: %s", r.raw)
		}
		// A recovery code still works and lifts the suspension.
		expect(t, post("victim", "/recovery-code", map[string]any{"code": strings.ToLower(codes[0])}), http.StatusOK, "")
		expect(t, post("victim", "/verify", right), http.StatusOK, "")
	})

	t.Run("423 recovery codes suspended", func(t *testing.T) {
		_, codes := e.enroll(t, "rc-victim")
		for i := 1; i <= 20; i++ {
			r := post("rc-victim", "/recovery-code", map[string]any{"code": "AAAA-BBBB-CCCC-" + strconv.Itoa(1000+i)})
			expect(t, r, http.StatusUnauthorized, "invalid_code")
			e.clock.Add(time.Hour + time.Second)
		}
		expect(t, post("rc-victim", "/recovery-code", map[string]any{"code": codes[0]}), http.StatusLocked, "suspended")
	})
}

// suspendTOTP makes 20 consecutive failures, moving the clock past each backoff.
func suspendTOTP(t *testing.T, e *env, id, secret string) {
	t.Helper()
	for i := 1; i <= 20; i++ {
		r := e.do(t, req{method: http.MethodPost, path: twoFA(id, "/verify"), body: map[string]any{"code": wrongCode(t, secret, e.clock.Now())}})
		expect(t, r, http.StatusUnauthorized, "invalid_code")
		e.clock.Add(time.Hour + time.Second)
	}
}
