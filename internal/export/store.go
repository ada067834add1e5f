package export

import (
	"context"
	"errors"
	"io"
	"maps"

	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
	"github.com/atlas-billing-export/atlas-billing-export/internal/tally"
)

// Content types of what the export writes.
const (
	csvType     = "text/csv; charset=utf-8"
	parquetType = "application/vnd.apache.parquet"
	jsonType    = "application/json"
)

// pair is a file Atlas sent and the normalized form made of it: two
// objects that must agree, so they are written together.
type pair struct {
	raw, norm string // keys
	// meta is the S3 metadata of both objects (the normalized one is also
	// marked "normalized"); its invoice-status is part of the skip rule.
	meta map[string]string
	conv func(w io.Writer, r io.Reader) (tally.Stats, error)
	// entry is the manifest's record of the raw object, before its checksum:
	// source and invoice fields.
	entry Entry
	// settle, when set, completes the raw object's record from what the
	// stream gave (read: the normalized file was made) before it is
	// committed: an invoice's reconciliation.
	settle func(raw *Entry, st tally.Stats, read bool)
}

// stored is what storing a pair left: both objects, or the raw one and the
// warning why the normalized one could not be made.
type stored struct {
	raw   sink.Object
	norm  *sink.Object
	stats tally.Stats
	warn  *tally.Warning
}

// objects lists what was written.
func (s stored) objects() []sink.Object {
	if s.norm == nil {
		return []sink.Object{s.raw}
	}
	return []sink.Object{s.raw, *s.norm}
}

// storePair streams body to the raw key and, through p.conv in the same
// pass, to the normalized key: two uploads at their final keys, fed by one
// read of Atlas's response, memory bounded by their part buffers. Neither
// is committed before both streams ended cleanly; if either broke, both
// are aborted and both keys keep their previous objects. Then the raw
// object is committed first (Atlas's file is the record), and its
// normalized form after it; if that commit fails, the previous normalized
// object is deleted rather than left beside a raw file it was not made of.
// For the same reason a file conv cannot normalize (a warning) has its raw
// object written and the previous normalized object deleted. An object
// whose bytes and invoice status are those the manifest m records for its
// key, and which still has the ETag recorded, is skipped: not written again.
// m is updated with what was written.
func (e *Exporter) storePair(ctx context.Context, m *Manifest, body io.Reader, p pair) (stored, error) {
	if e.Normalizer == nil {
		return stored{}, &Error{Name: ConfigInvalid, Msg: "this function stores no files: it has no normalizer"}
	}
	if e.Progress != nil {
		body = &progressReader{r: body, key: p.raw, report: e.report}
	}
	raw, err := e.Store.Create(ctx, p.raw, sink.Options{ContentType: csvType, Metadata: p.meta})
	if err != nil {
		return stored{}, storageError("writing "+p.raw, err)
	}
	normMeta := maps.Clone(p.meta)
	normMeta["normalized"] = "true"
	norm, err := e.Store.Create(ctx, p.norm, sink.Options{ContentType: parquetType, Metadata: normMeta})
	if err != nil {
		raw.Abort()
		return stored{}, storageError("writing "+p.norm, err)
	}
	st, warn, err := stream(body, raw, norm, p.conv, p.raw, p.norm)
	if err != nil {
		raw.Abort()
		norm.Abort()
		return stored{}, err
	}
	out := stored{stats: st, warn: warn}
	rawEntry := p.entry
	if p.settle != nil {
		p.settle(&rawEntry, st, warn == nil)
	}

	// Both streams ended: commit, raw first.
	status := p.meta["invoice-status"]
	out.raw, err = e.commit(ctx, m, raw, p.raw, rawEntry, st.Rows, status)
	if err != nil {
		norm.Abort()
		return stored{}, err
	}
	if warn != nil {
		norm.Abort()
		if err := e.drop(ctx, m, p.norm); err != nil {
			return stored{}, err
		}
		return out, nil
	}
	entry := p.entry
	entry.Normalized = true
	nobj, err := e.commit(ctx, m, norm, p.norm, entry, st.Rows, status)
	if err != nil {
		if derr := e.drop(ctx, m, p.norm); derr != nil {
			err = errors.Join(err, derr)
		}
		return stored{}, err
	}
	out.norm = &nobj
	return out, nil
}

