// Package layout names the S3 keys of an export: deterministic, Hive-style
// partitions that Athena reads, so a re-run of a period overwrites the same
// keys instead of adding duplicates.
package layout

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"sync"

	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

// DefaultPrefix is where an export lands when no prefix is configured.
const DefaultPrefix = "atlas-billing"

// The top folder of each dataset under the prefix. Each has a folder of its
// own, so a Glue table over one never reads another's files.
const (
	UsageFolder             = "usage"
	InvoicesFolder          = "invoices"
	NormalizedUsageFolder   = "usage_normalized"
	NormalizedInvoiceFolder = "invoice_line_items"
	FocusFolder             = "focus"
	NormalizedFocusFolder   = "focus_normalized"
	ManifestsFolder         = "_manifests"
	// RunsFolder holds each state machine execution's working files: its
	// plan, the Distributed Map's results and its summary. No table reads it.
	RunsFolder = "_runs"
)

// Layout builds keys under one prefix.
type Layout struct {
	prefix string
}

// New checks the prefix: relative, no empty, "." or ".." segments. An empty
// prefix puts the layout at the root (of a bucket or folder).
func New(prefix string) (Layout, error) {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		return Layout{}, nil
	}
	for _, seg := range strings.Split(prefix, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "\\\x00\r\n") {
			return Layout{}, fmt.Errorf("layout: prefix %q has an invalid segment %q", prefix, seg)
		}
	}
	return Layout{prefix: prefix}, nil
}

// Prefix is the cleaned prefix, without slashes at either end.
func (l Layout) Prefix() string { return l.prefix }

// Files are Atlas's CSVs as sent, and the normalized Parquet files made of
// them (internal/normalize).
const (
	csvExt     = ".csv"
	parquetExt = ".parquet"
)

// Usage is the key of one org's Cost Explorer usage for one month.
func (l Layout) Usage(orgID string, p period.Period) (string, error) {
	return l.perMonth(UsageFolder, orgID, p, "usage"+csvExt)
}

// Invoice is the key of one invoice CSV, partitioned by the month it bills.
func (l Layout) Invoice(orgID string, p period.Period, invoiceID string) (string, error) {
	return l.perInvoice(InvoicesFolder, orgID, p, invoiceID, csvExt)
}

// NormalizedUsage is the key of one org's usage for one month as Parquet
// (internal/normalize): same partitions as Usage, its own folder, so one
// Glue table reads only normalized files.
func (l Layout) NormalizedUsage(orgID string, p period.Period) (string, error) {
	return l.perMonth(NormalizedUsageFolder, orgID, p, "usage"+parquetExt)
}

// NormalizedInvoice is the key of one invoice's line items as Parquet
// (internal/normalize), next to the raw invoice's partitions.
func (l Layout) NormalizedInvoice(orgID string, p period.Period, invoiceID string) (string, error) {
	return l.perInvoice(NormalizedInvoiceFolder, orgID, p, invoiceID, parquetExt)
}

// Focus is the key of one invoice's FOCUS report as Atlas generated it.
func (l Layout) Focus(orgID string, p period.Period, invoiceID string) (string, error) {
	return l.perInvoice(FocusFolder, orgID, p, invoiceID, csvExt)
}

// NormalizedFocus is the key of one invoice's FOCUS report as Parquet
// (internal/normalize): FOCUS 1.0's columns and data types.
func (l Layout) NormalizedFocus(orgID string, p period.Period, invoiceID string) (string, error) {
	return l.perInvoice(NormalizedFocusFolder, orgID, p, invoiceID, parquetExt)
}

// Manifest is the key of the manifest of one org's month: what the export
// wrote for it (internal/export). Its folder starts with "_", which Athena
// skips, and is no table's.
func (l Layout) Manifest(orgID string, p period.Period) (string, error) {
	return l.perMonth(ManifestsFolder, orgID, p, "manifest.json")
}

func (l Layout) perMonth(folder, orgID string, p period.Period, name string) (string, error) {
	if err := atlas.ValidateOrgID(orgID); err != nil {
		return "", err
	}
	return path.Join(l.prefix, folder, "org_id="+orgID, "billing_month="+p.Label(), name), nil
}

func (l Layout) perInvoice(folder, orgID string, p period.Period, invoiceID, ext string) (string, error) {
	if err := atlas.ValidateOrgID(orgID); err != nil {
		return "", err
	}
	if err := atlas.ValidateInvoiceID(invoiceID); err != nil {
		return "", err
	}
	return path.Join(l.prefix, folder, "org_id="+orgID, "billing_month="+p.Label(), "invoice_id="+invoiceID+ext), nil
}

// Run is where one execution's working files go, under RunsFolder/NAME.
type Run struct {
	Folder   string // PREFIX/_runs/NAME
	Plan     string // the plan the Distributed Map reads (a JSON array, one item per org)
	Results  string // the prefix the Distributed Maps' ResultWriters write under
	Summary  string // the summary (summary.json)
	Outcomes string // every job's outcome and objects, one JSON line each (outcomes.jsonl)
}

// executionName is what Step Functions' own names look like (a UUID, or
// the CLI's abx-2024-06-1719792000): the name becomes a key segment.
// Compiled on first use: at package init it was a tenth of a millisecond
// of every function's cold start (1,070 allocations), used by few.
var executionName = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$`)
})

// ValidateRunName checks an execution name before it becomes part of a key.
func ValidateRunName(name string) error {
	if !executionName().MatchString(name) {
		return fmt.Errorf("layout: execution name %.90q: want 1 to 80 letters, digits, - or _ (starting with a letter or digit)", name)
	}
	return nil
}

// Run names the working files of the execution called name.
func (l Layout) Run(name string) (Run, error) {
	if err := ValidateRunName(name); err != nil {
		return Run{}, err
	}
	dir := path.Join(l.prefix, RunsFolder, name)
	return Run{
		Folder:   dir,
		Plan:     dir + "/plan.json",
		Results:  dir + "/results",
		Summary:  dir + "/summary.json",
		Outcomes: dir + "/outcomes.jsonl",
	}, nil
}
