package console

import (
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// The sign-in is two steps on one server-side session: the password starts a pending session
// (new id), the agent's own TOTP — or, for an agent without an active enrollment, the first
// enrollment — turns it into a verified session under another new id. Pages that show codes or
// QR images carry no-store (render sets it on every page).

// requestActor is the audit actor of a request before anyone is signed in.
func requestActor(c *gin.Context) recovery.Actor {
	return recovery.Actor{Type: recovery.ActorAgent, RequestID: state(c).id, IP: c.ClientIP()}
}

func (s *server) signInPage() gin.HandlerFunc {
	return func(c *gin.Context) {
		s.render(c, http.StatusOK, "console/signin", map[string]any{"Flash": s.takeFlash(c)})
	}
}

func (s *server) signIn() gin.HandlerFunc {
	return func(c *gin.Context) {
		email, password := strings.TrimSpace(c.PostForm("email")), c.PostForm("password")
		old, _ := c.Cookie(sessionCookie)
		token, _, err := s.svc.StartAgentSession(c.Request.Context(), requestActor(c), email, password, old)
		if err != nil {
			status, msg := signInError(err)
			if status == 0 {
				s.failPage(c, err)
				return
			}
			// The e-mail is echoed back (it is what the agent typed); the password never is.
			s.render(c, status, "console/signin", map[string]any{"Error": msg, "Email": email})
			return
		}
		s.setSessionCookie(c, token)
		c.Redirect(http.StatusSeeOther, "/console/signin/totp")
	}
}

// signInError maps a sign-in refusal: unknown agent and wrong password read the same.
func signInError(err error) (int, string) {
	switch {
	case errors.Is(err, recovery.ErrUnauthorized):
		return http.StatusUnauthorized, "The e-mail address or the password is not right."
	case errors.Is(err, recovery.ErrTooManyAttempts):
		return http.StatusTooManyRequests, "Too many attempts. Wait a little and try again."
	case errors.Is(err, recovery.ErrInvalidCode):
		return http.StatusUnauthorized, "That code did not work. Enter the current code from your authenticator app (check that your phone's clock is right)."
	case errors.Is(err, recovery.ErrSuspended):
		return http.StatusLocked, "Your two-factor authentication is suspended after too many wrong codes. Ask an admin to reset it."
	case errors.Is(err, recovery.ErrExpired):
		return http.StatusGone, "The enrollment expired. Start it again."
	case errors.Is(err, recovery.ErrInvalidInput):
		return http.StatusBadRequest, "Enter the 6-digit code from your authenticator app."
	case errors.Is(err, recovery.ErrConflict):
		return http.StatusConflict, "This sign-in is already complete. Open the console."
	}
	return 0, ""
}

// pending returns the browser's live pending (password-only) session, or sends the browser back
// to the password step and reports false.
func (s *server) pending(c *gin.Context) (recovery.AgentSession, recovery.Agent, bool) {
	sess, a, err := s.loadSession(c)
	if err != nil {
		s.failPage(c, err)
		return recovery.AgentSession{}, recovery.Agent{}, false
	}
	if sess == nil {
		s.setFlash(c, "session_ended")
		c.Redirect(http.StatusSeeOther, "/console/signin")
		return recovery.AgentSession{}, recovery.Agent{}, false
	}
	if sess.Verified {
		c.Redirect(http.StatusSeeOther, "/console")
		return recovery.AgentSession{}, recovery.Agent{}, false
	}
	return *sess, a, true
}

// enrolled reports whether the agent has an active TOTP enrollment.
func (s *server) enrolled(c *gin.Context, a recovery.Agent) (bool, error) {
	st, err := s.svc.AgentTwoFactorStatus(c.Request.Context(), a.ID)
	if err != nil {
		return false, err
	}
	return st.State == recovery.StateActive || st.State == recovery.StateSuspended, nil
}

func (s *server) totpPage() gin.HandlerFunc {
	return func(c *gin.Context) {
		_, a, ok := s.pending(c)
		if !ok {
			return
		}
		on, err := s.enrolled(c, a)
		if err != nil {
			s.failPage(c, err)
			return
		}
		if !on {
			c.Redirect(http.StatusSeeOther, "/console/enroll")
			return
		}
		s.render(c, http.StatusOK, "console/totp", map[string]any{"Name": a.Name})
	}
}

func (s *server) totp() gin.HandlerFunc {
	return func(c *gin.Context) {
		_, a, ok := s.pending(c)
		if !ok {
			return
		}
		token, _ := c.Cookie(sessionCookie)
		next, err := s.svc.CompleteAgentSignIn(c.Request.Context(), requestActor(c), token, c.PostForm("code"))
		if err != nil {
			status, msg := signInError(err)
			if status == 0 {
				s.failPage(c, err)
				return
			}
			s.render(c, status, "console/totp", map[string]any{"Name": a.Name, "Error": msg})
			return
		}
		s.setSessionCookie(c, next)
		c.Redirect(http.StatusSeeOther, "/console")
	}
}

// enrollPage explains the first enrollment; the QR is created by the POST (a GET changes
// nothing, and a new pending secret is state).
func (s *server) enrollPage() gin.HandlerFunc {
	return func(c *gin.Context) {
		_, a, ok := s.pending(c)
		if !ok {
			return
		}
		s.render(c, http.StatusOK, "console/enroll", map[string]any{"Name": a.Name})
	}
}

// enroll begins the enrollment (step "begin": shows the QR code as a data: URI image and the
// manual code, in this answer only) or confirms it with a code (step "confirm").
func (s *server) enroll() gin.HandlerFunc {
	return func(c *gin.Context) {
		_, a, ok := s.pending(c)
		if !ok {
			return
		}
		ctx := c.Request.Context()
		actor := requestActor(c)
		actor.ID = a.ID
		data := map[string]any{"Name": a.Name}
		if c.PostForm("step") == "confirm" {
			token, _ := c.Cookie(sessionCookie)
			next, err := s.svc.ConfirmAgentSessionEnrollment(ctx, actor, token, c.PostForm("code"))
			if err == nil {
				s.setSessionCookie(c, next)
				c.Redirect(http.StatusSeeOther, "/console")
				return
			}
			status, msg := signInError(err)
			if status == 0 {
				s.failPage(c, err)
				return
			}
			data["Error"] = msg
			s.render(c, status, "console/enroll", data)
			return
		}
		en, err := s.svc.AgentBeginEnrollment(ctx, actor, a.ID)
		if errors.Is(err, recovery.ErrAlreadyEnrolled) {
			c.Redirect(http.StatusSeeOther, "/console/signin/totp")
			return
		}
		if err != nil {
			if status, msg := signInError(err); status != 0 {
				data["Error"] = msg
				s.render(c, status, "console/enroll", data)
				return
			}
			s.failPage(c, err)
			return
		}
		// The QR is a data: URI (the CSP allows data: images); template.URL marks it as
		// trusted because we built it from our own PNG bytes.
		data["QR"] = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(en.QRPNG))
		data["ManualCode"] = en.ManualCode
		data["ExpiresAt"] = en.ExpiresAt
		s.render(c, http.StatusOK, "console/enroll", data)
	}
}

