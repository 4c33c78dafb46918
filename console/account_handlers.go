package console

import (
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// What end users read. A wrong, replayed, throttled or malformed code, and a code for an account
// that cannot take one, all get codeFailed: the user learns nothing an attacker could use
// (security.md rule 3), and the time-sync hint covers the usual honest cause.
const (
	codeFailed = "That code did not work. Type the 6 digits your authenticator app shows right now. " +
		"If it keeps failing, wait a minute and try again, and check your phone's clock."
	timeSyncHint = "Codes depend on your phone's clock. Turn on automatic date and time in your phone's settings; " +
		"in Google Authenticator you can also use Settings › Time correction for codes › Sync now, " +
		"and other authenticator apps offer time synchronization in their settings."
	passwordFailed   = "The e-mail address or password is not right, or there were too many attempts. Please try again later."
	reauthFailed     = "The password is not right, or there were too many attempts. Please try again later."
	recoveryRequired = "Two-factor authentication on this account can only be restored through support."
	supportContact   = "If you cannot sign in, contact support through the chat on the website, in your personal account, or on Telegram."
)

// Page data, one type per page.
type (
	signInPage struct {
		Error, Email string
	}
	codePage struct {
		Error    string
		Hint     bool
		Recovery bool // the recovery-code form is the one shown
	}
	enrollPage struct {
		Title      string
		Action     string // where the 6-digit confirmation posts
		ManualCode string // "" once the secret must not be shown again
		QR         template.URL
		ExpiresAt  time.Time
		Error      string
		Hint       bool
		Restart    string // where to start again when the secret is no longer shown
	}
	codesPage struct {
		Title, Intro string
		Codes        []string
		File         template.URL
		Next         string
		Drift        string
	}
	securityPage struct {
		Email         string
		Status        recovery.Status
		Active        bool
		Timeline      []recovery.SecurityEvent
		Error, Notice string
		Hint          bool
		Telegram      telegramView
	}
	reenrollPage struct {
		Action, Error string
	}
	vetoPage struct {
		Action string
		Frozen bool
	}
	messagePage struct {
		Title, Message, Detail string
	}
)

// isCodeRefusal reports the answers that become codeFailed.
func isCodeRefusal(err error) bool {
	return errors.Is(err, recovery.ErrInvalidCode) || errors.Is(err, recovery.ErrTooManyAttempts) ||
		errors.Is(err, recovery.ErrSuspended) || errors.Is(err, recovery.ErrInvalidInput) ||
		errors.Is(err, recovery.ErrNotEnrolled) || errors.Is(err, recovery.ErrExpired)
}

// driftNote tells a user whose code matched a step early or late how far their clock is off.
func driftNote(seconds int) string {
	if seconds == 0 {
		return ""
	}
	way := "ahead"
	if seconds < 0 {
		way, seconds = "behind", -seconds
	}
	return fmt.Sprintf("Your code worked, but your phone's clock seems to be about %d seconds %s. "+
		"Turn on automatic date and time (Settings › Date & time › Set automatically) so that codes keep working.", seconds, way)
}

func qrURL(png []byte) template.URL {
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
}

// codesFile is the recovery codes as a text file to download (a data: URI, so the codes are
// never stored or served again).
func codesFile(codes []string) template.URL {
	text := "RecoveryDesk recovery codes\r\n" +
		"Each code works once. Keep them somewhere safe.\r\n\r\n" + strings.Join(codes, "\r\n") + "\r\n"
	return template.URL("data:text/plain;charset=utf-8;base64," + base64.StdEncoding.EncodeToString([]byte(text)))
}

func (s *server) accountHome() gin.HandlerFunc {
	return func(c *gin.Context) {
		u, ok, err := s.accountSession(c)
		if err != nil {
			s.failPage(c, err)
			return
		}
		if ok && u.Stage == recovery.StageFull {
			c.Redirect(http.StatusSeeOther, "/account/security")
			return
		}
		if ok && u.Stage == recovery.StagePassword {
			c.Redirect(http.StatusSeeOther, "/account/code")
			return
		}
		s.render(c, http.StatusOK, "account/signin", signInPage{})
	}
}

func (s *server) accountSignIn() gin.HandlerFunc {
	return func(c *gin.Context) {
		email, password := strings.TrimSpace(c.PostForm("email")), c.PostForm("password")
		sess, err := s.svc.AccountSignIn(c.Request.Context(), s.endUser(c, ""), email, password)
		if errors.Is(err, recovery.ErrUnauthorized) || errors.Is(err, recovery.ErrTooManyAttempts) {
			s.render(c, http.StatusUnauthorized, "account/signin", signInPage{Error: passwordFailed, Email: email})
			return
		}
		if err != nil {
			s.failPage(c, err)
			return
		}
		s.setAccountCookie(c, sess.Token)
		if sess.Stage == recovery.StagePassword {
			c.Redirect(http.StatusSeeOther, "/account/code")
			return
		}
		c.Redirect(http.StatusSeeOther, "/account/security")
	}
}

func (s *server) accountCodePage() gin.HandlerFunc {
	return func(c *gin.Context) {
		u, ok, err := s.accountSession(c)
		if err != nil {
			s.failPage(c, err)
			return
		}
		if !ok || u.Stage != recovery.StagePassword {
			c.Redirect(http.StatusSeeOther, "/account")
			return
		}
		s.render(c, http.StatusOK, "account/code", codePage{Recovery: c.Query("with") == "recovery-code"})
	}
}

func (s *server) accountCode() gin.HandlerFunc {
	return func(c *gin.Context) {
		token, _ := c.Cookie(accountCookie)
		useRC := c.PostForm("kind") == "recovery"
		sess, v, err := s.svc.AccountSecondFactor(c.Request.Context(), s.endUser(c, ""), token, c.PostForm("code"), useRC)
		if errors.Is(err, recovery.ErrUnauthorized) {
			s.clearAccountCookie(c)
			s.render(c, http.StatusUnauthorized, "account/signin", signInPage{Error: "Your sign-in took too long. Please start again."})
			return
		}
		if isCodeRefusal(err) {
			s.render(c, http.StatusUnauthorized, "account/code", codePage{Error: codeFailed, Hint: true, Recovery: useRC})
			return
		}
		if err != nil {
			s.failPage(c, err)
			return
		}
		s.setAccountCookie(c, sess.Token)
		if note := driftNote(v.DriftSeconds); note != "" {
			s.renderSecurity(c, sess.AccountID, http.StatusOK, securityPage{Notice: note})
			return
		}
		c.Redirect(http.StatusSeeOther, "/account/security")
	}
}

func (s *server) accountSignOut() gin.HandlerFunc {
	return func(c *gin.Context) {
		token, _ := c.Cookie(accountCookie)
		if err := s.svc.EndUserSession(c.Request.Context(), s.endUser(c, ""), token); err != nil {
			s.failPage(c, err)
			return
		}
		s.clearAccountCookie(c)
		s.render(c, http.StatusOK, "account/signin", signInPage{Error: "", Email: ""})
	}
}

func (s *server) accountSecurity() gin.HandlerFunc {
	return func(c *gin.Context) {
		s.renderSecurity(c, signedIn(c).AccountID, http.StatusOK, securityPage{})
	}
}

// renderSecurity fills the security page of accountID around p's message.
func (s *server) renderSecurity(c *gin.Context, accountID string, status int, p securityPage) {
	ctx := c.Request.Context()
	a, err := s.svc.Account(ctx, accountID)
	if err != nil {
		s.failPage(c, err)
		return
	}
	if p.Status, err = s.svc.TwoFactorStatus(ctx, accountID); err != nil {
		s.failPage(c, err)
		return
	}
	if p.Timeline, err = s.svc.SecurityTimeline(ctx, accountID, 20); err != nil {
		s.failPage(c, err)
		return
	}
	p.Email = a.Email
	p.Active = p.Status.State == recovery.StateActive || p.Status.State == recovery.StateSuspended
	if !p.Telegram.Available {
		if p.Telegram, err = s.telegramState(c, accountID); err != nil {
			s.failPage(c, err)
			return
		}
	}
	s.render(c, status, "account/security", p)
}

// renderSecurityTelegram shows the security page with a Telegram link just made.
func (s *server) renderSecurityTelegram(c *gin.Context, accountID string, tv telegramView) {
	s.renderSecurity(c, accountID, http.StatusOK, securityPage{Telegram: tv})
}

// accountEnable: the password again, then a new secret with its manual code and QR.
func (s *server) accountEnable() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := signedIn(c).AccountID
		ctx, actor := c.Request.Context(), s.endUser(c, id)
		err := s.svc.AccountReauth(ctx, actor, id, c.PostForm("password"))
		if errors.Is(err, recovery.ErrUnauthorized) || errors.Is(err, recovery.ErrTooManyAttempts) {
			s.renderSecurity(c, id, http.StatusUnauthorized, securityPage{Error: reauthFailed})
			return
		}
		if err != nil {
			s.failPage(c, err)
			return
		}
		en, err := s.svc.BeginEnrollment(ctx, actor, id, "")
		if errors.Is(err, recovery.ErrAlreadyEnrolled) {
			c.Redirect(http.StatusSeeOther, "/account/security")
			return
		}
		if errors.Is(err, recovery.ErrRecoveryRequired) {
			s.renderSecurity(c, id, http.StatusConflict, securityPage{Error: recoveryRequired})
			return
		}
		if err != nil {
			s.failPage(c, err)
			return
		}
		s.render(c, http.StatusOK, "account/enroll", enrollPage{Title: "Enable two-factor authentication",
			Action: "/account/2fa/confirm", ManualCode: en.ManualCode, QR: qrURL(en.QRPNG), ExpiresAt: en.ExpiresAt})
	}
}

