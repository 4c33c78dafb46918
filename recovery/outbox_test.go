package recovery_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/notify"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

const webhookSecret = "whsec-0123456789abcdef"

func outboxService(t testing.TB, st recovery.Store, c *clock, hostWebhook bool) *recovery.Service {
	t.Helper()
	s, err := recovery.New(st, recovery.Options{Now: c.Now, Keys: testKeyring(t, "k1", 1), BaseURL: "https://desk.example",
		HostWebhook: hostWebhook})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func queueNotice(t testing.TB, s *recovery.Service, n recovery.Notice, secrets ...string) {
	t.Helper()
	if err := recovery.QueueNotice(context.Background(), s, n, secrets...); err != nil {
		t.Fatalf("queue notice: %v", err)
	}
}

func listNotices(t testing.TB, s *recovery.Service, f recovery.NoticeFilter) []recovery.Notice {
	t.Helper()
	ns, err := s.Notices(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

// noticeByKind returns the one notice of kind.
func noticeByKind(t testing.TB, s *recovery.Service, kind string) recovery.Notice {
	t.Helper()
	var found []recovery.Notice
	for _, n := range listNotices(t, s, recovery.NoticeFilter{Limit: 500}) {
		if n.Kind == kind {
			found = append(found, n)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d notices of kind %s, want 1", len(found), kind)
	}
	return found[0]
}

func dispatch(t testing.TB, s *recovery.Service, channel string, send recovery.Sender) int {
	t.Helper()
	n, err := s.DispatchDue(context.Background(), channel, 0, send)
	if err != nil {
		t.Fatalf("dispatch %s: %v", channel, err)
	}
	return n
}

// auditExport is the whole audit chain as exported, verified.
func auditExport(t testing.TB, s *recovery.Service) string {
	t.Helper()
	var b bytes.Buffer
	r, err := s.ExportAudit(context.Background(), &b)
	if err != nil || !r.OK() {
		t.Fatalf("export audit: %v %+v", err, r)
	}
	return b.String()
}

type auditLine struct {
	Action   string         `json:"action"`
	TargetID string         `json:"target_id"`
	TicketID *string        `json:"ticket_id"`
	ActorID  string         `json:"actor_id"`
	Details  map[string]any `json:"details"`
}

// noticeEvents returns the audit events of one notice, in order.
func noticeEvents(t testing.TB, s *recovery.Service, id int64) []auditLine {
	t.Helper()
	var out []auditLine
	for line := range strings.SplitSeq(strings.TrimSpace(auditExport(t, s)), "\n") {
		var l auditLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(l.Action, "notice.") && l.TargetID == strconv.FormatInt(id, 10) {
			out = append(out, l)
		}
	}
	return out
}

// actions lists the events' actions with their attempt and retry details, for comparison.
func actions(evs []auditLine) string {
	var parts []string
	for _, e := range evs {
		p := e.Action
		if a, ok := e.Details["attempt"]; ok {
			p += fmt.Sprintf("#%v", a)
		}
		if r, ok := e.Details["retry"]; ok {
			p += fmt.Sprintf(" retry=%v", r)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}

// A real SMTP server for the tests (emersion/go-smtp).

type received struct {
	from string
	to   []string
	data []byte
}

type mailbox struct {
	mu   sync.Mutex
	msgs []received
}

func (b *mailbox) all() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.msgs...)
}

type smtpSession struct {
	box  *mailbox
	from string
	to   []string
}

func (s *smtpSession) Reset()        { s.from, s.to = "", nil }
func (s *smtpSession) Logout() error { return nil }
func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}
func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}
func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.box.mu.Lock()
	s.box.msgs = append(s.box.msgs, received{from: s.from, to: s.to, data: b})
	s.box.mu.Unlock()
	return nil
}

// startSMTP serves SMTP on addr ("127.0.0.1:0" for a free port) into box until stop.
func startSMTP(t testing.TB, addr string, box *mailbox) (stop func(), bound string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &smtpSession{box: box}, nil }))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			srv.Close()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop, ln.Addr().String()
}

