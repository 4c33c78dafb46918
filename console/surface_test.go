package console_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/recoverydesk/recoverydesk/console"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
)

func TestNewRequiresService(t *testing.T) {
	if _, err := console.New(console.Options{}); err == nil {
		t.Fatal("New without a Service succeeded")
	}
	e := newEnv(t, envOptions{})
	if _, err := console.New(console.Options{Service: e.svc, TrustedProxies: []string{"not-a-cidr"}}); err == nil {
		t.Fatal("New accepted a malformed trusted proxy")
	}
}

// TestUnknownRoutesAndMethods: 404 and 405 in the JSON error shape, with Allow on 405, through
// the same middleware (headers, request id, log line).
func TestUnknownRoutesAndMethods(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, c := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"GET", "/nope", 404, "not_found", ""},
		{"GET", "/api/v1/nope?token=abc", 404, "not_found", ""},
		{"GET", "/api/v1/accounts/x/2fa/verify/", 404, "not_found", ""}, // no trailing-slash redirect
		{"GET", "/api/v1/accounts/x", 405, "method_not_allowed", "PUT"},
		{"POST", "/healthz", 405, "method_not_allowed", "GET"},
		{"GET", "/api/v1/accounts/x/2fa/verify", 405, "method_not_allowed", "POST"},
		{"PATCH", "/api/v1/accounts/x/2fa", 405, "method_not_allowed", ""},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			r := e.do(t, req{method: c.method, path: c.path})
			expect(t, r, c.status, c.code)
			if len(r.body) != 2 {
				t.Errorf("error body %s has fields besides error and message", r.raw)
			}
			if c.allow != "" && r.header.Get("Allow") != c.allow {
				t.Errorf("Allow %q, want %q", r.header.Get("Allow"), c.allow)
			}
			if r.header.Get("X-Request-ID") == "" || r.header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("headers %v", r.header)
			}
		})
	}
	if r := e.do(t, req{method: "PATCH", path: "/api/v1/accounts/x/2fa"}); !strings.Contains(r.header.Get("Allow"), "GET") || !strings.Contains(r.header.Get("Allow"), "DELETE") {
		t.Errorf("Allow %q", r.header.Get("Allow"))
	}
	assertLogFree(t, e.logs, []string{"token=abc", "/nope"})
}

