package console

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// consoleRoute is one row of the console's role × route table: every console page and action
// is listed once, with the least role that may use it, and registered behind agentAuth(MinRole).
// MinRole is recovery.RoleAgent, RoleSupervisor or RoleAdmin.
type consoleRoute struct {
	Method, Path, MinRole string
	Handler               gin.HandlerFunc
}

// consoleTable is the whole role × route table: the core pages (console_*.go) and the
// secondary pages (console2_*.go). Tests walk it for the role matrix.
func (s *server) consoleTable() []consoleRoute {
	return append(s.coreConsoleRoutes(), s.moreConsoleRoutes()...)
}

// Keys of the values agentAuth leaves on the gin context for the handlers.
type (
	agentKey   struct{}
	sessionKey struct{}
)

// sessionCookie is the name of the agents' session cookie; the end users' cookie is another,
// so that the two kinds of session never mix (security.md).
const sessionCookie = "rd_console"

// agentAuth admits a request only with a live, fully signed-in (password and TOTP) session of an
// enabled agent holding at least minRole. Without a session a GET is sent to the sign-in page
// and anything else gets 401; a session whose agent lacks the role gets 403. The session's
// agent is read fresh from the database on every request, so a role change, a disable or a 2FA
// reset (each bumps the agent's Epoch) ends the session at once.
func (s *server) agentAuth(minRole string) gin.HandlerFunc {
	return func(c *gin.Context) {
		sess, a, err := s.loadSession(c)
		if err != nil {
			s.failPage(c, err)
			return
		}
		if sess == nil || !sess.Verified {
			if c.Request.Method == http.MethodGet {
				c.Redirect(http.StatusSeeOther, "/console/signin")
				c.Abort()
				return
			}
			s.consoleError(c, http.StatusUnauthorized, "Your session has ended. Please sign in again.")
			return
		}
		if !a.AtLeast(minRole) {
			s.consoleError(c, http.StatusForbidden, "Your role does not allow this page or action.")
			return
		}
		c.Set(agentKey{}, a)
		c.Set(sessionKey{}, *sess)
		c.Next()
	}
}

// loadSession reads the request's session cookie and returns the live session and its agent,
// or nil when there is no live session (no cookie, unknown, expired, ended by an epoch change
// or a disabled agent). A dead session's cookie is cleared.
func (s *server) loadSession(c *gin.Context) (*recovery.AgentSession, recovery.Agent, error) {
	token, err := c.Cookie(sessionCookie)
	if err != nil || token == "" {
		return nil, recovery.Agent{}, nil
	}
	sess, a, err := s.svc.AgentSession(c.Request.Context(), token)
	if errors.Is(err, recovery.ErrUnauthorized) || errors.Is(err, recovery.ErrNotFound) {
		s.clearSessionCookie(c)
		return nil, recovery.Agent{}, nil
	}
	if err != nil {
		return nil, recovery.Agent{}, err
	}
	return &sess, a, nil
}

// setSessionCookie gives the browser a session id: HttpOnly, SameSite=Strict, Secure when the
// console is served over https, and without Max-Age (the server decides when it ends).
func (s *server) setSessionCookie(c *gin.Context, token string) {
	http.SetCookie(c.Writer, &http.Cookie{Name: sessionCookie, Value: token, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.secureCookies()})
}

func (s *server) clearSessionCookie(c *gin.Context) {
	http.SetCookie(c.Writer, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.secureCookies()})
}

// secureCookies reports whether cookies must carry Secure: whenever the public URL is https.
func (s *server) secureCookies() bool {
	return strings.HasPrefix(strings.ToLower(s.baseURL), "https://")
}

// currentAgent is the signed-in agent of a request that passed agentAuth.
func currentAgent(c *gin.Context) recovery.Agent {
	v, _ := c.Get(agentKey{})
	a, _ := v.(recovery.Agent)
	return a
}

// currentSession is the session of a request that passed agentAuth.
func currentSession(c *gin.Context) recovery.AgentSession {
	v, _ := c.Get(sessionKey{})
	sess, _ := v.(recovery.AgentSession)
	return sess
}

// agentActor is the audit actor of a request that passed agentAuth: the agent, the request id
// and the client address (as the trusted-proxy rule determines it).
func agentActor(c *gin.Context) recovery.Actor {
	return recovery.Actor{Type: recovery.ActorAgent, ID: currentAgent(c).ID, RequestID: state(c).id, IP: c.ClientIP()}
}

// stepUpAt is when the agent last entered their own TOTP in this session (at sign-in or in a
// step-up form); zero if never. Approve, deny and execute hand it to the domain, which decides
// whether it is recent enough.
func (s *server) stepUpAt(c *gin.Context) time.Time { return currentSession(c).StepUpAt }
