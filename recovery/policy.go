package recovery

import (
	"bytes"
	_ "embed" // the default policy is compiled in
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Kinds of checklist items. The kind decides how an item is established: possession and
// document and callback are attested by the agent, email_code by a one-time code, knowledge by
// the system comparing the user's answer with an account fact, telegram_prelinked by the chat the
// request came from.
const (
	KindPossession        = "possession"
	KindEmailCode         = "email_code"
	KindTelegramPrelinked = "telegram_prelinked"
	KindKnowledge         = "knowledge"
	KindDocument          = "document"
	KindCallback          = "callback"
)

// Conditions a policy rule or a substitute's exception can name besides a RiskSignal.
const (
	WhenAlways    = "always"     // every ticket
	WhenAnySignal = "any_signal" // at least one risk signal
	WhenHighRisk  = "high_risk"  // HighRisk: a staff account or two or more signals
)

// RiskWindow is how far back a change of contact data or an earlier ticket counts as a risk
// signal.
const RiskWindow = 30 * 24 * time.Hour

// maxPolicyBytes bounds a policy file: the default is a few kilobytes.
const maxPolicyBytes = 1 << 20

//go:embed default_policy.json
var defaultPolicyJSON []byte

// Policy is a versioned recovery policy: the checklist items, what is required of every ticket,
// and what risk signals add. Build one with ParsePolicy, LoadPolicyFile or DefaultPolicy, which
// validate it; a Policy is read-only once built and safe for concurrent use.
//
// A nil *Policy fails closed: it has no items, requires nothing it could ever see satisfied, and
// Missing always answers that no policy is loaded.
type Policy struct {
	Version     string
	Description string
	Items       []PolicyItem
	Rules       []PolicyRule       // in policy order; each applies when its condition holds
	Substitutes []PolicySubstitute // passed items that may stand in for another
}

// PolicyItem is one checklist item.
type PolicyItem struct {
	Key   string // stable id stored with results, e.g. "knowledge_last_deposit"
	Kind  string // a Kind* constant
	Label string // short words for the console
	Help  string // how the agent performs the check
	Fact  string // knowledge items only: the account fact the answer is compared with
}

// PolicyRule requires items when its condition holds.
type PolicyRule struct {
	When        string // WhenAlways, WhenAnySignal, WhenHighRisk or a RiskSignal
	Reason      string // short words telling the agent why, e.g. "high risk"
	Description string // why the rule exists
	Require     []string
	AtLeast     []PolicyGroup
}

// PolicyGroup is satisfied when at least N of the items in Of passed.
type PolicyGroup struct {
	N  int
	Of []string
}

// PolicySubstitute lets a passed Item count as For, unless one of the conditions in Unless
// (WhenAnySignal, WhenHighRisk or a RiskSignal) holds.
type PolicySubstitute struct {
	Item        string
	For         string
	Unless      []string
	Description string
}

// DefaultPolicy returns the embedded default policy, or nil (which fails closed, see Policy)
// should the embedded file not parse — a test keeps that from ever shipping. Each call parses
// the file afresh (under a millisecond) so that no caller can change the policy another holds
// and the package keeps no state: call it once at start-up and keep the result.
func DefaultPolicy() *Policy {
	p, err := LoadDefaultPolicy()
	if err != nil {
		return nil
	}
	return p
}

// LoadDefaultPolicy is DefaultPolicy with the parse error, for start-up to report.
func LoadDefaultPolicy() (*Policy, error) {
	p, err := ParsePolicy(defaultPolicyJSON)
	if err != nil {
		return nil, fmt.Errorf("embedded default: %w", err)
	}
	return p, nil
}

// LoadPolicyFile reads and parses a policy file (RECOVERYDESK_POLICY_FILE).
func LoadPolicyFile(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policy: cannot read %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPolicyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("policy: cannot read %s: %w", path, err)
	}
	p, err := ParsePolicy(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// ParsePolicy parses a policy from JSON, strictly: unknown or repeated fields, wrong JSON
// types, unknown kinds or conditions, duplicate item keys, requirements naming unknown or
// possession items, an empty version and a policy that requires nothing of a ticket without risk
// signals are errors that say what is wrong and where (e.g. `items[3] "document": ...`).
func ParsePolicy(data []byte) (*Policy, error) {
	p, err := parsePolicy(data)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return p, nil
}

func parsePolicy(data []byte) (*Policy, error) {
	if len(data) > maxPolicyBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxPolicyBytes)
	}
	if !utf8.Valid(data) {
		return nil, errors.New("not valid UTF-8")
	}
	var raw json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, jsonSyntax(data, err)
	}
	top, err := jsonMembers(raw, "the policy", "version", "description", "items", "rules", "substitutes")
	if err != nil {
		return nil, err
	}
	p := &Policy{}
	if p.Version, err = top.text("version"); err != nil {
		return nil, err
	}
	if p.Description, err = top.text("description"); err != nil {
		return nil, err
	}
	items, err := top.array("items")
	if err != nil {
		return nil, err
	}
	for i, r := range items {
		it, err := parseItem(r, fmt.Sprintf("items[%d]", i))
		if err != nil {
			return nil, err
		}
		p.Items = append(p.Items, it)
	}
	rules, err := top.array("rules")
	if err != nil {
		return nil, err
	}
	for i, r := range rules {
		rule, err := parseRule(r, fmt.Sprintf("rules[%d]", i))
		if err != nil {
			return nil, err
		}
		p.Rules = append(p.Rules, rule)
	}
	subs, err := top.array("substitutes")
	if err != nil {
		return nil, err
	}
	for i, r := range subs {
		o, err := jsonMembers(r, fmt.Sprintf("substitutes[%d]", i), "item", "for", "unless", "description")
		if err != nil {
			return nil, err
		}
		var s PolicySubstitute
		if s.Item, err = o.text("item"); err != nil {
			return nil, err
		}
		if s.For, err = o.text("for"); err != nil {
			return nil, err
		}
		if s.Unless, err = o.texts("unless"); err != nil {
			return nil, err
		}
		if s.Description, err = o.text("description"); err != nil {
			return nil, err
		}
		p.Substitutes = append(p.Substitutes, s)
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	return p, nil
}

