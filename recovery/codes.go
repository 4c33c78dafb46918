package recovery

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode/utf8"
)

// NormalizeTOTPCode removes the spaces an authenticator shows ("123 456") and accepts exactly six
// ASCII digits. Anything else (full-width digits, signs, letters, invalid UTF-8) is bad input,
// refused before any check and never counted as a guess.
func NormalizeTOTPCode(code string) (string, error) {
	if !utf8.ValidString(code) {
		return "", invalidf("code is not valid UTF-8")
	}
	if len(code) > 32 {
		return "", invalidf("code must be 6 digits")
	}
	var b strings.Builder
	for i := 0; i < len(code); i++ {
		c := code[i]
		switch {
		case c == ' ' || c == '\t':
		case c >= '0' && c <= '9':
			b.WriteByte(c)
		default:
			return "", invalidf("code must be 6 digits")
		}
	}
	if b.Len() != 6 {
		return "", invalidf("code must be 6 digits")
	}
	return b.String(), nil
}

// Recovery codes are 16 symbols of Crockford's base32 (80 bits), shown as XXXX-XXXX-XXXX-XXXX.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// RecoveryCodeCount is how many codes a set holds.
const RecoveryCodeCount = 10

// NormalizeRecoveryCode ignores case, spaces and hyphens and maps the look-alikes Crockford's
// alphabet folds (I, L → 1; O → 0). It returns bad input unless 16 symbols remain.
func NormalizeRecoveryCode(code string) (string, error) {
	if !utf8.ValidString(code) {
		return "", invalidf("recovery code is not valid UTF-8")
	}
	if len(code) > 64 {
		return "", invalidf("recovery code must be 16 letters and digits")
	}
	var b strings.Builder
	for i := 0; i < len(code); i++ {
		c := code[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		switch {
		case c == ' ' || c == '-' || c == '\t':
			continue
		case c == 'I' || c == 'L':
			c = '1'
		case c == 'O':
			c = '0'
		}
		if strings.IndexByte(crockford, c) < 0 {
			return "", invalidf("recovery code must be 16 letters and digits")
		}
		b.WriteByte(c)
	}
	if b.Len() != 16 {
		return "", invalidf("recovery code must be 16 letters and digits")
	}
	return b.String(), nil
}

// newRecoveryCode returns a display form XXXX-XXXX-XXXX-XXXX from 80 random bits.
func newRecoveryCode() (string, error) {
	raw := make([]byte, 10)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	// 80 bits → 16 symbols of 5 bits.
	var sym [16]byte
	var acc uint64
	bits, n := 0, 0
	for _, by := range raw {
		acc = acc<<8 | uint64(by)
		bits += 8
		for bits >= 5 {
			bits -= 5
			sym[n] = crockford[(acc>>uint(bits))&31]
			n++
		}
	}
	s := string(sym[:])
	return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16], nil
}

// hashRecoveryCode binds a normalized code to its account.
func hashRecoveryCode(accountID, normalized string) string {
	h := sha256.Sum256([]byte("recoverydesk/recovery-code/v1\x00" + accountID + "\x00" + normalized))
	return hex.EncodeToString(h[:])
}

// hashToken hashes a high-entropy token for storage and lookup.
func hashToken(purpose, token string) string {
	h := sha256.Sum256([]byte("recoverydesk/token/v1\x00" + purpose + "\x00" + token))
	return hex.EncodeToString(h[:])
}
