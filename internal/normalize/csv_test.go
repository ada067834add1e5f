package normalize

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

// chunks returns at most n bytes per Read, as a network body does.
type chunks struct {
	r io.Reader
	n int
}

func (c *chunks) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

// Bounds small enough for the fuzzer to reach.
const (
	fuzzMaxRecord  = 300
	fuzzMaxColumns = 12
)

// FuzzCSVReader holds csvReader to encoding/csv as the oracle: on any input,
// read in chunks of any size from a first buffer of any size, the same
// records, then the same end: io.EOF, or the same *csv.ParseError (kind,
// lines, column). The intended differences: a leading byte order mark is
// skipped (the oracle reads the input without it), and a record over the
// bounds is ErrRecordTooLarge or ErrTooManyColumns where the oracle reads
// it (or fails in it).
func FuzzCSVReader(f *testing.F) {
	for _, s := range []string{
		"", "\n", "a", "a,b\nc,d\n", "a,b\r\nc,d", "a\r", "\r\n\r\n", "a,\"b\nc\",d\n", "\"a\"\"b\",c\n",
		"a\"b\n", "\"a\"b\n", "\"abc", "\"a\r\nb\"\r\n", "a,b\nc\n", "\xef\xbb\xbfh1,h2\n1,2\n", " \"a\"\n",
		strings.Repeat("x,", 20) + "\n", "\"" + strings.Repeat("y", 400) + "\"\n", "a\rb,c\n", "\"\"\n\"\",\"\"\n",
		// Errors after other fields and lines: their line and column.
		"a,bc,d\"e\n", "ab,\"c\"d\n", "\"a\"\"b\"c\n", "x\n\"a\nb\"c\n", "x\ny,\"a\nbc", "\"a\",b,c\"\n", "h\n\r",
	} {
		f.Add([]byte(s), uint8(7), uint8(5), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk, size uint8, fixed bool) {
		if validUTF8(data) != utf8.Valid(data) {
			t.Fatalf("validUTF8(%q) = %v, utf8.Valid says otherwise", data, !utf8.Valid(data))
		}
		want := 0
		if !fixed {
			want = -1
		}
		oracle := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))))
		oracle.FieldsPerRecord = want
		var src io.Reader = &chunks{bytes.NewReader(data), int(chunk)%64 + 1}
		if chunk%2 == 1 {
			src = iotest.DataErrReader(src) // the last bytes come with io.EOF, as from many bodies
		}
		cr := newCSVReaderSize(src, want, int(size)%32+4, fuzzMaxRecord, fuzzMaxColumns)
		for n := 0; ; n++ {
			if n > len(data)+1 {
				t.Fatal("more records than bytes")
			}
			wantRec, wantErr := oracle.Read()
			got, err := cr.Read()
			if errors.Is(err, ErrRecordTooLarge) || errors.Is(err, ErrTooManyColumns) {
				if wantErr == nil && errors.Is(err, ErrTooManyColumns) && len(wantRec) <= fuzzMaxColumns {
					t.Fatalf("record %d: %v, but it has %d fields", n, err, len(wantRec))
				}
				if wantErr == io.EOF {
					t.Fatalf("record %d: %v, but the oracle read no record", n, err)
				}
				return
			}
			if (err == nil) != (wantErr == nil) {
				t.Fatalf("record %d: err %v, oracle %v", n, err, wantErr)
			}
			if err != nil {
				var pe, wpe *csv.ParseError
				switch {
				case err == io.EOF && wantErr == io.EOF:
				case errors.As(err, &pe) && errors.As(wantErr, &wpe):
					if *pe != *wpe {
						t.Fatalf("record %d: %v, oracle %v", n, err, wantErr)
					}
				default:
					t.Fatalf("record %d: %v, oracle %v", n, err, wantErr)
				}
				return
			}
			if len(got) != len(wantRec) {
				t.Fatalf("record %d: %q, oracle %q", n, got, wantRec)
			}
			for i := range got {
				if string(got[i]) != wantRec[i] {
					t.Fatalf("record %d: %q, oracle %q", n, got, wantRec)
				}
			}
			if len(got) > fuzzMaxColumns {
				t.Fatalf("record %d: %d fields, over the bound", n, len(got))
			}
		}
	})
}

