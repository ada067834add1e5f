package normalize

import (
	"bytes"
	"encoding/binary"
	"encoding/csv"
	"errors"
	"io"
	"math/bits"
	"unicode/utf8"
)

// What one CSV record may cost. Atlas's records are a few hundred bytes and
// a FOCUS report has 43 columns: these bounds are far above any real file
// and far below what would hurt a 512 MB function.
const (
	MaxRecordBytes = 1 << 20 // raw bytes of one record, line breaks included
	MaxColumns     = 1000    // fields of one record, the header included
)

// Errors of a record over the bounds, returned before its memory is spent.
var (
	ErrRecordTooLarge = errors.New("a CSV record is over 1 MiB")
	ErrTooManyColumns = errors.New("a CSV record has over 1,000 fields")
)

// csvReader reads RFC 4180 CSV the way encoding/csv's Reader does with its
// defaults (comma, no comments, LazyQuotes and TrimLeadingSpace off), and
// its errors are encoding/csv's (*csv.ParseError with ErrQuote, ErrBareQuote,
// ErrFieldCount), with two differences: a record over MaxRecordBytes or
// MaxColumns is refused, and a leading UTF-8 byte order mark is skipped.
// The fuzz test FuzzCSVReader holds it to encoding/csv as the oracle.
//
// It is faster because it allocates nothing per record: the fields are
// slices of its own buffers, valid until the next read.
type csvReader struct {
	src  io.Reader
	buf  []byte // buf[r:w] read from src, not yet parsed
	r, w int
	scan int   // buf[r:scan] is known to hold no '\n'
	err  error // src's error, returned once buf is used up

	line      int  // lines read
	recLine   int  // the first line of the last record
	recUTF8   bool // the last record is valid UTF-8
	recBytes  int  // raw bytes of the record being read
	fieldsPer int  // 0: as many as the first record; -1: any

	maxRecord, maxColumns int // MaxRecordBytes and MaxColumns, smaller in tests

	rec    []byte   // unquoted fields of a record with quotes, one after another
	ends   []int    // end of each field in rec
	fields [][]byte // the record returned
}

const readSize = 64 << 10

func newCSVReader(src io.Reader, fieldsPerRecord int) *csvReader {
	return newCSVReaderSize(src, fieldsPerRecord, readSize, MaxRecordBytes, MaxColumns)
}

// newCSVReaderSize is newCSVReader with other bounds and a first buffer of
// size bytes (at least 4): small ones let a test reach every path.
func newCSVReaderSize(src io.Reader, fieldsPerRecord, size, maxRecord, maxColumns int) *csvReader {
	cr := &csvReader{src: src, buf: make([]byte, size), fieldsPer: fieldsPerRecord, maxRecord: maxRecord, maxColumns: maxColumns}
	for cr.w < 3 && cr.err == nil {
		n, err := src.Read(cr.buf[cr.w:])
		cr.w += n
		cr.err = err
	}
	if bytes.HasPrefix(cr.buf[:cr.w], []byte("\xef\xbb\xbf")) {
		cr.r, cr.scan = 3, 3 // a UTF-8 byte order mark
	}
	return cr
}

// readLine returns the next line with its "\n" ("\r\n" read as "\n"), or
// without it at the end of the input (a last "\r" dropped); io.EOF when
// nothing is left. The line is valid until the next call.
func (cr *csvReader) readLine() ([]byte, error) {
	for {
		if i := bytes.IndexByte(cr.buf[cr.scan:cr.w], '\n'); i >= 0 {
			end := cr.scan + i + 1
			line := cr.buf[cr.r:end]
			cr.r, cr.scan = end, end
			return cr.took(line)
		}
		cr.scan = cr.w
		if cr.err != nil {
			if cr.r == cr.w {
				return nil, cr.err
			}
			if cr.err != io.EOF {
				return nil, cr.err
			}
			line := cr.buf[cr.r:cr.w]
			cr.r = cr.w
			line, err := cr.took(line)
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1] // as encoding/csv: a "\r" before the end is dropped
			}
			return line, err
		}
		if cr.recBytes+cr.w-cr.r > cr.maxRecord {
			return nil, ErrRecordTooLarge
		}
		if cr.r > 0 { // make room: move the unread bytes to the front
			n := copy(cr.buf, cr.buf[cr.r:cr.w])
			cr.r, cr.w, cr.scan = 0, n, n
		}
		if cr.w == len(cr.buf) { // a line longer than buf, within the bound
			grown := make([]byte, min(2*len(cr.buf), cr.maxRecord+readSize))
			copy(grown, cr.buf[:cr.w])
			cr.buf = grown
		}
		n, err := cr.src.Read(cr.buf[cr.w:])
		cr.w += n
		cr.err = err
	}
}