// parseMail reads a received message: its headers and its decoded plain-text body.
func parseMail(t testing.TB, data []byte) (mail.Header, string) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var body io.Reader = m.Body
	if strings.EqualFold(m.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(m.Body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	return m.Header, strings.ReplaceAll(string(b), "\r\n", "\n")
}

// TestOutboxSMTP: a notice reaches a real SMTP server; while the server is down the notice
// stays queued with its attempts counted and backs off, and it is delivered once the server is
// back.
func TestOutboxSMTP(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		c := newClock()
		s := outboxService(t, st, c, false)
		box := &mailbox{}
		stop, addr := startSMTP(t, "127.0.0.1:0", box)
		sender, err := notify.NewSMTP("smtp://"+addr, "RecoveryDesk <desk@example.com>")
		if err != nil {
			t.Fatal(err)
		}
		link := "https://desk.example/reenroll/tok-0123456789abcdef0123456789abcdef"
		body := "Hello Alice,\n\nopen this link within 24 hours to set up your authenticator again:\n" + link + "\n"
		queueNotice(t, s, recovery.Notice{Channel: recovery.NoticeEmail, To: "alice@example.com", Kind: "reenroll_link",
			AccountID: "alice", TicketID: "T-1", Subject: "Set up two-factor authentication again", Body: body}, link)
		if n := dispatch(t, s, recovery.NoticeEmail, sender.Send); n != 1 {
			t.Fatalf("sent %d, want 1", n)
		}
		msgs := box.all()
		if len(msgs) != 1 {
			t.Fatalf("server received %d messages", len(msgs))
		}
		if msgs[0].from != "desk@example.com" || len(msgs[0].to) != 1 || msgs[0].to[0] != "alice@example.com" {
			t.Errorf("envelope: from %q to %q", msgs[0].from, msgs[0].to)
		}
		h, got := parseMail(t, msgs[0].data)
		if h.Get("To") != "<alice@example.com>" || h.Get("Subject") != "Set up two-factor authentication again" ||
			!strings.Contains(h.Get("From"), "desk@example.com") {
			t.Errorf("headers: To %q Subject %q From %q", h.Get("To"), h.Get("Subject"), h.Get("From"))
		}
		if got != body {
			t.Errorf("body:\n%q\nwant\n%q", got, body)
		}
		first := noticeByKind(t, s, "reenroll_link")
		if first.State != recovery.NoticeSent || first.Attempts != 1 || !first.SentAt.Equal(c.Now()) || first.Body != "" {
			t.Errorf("after delivery: %+v", first)
		}

		// The server goes down.
		stop()
		queueNotice(t, s, recovery.Notice{Channel: recovery.NoticeEmail, To: "bob@example.com", Kind: "status",
			AccountID: "bob", Subject: "Your request", Body: "We are on it."})
		wantNext := c.Now()
		for attempt := 1; attempt <= 3; attempt++ {
			if n := dispatch(t, s, recovery.NoticeEmail, sender.Send); n != 0 {
				t.Fatalf("sent %d while the server is down", n)
			}
			n := noticeByKind(t, s, "status")
			wantNext = c.Now().Add(recovery.NoticeBackoff(attempt))
			if n.State != recovery.NoticeQueued || n.Attempts != attempt || !n.NextAttemptAt.Equal(wantNext) || n.LastError == "" {
				t.Fatalf("attempt %d: %+v (next attempt want %v)", attempt, n, wantNext)
			}
			// Not due yet: a dispatch before the backoff ends tries nothing.
			c.Add(recovery.NoticeBackoff(attempt) - time.Second)
			dispatch(t, s, recovery.NoticeEmail, sender.Send)
			if n := noticeByKind(t, s, "status"); n.Attempts != attempt {
				t.Fatalf("tried before its backoff ended: %d attempts", n.Attempts)
			}
			c.Add(time.Second)
		}
		// Back up, on the same address.
		startSMTP(t, addr, box)
		if n := dispatch(t, s, recovery.NoticeEmail, sender.Send); n != 1 {
			t.Fatalf("sent %d after the server came back", n)
		}
		if msgs := box.all(); len(msgs) != 2 || msgs[1].to[0] != "bob@example.com" {
			t.Fatalf("server received %d messages", len(msgs))
		}
		n := noticeByKind(t, s, "status")
		if n.State != recovery.NoticeSent || n.Attempts != 4 {
			t.Errorf("after the server came back: %+v", n)
		}
		if got, want := actions(noticeEvents(t, s, n.ID)),
			"notice.queued, notice.failed#1 retry=true, notice.failed#2 retry=true, notice.failed#3 retry=true, notice.sent#4"; got != want {
			t.Errorf("audit:\n got %s\nwant %s", got, want)
		}
		evs := noticeEvents(t, s, first.ID)
		if len(evs) != 2 || evs[1].TicketID == nil || *evs[1].TicketID != "T-1" || evs[1].ActorID != "outbox" {
			t.Errorf("the delivery is not audited in the notice's ticket: %+v", evs)
		}
	})
}

