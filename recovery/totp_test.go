package recovery_test

import (
	"encoding/base32"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// The RFC test secret "12345678901234567890" in base32.
var rfcSecret = base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte("12345678901234567890"))

func TestRFC6238AppendixB(t *testing.T) {
	// SHA-1 rows of RFC 6238 Appendix B (8 digits). Our codes have 6 digits: the same value mod 10^6.
	cases := []struct {
		unix int64
		want string
	}{
		{59, "94287082"},
		{1111111109, "07081804"},
		{1111111111, "14050471"},
		{1234567890, "89005924"},
		{2000000000, "69279037"},
		{20000000000, "65353130"},
	}
	for _, c := range cases {
		eight, err := totp.GenerateCodeCustom(rfcSecret, time.Unix(c.unix, 0).UTC(),
			totp.ValidateOpts{Period: 30, Digits: otp.DigitsEight, Algorithm: otp.AlgorithmSHA1})
		if err != nil || eight != c.want {
			t.Errorf("T=%d: 8-digit code %q (%v), want %q", c.unix, eight, err, c.want)
		}
		got, err := recovery.CodeAt(rfcSecret, recovery.Step(time.Unix(c.unix, 0)))
		if err != nil || got != c.want[2:] {
			t.Errorf("T=%d: CodeAt = %q (%v), want %q", c.unix, got, err, c.want[2:])
		}
	}
}

func TestRFC4226AppendixD(t *testing.T) {
	// HOTP values for counters 0..9; TOTP is HOTP of the time step.
	want := []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}
	for counter, w := range want {
		got, err := recovery.CodeAt(rfcSecret, int64(counter))
		if err != nil || got != w {
			t.Errorf("counter %d: %q (%v), want %q", counter, got, err, w)
		}
	}
}

func TestStepBoundaries(t *testing.T) {
	cases := []struct {
		t    time.Time
		want int64
	}{
		{time.Unix(0, 0), 0},
		{time.Unix(29, 999999999), 0},
		{time.Unix(30, 0), 1},
		{time.Unix(59, 0), 1},
		{time.Unix(1111111109, 0), 37037036},
		{time.Unix(1111111111, 0), 37037037},
	}
	for _, c := range cases {
		if got := recovery.Step(c.t); got != c.want {
			t.Errorf("Step(%v) = %d, want %d", c.t, got, c.want)
		}
	}
}