// took counts a line read into the record's size and normalizes its end.
func (cr *csvReader) took(line []byte) ([]byte, error) {
	cr.line++
	cr.recBytes += len(line)
	if cr.recBytes > cr.maxRecord {
		return nil, ErrRecordTooLarge
	}
	if n := len(line); n >= 2 && line[n-2] == '\r' && line[n-1] == '\n' {
		line[n-2] = '\n'
		line = line[:n-1]
	}
	// Once per line, rather than per field: unquoting keeps UTF-8 valid.
	cr.recUTF8 = cr.recUTF8 && validUTF8(line)
	return line, nil
}

func lengthNL(b []byte) int {
	if len(b) > 0 && b[len(b)-1] == '\n' {
		return 1
	}
	return 0
}

// Read returns the next record, io.EOF after the last. Empty lines are
// skipped. The fields are valid until the next call.
func (cr *csvReader) Read() ([][]byte, error) {
	var line []byte
	for {
		cr.recBytes, cr.recUTF8 = 0, true
		var err error
		line, err = cr.readLine()
		if err != nil {
			return nil, err
		}
		if len(line) != lengthNL(line) {
			break
		}
	}
	cr.recLine = cr.line
	var err error
	switch {
	case bytes.IndexByte(line, '"') < 0:
		err = cr.split(line)
	case !cr.splitQuoted(line):
		err = cr.parse(line)
	}
	if err != nil {
		return nil, err
	}
	switch {
	case cr.fieldsPer == 0:
		cr.fieldsPer = len(cr.fields)
	case cr.fieldsPer > 0 && len(cr.fields) != cr.fieldsPer:
		return nil, &csv.ParseError{StartLine: cr.recLine, Line: cr.recLine, Column: 1, Err: csv.ErrFieldCount}
	}
	return cr.fields, nil
}

// split reads a record of one line without quotes: its fields are slices of
// the line, nothing is copied.
func (cr *csvReader) split(line []byte) error {
	line = line[:len(line)-lengthNL(line)]
	if bytes.Count(line, []byte{','}) >= cr.maxColumns {
		return ErrTooManyColumns
	}
	cr.fields = cr.fields[:0]
	for {
		i := bytes.IndexByte(line, ',')
		if i < 0 {
			cr.fields = append(cr.fields, line)
			return nil
		}
		cr.fields = append(cr.fields, line[:i:i])
		line = line[i+1:]
	}
}

// splitQuoted reads a record of one line, as most records with quotes
// are: its fields are slices of the line, nothing is copied but the fields
// with a "" (into rec). It reports false for any other record (a field over
// lines, a syntax error, too many fields), and parse reads it.
func (cr *csvReader) splitQuoted(line []byte) bool {
	line = line[:len(line)-lengthNL(line)]
	cr.fields = cr.fields[:0]
	if cap(cr.rec) < len(line) {
		cr.rec = make([]byte, 0, len(line)) // never moves: a field unquoted is shorter
	}
	cr.rec = cr.rec[:0]
	for len(cr.fields) < cr.maxColumns {
		if len(line) > 0 && line[0] == '"' {
			field, rest, ok := cr.quoted(line[1:])
			if !ok {
				return false
			}
			cr.fields = append(cr.fields, field)
			if len(rest) == 0 {
				return true
			}
			line = rest[1:]
			continue
		}
		i := indexDelim(line)
		if i == len(line) {
			cr.fields = append(cr.fields, line)
			return true
		}
		if line[i] == '"' {
			return false // a bare quote
		}
		cr.fields = append(cr.fields, line[:i:i])
		line = line[i+1:]
	}
	return false
}

// quoted reads a quoted field that ends on its line, from after its
// opening quote: the field, and the rest of the line after its closing
// quote (empty, or from the next comma).
func (cr *csvReader) quoted(line []byte) (field, rest []byte, ok bool) {
	start := len(cr.rec)
	for n := 0; ; n++ {
		i := bytes.IndexByte(line, '"')
		switch {
		case i < 0:
			return nil, nil, false // a field over lines, or no closing quote
		case i+1 == len(line) || line[i+1] == ',':
			if n == 0 {
				return line[:i:i], line[i+1:], true
			}
			cr.rec = append(cr.rec, line[:i]...)
			return cr.rec[start:len(cr.rec):len(cr.rec)], line[i+1:], true
		case line[i+1] != '"':
			return nil, nil, false // a quote in the field: a syntax error
		}
		cr.rec = append(cr.rec, line[:i+1]...) // "" is a quote
		line = line[i+2:]
	}
}

