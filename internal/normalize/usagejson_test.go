package normalize_test

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"maps"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/normalize"
	"github.com/atlas-billing-export/atlas-billing-export/internal/tally"
)

// The JSON form of a result normalizes to the very bytes and Stats of its
// CSV form.
func TestUsageJSONMatchesCSV(t *testing.T) {
	sim, err := atlassim.New(atlassim.Config{InvoiceRows: 3000, Now: func() time.Time { return simNow }})
	if err != nil {
		t.Fatal(err)
	}
	org := atlassim.DefaultOrgs[0].ID
	q := atlassim.UsageQuery{StartDate: "2024-06-01", EndDate: "2024-07-01"}
	var csvRaw, jsonRaw, fromCSV, fromJSON bytes.Buffer
	if err := sim.WriteUsageCSV(&csvRaw, org, q); err != nil {
		t.Fatal(err)
	}
	if err := sim.WriteUsageJSON(&jsonRaw, org, q); err != nil {
		t.Fatal(err)
	}
	want, err := normalize.Usage(&fromCSV, &csvRaw)
	if err != nil {
		t.Fatal(err)
	}
	got, err := normalize.UsageJSON(&fromJSON, &jsonRaw)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fromJSON.Bytes(), fromCSV.Bytes()) {
		t.Errorf("from JSON:\n%q\nfrom CSV:\n%q", records(t, fromJSON.Bytes())[:3], records(t, fromCSV.Bytes())[:3])
	}
	if got.Rows < 1000 || got.Rows != want.Rows || got.Amount.String() != want.Amount.String() || len(got.Services) < 2 ||
		!maps.EqualFunc(got.Services, want.Services, func(a, b tally.Sum) bool { return a.String() == b.String() }) {
		t.Errorf("stats from JSON %+v, from CSV %+v", got, want)
	}
}