func parseItem(raw json.RawMessage, where string) (PolicyItem, error) {
	o, err := jsonMembers(raw, where, "key", "kind", "label", "help", "fact")
	if err != nil {
		return PolicyItem{}, err
	}
	var it PolicyItem
	for _, f := range []struct {
		name string
		dst  *string
	}{{"key", &it.Key}, {"kind", &it.Kind}, {"label", &it.Label}, {"help", &it.Help}, {"fact", &it.Fact}} {
		if *f.dst, err = o.text(f.name); err != nil {
			return PolicyItem{}, err
		}
	}
	return it, nil
}

func parseRule(raw json.RawMessage, where string) (PolicyRule, error) {
	o, err := jsonMembers(raw, where, "when", "reason", "description", "require", "at_least")
	if err != nil {
		return PolicyRule{}, err
	}
	var r PolicyRule
	if r.When, err = o.text("when"); err != nil {
		return PolicyRule{}, err
	}
	if r.Reason, err = o.text("reason"); err != nil {
		return PolicyRule{}, err
	}
	if r.Description, err = o.text("description"); err != nil {
		return PolicyRule{}, err
	}
	if r.Require, err = o.texts("require"); err != nil {
		return PolicyRule{}, err
	}
	groups, err := o.array("at_least")
	if err != nil {
		return PolicyRule{}, err
	}
	for i, g := range groups {
		obj, err := jsonMembers(g, fmt.Sprintf("%s.at_least[%d]", where, i), "n", "of")
		if err != nil {
			return PolicyRule{}, err
		}
		var pg PolicyGroup
		if pg.N, err = obj.int("n"); err != nil {
			return PolicyRule{}, err
		}
		if pg.Of, err = obj.texts("of"); err != nil {
			return PolicyRule{}, err
		}
		r.AtLeast = append(r.AtLeast, pg)
	}
	return r, nil
}

