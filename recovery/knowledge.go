package recovery

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"unicode"
)

// KnowledgeMatch compares what the user said (typed by the agent) with a stored account fact.
//
// Both sides are normalised first: Unicode full-width forms become their ASCII counterparts, any
// run of white space is one space, and letters are case-folded. Then:
//
//   - Amounts: "1,000.50", "1000.5", "1 000,50", "1.000,50" and "1'000.50" all equal 1000.5. When
//     one kind of separator appears once, followed by exactly three digits, after one to three
//     digits not starting with 0, it may group thousands or mark decimals, and both readings
//     count ("1,000" equals 1000 and 1; "250.125" equals 250125 and 250.125); otherwise it is
//     the decimal mark ("1,5", "0.125", "1000.500"). A currency code or symbol (USD, $, EUR, €, …)
//     before or after the number is ignored when only one side has one and must agree when both
//     do ("¥" agrees with JPY and CNY). A number with a leading zero ("007") is not an amount.
//   - A stored number (float64, json.Number, integers) matches only an answer that is an amount
//     of the same value.
//   - A stored boolean matches yes/true or no/false.
//   - Other strings compare case-insensitively with all white space removed.
//
// An empty answer never matches. The comparison of the normalised forms runs in constant time
// (SHA-256 digests compared with crypto/subtle), so timing does not reveal how much of the fact
// an answer got right. The stored value is never returned, logged or put in an error.
func KnowledgeMatch(stored any, answer string) bool {
	a := newKnowledgeValue(answer)
	if a.text == "" {
		return false
	}
	switch v := stored.(type) {
	case string:
		s := newKnowledgeValue(v)
		if s.text == "" {
			return false
		}
		if s.isAmount && a.isAmount {
			return s.amount.equal(a.amount)
		}
		return digestEqual("text:"+s.text, "text:"+a.text)
	case bool:
		var want string
		switch a.text {
		case "TRUE", "YES", "Y":
			want = "true"
		case "FALSE", "NO", "N":
			want = "false"
		default:
			return false
		}
		return digestEqual(strconv.FormatBool(v), want)
	}
	n, ok := storedNumber(stored)
	if !ok || !a.isAmount {
		return false
	}
	return amount{values: []string{n}}.equal(a.amount)
}

// storedNumber returns the canonical decimal form of a stored number.
func storedNumber(stored any) (string, bool) {
	var s string
	switch v := stored.(type) {
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return "", false
		}
		s = strconv.FormatFloat(v, 'f', -1, 64)
	case float32:
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return "", false
		}
		s = strconv.FormatFloat(f, 'f', -1, 32)
	case json.Number:
		s = string(v)
		if strings.ContainsAny(s, "eE") {
			f, err := v.Float64()
			if err != nil || math.IsInf(f, 0) {
				return "", false
			}
			s = strconv.FormatFloat(f, 'f', -1, 64)
		}
	case int:
		s = strconv.FormatInt(int64(v), 10)
	case int8:
		s = strconv.FormatInt(int64(v), 10)
	case int16:
		s = strconv.FormatInt(int64(v), 10)
	case int32:
		s = strconv.FormatInt(int64(v), 10)
	case int64:
		s = strconv.FormatInt(v, 10)
	case uint:
		s = strconv.FormatUint(uint64(v), 10)
	case uint8:
		s = strconv.FormatUint(uint64(v), 10)
	case uint16:
		s = strconv.FormatUint(uint64(v), 10)
	case uint32:
		s = strconv.FormatUint(uint64(v), 10)
	case uint64:
		s = strconv.FormatUint(v, 10)
	default:
		return "", false
	}
	return machineDecimal(s)
}