// hostServer is an httptest server standing for the host platform: it checks every
// delivery's signature and answers with the statuses given, one per request, then 200.
type hostServer struct {
	*httptest.Server
	mu        sync.Mutex
	answers   []func(w http.ResponseWriter)
	requests  int
	delivered []hostDelivery // requests answered 2xx
	badSig    int
}

type hostDelivery struct {
	id, event string
	body      []byte
}

func newHostServer(t testing.TB, answers ...func(w http.ResponseWriter)) *hostServer {
	h := &hostServer{answers: answers}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.requests++
		if err := notify.VerifySignature(webhookSecret, r.Header.Get(notify.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
			h.badSig++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if len(h.answers) > 0 {
			a := h.answers[0]
			h.answers = h.answers[1:]
			a(w)
			return
		}
		h.delivered = append(h.delivered, hostDelivery{id: r.Header.Get(notify.HeaderDelivery),
			event: r.Header.Get(notify.HeaderEvent), body: body})
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.Close)
	return h
}

func status(code int, header ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
	}
}

func (h *hostServer) counts() (requests, delivered, badSig int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.requests, len(h.delivered), h.badSig
}

func webhookSender(t testing.TB, url string) recovery.Sender {
	t.Helper()
	w, err := notify.NewWebhook(url, webhookSecret, notify.WebhookOptions{Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	return w.Send
}

// TestOutboxWebhookRetries: the host fails the first two tries with 500 and receives the
// event, signed, exactly once.
func TestOutboxWebhookRetries(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		c := newClock()
		s := outboxService(t, st, c, true)
		host := newHostServer(t, status(500), status(500))
		send := webhookSender(t, host.URL+"/hooks/recoverydesk")
		if err := recovery.QueueHostEvent(context.Background(), s, "reset.executed", "alice", map[string]any{"hold_until": "2026-11-29T12:00:10Z"}); err != nil {
			t.Fatal(err)
		}
		for i, wait := range []time.Duration{0, recovery.NoticeBackoff(1), recovery.NoticeBackoff(2)} {
			c.Add(wait)
			sent := dispatch(t, s, recovery.NoticeWebhook, send)
			if want := map[bool]int{true: 1, false: 0}[i == 2]; sent != want {
				t.Fatalf("round %d: sent %d, want %d", i+1, sent, want)
			}
		}
		// Nothing more is due, however long we wait.
		c.Add(24 * time.Hour)
		dispatch(t, s, recovery.NoticeWebhook, send)
		requests, delivered, badSig := host.counts()
		if requests != 3 || delivered != 1 || badSig != 0 {
			t.Fatalf("host saw %d requests, %d delivered, %d bad signatures; want 3, 1, 0", requests, delivered, badSig)
		}
		n := noticeByKind(t, s, "reset.executed")
		d := host.delivered[0]
		if d.id != strconv.FormatInt(n.ID, 10) || d.event != "reset.executed" {
			t.Errorf("delivery headers: id %q event %q (notice %d)", d.id, d.event, n.ID)
		}
		var payload struct {
			ID      string         `json:"id"`
			Event   string         `json:"event"`
			Account string         `json:"account"`
			Time    string         `json:"time"`
			Data    map[string]any `json:"data"`
		}
		if err := json.Unmarshal(d.body, &payload); err != nil {
			t.Fatal(err)
		}
		if len(payload.ID) != 36 || payload.Event != "reset.executed" || payload.Account != "alice" ||
			payload.Time != "2026-11-27T12:00:10Z" || payload.Data["hold_until"] != "2026-11-29T12:00:10Z" {
			t.Errorf("payload: %s", d.body)
		}
		if n.State != recovery.NoticeSent || n.Attempts != 3 || n.Masked != string(d.body) {
			t.Errorf("notice: %+v", n)
		}
		if got, want := actions(noticeEvents(t, s, n.ID)),
			"notice.queued, notice.failed#1 retry=true, notice.failed#2 retry=true, notice.sent#3"; got != want {
			t.Errorf("audit:\n got %s\nwant %s", got, want)
		}
	})
}

