package bottest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // photo sizes: SendPhoto reads width and height like Telegram reports them
	_ "image/png"
	"mime"
	"net/http"
	"path"
	"strings"
	"unicode/utf16"
)

// groupMemberID is the user who writes in group chats (SendGroupText).
const groupMemberID = 4242

func userJSON(id int64, name string) map[string]any {
	return map[string]any{"id": id, "is_bot": false, "first_name": name, "username": name, "language_code": "en"}
}

// chatKnownLocked returns the chat, registering a private chat with a default name the first
// time a user acts in it; callers hold s.mu.
func (s *Server) chatKnownLocked(chatID int64) chat {
	c, ok := s.chats[chatID]
	if !ok {
		c = chat{typ: "private", name: fmt.Sprintf("user%d", chatID)}
		s.chats[chatID] = c
	}
	return c
}

// messageJSON builds a Telegram Message object; callers hold s.mu.
func (s *Server) messageJSON(id int, chatID int64, c chat, from map[string]any, text, rawMarkup string, extra ...any) json.RawMessage {
	ch := map[string]any{"id": chatID, "type": c.typ}
	if c.typ == "private" {
		ch["first_name"], ch["username"] = c.name, c.name
	} else {
		ch["title"] = c.name
	}
	m := map[string]any{"message_id": id, "from": from, "chat": ch, "date": s.now().Unix()}
	if text != "" {
		m["text"] = text
	}
	if rawMarkup != "" {
		var mk markup
		if json.Unmarshal([]byte(rawMarkup), &mk) == nil && len(mk.InlineKeyboard) > 0 {
			m["reply_markup"] = json.RawMessage(rawMarkup)
		}
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i].(string)] = extra[i+1]
	}
	raw, _ := json.Marshal(m)
	return raw
}

// userMessageLocked records a message a user wrote and queues its update; callers hold s.mu.
func (s *Server) userMessageLocked(chatID int64, c chat, from map[string]any, text string, extra ...any) int {
	id := s.nextMsgID
	s.nextMsgID++
	if strings.HasPrefix(text, "/") {
		// Telegram marks a leading command with a bot_command entity; tgbotapi's IsCommand reads it.
		cmd, _, _ := strings.Cut(text, " ")
		extra = append(extra, "entities", []map[string]any{{
			"type": "bot_command", "offset": 0, "length": len(utf16.Encode([]rune(cmd))),
		}})
	}
	msg := s.messageJSON(id, chatID, c, from, text, "", extra...)
	s.messages[msgKey{chatID, id}] = storedMsg{text: text, raw: msg}
	return s.queueLocked("message", msg)
}

// queueLocked creates an update with a new update_id and queues it; callers hold s.mu.
func (s *Server) queueLocked(kind string, body any) int {
	id := s.nextUpdateID
	s.nextUpdateID++
	raw, _ := json.Marshal(map[string]any{"update_id": id, kind: body})
	s.updates[id] = raw
	s.queue = append(s.queue, queued{id: id, raw: raw})
	s.notify()
	return id
}

// SendText queues a private message from user from (first name and username) in chatID, which is
// also the user's id; a leading /command carries its bot_command entity. It returns the update_id.
func (s *Server) SendText(chatID int64, from string, text string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := chat{typ: "private", name: from}
	s.chats[chatID] = c
	return s.userMessageLocked(chatID, c, userJSON(chatID, from), text)
}

// SendGroupText queues a message written in group chatID by another user; bots of RecoveryDesk
// must ignore it (a reply is accepted and shows in Sent).
func (s *Server) SendGroupText(chatID int64, text string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := chat{typ: "group", name: "Test group"}
	s.chats[chatID] = c
	return s.userMessageLocked(chatID, c, userJSON(groupMemberID, "group_member"), text)
}

// PressButton queues a callback_query from the user of private chat chatID with this data. The
// query carries the bot's latest message in the chat with a button of that data (else the bot's
// latest message in the chat, else none); its id is accepted by answerCallbackQuery.
func (s *Server) PressButton(chatID int64, data string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chatKnownLocked(chatID)
	s.nextCallback++
	id := fmt.Sprintf("cbq%d", s.nextCallback)
	s.callbacks[id] = chatID
	q := map[string]any{
		"id": id, "from": userJSON(chatID, c.name), "chat_instance": fmt.Sprintf("ci%d", chatID), "data": data,
	}
	if msg := s.pressedMessageLocked(chatID, data); msg != nil {
		q["message"] = msg
	}
	return s.queueLocked("callback_query", q)
}

func (s *Server) pressedMessageLocked(chatID int64, data string) json.RawMessage {
	latest := 0
	for i := len(s.sent) - 1; i >= 0; i-- {
		m := s.sent[i]
		if m.ChatID != chatID || m.MessageID == 0 {
			continue
		}
		if m.HasButton(data) {
			return s.messages[msgKey{chatID, m.MessageID}].raw
		}
		if latest == 0 {
			latest = m.MessageID
		}
	}
	if latest == 0 {
		return nil
	}
	return s.messages[msgKey{chatID, latest}].raw
}

