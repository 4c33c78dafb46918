package recovery_test

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

func TestKeyringSealOpen(t *testing.T) {
	k := testKeyring(t, "k1", 1)
	sealed, err := k.Seal([]byte("secret"), "acct", recovery.PurposeTOTPSecret)
	if err != nil || !strings.HasPrefix(sealed, "k1:") || strings.Contains(sealed, "secret") {
		t.Fatalf("sealed %q %v", sealed, err)
	}
	if pt, err := k.Open(sealed, "acct", recovery.PurposeTOTPSecret); err != nil || string(pt) != "secret" {
		t.Fatalf("open: %q %v", pt, err)
	}
	again, _ := k.Seal([]byte("secret"), "acct", recovery.PurposeTOTPSecret)
	if again == sealed {
		t.Fatal("two seals of one value are equal: nonce reused")
	}
	other := testKeyring(t, "k1", 99)
	for name, open := range map[string]func() ([]byte, error){
		"another account": func() ([]byte, error) { return k.Open(sealed, "acct2", recovery.PurposeTOTPSecret) },
		"another purpose": func() ([]byte, error) { return k.Open(sealed, "acct", recovery.PurposeFacts) },
		"wrong key":       func() ([]byte, error) { return other.Open(sealed, "acct", recovery.PurposeTOTPSecret) },
		"unknown key id":  func() ([]byte, error) { return k.Open("k9"+sealed[2:], "acct", recovery.PurposeTOTPSecret) },
		"flipped byte":    func() ([]byte, error) { return k.Open(flipByte(t, sealed), "acct", recovery.PurposeTOTPSecret) },
		"truncated":       func() ([]byte, error) { return k.Open(sealed[:10], "acct", recovery.PurposeTOTPSecret) },
		"no key id":       func() ([]byte, error) { return k.Open("garbage", "acct", recovery.PurposeTOTPSecret) },
	} {
		if pt, err := open(); !errors.Is(err, recovery.ErrUnseal) || pt != nil {
			t.Errorf("%s: opened (%q, %v)", name, pt, err)
		}
	}
}

func TestParseKeys(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	good := recovery.FormatKey("new", key) + "," + recovery.FormatKey("old", bytes.Repeat([]byte{8}, 32))
	k, err := recovery.ParseKeys(good)
	if err != nil || k.SealingKeyID() != "new" {
		t.Fatalf("%v", err)
	}
	for _, bad := range []string{"", "k1", "k1:", ":abc", "k1:!!!", "k1:" + recovery.FormatKey("x", key[:16])[2:],
		recovery.FormatKey("dup", key) + "," + recovery.FormatKey("dup", key), recovery.FormatKey("bad id", key)} {
		_, err := recovery.ParseKeys(bad)
		if err == nil {
			t.Errorf("ParseKeys(%q) accepted", bad)
			continue
		}
		if strings.Contains(err.Error(), recovery.FormatKey("", key)[1:]) {
			t.Errorf("error leaks key material: %v", err)
		}
	}
}

// The database file must hold neither the raw secret nor its base32 form.
func TestSecretNotInDatabaseFile(t *testing.T) {
	st, path := storetest.SQLite(t)
	c := newClock()
	s := newService(t, st, c)
	secret, codes := enrolled(t, s, c, "plain")
	if _, _, err := s.UpsertAccount(context.Background(), api, "plain", recovery.AccountInput{Facts: map[string]any{"last_deposit": "987654321.99"}}); err != nil {
		t.Fatal(err)
	}
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		b, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	if len(all) == 0 {
		t.Fatal("read nothing from the database files in " + filepath.Dir(path))
	}
	for name, needle := range map[string][]byte{"raw secret": raw, "base32 secret": []byte(secret),
		"lower base32": []byte(strings.ToLower(secret)), "recovery code": []byte(codes[0]),
		"normalized recovery code": []byte(strings.ReplaceAll(codes[0], "-", "")), "fact": []byte("987654321.99")} {
		if bytes.Contains(all, needle) {
			t.Errorf("the database files contain the %s", name)
		}
	}
}

