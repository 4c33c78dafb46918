package console_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestBadInput: security.md rule 10. Every malformed request gets a clear 400 (413 when too
// large), changes nothing, and is not counted as a failed code: after more such requests than
// the backoff threshold, the right code still passes with no backoff.
func TestBadInput(t *testing.T) {
	e := newEnv(t, envOptions{})
	secret, _ := e.enroll(t, "acc")
	e.clock.Add(30 * time.Second)

	cases := []struct {
		name, method, path string
		body               any
		status             int
		code, message      string // message: a substring the caller must see
	}{
		{"full-width digits", "POST", "/verify", `{"code":"１２３４５６"}`, 400, "invalid_request", "6 digits"},
		{"plus sign", "POST", "/verify", `{"code":"+12345"}`, 400, "invalid_request", "6 digits"},
		{"minus sign", "POST", "/verify", `{"code":"-12345"}`, 400, "invalid_request", "6 digits"},
		{"letter", "POST", "/verify", `{"code":"12a456"}`, 400, "invalid_request", "6 digits"},
		{"seven digits", "POST", "/verify", `{"code":"1234567"}`, 400, "invalid_request", "6 digits"},
		{"five digits", "POST", "/verify", `{"code":"12345"}`, 400, "invalid_request", "6 digits"},
		{"empty code", "POST", "/verify", `{"code":""}`, 400, "invalid_request", "6 digits"},
		{"code as number", "POST", "/verify", `{"code":123456}`, 400, "invalid_request", `"code" must be a string`},
		{"code as array", "POST", "/verify", `{"code":["123456"]}`, 400, "invalid_request", `"code" must be a string`},
		{"code missing", "POST", "/verify", `{}`, 400, "invalid_request", `"code" is required`},
		{"empty body", "POST", "/verify", ``, 400, "invalid_request", `"code" is required`},
		{"unknown field", "POST", "/verify", `{"code":"123456","remember":true}`, 400, "invalid_request", `unknown field "remember"`},
		{"two JSON values", "POST", "/verify", `{"code":"123456"}{"code":"123456"}`, 400, "invalid_request", "single JSON value"},
		{"trailing garbage", "POST", "/verify", `{"code":"123456"} x`, 400, "invalid_request", "not valid JSON"},
		{"duplicate key", "POST", "/verify", `{"code":"000000","code":"123456"}`, 400, "invalid_request", `"code" twice`},
		{"not an object", "POST", "/verify", `["123456"]`, 400, "invalid_request", "JSON object"},
		{"null body", "POST", "/verify", `null`, 400, "invalid_request", "JSON object"},
		{"truncated", "POST", "/verify", `{"code":"123456"`, 400, "invalid_request", "not valid JSON"},
		{"invalid UTF-8 in code", "POST", "/verify", []byte("{\"code\":\"12\xff456\"}"), 400, "invalid_request", "UTF-8"},
		{"invalid UTF-8 in a key", "POST", "/verify", []byte("{\"co\xffde\":\"123456\"}"), 400, "invalid_request", "UTF-8"},
		{"bad ip", "POST", "/verify", `{"code":"123456","ip":"203.0.113.300"}`, 400, "invalid_request", `"ip"`},
		{"ip with zone", "POST", "/verify", `{"code":"123456","ip":"fe80::1%eth0"}`, 400, "invalid_request", `"ip"`},
		{"ip as number", "POST", "/verify", `{"code":"123456","ip":3405803783}`, 400, "invalid_request", `"ip" must be a string`},
		{"full-width on confirm", "POST", "/enrollment/confirm", `{"code":"１２３４５６"}`, 400, "invalid_request", "6 digits"},
		{"sign on regenerate", "POST", "/recovery-codes", `{"code":"+12345"}`, 400, "invalid_request", "6 digits"},
		{"letters on disable", "DELETE", "", `{"code":"12a456"}`, 400, "invalid_request", "recovery code"},
		{"short recovery code", "POST", "/recovery-code", `{"code":"AAAA-BBBB"}`, 400, "invalid_request", "16"},
		{"recovery code with symbols", "POST", "/recovery-code", `{"code":"AAAA-BBBB-CCCC-DD!D"}`, 400, "invalid_request", "16"},
		{"oversized body", "POST", "/verify", `{"code":"123456","ip":"` + strings.Repeat("1", 70<<10) + `"}`, 413, "payload_too_large", "larger than"},
		{"reenroll_token as number", "POST", "/enrollment", `{"reenroll_token":5}`, 400, "invalid_request", `"reenroll_token" must be a string`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(t, req{method: c.method, path: twoFA("acc", c.path), body: c.body})
			expect(t, r, c.status, c.code)
			if !strings.Contains(r.str("message"), c.message) {
				t.Errorf("message %q does not say %q", r.str("message"), c.message)
			}
		})
	}

	t.Run("account input", func(t *testing.T) {
		for _, c := range []struct{ name, path, body, message string }{
			{"staff as string", accountPath("acc-2"), `{"email":"b@example.com","staff":"yes"}`, `"staff" must be a boolean`},
			{"facts as array", accountPath("acc-2"), `{"email":"b@example.com","facts":[1]}`, `"facts" must be an object`},
			{"nested fact", accountPath("acc-2"), `{"email":"b@example.com","facts":{"a":{"b":1}}}`, "fact a"},
			{"email missing on create", accountPath("acc-2"), `{"display_name":"B"}`, "email"},
			{"bad email", accountPath("acc-2"), `{"email":"not-an-address"}`, "e-mail"},
			{"short password", accountPath("acc-2"), `{"email":"b@example.com","password":"short"}`, "password"},
			{"bad account id", accountPath("a%21b"), `{"email":"b@example.com"}`, "account id"},
			{"too long account id", accountPath(strings.Repeat("a", 129)), `{"email":"b@example.com"}`, "account id"},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := e.do(t, req{method: http.MethodPut, path: c.path, body: c.body})
				expect(t, r, http.StatusBadRequest, "invalid_request")
				if !strings.Contains(r.str("message"), c.message) {
					t.Errorf("message %q does not say %q", r.str("message"), c.message)
				}
			})
		}
		// Nothing was created.
		expect(t, e.do(t, req{method: http.MethodGet, path: twoFA("acc-2", "")}), http.StatusNotFound, "not_found")
	})

	// None of the above counted as a failed code (well over the 5 that start a backoff), and
	// the state is unchanged.
	r := e.do(t, req{method: http.MethodGet, path: twoFA("acc", "")})
	if r.str("state") != "active" || r.num("recovery_codes_left") != 10 {
		t.Fatalf("status after bad input: %s", r.raw)
	}
	r = e.do(t, req{method: http.MethodPost, path: twoFA("acc", "/verify"), body: map[string]any{"code": codeAt(t, secret, e.clock.Now(), 0)}})
	expect(t, r, http.StatusOK, "")

	// The app's display form "123 456" is accepted.
	e.clock.Add(30 * time.Second)
	c := codeAt(t, secret, e.clock.Now(), 0)
	r = e.do(t, req{method: http.MethodPost, path: twoFA("acc", "/verify"), body: map[string]any{"code": c[:3] + " " + c[3:]}})
	expect(t, r, http.StatusOK, "")
}

// TestBadFormatsAreNotCounted is the rule in its smallest form: five malformed codes, then the
// right code passes (five counted failures would have started a 30 s backoff).
func TestBadFormatsAreNotCounted(t *testing.T) {
	e := newEnv(t, envOptions{})
	secret, _ := e.enroll(t, "acc")
	for _, bad := range []any{"１２３４５６", "+12345", "12a456", "1234567", 123456} {
		r := e.do(t, req{method: http.MethodPost, path: twoFA("acc", "/verify"), body: map[string]any{"code": bad, "ip": "198.51.100.4"}})
		expect(t, r, http.StatusBadRequest, "invalid_request")
	}
	r := e.do(t, req{method: http.MethodPost, path: twoFA("acc", "/verify"), body: map[string]any{"code": codeAt(t, secret, e.clock.Now(), 1), "ip": "198.51.100.4"}})
	expect(t, r, http.StatusOK, "")
}
