package atlas

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// envelope streams the "content" of an envelope=true answer
// ({"status":200,"content":...}) without holding it in memory: a JSON string
// (CSV) is unescaped on the fly, an object or array is passed through as is.
// The members after the content are still checked, so a late non-2xx status
// or a truncated envelope is an error from Read, never a silent short body.
type envelope struct {
	br     *bufio.Reader
	rc     io.ReadCloser
	method string
	path   string

	status   int    // 0 until seen; treated as 200 when absent
	errBody  []byte // content of a non-2xx envelope
	isString bool   // content is a JSON string (CSV)

	mode    int  // envNone, envString, envRaw, envDone
	handed  bool // the content started streaming
	depth   int  // envRaw: nesting depth
	inStr   bool
	esc     bool
	pending []byte // decoded bytes not yet returned
	err     error  // sticky
}

const (
	envNone = iota
	envString
	envRaw
	envDone
)

// maxEnvelopeKey bounds member names: an envelope has short ones.
const maxEnvelopeKey = 256

var errEnvelopeSyntax = errors.New("malformed envelope")

// openEnvelope reads the envelope up to the start of its content, or to its
// end when there is none (status only, or an error envelope).
func openEnvelope(rc io.ReadCloser, method, path string) (*envelope, error) {
	e := &envelope{br: bufio.NewReaderSize(rc, 32<<10), rc: rc, method: method, path: path}
	c, err := e.next()
	if err != nil {
		return nil, e.wrap(err)
	}
	if c != '{' {
		return nil, e.wrap(errEnvelopeSyntax)
	}
	if err := e.members(true); err != nil {
		return nil, e.wrap(err)
	}
	if e.status == 0 {
		e.status = 200
	}
	return e, nil
}

// members parses object members until the content starts (mode set) or the
// object ends (mode envDone).
func (e *envelope) members(first bool) error {
	for {
		key, end, err := e.key(first)
		if err != nil {
			return err
		}
		first = false
		if end {
			e.mode = envDone
			return e.expectEOF()
		}
		switch key {
		case "status":
			raw, err := e.value(32)
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(string(raw))
			if err != nil {
				return fmt.Errorf("%w: status %q", errEnvelopeSyntax, clean(string(raw), 32))
			}
			if e.handed && (n < 200 || n > 299) {
				// The content was already handed over: say it was not a result.
				return &Error{StatusCode: n, Method: e.method, Path: e.path, Detail: "envelope status after content"}
			}
			e.status = n
		case "content":
			if e.handed {
				return fmt.Errorf("%w: two contents", errEnvelopeSyntax)
			}
			if e.status != 0 && (e.status < 200 || e.status > 299) {
				if e.errBody, err = e.value(maxErrorBody); err != nil {
					return err
				}
				continue
			}
			c, err := e.next()
			if err != nil {
				return err
			}
			switch c {
			case '"':
				e.isString, e.mode, e.handed = true, envString, true
			case '{', '[':
				e.mode, e.depth, e.pending, e.handed = envRaw, 1, []byte{c}, true
			default: // null or a scalar: no body
				_ = e.br.UnreadByte()
				if _, err := e.value(64); err != nil {
					return err
				}
				e.mode = envDone
				continue
			}
			return nil
		default:
			if _, err := e.value(-1); err != nil {
				return err
			}
		}
	}
}

func (e *envelope) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && e.err == nil {
		if len(e.pending) > 0 {
			k := copy(p[n:], e.pending)
			e.pending = e.pending[k:]
			n += k
			continue
		}
		var err error
		switch e.mode {
		case envString:
			err = e.readString(p, &n)
		case envRaw:
			err = e.readRaw(p, &n)
		default:
			err = io.EOF
		}
		if err != nil && err != io.EOF {
			err = e.wrap(err)
		}
		e.err = err
	}
	if n > 0 {
		return n, nil
	}
	return 0, e.err
}

// readString copies unescaped string content into p until the closing quote
// (mode changes) or p is full.
func (e *envelope) readString(p []byte, n *int) error {
	for *n < len(p) {
		if e.br.Buffered() == 0 {
			if _, err := e.br.Peek(1); err != nil {
				return eofIsUnexpected(err)
			}
		}
		buf, _ := e.br.Peek(e.br.Buffered())
		i := 0
		for i < len(buf) && i < len(p)-*n && buf[i] != '"' && buf[i] != '\\' {
			i++
		}
		copy(p[*n:], buf[:i])
		*n += i
		_, _ = e.br.Discard(i)
		if i < len(buf) && *n < len(p) {
			c, _ := e.br.ReadByte()
			if c == '"' {
				return e.afterContent()
			}
			r, err := e.escape()
			if err != nil {
				return err
			}
			// escape may have queued a replacement character already.
			e.pending = utf8.AppendRune(e.pending, r)
			return nil
		}
	}
	return nil
}

// afterContent checks the members after the content; io.EOF when all is well.
func (e *envelope) afterContent() error {
	e.mode = envNone
	if err := e.members(false); err != nil {
		return err
	}
	return io.EOF
}