func (s *server) signOut() gin.HandlerFunc {
	return func(c *gin.Context) {
		token, _ := c.Cookie(sessionCookie)
		if err := s.svc.EndAgentSession(c.Request.Context(), requestActor(c), token); err != nil {
			s.failPage(c, err)
			return
		}
		s.clearSessionCookie(c)
		s.setFlash(c, "signed_out")
		c.Redirect(http.StatusSeeOther, "/console/signin")
	}
}

// setupPage shows the form of a setup link: a password for a new or reset agent; e-mail, name
// and password for the first admin. Unknown, used and expired links read the same.
func (s *server) setupPage() gin.HandlerFunc {
	return func(c *gin.Context) {
		a, err := s.svc.SetupLink(c.Request.Context(), c.Param("token"))
		if errors.Is(err, recovery.ErrNotFound) {
			s.render(c, http.StatusNotFound, "console/setup", map[string]any{"Dead": true})
			return
		}
		if err != nil {
			s.failPage(c, err)
			return
		}
		s.render(c, http.StatusOK, "console/setup", map[string]any{"Agent": a, "FirstAdmin": a.ID == "", "Token": c.Param("token")})
	}
}

func (s *server) setup() gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, token := c.Request.Context(), c.Param("token")
		a, err := s.svc.SetupLink(ctx, token)
		if errors.Is(err, recovery.ErrNotFound) {
			s.render(c, http.StatusNotFound, "console/setup", map[string]any{"Dead": true})
			return
		}
		if err != nil {
			s.failPage(c, err)
			return
		}
		password := c.PostForm("password")
		data := map[string]any{"Agent": a, "FirstAdmin": a.ID == "", "Token": token,
			"Email": c.PostForm("email"), "Name": c.PostForm("name")}
		if password != c.PostForm("password2") {
			data["Error"] = "The two passwords differ."
			s.render(c, http.StatusBadRequest, "console/setup", data)
			return
		}
		if a.ID == "" {
			_, err = s.svc.CompleteFirstAdmin(ctx, token, strings.TrimSpace(c.PostForm("email")), strings.TrimSpace(c.PostForm("name")), password)
		} else {
			_, err = s.svc.CompleteSetup(ctx, token, password)
		}
		switch {
		case err == nil:
			s.setFlash(c, "saved")
			c.Redirect(http.StatusSeeOther, "/console/signin")
		case errors.Is(err, recovery.ErrInvalidInput):
			// The domain's input messages name the rule (length, format), never a secret.
			data["Error"] = err.Error()
			s.render(c, http.StatusBadRequest, "console/setup", data)
		case errors.Is(err, recovery.ErrNotFound), errors.Is(err, recovery.ErrConflict):
			s.render(c, http.StatusNotFound, "console/setup", map[string]any{"Dead": true})
		default:
			s.failPage(c, err)
		}
	}
}