// confirmed answers a confirmation: the recovery codes, shown once; or the form again, without
// the secret (it is shown only on the page that created it), and the time-sync hint.
func (s *server) confirmed(c *gin.Context, res recovery.Confirmed, err error, retry enrollPage, done codesPage) {
	switch {
	case errors.Is(err, recovery.ErrExpired) || errors.Is(err, recovery.ErrNotEnrolled):
		retry.Error = "The setup took longer than 10 minutes and has expired. Please start again."
		s.render(c, http.StatusGone, "account/enroll", retry)
	case isCodeRefusal(err):
		retry.Error, retry.Hint = codeFailed, true
		s.render(c, http.StatusUnauthorized, "account/enroll", retry)
	case errors.Is(err, recovery.ErrAlreadyEnrolled):
		c.Redirect(http.StatusSeeOther, "/account/security")
	case err != nil:
		s.failPage(c, err)
	default:
		done.Codes, done.File, done.Drift = res.RecoveryCodes, codesFile(res.RecoveryCodes), driftNote(res.DriftSeconds)
		s.render(c, http.StatusOK, "account/codes", done)
	}
}

var enabledCodes = codesPage{Title: "Two-factor authentication is on",
	Intro: "From now on you will be asked for the 6-digit code from your authenticator app when you sign in. " +
		"These recovery codes let you in if you lose your phone. Each works once. They are shown only now: save them somewhere safe.",
	Next: "/account/security"}

