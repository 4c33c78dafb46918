package notify

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// smtpTimeout bounds connecting to and talking with the SMTP server, per notice.
const smtpTimeout = 30 * time.Second

// SMTP sends e-mail notices through one SMTP server, a new connection per notice (notices are
// few; a connection kept open would go stale between them).
type SMTP struct {
	host     string
	port     int
	implicit bool // smtps://: TLS from the first byte
	user     string
	pass     string
	from     *mail.Address
}

// NewSMTP configures a sender from RECOVERYDESK_SMTP_URL and RECOVERYDESK_MAIL_FROM:
//
//	smtp://[user:password@]host[:port]   port 587 by default; STARTTLS whenever the server offers it
//	smtps://[user:password@]host[:port]  port 465 by default; TLS from the start
//
// With a user, the client authenticates with the strongest mechanism the server offers; PLAIN
// and LOGIN only over TLS, so the password never crosses the network in clear. User and
// password are percent-decoded. Errors never quote the URL, which may hold the password.
func NewSMTP(rawURL, from string) (*SMTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
		return nil, errors.New("notify: the SMTP URL is not smtp://[user:password@]host[:port] or smtps://…")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("notify: the SMTP URL must have no path, query or fragment")
	}
	m := &SMTP{host: u.Hostname(), implicit: u.Scheme == "smtps", port: 587}
	if m.implicit {
		m.port = 465
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, errors.New("notify: the SMTP URL's port is not 1-65535")
		}
		m.port = n
	}
	if u.User != nil {
		m.user = u.User.Username()
		m.pass, _ = u.User.Password()
	}
	if m.from, err = parseFrom(from); err != nil {
		return nil, err
	}
	return m, nil
}

// Server is host:port, for logs.
func (m *SMTP) Server() string { return m.host + ":" + strconv.Itoa(m.port) }

// Send delivers one e-mail notice. A 5xx reply to the message (MAIL FROM, RCPT TO, DATA) is
// permanent: the server refuses this message for good. Everything else — no connection, a
// timeout, TLS or authentication trouble (a configuration that an operator can fix), a 4xx —
// is retried.
func (m *SMTP) Send(ctx context.Context, n recovery.Notice) error {
	msg, err := message(n, m.from)
	if err != nil {
		return &recovery.DeliveryError{Err: err, Permanent: true}
	}
	opts := []gomail.Option{gomail.WithPort(m.port), gomail.WithTimeout(smtpTimeout)}
	if m.implicit {
		opts = append(opts, gomail.WithSSL())
	} else {
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	}
	if m.user != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(m.user), gomail.WithPassword(m.pass))
	}
	c, err := gomail.NewClient(m.host, opts...)
	if err != nil {
		return &recovery.DeliveryError{Err: m.scrub(err)}
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return m.classify(err)
	}
	return nil
}

// classify turns a go-mail error into a DeliveryError. A SendError's own text lists the
// recipients and the server's reply; the stored text keeps only the stage and the codes.
func (m *SMTP) classify(err error) error {
	var se *gomail.SendError
	if errors.As(err, &se) {
		code := se.ErrorCode()
		text := fmt.Sprintf("smtp: %s", se.Reason)
		if code != 0 {
			text += fmt.Sprintf(": server replied %d", code)
			if esc := se.EnhancedStatusCode(); esc != "" {
				text += " " + esc
			}
		}
		return &recovery.DeliveryError{Err: errors.New(text), Permanent: code >= 500 && code < 600}
	}
	return &recovery.DeliveryError{Err: m.scrub(err)}
}

// scrub returns err's text without the password (as given and percent-encoded) or the user.
func (m *SMTP) scrub(err error) error {
	msg := "smtp: " + err.Error()
	for _, s := range []string{m.pass, url.QueryEscape(m.pass), url.PathEscape(m.pass)} {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	if len(m.user) >= 3 {
		msg = strings.ReplaceAll(msg, m.user, "(user)")
	}
	return errors.New(msg)
}
