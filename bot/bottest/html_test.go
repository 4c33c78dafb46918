package bottest

import "testing"

func TestCheckHTML(t *testing.T) {
	cases := []struct {
		text    string
		visible int
		reason  string
	}{
		{"plain", 5, ""},
		{"<b>bold</b> <i>it</i>", 7, ""},
		{`<a href="https://example.com/r?a=1&amp;b=2">link</a>`, 4, ""},
		{"&lt;&gt;&amp;&quot;&#65;&#x42;", 6, ""},
		{"a & b", 5, ""},
		{"🔒", 2, ""}, // one code point outside the BMP: two UTF-16 units, as Telegram counts
		{"<B>x</b>", 1, ""},
		{"1 < 2", 0, "Unclosed start tag at byte offset 2"},
		{"1 < 2 > 0", 0, `Unsupported start tag "" at byte offset 2`},
		{"x <y", 0, "Unclosed start tag at byte offset 2"},
		{"<b><i>x</b></i>", 0, `Unmatched end tag at byte offset 7, expected "</i>", found "</b>"`},
		{"x</b>", 0, "Unexpected end tag at byte offset 1"},
		{"<pre><code>x</code>", 0, `Can't find end tag corresponding to start tag "pre"`},
		{"<div>x</div>", 0, `Unsupported start tag "div" at byte offset 0`},
	}
	for _, tc := range cases {
		visible, reason := checkHTML(tc.text)
		if visible != tc.visible || reason != tc.reason {
			t.Errorf("checkHTML(%q) = %d, %q; want %d, %q", tc.text, visible, reason, tc.visible, tc.reason)
		}
	}
}
