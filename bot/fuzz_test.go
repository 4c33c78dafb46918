package bot_test

import (
	"encoding/json"
	"strings"
	"testing"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/recoverydesk/recoverydesk/bot"
	"github.com/recoverydesk/recoverydesk/recovery"
)

// FuzzUpdate: any update JSON parses without panic into an input whose command, if any, is a
// lower-case word, and whose chat is served only when private.
func FuzzUpdate(f *testing.F) {
	for _, s := range []string{
		`{"update_id":1,"message":{"message_id":1,"chat":{"id":5,"type":"private"},"from":{"id":5},"text":"/start 0123456789abcdef0123456789abcdef"}}`,
		`{"update_id":2,"message":{"message_id":2,"chat":{"id":-5,"type":"group"},"text":"/start@recoverydesk_bot x"}}`,
		`{"update_id":3,"callback_query":{"id":"c","from":{"id":5},"data":"lost","message":{"message_id":3,"chat":{"id":5,"type":"private"}}}}`,
		`{"update_id":4,"callback_query":{"id":"c","from":{"id":5},"data":""}}`,
		`{"update_id":5,"message":{"message_id":4,"chat":{"id":5,"type":"private"},"photo":[{"file_id":"a"},{"file_id":"b"}],"caption":"id"}}`,
		`{"update_id":6,"message":{"message_id":5,"chat":{"id":5,"type":"private"},"document":{"file_id":"d"}}}`,
		`{"update_id":7}`, `{}`, `[]`, `{"update_id":"x"}`, `{"update_id":8,"message":{"text":"/"}}`,
		`{"update_id":9,"message":{"chat":{"id":5,"type":"private"},"text":"/STATUS   now"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var u tgbotapi.Update
		if json.Unmarshal(data, &u) != nil {
			return
		}
		in, _ := bot.Parse(u)
		if in.UpdateID != int64(u.UpdateID) {
			t.Fatalf("update id %d != %d", in.UpdateID, u.UpdateID)
		}
		if in.FileID != "" && u.Message == nil {
			t.Fatal("a file without a message")
		}
		if cmd, arg, ok := recovery.ParseTelegramCommand(in.Text); ok {
			if cmd == "" || cmd != strings.ToLower(cmd) || strings.ContainsAny(cmd, " @/") {
				t.Fatalf("command %q from %q", cmd, in.Text)
			}
			if arg != strings.TrimSpace(arg) {
				t.Fatalf("argument %q not trimmed", arg)
			}
		}
	})
}

// FuzzCommand: ParseTelegramCommand never panics and accepts only what starts with a slash.
func FuzzCommand(f *testing.F) {
	for _, s := range []string{"/start", "/start abc", "/start@bot abc", " /cancel ", "hello", "/", "//x", "/ä", "/s\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cmd, _, ok := recovery.ParseTelegramCommand(s)
		if ok && (!strings.HasPrefix(strings.TrimSpace(s), "/") || cmd == "") {
			t.Fatalf("%q parsed as %q", s, cmd)
		}
	})
}