// stream copies body to raw and, through conv, to norm. It returns conv's
// counts, or its warning (norm then holds a partial file), or the failure
// named: Atlas's stream broke, or the store did.
func stream(body io.Reader, raw, norm sink.Upload, conv func(io.Writer, io.Reader) (tally.Stats, error), rawKey, normKey string) (tally.Stats, *tally.Warning, error) {
	pr, pw := io.Pipe()
	type result struct {
		st  tally.Stats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := conv(norm, pr)
		// A file conv gave up on still streams on to raw.
		_, _ = io.Copy(io.Discard, pr)
		done <- result{st, err}
	}()
	var failed error
	buf := make([]byte, 64<<10)
	for failed == nil {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, err := raw.Write(buf[:n]); err != nil {
				failed = storageError("writing "+rawKey, err)
				break
			}
			_, _ = pw.Write(buf[:n]) // the reader drains to the end
		}
		switch {
		case rerr == io.EOF:
			pw.Close()
			res := <-done
			if w := tally.AsWarning(res.err); w != nil {
				return res.st, w, nil
			}
			var named *Error
			switch {
			case errors.As(res.err, &named):
				// conv's own failure, named: the usage's JSON form broke off.
				return tally.Stats{}, nil, res.err
			case res.err != nil:
				// Not the file (that is a warning), not the pipe (it ended
				// cleanly): writing the normalized file failed.
				return tally.Stats{}, nil, storageError("writing "+normKey, res.err)
			}
			return res.st, nil, nil
		case rerr != nil && Name(rerr) == AtlasError:
			failed = &Error{Name: AtlasStreamBroken, Msg: "the Atlas response broke off", Err: rerr}
		case rerr != nil:
			failed = wrap(rerr, "reading from Atlas") // a named error, such as a deadline
		}
	}
	pw.CloseWithError(failed)
	<-done
	return tally.Stats{}, nil, failed
}

// commit puts u under key unless the manifest says the key already holds
// these bytes (and the store agrees), and records what the key holds.
func (e *Exporter) commit(ctx context.Context, m *Manifest, u sink.Upload, key string, entry Entry, rows int64, status string) (sink.Object, error) {
	sha, n := u.Sum()
	if prev, ok := m.Object(key); ok && prev.SHA256 == sha && prev.Bytes == n && prev.InvoiceStatus == status && prev.ETag != "" {
		etag, err := e.Store.ETag(ctx, key)
		if err != nil {
			u.Abort()
			return sink.Object{}, storageError("reading "+key, err)
		}
		if etag == prev.ETag {
			u.Abort()
			// The same bytes; what the export knows of them (an invoice's
			// totals, its reconciliation) is recorded anew.
			entry.Key, entry.SHA256, entry.Bytes, entry.Rows, entry.ETag = key, prev.SHA256, prev.Bytes, prev.Rows, prev.ETag
			m.put(entry)
			return sink.Object{Bucket: e.Store.Bucket(), Key: key, Bytes: n, SHA256: sha, Rows: prev.Rows, Skipped: true, ETag: etag}, nil
		}
	}
	obj, err := u.Commit()
	if err != nil {
		return sink.Object{}, storageError("writing "+key, err)
	}
	obj.Rows = rows
	entry.Key, entry.SHA256, entry.Bytes, entry.Rows, entry.ETag = key, obj.SHA256, obj.Bytes, rows, obj.ETag
	m.put(entry)
	return obj, nil
}

// drop deletes the object under key (if any) and its manifest record.
func (e *Exporter) drop(ctx context.Context, m *Manifest, key string) error {
	if err := e.Store.Delete(ctx, key); err != nil {
		return storageError("deleting "+key+", which the new file replaces", err)
	}
	m.remove(key)
	return nil
}

// storageError names a failed call to the store: Config.Invalid for a
// bucket in another region (no retry helps), else Storage.Error.
func storageError(msg string, err error) *Error {
	name := StorageError
	var region *sink.RegionError
	if errors.As(err, &region) {
		name = ConfigInvalid
	}
	return &Error{Name: name, Msg: msg, Err: err}
}

// services is the per-service totals of normalized usage as decimal text.
func services(st tally.Stats) map[string]string {
	if len(st.Services) == 0 {
		return nil
	}
	out := make(map[string]string, len(st.Services))
	for svc, sum := range st.Services {
		out[svc] = sum.String()
	}
	return out
}

// progressReader reports the bytes read every progressStep.
type progressReader struct {
	r      io.Reader
	key    string
	n, at  int64
	report func(Event)
}

const progressStep = 16 << 20

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.n-p.at >= progressStep {
		p.at = p.n
		p.report(Event{Step: "stream", Key: p.key, Bytes: p.n})
	}
	return n, err
}
