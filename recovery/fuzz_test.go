package recovery_test

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pquerna/otp"

	"github.com/recoverydesk/recoverydesk/recovery"
)

func FuzzNormalizeTOTPCode(f *testing.F) {
	for _, s := range []string{"123456", "123 456", "１２３４５６", "+12345", "12a456", "\xff", "", "000000", " 9 9 9 9 9 9 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := recovery.NormalizeTOTPCode(in)
		if err != nil {
			return
		}
		if len(out) != 6 || strings.Trim(out, "0123456789") != "" {
			t.Fatalf("%q normalized to %q", in, out)
		}
		if strings.NewReplacer(" ", "", "\t", "").Replace(in) != out {
			t.Fatalf("%q: normalization changed more than spaces: %q", in, out)
		}
	})
}

func FuzzNormalizeRecoveryCode(f *testing.F) {
	for _, s := range []string{"ABCD-EFGH-JKMN-PQRS", "abcd efgh jkmn pqrs", "0O0O-1I1L-2222-3333", "", "\xff", "ÄÖÜ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := recovery.NormalizeRecoveryCode(in)
		if err != nil {
			return
		}
		if len(out) != 16 || strings.Trim(out, "0123456789ABCDEFGHJKMNPQRSTVWXYZ") != "" {
			t.Fatalf("%q normalized to %q", in, out)
		}
		if again, err := recovery.NormalizeRecoveryCode(out); err != nil || again != out {
			t.Fatalf("not idempotent: %q → %q → %q", in, out, again)
		}
	})
}

// The otpauth URI we hand out parses back (with an independent parser) to the same secret,
// issuer, account and parameters, whatever the issuer and account name hold.
func FuzzOTPAuthURI(f *testing.F) {
	f.Add("RecoveryDesk", "ann@example.com", []byte("12345678901234567890"))
	f.Add("Pay & Co: Ltd", "a:b@c?d=e#f", []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19})
	f.Add("Ünïcode", "用户@例子.公司", bytes.Repeat([]byte{255}, 20))
	f.Fuzz(func(t *testing.T, issuer, account string, raw []byte) {
		if len(raw) != 20 || issuer == "" || account == "" || !utf8.ValidString(issuer) || !utf8.ValidString(account) ||
			strings.Contains(issuer, ":") || strings.ContainsAny(issuer+account, "\x00") {
			return
		}
		secret := recovery.Base32(raw)
		uri, err := recovery.ProvisioningURI(issuer, account, secret)
		if err != nil {
			t.Fatal(err)
		}
		key, err := otp.NewKeyFromURL(uri)
		if err != nil {
			t.Fatalf("%s does not parse: %v", uri, err)
		}
		if key.Secret() != secret || key.Issuer() != issuer || key.AccountName() != account || key.Period() != 30 ||
			key.Digits() != otp.DigitsSix || key.Algorithm() != otp.AlgorithmSHA1 || key.Type() != "totp" {
			t.Fatalf("%s parsed to secret %q issuer %q account %q", uri, key.Secret(), key.Issuer(), key.AccountName())
		}
	})
}

// Opening arbitrary ciphertext never panics and never succeeds unless it is exactly what was sealed.
func FuzzOpenSealed(f *testing.F) {
	k := testKeyring(f, "k1", 1)
	good, _ := k.Seal([]byte("JBSWY3DPEHPK3PXP"), "acct", recovery.PurposeTOTPSecret)
	f.Add(good)
	f.Add("k1:")
	f.Add("k1:AAAA")
	f.Add(":::")
	f.Add(good[:len(good)-1] + "B")
	f.Add(good[:10] + "\n" + good[10:])
	f.Fuzz(func(t *testing.T, sealed string) {
		pt, err := k.Open(sealed, "acct", recovery.PurposeTOTPSecret)
		if err == nil && (sealed != good || string(pt) != "JBSWY3DPEHPK3PXP") {
			t.Fatalf("%q opened to %q: only the sealed value itself may open", sealed, pt)
		}
	})
}