func TestUsageJSON(t *testing.T) {
	const spec = `{"invoiceId":"iid","organizationId":"oid","organizationName":"Test 2","service":"Clusters","usageAmount":1018.39,"usageDate":"2024-06-01"}`
	for _, tc := range []struct {
		name     string
		in       string
		want     string // the rows, as CSV
		services map[string]string
		err      string
		warning  string
	}{
		{name: "the public clients' fields", in: `{"usageDetails":[` + spec + `]}`,
			want: "iid,oid,Test 2,,,,,Clusters,2024-06-01,1018.39\n", services: map[string]string{"Clusters": "1018.39"}},
		{name: "a fraction of a cent", in: `{"usageDetails":[{"usageAmount":6.035E-7}]}`, err: `usage_amount "6.035E-7": has 10 decimals`, warning: tally.ValueWarning},
		{
			name: "keys in any case and order, more keys, values of every kind",
			in: `{"x":{"a":[1,{"b":2}]}, "usageDetails":[
				{"UsageAmount":"1E-2","SERVICE":"Data Transfer","usage_date":"06/02/2024","extra":{"k":[1,2]},"clusterName":null,"projectName":true,"invoiceId":"first","invoiceId":"second"},
				{"usageAmount":-12.5e0,"service":"Data Transfer","usageDate":"2024-06-03T10:00:00Z","organizationName":"Zürich \"Ödön\", Inc.\nAG"},
				{"usageAmount":"1,000.00"}
			], "after": "x"}`,
			want: "first,,,,true,,,Data Transfer,2024-06-02,0.01\n" +
				",,\"Zürich \"\"Ödön\"\", Inc.\nAG\",,,,,Data Transfer,2024-06-03,-12.5\n" +
				",,,,,,,,,1000\n",
			services: map[string]string{"Data Transfer": "-12.49", "": "1000.00"},
		},
		{
			// JSON numbers are read as their text, never as a float64.
			name: "money at the edges",
			in: `{"usageDetails":[{"service":"S","usageAmount":1234567890123456.78},{"service":"S","usageAmount":12.3400},` +
				`{"service":"S","usageAmount":-0.00},{"service":"S","usageAmount":90071992547409.93},{"service":"S","usageAmount":7}]}`,
			want:     ",,,,,,,S,,1234567890123456.78\n,,,,,,,S,,12.34\n,,,,,,,S,,0\n,,,,,,,S,,90071992547409.93\n,,,,,,,S,,7\n",
			services: map[string]string{"S": "1324639882670886.0500"},
		},
		{name: "no usage", in: `{"usageDetails":[]}`, services: nil},
		{name: "null usage", in: ` {"usageDetails":null} `, services: nil},
		{name: "not an object", in: `[` + spec + `]`, err: "not a JSON object", warning: tally.LayoutWarning},
		{name: "no usageDetails", in: `{"results":[` + spec + `]}`, err: `no "usageDetails"`, warning: tally.LayoutWarning},
		{name: "usageDetails not an array", in: `{"usageDetails":{}}`, err: "not an array", warning: tally.LayoutWarning},
		{name: "a detail not an object", in: `{"usageDetails":[1]}`, err: "usage detail 1 is not an object", warning: tally.LayoutWarning},
		{name: "an amount that is an object", in: `{"usageDetails":[{"usageAmount":{"value":1}}]}`, err: `"usageAmount" is an object`, warning: tally.LayoutWarning},
		{name: "an amount that is not a number", in: `{"usageDetails":[` + spec + `,{"usageAmount":"lots"}]}`, err: `usage detail 2: usage_amount "lots"`, warning: tally.ValueWarning},
		{name: "no amount", in: `{"usageDetails":[{"service":"Clusters"}]}`, err: `usage_amount "": is empty`, warning: tally.ValueWarning},
		{name: "truncated", in: `{"usageDetails":[` + spec, err: "ends early", warning: tally.SyntaxWarning},
		{name: "not JSON", in: `{"usageDetails":[` + spec + `,}]}`, err: "invalid character", warning: tally.SyntaxWarning},
		{name: "more after the result", in: `{"usageDetails":[]} {}`, err: "more after", warning: tally.SyntaxWarning},
		{name: "empty", in: ``, err: "ends early", warning: tally.SyntaxWarning},
		{name: "a detail over 1 MiB", in: `{"usageDetails":[` + spec + `,{"service":"` + strings.Repeat("x", normalize.MaxRecordBytes) + `","usageAmount":1}]}`,
			err: "over 1 MiB", warning: tally.TooLargeWarning},
		{name: "a key over the bound", in: `{"` + strings.Repeat("x", 5*normalize.MaxRecordBytes) + `":1}`, err: "over 1 MiB", warning: tally.TooLargeWarning},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			st, err := normalize.UsageJSON(&out, strings.NewReader(tc.in))
			if !wantErr(t, err, tc.err, tc.warning) {
				return
			}
			want, err := csv.NewReader(strings.NewReader(tc.want)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			recs := records(t, out.Bytes())
			if !slices.Equal(recs[0], normalize.UsageColumns) || !slices.EqualFunc(recs[1:], want, slices.Equal) {
				t.Errorf("rows:\n%q\nwant:\n%q", recs, want)
			}
			services := map[string]string{}
			for k, v := range st.Services {
				services[k] = v.String()
			}
			if len(services) != len(tc.services) || !maps.Equal(services, tc.services) && tc.services != nil {
				t.Errorf("services = %v, want %v", services, tc.services)
			}
			if st.Rows != int64(len(want)) {
				t.Errorf("Rows = %d", st.Rows)
			}
		})
	}
}

// usageStream writes {"usageDetails":[...]} with n details, the last with
// a service name of big bytes, without holding it.
func usageStream(w *io.PipeWriter, n int, big int) {
	var b bytes.Buffer
	b.WriteString(`{"usageDetails":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"invoiceId":"%024x","organizationId":"5f1a2b3c4d5e6f7a8b9c0d1e","organizationName":"Org","service":"S%d","usageAmount":%d.%02d,"usageDate":"2024-06-%02d"}`,
			i, i%7, i%1000, i%100, i%30+1)
		if b.Len() > 64<<10 {
			if _, err := w.Write(b.Bytes()); err != nil {
				return
			}
			b.Reset()
		}
	}
	if big > 0 {
		b.WriteString(`,{"usageAmount":1,"service":"`)
		chunk := strings.Repeat("x", 64<<10)
		for written := 0; written < big; written += len(chunk) {
			b.WriteString(chunk)
			if _, err := w.Write(b.Bytes()); err != nil {
				return
			}
			b.Reset()
		}
		b.WriteString(`"}`)
	}
	b.WriteString("]}")
	_, _ = w.Write(b.Bytes())
	w.Close()
}