// TestOutboxWebhookRetryAfter: a 429 with Retry-After defers the notice by exactly that long
// (not the backoff) without spending an attempt; a 400 gives up at once.
func TestOutboxWebhookRetryAfter(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		c := newClock()
		s := outboxService(t, st, c, true)
		host := newHostServer(t, status(429, "Retry-After", "120"))
		send := webhookSender(t, host.URL)
		if err := recovery.QueueHostEvent(context.Background(), s, "hold.set", "alice", nil); err != nil {
			t.Fatal(err)
		}
		start := c.Now()
		dispatch(t, s, recovery.NoticeWebhook, send)
		n := noticeByKind(t, s, "hold.set")
		if n.State != recovery.NoticeQueued || n.Attempts != 0 || !n.NextAttemptAt.Equal(start.Add(120*time.Second)) ||
			!strings.Contains(n.LastError, "429") {
			t.Fatalf("after 429: %+v", n)
		}
		c.Add(119 * time.Second)
		dispatch(t, s, recovery.NoticeWebhook, send)
		if requests, _, _ := host.counts(); requests != 1 {
			t.Fatalf("retried %d times before Retry-After ended", requests-1)
		}
		c.Add(time.Second)
		if sent := dispatch(t, s, recovery.NoticeWebhook, send); sent != 1 {
			t.Fatalf("sent %d when Retry-After ended", sent)
		}
		if n := noticeByKind(t, s, "hold.set"); n.State != recovery.NoticeSent || n.Attempts != 1 {
			t.Errorf("after the retry: %+v", n)
		}
		evs := noticeEvents(t, s, n.ID)
		if len(evs) != 3 || evs[1].Details["deferred"] != true || evs[1].Details["next_attempt_at"] != "2026-11-27T12:02:10Z" {
			t.Errorf("audit of the deferral: %+v", evs)
		}

		// A 400 is the host refusing this event for good.
		host400 := newHostServer(t, status(400))
		if err := recovery.QueueHostEvent(context.Background(), s, "factor.suspended", "bob", nil); err != nil {
			t.Fatal(err)
		}
		dispatch(t, s, recovery.NoticeWebhook, webhookSender(t, host400.URL))
		c.Add(48 * time.Hour)
		dispatch(t, s, recovery.NoticeWebhook, webhookSender(t, host400.URL))
		failed := noticeByKind(t, s, "factor.suspended")
		if failed.State != recovery.NoticeFailed || failed.Attempts != 1 || !strings.Contains(failed.LastError, "400") {
			t.Errorf("after 400: %+v", failed)
		}
		if requests, delivered, _ := host400.counts(); requests != 1 || delivered != 0 {
			t.Errorf("host saw %d requests after a 400", requests)
		}
		if got, want := actions(noticeEvents(t, s, failed.ID)), "notice.queued, notice.failed#1 retry=false"; got != want {
			t.Errorf("audit:\n got %s\nwant %s", got, want)
		}
	})
}

// TestOutboxHostEventsOff: without a host webhook, host events are not queued.
func TestOutboxHostEventsOff(t *testing.T) {
	st, _ := storetest.SQLite(t)
	s := outboxService(t, st, newClock(), false)
	if err := recovery.QueueHostEvent(context.Background(), s, "hold.set", "alice", nil); err != nil {
		t.Fatal(err)
	}
	if ns := listNotices(t, s, recovery.NoticeFilter{}); len(ns) != 0 {
		t.Fatalf("queued %d notices without a webhook", len(ns))
	}
}

