package recovery_test

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// validPolicy is a small policy that parses; the error cases change one thing in it.
const validPolicy = `{
  "version": "t-1",
  "description": "test policy",
  "items": [
    {"key": "possession", "kind": "possession", "label": "Has a code"},
    {"key": "email_code", "kind": "email_code", "label": "E-mail code"},
    {"key": "tg", "kind": "telegram_prelinked", "label": "Linked chat"},
    {"key": "k1", "kind": "knowledge", "label": "Fact one", "fact": "one"},
    {"key": "k2", "kind": "knowledge", "label": "Fact two", "fact": "two"},
    {"key": "document", "kind": "document", "label": "Document", "help": "Look at it."}
  ],
  "rules": [
    {"when": "always", "reason": "base", "require": ["email_code"], "at_least": [{"n": 1, "of": ["k1", "k2"]}]},
    {"when": "high_risk", "reason": "high risk", "require": ["document"]}
  ],
  "substitutes": [
    {"item": "tg", "for": "email_code", "unless": ["high_risk"]}
  ]
}`

func TestParsePolicyValid(t *testing.T) {
	p, err := recovery.ParsePolicy([]byte(validPolicy))
	if err != nil {
		t.Fatal(err)
	}
	if p.Version != "t-1" || len(p.Items) != 6 || len(p.Rules) != 2 || len(p.Substitutes) != 1 {
		t.Fatalf("parsed %+v", p)
	}
	want := recovery.PolicyRule{When: "always", Reason: "base", Require: []string{"email_code"},
		AtLeast: []recovery.PolicyGroup{{N: 1, Of: []string{"k1", "k2"}}}}
	if !reflect.DeepEqual(p.Rules[0], want) {
		t.Fatalf("rule 0 = %+v, want %+v", p.Rules[0], want)
	}
	if it, ok := p.Item("k2"); !ok || it.Fact != "two" || it.Kind != recovery.KindKnowledge {
		t.Fatalf("Item(k2) = %+v, %v", it, ok)
	}
	if _, ok := p.Item("nope"); ok {
		t.Fatal("Item found an unknown key")
	}
}

