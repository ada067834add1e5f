package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"

	"github.com/atlas-billing-export/atlas-billing-export/internal/normalize"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
)

// rowCounter counts the data rows of a CSV stream as it goes by.
type rowCounter func(io.Reader) (int64, error)

// enriched is what a normalized upload left: the object written and what
// was counted, or the warning why none was written.
type enriched struct {
	obj   *sink.Object
	stats normalize.Stats
	warn  *normalize.Warning
}

// normalized is a row counter that, from the same stream, writes the
// normalized form of the CSV (conv) under key, with meta and its own row
// count, and puts the object written in out. Both uploads run at once: one
// pass over Atlas's response, memory bounded by the two uploads' buffers.
// A file conv cannot normalize is no failure: its upload is aborted, the
// warning goes in out, and the raw file streams on to the store.
func (e *Exporter) normalized(ctx context.Context, key string, meta map[string]string, conv func(io.Writer, io.Reader) (normalize.Stats, error), out *enriched) rowCounter {
	return func(r io.Reader) (int64, error) {
		pr, pw := io.Pipe()
		var st normalize.Stats
		converted := make(chan error, 1)
		go func() {
			var err error
			st, err = conv(pw, r)
			pw.CloseWithError(err) // nil: the upload reads EOF
			converted <- err
		}()
		obj, putErr := e.Store.Put(ctx, sink.Put{
			Key: key, Body: pr, ContentType: "application/vnd.apache.parquet",
			// Called after EOF, so after conv returned and set st.
			Meta: func() map[string]string {
				m := maps.Clone(meta)
				m["rows"] = strconv.FormatInt(st.Rows, 10)
				m["normalized"] = "true"
				return m
			},
		})
		// Unblock conv if the upload stopped reading early.
		pr.CloseWithError(errors.Join(putErr, errors.New("normalized upload ended")))
		if err := <-converted; err != nil {
			if out.warn = normalize.AsWarning(err); out.warn != nil {
				return 0, nil // the upload read conv's error, so it was aborted
			}
			return 0, err
		}
		if putErr != nil {
			return 0, storageError(key, putErr)
		}
		obj.Rows = st.Rows
		out.obj, out.stats = &obj, st
		return st.Rows, nil
	}
}

// services is the per-service totals of normalized usage as decimal text.
func services(st normalize.Stats) map[string]string {
	if len(st.Services) == 0 {
		return nil
	}
	out := make(map[string]string, len(st.Services))
	for svc, sum := range st.Services {
		out[svc] = sum.String()
	}
	return out
}

// store streams body into the store under key. The rows are counted on the
// way (a count that fails fails the upload; normalized counts only fail
// when a stream broke), and a failure says whether Atlas's stream or the
// store broke.
func (e *Exporter) store(ctx context.Context, key string, body io.Reader, count rowCounter, meta map[string]string) (sink.Object, error) {
	if e.Progress != nil {
		body = &progressReader{r: body, key: key, report: e.report}
	}
	src := newCountingSource(body, count)
	defer src.finish(errors.New("upload ended"))
	obj, err := e.Store.Put(ctx, sink.Put{
		Key:         key,
		Body:        src,
		ContentType: "text/csv; charset=utf-8",
		Meta: func() map[string]string {
			m := maps.Clone(meta)
			m["rows"] = strconv.FormatInt(src.rows, 10)
			return m
		},
	})
	switch {
	case err == nil:
		obj.Rows = src.rows
		return obj, nil
	case src.readErr != nil:
		if Name(src.readErr) != AtlasError {
			return sink.Object{}, wrap(src.readErr, "reading from Atlas")
		}
		return sink.Object{}, &Error{Name: AtlasStreamBroken, Msg: "the Atlas response broke off", Err: src.readErr}
	case src.countErr != nil:
		var named *Error
		if errors.As(src.countErr, &named) {
			return sink.Object{}, wrap(src.countErr, "writing the normalized file")
		}
		return sink.Object{}, &Error{Name: AtlasError, Msg: "Atlas sent a CSV that does not parse", Err: src.countErr}
	default:
		return sink.Object{}, storageError(key, err)
	}
}

// storageError names a failed write: Config.Invalid for a bucket in another
// region (no retry helps), else Storage.Error.
func storageError(key string, err error) *Error {
	name := StorageError
	var region *sink.RegionError
	if errors.As(err, &region) {
		name = ConfigInvalid
	}
	return &Error{Name: name, Msg: "writing " + key, Err: err}
}

// countingSource passes body through, feeding a row counter in a goroutine.
// At the end of body it waits for the count, and turns a count failure into
// a read error so the upload is aborted.
type countingSource struct {
	body     io.Reader
	pw       *io.PipeWriter
	done     chan struct{}
	rows     int64
	countErr error
	readErr  error
	finished bool
}

func newCountingSource(body io.Reader, count rowCounter) *countingSource {
	pr, pw := io.Pipe()
	s := &countingSource{body: body, pw: pw, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		n, err := count(pr)
		// Drain, so a counter that stopped early never blocks the upload.
		_, _ = io.Copy(io.Discard, pr)
		s.rows, s.countErr = n, err
	}()
	return s
}

func (s *countingSource) Read(p []byte) (int, error) {
	if s.readErr != nil {
		return 0, s.readErr
	}
	if s.finished {
		return 0, io.EOF
	}
	n, err := s.body.Read(p)
	if n > 0 {
		if _, werr := s.pw.Write(p[:n]); werr != nil {
			return n, fmt.Errorf("counting rows: %w", werr)
		}
	}
	switch {
	case errors.Is(err, io.EOF):
		s.finish(nil)
		if s.countErr != nil {
			return n, fmt.Errorf("counting rows: %w", s.countErr)
		}
		return n, io.EOF
	case err != nil:
		s.readErr = err
		s.finish(err)
		return n, err
	}
	return n, nil
}

// finish closes the counter's input and waits for its count.
func (s *countingSource) finish(err error) {
	if s.finished {
		return
	}
	s.finished = true
	s.pw.CloseWithError(err)
	<-s.done
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