func TestHealth(t *testing.T) {
	store := sqliteStore(t)
	e := newEnv(t, envOptions{store: store})
	r := e.do(t, req{method: http.MethodGet, path: "/healthz", key: ptr("")})
	expect(t, r, http.StatusOK, "")
	if r.str("status") != "ok" {
		t.Errorf("healthz: %s", r.raw)
	}
	r = e.do(t, req{method: http.MethodGet, path: "/readyz", key: ptr("")})
	expect(t, r, http.StatusOK, "")
	if r.str("status") != "ready" {
		t.Errorf("readyz: %s", r.raw)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	expect(t, e.do(t, req{method: http.MethodGet, path: "/readyz", key: ptr("")}), http.StatusServiceUnavailable, "not_ready")
	// Liveness does not depend on the database.
	expect(t, e.do(t, req{method: http.MethodGet, path: "/healthz", key: ptr("")}), http.StatusOK, "")
}

// TestOpenAPI: the description is served as YAML, parses, and lists every route of the API with
// its methods, the bearer scheme and every error code the API answers.
func TestOpenAPI(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.do(t, req{method: http.MethodGet, path: "/api/openapi.yaml", key: ptr("")})
	expect(t, r, http.StatusOK, "")
	if ct := r.header.Get("Content-Type"); ct != "application/yaml" {
		t.Errorf("Content-Type %q", ct)
	}
	var doc struct {
		OpenAPI    string                    `yaml:"openapi"`
		Paths      map[string]map[string]any `yaml:"paths"`
		Components struct {
			SecuritySchemes map[string]struct {
				Type   string `yaml:"type"`
				Scheme string `yaml:"scheme"`
			} `yaml:"securitySchemes"`
			Schemas map[string]struct {
				Properties map[string]struct {
					Enum []string `yaml:"enum"`
				} `yaml:"properties"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(r.raw, &doc); err != nil {
		t.Fatalf("openapi.yaml does not parse: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.0") {
		t.Errorf("openapi %q", doc.OpenAPI)
	}
	want := map[string][]string{
		"/api/v1/accounts/{account}":                        {"put"},
		"/api/v1/accounts/{account}/2fa":                    {"get", "delete"},
		"/api/v1/accounts/{account}/2fa/enrollment":         {"post"},
		"/api/v1/accounts/{account}/2fa/enrollment/confirm": {"post"},
		"/api/v1/accounts/{account}/2fa/verify":             {"post"},
		"/api/v1/accounts/{account}/2fa/recovery-code":      {"post"},
		"/api/v1/accounts/{account}/2fa/recovery-codes":     {"post"},
		"/api/openapi.yaml":                                 {"get"},
		"/healthz":                                          {"get"},
		"/readyz":                                           {"get"},
	}
	for path, methods := range want {
		for _, m := range methods {
			op, ok := doc.Paths[path][m].(map[string]any)
			if !ok {
				t.Errorf("openapi.yaml lacks %s %s", m, path)
				continue
			}
			if _, ok := op["responses"]; !ok {
				t.Errorf("%s %s has no responses", m, path)
			}
		}
	}
	if len(doc.Paths) != len(want) {
		t.Errorf("openapi.yaml has %d paths, the API %d", len(doc.Paths), len(want))
	}
	if s := doc.Components.SecuritySchemes["apiKey"]; s.Type != "http" || s.Scheme != "bearer" {
		t.Errorf("security scheme %+v", s)
	}
	codes := doc.Components.Schemas["Error"].Properties["error"].Enum
	for _, c := range []string{"invalid_request", "payload_too_large", "unauthorized", "invalid_code", "not_found",
		"method_not_allowed", "email_taken", "already_enrolled", "recovery_required", "not_enrolled", "expired",
		"suspended", "too_many_attempts", "internal_error", "not_ready", "forbidden"} {
		if !contains(codes, c) {
			t.Errorf("Error.error enum lacks %q", c)
		}
	}
	// The statuses of the Host API table.
	for _, c := range []struct{ path, method, status string }{
		{"/api/v1/accounts/{account}", "put", "201"},
		{"/api/v1/accounts/{account}", "put", "409"},
		{"/api/v1/accounts/{account}/2fa/enrollment", "post", "201"},
		{"/api/v1/accounts/{account}/2fa/enrollment/confirm", "post", "422"},
		{"/api/v1/accounts/{account}/2fa/enrollment/confirm", "post", "410"},
		{"/api/v1/accounts/{account}/2fa/verify", "post", "423"},
		{"/api/v1/accounts/{account}/2fa/verify", "post", "429"},
		{"/api/v1/accounts/{account}/2fa/recovery-code", "post", "423"},
	} {
		op, _ := doc.Paths[c.path][c.method].(map[string]any)
		resp, _ := op["responses"].(map[string]any)
		if _, ok := resp[c.status]; !ok {
			t.Errorf("%s %s lacks response %s", c.method, c.path, c.status)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestHeaders: every response carries the security headers; /api responses are no-store.
func TestHeaders(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createAccount(t, "h")
	for _, r := range []req{
		{method: "GET", path: twoFA("h", "")},
		{method: "GET", path: twoFA("h", ""), key: ptr("")},
		{method: "POST", path: twoFA("h", "/enrollment")},
		{method: "POST", path: twoFA("h", "/verify"), body: `{"code":1}`},
		{method: "GET", path: "/api/openapi.yaml"},
		{method: "GET", path: "/api/v1/unknown"},
		{method: "GET", path: "/healthz"},
	} {
		resp := e.do(t, r)
		for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"} {
			if resp.header.Get(k) != v {
				t.Errorf("%s %s: %s %q", r.method, r.path, k, resp.header.Get(k))
			}
		}
		if strings.HasPrefix(r.path, "/api") && resp.header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s %s: Cache-Control %q", r.method, r.path, resp.header.Get("Cache-Control"))
		}
	}
}

// TestRequestID: a well-formed incoming X-Request-ID is kept (and reaches the log); anything else
// is replaced by 16 random bytes in hex.
func TestRequestID(t *testing.T) {
	e := newEnv(t, envOptions{})
	hex := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for _, c := range []struct {
		in   string
		keep bool
	}{
		{"lb-7f3a_91", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"has space", false},
		{`inject"quote`, false},
		{"semi;colon", false},
		{"", false},
	} {
		r := e.do(t, req{method: "GET", path: "/healthz", header: map[string]string{"X-Request-ID": c.in}})
		got := r.header.Get("X-Request-ID")
		if c.keep && got != c.in || !c.keep && !hex.MatchString(got) {
			t.Errorf("incoming %q → %q", c.in, got)
		}
	}
	lines := e.logs.lines(t)
	if lines[0]["request_id"] != "lb-7f3a_91" || lines[0]["route"] != "/healthz" {
		t.Errorf("log line %v", lines[0])
	}
}

// TestTrustedProxies: security.md rule 6. X-Forwarded-For is believed only from configured
// proxies; the log's client_ip shows which address was taken.
func TestTrustedProxies(t *testing.T) {
	for _, c := range []struct {
		name    string
		proxies []string
		want    string
	}{
		{"none by default", nil, "127.0.0.1"},
		{"other proxy", []string{"10.0.0.0/8"}, "127.0.0.1"},
		{"loopback proxy", []string{"127.0.0.1/32"}, "198.51.100.9"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, envOptions{proxies: c.proxies})
			e.do(t, req{method: "GET", path: "/healthz", header: map[string]string{"X-Forwarded-For": "198.51.100.9", "X-Real-IP": "192.0.2.1"}})
			if got := e.logs.lines(t)[0]["client_ip"]; got != c.want {
				t.Errorf("client_ip %v, want %s", got, c.want)
			}
		})
	}
}

// TestCrossOriginRefused: security.md rule 5. A write a browser marks as cross-site is refused
// before it reaches a handler; server-to-server calls carry no such header.
func TestCrossOriginRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createAccount(t, "x")
	r := e.do(t, req{method: "POST", path: twoFA("x", "/enrollment"), header: map[string]string{"Sec-Fetch-Site": "cross-site"}})
	expect(t, r, http.StatusForbidden, "forbidden")
	r = e.do(t, req{method: "GET", path: twoFA("x", ""), header: map[string]string{"Sec-Fetch-Site": "cross-site"}})
	expect(t, r, http.StatusOK, "")
	if r.str("state") != "disabled" {
		t.Errorf("the refused enrollment changed the state: %s", r.raw)
	}
}

