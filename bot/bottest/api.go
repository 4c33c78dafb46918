package bottest

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

// apiError is a Bot API error answer: HTTP status and error_code are both code.
type apiError struct {
	code       int
	desc       string
	retryAfter int
}

func badRequest(desc string) *apiError {
	return &apiError{code: http.StatusBadRequest, desc: "Bad Request: " + desc}
}

// handler serves one Bot API method; p holds the request parameters, whatever their encoding.
type handler func(s *Server, r *http.Request, p url.Values) (any, *apiError)

// handlerFor returns the implementation of a Bot API method, nil for an unknown one; key is the
// method name in lower case because Telegram matches method names case-insensitively.
func handlerFor(key string) handler {
	switch key {
	case "getme":
		return (*Server).getMe
	case "getupdates":
		return (*Server).getUpdates
	case "sendmessage":
		return (*Server).sendMessage
	case "editmessagetext":
		return (*Server).editMessageText
	case "answercallbackquery":
		return (*Server).answerCallbackQuery
	case "setwebhook":
		return (*Server).setWebhook
	case "deletewebhook":
		return (*Server).deleteWebhook
	case "getwebhookinfo":
		return (*Server).getWebhookInfo
	case "getfile":
		return (*Server).getFile
	}
	return nil
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	down := s.down
	s.mu.Unlock()

	if rest, ok := strings.CutPrefix(r.URL.Path, "/file/bot"); ok {
		if down {
			s.hangUp(w)
			return
		}
		token, path, _ := strings.Cut(rest, "/")
		s.download(w, token, path)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/bot")
	token, method, found := strings.Cut(rest, "/")
	if !ok || !found {
		writeAPI(w, nil, &apiError{code: http.StatusNotFound, desc: "Not Found"})
		return
	}
	key := strings.ToLower(method)
	p, perr := params(r)

	s.mu.Lock()
	chatID, _ := strconv.ParseInt(p.Get("chat_id"), 10, 64)
	if key == "answercallbackquery" {
		chatID = s.callbacks[p.Get("callback_query_id")]
	}
	s.calls = append(s.calls, call{method: key, chatID: chatID, at: s.now()})
	var injected *fault
	if !down && s.tokenOK(token) && handlerFor(key) != nil && len(s.faults[key]) > 0 {
		f := s.faults[key][0]
		s.faults[key] = s.faults[key][1:]
		injected = &f
	}
	s.mu.Unlock()

	h := handlerFor(key)
	var (
		result any
		aerr   *apiError
	)
	switch {
	case down:
		s.hangUp(w)
		return
	case !s.tokenOK(token):
		aerr = &apiError{code: http.StatusUnauthorized, desc: "Unauthorized"}
	case h == nil:
		aerr = &apiError{code: http.StatusNotFound, desc: "Not Found"}
	case injected != nil:
		aerr = injectedError(*injected)
	case perr != nil:
		aerr = badRequest("can't parse request parameters")
	default:
		result, aerr = h(s, r, p)
	}
	if aerr != nil {
		// The token and the parameters (message texts may hold links) stay out of the log.
		s.t.Logf("bottest: %s → %d %s", method, aerr.code, aerr.desc)
	}
	writeAPI(w, result, aerr)
}

// hangUp closes the connection without an answer, as an unreachable API looks to a client.
func (s *Server) hangUp(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "Bad Gateway", http.StatusBadGateway)
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		http.Error(w, "Bad Gateway", http.StatusBadGateway)
		return
	}
	conn.Close()
}

func injectedError(f fault) *apiError {
	e := &apiError{code: f.code, retryAfter: f.retryAfter}
	switch f.code {
	case http.StatusTooManyRequests:
		e.desc = fmt.Sprintf("Too Many Requests: retry after %d", f.retryAfter)
	case http.StatusForbidden:
		e.desc = "Forbidden: bot was blocked by the user"
	default:
		e.desc = http.StatusText(f.code)
	}
	return e
}

