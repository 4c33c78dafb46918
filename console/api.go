package console

import (
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// apiKey authenticates the host platform by its bearer key. A missing, malformed, unknown or
// revoked key is 401 unauthorized; the key itself is never logged.
func (s *server) apiKey() gin.HandlerFunc {
	return func(c *gin.Context) {
		key, ok := bearer(c.GetHeader("Authorization"))
		if !ok {
			c.Header("WWW-Authenticate", `Bearer realm="recoverydesk"`)
			s.fail(c, recovery.ErrUnauthorized)
			return
		}
		name, err := s.svc.AuthenticateAPIKey(c.Request.Context(), key)
		if err != nil {
			if errors.Is(err, recovery.ErrUnauthorized) {
				c.Header("WWW-Authenticate", `Bearer realm="recoverydesk", error="invalid_token"`)
			}
			s.fail(c, err)
			return
		}
		state(c).keyName = name
		c.Next()
	}
}

// bearer extracts the token of an "Authorization: Bearer <token>" header (the scheme is
// case-insensitive, RFC 9110 §11.1).
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

// validAccount refuses an account path parameter the domain could never store, before any body
// is read.
func (s *server) validAccount() gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := recovery.CheckAccountID(c.Param("account")); err != nil {
			s.fail(c, err)
			return
		}
		c.Next()
	}
}

// actor is who the domain records for an API request: the key's name, the request id, and the
// end user's address when the host passed one (ip "" is never limited).
func (s *server) actor(c *gin.Context, ip string) recovery.Actor {
	rs := state(c)
	return recovery.Actor{Type: recovery.ActorAPIKey, ID: rs.keyName, RequestID: rs.id, IP: ip}
}

// clientIP parses the optional "ip" field into its canonical form (IPv4-mapped IPv6 unmapped,
// IPv6 compressed and lower-cased), as the audit records it; the domain decides what the per-IP
// limiter counts. Absent, null or "" means unknown.
func clientIP(v *string) (string, error) {
	if v == nil || *v == "" {
		return "", nil
	}
	a, err := netip.ParseAddr(*v)
	if err != nil || a.Zone() != "" {
		return "", invalid(`"ip" must be an IPv4 or IPv6 address`)
	}
	return a.Unmap().String(), nil
}

// codeRequest is the body of every code-checking endpoint.
type codeRequest struct {
	Code *string `json:"code"`
	IP   *string `json:"ip"`
}

// decodeCode reads a codeRequest and returns the code as sent (the domain normalizes it: bad
// formats are refused there and never counted) and the actor.
func (s *server) decodeCode(c *gin.Context) (string, recovery.Actor, error) {
	var req codeRequest
	if err := decode(c, &req); err != nil {
		return "", recovery.Actor{}, err
	}
	if req.Code == nil {
		return "", recovery.Actor{}, invalid(`"code" is required`)
	}
	ip, err := clientIP(req.IP)
	if err != nil {
		return "", recovery.Actor{}, err
	}
	return *req.Code, s.actor(c, ip), nil
}

// timeJSON writes t as RFC 3339 in UTC, or null when it is zero.
func timeJSON(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	v := t.UTC().Format(time.RFC3339)
	return &v
}
