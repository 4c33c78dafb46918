package recovery

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Actor types of audit events.
const (
	ActorAgent        = "agent"
	ActorEndUser      = "end_user"
	ActorTelegramUser = "telegram_user"
	ActorAPIKey       = "api_key"
	ActorSystem       = "system"
)

// ZeroHash is the prev_hash of the first event: 32 zero bytes in hex.
const ZeroHash = "0000000000000000000000000000000000000000000000000000000000000000"

const auditDomain = "recoverydesk/audit/v1\n"

// TimeLayout is how event times are written: RFC 3339, UTC, always nine fractional digits.
const TimeLayout = "2006-01-02T15:04:05.000000000Z"

// Event is one link of the audit chain. Details is a JSON object (before/after); it never holds
// a secret, code or token.
type Event struct {
	Seq        int64
	Time       time.Time
	ActorType  string
	ActorID    string
	Action     string
	TargetType string
	TargetID   string
	TicketID   string // "" is written as null
	Reason     string
	Details    json.RawMessage // canonical JSON object; nil is written as {}
	RequestID  string
	PrevHash   string
	Hash       string
}

// appendFields writes the event as canonical JSON: members in key order, with hash (which sorts
// between details and prev_hash) only when hash is not "". details must already be canonical.
func (e Event) appendFields(b []byte, details []byte, hash string) []byte {
	b = append(b, `{"action":`...)
	b = appendString(b, e.Action)
	b = append(b, `,"actor_id":`...)
	b = appendString(b, e.ActorID)
	b = append(b, `,"actor_type":`...)
	b = appendString(b, e.ActorType)
	b = append(b, `,"details":`...)
	b = append(b, details...)
	if hash != "" {
		b = append(b, `,"hash":`...)
		b = appendString(b, hash)
	}
	b = append(b, `,"prev_hash":`...)
	b = appendString(b, e.PrevHash)
	b = append(b, `,"reason":`...)
	b = appendString(b, e.Reason)
	b = append(b, `,"request_id":`...)
	b = appendString(b, e.RequestID)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, e.Seq, 10)
	b = append(b, `,"target_id":`...)
	b = appendString(b, e.TargetID)
	b = append(b, `,"target_type":`...)
	b = appendString(b, e.TargetType)
	b = append(b, `,"ticket_id":`...)
	if e.TicketID == "" {
		b = append(b, "null"...)
	} else {
		b = appendString(b, e.TicketID)
	}
	b = append(b, `,"time":"`...)
	b = e.Time.UTC().AppendFormat(b, TimeLayout)
	return append(b, `"}`...)
}

// canonicalDetails is Details re-encoded canonically ({} when empty).
func (e Event) canonicalDetails() ([]byte, error) {
	if len(e.Details) == 0 {
		return []byte("{}"), nil
	}
	d, err := canonicalizeObject(e.Details)
	if err != nil {
		return nil, fmt.Errorf("audit details of seq %d: %w", e.Seq, err)
	}
	return d, nil
}

// Canonical is the event without hash, as hashed: JSON with sorted keys and no insignificant space.
func (e Event) Canonical() ([]byte, error) {
	d, err := e.canonicalDetails()
	if err != nil {
		return nil, err
	}
	return e.appendFields(nil, d, ""), nil
}

// ComputeHash returns hex(SHA-256("recoverydesk/audit/v1\n" ‖ canonical ‖ prev_hash bytes)).
func (e Event) ComputeHash() (string, error) {
	c, err := e.Canonical()
	if err != nil {
		return "", err
	}
	return e.hashCanonical(c)
}