// machineDecimal canonicalises a number written by a machine: an optional minus, digits, and an
// optional '.' with more digits. Unlike amounts typed by people, "1.000" here is one.
func machineDecimal(s string) (string, bool) {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	intPart, frac, _ := strings.Cut(s, ".")
	if intPart == "" || !allDigits(intPart) || !allDigits(frac) {
		return "", false
	}
	intPart = strings.TrimLeft(intPart, "0")
	if intPart == "" {
		intPart = "0"
	}
	return canonicalDecimal(neg, intPart, frac)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// maxAmountDigits bounds the digits of an amount; longer digit strings compare as text.
const maxAmountDigits = 40

// canonicalDecimal writes intPart (no leading zeros) and frac without trailing zeros, with a
// minus for negative values other than zero.
func canonicalDecimal(neg bool, intPart, frac string) (string, bool) {
	frac = strings.TrimRight(frac, "0")
	if len(intPart)+len(frac) > maxAmountDigits {
		return "", false
	}
	v := intPart
	if frac != "" {
		v += "." + frac
	}
	if neg && v != "0" {
		v = "-" + v
	}
	return v, true
}

// amount is a normalised amount of money: the canonical decimal values it may mean (see
// parseNumber) and the currency codes its symbol or code may mean (none when none was given).
type amount struct {
	values     []string
	currencies []string
}

// equal reports whether a and b may mean the same value and, when both name a currency, share
// one. Every pair is compared, in constant time.
func (a amount) equal(b amount) bool {
	same := 0
	for _, x := range a.values {
		for _, y := range b.values {
			if digestEqual("amount:"+x, "amount:"+y) {
				same = 1
			}
		}
	}
	if len(a.currencies) == 0 || len(b.currencies) == 0 {
		return same == 1
	}
	agree := 0
	for _, x := range a.currencies {
		for _, y := range b.currencies {
			agree |= subtle.ConstantTimeCompare([]byte(x), []byte(y))
		}
	}
	return same&agree == 1
}

// digestEqual compares two strings in time independent of where they differ and of their
// lengths.
func digestEqual(x, y string) bool {
	dx, dy := sha256.Sum256([]byte(x)), sha256.Sum256([]byte(y))
	return subtle.ConstantTimeCompare(dx[:], dy[:]) == 1
}

// knowledgeValue is a stored fact or an answer, normalised.
type knowledgeValue struct {
	text     string // case-folded, white space removed
	isAmount bool
	amount   amount
}

func newKnowledgeValue(s string) knowledgeValue {
	folded := foldKnowledge(s)
	v := knowledgeValue{text: strings.ReplaceAll(folded, " ", "")}
	v.amount, v.isAmount = parseAmount(folded)
	return v
}

// foldKnowledge maps full-width forms to ASCII, white space runs to one space (trimmed), minus
// sign variants to '-', and folds case: each letter becomes the smallest rune of its simple case
// folding orbit, so text compares case-insensitively in every script (simple folding only:
// "ß" does not equal "SS").
func foldKnowledge(s string) string {
	var b strings.Builder
	space := false
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		r = foldWidth(r)
		if unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		if r == '\u2212' || r == '\u2012' || r == '\u2013' || r == '\uFE63' {
			r = '-'
		}
		b.WriteRune(foldCase(r))
	}
	return b.String()
}

// foldWidth maps the full-width forms of ASCII and of the Latin-1 currency signs to the ordinary
// characters (what NFKC would do for them; the domain uses no x/text).
func foldWidth(r rune) rune {
	switch {
	case r >= 0xFF01 && r <= 0xFF5E:
		return r - 0xFF01 + 0x21
	case r == 0x3000:
		return ' '
	}
	switch r {
	case 0xFFE0:
		return '¢'
	case 0xFFE1:
		return '£'
	case 0xFFE5:
		return '¥'
	case 0xFFE6:
		return '₩'
	}
	return r
}

// foldCase returns the smallest rune of r's case-folding orbit: equal for 'k', 'K' and the Kelvin
// sign.
func foldCase(r rune) rune {
	lo := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		lo = min(lo, f)
	}
	return lo
}

// parseAmount reads a folded string as an amount: an optional sign, an optional currency before
// or after, and a number with thousands separators and a decimal mark (see KnowledgeMatch).
func parseAmount(s string) (amount, bool) {
	first := strings.IndexFunc(s, isASCIIDigit)
	if first < 0 {
		return amount{}, false
	}
	last := strings.LastIndexFunc(s, isASCIIDigit)
	prefix, number, suffix := strings.TrimSpace(s[:first]), s[first:last+1], strings.TrimSpace(s[last+1:])
	neg := false
	for _, sign := range []string{"-", "+"} {
		if strings.HasPrefix(prefix, sign) {
			prefix, neg = strings.TrimSpace(prefix[1:]), sign == "-"
			break
		}
		if strings.HasSuffix(prefix, sign) {
			prefix, neg = strings.TrimSpace(prefix[:len(prefix)-1]), sign == "-"
			break
		}
	}
	if prefix != "" && suffix != "" {
		return amount{}, false
	}
	var a amount
	if code := prefix + suffix; code != "" {
		var ok bool
		if a.currencies, ok = currencyCodes(code); !ok {
			return amount{}, false
		}
	}
	var ok bool
	a.values, ok = parseNumber(neg, number)
	return a, ok
}

func isASCIIDigit(r rune) bool { return r >= '0' && r <= '9' }