// Bytes of a word, to test 8 at a time.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// indexDelim is the index of the first ',' or '"' in b, or len(b).
func indexDelim(b []byte) int {
	i := 0
	for ; len(b)-i >= 8; i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		c, q := w^(','*ones), w^('"'*ones)
		// A byte of c or q is zero where w has a delimiter; the lowest
		// flagged byte is exact (a borrow only flags bytes above it).
		if m := ((c-ones)&^c | (q-ones)&^q) & highs; m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(b) && b[i] != ',' && b[i] != '"'; i++ {
	}
	return i
}

// validUTF8 is utf8.Valid, faster on text that is mostly ASCII with a few
// other letters (utf8.Valid goes a byte at a time after the first): it
// skips to the first byte that is not ASCII 8 bytes at a time.
func validUTF8(b []byte) bool {
	for i := 0; i < len(b); {
		if len(b)-i >= 8 {
			if m := binary.LittleEndian.Uint64(b[i:]) & highs; m == 0 {
				i += 8
				continue
			} else {
				i += bits.TrailingZeros64(m) / 8
			}
		}
		switch c := b[i]; {
		case c < utf8.RuneSelf:
			i++
		case c >= 0xc2 && c < 0xe0 && i+1 < len(b) && b[i+1]&0xc0 == 0x80: // 2 bytes: Latin letters, Cyrillic
			i += 2
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return false
			}
			i += size
		}
	}
	return true
}

// parse reads a record with quotes, which may span lines: encoding/csv's
// readRecord, unquoted fields copied into rec.
func (cr *csvReader) parse(line []byte) error {
	cr.rec, cr.ends = cr.rec[:0], cr.ends[:0]
	lineNo, col := cr.line, 1
	fail := func(err error, line, col int) error {
		return &csv.ParseError{StartLine: cr.recLine, Line: line, Column: col, Err: err}
	}
fields:
	for {
		if len(cr.ends) >= cr.maxColumns {
			return ErrTooManyColumns
		}
		if len(line) == 0 || line[0] != '"' {
			// Fields are short: a loop beats two calls to IndexByte.
			i := 0
			for i < len(line) && line[i] != ',' && line[i] != '"' {
				i++
			}
			if i < len(line) && line[i] == '"' {
				return fail(csv.ErrBareQuote, cr.line, col+i)
			}
			field := line[:i]
			if i == len(line) {
				field = field[:len(field)-lengthNL(field)]
				i = -1
			}
			cr.rec = append(cr.rec, field...)
			cr.ends = append(cr.ends, len(cr.rec))
			if i < 0 {
				break fields
			}
			line = line[i+1:]
			col += i + 1
			continue
		}
		line = line[1:]
		col++
		for {
			if i := bytes.IndexByte(line, '"'); i >= 0 {
				cr.rec = append(cr.rec, line[:i]...)
				line = line[i+1:]
				col += i + 1
				switch {
				case len(line) > 0 && line[0] == '"': // "" is a quote
					cr.rec = append(cr.rec, '"')
					line = line[1:]
					col++
				case len(line) > 0 && line[0] == ',': // the field's end
					line = line[1:]
					col++
					cr.ends = append(cr.ends, len(cr.rec))
					continue fields
				case lengthNL(line) == len(line): // the record's end
					cr.ends = append(cr.ends, len(cr.rec))
					break fields
				default:
					return fail(csv.ErrQuote, cr.line, col-1)
				}
			} else if len(line) > 0 {
				// The field goes on to the next line.
				cr.rec = append(cr.rec, line...)
				col += len(line)
				next, err := cr.readLine()
				if err != nil && err != io.EOF {
					return err
				}
				line = next
				if len(line) > 0 {
					lineNo++
					col = 1
				}
			} else {
				// The input ended inside a quoted field.
				return fail(csv.ErrQuote, lineNo, col)
			}
		}
	}
	cr.fields = cr.fields[:0]
	start := 0
	for _, end := range cr.ends {
		cr.fields = append(cr.fields, cr.rec[start:end:end])
		start = end
	}
	return nil
}
