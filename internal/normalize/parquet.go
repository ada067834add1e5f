package normalize

import (
	"fmt"
	"io"
	"math/bits"
	"reflect"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/snappy"
)

// The Parquet type of each kind of column (see kind), as the row structs
// below declare it. Money Atlas bills in whole cents (totalPriceCents,
// amountBilledCents: int64 cents in the API) is DECIMAL(18,2): exact cents
// up to 10^16 dollars. Every other number (quantities, unit prices,
// discount percentages, FOCUS costs) is what Atlas computes as an IEEE
// double (the API's quantity and unitPriceDollars) and prints in its
// shortest form, up to 17 significant digits, as 6.035E-7:
// DECIMAL(38,24) keeps every one of those digits for values down to 10^-7
// (6.035E-7 needs 10 decimals) and 14 integer digits. A value that does
// not fit is a Normalize.Value warning, never rounded.
const (
	CentsPrecision, CentsScale     = 18, 2
	DecimalPrecision, DecimalScale = 38, 24
)

// The row structs declare the columns (columnsOf) and the schemas: one
// field per column, in order, of the Go type of its kind (goTypes). A
// value Atlas left empty is NULL (optional). Columns whose values repeat
// are dictionary-encoded: the names, the dates, and the invoice's unit
// prices (a price list) and discount percentages, which made its files a
// quarter smaller at the same speed (quantities and amounts rarely repeat;
// parquet-go falls back to plain pages when a dictionary grows too large).
//
// invoiceRow is normalized invoice line items: the invoice's id and status,
// the line-item columns in Atlas's order (the simulator's
// atlassim.InvoiceColumns), found by name, then tags: the columns the
// invoice has beyond those (resource tags appear as extra columns), column
// name -> value, blank values left out.
type invoiceRow struct {
	InvoiceID       []byte            `parquet:"invoice_id,string,dict"`
	InvoiceStatus   []byte            `parquet:"invoice_status,string,dict,optional"`
	Date            *int32            `parquet:"date,date,dict,optional" atlas:"Date"`
	UsageDate       *int32            `parquet:"usage_date,date,dict,optional" atlas:"Usage Date"`
	Description     []byte            `parquet:"description,string,dict,optional" atlas:"Description"`
	Note            []byte            `parquet:"note,string,dict,optional" atlas:"Note"`
	OrgName         []byte            `parquet:"organization_name,string,dict,optional" atlas:"Organization Name"`
	OrgID           []byte            `parquet:"organization_id,string,dict,optional" atlas:"Organization ID"`
	Project         []byte            `parquet:"project,string,dict,optional" atlas:"Project"`
	ProjectID       []byte            `parquet:"project_id,string,dict,optional" atlas:"Project ID"`
	SKU             []byte            `parquet:"sku,string,dict,optional" atlas:"SKU"`
	Region          []byte            `parquet:"region,string,dict,optional" atlas:"Region"`
	Cluster         []byte            `parquet:"cluster,string,dict,optional" atlas:"Cluster"`
	ReplicaSet      []byte            `parquet:"replica_set,string,dict,optional" atlas:"Replica Set"`
	ConfigServer    []byte            `parquet:"config_server,string,dict,optional" atlas:"Config Server"`
	Application     []byte            `parquet:"application,string,dict,optional" atlas:"Application"`
	Unit            []byte            `parquet:"unit,string,dict,optional" atlas:"Unit"`
	UnitPrice       *[16]byte         `parquet:"unit_price,decimal(24:38),dict,optional" atlas:"Unit Price"`
	Quantity        *[16]byte         `parquet:"quantity,decimal(24:38),optional" atlas:"Quantity"`
	DiscountPercent *[16]byte         `parquet:"discount_percent,decimal(24:38),dict,optional" atlas:"Discount Percent" kind:"percent"`
	Amount          int64             `parquet:"amount,decimal(2:18)" atlas:"Amount"`
	Tags            map[string]string `parquet:"tags"`
}

