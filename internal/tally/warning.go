package tally

import "errors"

// Names of the warnings: a file that cannot be normalized is still Atlas's
// file, which the caller stores as sent; only its normalized form is lost.
const (
	// LayoutWarning: the file is not laid out as expected: no header, a
	// required column missing, a record of another width than the header,
	// JSON of another shape.
	LayoutWarning = "Normalize.Layout"
	// SyntaxWarning: the file does not parse as CSV (or JSON).
	SyntaxWarning = "Normalize.Syntax"
	// ValueWarning: a value cannot be normalized (a date that is not a
	// date, an amount that is not a number).
	ValueWarning = "Normalize.Value"
	// TooLargeWarning: a record over MaxRecordBytes or MaxColumns. The
	// normalizer stops before holding it; the raw file streams on.
	TooLargeWarning = "Normalize.TooLarge"
)

// Warning says why a file could not be normalized. Its Name is one of the
// names above. Any other error of a normalizer is not about the file's
// content: reading or writing broke.
type Warning struct {
	Name string
	Msg  string
	Err  error
}

func (w *Warning) Error() string {
	if w.Err != nil {
		return w.Msg + ": " + w.Err.Error()
	}
	return w.Msg
}

func (w *Warning) Unwrap() error { return w.Err }

// AsWarning returns the Warning in err's chain, or nil.
func AsWarning(err error) *Warning {
	var w *Warning
	if errors.As(err, &w) {
		return w
	}
	return nil
}
