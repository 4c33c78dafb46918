package bot

import (
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// maxUpdateBytes bounds a webhook body; real updates are a few KiB.
const maxUpdateBytes = 1 << 20

// WebhookHandler serves POST /telegram/webhook. The X-Telegram-Bot-Api-Secret-Token header is
// compared in constant time: missing → 401, wrong → 403, and nothing is processed. A valid
// update is processed once (a redelivery is answered 200 and ignored); a failure answers 500 so
// that Telegram delivers it again.
func (b *Bot) WebhookHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		got := r.Header.Get("X-Telegram-Bot-Api-Secret-Token")
		switch {
		case b.secret == "" || got == "":
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		case subtle.ConstantTimeCompare([]byte(got), []byte(b.secret)) != 1:
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxUpdateBytes+1))
		if err != nil || len(body) > maxUpdateBytes {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		var u tgbotapi.Update
		if err := json.Unmarshal(body, &u); err != nil || u.UpdateID <= 0 {
			// A malformed update will not get better with redelivery.
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if _, err := b.Handle(r.Context(), u); err != nil {
			b.log.Error("telegram webhook update not processed", "update", u.UpdateID, "err", err)
			http.Error(w, "try again", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}
