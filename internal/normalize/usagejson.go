package normalize

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/atlas-billing-export/atlas-billing-export/internal/tally"
)

// UsageJSON reads the JSON form of a Cost Explorer result from r,
// {"usageDetails": [{"invoiceId", "organizationId", "organizationName",
// "service", "usageAmount", "usageDate"}, ...]}, and writes to w what Usage
// writes from the CSV form: the header UsageColumns, one record per usage
// detail, the same tally.Stats. Keys are found as Usage finds header names
// ("usageAmount" is "Usage Amount"), others are left out; a value may be a
// string, a number (kept as written, so 1018.39 stays exact), a boolean or
// null (empty). It streams one detail at a time, whatever the array's
// length; a detail over MaxRecordBytes is a tally.Warning, stopped before the
// decoder holds more than a few times that.
func UsageJSON(w io.Writer, r io.Reader) (tally.Stats, error) {
	const where = "normalize: usage JSON"
	ur := &usageReader{br: &boundedReader{r: r, limit: 4 * MaxRecordBytes}}
	ur.dec = json.NewDecoder(ur.br)
	ur.dec.UseNumber()
	st, err := ur.normalize(w)
	var se *json.SyntaxError
	switch {
	case err == nil:
		return st, nil
	case errors.As(err, new(*tally.Warning)):
		return st, err
	case errors.Is(err, ErrRecordTooLarge):
		return st, &tally.Warning{Name: tally.TooLargeWarning, Msg: where, Err: err}
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, errTruncated):
		return st, &tally.Warning{Name: tally.SyntaxWarning, Msg: where, Err: err}
	}
	return st, fmt.Errorf("%s: %w", where, err)
}

var errTruncated = errors.New("the JSON ends early")

// usageReader holds the state of one UsageJSON.
type usageReader struct {
	br   *boundedReader
	dec  *json.Decoder
	rec  [][]byte // the detail's values, in usageColumns' order
	item int64    // details read
}

// usageKeys finds a key's column in usageColumns, by nameKey.
var usageKeys = func() map[string]int {
	m := map[string]int{}
	for i, c := range usageColumns {
		for _, n := range append([]string{c.atlas}, c.also...) {
			m[nameKey(n)] = i
		}
	}
	return m
}()

func (ur *usageReader) normalize(w io.Writer) (tally.Stats, error) {
	var st tally.Stats
	m := newMapping(usageColumns, UsageColumns, false) // a column per field, in order
	ur.rec = make([][]byte, len(usageColumns))
	if err := ur.delim('{', "the result is not a JSON object"); err != nil {
		return st, err
	}
	out := newTable(w, usageFile())
	defer out.stop()
	found := false
	for ur.dec.More() {
		ur.bound()
		key, err := ur.key()
		if err != nil {
			return st, err
		}
		if nameKey(key) != "usagedetails" || found {
			if err := ur.skip(); err != nil {
				return st, err
			}
			continue
		}
		found = true
		if err := ur.details(out, m, &st); err != nil {
			return st, err
		}
	}
	if err := ur.delim('}', ""); err != nil {
		return st, err
	}
	if _, err := ur.dec.Token(); err != io.EOF {
		return st, &tally.Warning{Name: tally.SyntaxWarning, Msg: "normalize: usage JSON: more after the result object"}
	}
	if !found {
		return st, &tally.Warning{Name: tally.LayoutWarning, Msg: `normalize: usage JSON: no "usageDetails"`}
	}
	if err := out.close(); err != nil {
		return st, err
	}
	st.Services = m.services()
	return st, nil
}