// validate checks the policy's meaning once its shape has been read. Rules that would let a
// ticket through on less than intended are errors, not warnings.
func (p *Policy) validate() error {
	if strings.TrimSpace(p.Version) == "" {
		return errors.New("version is empty")
	}
	if len(p.Version) > 64 || strings.Trim(p.Version, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
		return fmt.Errorf("version %q: use at most 64 letters, digits, '.', '_' and '-'", p.Version)
	}
	if err := checkPolicyText("description", p.Description, 4000); err != nil {
		return err
	}
	if len(p.Items) == 0 {
		return errors.New("items: the policy has no checklist items")
	}
	index := map[string]int{}
	for i, it := range p.Items {
		where := fmt.Sprintf("items[%d]", i)
		if !validPolicyKey(it.Key) {
			return fmt.Errorf("%s: key %q: use 1-64 lower-case letters, digits and '_', starting with a letter", where, it.Key)
		}
		where = fmt.Sprintf("items[%d] %q", i, it.Key)
		if j, dup := index[it.Key]; dup {
			return fmt.Errorf("%s: duplicate item key (also items[%d])", where, j)
		}
		index[it.Key] = i
		if !slices.Contains(policyKinds(), it.Kind) {
			return fmt.Errorf("%s: unknown kind %q (want one of %s)", where, it.Kind, strings.Join(policyKinds(), ", "))
		}
		if strings.TrimSpace(it.Label) == "" {
			return fmt.Errorf("%s: label is empty", where)
		}
		if err := checkPolicyText(where+": label", it.Label, 120); err != nil {
			return err
		}
		if err := checkPolicyText(where+": help", it.Help, 2000); err != nil {
			return err
		}
		switch {
		case it.Kind == KindKnowledge && strings.TrimSpace(it.Fact) == "":
			return fmt.Errorf("%s: a knowledge item needs the fact it checks", where)
		case it.Kind != KindKnowledge && it.Fact != "":
			return fmt.Errorf("%s: fact is for knowledge items only", where)
		}
		if err := checkPolicyText(where+": fact", it.Fact, 64); err != nil {
			return err
		}
	}
	// requirable names the items a rule or substitute may name: known, and never possession (a
	// passed possession item means self-service, not a step towards a reset).
	requirable := func(where, key string) error {
		i, ok := index[key]
		if !ok {
			return fmt.Errorf("%s: unknown item %q", where, key)
		}
		if p.Items[i].Kind == KindPossession {
			return fmt.Errorf("%s: item %q is a possession item, which is never required (it leads to self-service)", where, key)
		}
		return nil
	}
	base := false
	for i, r := range p.Rules {
		where := fmt.Sprintf("rules[%d]", i)
		if !validCondition(r.When, true) {
			return fmt.Errorf("%s: unknown condition %q in when (want %s)", where, r.When, conditionList(true))
		}
		where = fmt.Sprintf("rules[%d] (when %s)", i, r.When)
		if strings.TrimSpace(r.Reason) == "" {
			return fmt.Errorf("%s: reason is empty", where)
		}
		if err := checkPolicyText(where+": reason", r.Reason, 120); err != nil {
			return err
		}
		if err := checkPolicyText(where+": description", r.Description, 4000); err != nil {
			return err
		}
		if len(r.Require) == 0 && len(r.AtLeast) == 0 {
			return fmt.Errorf("%s: requires nothing (give require or at_least)", where)
		}
		for j, key := range r.Require {
			if err := requirable(fmt.Sprintf("%s: require[%d]", where, j), key); err != nil {
				return err
			}
			if slices.Index(r.Require, key) != j {
				return fmt.Errorf("%s: require[%d]: item %q is named twice", where, j, key)
			}
		}
		for j, g := range r.AtLeast {
			gw := fmt.Sprintf("%s: at_least[%d]", where, j)
			if len(g.Of) == 0 {
				return fmt.Errorf("%s: of is empty", gw)
			}
			if g.N < 1 || g.N > len(g.Of) {
				return fmt.Errorf("%s: n is %d; want 1 to %d (the number of items in of)", gw, g.N, len(g.Of))
			}
			for k, key := range g.Of {
				if err := requirable(fmt.Sprintf("%s: of[%d]", gw, k), key); err != nil {
					return err
				}
				if slices.Index(g.Of, key) != k {
					return fmt.Errorf("%s: of[%d]: item %q is named twice", gw, k, key)
				}
			}
		}
		if r.When == WhenAlways {
			base = true
		}
	}
	if !base {
		return errors.New(`rules: no rule applies "always": a ticket without risk signals would need nothing`)
	}
	for i, s := range p.Substitutes {
		where := fmt.Sprintf("substitutes[%d]", i)
		if err := requirable(where+": item", s.Item); err != nil {
			return err
		}
		if err := requirable(where+": for", s.For); err != nil {
			return err
		}
		if s.Item == s.For {
			return fmt.Errorf("%s: item %q stands in for itself", where, s.Item)
		}
		for j, c := range s.Unless {
			if !validCondition(c, false) {
				return fmt.Errorf("%s: unless[%d]: unknown condition %q (want %s)", where, j, c, conditionList(false))
			}
		}
		if err := checkPolicyText(where+": description", s.Description, 4000); err != nil {
			return err
		}
	}
	return nil
}