// usageRow is a Cost Explorer usage CSV, its columns found by name. The
// CSV's layout is not documented beyond the spec's example, which names
// some columns differently ("Invoice Id", "Project Id", "Cluster Unique Id",
// "Billed Date") and has no Service or Usage Date; public clients read the
// JSON form's invoiceId, organizationId, service, usageAmount and usageDate.
// So names match whatever their case, spaces and underscores, a few other
// names are taken too, and only the amount is required: a column the file
// lacks is empty rather than the export failing.
type usageRow struct {
	InvoiceID   []byte `parquet:"invoice_id,string,dict,optional" atlas:"Invoice ID"`
	OrgID       []byte `parquet:"organization_id,string,dict,optional" atlas:"Organization ID,Org ID"`
	OrgName     []byte `parquet:"organization_name,string,dict,optional" atlas:"Organization Name,Org Name"`
	ProjectID   []byte `parquet:"project_id,string,dict,optional" atlas:"Project ID,Group ID"`
	ProjectName []byte `parquet:"project_name,string,dict,optional" atlas:"Project Name,Group Name"`
	ClusterID   []byte `parquet:"cluster_id,string,dict,optional" atlas:"Cluster ID,Cluster Unique ID"`
	ClusterName []byte `parquet:"cluster_name,string,dict,optional" atlas:"Cluster Name"`
	Service     []byte `parquet:"service,string,dict,optional" atlas:"Service,Service Name"`
	UsageDate   *int32 `parquet:"usage_date,date,dict,optional" atlas:"Usage Date,Billed Date,Bill Date"`
	UsageAmount int64  `parquet:"usage_amount,decimal(2:18)" atlas:"Usage Amount"`
}

// focusRow has the columns of FOCUS 1.0, the FinOps Open Cost and Usage
// Specification, in its (alphabetical) order, found by name. A FOCUS file
// need not have them all, nor in this order: a column it lacks is empty
// (FOCUS makes many of them optional, and Atlas has no commitment
// discounts), one it adds (a later FOCUS version's, or a provider's "x_"
// column) stays in the raw file only. Each has FOCUS 1.0's data type:
// Decimal as DECIMAL(38,24), DateTime as TIMESTAMP, KeyValueFormat (Tags, a
// JSON object) as a map, the rest strings. The names are lower case, as
// Athena shows them and as AWS Data Exports' FOCUS 1.0 table names them.
type focusRow struct {
	AvailabilityZone           []byte            `parquet:"availabilityzone,string,dict,optional"`
	BilledCost                 *[16]byte         `parquet:"billedcost,decimal(24:38),optional"`
	BillingAccountID           []byte            `parquet:"billingaccountid,string,dict,optional"`
	BillingAccountName         []byte            `parquet:"billingaccountname,string,dict,optional"`
	BillingCurrency            []byte            `parquet:"billingcurrency,string,dict,optional"`
	BillingPeriodEnd           *int64            `parquet:"billingperiodend,timestamp(millisecond),optional"`
	BillingPeriodStart         *int64            `parquet:"billingperiodstart,timestamp(millisecond),optional"`
	ChargeCategory             []byte            `parquet:"chargecategory,string,dict,optional"`
	ChargeClass                []byte            `parquet:"chargeclass,string,dict,optional"`
	ChargeDescription          []byte            `parquet:"chargedescription,string,dict,optional"`
	ChargeFrequency            []byte            `parquet:"chargefrequency,string,dict,optional"`
	ChargePeriodEnd            *int64            `parquet:"chargeperiodend,timestamp(millisecond),optional"`
	ChargePeriodStart          *int64            `parquet:"chargeperiodstart,timestamp(millisecond),optional"`
	CommitmentDiscountCategory []byte            `parquet:"commitmentdiscountcategory,string,dict,optional"`
	CommitmentDiscountID       []byte            `parquet:"commitmentdiscountid,string,dict,optional"`
	CommitmentDiscountName     []byte            `parquet:"commitmentdiscountname,string,dict,optional"`
	CommitmentDiscountStatus   []byte            `parquet:"commitmentdiscountstatus,string,dict,optional"`
	CommitmentDiscountType     []byte            `parquet:"commitmentdiscounttype,string,dict,optional"`
	ConsumedQuantity           *[16]byte         `parquet:"consumedquantity,decimal(24:38),optional"`
	ConsumedUnit               []byte            `parquet:"consumedunit,string,dict,optional"`
	ContractedCost             *[16]byte         `parquet:"contractedcost,decimal(24:38),optional"`
	ContractedUnitPrice        *[16]byte         `parquet:"contractedunitprice,decimal(24:38),optional"`
	EffectiveCost              *[16]byte         `parquet:"effectivecost,decimal(24:38),optional"`
	InvoiceIssuerName          []byte            `parquet:"invoiceissuername,string,dict,optional"`
	ListCost                   *[16]byte         `parquet:"listcost,decimal(24:38),optional"`
	ListUnitPrice              *[16]byte         `parquet:"listunitprice,decimal(24:38),optional"`
	PricingCategory            []byte            `parquet:"pricingcategory,string,dict,optional"`
	PricingQuantity            *[16]byte         `parquet:"pricingquantity,decimal(24:38),optional"`
	PricingUnit                []byte            `parquet:"pricingunit,string,dict,optional"`
	ProviderName               []byte            `parquet:"providername,string,dict,optional"`
	PublisherName              []byte            `parquet:"publishername,string,dict,optional"`
	RegionID                   []byte            `parquet:"regionid,string,dict,optional"`
	RegionName                 []byte            `parquet:"regionname,string,dict,optional"`
	ResourceID                 []byte            `parquet:"resourceid,string,dict,optional"`
	ResourceName               []byte            `parquet:"resourcename,string,dict,optional"`
	ResourceType               []byte            `parquet:"resourcetype,string,dict,optional"`
	ServiceCategory            []byte            `parquet:"servicecategory,string,dict,optional"`
	ServiceName                []byte            `parquet:"servicename,string,dict,optional"`
	SkuID                      []byte            `parquet:"skuid,string,dict,optional"`
	SkuPriceID                 []byte            `parquet:"skupriceid,string,dict,optional"`
	SubAccountID               []byte            `parquet:"subaccountid,string,dict,optional"`
	SubAccountName             []byte            `parquet:"subaccountname,string,dict,optional"`
	Tags                       map[string]string `parquet:"tags"`
}

