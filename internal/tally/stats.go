// Package tally is what normalizing a file yields besides the file: its
// Stats (rows, exact sums of money), or a Warning saying why it could not
// be normalized; and the exact decimal text those sums are made of. It is
// apart from internal/normalize so that code which only reads these (the
// export's bookkeeping) does not link the Parquet writer.
package tally

// Stats describes a normalized file, counted while it streamed.
type Stats struct {
	Rows int64 // records written after the header
	// Amount is the exact sum of the amount column (amount for invoice
	// line items, usage_amount for usage; zero for FOCUS, kept as given).
	Amount Sum
	// Services is the sum of usage_amount per service (the service
	// column's value, "" where the file has none). Usage only.
	Services map[string]Sum
}
