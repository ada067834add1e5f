package export_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/function"
	"github.com/atlas-billing-export/atlas-billing-export/internal/layout"
	"github.com/atlas-billing-export/atlas-billing-export/internal/normalize"
	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

const (
	secOrg   = "5f1a2b3c4d5e6f7a8b9c0d1e"
	secInv   = "666acb8787ba43606905dcae"
	secToken = "d9ab638a801efe182f98ae3e18ea4bb47b9fda808a28a8c7de205bb0e94f7d71"
)

// hostileIDs are 24-character-ish ids carrying path, query, escape and
// control characters, and look-alikes of a valid id.
var hostileIDs = []string{
	"",
	"../" + secOrg[3:],
	"..%2f" + secOrg[5:],
	"%2e%2e%2f" + secOrg[9:],
	secOrg[:21] + "/..",
	secOrg[:12] + "/" + secOrg[13:],
	secOrg[:23] + "\\",
	secOrg[:23] + "?",
	secOrg[:23] + "#",
	secOrg[:23] + "\x00",
	secOrg[:23] + "\n",
	secOrg[:23] + " ",
	strings.ToUpper(secOrg),
	"５" + secOrg[3:], // a full-width digit: 24 bytes, 22 runes
	secOrg[:23],
	secOrg + "0",
	secOrg + "/../../admin",
	"http://127.0.0.1:1/x",
}

// hostileTokens are 64-character (or nearly) Cost Explorer tokens that
// would change the path they are put in.
var hostileTokens = []string{
	"",
	"../" + secToken[3:],
	secToken[:61] + "/..",
	"%2e%2e%2f" + secToken[9:],
	secToken[:32] + "/" + secToken[33:],
	secToken[:63] + ".",
	secToken[:63] + "?",
	secToken[:63] + "#",
	secToken[:63] + "\n",
	secToken[:63],
	secToken + "a",
}

// countingAtlasServer is a loopback server that counts every request and
// answers them as Atlas would for a valid one.
type countingAtlasServer struct {
	*httptest.Server
	mu    sync.Mutex
	paths []string
	// invoiceID is what the invoice list names.
	invoiceID string
}

func newCountingAtlasServer(t *testing.T) *countingAtlasServer {
	t.Helper()
	s := &countingAtlasServer{invoiceID: secInv}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.paths = append(s.paths, r.URL.EscapedPath())
		s.mu.Unlock()
		switch {
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/billing/costExplorer/usage"):
			w.Header().Set("Content-Type", "application/vnd.atlas.2023-01-01+json")
			w.WriteHeader(http.StatusAccepted)
			_ = json.NewEncoder(w).Encode(map[string]string{"token": secToken})
		case strings.HasSuffix(r.URL.Path, "/invoices"):
			w.Header().Set("Content-Type", "application/vnd.atlas.2023-01-01+json")
			_ = json.NewEncoder(w).Encode(map[string]any{"totalCount": 1, "results": []map[string]any{{
				"id": s.invoiceID, "orgId": secOrg, "statusName": "CLOSED",
				"startDate": "2024-06-01T00:00:00Z", "endDate": "2024-07-01T00:00:00Z",
			}}})
		case strings.HasSuffix(r.URL.Path, "/csv"):
			w.Header().Set("Content-Type", "application/vnd.atlas.2023-01-01+csv")
			_, _ = io.WriteString(w, strings.Join(atlassim.InvoiceColumns, ",")+"\n")
		default:
			http.Error(w, `{"error":404,"errorCode":"RESOURCE_NOT_FOUND"}`, http.StatusNotFound)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *countingAtlasServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.paths...)
}

// countingStore drains and counts what it is asked to store.
type countingStore struct {
	mu   sync.Mutex
	keys []string
}

func (c *countingStore) Bucket() string { return "" }

func (c *countingStore) Create(_ context.Context, key string, _ sink.Options) (sink.Upload, error) {
	c.mu.Lock()
	c.keys = append(c.keys, key)
	c.mu.Unlock()
	return discardUpload{}, nil
}

func (c *countingStore) ETag(context.Context, string) (string, error) { return "", nil }