// details reads the usageDetails array (or null) and writes its records.
func (ur *usageReader) details(out *table, m *mapping, st *tally.Stats) error {
	ur.bound()
	tok, err := ur.token()
	if err != nil || tok == nil {
		return err
	}
	if tok != json.Delim('[') {
		return &tally.Warning{Name: tally.LayoutWarning, Msg: `normalize: usage JSON: "usageDetails" is not an array`}
	}
	for ur.dec.More() {
		ur.item++
		if err := ur.detail(); err != nil {
			return err
		}
		// encoding/json decodes invalid UTF-8 as U+FFFD.
		if err := m.row(out, 0, ur.rec, true, st); err != nil {
			return &tally.Warning{Name: tally.ValueWarning, Msg: fmt.Sprintf("normalize: usage JSON: usage detail %d", ur.item), Err: err}
		}
		if err := out.end(); err != nil {
			return err
		}
	}
	return ur.delim(']', "")
}

// detail reads one usage detail into rec.
func (ur *usageReader) detail() error {
	start := ur.bound()
	for i := range ur.rec {
		ur.rec[i] = nil
	}
	if err := ur.delim('{', fmt.Sprintf("usage detail %d is not an object", ur.item)); err != nil {
		return err
	}
	set := make([]bool, len(ur.rec))
	for ur.dec.More() {
		key, err := ur.key()
		if err != nil {
			return err
		}
		tok, err := ur.token()
		if err != nil {
			return err
		}
		col, ok := usageKeys[nameKey(key)]
		var v string
		switch t := tok.(type) {
		case string:
			v = t
		case json.Number:
			v = string(t)
		case bool:
			v = fmt.Sprint(t)
		case json.Delim:
			if ok {
				return &tally.Warning{Name: tally.LayoutWarning, Msg: fmt.Sprintf("normalize: usage JSON: usage detail %d: %s is an object or an array", ur.item, tally.Shown(key))}
			}
			if err := ur.skipRest(); err != nil {
				return err
			}
		}
		if ok && !set[col] { // a key twice: the first
			ur.rec[col], set[col] = []byte(v), true
		}
	}
	if err := ur.delim('}', ""); err != nil {
		return err
	}
	if ur.dec.InputOffset()-start > MaxRecordBytes {
		return ErrRecordTooLarge
	}
	return nil
}

// bound lets the decoder read a few times MaxRecordBytes past where it is:
// enough for any value of at most MaxRecordBytes whatever it has buffered
// (its buffer grows to about twice its largest value), not enough to fill
// memory. It returns where the decoder is.
func (ur *usageReader) bound() int64 {
	at := ur.dec.InputOffset()
	ur.br.limit = at + 4*MaxRecordBytes
	return at
}

func (ur *usageReader) token() (json.Token, error) {
	tok, err := ur.dec.Token()
	if err == io.EOF {
		return nil, errTruncated
	}
	return tok, err
}

func (ur *usageReader) key() (string, error) {
	tok, err := ur.token()
	if err != nil {
		return "", err
	}
	key, _ := tok.(string) // the decoder allows only a string here
	return key, nil
}

// delim reads d; anything else is a Layout warning saying what.
func (ur *usageReader) delim(d json.Delim, what string) error {
	tok, err := ur.token()
	if err != nil {
		return err
	}
	if tok != d {
		return &tally.Warning{Name: tally.LayoutWarning, Msg: "normalize: usage JSON: " + what}
	}
	return nil
}

// skip reads a value whole, bounded like a detail.
func (ur *usageReader) skip() error {
	ur.bound()
	tok, err := ur.token()
	if err != nil {
		return err
	}
	if _, ok := tok.(json.Delim); ok {
		return ur.skipRest()
	}
	return nil
}

// skipRest reads to the end of the object or array just opened.
func (ur *usageReader) skipRest() error {
	for depth := 1; depth > 0; {
		tok, err := ur.token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
	return nil
}

// boundedReader fails reads past limit with ErrRecordTooLarge.
type boundedReader struct {
	r        io.Reader
	n, limit int64 // bytes read; the bound
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.n >= b.limit {
		return 0, ErrRecordTooLarge
	}
	p = p[:min(int64(len(p)), b.limit-b.n)]
	n, err := b.r.Read(p)
	b.n += int64(n)
	return n, err
}