func policyKinds() []string {
	return []string{KindPossession, KindEmailCode, KindTelegramPrelinked, KindKnowledge, KindDocument, KindCallback}
}

// validCondition reports whether c is a condition a rule (rule: WhenAlways allowed) or a
// substitute's exception may name.
func validCondition(c string, rule bool) bool {
	switch c {
	case WhenAlways:
		return rule
	case WhenAnySignal, WhenHighRisk:
		return true
	}
	return slices.Contains(riskSignals(), RiskSignal(c))
}

func conditionList(rule bool) string {
	var cs []string
	if rule {
		cs = append(cs, WhenAlways)
	}
	cs = append(cs, WhenAnySignal, WhenHighRisk)
	for _, s := range riskSignals() {
		cs = append(cs, string(s))
	}
	return strings.Join(cs, ", ")
}

func validPolicyKey(k string) bool {
	if k == "" || len(k) > 64 || k[0] < 'a' || k[0] > 'z' {
		return false
	}
	return strings.Trim(k, "abcdefghijklmnopqrstuvwxyz0123456789_") == ""
}

// checkPolicyText refuses control characters (newlines included: these texts are shown on one
// line) and overlong text.
func checkPolicyText(where, s string, max int) error {
	if utf8.RuneCountInString(s) > max {
		return fmt.Errorf("%s: longer than %d characters", where, max)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s: contains a control character", where)
		}
	}
	return nil
}

// Item returns the item with key.
func (p *Policy) Item(key string) (PolicyItem, bool) {
	if p == nil {
		return PolicyItem{}, false
	}
	for _, it := range p.Items {
		if it.Key == key {
			return it, true
		}
	}
	return PolicyItem{}, false
}

// itemOfKind returns the first item of kind, in policy order.
func (p *Policy) itemOfKind(kind string) (PolicyItem, bool) {
	if p == nil {
		return PolicyItem{}, false
	}
	for _, it := range p.Items {
		if it.Kind == kind {
			return it, true
		}
	}
	return PolicyItem{}, false
}

// RiskSignal is a reason to ask more of a ticket before a reset.
type RiskSignal string

// Risk signals. Their values are stored with tickets and named in policy files.
const (
	RiskStaff           RiskSignal = "staff_account"
	RiskEmailChanged    RiskSignal = "email_changed"
	RiskPhoneChanged    RiskSignal = "phone_changed"
	RiskTelegramChanged RiskSignal = "telegram_changed"
	RiskRepeatTickets   RiskSignal = "repeat_tickets"
	RiskUnmatched       RiskSignal = "unmatched_contact"
	RiskUnlinked        RiskSignal = "unlinked_contact"
)