// How a normalized file is written. A row group is held in memory until it
// is full, so its size bounds the memory (about 10 MiB for invoice line
// items, measured). Pages are compressed with Snappy, which every reader of
// Parquet reads: Zstandard made files 17% smaller and normalization 13%
// slower. The encoder is s2's fast Snappy (fastSnappy), not the "better"
// one parquet-go's codec calls: a sixth of the time of writing Parquet for
// files 6% larger.
const (
	rowGroupRows = 64 << 10 // a multiple of batchRows
	pageBytes    = 64 << 10 // uncompressed values of a page (parquet-go's default)
	batchRows    = 512      // rows handed to the Parquet writer at once
)

func writerOptions(cols []column) []parquet.WriterOption {
	opts := []parquet.WriterOption{
		parquet.Compression(&fastSnappy{}),
		parquet.PageBufferSize(pageBytes),
		// Identical input makes identical bytes, whatever the build: the
		// skip-unchanged rule compares checksums.
		parquet.CreatedBy("atlas-billing-export", "", ""),
	}
	for _, c := range cols {
		if c.kind == text {
			// No min and max of names in the page headers and index:
			// nothing prunes on them, and computing them took a sixth of
			// the time.
			opts = append(opts, parquet.SkipPageBounds(c.name), parquet.SkipPageStatistics(c.name))
		}
	}
	return opts
}

// fastSnappy is the SNAPPY codec with s2's fast Snappy encoder (the same
// block format; parquet-go decodes it with its own codec).
type fastSnappy struct{ snappy.Codec }

func (*fastSnappy) Encode(dst, src []byte) ([]byte, error) {
	return s2.EncodeSnappy(dst[:cap(dst)], src), nil
}

