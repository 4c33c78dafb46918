package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// Headers of a host webhook delivery.
const (
	HeaderSignature = "X-RecoveryDesk-Signature"
	HeaderEvent     = "X-RecoveryDesk-Event"
	HeaderDelivery  = "X-RecoveryDesk-Delivery"
)

// MinWebhookSecret is the shortest webhook secret accepted.
const MinWebhookSecret = 16

// webhookTimeout bounds one delivery, from connecting to the end of the response headers.
const webhookTimeout = 30 * time.Second

// ErrBadSignature is wrapped by every VerifySignature failure.
var ErrBadSignature = errors.New("webhook signature does not verify")

// Webhook POSTs host events (webhook notices, whose Body is the JSON payload) to the host
// platform, signed with HMAC-SHA256.
type Webhook struct {
	url    string
	secret []byte
	client *http.Client
	now    func() time.Time
	hide   []string // parts of the URL kept out of error texts (its path and query may hold a token)
}

// WebhookOptions configure NewWebhook.
type WebhookOptions struct {
	// Now is the clock of the signature's timestamp (and of Retry-After dates). Required.
	Now func() time.Time
	// Client sends the requests; nil means a client with a 30 s timeout that follows no
	// redirects (a redirected POST would lose its body or go somewhere unsigned-for).
	Client *http.Client
}

// NewWebhook configures a sender for RECOVERYDESK_HOST_WEBHOOK_URL signed with
// RECOVERYDESK_HOST_WEBHOOK_SECRET (at least MinWebhookSecret characters). Errors never quote
// the URL or the secret.
func NewWebhook(rawURL, secret string, opts WebhookOptions) (*Webhook, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("notify: the host webhook URL is not an http:// or https:// URL")
	}
	if len(secret) < MinWebhookSecret {
		return nil, fmt.Errorf("notify: the host webhook secret must be at least %d characters", MinWebhookSecret)
	}
	if opts.Now == nil {
		return nil, errors.New("notify: the webhook sender needs a clock")
	}
	w := &Webhook{url: rawURL, secret: []byte(secret), client: opts.Client, now: opts.Now, hide: []string{rawURL}}
	if u.RawQuery != "" {
		w.hide = append(w.hide, u.RawQuery)
	}
	if len(u.Path) > 1 {
		w.hide = append(w.hide, u.Path)
	}
	if w.client == nil {
		w.client = &http.Client{
			Timeout:       webhookTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return w, nil
}

// Host is the webhook's host[:port], for logs (the path and query may hold a token).
func (w *Webhook) Host() string {
	u, _ := url.Parse(w.url)
	return u.Host
}

// signedString is what the signature covers: the decimal Unix time, a dot, the body.
func signedString(unix int64, body []byte) []byte {
	b := strconv.AppendInt(nil, unix, 10)
	b = append(b, '.')
	return append(b, body...)
}

func mac(secret []byte, unix int64, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write(signedString(unix, body))
	return h.Sum(nil)
}

// Sign returns the X-RecoveryDesk-Signature value for body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<unix seconds>.<body>")>".
func Sign(secret string, t time.Time, body []byte) string {
	unix := t.Unix()
	return "t=" + strconv.FormatInt(unix, 10) + ",v1=" + hex.EncodeToString(mac([]byte(secret), unix, body))
}

// VerifySignature checks a delivery as the host platform should before trusting it.
//
// header is the X-RecoveryDesk-Signature value, "t=<unix seconds>,v1=<hex>" (more v1= entries
// may follow during a secret rotation; one matching is enough). The signed string is the
// timestamp exactly as written in t=, a full stop, and the raw request body, byte for byte:
//
//	"<t>.<body>"
//
// and v1 is the lowercase hex HMAC-SHA256 of it under the shared secret. The timestamp must be
// within tolerance of now either way, which bounds replays of a captured delivery; to refuse
// replays inside that window too, remember X-RecoveryDesk-Delivery ids (the same id is a
// retry of an event already received). Every failure wraps ErrBadSignature; the comparison is
// constant-time.
func VerifySignature(secret string, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		switch {
		case !ok:
			return fmt.Errorf("%w: malformed header", ErrBadSignature)
		case k == "t":
			if ts != "" {
				return fmt.Errorf("%w: two timestamps", ErrBadSignature)
			}
			ts = v
		case k == "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				return fmt.Errorf("%w: malformed v1", ErrBadSignature)
			}
			sigs = append(sigs, sig)
		}
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || strconv.FormatInt(unix, 10) != ts {
		return fmt.Errorf("%w: no valid timestamp", ErrBadSignature)
	}
	if len(sigs) == 0 {
		return fmt.Errorf("%w: no v1 signature", ErrBadSignature)
	}
	if d := now.Sub(time.Unix(unix, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp outside the tolerance", ErrBadSignature)
	}
	want := mac([]byte(secret), unix, body)
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no v1 signature matches", ErrBadSignature)
}

// Send POSTs one webhook notice. 2xx is delivered. 408, 429 and 5xx, and no answer at all
// (connection refused, timeout), are retried; 429 and 503 honour Retry-After (seconds or an
// HTTP date). Any other status (3xx, 4xx) is permanent: the host refuses this delivery.
func (w *Webhook) Send(ctx context.Context, n recovery.Notice) error {
	if n.Channel != recovery.NoticeWebhook {
		return &recovery.DeliveryError{Err: fmt.Errorf("notify: a %s notice is not a webhook event", n.Channel), Permanent: true}
	}
	body := []byte(n.Body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return &recovery.DeliveryError{Err: errors.New("notify: the host webhook request cannot be built"), Permanent: true}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "RecoveryDesk-Webhook/1")
	req.Header.Set(HeaderSignature, Sign(string(w.secret), w.now(), body))
	req.Header.Set(HeaderEvent, n.Kind)
	req.Header.Set(HeaderDelivery, strconv.FormatInt(n.ID, 10))
	resp, err := w.client.Do(req)
	if err != nil {
		return &recovery.DeliveryError{Err: w.scrub(err)}
	}
	// Drain a little so the connection can be reused; the body is never kept or quoted.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	de := &recovery.DeliveryError{Err: fmt.Errorf("host webhook answered %d %s", code, http.StatusText(code))}
	switch {
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		de.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), w.now())
	case code == http.StatusRequestTimeout || code >= 500:
	default:
		de.Permanent = true
	}
	return de
}

// retryAfter reads a Retry-After value: delay seconds or an HTTP date; 0 when absent or bad.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return time.Second
		}
		return time.Duration(min(s, int64(24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), time.Second)
	}
	return 0
}

// scrub is a transport error's text without the URL (a *url.Error quotes it whole).
func (w *Webhook) scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := "POST to the host webhook: " + err.Error()
	for _, h := range w.hide {
		msg = strings.ReplaceAll(msg, h, "(webhook URL)")
	}
	return errors.New(msg)
}