// Memory stays flat whatever the array's length, and a detail of hundreds
// of MiB is refused before it is held. Not parallel: the heap is the
// process's.
func TestUsageJSONStreams(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	for _, tc := range []struct {
		name    string
		n, big  int
		warning string
	}{
		{"200,000 details", 200_000, 0, ""},
		{"then one of 256 MiB", 1000, 256 << 20, tally.TooLargeWarning},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr, pw := io.Pipe()
			go usageStream(pw, tc.n, tc.big)
			t.Cleanup(func() { pr.Close() })
			stop := heapPeak(t)
			var out countWriter
			st, err := normalize.UsageJSON(&out, pr)
			peak := stop()
			if w := tally.AsWarning(err); tc.warning != "" && (w == nil || w.Name != tc.warning) || tc.warning == "" && err != nil {
				t.Fatalf("err = %v, want warning %q", err, tc.warning)
			}
			t.Logf("%d rows, %d bytes out, heap peak %d KiB", st.Rows, out.n, peak>>10)
			if peak > 32<<20 {
				t.Errorf("heap peaked at %d MiB", peak>>20)
			}
			if tc.warning != "" {
				return
			}
			// Each service S0..S6 gets every seventh detail; the amounts
			// i%1000 + (i%100)/100 sum exactly.
			var cents int64
			for i := range tc.n {
				cents += int64(i%1000)*100 + int64(i%100)
			}
			if c, ok := st.Amount.Cents(); st.Rows != int64(tc.n) || !ok || c != cents || len(st.Services) != 7 {
				t.Errorf("stats: %d rows, amount %s, %d services; want %d rows, %d cents, 7 services", st.Rows, st.Amount, len(st.Services), tc.n, cents)
			}
		})
	}
}

// A usage detail may be as long as MaxRecordBytes, not a byte longer; a
// first key or leading whitespace of tens of MiB is refused having read a
// few MiB of it.
func TestUsageJSONBounds(t *testing.T) {
	detail := func(n int) string {
		head, tail := `{"service":"`, `","usageAmount":1}`
		return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
	}
	for _, tc := range []struct {
		name string
		size int
		ok   bool
	}{{"at the bound", normalize.MaxRecordBytes, true}, {"over it", normalize.MaxRecordBytes + 1, false}} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := normalize.UsageJSON(io.Discard, strings.NewReader(`{"usageDetails":[`+detail(tc.size)+`]}`))
			if w := tally.AsWarning(err); tc.ok && err != nil || !tc.ok && (w == nil || w.Name != tally.TooLargeWarning) {
				t.Fatalf("a detail of %d bytes: %v", tc.size, err)
			}
			if tc.ok && st.Rows != 1 {
				t.Errorf("Rows = %d, want 1", st.Rows)
			}
		})
	}

	const big = 32 << 20
	for name, parts := range map[string][]io.Reader{
		"a first key":        {strings.NewReader(`{"`), io.LimitReader(repeatReader('x'), big), strings.NewReader(`":1}`)},
		"leading whitespace": {io.LimitReader(repeatReader(' '), big), strings.NewReader(`{"usageDetails":[]}`)},
	} {
		src := &countReader{r: io.MultiReader(parts...)}
		_, err := normalize.UsageJSON(io.Discard, src)
		if w := tally.AsWarning(err); w == nil || w.Name != tally.TooLargeWarning {
			t.Fatalf("%s of %d MiB: %v, want %s", name, big>>20, err, tally.TooLargeWarning)
		}
		if src.n > 8*normalize.MaxRecordBytes {
			t.Errorf("%s of %d MiB: read %d MiB before refusing it", name, big>>20, src.n>>20)
		}
	}
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

type countReader struct {
	r io.Reader
	n int
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