func (e Event) hashCanonical(c []byte) (string, error) {
	prev, err := hex.DecodeString(e.PrevHash)
	if err != nil || len(prev) != sha256.Size {
		return "", fmt.Errorf("audit seq %d: prev_hash is not 32 bytes of hex", e.Seq)
	}
	h := sha256.New()
	io.WriteString(h, auditDomain)
	h.Write(c)
	h.Write(prev)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// MarshalJSONL is the export line of the event (with hash), without the trailing newline.
func (e Event) MarshalJSONL() ([]byte, error) {
	d, err := e.canonicalDetails()
	if err != nil {
		return nil, err
	}
	return e.appendFields(nil, d, e.Hash), nil
}

// ParseEventJSONL reads one exported line back into an event.
func ParseEventJSONL(line []byte) (Event, error) {
	var raw struct {
		Seq        *int64          `json:"seq"`
		Time       string          `json:"time"`
		ActorType  string          `json:"actor_type"`
		ActorID    string          `json:"actor_id"`
		Action     string          `json:"action"`
		TargetType string          `json:"target_type"`
		TargetID   string          `json:"target_id"`
		TicketID   *string         `json:"ticket_id"`
		Reason     string          `json:"reason"`
		Details    json.RawMessage `json:"details"`
		RequestID  string          `json:"request_id"`
		PrevHash   string          `json:"prev_hash"`
		Hash       string          `json:"hash"`
	}
	if err := json.Unmarshal(line, &raw); err != nil {
		return Event{}, fmt.Errorf("audit line: %w", err)
	}
	if raw.Seq == nil {
		return Event{}, errors.New("audit line: no seq")
	}
	t, err := time.Parse(time.RFC3339Nano, raw.Time)
	if err != nil {
		return Event{}, fmt.Errorf("audit line %d: time: %w", *raw.Seq, err)
	}
	e := Event{Seq: *raw.Seq, Time: t, ActorType: raw.ActorType, ActorID: raw.ActorID, Action: raw.Action,
		TargetType: raw.TargetType, TargetID: raw.TargetID, Reason: raw.Reason, Details: raw.Details,
		RequestID: raw.RequestID, PrevHash: raw.PrevHash, Hash: raw.Hash}
	if raw.TicketID != nil {
		e.TicketID = *raw.TicketID
	}
	return e, nil
}

// Actor is who asks for an operation, carried into its audit events.
type Actor struct {
	Type      string // one of the Actor* constants
	ID        string
	RequestID string
	IP        string // end user's address for the per-IP limiter; "" when unknown
}

// auditLog appends events to the chain inside one transaction.
type auditLog struct {
	tx    Tx
	now   time.Time
	actor Actor
	seq   int64
	hash  string
	ready bool
}

func newAuditLog(tx Tx, now time.Time, actor Actor) *auditLog {
	return &auditLog{tx: tx, now: now, actor: actor}
}

// add appends one event. details must marshal to a JSON object free of secrets.
func (l *auditLog) add(action, targetType, targetID string, details map[string]any) error {
	return l.append(entry{Action: action, TargetType: targetType, TargetID: targetID, Details: details})
}

// entry is an event as the domain describes it; the log adds actor, time and the chain.
type entry struct {
	Action     string
	TargetType string
	TargetID   string
	TicketID   string // "" when the event belongs to no ticket
	Reason     string // the acting person's stated reason, when the action asks for one
	Details    map[string]any
}

// append appends one event. Details must marshal to a JSON object free of secrets.
func (l *auditLog) append(en entry) error {
	action, targetType, targetID, details := en.Action, en.TargetType, en.TargetID, en.Details
	if !l.ready {
		seq, hash, err := l.tx.AuditHead()
		if err != nil {
			return fmt.Errorf("audit head: %w", err)
		}
		l.seq, l.hash, l.ready = seq, hash, true
	}
	if details == nil {
		details = map[string]any{}
	}
	d, err := canonicalJSON(details)
	if err != nil {
		return fmt.Errorf("audit details: %w", err)
	}
	e := Event{
		Seq: l.seq + 1, Time: l.now.UTC(), ActorType: l.actor.Type, ActorID: l.actor.ID,
		Action: action, TargetType: targetType, TargetID: targetID, TicketID: en.TicketID, Reason: en.Reason,
		Details: d, RequestID: l.actor.RequestID, PrevHash: l.hash,
	}
	// d is canonical already: hash it as is rather than re-encoding it.
	if e.Hash, err = e.hashCanonical(e.appendFields(make([]byte, 0, 512), d, "")); err != nil {
		return err
	}
	if err := l.tx.AppendAudit(e); err != nil {
		return fmt.Errorf("audit append: %w", err)
	}
	l.seq, l.hash = e.Seq, e.Hash
	return nil
}

// ChainReport is the outcome of walking the chain.
type ChainReport struct {
	Count   int64  // events read
	Head    string // hash of the last good event (ZeroHash when empty)
	BadSeq  int64  // first bad sequence number, 0 when the chain is intact
	Problem string // what is wrong at BadSeq
	HeadSeq int64  // seq of the last good event
}

// OK reports whether the chain was intact.
func (r ChainReport) OK() bool { return r.BadSeq == 0 && r.Problem == "" }

// ChainVerifier checks events one at a time, in order.
type ChainVerifier struct {
	r ChainReport
}

// NewChainVerifier starts at the genesis of the chain.
func NewChainVerifier() *ChainVerifier {
	return &ChainVerifier{r: ChainReport{Head: ZeroHash}}
}

// Add checks the next event and reports false (with the report's BadSeq set) at the first bad one.
func (v *ChainVerifier) Add(e Event) bool {
	if !v.r.OK() {
		return false
	}
	want := v.r.HeadSeq + 1
	fail := func(seq int64, format string, args ...any) bool {
		v.r.BadSeq, v.r.Problem = seq, fmt.Sprintf(format, args...)
		return false
	}
	if e.Seq != want {
		return fail(want, "expected seq %d, found seq %d (missing, inserted or reordered rows)", want, e.Seq)
	}
	if subtle.ConstantTimeCompare([]byte(e.PrevHash), []byte(v.r.Head)) != 1 {
		return fail(e.Seq, "prev_hash does not match the hash of seq %d", e.Seq-1)
	}
	h, err := e.ComputeHash()
	if err != nil {
		return fail(e.Seq, "%v", err)
	}
	if subtle.ConstantTimeCompare([]byte(h), []byte(e.Hash)) != 1 {
		return fail(e.Seq, "hash does not match the event's content (edited row)")
	}
	v.r.Count++
	v.r.HeadSeq, v.r.Head = e.Seq, e.Hash
	return true
}

// Report returns what was found so far.
func (v *ChainVerifier) Report() ChainReport { return v.r }

// Checkpoint is a signed statement of the chain's length and head, kept off the machine.
type Checkpoint struct {
	Count int64
	Head  string
}

// checkpointOrigin is the first line of a checkpoint's text.
const checkpointOrigin = "recoverydesk audit"

// MarshalText writes the checkpoint's text, the body that gets signed (design.md):
//
//	recoverydesk audit
//	<event count>
//	<head hash, lowercase hex>
func (c Checkpoint) MarshalText() ([]byte, error) {
	return fmt.Appendf(nil, "%s\n%d\n%s\n", checkpointOrigin, c.Count, c.Head), nil
}

// UnmarshalText reads a checkpoint's text, refusing anything but the exact form MarshalText
// writes (a head that is not 64 lowercase hex digits, or not the zero hash exactly when the
// count is 0).
func (c *Checkpoint) UnmarshalText(text []byte) error {
	lines := strings.Split(strings.TrimSuffix(string(text), "\n"), "\n")
	if len(lines) != 3 || lines[0] != checkpointOrigin {
		return fmt.Errorf("signed note is not a %q checkpoint", checkpointOrigin)
	}
	count, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || count < 0 || strconv.FormatInt(count, 10) != lines[1] {
		return fmt.Errorf("checkpoint count %q is not a number", lines[1])
	}
	head := lines[2]
	if _, err := hex.DecodeString(head); err != nil || len(head) != 64 || strings.ToLower(head) != head || (count == 0) != (head == ZeroHash) {
		return fmt.Errorf("checkpoint head %q is not a hash matching its count", head)
	}
	*c = Checkpoint{Count: count, Head: head}
	return nil
}

// Check compares the chain as verified against a checkpoint taken earlier: the chain must be at
// least as long and its event at Count must carry the checkpoint's hash.
func (c Checkpoint) Check(r ChainReport, hashAt func(seq int64) (string, error)) error {
	if r.Count < c.Count {
		return fmt.Errorf("chain has %d events but the checkpoint recorded %d: the tail was truncated", r.Count, c.Count)
	}
	if c.Count == 0 {
		return nil
	}
	h, err := hashAt(c.Count)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(h), []byte(c.Head)) != 1 {
		return fmt.Errorf("seq %d does not carry the checkpoint's head hash: the chain was rewritten", c.Count)
	}
	return nil
}

