package console

import "bytes"

// plainObject reports whether body is one valid JSON object, alone but for white space, in which
// no object at any depth has a key written with an escape or a key twice: bodies checkStructure
// accepts, found in one pass without its per-token allocations (on the verify path the token
// walk cost more than the rest of decoding). It never judges the others: escaped keys, nesting
// deeper than plainMaxDepth, objects of more than plainMaxKeys keys, and every invalid body go to
// checkStructure, which then gives the answer and its message. FuzzPlainObject holds it to
// checkStructure. body must be valid UTF-8 (decodeBytes checks that first).
func plainObject(body []byte) bool {
	p := plainScan{b: body}
	p.ws()
	if p.i >= len(p.b) || p.b[p.i] != '{' || !p.value(0) {
		return false
	}
	p.ws()
	return p.i == len(p.b)
}

const (
	plainMaxDepth = 32
	plainMaxKeys  = 64 // keys are compared pairwise
)

type plainScan struct {
	b []byte
	i int
}

func (p *plainScan) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// next reports whether the byte at the position is c, and steps over it if so.
func (p *plainScan) next(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *plainScan) value(depth int) bool {
	if p.i >= len(p.b) {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return depth < plainMaxDepth && p.object(depth+1)
	case c == '[':
		return depth < plainMaxDepth && p.array(depth+1)
	case c == '"':
		_, ok := p.str(true)
		return ok
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return p.number()
	}
	return false
}

func (p *plainScan) object(depth int) bool {
	p.i++ // '{'
	p.ws()
	if p.next('}') {
		return true
	}
	var keys [][]byte
	for {
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return false
		}
		key, ok := p.str(false)
		if !ok || len(keys) == plainMaxKeys {
			return false
		}
		for _, k := range keys {
			if bytes.Equal(k, key) {
				return false
			}
		}
		keys = append(keys, key)
		p.ws()
		if !p.next(':') {
			return false
		}
		p.ws()
		if !p.value(depth) {
			return false
		}
		p.ws()
		if p.next('}') {
			return true
		}
		if !p.next(',') {
			return false
		}
	}
}

func (p *plainScan) array(depth int) bool {
	p.i++ // '['
	p.ws()
	if p.next(']') {
		return true
	}
	for {
		p.ws()
		if !p.value(depth) {
			return false
		}
		p.ws()
		if p.next(']') {
			return true
		}
		if !p.next(',') {
			return false
		}
	}
}

// str reads the string at the position (its opening quote) and returns its raw content. With
// escapes false a backslash makes it give up.
func (p *plainScan) str(escapes bool) ([]byte, bool) {
	start := p.i + 1
	for i := start; i < len(p.b); i++ {
		switch c := p.b[i]; {
		case c == '"':
			p.i = i + 1
			return p.b[start:i], true
		case c < 0x20:
			return nil, false
		case c == '\\':
			if !escapes || i+1 >= len(p.b) {
				return nil, false
			}
			i++
			switch p.b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(p.b) {
					return nil, false
				}
				for _, h := range p.b[i+1 : i+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return nil, false
					}
				}
				i += 4
			default:
				return nil, false
			}
		}
	}
	return nil, false
}

func (p *plainScan) literal(word string) bool {
	if !bytes.HasPrefix(p.b[p.i:], []byte(word)) {
		return false
	}
	p.i += len(word)
	return true
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?; what follows is the caller's.
func (p *plainScan) number() bool {
	p.next('-')
	switch {
	case p.next('0'):
	case p.i < len(p.b) && '1' <= p.b[p.i] && p.b[p.i] <= '9':
		p.digits()
	default:
		return false
	}
	if p.next('.') && !p.digits() {
		return false
	}
	if p.next('e') || p.next('E') {
		if !p.next('+') {
			p.next('-')
		}
		if !p.digits() {
			return false
		}
	}
	return true
}

// digits steps over a run of digits and reports whether there was at least one.
func (p *plainScan) digits() bool {
	start := p.i
	for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i > start
}