func (s *server) accountConfirm() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := signedIn(c).AccountID
		res, err := s.svc.ConfirmEnrollment(c.Request.Context(), s.endUser(c, id), id, c.PostForm("code"))
		s.confirmed(c, res, err, enrollPage{Title: "Enable two-factor authentication", Action: "/account/2fa/confirm",
			Restart: "/account/security"}, enabledCodes)
	}
}

func (s *server) accountMove() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := signedIn(c).AccountID
		en, err := s.svc.BeginMove(c.Request.Context(), s.endUser(c, id), id, c.PostForm("code"))
		if isCodeRefusal(err) {
			s.renderSecurity(c, id, http.StatusUnauthorized, securityPage{Error: codeFailed, Hint: true})
			return
		}
		if err != nil {
			s.failPage(c, err)
			return
		}
		s.render(c, http.StatusOK, "account/enroll", enrollPage{Title: "Move to a new phone",
			Action: "/account/2fa/move/confirm", ManualCode: en.ManualCode, QR: qrURL(en.QRPNG), ExpiresAt: en.ExpiresAt})
	}
}

func (s *server) accountMoveConfirm() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := signedIn(c).AccountID
		res, err := s.svc.ConfirmMove(c.Request.Context(), s.endUser(c, id), id, c.PostForm("code"))
		s.confirmed(c, res, err, enrollPage{Title: "Move to a new phone", Action: "/account/2fa/move/confirm", Restart: "/account/security"},
			codesPage{Title: "Your new phone is set up", Next: "/account/security",
				Intro: "Codes from the old phone no longer work. Your old recovery codes were replaced by these; each works once and they are shown only now."})
	}
}

func (s *server) accountDisable() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := signedIn(c).AccountID
		err := s.svc.TurnOff(c.Request.Context(), s.endUser(c, id), id, c.PostForm("password"), c.PostForm("code"))
		switch {
		case errors.Is(err, recovery.ErrUnauthorized):
			s.renderSecurity(c, id, http.StatusUnauthorized, securityPage{Error: reauthFailed})
		case isCodeRefusal(err):
			s.renderSecurity(c, id, http.StatusUnauthorized, securityPage{Error: codeFailed, Hint: true})
		case err != nil:
			s.failPage(c, err)
		default:
			s.renderSecurity(c, id, http.StatusOK, securityPage{Notice: "Two-factor authentication is off. We sent a notice to your e-mail address."})
		}
	}
}

func (s *server) accountRegenerate() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := signedIn(c).AccountID
		codes, err := s.svc.RegenerateRecoveryCodes(c.Request.Context(), s.endUser(c, id), id, c.PostForm("code"))
		if isCodeRefusal(err) {
			s.renderSecurity(c, id, http.StatusUnauthorized, securityPage{Error: codeFailed, Hint: true})
			return
		}
		if err != nil {
			s.failPage(c, err)
			return
		}
		s.render(c, http.StatusOK, "account/codes", codesPage{Title: "New recovery codes", Codes: codes,
			File: codesFile(codes), Next: "/account/security",
			Intro: "Your old recovery codes no longer work. Each of these works once; they are shown only now."})
	}
}

