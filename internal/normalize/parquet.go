package normalize

import (
	"fmt"
	"io"
	"reflect"
	"unsafe"

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

// The row structs: one field per column, in the column order, of the Go
// type its kind needs (goTypes, checked by bind). A value Atlas left empty
// is NULL: a nil slice or pointer.
type invoiceRow struct {
	InvoiceID       []byte            `parquet:"invoice_id,string,dict"`
	InvoiceStatus   []byte            `parquet:"invoice_status,string,dict,optional"`
	Date            *int32            `parquet:"date,date,optional"`
	UsageDate       *int32            `parquet:"usage_date,date,optional"`
	Description     []byte            `parquet:"description,string,dict,optional"`
	Note            []byte            `parquet:"note,string,dict,optional"`
	OrgName         []byte            `parquet:"organization_name,string,dict,optional"`
	OrgID           []byte            `parquet:"organization_id,string,dict,optional"`
	Project         []byte            `parquet:"project,string,dict,optional"`
	ProjectID       []byte            `parquet:"project_id,string,dict,optional"`
	SKU             []byte            `parquet:"sku,string,dict,optional"`
	Region          []byte            `parquet:"region,string,dict,optional"`
	Cluster         []byte            `parquet:"cluster,string,dict,optional"`
	ReplicaSet      []byte            `parquet:"replica_set,string,dict,optional"`
	ConfigServer    []byte            `parquet:"config_server,string,dict,optional"`
	Application     []byte            `parquet:"application,string,dict,optional"`
	Unit            []byte            `parquet:"unit,string,dict,optional"`
	UnitPrice       *[16]byte         `parquet:"unit_price,decimal(24:38),optional"`
	Quantity        *[16]byte         `parquet:"quantity,decimal(24:38),optional"`
	DiscountPercent *[16]byte         `parquet:"discount_percent,decimal(24:38),optional"`
	Amount          int64             `parquet:"amount,decimal(2:18)"`
	Tags            map[string]string `parquet:"tags"`
}

type usageRow struct {
	InvoiceID   []byte `parquet:"invoice_id,string,dict,optional"`
	OrgID       []byte `parquet:"organization_id,string,dict,optional"`
	OrgName     []byte `parquet:"organization_name,string,dict,optional"`
	ProjectID   []byte `parquet:"project_id,string,dict,optional"`
	ProjectName []byte `parquet:"project_name,string,dict,optional"`
	ClusterID   []byte `parquet:"cluster_id,string,dict,optional"`
	ClusterName []byte `parquet:"cluster_name,string,dict,optional"`
	Service     []byte `parquet:"service,string,dict,optional"`
	UsageDate   *int32 `parquet:"usage_date,date,optional"`
	UsageAmount int64  `parquet:"usage_amount,decimal(2:18)"`
}

// focusRow has FOCUS 1.0's columns with its data types: Decimal as
// DECIMAL(38,24), DateTime as TIMESTAMP, KeyValueFormat (Tags) as a map,
// the rest strings. The names are lower case, as Athena shows them and as
// AWS Data Exports' FOCUS 1.0 table names them.
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
// items, measured); each is compressed with Zstandard, which Athena and
// DuckDB read and which makes files 2.5 times smaller than Snappy for about
// 5% more CPU (Athena bills the bytes it scans).
const (
	rowGroupRows = 64 << 10
	pageBytes    = 64 << 10 // uncompressed values of a page (parquet-go's default)
	batchRows    = 1 << 10  // rows handed to the Parquet writer at once
)

func writerOptions(cols []column) []parquet.WriterOption {
	opts := []parquet.WriterOption{
		parquet.Compression(&snappy.Codec{}),
		parquet.MaxRowsPerRowGroup(rowGroupRows),
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

// slot is where one column's value goes in a row struct.
type slot struct {
	off  uintptr
	kind kind
}

// goTypes is the Go type of a field of each kind.
var goTypes = map[kind]reflect.Type{
	text:      reflect.TypeFor[[]byte](),
	date:      reflect.TypeFor[*int32](),
	timestamp: reflect.TypeFor[*int64](),
	number:    reflect.TypeFor[*[16]byte](),
	percent:   reflect.TypeFor[*[16]byte](),
	amount:    reflect.TypeFor[int64](),
	tags:      reflect.TypeFor[map[string]string](),
}

// bind finds the field of each column in the row struct T: the same names
// in the same order, of the Go type of the column's kind. A mismatch is a
// programming error, found by any test.
func bind[T any](cols []column) []slot {
	t := reflect.TypeFor[T]()
	if t.NumField() != len(cols) {
		panic(fmt.Sprintf("normalize: %s has %d fields for %d columns", t, t.NumField(), len(cols)))
	}
	slots := make([]slot, len(cols))
	for i, c := range cols {
		f := t.Field(i)
		name, _, _ := cutComma(f.Tag.Get("parquet"))
		if name != c.name || f.Type != goTypes[c.kind] {
			panic(fmt.Sprintf("normalize: %s field %s (%s %s) does not hold column %s of kind %d", t, f.Name, name, f.Type, c.name, c.kind))
		}
		slots[i] = slot{off: f.Offset, kind: c.kind}
	}
	return slots
}

func cutComma(s string) (string, string, bool) {
	for i := range len(s) {
		if s[i] == ',' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// rowWriter is a table of some row struct, filled one row at a time:
// begin, one set per column with a value (the others stay NULL), end. Column
// i is the i-th of the columns the table was bound to.
type rowWriter interface {
	begin()
	setText(i int, v []byte, utf8 bool) // copied; utf8: v is known to be valid UTF-8
	setBytes(i int, v []byte)           // not copied: v must outlive the table
	setDate(i int, days int32)
	setTime(i int, ms int64)
	setDecimal(i int, d [16]byte)
	setCents(i int, v int64)
	setTags(i int, m map[string]string)
	end() error
	close() error // the rest and the file's footer
	stop()        // gives up: after it, nothing more is written
}

// table writes rows of T as a Parquet file, in batches: one is filled
// while the one before it is encoded by a goroutine of its own (two stages
// of one stream, on two cores when there are). The values of a batch live
// in buffers of its own until the batch is encoded; an append that moves a
// buffer leaves the values already pointed to where they were.
type table[T any] struct {
	w     *parquet.GenericWriter[T]
	slots []slot
	b     *batch[T]      // being filled
	cur   unsafe.Pointer // its current row

	full, free chan *batch[T]
	done       chan error // the encoder's first error, once full is closed
	stopped    bool
}

type batch[T any] struct {
	rows  []T
	n     int // rows filled
	bytes []byte
	ints  []int64
	dates []int32
	decs  [][16]byte
	err   error // set by the encoder: it failed on this batch or before
}

func newTable[T any](w io.Writer, cols []column) *table[T] {
	t := &table[T]{
		w:     parquet.NewGenericWriter[T](w, writerOptions(cols)...),
		slots: bind[T](cols),
		b:     &batch[T]{rows: make([]T, batchRows)},
		full:  make(chan *batch[T], 1),
		free:  make(chan *batch[T], 1),
		done:  make(chan error, 1),
	}
	t.free <- &batch[T]{rows: make([]T, batchRows)}
	go t.encode()
	return t
}

// encode writes the batches it is given, in order, and hands each back.
func (t *table[T]) encode() {
	var err error
	for b := range t.full {
		if err == nil && b.n > 0 {
			if _, werr := t.w.Write(b.rows[:b.n]); werr != nil {
				err = fmt.Errorf("writing Parquet: %w", werr)
			}
		}
		b.n, b.err = 0, err
		b.bytes, b.ints, b.dates, b.decs = b.bytes[:0], b.ints[:0], b.dates[:0], b.decs[:0]
		t.free <- b
	}
	t.done <- err
}

func (t *table[T]) begin() {
	var zero T
	t.b.rows[t.b.n] = zero
	t.cur = unsafe.Pointer(&t.b.rows[t.b.n])
}

func (t *table[T]) field(i int) unsafe.Pointer { return unsafe.Add(t.cur, t.slots[i].off) }

func (t *table[T]) setText(i int, v []byte, utf8 bool) {
	if len(v) == 0 {
		return // NULL
	}
	b := t.b
	start := len(b.bytes)
	if utf8 {
		b.bytes = append(b.bytes, v...)
	} else {
		b.bytes = appendUTF8(b.bytes, v)
	}
	t.setBytes(i, b.bytes[start:len(b.bytes):len(b.bytes)])
}

func (t *table[T]) setBytes(i int, v []byte) { *(*[]byte)(t.field(i)) = v }

func (t *table[T]) setDate(i int, days int32) {
	b := t.b
	b.dates = append(b.dates, days)
	*(**int32)(t.field(i)) = &b.dates[len(b.dates)-1]
}

func (t *table[T]) setTime(i int, ms int64) {
	b := t.b
	b.ints = append(b.ints, ms)
	*(**int64)(t.field(i)) = &b.ints[len(b.ints)-1]
}

func (t *table[T]) setDecimal(i int, d [16]byte) {
	b := t.b
	b.decs = append(b.decs, d)
	*(**[16]byte)(t.field(i)) = &b.decs[len(b.decs)-1]
}

func (t *table[T]) setCents(i int, v int64) { *(*int64)(t.field(i)) = v }

func (t *table[T]) setTags(i int, m map[string]string) { *(*map[string]string)(t.field(i)) = m }

func (t *table[T]) end() error {
	t.b.n++
	if t.b.n == len(t.b.rows) {
		return t.flush()
	}
	return nil
}

// flush hands the batch to the encoder and takes the other one, once it is
// encoded: an error of the encoder shows here, a batch late.
func (t *table[T]) flush() error {
	t.full <- t.b
	t.b = <-t.free
	return t.b.err
}

// close writes the rest and the file's footer.
func (t *table[T]) close() error {
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
func (t *table[T]) stop() {
	if !t.stopped {
		t.stopped = true
		close(t.full)
		<-t.done
	}
}
