package export

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
)

// Manifest records what the export wrote for one org and month (one job):
// one small JSON object at layout.Manifest's key,
// PREFIX/_manifests/org_id=ORG/billing_month=YYYY-MM/manifest.json. The
// checksum and row count of an object are known only once its body has
// streamed, after the object was started at its final key, so they are
// kept here. Each step that writes objects reads it, updates it and writes
// it back (unless nothing changed); the steps of a job run one after the
// other. Read it with Exporter.Manifest.
type Manifest struct {
	Version      int     `json:"version"` // ManifestVersion
	OrgID        string  `json:"orgId"`
	BillingMonth string  `json:"billingMonth"` // YYYY-MM, the job's
	Objects      []Entry `json:"objects"`      // sorted by key
}

// ManifestVersion is the format of the Manifest written.
const ManifestVersion = 1

// Entry is one object written, as it was when written.
type Entry struct {
	Key    string `json:"key"`
	SHA256 string `json:"sha256"` // hex
	Bytes  int64  `json:"bytes"`
	Rows   int64  `json:"rows"` // data rows, headers excluded (a raw file: its normalized rows)
	// ETag is the object's entity tag when written (a folder: the file's
	// size and modification time): the skip rule writes an object again
	// if its key holds another.
	ETag       string `json:"etag"`
	Source     string `json:"source"` // atlas-cost-explorer, atlas-invoice-csv or atlas-focus
	Normalized bool   `json:"normalized,omitempty"`
	// The invoice an object was made from, as Atlas listed it: its id, and
	// for the invoice CSV and its line items its status and "updated" time
	// (RFC 3339). An invoice whose id and updated time match need not be
	// downloaded again.
	InvoiceID      string `json:"invoiceId,omitempty"`
	InvoiceStatus  string `json:"invoiceStatus,omitempty"`
	InvoiceUpdated string `json:"invoiceUpdated,omitempty"`
	// Reconciled is, for an invoice's CSV, whether its line items add up
	// to the invoice's totals (false too when they could not be read; see
	// Reconciliation).
	Reconciled *bool `json:"reconciled,omitempty"`
	// Totals are, for an invoice's CSV, the invoice's totals as Atlas
	// listed them: what its line items are reconciled with.
	Totals *Totals `json:"totals,omitempty"`
	// LineItems is, for an invoice's CSV whose line items were read, their
	// exact sum (decimal text): with Totals it makes the Reconciliation
	// again when the invoice is not downloaded again.
	LineItems string `json:"lineItems,omitempty"`
}

// Object is the entry of key.
func (m *Manifest) Object(key string) (Entry, bool) {
	i, ok := slices.BinarySearchFunc(m.Objects, key, func(e Entry, k string) int { return cmp.Compare(e.Key, k) })
	if !ok {
		return Entry{}, false
	}
	return m.Objects[i], true
}

// Invoice is the entry of an invoice's CSV as Atlas sent it.
func (m *Manifest) Invoice(id string) (Entry, bool) {
	for _, e := range m.Objects {
		if e.InvoiceID == id && e.Source == sourceInvoice && !e.Normalized {
			return e, true
		}
	}
	return Entry{}, false
}

func (m *Manifest) put(e Entry) {
	i, ok := slices.BinarySearchFunc(m.Objects, e.Key, func(x Entry, k string) int { return cmp.Compare(x.Key, k) })
	if ok {
		m.Objects[i] = e
	} else {
		m.Objects = slices.Insert(m.Objects, i, e)
	}
}

func (m *Manifest) remove(key string) {
	m.Objects = slices.DeleteFunc(m.Objects, func(e Entry) bool { return e.Key == key })
}

// Sources of what the export writes (the objects' "source" metadata).
const (
	sourceUsage   = "atlas-cost-explorer"
	sourceInvoice = "atlas-invoice-csv"
	sourceFocus   = "atlas-focus"
)

// updated is Atlas's updated time of an invoice for the manifest.
func updated(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// jobManifest is the manifest of a step's job, read when first needed and
// written back by done.
type jobManifest struct {
	e     *Exporter
	orgID string
	p     period.Period
	m     *Manifest
	was   []byte // as read
}

func (j *jobManifest) get(ctx context.Context) (*Manifest, error) {
	if j.m == nil {
		m, was, err := j.e.readManifest(ctx, j.orgID, j.p)
		if err != nil {
			return nil, err
		}
		j.m, j.was = m, was
	}
	return j.m, nil
}

// done writes the manifest if it was read and changed. A step calls it
// whether or not it failed: what was written before a failure is recorded,
// and skipped next time.
func (j *jobManifest) done(ctx context.Context, err *error) {
	if j.m == nil {
		return
	}
	if werr := j.e.writeManifest(ctx, j.m, j.was); werr != nil && *err == nil {
		*err = wrap(werr, fmt.Sprintf("org %s, %s: writing the manifest", j.orgID, j.p))
	}
}

// Manifest reads the manifest of an org's month; one that was never
// written is empty (no objects).
func (e *Exporter) Manifest(ctx context.Context, orgID string, p period.Period) (*Manifest, error) {
	m, _, err := e.readManifest(ctx, orgID, p)
	return m, err
}

// readManifest also returns the bytes read, to tell whether it changed. A
// manifest that is not one (not JSON, another version) is started again:
// it only spares work, and the objects it would have spared are written.
func (e *Exporter) readManifest(ctx context.Context, orgID string, p period.Period) (*Manifest, []byte, error) {
	m := &Manifest{Version: ManifestVersion, OrgID: orgID, BillingMonth: p.Label(), Objects: []Entry{}}
	key, err := e.Layout.Manifest(orgID, p)
	if err != nil {
		return nil, nil, &Error{Name: InputInvalid, Msg: "manifest key", Err: err}
	}
	rc, err := e.Store.Open(ctx, key)
	if errors.Is(err, sink.ErrNotFound) {
		return m, nil, nil
	}
	if err != nil {
		return nil, nil, storageError("reading "+key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxManifestBytes+1))
	if err != nil {
		return nil, nil, storageError("reading "+key, err)
	}
	var got Manifest
	if len(b) > maxManifestBytes || json.Unmarshal(b, &got) != nil || got.Version != ManifestVersion || got.OrgID != orgID || got.BillingMonth != p.Label() ||
		!slices.IsSortedFunc(got.Objects, func(a, b Entry) int { return cmp.Compare(a.Key, b.Key) }) {
		e.log(orgID, p, "manifest").Warn("manifest not readable, written anew", "key", key)
		return m, nil, nil
	}
	m.Objects = got.Objects
	return m, b, nil
}

// maxManifestBytes bounds a manifest read: a month has a few dozen objects.
const maxManifestBytes = 1 << 20

// writeManifest writes m unless it is what was read (was; nil when there
// was none, and then an empty m is not written either).
func (e *Exporter) writeManifest(ctx context.Context, m *Manifest, was []byte) error {
	if was == nil && len(m.Objects) == 0 {
		return nil
	}
	b, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	b = append(b, '\n')
	if bytes.Equal(b, was) {
		return nil
	}
	p, _ := period.Parse(m.BillingMonth, time.Time{})
	key, err := e.Layout.Manifest(m.OrgID, p)
	if err != nil {
		return &Error{Name: InputInvalid, Msg: "manifest key", Err: err}
	}
	u, err := e.Store.Create(ctx, key, sink.Options{ContentType: jsonType})
	if err == nil {
		if _, err = u.Write(b); err != nil {
			u.Abort()
		} else {
			_, err = u.Commit()
		}
	}
	if err != nil {
		return storageError("writing "+key, err)
	}
	return nil
}