// params reads the parameters the way the Bot API accepts them: query string, form-encoded or
// multipart body, or a JSON object (non-string JSON values are kept as their JSON text).
func params(r *http.Request) (url.Values, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		var m map[string]json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			return url.Values{}, err
		}
		p := r.URL.Query()
		for k, v := range m {
			var str string
			if json.Unmarshal(v, &str) == nil {
				p.Set(k, str)
			} else {
				p.Set(k, string(v))
			}
		}
		return p, nil
	case "multipart/form-data":
		if err := r.ParseMultipartForm(10 << 20); err != nil {
			return url.Values{}, err
		}
		return r.Form, nil
	default:
		if err := r.ParseForm(); err != nil {
			return url.Values{}, err
		}
		return r.Form, nil
	}
}

func writeAPI(w http.ResponseWriter, result any, aerr *apiError) {
	w.Header().Set("Content-Type", "application/json")
	if aerr != nil {
		body := map[string]any{"ok": false, "error_code": aerr.code, "description": aerr.desc}
		if aerr.retryAfter > 0 {
			body["parameters"] = map[string]any{"retry_after": aerr.retryAfter}
			w.Header().Set("Retry-After", strconv.Itoa(aerr.retryAfter))
		}
		w.WriteHeader(aerr.code)
		_ = json.NewEncoder(w).Encode(body)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "result": result})
}

func (s *Server) download(w http.ResponseWriter, token, path string) {
	if !s.tokenOK(token) {
		writeAPI(w, nil, &apiError{code: http.StatusUnauthorized, desc: "Unauthorized"})
		return
	}
	s.mu.Lock()
	f, ok := s.files[s.paths[path]]
	s.mu.Unlock()
	if !ok || path == "" {
		writeAPI(w, nil, &apiError{code: http.StatusNotFound, desc: "Not Found"})
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(f.content)
}

func botUser() map[string]any {
	return map[string]any{
		"id": botID, "is_bot": true, "first_name": "RecoveryDesk Test", "username": botUserName,
		"can_join_groups": false, "can_read_all_group_messages": false, "supports_inline_queries": false,
	}
}

func (s *Server) getMe(*http.Request, url.Values) (any, *apiError) { return botUser(), nil }

func intParam(p url.Values, name string) (int, *apiError) {
	v := p.Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, badRequest("invalid " + name)
	}
	return n, nil
}