// TestOutboxConcurrentDispatch: two Services on the same database (two replicas), several
// dispatchers each, deliver every notice exactly once.
func TestOutboxConcurrentDispatch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, dsn string) {
		c := newClock()
		other, err := sqlstore.Open(context.Background(), dsn, sqlstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { other.Close() })
		replicas := []*recovery.Service{outboxService(t, st, c, false), outboxService(t, other, c, false)}
		const total = 60
		for i := range total {
			queueNotice(t, replicas[i%2], recovery.Notice{Channel: recovery.NoticeEmail, To: fmt.Sprintf("u%d@example.com", i),
				Kind: "status", Subject: "s", Body: fmt.Sprintf("notice %d", i)})
		}
		var mu sync.Mutex
		got := map[int64]int{}
		var done atomic.Int64
		send := func(ctx context.Context, n recovery.Notice) error {
			if want := fmt.Sprintf("u%d@example.com", mustAtoi(t, strings.TrimPrefix(n.Body, "notice "))); n.To != want {
				t.Errorf("notice %d: body %q went to %q", n.ID, n.Body, n.To)
			}
			mu.Lock()
			got[n.ID]++
			mu.Unlock()
			done.Add(1)
			time.Sleep(time.Millisecond) // let the others claim meanwhile
			return nil
		}
		var wg sync.WaitGroup
		deadline := time.Now().Add(30 * time.Second)
		for _, s := range replicas {
			for range 3 {
				wg.Go(func() {
					for done.Load() < total && time.Now().Before(deadline) {
						if _, err := s.DispatchDue(context.Background(), recovery.NoticeEmail, 4, send); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
		}
		wg.Wait()
		if len(got) != total {
			t.Fatalf("%d notices delivered, want %d", len(got), total)
		}
		for id, k := range got {
			if k != 1 {
				t.Errorf("notice %d delivered %d times", id, k)
			}
		}
		for _, n := range listNotices(t, replicas[0], recovery.NoticeFilter{Limit: 500}) {
			if n.State != recovery.NoticeSent || n.Attempts != 1 {
				t.Errorf("notice %d: %s after %d attempts", n.ID, n.State, n.Attempts)
			}
		}
		if r, err := replicas[1].VerifyAudit(context.Background(), nil); err != nil || !r.OK() || r.Count != 2*total {
			t.Errorf("audit chain: %+v, %v", r, err)
		}
	})
}

func mustAtoi(t testing.TB, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Error(err)
	}
	return n
}

// TestOutboxSecrets: the secret passed to queueNotice appears in no listing, no stored error
// and no audit event (and, on SQLite, nowhere in the database file); only the dispatcher's
// sender sees it.
func TestOutboxSecrets(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, dsn string) {
		c := newClock()
		s := outboxService(t, st, c, false)
		const token = "vetoTOKEN-5f1c2a9e7b3d4c6a8e0f1a2b3c4d5e6f"
		link := "https://desk.example/veto/" + token
		code := "493817"
		body := "Someone asked to reset your two-factor authentication. Not you? " + link + "\nYour code: " + code
		queueNotice(t, s, recovery.Notice{Channel: recovery.NoticeEmail, To: "carol@example.com", Kind: "veto_request",
			AccountID: "carol", TicketID: "T-9", Subject: "Was this you?", Body: body}, link, code)
		queueNotice(t, s, recovery.Notice{Channel: recovery.NoticeTelegram, To: "4242424242", Kind: "veto_request",
			AccountID: "carol", TicketID: "T-9", Body: body}, token, code)

		var seen []string
		fails := 0
		echo := func(ctx context.Context, n recovery.Notice) error {
			seen = append(seen, n.Body)
			if fails < 2 {
				fails++
				// A careless receiver that echoes the whole message and its recipient.
				return fmt.Errorf("refused message to %s: %q", n.To, n.Body)
			}
			return nil
		}
		dispatch(t, s, recovery.NoticeEmail, echo)
		dispatch(t, s, recovery.NoticeTelegram, echo)
		c.Add(time.Hour)
		dispatch(t, s, recovery.NoticeEmail, echo)
		dispatch(t, s, recovery.NoticeTelegram, echo)
		if len(seen) != 4 || seen[0] != body || seen[3] != body {
			t.Fatalf("the sender did not get the plain body: %q", seen)
		}
		ns := listNotices(t, s, recovery.NoticeFilter{TicketID: "T-9"})
		if len(ns) != 2 {
			t.Fatalf("%d notices", len(ns))
		}
		for _, n := range ns {
			if n.Body != "" || n.State != recovery.NoticeSent {
				t.Errorf("notice %d: body %q, state %s", n.ID, n.Body, n.State)
			}
			wantMasked := "Someone asked to reset your two-factor authentication. Not you? " +
				map[string]string{recovery.NoticeEmail: "••••", recovery.NoticeTelegram: "https://desk.example/veto/••••"}[n.Channel] +
				"\nYour code: ••••"
			if n.Masked != wantMasked {
				t.Errorf("%s masked: %q", n.Channel, n.Masked)
			}
			if !strings.HasPrefix(n.LastError, "refused message to (recipient): ") || strings.Contains(n.LastError, "desk.example/veto/vetoTOKEN") {
				t.Errorf("%s last error: %q", n.Channel, n.LastError)
			}
			for _, secret := range []string{token, code} {
				if strings.Contains(fmt.Sprintf("%+v", n), secret) {
					t.Errorf("the %s notice shows %q: %+v", n.Channel, secret, n)
				}
			}
			if strings.Contains(n.LastError, n.To) {
				t.Errorf("the %s notice's error names its recipient: %q", n.Channel, n.LastError)
			}
		}
		audit := auditExport(t, s)
		if !strings.Contains(audit, `"action":"notice.failed"`) {
			t.Fatal("no notice.failed event")
		}
		for _, secret := range []string{token, code, "carol@example.com", "4242424242"} {
			if strings.Contains(audit, secret) {
				t.Errorf("the audit chain holds %q", secret)
			}
		}
		if !sqlstore.IsPostgres(dsn) {
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{dsn, dsn + "-wal"} {
				raw, err := os.ReadFile(f)
				if err != nil && !errors.Is(err, os.ErrNotExist) {
					t.Fatal(err)
				}
				if bytes.Contains(raw, []byte(token)) || bytes.Contains(raw, []byte(link)) {
					t.Errorf("%s holds the token in clear", f)
				}
			}
		}
	})
}