func TestParsePolicyErrors(t *testing.T) {
	cases := []struct {
		name    string
		old     string // replaced in validPolicy by new
		new     string
		wantErr string
	}{
		{"empty version", `"version": "t-1"`, `"version": " "`, "version is empty"},
		{"missing version", `"version": "t-1",`, ``, "version is empty"},
		{"version with spaces", `"version": "t-1"`, `"version": "t 1"`, `version "t 1"`},
		{"version is a number", `"version": "t-1"`, `"version": 1`, "the policy: version: want a string, got a number"},
		{"unknown top-level field", `"description": "test policy",`, `"descripton": "x",`, `the policy: unknown field "descripton"`},
		{"field name in another case", `"version": "t-1"`, `"Version": "t-1"`, `unknown field "Version"`},
		{"repeated top-level field", `"description": "test policy",`, `"description": "a", "description": "b",`, `field "description" appears twice`},
		{"unknown item field", `"help": "Look at it."`, `"hint": "Look at it."`, `items[5]: unknown field "hint"`},
		{"unknown kind", `"kind": "document"`, `"kind": "passport"`, `items[5] "document": unknown kind "passport"`},
		{"duplicate item key", `{"key": "k2"`, `{"key": "k1"`, `items[4] "k1": duplicate item key (also items[3])`},
		{"bad item key", `{"key": "k2"`, `{"key": "K 2"`, `items[4]: key "K 2"`},
		{"empty label", `"label": "Document"`, `"label": ""`, `items[5] "document": label is empty`},
		{"knowledge without fact", `, "fact": "two"`, ``, `items[4] "k2": a knowledge item needs the fact`},
		{"fact on a document", `"help": "Look at it."`, `"fact": "x"`, `items[5] "document": fact is for knowledge items only`},
		{"control character in help", `"help": "Look at it."`, `"help": "Look\tat it."`, `items[5] "document": help: contains a control character`},
		{"item is not an object", `{"key": "document", "kind": "document", "label": "Document", "help": "Look at it."}`, `"document"`, "items[5]: want an object, got a string"},
		{"requirement names unknown item", `"require": ["document"]`, `"require": ["passport"]`, `rules[1] (when high_risk): require[0]: unknown item "passport"`},
		{"group names unknown item", `"of": ["k1", "k2"]`, `"of": ["k1", "k3"]`, `rules[0] (when always): at_least[0]: of[1]: unknown item "k3"`},
		{"possession required", `"require": ["document"]`, `"require": ["possession"]`, `require[0]: item "possession" is a possession item`},
		{"item named twice", `"require": ["document"]`, `"require": ["document", "document"]`, `require[1]: item "document" is named twice`},
		{"group n too large", `"n": 1`, `"n": 3`, "at_least[0]: n is 3; want 1 to 2"},
		{"group n zero", `"n": 1`, `"n": 0`, "at_least[0]: n is 0"},
		{"group n fractional", `"n": 1`, `"n": 1.5`, "n: want a whole number"},
		{"unknown condition", `"when": "high_risk"`, `"when": "very_risky"`, `rules[1]: unknown condition "very_risky" in when`},
		{"rule requires nothing", `"reason": "high risk", "require": ["document"]`, `"reason": "high risk"`, "rules[1] (when high_risk): requires nothing"},
		{"rule without reason", `"reason": "high risk", `, ``, "rules[1] (when high_risk): reason is empty"},
		{"no base rule", `"when": "always"`, `"when": "any_signal"`, `no rule applies "always"`},
		{"substitute for unknown item", `"for": "email_code"`, `"for": "sms_code"`, `substitutes[0]: for: unknown item "sms_code"`},
		{"substitute for itself", `"for": "email_code"`, `"for": "tg"`, `substitutes[0]: item "tg" stands in for itself`},
		{"substitute unless always", `"unless": ["high_risk"]`, `"unless": ["always"]`, `substitutes[0]: unless[0]: unknown condition "always"`},
		{"require is a string", `"require": ["document"]`, `"require": "document"`, "rules[1]: require: want an array, got a string"},
		{"require holds a number", `"require": ["document"]`, `"require": [7]`, "rules[1]: require[0]: want a string, got a number"},
		{"null label", `"label": "Document"`, `"label": null`, `items[5]: label: want a string, got null`},
		{"syntax error", `"rules": [`, `"rules": [,`, "line 12, column 13: invalid character"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(validPolicy, c.old) {
				t.Fatalf("case does not apply: %q not in the policy", c.old)
			}
			data := strings.Replace(validPolicy, c.old, c.new, 1)
			p, err := recovery.ParsePolicy([]byte(data))
			if err == nil {
				t.Fatalf("parsed: %+v", p)
			}
			if !strings.Contains(err.Error(), c.wantErr) || !strings.HasPrefix(err.Error(), "policy: ") {
				t.Fatalf("error %q, want it to contain %q", err, c.wantErr)
			}
		})
	}
	whole := []struct{ name, data, wantErr string }{
		{"empty input", "", "line 1, column 1: unexpected end of JSON input"},
		{"trailing data", validPolicy + " {}", "after top-level value"},
		{"not an object", "[]", "the policy: want an object, got an array"},
		{"invalid UTF-8", "{\"version\": \"\xff\"}", "not valid UTF-8"},
		{"no items", `{"version": "v", "items": [], "rules": []}`, "the policy has no checklist items"},
	}
	for _, c := range whole {
		if _, err := recovery.ParsePolicy([]byte(c.data)); err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%s: error %v, want it to contain %q", c.name, err, c.wantErr)
		}
	}
}

