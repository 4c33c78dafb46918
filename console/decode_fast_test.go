package console

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// plainCases are bodies with what plainObject must say of them; checkStructure must accept every
// one plainObject accepts.
var plainCases = []struct {
	body  string
	plain bool
}{
	{`{"code":"123456"}`, true},
	{` {"code" : "123 456", "ip":"10.0.0.1"}` + "\n", true},
	{`{}`, true},
	{`{"facts":{"country":"NO","amounts":[1,-2.5,3e10,0.25E-3,null,true,false],"nested":{"a":{}}}}`, true},
	{`{"name":"a \"quoted\" \\ \/ \b\f\n\r\t \u00e9 \uD83D\uDE00 word"}`, true},
	{`{"a":[],"b":[[]],"c":""}`, true},
	{`{"é":"ü"}`, true},
	// Accepted by checkStructure, left to it: an escaped key (it could name another key).
	{`{"\u0063ode":"123456"}`, false},
	{`{"a":1,"\u0061":2}`, false},
	// Refused by both.
	{`{"code":"1","code":"2"}`, false},
	{`{"a":{"x":1,"x":2}}`, false},
	{`[]`, false},
	{`"code"`, false},
	{`{"code":"123456"} {}`, false},
	{`{"code":"123456"`, false},
	{`{"code":"123456",}`, false},
	{`{"code" "123456"}`, false},
	{`{code:"123456"}`, false},
	{`{"a":01}`, false},
	{`{"a":-}`, false},
	{`{"a":1.}`, false},
	{`{"a":1e}`, false},
	{`{"a":.5}`, false},
	{`{"a":tru}`, false},
	{`{"a":truex}`, false},
	{`{"a":"\x"}`, false},
	{`{"a":"\u12G4"}`, false},
	{"{\"a\":\"tab\there\"}", false},
	{`{"a":[1,]}`, false},
	{`{"a":[1 2]}`, false},
	{``, false},
	{`   `, false},
}

func TestPlainObject(t *testing.T) {
	for _, c := range plainCases {
		if got := plainObject([]byte(c.body)); got != c.plain {
			t.Errorf("plainObject(%s) = %v, want %v", c.body, got, c.plain)
		}
		if c.plain {
			if err := checkStructure([]byte(c.body)); err != nil {
				t.Errorf("checkStructure(%s) = %v, but plainObject accepts it", c.body, err)
			}
		}
	}
}

// FuzzPlainObject holds the fast path to the token walk: whatever plainObject accepts,
// checkStructure accepts too.
func FuzzPlainObject(f *testing.F) {
	for _, c := range plainCases {
		f.Add([]byte(c.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !utf8.Valid(body) {
			return
		}
		if plainObject(body) {
			if err := checkStructure(body); err != nil {
				t.Fatalf("plainObject accepts %q, checkStructure refuses it: %v", body, err)
			}
		}
	})
}

// BenchmarkDecodeCode is decoding a verify body: decodeBytes (the fast path), and what it did
// before (the token walk, then the same strict decoder).
func BenchmarkDecodeCode(b *testing.B) {
	body := []byte(`{"code":"123456","ip":"10.1.2.3"}`)
	b.Run("decodeBytes", func(b *testing.B) {
		for b.Loop() {
			var req codeRequest
			if err := decodeBytes(body, &req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("tokenWalk", func(b *testing.B) {
		for b.Loop() {
			var req codeRequest
			if err := checkStructure(body); err != nil {
				b.Fatal(err)
			}
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			dec.UseNumber()
			if err := dec.Decode(&req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