func TestManualCode(t *testing.T) {
	cases := map[string]string{
		"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567": "ABCD EFGH IJKL MNOP QRST UVWX YZ23 4567",
		"ABCDEF":                           "ABCD EF",
		"":                                 "",
	}
	for in, want := range cases {
		if got := recovery.ManualCode(in); got != want {
			t.Errorf("ManualCode(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNormalizeTOTPCode(t *testing.T) {
	good := map[string]string{"123456": "123456", "123 456": "123456", " 012345 ": "012345", "000000": "000000"}
	for in, want := range good {
		got, err := recovery.NormalizeTOTPCode(in)
		if err != nil || got != want {
			t.Errorf("NormalizeTOTPCode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{"", "12345", "1234567", "12a456", "+12345", "-12345", "１２３４５６", "123\x00456", "\xff12345", "12.456",
		"٠١٢٣٤٥", strings.Repeat("1", 100), "123456\n"}
	for _, in := range bad {
		if _, err := recovery.NormalizeTOTPCode(in); err == nil {
			t.Errorf("NormalizeTOTPCode(%q) accepted", in)
		}
	}
}

func TestNormalizeRecoveryCode(t *testing.T) {
	good := map[string]string{
		"ABCD-EFGH-JKMN-PQRS":     "ABCDEFGHJKMNPQRS",
		"abcd efgh jkmn pqrs":     "ABCDEFGHJKMNPQRS",
		"abcdefghjkmnpqrs":        "ABCDEFGHJKMNPQRS",
		" ABCD - EFGH-JKMN-PQRS ": "ABCDEFGHJKMNPQRS",
		"0O0O-1I1L-2222-3333":     "0000111122223333",
	}
	for in, want := range good {
		got, err := recovery.NormalizeRecoveryCode(in)
		if err != nil || got != want {
			t.Errorf("NormalizeRecoveryCode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{"", "ABCD-EFGH-JKMN", "ABCD-EFGH-JKMN-PQRS-T", "ABCD-EFGH-JKMN-PQRU", "ÄBCD-EFGH-JKMN-PQRS", "\xffBCD-EFGH-JKMN-PQRS"}
	for _, in := range bad {
		if _, err := recovery.NormalizeRecoveryCode(in); err == nil {
			t.Errorf("NormalizeRecoveryCode(%q) accepted", in)
		}
	}
}

func TestBackoffSchedule(t *testing.T) {
	want := map[int]time.Duration{1: 0, 4: 0, 5: 30 * time.Second, 6: time.Minute, 7: 2 * time.Minute,
		10: 16 * time.Minute, 11: 32 * time.Minute, 12: time.Hour, 19: time.Hour, 40: time.Hour}
	for n, w := range want {
		if got := recovery.Backoff(n); got != w {
			t.Errorf("backoff(%d) = %v, want %v", n, got, w)
		}
	}
}

func TestPasswordHash(t *testing.T) {
	h, err := recovery.HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q is not an Argon2id PHC string with our parameters", h)
	}
	if !recovery.CheckPassword(h, "correct horse battery") {
		t.Error("right password refused")
	}
	for _, wrong := range []string{"", "correct horse batter", "Correct horse battery"} {
		if recovery.CheckPassword(h, wrong) {
			t.Errorf("wrong password %q accepted", wrong)
		}
	}
	if recovery.CheckPassword("$argon2id$v=19$m=99999999,t=2,p=1$AAAA$AAAA", "x") || recovery.CheckPassword("garbage", "x") {
		t.Error("malformed hash accepted")
	}
}

// TestCodesAgreeWithPquerna holds RecoveryDesk's own HOTP (CodeAt, and matchStep on the verify
// path) to pquerna/otp, an independent implementation, and to the RFC 4226 vectors: for random
// secrets and steps CodeAt gives pquerna's code, the code of each of the three steps matches that
// step (the current one first when two steps share a code), and a code of no step in the window
// matches none.
func TestCodesAgreeWithPquerna(t *testing.T) {
	opts := totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	rfc := []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}
	for counter := 1; counter < len(rfc)-1; counter++ {
		now := time.Unix(int64(counter)*30+7, 0)
		for d := -1; d <= 1; d++ {
			st, ok, err := recovery.MatchStep(rfcSecret, rfc[counter+d], now)
			if err != nil || !ok || st != int64(counter+d) {
				t.Errorf("RFC counter %d, code of %d: step %d ok=%v err=%v", counter, counter+d, st, ok, err)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		raw := make([]byte, 20)
		for i := range raw {
			raw[i] = byte(r.IntN(256))
		}
		secret := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw)
		if r.IntN(4) == 0 { // pquerna/otp accepts lower case and padding; so does the verify path
			secret = strings.ToLower(base32.StdEncoding.EncodeToString(raw))
		}
		cur := r.Int64N(1 << 40)
		now := time.Unix(cur*30+r.Int64N(30), 0)
		codes := map[int64]string{}
		for st := cur - 2; st <= cur+2; st++ {
			c, err := totp.GenerateCodeCustom(secret, time.Unix(st*30, 0), opts)
			if err != nil {
				t.Fatal(err)
			}
			if own, err := recovery.CodeAt(secret, st); err != nil || own != c {
				t.Fatalf("secret %s step %d: CodeAt = %q (%v), pquerna/otp %q", secret, st, own, err, c)
			}
			codes[st] = c
		}
		for _, st := range []int64{cur, cur - 1, cur + 1} {
			want := st
			for _, first := range []int64{cur, cur - 1, cur + 1} { // the order matchStep tries
				if codes[first] == codes[st] {
					want = first
					break
				}
			}
			got, ok, err := recovery.MatchStep(secret, codes[st], now)
			if err != nil || !ok || got != want {
				t.Fatalf("secret %s step %d: matched %d ok=%v err=%v, want %d", secret, st, got, ok, err, want)
			}
		}
		for _, st := range []int64{cur - 2, cur + 2} {
			c := codes[st]
			if c == codes[cur] || c == codes[cur-1] || c == codes[cur+1] {
				continue
			}
			if got, ok, _ := recovery.MatchStep(secret, c, now); ok {
				t.Fatalf("secret %s: the code of step %d matched step %d", secret, st, got)
			}
		}
	}
	if _, _, err := recovery.MatchStep("not base32!", "123456", time.Now()); err == nil {
		t.Error("a secret that is not base32 gave matchStep no error")
	}
	if _, err := recovery.CodeAt("not base32!", 1); err == nil {
		t.Error("a secret that is not base32 gave CodeAt no error")
	}
}