func TestDefaultPolicy(t *testing.T) {
	p, err := recovery.LoadDefaultPolicy()
	if err != nil {
		t.Fatal(err)
	}
	if d := recovery.DefaultPolicy(); d == nil || !reflect.DeepEqual(d, p) {
		t.Fatal("DefaultPolicy differs from LoadDefaultPolicy")
	}
	if p.Version != "2026-11-1" {
		t.Fatalf("version %q", p.Version)
	}
	var keys []string
	for _, it := range p.Items {
		keys = append(keys, it.Key)
		if strings.TrimSpace(it.Help) == "" {
			t.Errorf("item %s has no help for the agent", it.Key)
		}
	}
	want := []string{"possession", "email_code", "telegram_prelinked", "knowledge_last_deposit", "knowledge_signup_country", "document", "callback"}
	if !slices.Equal(keys, want) {
		t.Fatalf("items %q, want %q", keys, want)
	}
	for _, c := range []struct{ key, kind, fact string }{
		{"knowledge_last_deposit", recovery.KindKnowledge, "last_deposit_amount"},
		{"knowledge_signup_country", recovery.KindKnowledge, "signup_country"},
		{"telegram_prelinked", recovery.KindTelegramPrelinked, ""},
		{"possession", recovery.KindPossession, ""},
	} {
		if it, _ := p.Item(c.key); it.Kind != c.kind || it.Fact != c.fact {
			t.Errorf("%s = %+v", c.key, it)
		}
	}
	for i, r := range p.Rules {
		if strings.TrimSpace(r.Description) == "" {
			t.Errorf("rules[%d] does not explain itself", i)
		}
	}
	for i, s := range p.Substitutes {
		if strings.TrimSpace(s.Description) == "" {
			t.Errorf("substitutes[%d] does not explain itself", i)
		}
	}
	// Each call is a copy: one caller cannot change another's policy.
	p.Items[0].Label = "changed"
	if recovery.DefaultPolicy().Items[0].Label == "changed" {
		t.Fatal("DefaultPolicy shares its state")
	}
}

func TestLoadPolicyFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "policy.json")
	if err := os.WriteFile(good, []byte(validPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := recovery.LoadPolicyFile(good)
	if err != nil || p.Version != "t-1" {
		t.Fatalf("LoadPolicyFile = %+v, %v", p, err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(strings.Replace(validPolicy, `"kind": "document"`, `"kind": "dna"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := recovery.LoadPolicyFile(bad); err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), `unknown kind "dna"`) {
		t.Fatalf("bad file: %v", err)
	}
	missing := filepath.Join(dir, "missing.json")
	if _, err := recovery.LoadPolicyFile(missing); err == nil || !strings.Contains(err.Error(), "cannot read "+missing) {
		t.Fatalf("missing file: %v", err)
	}
	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, []byte(`{"version":"`+strings.Repeat("a", 2<<20)+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := recovery.LoadPolicyFile(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("big file: %v", err)
	}
}

func TestEvaluateRisk(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	base := recovery.RiskInput{Now: now, Matched: true, RecentTickets: 1, Channel: recovery.ChannelConsole}
	with := func(f func(*recovery.RiskInput)) recovery.RiskInput {
		in := base
		f(&in)
		return in
	}
	cases := []struct {
		name string
		in   recovery.RiskInput
		want []recovery.RiskSignal
	}{
		{"nothing", base, nil},
		{"e-mail changed 29 days 23:59 ago", with(func(in *recovery.RiskInput) { in.EmailChangedAt = now.Add(-30*day + time.Minute) }), []recovery.RiskSignal{recovery.RiskEmailChanged}},
		{"e-mail changed 30 days ago exactly", with(func(in *recovery.RiskInput) { in.EmailChangedAt = now.Add(-30 * day) }), nil},
		{"e-mail changed 1 ns less than 30 days ago", with(func(in *recovery.RiskInput) { in.EmailChangedAt = now.Add(-30*day + 1) }), []recovery.RiskSignal{recovery.RiskEmailChanged}},
		{"phone changed 29 days 23:59 ago", with(func(in *recovery.RiskInput) { in.PhoneChangedAt = now.Add(-30*day + time.Minute) }), []recovery.RiskSignal{recovery.RiskPhoneChanged}},
		{"phone changed 30 days ago exactly", with(func(in *recovery.RiskInput) { in.PhoneChangedAt = now.Add(-30 * day) }), nil},
		{"telegram linked yesterday", with(func(in *recovery.RiskInput) { in.TelegramChangedAt = now.Add(-day) }), []recovery.RiskSignal{recovery.RiskTelegramChanged}},
		{"telegram linked 30 days ago", with(func(in *recovery.RiskInput) { in.TelegramChangedAt = now.Add(-30 * day) }), nil},
		{"change in the future counts", with(func(in *recovery.RiskInput) { in.EmailChangedAt = now.Add(time.Hour) }), []recovery.RiskSignal{recovery.RiskEmailChanged}},
		{"one ticket", with(func(in *recovery.RiskInput) { in.RecentTickets = 1 }), nil},
		{"two tickets", with(func(in *recovery.RiskInput) { in.RecentTickets = 2 }), []recovery.RiskSignal{recovery.RiskRepeatTickets}},
		{"staff", with(func(in *recovery.RiskInput) { in.Staff = true }), []recovery.RiskSignal{recovery.RiskStaff}},
		{"unmatched", recovery.RiskInput{Now: now, Channel: recovery.ChannelAPI}, []recovery.RiskSignal{recovery.RiskUnmatched}},
		{"telegram, not linked before", with(func(in *recovery.RiskInput) { in.Channel = recovery.ChannelTelegram }), []recovery.RiskSignal{recovery.RiskUnlinked}},
		{"telegram, linked before", with(func(in *recovery.RiskInput) { in.Channel, in.ChatLinkedBefore = recovery.ChannelTelegram, true }), nil},
		{"console, nothing linked", with(func(in *recovery.RiskInput) { in.Channel = recovery.ChannelConsole }), nil},
		{"api, nothing linked", with(func(in *recovery.RiskInput) { in.Channel = recovery.ChannelAPI }), nil},
		{"unknown channel", with(func(in *recovery.RiskInput) { in.Channel = "sms" }), []recovery.RiskSignal{recovery.RiskUnlinked}},
		{"unmatched telegram", recovery.RiskInput{Now: now, Channel: recovery.ChannelTelegram}, []recovery.RiskSignal{recovery.RiskUnlinked, recovery.RiskUnmatched}},
		{"everything, sorted", recovery.RiskInput{Now: now, Matched: true, Staff: true, EmailChangedAt: now.Add(-day), PhoneChangedAt: now.Add(-day),
			TelegramChangedAt: now.Add(-day), RecentTickets: 3, Channel: recovery.ChannelTelegram},
			[]recovery.RiskSignal{recovery.RiskEmailChanged, recovery.RiskPhoneChanged, recovery.RiskRepeatTickets, recovery.RiskStaff,
				recovery.RiskTelegramChanged, recovery.RiskUnlinked}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := recovery.EvaluateRisk(c.in)
			if !slices.Equal(got, c.want) {
				t.Fatalf("EvaluateRisk = %q, want %q", got, c.want)
			}
		})
	}
}

func TestHighRiskAndExplain(t *testing.T) {
	cases := []struct {
		signals []recovery.RiskSignal
		want    bool
	}{
		{nil, false},
		{[]recovery.RiskSignal{recovery.RiskEmailChanged}, false},
		{[]recovery.RiskSignal{recovery.RiskStaff}, true},
		{[]recovery.RiskSignal{recovery.RiskEmailChanged, recovery.RiskRepeatTickets}, true},
		{[]recovery.RiskSignal{recovery.RiskEmailChanged, recovery.RiskEmailChanged}, false}, // a repeat is one signal
	}
	for _, c := range cases {
		if got := recovery.HighRisk(c.signals); got != c.want {
			t.Errorf("HighRisk(%q) = %v, want %v", c.signals, got, c.want)
		}
	}
	if got := recovery.RiskEmailChanged.Explain(); got != "The e-mail address was changed in the last 30 days." {
		t.Errorf("Explain = %q", got)
	}
	seen := map[string]bool{}
	for _, s := range []recovery.RiskSignal{recovery.RiskStaff, recovery.RiskEmailChanged, recovery.RiskPhoneChanged, recovery.RiskTelegramChanged,
		recovery.RiskRepeatTickets, recovery.RiskUnmatched, recovery.RiskUnlinked} {
		e := s.Explain()
		if seen[e] || strings.Contains(e, "Unknown") || !strings.HasSuffix(e, ".") {
			t.Errorf("%s: Explain = %q", s, e)
		}
		seen[e] = true
	}
	if got := recovery.RiskSignal("odd").Explain(); !strings.Contains(got, "Unknown") {
		t.Errorf("unknown signal explained as %q", got)
	}
}

// pass builds results with the given items passed.
func pass(keys ...string) []recovery.ItemResult {
	var rs []recovery.ItemResult
	for _, k := range keys {
		rs = append(rs, recovery.ItemResult{Key: k, Passed: true})
	}
	return rs
}

func TestMissingDefaultPolicy(t *testing.T) {
	p := recovery.DefaultPolicy()
	const (
		email    = "Code sent to the e-mail address of record"
		emailAlt = email + ", or instead: Request from the Telegram chat linked before the ticket"
		deposit  = "Amount of the last deposit"
		country  = "Country given at sign-up"
		document = "Identity document and selfie match the account holder"
		callback = "Call-back to the phone number of record"
		oneFact  = "At least 1 of: " + deposit + ", " + country
	)
	var (
		none      []recovery.RiskSignal
		emailChg  = []recovery.RiskSignal{recovery.RiskEmailChanged}
		repeat    = []recovery.RiskSignal{recovery.RiskRepeatTickets}
		tgChanged = []recovery.RiskSignal{recovery.RiskTelegramChanged}
		high      = []recovery.RiskSignal{recovery.RiskPhoneChanged, recovery.RiskRepeatTickets}
		staff     = []recovery.RiskSignal{recovery.RiskStaff}
	)
	allButDoc := pass("email_code", "knowledge_last_deposit", "knowledge_signup_country", "callback")
	cases := []struct {
		name     string
		signals  []recovery.RiskSignal
		results  []recovery.ItemResult
		want     []string
		required []string
	}{
		{"low risk, nothing done", none, nil,
			[]string{emailAlt + " (base policy)", oneFact + " (base policy)"}, []string{"email_code"}},
		{"low risk, e-mail and one fact", none, pass("email_code", "knowledge_signup_country"), nil, []string{"email_code"}},
		{"low risk, linked chat stands in for the e-mail code", none, pass("telegram_prelinked", "knowledge_last_deposit"), nil, []string{"email_code"}},
		{"low risk, a failed fact does not count", none, []recovery.ItemResult{{Key: "email_code", Passed: true}, {Key: "knowledge_last_deposit", Passed: false}},
			[]string{oneFact + " (base policy)"}, []string{"email_code"}},
		{"the last result of an item counts", none, []recovery.ItemResult{{Key: "email_code", Passed: true}, {Key: "knowledge_last_deposit", Passed: true},
			{Key: "knowledge_last_deposit", Passed: false}}, []string{oneFact + " (base policy)"}, []string{"email_code"}},
		{"low risk, possession passed is not a factor", none, pass("possession"),
			[]string{emailAlt + " (base policy)", oneFact + " (base policy)"}, []string{"email_code"}},
		{"low risk, a document does not replace the e-mail code", none, pass("document", "knowledge_last_deposit", "callback"),
			[]string{emailAlt + " (base policy)"}, []string{"email_code"}},
		{"one signal needs both facts", repeat, pass("email_code", "knowledge_last_deposit"),
			[]string{country + " (a risk signal)"}, []string{"email_code", "knowledge_last_deposit", "knowledge_signup_country"}},
		{"one signal, nothing done: no group line beside both facts", repeat, nil,
			[]string{emailAlt + " (base policy)", deposit + " (a risk signal)", country + " (a risk signal)"},
			[]string{"email_code", "knowledge_last_deposit", "knowledge_signup_country"}},
		{"one signal, satisfied", repeat, pass("telegram_prelinked", "knowledge_last_deposit", "knowledge_signup_country"), nil,
			[]string{"email_code", "knowledge_last_deposit", "knowledge_signup_country"}},
		{"e-mail changed asks for a second channel", emailChg, pass("email_code", "knowledge_last_deposit", "knowledge_signup_country"),
			[]string{"At least 1 of: Request from the Telegram chat linked before the ticket, " + document + " (e-mail changed in the last 30 days)"},
			[]string{"email_code", "knowledge_last_deposit", "knowledge_signup_country"}},
		{"e-mail changed, the linked chat covers both", emailChg, pass("telegram_prelinked", "knowledge_last_deposit", "knowledge_signup_country"), nil,
			[]string{"email_code", "knowledge_last_deposit", "knowledge_signup_country"}},
		{"telegram changed: the chat no longer stands in", tgChanged, pass("telegram_prelinked", "knowledge_last_deposit", "knowledge_signup_country"),
			[]string{email + " (base policy)"}, []string{"email_code", "knowledge_last_deposit", "knowledge_signup_country"}},
		{"high risk needs a document, and the e-mail code itself", high, pass("telegram_prelinked", "knowledge_last_deposit", "knowledge_signup_country"),
			[]string{email + " (base policy)", document + " (high risk)"}, []string{"email_code", "knowledge_last_deposit", "knowledge_signup_country", "document"}},
		{"high risk, satisfied", high, pass("email_code", "knowledge_last_deposit", "knowledge_signup_country", "document"), nil,
			[]string{"email_code", "knowledge_last_deposit", "knowledge_signup_country", "document"}},
		{"staff, nothing done", staff, nil,
			[]string{email + " (base policy)", deposit + " (a risk signal)", country + " (a risk signal)", document + " (high risk; staff account)", callback + " (staff account)"},
			[]string{"email_code", "knowledge_last_deposit", "knowledge_signup_country", "document", "callback"}},
		{"staff, all but the document", staff, allButDoc, []string{document + " (high risk; staff account)"},
			[]string{"email_code", "knowledge_last_deposit", "knowledge_signup_country", "document", "callback"}},
		{"staff, failed callback", staff, append(pass("email_code", "knowledge_last_deposit", "knowledge_signup_country", "document"),
			recovery.ItemResult{Key: "callback", Passed: false}), []string{callback + " (staff account)"},
			[]string{"email_code", "knowledge_last_deposit", "knowledge_signup_country", "document", "callback"}},
		{"staff, satisfied", staff, pass("email_code", "knowledge_last_deposit", "knowledge_signup_country", "document", "callback"), nil,
			[]string{"email_code", "knowledge_last_deposit", "knowledge_signup_country", "document", "callback"}},
		{"unknown result keys are ignored", none, pass("email_code", "made_up"), []string{oneFact + " (base policy)"}, []string{"email_code"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := p.Missing(c.signals, c.results)
			if !slices.Equal(got, c.want) {
				t.Fatalf("Missing =\n  %q\nwant\n  %q", got, c.want)
			}
			if req := p.Required(c.signals); !slices.Equal(req, c.required) {
				t.Fatalf("Required = %q, want %q", req, c.required)
			}
		})
	}
}

func TestMissingGroupsAndNilPolicy(t *testing.T) {
	p, err := recovery.ParsePolicy([]byte(`{"version": "g", "items": [
		{"key": "a", "kind": "knowledge", "label": "A", "fact": "a"},
		{"key": "b", "kind": "knowledge", "label": "B", "fact": "b"},
		{"key": "c", "kind": "knowledge", "label": "C", "fact": "c"},
		{"key": "d", "kind": "document", "label": "D"}],
	  "rules": [
		{"when": "always", "reason": "base", "require": ["d"], "at_least": [{"n": 2, "of": ["a", "b", "c"]}]},
		{"when": "repeat_tickets", "reason": "repeat", "at_least": [{"n": 2, "of": ["c", "b", "a"]}, {"n": 3, "of": ["a", "b", "c"]}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		signals []recovery.RiskSignal
		results []recovery.ItemResult
		want    []string
	}{
		{"group of two, one passed", nil, pass("b"), []string{"At least 2 of: A, B, C — 1 passed so far (base)", "D (base)"}},
		{"group met", nil, pass("c", "a", "d"), nil},
		{"the same group from two rules is one line", []recovery.RiskSignal{recovery.RiskRepeatTickets}, pass("d"),
			[]string{"At least 2 of: A, B, C (base; repeat)", "All of: A, B, C (repeat)"}},
	}
	for _, c := range cases {
		if got := p.Missing(c.signals, c.results); !slices.Equal(got, c.want) {
			t.Errorf("%s: Missing = %q, want %q", c.name, got, c.want)
		}
	}
	if got := p.Required(nil); !slices.Equal(got, []string{"d"}) {
		t.Errorf("Required = %q", got)
	}

	var nilPolicy *recovery.Policy
	if got := nilPolicy.Missing(nil, pass("email_code", "knowledge_last_deposit")); len(got) != 1 || !strings.Contains(got[0], "No recovery policy") {
		t.Errorf("nil policy Missing = %q", got)
	}
	if got := nilPolicy.Required(nil); got != nil {
		t.Errorf("nil policy Required = %q", got)
	}
	if _, ok := nilPolicy.Item("email_code"); ok {
		t.Error("nil policy has an item")
	}
}
