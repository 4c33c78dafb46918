package bottest

import (
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// checkHTML parses text the way Telegram parses parse_mode HTML, far enough to refuse what
// Telegram refuses: a '<' that does not open a supported tag (typically user input the bot forgot
// to escape), unbalanced tags. It returns the length of the visible text in UTF-16 code units, or
// Telegram's reason (after "can't parse entities: ").
func checkHTML(text string) (visible int, reason string) {
	var open []string
	for i := 0; i < len(text); {
		switch text[i] {
		case '<':
			end := strings.IndexByte(text[i:], '>')
			if end < 0 {
				return 0, fmt.Sprintf("Unclosed start tag at byte offset %d", i)
			}
			tag := text[i+1 : i+end]
			if name, ok := strings.CutPrefix(tag, "/"); ok {
				name = strings.ToLower(strings.TrimSpace(name))
				if len(open) == 0 {
					return 0, fmt.Sprintf("Unexpected end tag at byte offset %d", i)
				}
				if top := open[len(open)-1]; name != top {
					return 0, fmt.Sprintf("Unmatched end tag at byte offset %d, expected \"</%s>\", found \"</%s>\"", i, top, name)
				}
				open = open[:len(open)-1]
			} else {
				name, _, _ := strings.Cut(tag, " ")
				name = strings.ToLower(name)
				if !htmlTag(name) {
					return 0, fmt.Sprintf("Unsupported start tag \"%s\" at byte offset %d", name, i)
				}
				open = append(open, name)
			}
			i += end + 1
		case '&':
			if n := htmlEntity(text[i:]); n > 0 {
				visible++
				i += n
				continue
			}
			visible++
			i++
		default:
			r, size := utf8.DecodeRuneInString(text[i:])
			visible += len(utf16.Encode([]rune{r}))
			i += size
		}
	}
	if len(open) > 0 {
		return 0, fmt.Sprintf("Can't find end tag corresponding to start tag \"%s\"", open[len(open)-1])
	}
	return visible, ""
}

// htmlTag reports whether Telegram supports the tag in parse_mode HTML.
func htmlTag(name string) bool {
	switch name {
	case "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler",
		"a", "tg-emoji", "code", "pre", "blockquote":
		return true
	}
	return false
}

// htmlEntity returns the byte length of the entity at the start of s (&lt; &gt; &amp; &quot; or a
// numeric one), 0 if there is none; Telegram supports no other named entity.
func htmlEntity(s string) int {
	for _, e := range []string{"&lt;", "&gt;", "&amp;", "&quot;"} {
		if strings.HasPrefix(s, e) {
			return len(e)
		}
	}
	if !strings.HasPrefix(s, "&#") {
		return 0
	}
	end := strings.IndexByte(s, ';')
	if end < 3 || end > 10 {
		return 0
	}
	digits := s[2:end]
	hex := digits[0] == 'x' || digits[0] == 'X'
	if hex {
		digits = digits[1:]
	}
	for _, c := range digits {
		if !(c >= '0' && c <= '9' || hex && (c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F')) {
			return 0
		}
	}
	if digits == "" {
		return 0
	}
	return end + 1
}
