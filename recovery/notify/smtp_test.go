package notify_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/notify"
)

const password = "pw-Sup3rS3cret!"

// server is a real SMTP server (emersion/go-smtp) whose RCPT answer the test chooses, and which
// offers AUTH PLAIN over the cleartext connection.
type server struct {
	mu       sync.Mutex
	rcptErr  error
	data     [][]byte
	authSeen []string // passwords the server was sent
}

type session struct{ s *server }

func (x session) Reset()                               {}
func (x session) Logout() error                        { return nil }
func (x session) Mail(string, *smtp.MailOptions) error { return nil }
func (x session) Rcpt(string, *smtp.RcptOptions) error {
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	return x.s.rcptErr
}
func (x session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	x.s.mu.Lock()
	x.s.data = append(x.s.data, b)
	x.s.mu.Unlock()
	return err
}
func (x session) AuthMechanisms() []string { return []string{sasl.Plain} }
func (x session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, _, pass string) error {
		x.s.mu.Lock()
		x.s.authSeen = append(x.s.authSeen, pass)
		x.s.mu.Unlock()
		return nil
	}), nil
}

func startServer(t *testing.T, s *server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return session{s}, nil }))
	srv.Domain, srv.AllowInsecureAuth = "localhost", true
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func mailNotice() recovery.Notice {
	return recovery.Notice{ID: 3, Channel: recovery.NoticeEmail, To: "bea@example.com", Kind: "status",
		Subject: "Your request", Body: "We are on it.", CreatedAt: t0}
}

// TestSMTPReplies: a 5xx to the message is permanent, a 4xx is retried; neither error names
// the recipient.
func TestSMTPReplies(t *testing.T) {
	for _, c := range []struct {
		reply     error
		permanent bool
	}{
		{&smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user bea@example.com"}, true},
		{&smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later, bea@example.com"}, false},
	} {
		s := &server{rcptErr: c.reply}
		m, err := notify.NewSMTP("smtp://"+startServer(t, s), "desk@example.com")
		if err != nil {
			t.Fatal(err)
		}
		err = m.Send(context.Background(), mailNotice())
		var de *recovery.DeliveryError
		if !errors.As(err, &de) || de.Permanent != c.permanent {
			t.Fatalf("reply %v: %#v", c.reply, err)
		}
		code := c.reply.(*smtp.SMTPError).Code
		if !strings.Contains(err.Error(), "server replied "+map[int]string{550: "550 5.1.1", 451: "451 4.3.0"}[code]) ||
			strings.Contains(err.Error(), "bea@example.com") {
			t.Errorf("reply %d: error %q", code, err)
		}
	}
}

// TestSMTPDelivers checks the message the server receives.
func TestSMTPDelivers(t *testing.T) {
	s := &server{}
	m, err := notify.NewSMTP("smtp://"+startServer(t, s), "RecoveryDesk <desk@example.com>")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), mailNotice()); err != nil {
		t.Fatal(err)
	}
	if len(s.data) != 1 {
		t.Fatalf("%d messages", len(s.data))
	}
	msg, err := mail.ReadMessage(bytes.NewReader(s.data[0]))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get("Subject") != "Your request" || msg.Header.Get("X-Recoverydesk-Notice") != "3" ||
		!strings.HasPrefix(msg.Header.Get("Message-Id"), "<notice-3.") || !strings.HasSuffix(msg.Header.Get("Message-Id"), "@example.com>") {
		t.Errorf("headers: %v", msg.Header)
	}
}

// TestSMTPPassword: the password shows in no error, and never crosses a cleartext connection.
func TestSMTPPassword(t *testing.T) {
	for _, u := range []string{"smtp://desk:" + password + "@127.0.0.1:99999", "smtp://desk:" + password + "@h/path", "http://desk:" + password + "@h"} {
		if _, err := notify.NewSMTP(u, "desk@example.com"); err == nil || strings.Contains(err.Error(), password) {
			t.Errorf("NewSMTP(%q): %v", strings.ReplaceAll(u, password, "…"), err)
		}
	}
	// A server that offers only PLAIN without TLS: the client refuses to authenticate.
	s := &server{}
	m, err := notify.NewSMTP("smtp://desk:"+strings.ReplaceAll(password, "!", "%21")+"@"+startServer(t, s), "desk@example.com")
	if err != nil {
		t.Fatal(err)
	}
	err = m.Send(context.Background(), mailNotice())
	var de *recovery.DeliveryError
	if !errors.As(err, &de) || de.Permanent || strings.Contains(err.Error(), password) {
		t.Fatalf("PLAIN without TLS: %v", err)
	}
	if len(s.authSeen) != 0 || len(s.data) != 0 {
		t.Errorf("the password crossed a cleartext connection (%d) or mail went out unauthenticated (%d)", len(s.authSeen), len(s.data))
	}
	// Nobody listens: retried, and the error holds no password.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	m, err = notify.NewSMTP("smtps://desk:"+password+"@"+addr, "desk@example.com")
	if err != nil {
		t.Fatal(err)
	}
	err = m.Send(context.Background(), mailNotice())
	if !errors.As(err, &de) || de.Permanent || strings.Contains(err.Error(), password) {
		t.Fatalf("server down: %v", err)
	}
	if m.Server() != addr {
		t.Errorf("Server() = %q", m.Server())
	}
}