// TestOutboxTelegramOrder: a chat's messages go out in id order; while the chat's first
// message waits for a retry the second is not sent; other chats go on. A Retry-After hands the
// rest of the batch back untried.
func TestOutboxTelegramOrder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		c := newClock()
		s := outboxService(t, st, c, false)
		for _, m := range []struct{ chat, kind string }{{"100", "a1"}, {"100", "a2"}, {"200", "b1"}, {"100", "a3"}, {"300", "c1"}} {
			queueNotice(t, s, recovery.Notice{Channel: recovery.NoticeTelegram, To: m.chat, Kind: m.kind, Body: "message " + m.kind})
		}
		var order []string
		failed := map[string]bool{}
		send := func(ctx context.Context, n recovery.Notice) error {
			switch {
			case n.Kind == "a1" && !failed["a1"]:
				failed["a1"] = true
				return errors.New("telegram: Bad Gateway")
			case n.Kind == "b1" && !failed["b1"]:
				failed["b1"] = true
				return &recovery.DeliveryError{Err: errors.New("telegram: Too Many Requests: retry after 5"), RetryAfter: 5 * time.Second}
			}
			order = append(order, n.Kind)
			return nil
		}
		// Round 1: a1 fails (backoff), b1 is deferred for 5 s and c1, after it in the batch,
		// is handed back untried.
		if sent := dispatch(t, s, recovery.NoticeTelegram, send); sent != 0 {
			t.Fatalf("round 1 sent %d", sent)
		}
		if c1 := noticeByKind(t, s, "c1"); c1.Attempts != 0 || c1.State != recovery.NoticeQueued {
			t.Fatalf("c1 after the deferral: %+v", c1)
		}
		// Round 2, at once: c1 goes; a2 and a3 wait behind a1; b1 is deferred.
		dispatch(t, s, recovery.NoticeTelegram, send)
		c.Add(5 * time.Second)
		dispatch(t, s, recovery.NoticeTelegram, send) // b1
		if got := strings.Join(order, " "); got != "c1 b1" {
			t.Fatalf("before a1's retry: %s", got)
		}
		if a2 := noticeByKind(t, s, "a2"); a2.Attempts != 0 {
			t.Fatalf("a2 was tried while a1 waited: %+v", a2)
		}
		c.Add(recovery.NoticeBackoff(1))
		for range 3 {
			dispatch(t, s, recovery.NoticeTelegram, send)
		}
		if got := strings.Join(order, " "); got != "c1 b1 a1 a2 a3" {
			t.Fatalf("delivery order: %s", got)
		}
	})
}