func riskSignals() []RiskSignal {
	return []RiskSignal{RiskStaff, RiskEmailChanged, RiskPhoneChanged, RiskTelegramChanged, RiskRepeatTickets, RiskUnmatched, RiskUnlinked}
}

// RiskInput is what EvaluateRisk looks at, gathered when a ticket opens.
type RiskInput struct {
	Now     time.Time
	Matched bool // the claimed account exists
	Staff   bool
	// Times of the last change of the e-mail address, phone number and Telegram link; zero
	// means never.
	EmailChangedAt, PhoneChangedAt, TelegramChangedAt time.Time
	RecentTickets                                     int    // recovery tickets of the account opened in the last 30 days, this one included
	Channel                                           string // ChannelConsole, ChannelTelegram or ChannelAPI
	ChatLinkedBefore                                  bool   // telegram: the chat was linked to the account before the ticket opened
}

// EvaluateRisk returns the risk signals of in, sorted by value and without repeats.
//
// A change counts while it is less than RiskWindow (30 days) old: 29 days 23:59 ago is a signal,
// 30 days exactly is not. A change time after Now (a clock skew) counts as recent: doubt raises
// the bar. Repeat tickets means more than one ticket in the window, this one included. A request
// from Telegram whose chat was not linked before the ticket opened is unlinked_contact; so is a
// request from a channel this code does not know, since nothing shows that contact was linked.
// Console and API requests are not: the agent or the host platform vouches for the contact.
func EvaluateRisk(in RiskInput) []RiskSignal {
	var out []RiskSignal
	recent := func(t time.Time) bool { return !t.IsZero() && in.Now.Sub(t) < RiskWindow }
	if in.Staff {
		out = append(out, RiskStaff)
	}
	if !in.Matched {
		out = append(out, RiskUnmatched)
	}
	if recent(in.EmailChangedAt) {
		out = append(out, RiskEmailChanged)
	}
	if recent(in.PhoneChangedAt) {
		out = append(out, RiskPhoneChanged)
	}
	if recent(in.TelegramChangedAt) {
		out = append(out, RiskTelegramChanged)
	}
	if in.RecentTickets > 1 {
		out = append(out, RiskRepeatTickets)
	}
	switch in.Channel {
	case ChannelConsole, ChannelAPI:
	default:
		if !in.ChatLinkedBefore {
			out = append(out, RiskUnlinked)
		}
	}
	slices.Sort(out)
	return out
}

// Explain says what the signal means, in plain words for the console.
func (s RiskSignal) Explain() string {
	switch s {
	case RiskStaff:
		return "The account belongs to a member of staff."
	case RiskEmailChanged:
		return "The e-mail address was changed in the last 30 days."
	case RiskPhoneChanged:
		return "The phone number was changed in the last 30 days."
	case RiskTelegramChanged:
		return "A Telegram chat was linked to the account in the last 30 days."
	case RiskRepeatTickets:
		return "Another recovery request for this account was opened in the last 30 days."
	case RiskUnmatched:
		return "The requester named an account we do not know."
	case RiskUnlinked:
		return "The request came from a chat that was not linked to the account before the ticket was opened."
	}
	return fmt.Sprintf("Unknown risk signal %q.", string(s))
}

// HighRisk reports a staff account or two or more distinct signals.
func HighRisk(signals []RiskSignal) bool {
	seen := map[RiskSignal]bool{}
	for _, s := range signals {
		if s == RiskStaff {
			return true
		}
		seen[s] = true
	}
	return len(seen) >= 2
}

// ItemResult is the result of one checklist item that counts (the latest one recorded).
type ItemResult struct {
	Key    string
	Passed bool
}

// conditions returns the conditions that hold for signals.
func conditions(signals []RiskSignal) map[string]bool {
	c := map[string]bool{WhenAlways: true}
	for _, s := range signals {
		c[string(s)] = true
	}
	if len(signals) > 0 {
		c[WhenAnySignal] = true
	}
	if HighRisk(signals) {
		c[WhenHighRisk] = true
	}
	return c
}

