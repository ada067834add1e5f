package atlassim

import (
	"crypto/tls"
	"net/http"
	"sync"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// HTTP2NextProto is the http.Server TLSNextProto to serve this simulator's
// HTTP/2 with, or nil for net/http's own. With the H2EndStream102 variant
// it serves each connection with x/net's HTTP/2 server through a writer
// that sets END_STREAM on every 1xx HEADERS frame: a form of 102 that Go's
// client refuses before any hook, and that net/http's server never sends.
func (s *Server) HTTP2NextProto() map[string]func(*http.Server, *tls.Conn, http.Handler) {
	if !s.has(H2EndStream102) {
		return nil
	}
	h2 := &http2.Server{}
	return map[string]func(*http.Server, *tls.Conn, http.Handler){
		"h2": func(hs *http.Server, c *tls.Conn, h http.Handler) {
			dec := hpack.NewDecoder(4096, nil)
			dec.SetAllowedMaxDynamicTableSize(64 << 10)
			h2.ServeConn(&endStream1xx{Conn: c, dec: dec}, &http2.ServeConnOpts{Handler: h, BaseConfig: hs})
		},
	}
}

// endStream1xx passes the server's frames through, decoding every header
// block (to keep the HPACK state) and setting END_STREAM on a HEADERS frame
// whose block is whole and says :status 1xx. It keeps *tls.Conn's methods,
// so requests still see their TLS state.
type endStream1xx struct {
	*tls.Conn
	mu    sync.Mutex
	buf   []byte // bytes of a frame not yet complete
	block []byte // a header block awaiting its CONTINUATION frames
	dec   *hpack.Decoder
}

const (
	frameHeaders      = 0x1
	frameContinuation = 0x9
	flagEndStream     = 0x1
	flagEndHeaders    = 0x4
	flagPadded        = 0x8
	flagPriority      = 0x20
)

func (c *endStream1xx) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = append(c.buf, p...)
	n := 0 // bytes of whole frames in buf
	for len(c.buf)-n >= 9 {
		f := c.buf[n:]
		size := 9 + (int(f[0])<<16 | int(f[1])<<8 | int(f[2]))
		if len(f) < size {
			break
		}
		c.frame(f[:size])
		n += size
	}
	if n > 0 {
		if _, err := c.Conn.Write(c.buf[:n]); err != nil {
			return 0, err
		}
		c.buf = append(c.buf[:0], c.buf[n:]...)
	}
	return len(p), nil
}

// frame decodes the header block fragment of f, if any, and patches f.
func (c *endStream1xx) frame(f []byte) {
	typ, flags, payload := f[3], f[4], f[9:]
	switch typ {
	case frameHeaders:
		if flags&flagPadded != 0 && len(payload) > 0 {
			pad := int(payload[0])
			payload = payload[1:max(1, len(payload)-pad)]
		}
		if flags&flagPriority != 0 && len(payload) >= 5 {
			payload = payload[5:]
		}
		c.block = append(c.block[:0], payload...)
	case frameContinuation:
		c.block = append(c.block, payload...)
	default:
		return
	}
	if flags&flagEndHeaders == 0 {
		return
	}
	fields, err := c.dec.DecodeFull(c.block)
	if err != nil {
		return
	}
	for _, hf := range fields {
		if hf.Name == ":status" && len(hf.Value) == 3 && hf.Value[0] == '1' && typ == frameHeaders {
			f[4] |= flagEndStream
		}
	}
}
