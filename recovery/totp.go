package recovery

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"hash"
	"image/png"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// TOTP parameters, frozen for every enrollment: Google Authenticator interoperability.
const (
	totpPeriod     = 30
	totpDigits     = otp.DigitsSix
	totpSecretSize = 20
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Step returns the RFC 6238 time step of t (T0 = 0, 30 s).
func Step(t time.Time) int64 { return t.Unix() / totpPeriod }

// CodeAt returns the 6-digit code of a base32 secret for time step. The tests hold it to
// pquerna/otp and to the RFC vectors.
func CodeAt(secretB32 string, step int64) (string, error) {
	mac, err := totpMAC(secretB32)
	if err != nil {
		return "", err
	}
	c := codeOf(mac, step)
	return string(c[:]), nil
}

// matchStep checks a normalized code against the current step and one step either side, with a
// constant-time compare for each, and returns the matched step. The current step is tried
// first, then the past one, then the future one. The secret is decoded and the HMAC keyed once
// for the three steps (a third of what three codes from pquerna/otp cost).
func matchStep(secretB32, code string, now time.Time) (int64, bool, error) {
	mac, err := totpMAC(secretB32)
	if err != nil {
		return 0, false, err
	}
	cur := Step(now)
	found, ok := int64(0), false
	for _, st := range [3]int64{cur, cur - 1, cur + 1} {
		want := codeOf(mac, st)
		if subtle.ConstantTimeCompare(want[:], []byte(code)) == 1 && !ok {
			found, ok = st, true
		}
	}
	return found, ok, nil
}

// totpMAC is HMAC-SHA1 keyed with a base32 secret, decoded as pquerna/otp does: case,
// surrounding space and padding do not matter.
func totpMAC(secretB32 string) (hash.Hash, error) {
	s := strings.TrimRight(strings.ToUpper(strings.TrimSpace(secretB32)), "=")
	key, err := b32.DecodeString(s)
	if err != nil {
		return nil, otp.ErrValidateSecretInvalidBase32
	}
	mac := hmac.New(sha1.New, key)
	clear(key)
	return mac, nil
}

// codeOf is the 6-digit HOTP value (RFC 4226 §5.3) of counter under mac.
func codeOf(mac hash.Hash, counter int64) [6]byte {
	var msg [8]byte
	var sum [sha1.Size]byte
	binary.BigEndian.PutUint64(msg[:], uint64(counter))
	mac.Reset()
	mac.Write(msg[:])
	h := mac.Sum(sum[:0])
	off := h[len(h)-1] & 0x0f // dynamic truncation
	v := (binary.BigEndian.Uint32(h[off:]) & 0x7fffffff) % 1_000_000
	var c [6]byte
	for i := len(c) - 1; i >= 0; i-- {
		c[i] = byte('0' + v%10)
		v /= 10
	}
	clear(sum[:])
	return c
}

// newSecret returns 20 random bytes as unpadded base32.
func newSecret() (string, error) {
	raw := make([]byte, totpSecretSize)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	return b32.EncodeToString(raw), nil
}

// ManualCode groups a base32 secret in fours separated by one space, as users type it.
func ManualCode(secretB32 string) string {
	var b strings.Builder
	for i := 0; i < len(secretB32); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(secretB32[i:min(i+4, len(secretB32))])
	}
	return b.String()
}

// provisioning builds the otpauth:// URI and a QR PNG for a secret.
func provisioning(issuer, accountName, secretB32 string) (uri string, qr []byte, err error) {
	raw, err := b32.DecodeString(secretB32)
	if err != nil {
		return "", nil, err
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: issuer, AccountName: accountName, Period: totpPeriod, Secret: raw,
		Digits: totpDigits, Algorithm: otp.AlgorithmSHA1,
	})
	if err != nil {
		return "", nil, err
	}
	img, err := key.Image(256, 256)
	if err != nil {
		return "", nil, err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return "", nil, err
	}
	return key.URL(), buf.Bytes(), nil
}
