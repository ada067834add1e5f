package atlas_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

// A report served as a .csv.gz file comes out of DownloadReport as the CSV;
// a gzip stream cut short is a broken stream, not a short CSV.
func TestSimReportDownloadGzip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		faults []atlassim.Fault
		check  func(t *testing.T, s *sim, inv string, rc io.ReadCloser)
	}{
		{
			name:  "whole",
			check: func(t *testing.T, s *sim, inv string, rc io.ReadCloser) { wantFocus(t, s, inv, rc) },
		},
		{
			name:   "cut short",
			faults: []atlassim.Fault{{Op: atlassim.OpDownloadReport, Kind: atlassim.Truncate, After: 300}},
			check: func(t *testing.T, _ *sim, _ string, rc io.ReadCloser) {
				defer rc.Close()
				n, err := io.Copy(io.Discard, rc)
				if !atlas.IsStreamBroken(err) || !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("read %d bytes, then %v; want a broken stream", n, err)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startSim(t, false, atlassim.Config{ReportProcessingTime: -1, ReportGzip: true})
			for _, f := range tc.faults {
				s.Inject(f)
			}
			c := s.client(t, schemes[0])
			inv := s.Invoices(simOrg)[0].ID
			rc, err := c.DownloadReport(ctxTimeout(t, 10*time.Second), readyReport(t, c, inv))
			if err != nil {
				t.Fatalf("DownloadReport: %v", err)
			}
			tc.check(t, s, inv, rc)
		})
	}
}

// Bytes that start like gzip but are not: a broken stream, whether the header
// or the data is bad; a plain file that happens to be short passes through.
func TestDownloadReportBadGzip(t *testing.T) {
	t.Parallel()
	var good bytes.Buffer
	zw := gzip.NewWriter(&good)
	zw.Write(bytes.Repeat([]byte("a,b,c\n"), 1000))
	zw.Close()
	corrupt := bytes.Clone(good.Bytes())
	corrupt[len(corrupt)-6] ^= 0xff // the CRC-32 of the trailer

	for _, tc := range []struct {
		name, body string
		want       string // "" : read without error, this content
		broken     bool
	}{
		{name: "bad header", body: "\x1f\x8b\x00junk", broken: true},
		{name: "bad checksum", body: string(corrupt), broken: true},
		{name: "one byte, not gzip", body: "x", want: "x"},
		{name: "empty", body: "", want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/gzip")
				io.WriteString(w, tc.body)
			}))
			t.Cleanup(srv.Close)
			c, err := atlas.NewClient(atlas.WithBaseURL("http://127.0.0.1:1"), atlas.WithServiceAccount("id", "secret"))
			if err != nil {
				t.Fatal(err)
			}
			rc, err := c.DownloadReport(ctxTimeout(t, 10*time.Second), atlas.Report{DownloadURL: srv.URL + "/invoice_focus.csv.gz?X-Amz-Signature=s"})
			var got []byte
			if err == nil {
				got, err = io.ReadAll(rc)
				rc.Close()
			}
			if tc.broken {
				if !atlas.IsStreamBroken(err) {
					t.Fatalf("err = %v, want a broken stream", err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