// goTypes is the Go type of a field of each kind: the Go type decides the
// Parquet type, and the kind how a value is read (columnsOf).
var goTypes = [...]reflect.Type{
	text:      reflect.TypeFor[[]byte](),
	date:      reflect.TypeFor[*int32](),
	timestamp: reflect.TypeFor[*int64](),
	number:    reflect.TypeFor[*[16]byte](),
	percent:   reflect.TypeFor[*[16]byte](),
	amount:    reflect.TypeFor[int64](),
	tags:      reflect.TypeFor[map[string]string](),
}

// leaf is where a column's values go in the file: its first leaf column,
// how many it has (a map's keys and values: 2), and the definition level of
// a value (0 if the column is required).
type leaf struct {
	index, width, def int
}

// table writes rows as a Parquet file, one row at a time: one set per
// column with a value (the others are NULL), then end. Column i is the i-th
// of the columns the table was made for. The values go straight to
// parquet-go's column writers, a batch of rows at a time: one batch is
// filled while the one before it is encoded by a goroutine of its own (two
// stages of one stream, on two cores when there are). Writing columns of
// values skips parquet-go's reflection over row structs, which took 30% of
// the time of writing.
type table struct {
	w      *parquet.Writer
	leaves []leaf
	b      *batch // being filled
	set    uint64 // the columns of the row being filled that have a value
	rows   int    // rows in the encoder's row group

	full, free chan *batch
	done       chan error // the encoder's first error, once full is closed
	stopped    bool
}

// batch is the values of some rows, by leaf column. The bytes they point to
// live in bytes until the batch is encoded; an append that moves it leaves
// the values already pointed to where they were.
type batch struct {
	vals  [][]parquet.Value
	n     int // rows filled
	bytes []byte
	err   error // set by the encoder: it failed on this batch or before
}

// fileKind is a kind of file: its columns, schema and leaves.
type fileKind struct {
	cols   []column
	schema *parquet.Schema
	leaves []leaf
}

// The kinds of file, made on first use: not in a cold start that writes
// none.
var (
	invoiceFile = kindOf[invoiceRow](invoiceTable)
	usageFile   = kindOf[usageRow](usageColumns)
	focusFile   = kindOf[focusRow](focusColumns)
)

// kindOf is the kind of file of the row struct T, its columns cols.
func kindOf[T any](cols []column) func() fileKind {
	if len(cols) > 64 { // table.set has a bit per column
		panic(fmt.Sprintf("normalize: %s has %d columns, over 64", reflect.TypeFor[T](), len(cols)))
	}
	return sync.OnceValue(func() fileKind {
		k := fileKind{cols: cols, schema: parquet.SchemaOf(new(T)), leaves: make([]leaf, len(cols))}
		for i, c := range cols {
			path, width := []string{c.name}, 1
			if c.kind == tags {
				path, width = append(path, "key_value", "key"), 2
			}
			l, _ := k.schema.Lookup(path...) // columnsOf took the name from the schema's tag
			k.leaves[i] = leaf{index: l.ColumnIndex, width: width, def: l.MaxDefinitionLevel}
		}
		return k
	})
}

func newTable(w io.Writer, k fileKind) *table {
	t := &table{
		w:      parquet.NewWriter(w, append(writerOptions(k.cols), k.schema)...),
		leaves: k.leaves,
		full:   make(chan *batch, 1),
		free:   make(chan *batch, 1),
		done:   make(chan error, 1),
	}
	n := len(k.schema.Columns())
	t.b = &batch{vals: make([][]parquet.Value, n)}
	t.free <- &batch{vals: make([][]parquet.Value, n)}
	go t.encode()
	return t
}

// encode writes the batches it is given, in order, and hands each back.
func (t *table) encode() {
	var err error
	for b := range t.full {
		if err == nil && b.n > 0 {
			if werr := t.write(b); werr != nil {
				err = fmt.Errorf("writing Parquet: %w", werr)
			}
		}
		for i := range b.vals {
			b.vals[i] = b.vals[i][:0]
		}
		b.n, b.bytes, b.err = 0, b.bytes[:0], err
		t.free <- b
	}
	t.done <- err
}