func (c *countingStore) Open(context.Context, string) (io.ReadCloser, error) {
	return nil, sink.ErrNotFound
}

func (c *countingStore) Delete(context.Context, string) error { return nil }

type discardUpload struct{}

func (discardUpload) Write(p []byte) (int, error)  { return len(p), nil }
func (discardUpload) Sum() (string, int64)         { return "", 0 }
func (discardUpload) Commit() (sink.Object, error) { return sink.Object{}, nil }
func (discardUpload) Abort()                       {}

func (c *countingStore) stored() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.keys...)
}

func secExporter(t *testing.T) (*export.Exporter, *countingAtlasServer, *countingStore) {
	t.Helper()
	srv := newCountingAtlasServer(t)
	client, err := atlas.NewClient(atlas.WithBaseURL(srv.URL), atlas.WithRetry(atlas.RetryPolicy{MaxAttempts: 1}))
	if err != nil {
		t.Fatal(err)
	}
	lay, err := layout.New("exports/atlas")
	if err != nil {
		t.Fatal(err)
	}
	store := &countingStore{}
	return &export.Exporter{
		Atlas: client, Store: store, Layout: lay, Normalizer: normalize.Parquet{}, MaxAttempts: 3,
		Orgs: func(context.Context) ([]string, error) { return []string{secOrg}, nil },
		Now:  func() time.Time { return time.Date(2024, time.July, 15, 12, 0, 0, 0, time.UTC) },
	}, srv, store
}

// Every step refuses an id with path characters before it makes a request
// or names a key: a counting loopback server sees nothing, nothing is stored.
func TestHostileIDsReachNoURLAndNoKey(t *testing.T) {
	june := period.Month(2024, time.June)
	job := func(f func(*export.Job)) export.Job {
		j := export.Job{OrgID: secOrg, Period: june, MaxAttempts: 3}
		f(&j)
		return j
	}
	type step struct {
		name string
		run  func(context.Context, *export.Exporter) error
	}
	var steps []step
	for _, id := range hostileIDs {
		if id != "" { // an empty orgId or invoiceId means "not given"
			steps = append(steps,
				step{"plan orgId " + id, func(ctx context.Context, e *export.Exporter) error {
					_, err := e.Plan(ctx, export.Request{OrgID: id})
					return err
				}},
				step{"plan invoiceId " + id, func(ctx context.Context, e *export.Exporter) error {
					_, err := e.Plan(ctx, export.Request{OrgID: secOrg, InvoiceID: id})
					return err
				}},
				step{"fetch invoiceId " + id, func(ctx context.Context, e *export.Exporter) error {
					_, err := e.FetchInvoices(ctx, job(func(j *export.Job) { j.InvoiceID = id }))
					return err
				}},
			)
		}
		steps = append(steps,
			step{"plan orgIds " + id, func(ctx context.Context, e *export.Exporter) error {
				_, err := e.Plan(ctx, export.Request{OrgIDs: []string{secOrg, id}})
				return err
			}},
			step{"plan projects " + id, func(ctx context.Context, e *export.Exporter) error {
				_, err := e.Plan(ctx, export.Request{OrgID: secOrg, Projects: []string{id}})
				return err
			}},
			step{"plan clusters " + id, func(ctx context.Context, e *export.Exporter) error {
				_, err := e.Plan(ctx, export.Request{OrgID: secOrg, Clusters: []string{id}, GroupBy: "clusters"})
				return err
			}},
			step{"submit orgId " + id, func(ctx context.Context, e *export.Exporter) error {
				_, err := e.Submit(ctx, job(func(j *export.Job) { j.OrgID = id }))
				return err
			}},
			step{"poll orgId " + id, func(ctx context.Context, e *export.Exporter) error {
				_, err := e.Poll(ctx, job(func(j *export.Job) { j.OrgID, j.Token = id, secToken }))
				return err
			}},
			step{"fetch orgId " + id, func(ctx context.Context, e *export.Exporter) error {
				_, err := e.FetchInvoices(ctx, job(func(j *export.Job) { j.OrgID = id }))
				return err
			}},
			step{"event orgId " + id, func(ctx context.Context, e *export.Exporter) error {
				b, _ := json.Marshal(map[string]any{"action": "submit", "job": map[string]any{"orgId": id, "period": map[string]string{"month": "2024-06"}, "maxAttempts": 3}})
				ev, err := function.Decode("submit", b)
				if err != nil {
					return err
				}
				_, err = e.Submit(ctx, *ev.Job)
				return err
			}},
		)
	}
	for _, tok := range hostileTokens {
		steps = append(steps, step{"poll token " + tok, func(ctx context.Context, e *export.Exporter) error {
			_, err := e.Poll(ctx, job(func(j *export.Job) { j.Token = tok }))
			return err
		}})
	}

	exp, srv, store := secExporter(t)
	for _, s := range steps {
		t.Run(strings.ToValidUTF8(s.name, "?"), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := s.run(ctx, exp)
			if export.Name(err) != export.InputInvalid {
				t.Errorf("err = %v (%s), want %s", err, export.Name(err), export.InputInvalid)
			}
		})
	}
	if got := srv.requests(); len(got) != 0 {
		t.Errorf("the Atlas server saw %d requests for hostile ids: %q", len(got), got)
	}
	if got := store.stored(); len(got) != 0 {
		t.Errorf("stored %q for hostile ids", got)
	}

	// The control: valid ids do reach the server, so the zero above counts.
	if _, err := exp.Submit(context.Background(), job(func(*export.Job) {})); err != nil {
		t.Fatal(err)
	}
	if got := srv.requests(); len(got) != 1 || got[0] != "/api/atlas/v2/orgs/"+secOrg+"/billing/costExplorer/usage" {
		t.Errorf("a valid submit made requests %q", got)
	}
}

