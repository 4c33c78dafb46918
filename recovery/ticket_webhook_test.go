package recovery_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/notify"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

// TestHostWebhookHearsResetOnce runs a real execute with the host webhook configured: the host's
// server fails the first two tries, checks every signature, and accepts reset.executed once.
func TestHostWebhookHearsResetOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, dsn string) {
		d := newDesk(t, s, dsn)
		svc, err := recovery.New(s, recovery.Options{Now: d.clock.Now, Keys: testKeyring(t, "k1", 1), HostWebhook: true})
		if err != nil {
			t.Fatal(err)
		}
		d.svc = svc
		const secret = "host-webhook-secret-0123456789"
		var mu sync.Mutex
		accepted := map[string]int{}
		tries := 0
		host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if err := notify.VerifySignature(secret, r.Header.Get(notify.HeaderSignature), body, d.clock.Now(), 5*time.Minute); err != nil {
				t.Errorf("signature: %v", err)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			event := r.Header.Get(notify.HeaderEvent)
			if event == "reset.executed" {
				if tries++; tries <= 2 {
					w.WriteHeader(http.StatusBadGateway)
					return
				}
				var p struct {
					Event, Account string
					Data           map[string]any
				}
				if err := json.Unmarshal(body, &p); err != nil || p.Account != customer || p.Data["hold_until"] == nil {
					t.Errorf("payload %s: %v", body, err)
				}
			}
			accepted[event]++
		}))
		defer host.Close()
		wh, err := notify.NewWebhook(host.URL, secret, notify.WebhookOptions{Now: d.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		id := d.openConsole()
		d.toReady(id)
		d.deliver(recovery.NoticeEmail)
		if err := d.svc.Execute(bg, d.sup2, id, d.ticket(id).Version, d.stepUp()); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 6; i++ {
			if _, err := d.svc.DispatchDue(bg, recovery.NoticeWebhook, 10, wh.Send); err != nil {
				t.Fatal(err)
			}
			d.clock.Add(recovery.NoticeBackoffCap)
		}
		mu.Lock()
		defer mu.Unlock()
		if accepted["reset.executed"] != 1 || accepted["hold.set"] != 1 || tries != 3 {
			t.Fatalf("accepted %v after %d tries of reset.executed", accepted, tries)
		}
	})
}

// TestFactorEventsAndRecoveryCodeNotice: suspension and enrollment reach the host webhook; a
// used recovery code is mailed to the owner.
func TestFactorEventsAndRecoveryCodeNotice(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, dsn string) {
		c := newClock()
		svc, err := recovery.New(s, recovery.Options{Now: c.Now, Keys: testKeyring(t, "k1", 1), HostWebhook: true})
		if err != nil {
			t.Fatal(err)
		}
		secret, codes := enrolled(t, svc, c, "ev-1")
		for i := 0; i < 20; i++ {
			c.Add(2 * time.Hour) // past every backoff
			svc.Verify(bg, apiActor, "ev-1", wrongCode(t, secret, c.Now()))
		}
		if st, _ := svc.TwoFactorStatus(bg, "ev-1"); st.State != recovery.StateSuspended {
			t.Fatalf("not suspended: %s", st.State)
		}
		if _, err := svc.UseRecoveryCode(bg, apiActor, "ev-1", codes[0]); err != nil {
			t.Fatal(err)
		}
		var events []string
		if _, err := svc.DispatchDue(bg, recovery.NoticeWebhook, 10, func(_ context.Context, n recovery.Notice) error {
			events = append(events, n.Kind)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if strings.Join(events, ",") != "factor.enrolled,factor.suspended" {
			t.Fatalf("host events %v", events)
		}
		var mails []recovery.Notice
		if _, err := svc.DispatchDue(bg, recovery.NoticeEmail, 10, func(_ context.Context, n recovery.Notice) error {
			mails = append(mails, n)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(mails) != 1 || mails[0].Kind != "recovery_code_used" || mails[0].To != "ev-1@example.com" ||
			!strings.Contains(mails[0].Body, "9 recovery codes are left") || strings.Contains(mails[0].Body, codes[0]) {
			t.Fatalf("recovery-code notice: %+v", mails)
		}
	})
}