// write writes a batch's columns, and ends the row group when it is full.
func (t *table) write(b *batch) error {
	for i, cw := range t.w.ColumnWriters() {
		if _, err := cw.WriteRowValues(b.vals[i]); err != nil {
			return err
		}
	}
	if t.rows += b.n; t.rows >= rowGroupRows {
		t.rows = 0
		return t.w.Flush()
	}
	return nil
}

// add adds a value of column i, at its leaf's definition level.
func (t *table) add(i int, v parquet.Value) {
	l := &t.leaves[i]
	v.SetDefinitionLevel(l.def) // the setter inlines, Level does not
	t.b.vals[l.index] = append(t.b.vals[l.index], v)
	t.set |= 1 << i
}

// setText sets a copy of v, valid UTF-8 (invalid bytes as U+FFFD) unless
// utf8 says it is known to be valid. Empty is NULL.
func (t *table) setText(i int, v []byte, utf8 bool) {
	if len(v) > 0 {
		t.add(i, parquet.ByteArrayValue(t.copy(v, utf8)))
	}
}

// copy is v in the batch's bytes.
func (t *table) copy(v []byte, utf8 bool) []byte {
	b := t.b
	start := len(b.bytes)
	if utf8 {
		b.bytes = append(b.bytes, v...)
	} else {
		b.bytes = appendUTF8(b.bytes, v)
	}
	return b.bytes[start:len(b.bytes):len(b.bytes)]
}

// setBytes sets v, not copied: v must outlive the table.
func (t *table) setBytes(i int, v []byte) { t.add(i, parquet.ByteArrayValue(v)) }

func (t *table) setDate(i int, days int32) { t.add(i, parquet.Int32Value(days)) }

// setInt64 sets a TIMESTAMP's milliseconds or a DECIMAL(18,2)'s cents.
func (t *table) setInt64(i int, v int64) { t.add(i, parquet.Int64Value(v)) }

func (t *table) setDecimal(i int, d [16]byte) {
	t.add(i, parquet.FixedLenByteArrayValue(t.copy(d[:], true)))
}

// setTag adds an entry to the map of column i, copied; a row's entries
// must come in the order of their keys (as bytes), each key once.
func (t *table) setTag(i int, key, value []byte, utf8 bool) {
	l := t.leaves[i]
	rep := 0
	if t.set&(1<<i) != 0 {
		rep = 1 // not the row's first entry
	}
	k := parquet.ByteArrayValue(t.copy(key, true)).Level(rep, l.def, l.index)
	v := parquet.ByteArrayValue(t.copy(value, utf8)).Level(rep, l.def, l.index+1)
	t.b.vals[l.index] = append(t.b.vals[l.index], k)
	t.b.vals[l.index+1] = append(t.b.vals[l.index+1], v)
	t.set |= 1 << i
}

// end ends the row: every column without a value is NULL (an empty map).
func (t *table) end() error {
	for unset := (uint64(1)<<len(t.leaves) - 1) &^ t.set; unset != 0; unset &= unset - 1 {
		l := &t.leaves[bits.TrailingZeros64(unset)]
		for j := l.index; j < l.index+l.width; j++ {
			t.b.vals[j] = append(t.b.vals[j], parquet.Value{})
		}
	}
	t.set = 0
	t.b.n++
	if t.b.n == batchRows {
		return t.flush()
	}
	return nil
}

// flush hands the batch to the encoder and takes the other one, once it is
// encoded: an error of the encoder shows here, a batch late.
func (t *table) flush() error {
	t.full <- t.b
	t.b = <-t.free
	return t.b.err
}

// close writes the rest and the file's footer.
func (t *table) close() error {
	if err := t.flush(); err != nil {
		t.stop()
		return err
	}
	t.stopped = true
	close(t.full)
	if err := <-t.done; err != nil {
		return err
	}
	if err := t.w.Close(); err != nil {
		return fmt.Errorf("writing Parquet: %w", err)
	}
	return nil
}

// stop ends the encoder of a table given up on (a warning, a failure):
// what it wrote is incomplete, and dropped by the caller.
func (t *table) stop() {
	if !t.stopped {
		t.stopped = true
		close(t.full)
		<-t.done
	}
}
