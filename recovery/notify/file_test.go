package notify_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"testing"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/notify"
)

func TestFileNotifier(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "recoverydesk-mail")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := notify.NewFile(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("directory mode %v, %v; want 0700", fi.Mode().Perm(), err)
	}
	n := recovery.Notice{ID: 7, Channel: recovery.NoticeEmail, To: "ann@example.com", Kind: "reenroll_link",
		Subject: "Set up two-factor authentication again", Body: "Open https://desk.example/reenroll/tok-1 — within 24 h.\n", CreatedAt: t0}
	for range 2 { // a re-send replaces the file
		if err := f.Send(context.Background(), n); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 || entries[0].Name() != "notice-0000000007.eml" {
		t.Fatalf("directory holds %v, %v", entries, err)
	}
	path := f.Path(7)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil {
		t.Fatal(err)
	}
	date, _ := m.Header.Date()
	if m.Header.Get("To") != "<ann@example.com>" || m.Header.Get("Subject") != n.Subject ||
		m.Header.Get("From") != `"RecoveryDesk" <recoverydesk@localhost>` || !date.Equal(t0) ||
		m.Header.Get("Message-Id") == "" || string(bytes.ReplaceAll(body, []byte("\r\n"), []byte("\n"))) != n.Body {
		t.Errorf("message:\n%s", raw)
	}
	var de *recovery.DeliveryError
	if err := f.Send(context.Background(), recovery.Notice{ID: 8, Channel: recovery.NoticeTelegram, To: "1", Body: "x"}); !errors.As(err, &de) || !de.Permanent {
		t.Errorf("a Telegram notice as a file: %v", err)
	}
	if _, err := notify.NewFile(dir, "not an address"); err == nil {
		t.Error("a bad sender address was accepted")
	}
}
