package recovery_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/recoverydesk/recoverydesk/recovery"
)

func TestKnowledgeMatch(t *testing.T) {
	cases := []struct {
		name   string
		stored any
		answer string
		want   bool
	}{
		// strings
		{"same country", "Germany", "Germany", true},
		{"case and spaces", "Germany", " germany ", true},
		{"upper case", "Germany", "GERMANY", true},
		{"spaces inside", "United Kingdom", "unitedkingdom", true},
		{"tabs and double spaces", "United Kingdom", "United \t  Kingdom", true},
		{"full-width letters", "Germany", "Ｇｅｒｍａｎｙ", true},
		{"ideographic space", "United Kingdom", "United\u3000Kingdom", true},
		{"another country", "Germany", "Austria", false},
		{"prefix only", "Germany", "German", false},
		{"non-Latin case", "Россия", "РОССИЯ", true},
		{"Kelvin sign folds to k", "Kiev", "\u212Aiev", true},
		{"accents matter", "Türkiye", "Turkiye", false},
		{"empty answer", "Germany", "", false},
		{"blank answer", "Germany", " \t ", false},
		{"empty stored fact", "", "", false},
		{"a date is text", "2024-01-05", "2024-01-05", true},
		{"a date is not a number", "2024-01-05", "20240105", false},
		{"leading zero keeps text", "007", "7", false},
		{"leading zero matches itself", "007", "007", true},

		// amounts, stored as text
		{"thousands comma vs plain", "1,000.50", "1000.5", true},
		{"plain vs thousands comma", "1000.5", "1,000.50", true},
		{"space thousands, decimal comma", "1000.5", "1 000,50", true},
		{"dot thousands, decimal comma", "1000.5", "1.000,50", true},
		{"apostrophe thousands", "1000.5", "1'000.50", true},
		{"narrow no-break space thousands", "1000.5", "1\u202f000,50", true},
		{"dollar vs code", "$1,000", "1000 USD", true},
		{"code vs dollar", "1000 USD", "$1,000", true},
		{"codes disagree", "USD 1000", "EUR 1000", false},
		{"symbols disagree", "€1000", "£1000", false},
		{"euro symbol vs code", "1.000,50 €", "EUR 1000.50", true},
		{"lower-case code", "USD 1000", "1000 usd", true},
		{"code on one side only", "1000", "1000 EUR", true},
		{"yen means JPY or CNY", "¥5000", "5000 CNY", true},
		{"full-width yen and digits", "5000 JPY", "￥５０００", true},
		{"unknown code is text", "1000 XYZ", "1000", false},
		{"two currencies", "USD 1000 EUR", "1000", false},
		{"1000 vs 100", "1000", "100", false},
		{"decimal comma", "1,5", "1.5", true},
		{"one comma thousand", "1,000", "1000", true},
		{"one dot thousand", "1.000", "1000", true},
		{"a lone mark is read both ways", "1,000", "1", true},
		{"a lone mark, neither reading", "1,000", "10", false},
		{"three decimals of a stored number", 250.125, "250.125", true},
		{"three decimals, decimal comma", 250.125, "250,125", true},
		{"the thousands reading of three decimals", 250125.0, "250.125", true},
		{"two marks are not ambiguous", 1.0005, "1,000.5", false},
		{"leading zero decimal", "0.125", "0,125", true},
		{"four digits before is decimal", "1000.500", "1000.5", true},
		{"bad grouping is text", "10,00,0", "1000", false},
		{"lakh grouping", "1,00,000", "100000", true},
		{"mixed thousands", "1,000 000", "1000000", false},
		{"negative", "-5", "-5.00", true},
		{"sign matters", "-5", "5", false},
		{"minus sign", "-5", "\u22125", true},
		{"sign before symbol", "-$5", "USD -5", true},

		// numbers
		{"float64", 1000.5, "1,000.50", true},
		{"float64 other formats", 1000.5, "1 000,50 €", true},
		{"float64 vs different", 1000.5, "1000.05", false},
		{"float64 vs 100", 1000.0, "100", false},
		{"float64 whole", 1000.0, "1000", true},
		{"float64 thousands", 1000.0, "$1,000", true},
		{"float64 small", 0.1, "0.10", true},
		{"float64 huge", 1e21, "1000000000000000000000", true},
		{"json.Number", json.Number("1000.50"), "1000.5", true},
		{"json.Number 1.000 is one", json.Number("1.000"), "1", true},
		{"json.Number exponent", json.Number("1e3"), "1,000", true},
		{"json.Number other", json.Number("1000.50"), "1000.05", false},
		{"int", 42, "42", true},
		{"int64 negative", int64(-42), "-42", true},
		{"uint8", uint8(7), "7.0", true},
		{"number vs text", 1000.5, "a thousand", false},
		{"number vs empty", 0.0, "", false},
		{"zero", 0.0, "0", true},

		// other stored types
		{"bool yes", true, "Yes", true},
		{"bool true", true, "TRUE", true},
		{"bool no vs true", true, "no", false},
		{"bool false", false, "no", true},
		{"bool other word", true, "maybe", false},
		{"nil", nil, "anything", false},
		{"a map", map[string]any{"a": 1}, "map[a:1]", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := recovery.KnowledgeMatch(c.stored, c.answer); got != c.want {
				t.Fatalf("KnowledgeMatch(%#v, %q) = %v, want %v", c.stored, c.answer, got, c.want)
			}
			if s, ok := c.stored.(string); ok {
				if got := recovery.KnowledgeMatch(c.answer, s); got != c.want {
					t.Fatalf("not symmetric: KnowledgeMatch(%q, %q) = %v", c.answer, s, got)
				}
			}
		})
	}
}

// The stored value reaches no output: KnowledgeMatch returns a bool and nothing else, so the
// check is that it neither panics nor stringifies odd stored types.
func TestKnowledgeMatchOddTypes(t *testing.T) {
	for _, v := range []any{[]byte("1000"), struct{ A int }{1}, fmt.Errorf("1000"), float32(2.5), uint64(1 << 63)} {
		_ = recovery.KnowledgeMatch(v, "1000")
	}
	if !recovery.KnowledgeMatch(float32(2.5), "2,5") {
		t.Error("float32 2.5 does not match 2,5")
	}
	if !recovery.KnowledgeMatch(uint64(1<<63), "9,223,372,036,854,775,808") {
		t.Error("uint64 2^63 does not match")
	}
	if recovery.KnowledgeMatch([]byte("1000"), "1000") || recovery.KnowledgeMatch(fmt.Errorf("1000"), "1000") {
		t.Error("an unsupported type matched through its string form")
	}
}
