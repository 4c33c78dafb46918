package notify_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/notify"
)

const secret = "whsec-0123456789abcdef"

var t0 = time.Date(2026, 11, 27, 12, 0, 10, 0, time.UTC)

func fixed(t time.Time) func() time.Time { return func() time.Time { return t } }

func TestSignAndVerify(t *testing.T) {
	body := []byte(`{"id":"1","event":"hold.set"}`)
	h := notify.Sign(secret, t0, body)
	// The documented construction, computed independently.
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(t0.Unix(), 10) + "." + string(body)))
	if want := "t=" + strconv.FormatInt(t0.Unix(), 10) + ",v1=" + hex.EncodeToString(m.Sum(nil)); h != want {
		t.Fatalf("Sign = %q, want %q", h, want)
	}
	if err := notify.VerifySignature(secret, h, body, t0.Add(4*time.Minute), 5*time.Minute); err != nil {
		t.Fatalf("valid signature refused: %v", err)
	}
	other := notify.Sign("another-secret-0123456789", t0, body)
	v1 := h[strings.Index(h, "v1="):]
	for name, c := range map[string]struct {
		secret, header string
		body           []byte
		now            time.Time
	}{
		"wrong secret":    {"another-secret-0123456789", h, body, t0},
		"body changed":    {secret, h, []byte(`{"id":"1","event":"hold.set" }`), t0},
		"too old":         {secret, h, body, t0.Add(5*time.Minute + time.Second)},
		"from the future": {secret, h, body, t0.Add(-5*time.Minute - time.Second)},
		"timestamp moved": {secret, "t=" + strconv.FormatInt(t0.Unix()+1, 10) + "," + v1, body, t0},
		"no timestamp":    {secret, v1, body, t0},
		"bad timestamp":   {secret, "t=+" + strconv.FormatInt(t0.Unix(), 10) + "," + v1, body, t0},
		"no v1":           {secret, "t=" + strconv.FormatInt(t0.Unix(), 10), body, t0},
		"v1 not hex":      {secret, "t=" + strconv.FormatInt(t0.Unix(), 10) + ",v1=zz", body, t0},
		"other key's v1":  {secret, other, body, t0},
		"empty":           {secret, "", body, t0},
	} {
		if err := notify.VerifySignature(c.secret, c.header, c.body, c.now, 5*time.Minute); !errors.Is(err, notify.ErrBadSignature) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// During a rotation the sender may list two signatures: one matching is enough.
	rotated := other + "," + v1
	if err := notify.VerifySignature(secret, rotated, body, t0, time.Minute); err != nil {
		t.Errorf("rotation header refused: %v", err)
	}
}

func TestNewWebhookRefusals(t *testing.T) {
	for name, c := range map[string]struct {
		url, secret string
		now         func() time.Time
	}{
		"ftp":          {"ftp://h/x", secret, fixed(t0)},
		"no host":      {"https:///x", secret, fixed(t0)},
		"short secret": {"https://h/x", "short-secret", fixed(t0)},
		"no clock":     {"https://h/x", secret, nil},
	} {
		_, err := notify.NewWebhook(c.url, c.secret, notify.WebhookOptions{Now: c.now})
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), c.secret) {
			t.Errorf("%s: error quotes the secret: %v", name, err)
		}
	}
}

// TestWebhookAnswers: how each answer of the host is classified, and what every request
// carries.
func TestWebhookAnswers(t *testing.T) {
	type want struct {
		ok, permanent bool
		retryAfter    time.Duration
	}
	cases := []struct {
		code   int
		header string
		want   want
	}{
		{200, "", want{ok: true}},
		{204, "", want{ok: true}},
		{500, "", want{}},
		{502, "", want{}},
		{408, "", want{}},
		{429, "", want{}},
		{429, "7", want{retryAfter: 7 * time.Second}},
		{503, t0.Add(90 * time.Second).Format(http.TimeFormat), want{retryAfter: 90 * time.Second}},
		{429, "soon", want{}},
		{400, "", want{permanent: true}},
		{401, "", want{permanent: true}},
		{404, "", want{permanent: true}},
		{410, "", want{permanent: true}},
		{302, "", want{permanent: true}},
	}
	for _, c := range cases {
		t.Run(strconv.Itoa(c.code)+"-"+c.header, func(t *testing.T) {
			var got *http.Request
			var gotBody string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = r
				b := make([]byte, 1024)
				n, _ := r.Body.Read(b)
				gotBody = string(b[:n])
				if c.header != "" {
					w.Header().Set("Retry-After", c.header)
				}
				if c.code == 302 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(c.code)
			}))
			defer srv.Close()
			w, err := notify.NewWebhook(srv.URL+"/hook", secret, notify.WebhookOptions{Now: fixed(t0)})
			if err != nil {
				t.Fatal(err)
			}
			body := `{"id":"x","event":"factor.enrolled"}`
			err = w.Send(context.Background(), recovery.Notice{ID: 42, Channel: recovery.NoticeWebhook, Kind: "factor.enrolled", Body: body})
			var de *recovery.DeliveryError
			switch {
			case c.want.ok && err != nil:
				t.Fatalf("error %v", err)
			case !c.want.ok && !errors.As(err, &de):
				t.Fatalf("error %v is not a DeliveryError", err)
			case !c.want.ok && (de.Permanent != c.want.permanent || de.RetryAfter != c.want.retryAfter):
				t.Fatalf("%+v, want permanent %v retry after %v", de, c.want.permanent, c.want.retryAfter)
			case !c.want.ok && !strings.Contains(err.Error(), strconv.Itoa(c.code)):
				t.Errorf("error %q does not name the status", err)
			}
			if got == nil || got.Method != http.MethodPost || got.URL.Path != "/hook" || gotBody != body ||
				got.Header.Get(notify.HeaderDelivery) != "42" || got.Header.Get(notify.HeaderEvent) != "factor.enrolled" ||
				got.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("request: %+v %q", got, gotBody)
			}
			if err := notify.VerifySignature(secret, got.Header.Get(notify.HeaderSignature), []byte(gotBody), t0, time.Second); err != nil {
				t.Errorf("signature: %v", err)
			}
		})
	}
}

// TestWebhookUnreachable: no answer is retried, and the error keeps the URL's token out.
func TestWebhookUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	const token = "tok-in-path-5b2e9c"
	w, err := notify.NewWebhook("http://"+addr+"/hooks/"+token+"?key=q-"+token, secret, notify.WebhookOptions{Now: fixed(t0)})
	if err != nil {
		t.Fatal(err)
	}
	err = w.Send(context.Background(), recovery.Notice{ID: 1, Channel: recovery.NoticeWebhook, Kind: "hold.set", Body: "{}"})
	var de *recovery.DeliveryError
	if !errors.As(err, &de) || de.Permanent || de.RetryAfter != 0 {
		t.Fatalf("unreachable host: %#v", err)
	}
	if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), secret) {
		t.Errorf("error shows the token: %v", err)
	}
	if w.Host() != addr {
		t.Errorf("Host() = %q", w.Host())
	}
	if err := w.Send(context.Background(), recovery.Notice{ID: 1, Channel: recovery.NoticeEmail, To: "a@example.com", Body: "x"}); !errors.As(err, &de) || !de.Permanent {
		t.Errorf("an e-mail notice on the webhook: %v", err)
	}
}
