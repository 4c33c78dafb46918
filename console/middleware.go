package console

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// requestState is what the middleware and the handlers of one request share. It is created by
// observe, the first middleware, and lives only as long as the request.
type requestState struct {
	id        string // request id, also the audit events' request_id
	keyName   string // name of the API key that authenticated the request, if any
	errorCode string // error code answered, for the log line
	cause     error  // cause of a 5xx answer, for the log line only
}

type stateKey struct{}

// state returns the request's state (a fresh one if observe did not run, as in 404s that gin
// answers before any middleware: that does not happen with our setup, but it must not panic).
func state(c *gin.Context) *requestState {
	if v, ok := c.Get(stateKey{}); ok {
		if rs, ok := v.(*requestState); ok {
			return rs
		}
	}
	rs := &requestState{id: newRequestID()}
	c.Set(stateKey{}, rs)
	return rs
}

// newRequestID returns 16 random bytes in hex. crypto/rand.Read does not fail (it crashes the
// program if the kernel's generator is unavailable).
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// incomingRequestID accepts a caller's X-Request-ID only if it is 1-64 characters of
// [A-Za-z0-9_-]: it goes into log lines and audit events, so nothing that could forge a log
// line or carry markup is taken over.
func incomingRequestID(v string) bool {
	if v == "" || len(v) > 64 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// observe is the outermost middleware: it assigns the request id, recovers panics, and writes
// exactly one log line per request with the route template (never the raw path or query, which
// may carry tokens), status, duration and client address. It never logs bodies, headers, codes,
// secrets or keys.
func (s *server) observe() gin.HandlerFunc {
	return func(c *gin.Context) {
		// Wall-clock use is for the duration in the log only (monotonic reading); no decision
		// depends on it, so it does not go through the domain's injected clock.
		start := time.Now()
		rs := &requestState{id: newRequestID()}
		if in := c.GetHeader("X-Request-ID"); incomingRequestID(in) {
			rs.id = in
		}
		c.Set(stateKey{}, rs)
		c.Header("X-Request-ID", rs.id)

		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler { // the server's way to drop a connection silently
					panic(v)
				}
				s.log.LogAttrs(c.Request.Context(), slog.LevelError, "panic",
					slog.String("request_id", rs.id),
					slog.String("route", c.FullPath()),
					slog.String("panic", describePanic(v)),
					slog.String("stack", string(debug.Stack())))
				if c.Writer.Written() {
					c.Abort()
				} else {
					s.answerError(c, apiError{status: http.StatusInternalServerError, code: "internal_error", message: "internal error"}, nil)
				}
			}
			s.logRequest(c, rs, start)
		}()
		c.Next()
	}
}

// describePanic names a panic without echoing arbitrary values, which might hold a secret:
// runtime errors (nil dereference, index out of range) have fixed texts; anything else is
// reported by its type only.
func describePanic(v any) string {
	var re runtime.Error
	if err, ok := v.(error); ok && errors.As(err, &re) {
		return re.Error()
	}
	return fmt.Sprintf("panic value of type %T", v)
}

func (s *server) logRequest(c *gin.Context, rs *requestState, start time.Time) {
	code := c.Writer.Status()
	level := slog.LevelInfo
	if code >= 500 {
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.String("request_id", rs.id),
		slog.String("method", c.Request.Method),
		slog.String("route", c.FullPath()), // "" for unknown routes
		slog.Int("status", code),
		slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
		slog.String("client_ip", c.ClientIP()),
	}
	if rs.keyName != "" {
		attrs = append(attrs, slog.String("api_key_name", rs.keyName))
	}
	if rs.errorCode != "" {
		attrs = append(attrs, slog.String("error", rs.errorCode))
	}
	if rs.cause != nil {
		attrs = append(attrs, slog.String("cause", rs.cause.Error()))
	}
	s.log.LogAttrs(c.Request.Context(), level, "request", attrs...)
}

// secure sets the headers every response carries, refuses cross-origin browser writes
// (security.md rule 5) and limits the request body.
func (s *server) secure() gin.HandlerFunc {
	cop := http.NewCrossOriginProtection()
	return func(c *gin.Context) {
		h := c.Writer.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if p := c.Request.URL.Path; p == "/api" || strings.HasPrefix(p, "/api/") {
			// API answers carry secrets (enrollment secrets, recovery codes): never cache them,
			// and let nothing they contain run as a document.
			h.Set("Cache-Control", "no-store")
			h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		}
		if err := cop.Check(c.Request); err != nil {
			s.answerError(c, apiError{status: http.StatusForbidden, code: "forbidden", message: "cross-origin request refused"}, nil)
			return
		}
		if c.Request.Body != nil && c.Request.Body != http.NoBody {
			c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, s.maxBody)
		}
		c.Next()
	}
}