// parseNumber reads digits with separators as people write them and returns the values they
// may mean: one, or two for a lone '.' or ',' that may group thousands or mark decimals
// ("1.000", "250.125"). number starts and ends with a digit.
func parseNumber(neg bool, number string) ([]string, bool) {
	groups := []string{""}
	var seps []rune
	for _, r := range number {
		switch {
		case isASCIIDigit(r):
			groups[len(groups)-1] += string(r)
			continue
		case r == '.' || r == ',' || r == ' ':
		case r == '\'' || r == '\u2019':
			r = '\''
		default:
			return nil, false
		}
		if groups[len(groups)-1] == "" { // two separators in a row
			return nil, false
		}
		seps = append(seps, r)
		groups = append(groups, "")
	}
	value := func(intGroups []string, frac string) (string, bool) {
		intPart := strings.Join(intGroups, "")
		if len(intPart) > 1 && intPart[0] == '0' {
			return "", false
		}
		return canonicalDecimal(neg, intPart, frac)
	}
	n := len(seps)
	if n == 0 {
		v, ok := value(groups, "")
		return []string{v}, ok
	}
	last := seps[n-1]
	if last == ' ' || last == '\'' || strings.Count(string(seps), string(last)) > 1 {
		// Thousands only: "1 000", "1'000", "1,000,000".
		if !sameRunes(seps) || !validGrouping(groups) {
			return nil, false
		}
		v, ok := value(groups, "")
		return []string{v}, ok
	}
	// The last mark is a lone '.' or ',': the decimal mark, unless it may group thousands.
	dec, ok := "", false
	if sameRunes(seps[:n-1]) && validGrouping(groups[:n]) {
		dec, ok = value(groups[:n], groups[n])
	}
	if n == 1 && validGrouping(groups) {
		if thousands, tok := value(groups, ""); tok {
			if ok {
				return []string{thousands, dec}, true
			}
			return []string{thousands}, true
		}
	}
	return []string{dec}, ok
}

func sameRunes(rs []rune) bool {
	for _, r := range rs {
		if r != rs[0] {
			return false
		}
	}
	return true
}

// validGrouping accepts thousands groups (1-3 digits, then groups of 3) and the Indian lakh
// grouping (1-2 digits, groups of 2, a last group of 3).
func validGrouping(groups []string) bool {
	if len(groups) == 1 {
		return true
	}
	if groups[0][0] == '0' || len(groups[len(groups)-1]) != 3 {
		return false
	}
	western, indian := len(groups[0]) <= 3, len(groups[0]) <= 2
	for _, g := range groups[1 : len(groups)-1] {
		western = western && len(g) == 3
		indian = indian && len(g) == 2
	}
	return western || indian
}

// currencySymbols maps folded currency symbols and names to the ISO 4217 codes they may mean
// (a read-only table).
var currencySymbols = map[string][]string{
	"$": {"USD"}, "US$": {"USD"},
	"€": {"EUR"}, "EURO": {"EUR"}, "EUROS": {"EUR"},
	"£": {"GBP"},
	"¥": {"JPY", "CNY"},
	"円": {"JPY"},
	"元": {"CNY"}, "RMB": {"CNY"},
	"₽": {"RUB"}, "РУБ": {"RUB"},
	"₹":  {"INR"},
	"₩":  {"KRW"},
	"₺":  {"TRY"},
	"₴":  {"UAH"},
	"₸":  {"KZT"},
	"₪":  {"ILS"},
	"₫":  {"VND"},
	"฿":  {"THB"},
	"₦":  {"NGN"},
	"₱":  {"PHP"},
	"₿":  {"BTC"},
	"ZŁ": {"PLN"},
	"KČ": {"CZK"},
	"R$": {"BRL"},
	"C$": {"CAD"}, "CA$": {"CAD"},
	"A$": {"AUD"}, "AU$": {"AUD"},
	"NZ$": {"NZD"},
	"HK$": {"HKD"},
	"S$":  {"SGD"},
	"MX$": {"MXN"},
}

// currencyCodes returns the ISO 4217 codes (and the common crypto codes) a folded currency code
// or symbol means.
func currencyCodes(tok string) ([]string, bool) {
	// foldKnowledge has made letters the smallest of their case orbit: upper case for Latin and
	// Cyrillic.
	if codes, ok := currencySymbols[tok]; ok {
		return codes, true
	}
	const codes = " AED ARS AUD AZN BGN BHD BRL BTC BYN CAD CHF CLP CNY COP CZK DKK EGP ETH EUR GBP GEL HKD HUF IDR " +
		"ILS INR ISK JPY KES KRW KWD KZT MAD MXN MYR NGN NOK NZD PEN PHP PKR PLN QAR RON RSD RUB SAR SEK SGD THB TRY TWD " +
		"UAH USD USDC USDT UZS VND ZAR "
	if len(tok) >= 3 && len(tok) <= 4 && !strings.Contains(tok, " ") && strings.Contains(codes, " "+tok+" ") {
		return []string{tok}, true
	}
	return nil, false
}