// addFileLocked stores content for getFile and download; callers hold s.mu.
func (s *Server) addFileLocked(dir, ext string, content []byte) storedFile {
	s.nextFileID++
	f := storedFile{
		id:      fmt.Sprintf("F%06d-%s", s.nextFileID, dir),
		path:    fmt.Sprintf("%s/file_%d%s", dir, s.nextFileID, ext),
		content: append([]byte(nil), content...),
	}
	s.files[f.id] = f
	s.paths[f.path] = f.id
	return f
}

// SendPhoto queues a photo message from the user of private chat chatID; it returns the update_id
// and the photo's file_id (getFile and the download path serve content).
func (s *Server) SendPhoto(chatID int64, content []byte) (updateID int, fileID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chatKnownLocked(chatID)
	f := s.addFileLocked("photos", ".jpg", content)
	w, h := 1, 1
	if cfg, _, err := image.DecodeConfig(bytes.NewReader(content)); err == nil {
		w, h = cfg.Width, cfg.Height
	}
	size := map[string]any{"file_id": f.id, "file_unique_id": "u" + f.id, "width": w, "height": h, "file_size": len(content)}
	return s.userMessageLocked(chatID, c, userJSON(chatID, c.name), "", "photo", []any{size}), f.id
}

// SendDocument queues a document message named name from the user of private chat chatID; it
// returns the update_id and the document's file_id.
func (s *Server) SendDocument(chatID int64, name string, content []byte) (int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chatKnownLocked(chatID)
	ext := path.Ext(name)
	f := s.addFileLocked("documents", ext, content)
	mt := mime.TypeByExtension(ext)
	if mt == "" {
		mt = http.DetectContentType(content)
	}
	mt, _, _ = strings.Cut(mt, ";")
	doc := map[string]any{"file_id": f.id, "file_unique_id": "u" + f.id, "file_name": name, "mime_type": mt, "file_size": len(content)}
	return s.userMessageLocked(chatID, c, userJSON(chatID, c.name), "", "document", doc), f.id
}

// Redeliver queues an update created before once more, as Telegram does when a confirmation was
// lost: it is delivered by the next getUpdates even if the bot's offset is already past it.
func (s *Server) Redeliver(updateID int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	raw, ok := s.updates[updateID]
	if !ok {
		s.t.Fatalf("bottest: Redeliver(%d): no such update", updateID)
		return
	}
	s.queue = append(s.queue, queued{id: updateID, raw: raw})
	s.notify()
}

// PushRaw queues any update as given (it must carry update_id); like Redeliver it is delivered once
// whatever the offset, so out-of-order ids reach the bot. The chat of its message or
// callback_query becomes known, and a callback_query's id is accepted by answerCallbackQuery.
func (s *Server) PushRaw(update json.RawMessage) {
	var u struct {
		UpdateID *int `json:"update_id"`
		Message  *struct {
			Chat struct {
				ID   int64  `json:"id"`
				Type string `json:"type"`
			} `json:"chat"`
		} `json:"message"`
		CallbackQuery *struct {
			ID   string `json:"id"`
			From struct {
				ID int64 `json:"id"`
			} `json:"from"`
		} `json:"callback_query"`
	}
	if err := json.Unmarshal(update, &u); err != nil || u.UpdateID == nil {
		s.t.Fatalf("bottest: PushRaw: not an update with update_id (%v)", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := *u.UpdateID
	if m := u.Message; m != nil && m.Chat.ID != 0 {
		if _, ok := s.chats[m.Chat.ID]; !ok {
			s.chats[m.Chat.ID] = chat{typ: cmp.Or(m.Chat.Type, "private"), name: fmt.Sprintf("user%d", m.Chat.ID)}
		}
	}
	if q := u.CallbackQuery; q != nil && q.ID != "" {
		s.chatKnownLocked(q.From.ID)
		s.callbacks[q.ID] = q.From.ID
	}
	raw := append(json.RawMessage(nil), update...)
	s.updates[id] = raw
	s.nextUpdateID = max(s.nextUpdateID, id+1)
	s.queue = append(s.queue, queued{id: id, raw: raw})
	s.notify()
}

// DeliverWebhook POSTs update updateID as JSON to the URL registered by setWebhook, with
// X-Telegram-Bot-Api-Secret-Token when a secret was registered. A 2xx answer confirms the update
// (it leaves the pending queue), as with Telegram. The caller closes the response body.
func (s *Server) DeliverWebhook(ctx context.Context, updateID int) (*http.Response, error) {
	s.mu.Lock()
	hook, secret := s.webhook.url, s.webhook.secret
	raw, ok := s.updates[updateID]
	s.mu.Unlock()
	if hook == "" {
		return nil, errors.New("bottest: no webhook is set")
	}
	if !ok {
		return nil, fmt.Errorf("bottest: no update %d", updateID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook, bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		req.Header.Set("X-Telegram-Bot-Api-Secret-Token", secret)
	}
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 == 2 {
		s.mu.Lock()
		kept := s.queue[:0]
		for _, q := range s.queue {
			if q.id != updateID {
				kept = append(kept, q)
			}
		}
		s.queue = kept
		s.notify()
		s.mu.Unlock()
	}
	return resp, nil
}