// panickingStore is the real store with one fault: Ping panics with a value that looks like a
// secret, which must not reach the log.
type panickingStore struct{ *sqlstore.Store }

func (panickingStore) Ping(context.Context) error { panic("secret 424242 in a panic value") }

func TestPanicRecovery(t *testing.T) {
	e := newEnv(t, envOptions{store: panickingStore{sqliteStore(t)}})
	r := e.do(t, req{method: "GET", path: "/readyz"})
	expect(t, r, http.StatusInternalServerError, "internal_error")
	if strings.Contains(string(r.raw), "424242") {
		t.Errorf("the answer shows the panic value: %s", r.raw)
	}
	var panics, requests int
	for _, l := range e.logs.lines(t) {
		switch l["msg"] {
		case "panic":
			panics++
			if l["level"] != "ERROR" || l["request_id"] != r.header.Get("X-Request-ID") || l["route"] != "/readyz" {
				t.Errorf("panic line %v", l)
			}
		case "request":
			requests++
			if l["status"] != float64(500) {
				t.Errorf("request line %v", l)
			}
		}
	}
	if panics != 1 || requests != 1 {
		t.Errorf("%d panic and %d request lines", panics, requests)
	}
	assertLogFree(t, e.logs, []string{"424242"})
	// The server still serves.
	expect(t, e.do(t, req{method: "GET", path: "/healthz"}), http.StatusOK, "")
}
