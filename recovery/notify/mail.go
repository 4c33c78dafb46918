package notify

import (
	"errors"
	"fmt"
	"net/mail"
	"strconv"
	"strings"

	gomail "github.com/wneessen/go-mail"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// parseFrom checks a sender address ("desk@example.com" or "RecoveryDesk <desk@example.com>").
func parseFrom(from string) (*mail.Address, error) {
	a, err := mail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("notify: the sender address %q is not an e-mail address", from)
	}
	return a, nil
}

// message builds the e-mail of a notice: plain text, UTF-8, quoted-printable. The Date is the
// notice's creation time and the Message-ID derives from its id, so that every try, and the
// .eml file, carry the same message.
func message(n recovery.Notice, from *mail.Address) (*gomail.Msg, error) {
	if n.Channel != recovery.NoticeEmail {
		return nil, fmt.Errorf("notify: a %s notice is not an e-mail", n.Channel)
	}
	m := gomail.NewMsg(gomail.WithNoDefaultUserAgent(), gomail.WithEncoding(gomail.EncodingQP))
	if err := m.From(from.String()); err != nil {
		return nil, errors.New("notify: the sender address is refused")
	}
	// Not quoted: the recipient stays out of stored errors.
	if err := m.To(n.To); err != nil {
		return nil, errors.New("notify: the recipient address is refused")
	}
	m.Subject(n.Subject)
	domain := from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	m.SetMessageIDWithValue("notice-" + strconv.FormatInt(n.ID, 10) + "." +
		strconv.FormatInt(n.CreatedAt.UnixNano(), 36) + "@" + domain)
	if !n.CreatedAt.IsZero() {
		m.SetDateWithValue(n.CreatedAt)
	}
	m.SetGenHeader("X-RecoveryDesk-Notice", strconv.FormatInt(n.ID, 10))
	m.SetGenHeader("Auto-Submitted", "auto-generated")
	m.SetBodyString(gomail.TypeTextPlain, n.Body)
	return m, nil
}