// TestOutboxGivesUp: failures back off doubling up to the cap, and the last allowed failure
// gives up; a panicking sender is a failure, not a crash.
func TestOutboxGivesUp(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		c := newClock()
		s := outboxService(t, st, c, false)
		queueNotice(t, s, recovery.Notice{Channel: recovery.NoticeEmail, To: "dave@example.com", Kind: "status", Body: "x"})
		tries := 0
		send := func(ctx context.Context, n recovery.Notice) error {
			tries++
			if tries == 2 {
				panic("sender bug")
			}
			return errors.New("connection refused")
		}
		var waits []time.Duration
		for i := 1; i <= recovery.NoticeMaxAttempts; i++ {
			dispatch(t, s, recovery.NoticeEmail, send)
			n := noticeByKind(t, s, "status")
			if n.Attempts != i {
				t.Fatalf("try %d: %d attempts", i, n.Attempts)
			}
			if i == recovery.NoticeMaxAttempts {
				if n.State != recovery.NoticeFailed {
					t.Fatalf("after %d failures: %s", i, n.State)
				}
				break
			}
			if i == 2 && n.LastError != "the sender panicked with a string" {
				t.Errorf("panic recorded as %q", n.LastError)
			}
			waits = append(waits, n.NextAttemptAt.Sub(c.Now()))
			c.Set(n.NextAttemptAt)
		}
		want := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute,
			16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour}
		if fmt.Sprint(waits) != fmt.Sprint(want) {
			t.Errorf("backoff %v, want %v", waits, want)
		}
		c.Add(48 * time.Hour)
		dispatch(t, s, recovery.NoticeEmail, send)
		if tries != recovery.NoticeMaxAttempts {
			t.Errorf("%d tries, want %d", tries, recovery.NoticeMaxAttempts)
		}
		evs := noticeEvents(t, s, noticeByKind(t, s, "status").ID)
		if last := evs[len(evs)-1]; last.Action != "notice.failed" || last.Details["retry"] != false ||
			last.Details["attempt"] != float64(recovery.NoticeMaxAttempts) {
			t.Errorf("last event: %+v", last)
		}
	})
}

// TestOutboxLostLease: a dispatcher whose send outlives the lease loses the notice to another
// replica; only the outcome of the live claim is recorded.
func TestOutboxLostLease(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		c := newClock()
		a, b := outboxService(t, st, c, false), outboxService(t, st, c, false)
		queueNotice(t, a, recovery.Notice{Channel: recovery.NoticeEmail, To: "erin@example.com", Kind: "status", Body: "x"})
		var sends atomic.Int32
		quick := func(ctx context.Context, n recovery.Notice) error { sends.Add(1); return nil }
		slow := func(ctx context.Context, n recovery.Notice) error {
			sends.Add(1)
			c.Add(recovery.NoticeLease) // stuck until the lease ran out…
			if sent := dispatch(t, b, recovery.NoticeEmail, quick); sent != 1 {
				t.Errorf("the other replica sent %d after the lease", sent)
			}
			return nil // …then it succeeds too
		}
		if sent := dispatch(t, a, recovery.NoticeEmail, slow); sent != 0 {
			t.Errorf("the dispatcher that lost its lease counts %d sent", sent)
		}
		n := noticeByKind(t, a, "status")
		if n.State != recovery.NoticeSent || n.Attempts != 2 || sends.Load() != 2 {
			t.Errorf("notice %+v after %d sends", n, sends.Load())
		}
		if got, want := actions(noticeEvents(t, a, n.ID)), "notice.queued, notice.sent#2"; got != want {
			t.Errorf("audit: %s, want %s", got, want)
		}
	})
}

// TestOutboxMovedBody: a notice whose recipient was changed in the database (to redirect a
// secret link) no longer opens: it fails without reaching the sender.
func TestOutboxMovedBody(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, dsn string) {
		c := newClock()
		s := outboxService(t, st, c, false)
		queueNotice(t, s, recovery.Notice{Channel: recovery.NoticeEmail, To: "frank@example.com", Kind: "reenroll_link",
			AccountID: "frank", Body: "https://desk.example/reenroll/tok"}, "tok")
		storetest.Exec(t, dsn, "UPDATE notices SET recipient = 'mallory@example.com'")
		called := false
		dispatch(t, s, recovery.NoticeEmail, func(ctx context.Context, n recovery.Notice) error { called = true; return nil })
		n := noticeByKind(t, s, "reenroll_link")
		if called || n.State != recovery.NoticeFailed || !strings.Contains(n.LastError, "cannot be opened") {
			t.Errorf("moved body: sender called %v, notice %+v", called, n)
		}
	})
}