func TestWrongKeyAndMovedCiphertextFailClosed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, dsn string) {
		ctx := context.Background()
		c := newClock()
		s := newService(t, st, c)
		secretA, _ := enrolled(t, s, c, "alice")
		secretB, _ := enrolled(t, s, c, "bob")
		c.Add(time.Minute)

		// The same store opened with another key: every check fails closed, not as a wrong code.
		wrong, err := recovery.New(st, recovery.Options{Now: c.Now, Keys: testKeyring(t, "k1", 77)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = wrong.Verify(ctx, api, "alice", code(t, secretA, recovery.Step(c.Now())))
		if err == nil || errors.Is(err, recovery.ErrInvalidCode) || !errors.Is(err, recovery.ErrUnseal) {
			t.Fatalf("wrong key: %v, want an unseal failure", err)
		}
		if f := factorOf(t, st, "alice"); f.Failures != 0 {
			t.Fatalf("a failed unseal was counted as a wrong code: %d", f.Failures)
		}
		// Bob's ciphertext copied onto Alice: it does not open under Alice's id.
		storetest.Exec(t, dsn, "UPDATE factors SET secret_sealed = (SELECT secret_sealed FROM factors WHERE account_id = 'bob') WHERE account_id = 'alice'")
		for _, sec := range []string{secretA, secretB} {
			if _, err := s.Verify(ctx, api, "alice", code(t, sec, recovery.Step(c.Now()))); !errors.Is(err, recovery.ErrUnseal) {
				t.Fatalf("moved ciphertext: %v, want an unseal failure", err)
			}
		}
		// Bob is untouched.
		if _, err := s.Verify(ctx, api, "bob", code(t, secretB, recovery.Step(c.Now()))); err != nil {
			t.Fatal(err)
		}
	})
}

func TestKeyRotation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		ctx := context.Background()
		c := newClock()
		oldKey, newKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
		ring := func(spec string) *recovery.Keyring {
			k, err := recovery.ParseKeys(spec)
			if err != nil {
				t.Fatal(err)
			}
			return k
		}
		svc := func(k *recovery.Keyring) *recovery.Service {
			s, err := recovery.New(st, recovery.Options{Now: c.Now, Keys: k})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		old := svc(ring(recovery.FormatKey("old", oldKey)))
		secrets := map[string]string{}
		for _, id := range []string{"r1", "r2", "r3"} {
			secrets[id], _ = enrolled(t, old, c, id)
		}
		// Both keys: the new one seals, the old one still opens.
		both := svc(ring(recovery.FormatKey("new", newKey) + "," + recovery.FormatKey("old", oldKey)))
		secrets["r4"], _ = enrolled(t, both, c, "r4")
		c.Add(30 * time.Second)
		for id, sec := range secrets {
			if _, err := both.Verify(ctx, api, id, code(t, sec, recovery.Step(c.Now()))); err != nil {
				t.Fatalf("%s under both keys: %v", id, err)
			}
		}
		// A notice queued under the old key must still be deliverable after the rotation.
		if err := recovery.QueueNotice(ctx, old, recovery.Notice{Channel: recovery.NoticeEmail, To: "r1@example.com",
			Kind: "test", AccountID: "r1", Subject: "s", Body: "link /veto/tok-123"}, "tok-123"); err != nil {
			t.Fatal(err)
		}
		n, err := both.Reseal(ctx, recovery.Actor{Type: recovery.ActorSystem, ID: "cli"})
		if err != nil || n != 4 {
			t.Fatalf("resealed %d (%v), want 4 (three secrets, one notice)", n, err)
		}
		// Only the new key: everyone still verifies, and the notice opens.
		only := svc(ring(recovery.FormatKey("new", newKey)))
		if err := only.CheckKeys(ctx); err != nil {
			t.Fatalf("keys after rotation: %v", err)
		}
		var body string
		if _, err := only.DispatchDue(ctx, recovery.NoticeEmail, 10, func(_ context.Context, n recovery.Notice) error {
			body = n.Body
			return nil
		}); err != nil || body != "link /veto/tok-123" {
			t.Fatalf("notice after rotation: %q %v", body, err)
		}
		c.Add(30 * time.Second)
		for id, sec := range secrets {
			if _, err := only.Verify(ctx, api, id, code(t, sec, recovery.Step(c.Now()))); err != nil {
				t.Fatalf("%s after rotation: %v", id, err)
			}
		}
	})
}

// flipByte changes one bit of the ciphertext inside a sealed value, keeping its form.
func flipByte(t *testing.T, sealed string) string {
	t.Helper()
	id, b64, _ := strings.Cut(sealed, ":")
	raw, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 0x01
	return id + ":" + base64.RawStdEncoding.EncodeToString(raw)
}
