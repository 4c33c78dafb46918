package notify

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// File is the e-mail notifier for installations without an SMTP server (as Authelia and Django
// offer): each e-mail notice becomes an .eml file in one directory, readable by the operator
// only (directory 0700, files 0600), since re-enrollment and veto links are in them.
type File struct {
	dir  string
	from *mail.Address
}

// DefaultFrom is the sender written into .eml files when no RECOVERYDESK_MAIL_FROM is set.
const DefaultFrom = "RecoveryDesk <recoverydesk@localhost>"

// NewFile creates dir (mode 0700; an existing one is narrowed to 0700) and returns a notifier
// writing into it. from "" means DefaultFrom.
func NewFile(dir, from string) (*File, error) {
	if from == "" {
		from = DefaultFrom
	}
	a, err := parseFrom(from)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("notify: mail directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("notify: mail directory: %w", err)
	}
	return &File{dir: dir, from: a}, nil
}

// Dir is the directory the files go to.
func (f *File) Dir() string { return f.dir }

// Path is the file a notice is written to. It derives from the notice id alone, so that a
// notice written again (a retry after a crash) replaces its file instead of adding one.
func (f *File) Path(id int64) string {
	return filepath.Join(f.dir, fmt.Sprintf("notice-%010d.eml", id))
}

// Send writes the notice as an .eml file: to a temporary file first, synced, then renamed over
// the final name, so that a reader never sees half a message.
func (f *File) Send(ctx context.Context, n recovery.Notice) error {
	msg, err := message(n, f.from)
	if err != nil {
		return &recovery.DeliveryError{Err: err, Permanent: true}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(f.dir, ".notice-*.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("notify: write mail file: %w", errors.Unwrap(err))
	}
	_, err = msg.WriteTo(tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), f.Path(n.ID))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("notify: write mail file: %w", err)
	}
	return nil
}
