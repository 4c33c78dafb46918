package console

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// accountRoutes registers the end-user pages: /account/…, /reenroll/{token}, /veto/{token}.
// State changes are POSTs only; the global middleware refuses cross-origin ones. Tokens in paths
// never reach the request log: it records the route pattern (/reenroll/:token), not the path.
func (s *server) accountRoutes(r *gin.Engine) {
	r.GET("/account", s.accountHome())
	r.POST("/account/signin", s.accountSignIn())
	r.GET("/account/code", s.accountCodePage())
	r.POST("/account/code", s.accountCode())
	r.POST("/account/signout", s.accountSignOut())

	signed := r.Group("/account", s.accountAuth())
	signed.GET("/security", s.accountSecurity())
	signed.POST("/2fa/enable", s.accountEnable())
	signed.POST("/2fa/confirm", s.accountConfirm())
	signed.POST("/2fa/move", s.accountMove())
	signed.POST("/2fa/move/confirm", s.accountMoveConfirm())
	signed.POST("/2fa/disable", s.accountDisable())
	signed.POST("/recovery-codes", s.accountRegenerate())
	s.accountTelegramRoutes(signed)

	r.GET("/reenroll/:token", s.reenrollPage())
	r.POST("/reenroll/:token", s.reenrollStart())
	r.POST("/reenroll/:token/confirm", s.reenrollConfirm())

	r.GET("/veto/:token", s.vetoPage())
	r.POST("/veto/:token", s.veto())
}

// accountCookie is the end users' session cookie: another name than the agents' (rd_console),
// and scoped to /account, so that the two kinds of session never mix.
const accountCookie = "rd_account"

type accountSessionKey struct{}

func (s *server) secureAccountCookie(c *gin.Context) bool {
	return c.Request.TLS != nil || strings.HasPrefix(s.baseURL, "https://")
}

// setAccountCookie gives the browser a session id: HttpOnly, SameSite=Strict, Secure behind TLS,
// a session cookie (the server ends it after 8 h or 30 min idle).
func (s *server) setAccountCookie(c *gin.Context, token string) {
	http.SetCookie(c.Writer, &http.Cookie{Name: accountCookie, Value: token, Path: "/account", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.secureAccountCookie(c)})
}

func (s *server) clearAccountCookie(c *gin.Context) {
	http.SetCookie(c.Writer, &http.Cookie{Name: accountCookie, Value: "", Path: "/account", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.secureAccountCookie(c)})
}

// accountSession returns the request's live session, or ok false (its cookie cleared).
func (s *server) accountSession(c *gin.Context) (recovery.UserSession, bool, error) {
	token, err := c.Cookie(accountCookie)
	if err != nil || token == "" {
		return recovery.UserSession{}, false, nil
	}
	u, err := s.svc.UserSession(c.Request.Context(), token)
	if errors.Is(err, recovery.ErrUnauthorized) {
		s.clearAccountCookie(c)
		return recovery.UserSession{}, false, nil
	}
	if err != nil {
		return recovery.UserSession{}, false, err
	}
	return u, true, nil
}

// accountAuth admits only a fully signed-in end user; others go to the sign-in page (GET) or
// get it with 401 (POST).
func (s *server) accountAuth() gin.HandlerFunc {
	return func(c *gin.Context) {
		u, ok, err := s.accountSession(c)
		if err != nil {
			s.failPage(c, err)
			return
		}
		if !ok || u.Stage != recovery.StageFull {
			if c.Request.Method == http.MethodGet {
				c.Redirect(http.StatusSeeOther, "/account")
				c.Abort()
				return
			}
			s.render(c, http.StatusUnauthorized, "account/signin", signInPage{Error: "Your session has ended. Please sign in again."})
			c.Abort()
			return
		}
		c.Set(accountSessionKey{}, u)
		c.Next()
	}
}

func signedIn(c *gin.Context) recovery.UserSession {
	v, _ := c.Get(accountSessionKey{})
	u, _ := v.(recovery.UserSession)
	return u
}

// endUser is who the domain records for an end-user page: the account (when known), the request
// id and the client address (the per-IP limiter counts it; gin's ClientIP believes
// X-Forwarded-For only from the trusted proxies).
func (s *server) endUser(c *gin.Context, accountID string) recovery.Actor {
	return recovery.Actor{Type: recovery.ActorEndUser, ID: accountID, RequestID: state(c).id, IP: c.ClientIP()}
}