// VerifyAudit walks the whole chain in the store. progress, when not nil, is called every
// 10 000 events.
func (s *Service) VerifyAudit(ctx context.Context, progress func(n int64)) (ChainReport, error) {
	v := NewChainVerifier()
	err := s.eachEvent(ctx, func(e Event) bool {
		ok := v.Add(e)
		if progress != nil && v.r.Count%10000 == 0 && ok {
			progress(v.r.Count)
		}
		return ok
	})
	return v.Report(), err
}

// AuditHash returns the stored hash of event seq.
func (s *Service) AuditHash(ctx context.Context, seq int64) (string, error) {
	var h string
	err := s.store.View(ctx, func(tx ReadTx) error {
		evs, err := tx.AuditEvents(seq-1, 1)
		if err != nil {
			return err
		}
		if len(evs) == 0 || evs[0].Seq != seq {
			return fmt.Errorf("audit event %d: %w", seq, ErrNotFound)
		}
		h = evs[0].Hash
		return nil
	})
	return h, err
}

// ExportAudit writes every event as JSONL, verifying the chain as it goes; it refuses to export
// a broken chain past the first bad event.
func (s *Service) ExportAudit(ctx context.Context, w io.Writer) (ChainReport, error) {
	v := NewChainVerifier()
	var werr error
	err := s.eachEvent(ctx, func(e Event) bool {
		if !v.Add(e) {
			return false
		}
		line, err := e.MarshalJSONL()
		if err == nil {
			line = append(line, '\n')
			_, err = w.Write(line)
		}
		werr = err
		return err == nil
	})
	if err == nil {
		err = werr
	}
	return v.Report(), err
}

func (s *Service) eachEvent(ctx context.Context, fn func(Event) bool) error {
	return s.eachEventAfter(ctx, 0, fn)
}

// eachEventAfter calls fn for every event with seq > after, in order, until fn returns false.
func (s *Service) eachEventAfter(ctx context.Context, after int64, fn func(Event) bool) error {
	const page = 2000
	for {
		var evs []Event
		err := s.store.View(ctx, func(tx ReadTx) error {
			var err error
			evs, err = tx.AuditEvents(after, page)
			return err
		})
		if err != nil {
			return err
		}
		for _, e := range evs {
			if !fn(e) {
				return nil
			}
			after = e.Seq
		}
		if len(evs) < page {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}