func TestCSVReaderBounds(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		err  error // after the first record
		eof  bool  // the last bytes come with io.EOF
	}{
		{"a record at the size bound", "h\n" + strings.Repeat("x", MaxRecordBytes-1) + "\n", nil, false},
		{"a line over it", "h\n" + strings.Repeat("x", MaxRecordBytes) + "\n", ErrRecordTooLarge, false},
		{"a last line at the bound", "h\n" + strings.Repeat("x", MaxRecordBytes), nil, false},
		{"a last line over it", "h\n" + strings.Repeat("x", MaxRecordBytes+1), ErrRecordTooLarge, false},
		{"a last line over it, ending with io.EOF", "h\n" + strings.Repeat("x", MaxRecordBytes+1), ErrRecordTooLarge, true},
		{"a last lone CR", "h\n\r", io.EOF, false},
		{"a quoted field over it", "h\n\"" + strings.Repeat("x\n", MaxRecordBytes/2) + "\"\n", ErrRecordTooLarge, false},
		{"columns at the bound", "h\n" + strings.Repeat(",", MaxColumns-1) + "\n", nil, false},
		{"columns over it", "h\n" + strings.Repeat(",", MaxColumns) + "\n", ErrTooManyColumns, false},
		{"quoted columns over it", "h\n" + strings.Repeat(`"",`, MaxColumns) + "\n", ErrTooManyColumns, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := iotest.HalfReader(strings.NewReader(tc.in))
			if tc.eof {
				src = iotest.DataErrReader(src)
			}
			cr := newCSVReader(src, -1)
			if _, err := cr.Read(); err != nil {
				t.Fatal(err)
			}
			_, err := cr.Read()
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if len(cr.buf) > MaxRecordBytes+readSize {
				t.Errorf("buffer grew to %d bytes", len(cr.buf))
			}
		})
	}
}

// TestCSVReaderOneLineQuoted holds splitQuoted to what its comment
// promises: a record of one line with quotes is read in place (it reports
// true) with encoding/csv's fields, and any other record is left to parse.
func TestCSVReaderOneLineQuoted(t *testing.T) {
	for _, tc := range []struct {
		in  string
		one bool // splitQuoted reads it
	}{
		{`"a"`, true},
		{`"a",b` + "\n", true},
		{`a,"b"`, true},
		{`,"a"`, true},
		{`"a",`, true},
		{`"a",,"b",`, true},
		{`"q",ab,cdefghij,"x"`, true}, // a comma in a word of 8 bytes
		{`"q",abcdefg,hijklmn,opqrstu`, true},
		{`"a""b",c`, true},
		{`"a""b""c","""",d` + "\r\n", true},
		{`"a,b",c` + "\n", true},
		{`"ab`, false},        // no closing quote: over lines, or an error
		{`"a"b,c`, false},     // a quote in a quoted field
		{`ab"c,d`, false},     // a bare quote
		{`abcdefgh"i`, false}, // one after a word of 8 bytes
	} {
		t.Run(tc.in, func(t *testing.T) {
			cr := newCSVReader(strings.NewReader(""), -1)
			line := []byte(strings.TrimRight(tc.in, "\r\n") + "\n") // as readLine gives it
			if got := cr.splitQuoted(line); got != tc.one {
				t.Fatalf("splitQuoted = %v, want %v", got, tc.one)
			}
			want, wantErr := csv.NewReader(strings.NewReader(tc.in)).Read()
			got, err := newCSVReader(strings.NewReader(tc.in), -1).Read()
			if (err == nil) != (wantErr == nil) {
				t.Fatalf("err %v, encoding/csv %v", err, wantErr)
			}
			if tc.one {
				// The fields splitQuoted read, then Read's.
				for _, rec := range [][][]byte{cr.fields, got} {
					if len(rec) != len(want) {
						t.Fatalf("%q, encoding/csv %q", rec, want)
					}
					for i := range rec {
						if string(rec[i]) != want[i] {
							t.Fatalf("%q, encoding/csv %q", rec, want)
						}
					}
				}
			}
		})
	}
}

// TestIndexDelim compares the 8-bytes-at-a-time search with a plain one,
// a delimiter at each place of a word and of the tail.
func TestIndexDelim(t *testing.T) {
	plain := func(b []byte) int {
		if i := bytes.IndexAny(b, `,"`); i >= 0 {
			return i
		}
		return len(b)
	}
	base := []byte("SabcdefghijklmnopqrstuvwxyzSTUVW\x00\x7f\x80\xff\xc3\xa9")
	for n := 0; n <= len(base); n++ {
		for _, d := range []byte{0, ',', '"'} {
			for at := 0; at < max(n, 1); at++ {
				b := bytes.Clone(base[:n])
				if d != 0 && at < n {
					b[at] = d
				}
				if got, want := indexDelim(b), plain(b); got != want {
					t.Fatalf("indexDelim(%q) = %d, want %d", b, got, want)
				}
			}
		}
	}
}

// TestCSVReaderAllocs holds csvReader to what its comment promises: records
// of the same shape, quoted or not, cost no allocation once the first is read.
func TestCSVReaderAllocs(t *testing.T) {
	for _, lines := range []string{
		"a,bc,def\n",
		`"a""b",c,"d,e"` + "\n",
		`"ab",c` + "\n",
		// A long field with "" then a short one: the first buffer serves both.
		`"a""bcdefghijklmnop""",q` + "\n" + `"r""s",t` + "\n",
	} {
		t.Run(lines, func(t *testing.T) {
			n := strings.Count(lines, "\n")
			cr := newCSVReader(strings.NewReader(strings.Repeat(lines, 200)), 0)
			read := func() {
				for range n {
					if _, err := cr.Read(); err != nil {
						t.Fatal(err)
					}
				}
			}
			read()
			if n := testing.AllocsPerRun(100, read); n != 0 {
				t.Errorf("%v allocations per record", n)
			}
		})
	}
}