// Canonical encoding: an exported line parses back to an event with the same hash; the
// canonical form has sorted keys and no insignificant space.
func FuzzAuditCanonical(f *testing.F) {
	f.Add("agent", "a1", "ticket.approved", "because", `{"before":{"state":"open"},"after":{"state":"verifying"}}`, int64(1))
	f.Add("system", "", "x", "<&>\"\\ \u2028 ü", `{}`, int64(99))
	f.Add("end_user", "ü", "a.b", "", `{"n":1.5e300,"z":[1,"two",null,true]}`, int64(7))
	f.Fuzz(func(t *testing.T, actorType, actorID, action, reason, details string, seq int64) {
		if !utf8.ValidString(actorType+actorID+action+reason) || !json.Valid([]byte(details)) || !strings.HasPrefix(strings.TrimSpace(details), "{") {
			return
		}
		var obj map[string]any
		if json.Unmarshal([]byte(details), &obj) != nil {
			return
		}
		e := recovery.Event{Seq: seq, Time: time.Unix(1700000000, 123456789), ActorType: actorType, ActorID: actorID,
			Action: action, Reason: reason, Details: json.RawMessage(details), PrevHash: recovery.ZeroHash}
		h, err := e.ComputeHash()
		if err != nil {
			return // details that do not re-encode (e.g. numbers out of range) are refused, not mangled
		}
		e.Hash = h
		line, err := e.MarshalJSONL()
		if err != nil {
			t.Fatal(err)
		}
		back, err := recovery.ParseEventJSONL(line)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if h2, err := back.ComputeHash(); err != nil || h2 != h {
			t.Fatalf("hash changed over export: %s (%v)", line, err)
		}
		canon, _ := e.Canonical()
		var m map[string]json.RawMessage
		if err := json.Unmarshal(canon, &m); err != nil || bytes.Contains(canon, []byte(`": `)) || len(m) != 12 {
			t.Fatalf("canonical form %s", canon)
		}
	})
}

// A canonical string is valid JSON that reads back as the input (invalid UTF-8 as U+FFFD), and
// escapes nothing but '"', '\' and control characters.
func FuzzCanonicalString(f *testing.F) {
	for _, s := range []string{"", "plain", "\"quoted\" \\ back", "\x00\x01\x1f\x7f", "\b\f\n\r\t", "<&>", "\u2028\u2029", "ü😀", "\xff\xfe bad", "\\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := recovery.AppendCanonicalString(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%q → %s: %v", s, out, err)
		}
		if want := string([]rune(s)); back != want { // each invalid byte becomes U+FFFD
			t.Fatalf("%q → %s → %q", s, out, back)
		}
		for i := 1; i < len(out)-1; i++ {
			if out[i] == '\\' {
				next := out[i+1]
				if next == 'u' && !bytes.HasPrefix(out[i+2:], []byte("00")) || !strings.ContainsRune(`"\bfnrtu`, rune(next)) {
					t.Fatalf("%q → %s escapes more than it should", s, out)
				}
				i++
			}
		}
	})
}

// FuzzCheckAccountID: the byte loop accepts exactly what the documented pattern accepts.
func FuzzCheckAccountID(f *testing.F) {
	pattern := regexp.MustCompile(`^[A-Za-z0-9._:@-]{1,128}$`)
	for _, seed := range []string{"", "u-1001", "agent/x", "a b", "é", "user@example.com", "x\n", "ａ",
		strings.Repeat("a", 128), strings.Repeat("a", 129), "A.Z_0:9@-", "\x00", "a\xff"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, id string) {
		want := pattern.MatchString(id)
		if got := recovery.CheckAccountID(id) == nil; got != want {
			t.Fatalf("CheckAccountID(%q) accepts = %v, the pattern says %v", id, got, want)
		}
	})
}
