package recovery_test

import (
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// FuzzKnowledgeMatch: no panics; for two strings the answer does not depend on which side is
// stored; a non-blank string matches itself and is insensitive to surrounding spaces and case;
// a stored float matches its own decimal form.
func FuzzKnowledgeMatch(f *testing.F) {
	seeds := [][2]string{
		{"1,000.50", "1000.5"}, {"1.000,50", "1000.5"}, {"1 000,50", "1000.5"}, {"$1,000", "1000 USD"},
		{"USD 1000", "EUR 1000"}, {"1000", "100"}, {"Germany", " germany "}, {"", ""}, {"Ｇｅｒｍａｎｙ", "germany"},
		{"-$5", "USD -5"}, {"1,00,000", "100000"}, {"\xff\xfe", "\xff"}, {"¥5000", "５０００ CNY"}, {"0.125", "0,125"},
		{"1'000.50", "1\u202f000,50"}, {"2024-01-05", "20240105"}, {"007", "7"}, {"K", "\u212A"}, {"1e3", "1000"},
		{"1..0", "1.0"}, {"1,,000", "1000"}, {"+-5", "-5"}, {strings.Repeat("9", 60), strings.Repeat("9", 60)},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], 1000.5)
	}
	f.Add("250.125", "250125", 250.125) // found by fuzzing: a lone mark before three decimals
	f.Add("nan", "NaN", math.NaN())
	f.Add("inf", "+Inf", math.Inf(1))
	f.Add("tiny", "0.000000001", 1e-9)
	f.Fuzz(func(t *testing.T, a, b string, x float64) {
		ab, ba := recovery.KnowledgeMatch(a, b), recovery.KnowledgeMatch(b, a)
		if ab != ba {
			t.Fatalf("not symmetric: (%q, %q) = %v, (%q, %q) = %v", a, b, ab, b, a, ba)
		}
		blank := strings.TrimSpace(a) == ""
		if self := recovery.KnowledgeMatch(a, a); self == blank {
			t.Fatalf("KnowledgeMatch(%q, itself) = %v", a, self)
		}
		if !blank && !recovery.KnowledgeMatch(a, " \u3000"+a+"\t") {
			t.Fatalf("%q does not match itself padded with spaces", a)
		}
		if !blank && isASCII(a) && !recovery.KnowledgeMatch(a, strings.ToUpper(a)) {
			t.Fatalf("%q does not match its upper case", a)
		}
		_ = recovery.KnowledgeMatch(x, a)
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			if s := strconv.FormatFloat(x, 'f', -1, 64); len(s) <= 40 && !recovery.KnowledgeMatch(x, s) {
				t.Fatalf("%v does not match %q", x, s)
			}
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// FuzzParsePolicy: no panics; whatever parses fails closed (an empty checklist is never
// enough) and is satisfied once every item passed, for any signals.
func FuzzParsePolicy(f *testing.F) {
	def, err := os.ReadFile("default_policy.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(def)
	f.Add([]byte(validPolicy))
	f.Add([]byte(`{"version":"v","items":[{"key":"a","kind":"document","label":"A"}],"rules":[{"when":"always","reason":"r","require":["a"]}]}`))
	f.Add([]byte(`{"version":"v","items":[{"key":"a","kind":"knowledge","label":"A","fact":"f"}],"rules":[{"when":"always","reason":"r","at_least":[{"n":1,"of":["a"]}]}]}`))
	f.Add([]byte(`{"version":"v","items":[],"rules":[{"when":"always"}],"substitutes":[{}]}`))
	f.Add([]byte(`{"version":"v","version":"w"}`))
	all := []recovery.RiskSignal{recovery.RiskStaff, recovery.RiskEmailChanged, recovery.RiskPhoneChanged, recovery.RiskTelegramChanged,
		recovery.RiskRepeatTickets, recovery.RiskUnmatched, recovery.RiskUnlinked}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := recovery.ParsePolicy(data)
		if err != nil {
			if p != nil {
				t.Fatal("a policy and an error")
			}
			return
		}
		var everything []recovery.ItemResult
		for _, it := range p.Items {
			everything = append(everything, recovery.ItemResult{Key: it.Key, Passed: true})
		}
		for i := 0; i <= len(all); i++ {
			signals := all[:i]
			if len(p.Missing(signals, nil)) == 0 {
				t.Fatalf("signals %q: nothing missing from an empty checklist", signals)
			}
			if m := p.Missing(signals, everything); len(m) != 0 {
				t.Fatalf("signals %q: every item passed, still missing %q", signals, m)
			}
			for _, k := range p.Required(signals) {
				if it, ok := p.Item(k); !ok || it.Kind == recovery.KindPossession {
					t.Fatalf("required %q is unknown or possession", k)
				}
			}
		}
	})
}

func BenchmarkDefaultPolicy(b *testing.B) {
	for b.Loop() {
		if recovery.DefaultPolicy() == nil {
			b.Fatal("no default policy")
		}
	}
}