// The layout refuses the same ids, so no key is built from one.
func TestHostileIDsMakeNoKey(t *testing.T) {
	lay, err := layout.New("exports/atlas")
	if err != nil {
		t.Fatal(err)
	}
	june := period.Month(2024, time.June)
	for _, id := range hostileIDs {
		if k, err := lay.Usage(id, june); err == nil {
			t.Errorf("Usage(%q) = %q", id, k)
		}
		if k, err := lay.Invoice(id, june, secInv); err == nil {
			t.Errorf("Invoice(org %q) = %q", id, k)
		}
		if k, err := lay.Invoice(secOrg, june, id); err == nil {
			t.Errorf("Invoice(invoice %q) = %q", id, k)
		}
	}
}

// Atlas's answers are not trusted either: an invoice id with path
// characters in the invoice list is never put in a URL or a key.
func TestHostileInvoiceIDFromAtlas(t *testing.T) {
	for _, id := range hostileIDs {
		t.Run(strings.ToValidUTF8(id, "?"), func(t *testing.T) {
			exp, srv, store := secExporter(t)
			srv.invoiceID = id
			j := export.Job{OrgID: secOrg, Period: period.Month(2024, time.June), MaxAttempts: 3}
			_, err := exp.FetchInvoices(context.Background(), j)
			if err == nil {
				t.Fatal("an invoice with a hostile id was fetched")
			}
			if name := export.Name(err); name != export.AtlasError {
				t.Errorf("err = %v (%s), want %s", err, name, export.AtlasError)
			}
			for _, p := range srv.requests() {
				if !strings.HasSuffix(p, "/orgs/"+secOrg+"/invoices") {
					t.Errorf("request to %s after Atlas listed invoice %q", p, id)
				}
			}
			if got := store.stored(); len(got) != 0 {
				t.Errorf("stored %q", got)
			}
		})
	}
	// The control: the valid id is fetched and stored.
	exp, srv, store := secExporter(t)
	res, err := exp.FetchInvoices(context.Background(), export.Job{OrgID: secOrg, Period: period.Month(2024, time.June), MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	// The raw invoice and its normalized line items, from one download,
	// and the month's manifest.
	if len(res.Objects) != 2 || len(store.stored()) != 3 || len(srv.requests()) != 2 {
		t.Errorf("valid invoice: objects %v, stored %q, requests %q", res.Objects, store.stored(), srv.requests())
	}
}