// getUpdates confirms the updates below offset, then answers at most limit queued updates,
// waiting up to timeout seconds for one to arrive. A newer getUpdates ends a waiting one with 409,
// as Telegram does when two bot instances poll.
func (s *Server) getUpdates(r *http.Request, p url.Values) (any, *apiError) {
	offset, aerr := intParam(p, "offset")
	if aerr != nil {
		return nil, aerr
	}
	limit, aerr := intParam(p, "limit")
	if aerr != nil {
		return nil, aerr
	}
	timeout, aerr := intParam(p, "timeout")
	if aerr != nil {
		return nil, aerr
	}
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	// The wait is real time: it is how long the HTTP request stays open.
	deadline := time.NewTimer(time.Duration(max(timeout, 0)) * time.Second)
	defer deadline.Stop()

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.webhook.url != "" {
		return nil, &apiError{code: http.StatusConflict, desc: "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"}
	}
	s.pollGen++
	gen := s.pollGen
	s.notify()
	s.confirm(offset)
	for {
		if gen != s.pollGen {
			return nil, &apiError{code: http.StatusConflict, desc: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"}
		}
		n := min(limit, len(s.queue))
		if n > 0 || timeout <= 0 || s.webhook.url != "" {
			out := make([]json.RawMessage, n)
			for i := range n {
				s.queue[i].delivered = true
				out[i] = s.queue[i].raw
			}
			return out, nil
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			timeout = 0 // answer what is there (nothing, normally)
		case <-r.Context().Done():
			timeout = 0
		case <-s.done:
			timeout = 0
		}
		s.mu.Lock()
	}
}

// confirm applies getUpdates' offset: a positive offset drops the delivered updates below it; a
// negative one keeps only the last -offset updates. Callers hold s.mu.
func (s *Server) confirm(offset int) {
	switch {
	case offset > 0:
		kept := s.queue[:0]
		for _, q := range s.queue {
			if q.id >= offset || !q.delivered {
				kept = append(kept, q)
			}
		}
		s.queue = kept
	case offset < 0 && -offset < len(s.queue):
		s.queue = append([]queued(nil), s.queue[len(s.queue)+offset:]...)
	}
}

// markup is the part of reply_markup the fake understands.
type markup struct {
	InlineKeyboard [][]Button `json:"inline_keyboard"`
}

// checkText validates a message text as Telegram does: not empty, a known parse_mode, parseable
// HTML, at most 4096 UTF-16 code units after entity parsing.
func checkText(text, parseMode string) *apiError {
	if text == "" {
		return badRequest("message text is empty")
	}
	visible := len(utf16.Encode([]rune(text)))
	switch parseMode {
	case "", "Markdown", "MarkdownV2":
	case "HTML":
		n, err := checkHTML(text)
		if err != "" {
			return badRequest("can't parse entities: " + err)
		}
		visible = n
	default:
		return badRequest("unsupported parse_mode")
	}
	if visible == 0 {
		return badRequest("message text is empty")
	}
	if visible > 4096 {
		return badRequest("message is too long")
	}
	return nil
}

func parseMarkup(raw string) ([][]Button, *apiError) {
	if raw == "" {
		return nil, nil
	}
	var m markup
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return nil, badRequest("can't parse reply keyboard markup JSON object")
	}
	for _, row := range m.InlineKeyboard {
		for _, b := range row {
			if b.CallbackData == "" && b.URL == "" {
				return nil, badRequest("text buttons are unallowed in the inline keyboard")
			}
			if len(b.CallbackData) > 64 {
				return nil, badRequest("BUTTON_DATA_INVALID")
			}
		}
	}
	return m.InlineKeyboard, nil
}

// chatLocked resolves chat_id to a chat that has written to the bot; callers hold s.mu.
func (s *Server) chatLocked(p url.Values) (int64, chat, *apiError) {
	id, err := strconv.ParseInt(p.Get("chat_id"), 10, 64)
	c, ok := s.chats[id]
	if err != nil || !ok {
		return 0, chat{}, badRequest("chat not found")
	}
	return id, c, nil
}

func (s *Server) sendMessage(_ *http.Request, p url.Values) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	chatID, c, aerr := s.chatLocked(p)
	if aerr != nil {
		return nil, aerr
	}
	ct, aerr := parseContent(p)
	if aerr != nil {
		return nil, aerr
	}
	id := s.nextMsgID
	s.nextMsgID++
	return s.storeBotMessageLocked("sendMessage", chatID, id, c, ct), nil
}

// content is the text and markup of a sendMessage or editMessageText call, checked as Telegram
// checks them.
type content struct {
	text, mode, rawMarkup string
	buttons               [][]Button
}

func parseContent(p url.Values) (content, *apiError) {
	ct := content{text: p.Get("text"), mode: p.Get("parse_mode"), rawMarkup: p.Get("reply_markup")}
	if aerr := checkText(ct.text, ct.mode); aerr != nil {
		return content{}, aerr
	}
	var aerr *apiError
	ct.buttons, aerr = parseMarkup(ct.rawMarkup)
	return ct, aerr
}