// The "not valid any more" page: one answer for unknown, used and expired links.
func (s *server) linkInvalid(c *gin.Context) {
	s.render(c, http.StatusNotFound, "account/message", messagePage{Title: "This link is not valid any more",
		Message: "The link may have expired or been used already.", Detail: supportContact})
}

// reenrollAccount finds the account a re-enrollment link is for, or answers the request itself
// (the one "not valid any more" page, or a 500) and reports false.
func (s *server) reenrollAccount(c *gin.Context, token string) (string, bool) {
	id, err := s.svc.ReenrollLink(c.Request.Context(), token)
	switch {
	case errors.Is(err, recovery.ErrLinkUnavailable):
		s.linkInvalid(c)
		return "", false
	case err != nil:
		s.failPage(c, err)
		return "", false
	}
	return id, true
}

func (s *server) reenrollPage() gin.HandlerFunc {
	return func(c *gin.Context) {
		token := c.Param("token")
		if _, ok := s.reenrollAccount(c, token); !ok {
			return
		}
		s.render(c, http.StatusOK, "account/reenroll", reenrollPage{Action: "/reenroll/" + token})
	}
}

func (s *server) reenrollStart() gin.HandlerFunc {
	return func(c *gin.Context) {
		token := c.Param("token")
		ctx := c.Request.Context()
		id, ok := s.reenrollAccount(c, token)
		if !ok {
			return
		}
		actor := s.endUser(c, id)
		err := s.svc.AccountReauth(ctx, actor, id, c.PostForm("password"))
		if errors.Is(err, recovery.ErrUnauthorized) || errors.Is(err, recovery.ErrTooManyAttempts) {
			s.render(c, http.StatusUnauthorized, "account/reenroll", reenrollPage{Action: "/reenroll/" + token, Error: reauthFailed})
			return
		}
		if err != nil {
			s.failPage(c, err)
			return
		}
		en, err := s.svc.BeginEnrollment(ctx, actor, id, token)
		if errors.Is(err, recovery.ErrRecoveryRequired) || errors.Is(err, recovery.ErrAlreadyEnrolled) {
			s.linkInvalid(c)
			return
		}
		if err != nil {
			s.failPage(c, err)
			return
		}
		s.render(c, http.StatusOK, "account/enroll", enrollPage{Title: "Set up two-factor authentication again",
			Action: "/reenroll/" + token + "/confirm", ManualCode: en.ManualCode, QR: qrURL(en.QRPNG), ExpiresAt: en.ExpiresAt})
	}
}

func (s *server) reenrollConfirm() gin.HandlerFunc {
	return func(c *gin.Context) {
		token := c.Param("token")
		ctx := c.Request.Context()
		id, ok := s.reenrollAccount(c, token)
		if !ok {
			return
		}
		res, err := s.svc.ConfirmEnrollment(ctx, s.endUser(c, id), id, c.PostForm("code"))
		s.confirmed(c, res, err, enrollPage{Title: "Set up two-factor authentication again", Action: "/reenroll/" + token + "/confirm",
			Restart: "/reenroll/" + token}, codesPage{Title: "You are set up again", Next: "/account",
			Intro: "Two-factor authentication works again with your new phone, and your recovery request is closed. " +
				"These new recovery codes let you in if you lose your phone; each works once and they are shown only now."})
	}
}

func (s *server) vetoPage() gin.HandlerFunc {
	return func(c *gin.Context) {
		token := c.Param("token")
		info, err := s.svc.VetoLink(c.Request.Context(), token)
		if errors.Is(err, recovery.ErrLinkUnavailable) {
			s.linkInvalid(c)
			return
		}
		if err != nil {
			s.failPage(c, err)
			return
		}
		s.render(c, http.StatusOK, "account/veto", vetoPage{Action: "/veto/" + token, Frozen: info.Frozen})
	}
}

func (s *server) veto() gin.HandlerFunc {
	return func(c *gin.Context) {
		_, err := s.svc.Veto(c.Request.Context(), s.endUser(c, ""), c.Param("token"))
		if errors.Is(err, recovery.ErrLinkUnavailable) {
			s.linkInvalid(c)
			return
		}
		if err != nil {
			s.failPage(c, err)
			return
		}
		s.render(c, http.StatusOK, "account/message", messagePage{Title: "The request is frozen",
			Message: "Thank you. Nobody can reset two-factor authentication on your account through this request now. " +
				"If the reset had already happened, the new setup was revoked as well.",
			Detail: "Our support team has been alerted and will contact you at your e-mail address of record. " +
				"You do not need to do anything else. If you want to talk to us, contact support through the chat on the website or on Telegram."})
	}
}
