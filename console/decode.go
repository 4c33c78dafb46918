package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// decode reads the request body (already limited by secure) and fills dst strictly
// (security.md rule 10): valid UTF-8 (encoding/json would silently replace invalid bytes with
// U+FFFD), exactly one JSON object, no duplicate keys (a proxy and we could otherwise read
// different values), no unknown fields, and no value of the wrong type. An empty body is {}.
// Every refusal wraps recovery.ErrInvalidInput with a message naming the problem, except an
// oversized body, which stays an *http.MaxBytesError (413).
func decode(c *gin.Context, dst any) error {
	if c.Request.Body == nil || c.Request.Body == http.NoBody {
		return decodeBytes([]byte("{}"), dst)
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		return invalid("the request body could not be read")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	return decodeBytes(body, dst)
}

func decodeBytes(body []byte, dst any) error {
	if !utf8.Valid(body) {
		return invalid("request body is not valid UTF-8")
	}
	if !plainObject(body) { // the common case in one pass; the rest gets the token walk
		if err := checkStructure(body); err != nil {
			return err
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		return describeDecodeError(err)
	}
	return nil
}

// checkStructure walks the tokens of body: one JSON object, nothing after it, no object with
// the same key twice at any depth.
func checkStructure(body []byte) error {
	type frame struct {
		object  bool
		wantKey bool
		keys    map[string]struct{}
	}
	var stack []*frame
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	first, done := true, false
	// valueDone records that a value ended inside the current container.
	valueDone := func() {
		if len(stack) == 0 {
			done = true
		} else if top := stack[len(stack)-1]; top.object {
			top.wantKey = true
		}
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			if !done {
				return invalid("request body is not valid JSON (it ends early)")
			}
			return nil
		}
		if err != nil {
			return invalid("request body is not valid JSON")
		}
		if done {
			return invalid("request body must hold a single JSON value")
		}
		if first && tok != json.Delim('{') {
			return invalid("request body must be a JSON object")
		}
		first = false
		if len(stack) > 0 {
			if top := stack[len(stack)-1]; top.object && top.wantKey {
				if tok == json.Delim('}') {
					stack = stack[:len(stack)-1]
					valueDone()
					continue
				}
				key, _ := tok.(string) // the decoder only yields strings in key position
				if _, dup := top.keys[key]; dup {
					return invalid("request body names " + quoteField(key) + " twice")
				}
				top.keys[key] = struct{}{}
				top.wantKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, wantKey: true, keys: map[string]struct{}{}})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}

// describeDecodeError turns encoding/json's errors into messages that name the field.
func describeDecodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return invalid("request body must be a JSON object")
		}
		return invalid(quoteField(typeErr.Field) + " must be " + jsonType(typeErr.Type))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		if unq, err := strconv.Unquote(name); err == nil {
			name = unq
		}
		return invalid("unknown field " + quoteField(name))
	default:
		return invalid("request body is not valid JSON")
	}
}

// quoteField quotes a field name for a message, shortened: it comes from the caller.
func quoteField(name string) string {
	if utf8.RuneCountInString(name) > 64 {
		name = string([]rune(name)[:64]) + "…"
	}
	b, _ := json.Marshal(name)
	return string(b)
}

// jsonType names what a Go type expects in JSON terms.
func jsonType(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "a different type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean (true or false)"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	default:
		return "a different type"
	}
}