// storeBotMessageLocked keeps the bot's message id of chat as ct says and records the call;
// callers hold s.mu.
func (s *Server) storeBotMessageLocked(method string, chatID int64, id int, c chat, ct content) any {
	msg := s.messageJSON(id, chatID, c, botUser(), ct.text, ct.rawMarkup)
	s.messages[msgKey{chatID, id}] = storedMsg{fromBot: true, text: ct.text, markup: ct.rawMarkup, raw: msg}
	s.sent = append(s.sent, Message{
		Method: method, ChatID: chatID, MessageID: id, Text: ct.text, ParseMode: ct.mode,
		ReplyMarkup: ct.rawMarkup, Buttons: ct.buttons, At: s.now(),
	})
	s.notify()
	return msg
}

func (s *Server) editMessageText(_ *http.Request, p url.Values) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.Get("inline_message_id") != "" {
		return nil, badRequest("inline messages are not supported by bottest")
	}
	chatID, c, aerr := s.chatLocked(p)
	if aerr != nil {
		return nil, aerr
	}
	id, _ := strconv.Atoi(p.Get("message_id"))
	old, ok := s.messages[msgKey{chatID, id}]
	switch {
	case !ok:
		return nil, badRequest("message to edit not found")
	case !old.fromBot:
		return nil, badRequest("message can't be edited")
	}
	ct, aerr := parseContent(p)
	if aerr != nil {
		return nil, aerr
	}
	if ct.text == old.text && ct.rawMarkup == old.markup {
		return nil, badRequest("message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message")
	}
	return s.storeBotMessageLocked("editMessageText", chatID, id, c, ct), nil
}

func (s *Server) answerCallbackQuery(_ *http.Request, p url.Values) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := p.Get("callback_query_id")
	chatID, ok := s.callbacks[id]
	if !ok {
		return nil, badRequest("query is too old and response timeout expired or query ID is invalid")
	}
	text := p.Get("text")
	if len(utf16.Encode([]rune(text))) > 200 {
		return nil, badRequest("MESSAGE_TOO_LONG")
	}
	s.sent = append(s.sent, Message{
		Method: "answerCallbackQuery", ChatID: chatID, Text: text, CallbackQueryID: id,
		ShowAlert: p.Get("show_alert") == "true", At: s.now(),
	})
	s.notify()
	return true, nil
}

// validSecretToken is Telegram's rule for secret_token: 1–256 characters A-Z, a-z, 0-9, _ and -.
func validSecretToken(secret string) bool {
	if len(secret) < 1 || len(secret) > 256 {
		return false
	}
	for _, c := range secret {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (s *Server) setWebhook(_ *http.Request, p url.Values) (any, *apiError) {
	hook, secret := p.Get("url"), p.Get("secret_token")
	if hook != "" {
		// Telegram demands https; the fake accepts http so that tests can use httptest servers.
		u, err := url.Parse(hook)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, badRequest("bad webhook: invalid webhook URL specified")
		}
	}
	if secret != "" && !validSecretToken(secret) {
		return nil, badRequest("secret token contains unallowed characters")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.webhook.url, s.webhook.secret = hook, secret
	if hook == "" {
		s.webhook.secret = ""
	}
	if p.Get("drop_pending_updates") == "true" {
		s.queue = nil
	}
	s.notify()
	return true, nil
}

func (s *Server) deleteWebhook(_ *http.Request, p url.Values) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.webhook.url, s.webhook.secret = "", ""
	if p.Get("drop_pending_updates") == "true" {
		s.queue = nil
	}
	s.notify()
	return true, nil
}

func (s *Server) getWebhookInfo(*http.Request, url.Values) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return map[string]any{
		"url": s.webhook.url, "has_custom_certificate": false, "pending_update_count": len(s.queue),
	}, nil
}

func (s *Server) getFile(_ *http.Request, p url.Values) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.files[p.Get("file_id")]
	if !ok {
		return nil, badRequest("invalid file_id")
	}
	return fileJSON(f), nil
}

func fileJSON(f storedFile) map[string]any {
	return map[string]any{
		"file_id": f.id, "file_unique_id": "u" + f.id, "file_size": len(f.content), "file_path": f.path,
	}
}