// needs is what the applying rules require: items with the reasons that require them, and the
// "at least N of" groups.
type needs struct {
	items  map[string][]string
	groups []groupNeed
}

type groupNeed struct {
	PolicyGroup
	reasons []string
}

func (p *Policy) needs(cond map[string]bool) needs {
	n := needs{items: map[string][]string{}}
	for _, r := range p.Rules {
		if !cond[r.When] {
			continue
		}
		for _, k := range r.Require {
			if !slices.Contains(n.items[k], r.Reason) {
				n.items[k] = append(n.items[k], r.Reason)
			}
		}
	group:
		for _, g := range r.AtLeast {
			for i, have := range n.groups {
				if have.N == g.N && sameSet(have.Of, g.Of) {
					if !slices.Contains(have.reasons, r.Reason) {
						n.groups[i].reasons = append(n.groups[i].reasons, r.Reason)
					}
					continue group
				}
			}
			n.groups = append(n.groups, groupNeed{g, []string{r.Reason}})
		}
	}
	return n
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// standIns returns, for each item, the items that may stand in for it under cond.
func (p *Policy) standIns(cond map[string]bool) map[string][]string {
	out := map[string][]string{}
sub:
	for _, s := range p.Substitutes {
		for _, c := range s.Unless {
			if cond[c] {
				continue sub
			}
		}
		out[s.For] = append(out[s.For], s.Item)
	}
	return out
}

// Required returns the keys of the items every applying rule names individually, in policy
// order, for the console's checklist marks. Items that only belong to an "at least N of" group
// are not listed (Missing words those groups), and an item listed here may still be met by a
// substitute.
func (p *Policy) Required(signals []RiskSignal) []string {
	if p == nil {
		return nil
	}
	n := p.needs(conditions(signals))
	var out []string
	for _, it := range p.Items {
		if _, ok := n.items[it.Key]; ok {
			out = append(out, it.Key)
		}
	}
	return out
}

// Missing lists, in policy order and in words an agent understands, what the checklist still
// needs for these risk signals: required items not passed (naming any item that may stand in),
// "at least N of …" groups not met, each with the reasons of the rules that ask for it. Empty
// means the policy is satisfied. When results name an item more than once, the last one counts.
// Possession items are never required: a passed possession item means self-service, which the
// ticket code handles before asking this.
func (p *Policy) Missing(signals []RiskSignal, results []ItemResult) []string {
	if p == nil || len(p.Items) == 0 {
		return []string{"No recovery policy is loaded: the checklist cannot be satisfied."}
	}
	cond := conditions(signals)
	passed := map[string]bool{}
	for _, r := range results {
		passed[r.Key] = r.Passed
	}
	standIns := p.standIns(cond)
	satisfied := func(key string) bool {
		if passed[key] {
			return true
		}
		for _, s := range standIns[key] {
			if passed[s] {
				return true
			}
		}
		return false
	}
	index := map[string]int{}
	for i, it := range p.Items {
		index[it.Key] = i
	}
	label := func(key string) string { return p.Items[index[key]].Label }
	type line struct {
		pos  int
		text string
	}
	var lines []line
	n := p.needs(cond)
	for _, it := range p.Items {
		reasons, ok := n.items[it.Key]
		if !ok || satisfied(it.Key) {
			continue
		}
		text := it.Label
		if alts := standIns[it.Key]; len(alts) > 0 {
			names := make([]string, len(alts))
			for i, a := range alts {
				names[i] = label(a)
			}
			text += ", or instead: " + strings.Join(names, " or ")
		}
		lines = append(lines, line{2 * index[it.Key], text + " (" + strings.Join(reasons, "; ") + ")"})
	}
	for _, g := range n.groups {
		have, individually := 0, 0
		first := len(p.Items)
		for _, k := range g.Of {
			if satisfied(k) {
				have++
			}
			if _, ok := n.items[k]; ok {
				individually++
			}
			first = min(first, index[k])
		}
		// A group is worded only when the items listed one by one cannot cover it.
		if have >= g.N || individually >= g.N {
			continue
		}
		names := make([]string, len(g.Of))
		for i, k := range g.Of {
			names[i] = label(k)
		}
		head := fmt.Sprintf("At least %d of: ", g.N)
		if g.N == len(g.Of) {
			head = "All of: "
		}
		text := head + strings.Join(names, ", ")
		if have > 0 {
			text += fmt.Sprintf(" — %d passed so far", have)
		}
		lines = append(lines, line{2*first + 1, text + " (" + strings.Join(g.reasons, "; ") + ")"})
	}
	slices.SortStableFunc(lines, func(a, b line) int { return a.pos - b.pos })
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.text
	}
	return out
}