// TestOutboxQueueRefusals: malformed notices are refused and leave nothing behind.
func TestOutboxQueueRefusals(t *testing.T) {
	st, _ := storetest.SQLite(t)
	s := outboxService(t, st, newClock(), false)
	ok := recovery.Notice{Channel: recovery.NoticeEmail, To: "g@example.com", Kind: "status", Subject: "Hi", Body: "text"}
	for name, mod := range map[string]func(n *recovery.Notice){
		"unknown channel":        func(n *recovery.Notice) { n.Channel = "sms" },
		"named e-mail recipient": func(n *recovery.Notice) { n.To = "G <g@example.com>" },
		"no e-mail recipient":    func(n *recovery.Notice) { n.To = "" },
		"chat id not decimal":    func(n *recovery.Notice) { n.Channel, n.To = recovery.NoticeTelegram, "+42" },
		"webhook recipient":      func(n *recovery.Notice) { n.Channel, n.To = recovery.NoticeWebhook, "x" },
		"kind":                   func(n *recovery.Notice) { n.Kind = "Status!" },
		"subject line break":     func(n *recovery.Notice) { n.Subject = "Hi\r\nBcc: eve@example.com" },
		"empty body":             func(n *recovery.Notice) { n.Body = "" },
		"invalid UTF-8":          func(n *recovery.Notice) { n.Body = "\xff" },
		"secret in subject":      func(n *recovery.Notice) { n.Subject = "code 123456"; n.Body = "code 123456" },
	} {
		n := ok
		mod(&n)
		if err := recovery.QueueNotice(context.Background(), s, n, "123456"); err == nil {
			t.Errorf("%s: queued", name)
		}
	}
	if ns := listNotices(t, s, recovery.NoticeFilter{}); len(ns) != 0 {
		t.Errorf("refused notices left %d rows", len(ns))
	}
	if _, err := s.Notices(context.Background(), recovery.NoticeFilter{State: "lost"}); !errors.Is(err, recovery.ErrInvalidInput) {
		t.Errorf("unknown state filter: %v", err)
	}
	if _, err := s.DispatchDue(context.Background(), "sms", 0, func(context.Context, recovery.Notice) error { return nil }); !errors.Is(err, recovery.ErrInvalidInput) {
		t.Errorf("unknown channel: %v", err)
	}
}

// TestRunDispatcher: the loop delivers what is queued, logs failures without the body, and
// returns when its context ends.
func TestRunDispatcher(t *testing.T) {
	st, _ := storetest.SQLite(t)
	c := newClock()
	s := outboxService(t, st, c, false)
	queueNotice(t, s, recovery.Notice{Channel: recovery.NoticeEmail, To: "h@example.com", Kind: "status", Body: "secret body"})
	queueNotice(t, s, recovery.Notice{Channel: recovery.NoticeEmail, To: "i@example.com", Kind: "agent_reply", Body: "hello"})
	var logBuf syncBuffer
	log := slog.New(slog.NewJSONHandler(&logBuf, nil))
	delivered := make(chan int64, 10)
	send := func(ctx context.Context, n recovery.Notice) error {
		if n.Kind == "status" {
			return &recovery.DeliveryError{Err: fmt.Errorf("rejected %q", n.Body), Permanent: true}
		}
		delivered <- n.ID
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		s.RunDispatcher(ctx, recovery.NoticeEmail, send, 10*time.Millisecond, log)
	}()
	select {
	case <-delivered:
	case <-time.After(10 * time.Second):
		t.Fatal("nothing delivered")
	}
	cancel()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("RunDispatcher did not return")
	}
	out := logBuf.String()
	if !strings.Contains(out, `"msg":"notice not delivered"`) || !strings.Contains(out, `"state":"failed"`) ||
		strings.Contains(out, "secret body") || strings.Contains(out, "h@example.com") {
		t.Errorf("log:\n%s", out)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
