package console

import (
	"bytes"
	"errors"
	"html/template"
	"image/png"
	"net/http"
	"net/url"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/qr"
	"github.com/gin-gonic/gin"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// telegramView is the security page's Telegram section.
type telegramView struct {
	Available bool         // a bot is configured (Options.TelegramBotName)
	Link      string       // the t.me deep link just made, shown once
	QR        template.URL // the link as a QR code (data: URI)
	Linked    bool         // a chat is linked to the account
}

// accountTelegramRoutes registers "Link Telegram" (a single-use, 10-minute /start token made by
// the domain, shown once as a t.me link and QR) and "Unlink Telegram".
func (s *server) accountTelegramRoutes(g *gin.RouterGroup) {
	g.POST("/telegram/link", s.accountTelegramLink())
	g.POST("/telegram/unlink", s.accountTelegramUnlink())
}

// telegramState reads whether the account has a linked chat, so the page offers "Link" or
// "Unlink" (never the chat id).
func (s *server) telegramState(c *gin.Context, accountID string) (telegramView, error) {
	v := telegramView{Available: s.telegramBot != ""}
	if !v.Available {
		return v, nil
	}
	_, err := s.svc.TelegramLinkOf(c.Request.Context(), accountID)
	switch {
	case err == nil:
		v.Linked = true
	case !errors.Is(err, recovery.ErrNotFound):
		return v, err
	}
	return v, nil
}

func (s *server) accountTelegramLink() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := signedIn(c).AccountID
		if s.telegramBot == "" {
			s.renderSecurity(c, id, http.StatusNotFound, securityPage{Error: "Telegram is not available."})
			return
		}
		token, _, err := s.svc.CreateTelegramLinkToken(c.Request.Context(), s.endUser(c, id), id)
		if err != nil {
			s.failPage(c, err)
			return
		}
		link := "https://t.me/" + url.PathEscape(s.telegramBot) + "?start=" + url.QueryEscape(token)
		code, err := qr.Encode(link, qr.M, qr.Auto)
		if err == nil {
			code, err = barcode.Scale(code, 200, 200)
		}
		var buf bytes.Buffer
		if err == nil {
			err = png.Encode(&buf, code)
		}
		if err != nil {
			s.failPage(c, err)
			return
		}
		s.renderSecurityTelegram(c, id, telegramView{Available: true, Link: link, QR: qrURL(buf.Bytes())})
	}
}

func (s *server) accountTelegramUnlink() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := signedIn(c).AccountID
		if err := s.svc.UnlinkTelegram(c.Request.Context(), s.endUser(c, id), id); err != nil {
			s.failPage(c, err)
			return
		}
		s.renderSecurity(c, id, http.StatusOK, securityPage{Notice: "Telegram is unlinked."})
	}
}