// jsonObject is one JSON object of a policy file, its members checked against the names its
// part of the file allows.
type jsonObject struct {
	where   string
	members map[string]json.RawMessage
}

// jsonMembers reads raw as a JSON object whose member names are each in allowed (exactly:
// encoding/json would also accept "Version" for "version") and appear once.
func jsonMembers(raw json.RawMessage, where string, allowed ...string) (jsonObject, error) {
	o := jsonObject{where: where, members: map[string]json.RawMessage{}}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return o, fmt.Errorf("%s: want an object, got %s", where, jsonType(raw))
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return o, fmt.Errorf("%s: %w", where, err)
		}
		name, _ := tok.(string)
		if !slices.Contains(allowed, name) {
			return o, fmt.Errorf("%s: unknown field %q (allowed: %s)", where, name, strings.Join(allowed, ", "))
		}
		if _, dup := o.members[name]; dup {
			return o, fmt.Errorf("%s: field %q appears twice", where, name)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return o, fmt.Errorf("%s.%s: %w", where, name, err)
		}
		o.members[name] = v
	}
	return o, nil
}

// decode reads member name into dst, which must be of JSON type want; an absent member leaves
// dst alone.
func (o jsonObject) decode(name, want string, dst any) error {
	raw, ok := o.members[name]
	if !ok {
		return nil
	}
	if got := jsonType(raw); got != want {
		return fmt.Errorf("%s: %s: want %s, got %s", o.where, name, want, got)
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("%s: %s: %w", o.where, name, err)
	}
	return nil
}

func (o jsonObject) text(name string) (string, error) {
	var s string
	err := o.decode(name, "a string", &s)
	return s, err
}

func (o jsonObject) int(name string) (int, error) {
	var n json.Number
	if err := o.decode(name, "a number", &n); err != nil || n == "" {
		return 0, err
	}
	i, err := n.Int64()
	if err != nil || i < 0 || i > 1000 {
		return 0, fmt.Errorf("%s: %s: want a whole number from 0 to 1000, got %s", o.where, name, n)
	}
	return int(i), nil
}

func (o jsonObject) array(name string) ([]json.RawMessage, error) {
	var a []json.RawMessage
	err := o.decode(name, "an array", &a)
	return a, err
}

func (o jsonObject) texts(name string) ([]string, error) {
	a, err := o.array(name)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(a))
	for i, raw := range a {
		if got := jsonType(raw); got != "a string" {
			return nil, fmt.Errorf("%s: %s[%d]: want a string, got %s", o.where, name, i, got)
		}
		if err := json.Unmarshal(raw, &out[i]); err != nil {
			return nil, fmt.Errorf("%s: %s[%d]: %w", o.where, name, i, err)
		}
	}
	return out, nil
}

// jsonType names the JSON type of a valid value.
func jsonType(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// jsonSyntax turns a JSON syntax error into one that names the line and column.
func jsonSyntax(data []byte, err error) error {
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return err
	}
	// Offset counts the bytes read, the offending one included.
	pos := int(max(0, min(se.Offset-1, int64(len(data)))))
	line := 1 + bytes.Count(data[:pos], []byte("\n"))
	col := pos - bytes.LastIndexByte(data[:pos], '\n')
	return fmt.Errorf("line %d, column %d: %v", line, col, se)
}