// escape decodes the escape sequence after a backslash.
func (e *envelope) escape() (rune, error) {
	c, err := e.br.ReadByte()
	if err != nil {
		return 0, eofIsUnexpected(err)
	}
	switch c {
	case '"', '\\', '/':
		return rune(c), nil
	case 'b':
		return '\b', nil
	case 'f':
		return '\f', nil
	case 'n':
		return '\n', nil
	case 'r':
		return '\r', nil
	case 't':
		return '\t', nil
	case 'u':
		r, err := e.hex4()
		if err != nil {
			return 0, err
		}
		if !utf16.IsSurrogate(r) {
			return r, nil
		}
		// A surrogate pair is two escapes.
		if b, err := e.br.Peek(2); err == nil && b[0] == '\\' && b[1] == 'u' {
			_, _ = e.br.Discard(2)
			r2, err := e.hex4()
			if err != nil {
				return 0, err
			}
			if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
				return d, nil
			}
			// Not a pair: emit a replacement for the first, keep the second.
			e.pending = utf8.AppendRune(e.pending[:0], utf8.RuneError)
			return r2, nil
		}
		return utf8.RuneError, nil
	}
	return 0, fmt.Errorf("%w: bad escape", errEnvelopeSyntax)
}

func (e *envelope) hex4() (rune, error) {
	var b [4]byte
	if _, err := io.ReadFull(e.br, b[:]); err != nil {
		return 0, eofIsUnexpected(err)
	}
	n, err := strconv.ParseUint(string(b[:]), 16, 16)
	if err != nil {
		return 0, fmt.Errorf("%w: bad \\u escape", errEnvelopeSyntax)
	}
	return rune(n), nil
}

// readRaw copies a JSON object or array through until its closing bracket.
func (e *envelope) readRaw(p []byte, n *int) error {
	for *n < len(p) {
		c, err := e.br.ReadByte()
		if err != nil {
			return eofIsUnexpected(err)
		}
		p[*n] = c
		*n++
		switch {
		case e.inStr:
			if e.esc {
				e.esc = false
			} else if c == '\\' {
				e.esc = true
			} else if c == '"' {
				e.inStr = false
			}
		case c == '"':
			e.inStr = true
		case c == '{' || c == '[':
			e.depth++
		case c == '}' || c == ']':
			e.depth--
			if e.depth == 0 {
				return e.afterContent()
			}
		}
	}
	return nil
}

// key reads the next member name; end is true at the closing brace.
func (e *envelope) key(first bool) (string, bool, error) {
	c, err := e.next()
	if err != nil {
		return "", false, err
	}
	if c == '}' {
		return "", true, nil
	}
	if !first {
		if c != ',' {
			return "", false, errEnvelopeSyntax
		}
		if c, err = e.next(); err != nil {
			return "", false, err
		}
	}
	if c != '"' {
		return "", false, errEnvelopeSyntax
	}
	_ = e.br.UnreadByte()
	raw, err := e.value(maxEnvelopeKey)
	if err != nil {
		return "", false, err
	}
	var k string
	if err := json.Unmarshal(raw, &k); err != nil {
		return "", false, errEnvelopeSyntax
	}
	if c, err = e.next(); err != nil {
		return "", false, err
	}
	if c != ':' {
		return "", false, errEnvelopeSyntax
	}
	return k, false, nil
}

// value reads one JSON value, keeping at most limit bytes of it (limit < 0:
// skip it, keeping nothing).
func (e *envelope) value(limit int) ([]byte, error) {
	c, err := e.next()
	if err != nil {
		return nil, err
	}
	var out []byte
	put := func(b byte) error {
		if limit < 0 {
			return nil
		}
		if len(out) >= limit {
			return fmt.Errorf("%w: value longer than %d bytes", errEnvelopeSyntax, limit)
		}
		out = append(out, b)
		return nil
	}
	if err := put(c); err != nil {
		return nil, err
	}
	depth, inStr, esc := 0, false, false
	switch c {
	case '"':
		inStr = true
	case '{', '[':
		depth = 1
	case '}', ']', ',', ':':
		return nil, errEnvelopeSyntax
	default: // number, true, false, null
		for {
			b, err := e.br.ReadByte()
			if err == io.EOF {
				return out, nil
			}
			if err != nil {
				return nil, err
			}
			if !isLiteral(b) {
				_ = e.br.UnreadByte()
				return out, nil
			}
			if err := put(b); err != nil {
				return nil, err
			}
		}
	}
	for inStr || depth > 0 {
		b, err := e.br.ReadByte()
		if err != nil {
			return nil, eofIsUnexpected(err)
		}
		if err := put(b); err != nil {
			return nil, err
		}
		switch {
		case inStr:
			if esc {
				esc = false
			} else if b == '\\' {
				esc = true
			} else if b == '"' {
				inStr = false
			}
		case b == '"':
			inStr = true
		case b == '{' || b == '[':
			depth++
		case b == '}' || b == ']':
			depth--
		}
	}
	return out, nil
}

func isLiteral(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '+' || b == '.'
}

// next returns the next non-space byte.
func (e *envelope) next() (byte, error) {
	for {
		c, err := e.br.ReadByte()
		if err != nil {
			return 0, eofIsUnexpected(err)
		}
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c, nil
	}
}

func (e *envelope) expectEOF() error {
	for {
		c, err := e.br.ReadByte()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return fmt.Errorf("%w: data after the envelope", errEnvelopeSyntax)
	}
}

func eofIsUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// wrap makes every failure a *StreamError (the body is not trustworthy),
// keeping *Error and *StreamError as they are.
func (e *envelope) wrap(err error) error {
	var se *StreamError
	var ae *Error
	if err == nil || err == io.EOF || errors.As(err, &se) || errors.As(err, &ae) {
		return err
	}
	return &StreamError{Method: e.method, Path: e.path, Err: err}
}

func (e *envelope) Close() error { return e.rc.Close() }
