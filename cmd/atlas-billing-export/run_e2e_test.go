package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim/atlassimtest"
	"github.com/atlas-billing-export/atlas-billing-export/internal/normalize"
	"github.com/atlas-billing-export/atlas-billing-export/internal/testenv"
)

// TestRunEndToEnd runs the built tool's `run` against the simulator, into a
// folder and into versitygw, and checks every file against what Atlas served.
func TestRunEndToEnd(t *testing.T) {
	sim, base := atlassimtest.Start(t, atlassim.Config{
		FirstMonth: "2024-01",
		Now:        func() time.Time { return time.Date(2024, time.July, 15, 12, 0, 0, 0, time.UTC) },
	})
	orgs := sim.Orgs()
	atlasEnv := []string{
		"MONGODB_ATLAS_CLIENT_ID=" + atlassim.DefaultClientID,
		"MONGODB_ATLAS_CLIENT_SECRET=" + atlassim.DefaultClientSecret,
		"MONGODB_ATLAS_BASE_URL=" + base,
	}
	args := []string{"run", "--org", orgs[0].ID + "," + orgs[1].ID, "--from", "2024-05", "--to", "2024-06", "--concurrency", "4", "--json"}

	// want is every file the export must write: key -> bytes Atlas serves.
	want := map[string][]byte{}
	for _, org := range orgs {
		for _, inv := range sim.Invoices(org.ID) {
			if inv.Month != "2024-05" && inv.Month != "2024-06" {
				continue
			}
			part := "/org_id=" + org.ID + "/billing_month=" + inv.Month + "/invoice_id=" + inv.ID
			var raw, lineItems, focus, focusNorm bytes.Buffer
			if err := sim.WriteInvoiceCSV(&raw, org.ID, inv.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := normalize.Invoice(&lineItems, bytes.NewReader(raw.Bytes()), normalize.InvoiceInfo{ID: inv.ID, Status: inv.Status}); err != nil {
				t.Fatal(err)
			}
			if err := sim.WriteFocusCSV(&focus, org.ID, inv.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := normalize.Focus(&focusNorm, bytes.NewReader(focus.Bytes())); err != nil {
				t.Fatal(err)
			}
			want["invoices"+part+".csv"] = raw.Bytes()
			want["invoice_line_items"+part+".parquet"] = lineItems.Bytes()
			want["focus"+part+".csv"] = focus.Bytes()
			want["focus_normalized"+part+".parquet"] = focusNorm.Bytes()
		}
		for _, m := range []string{"2024-05", "2024-06"} {
			start, _ := time.Parse("2006-01", m)
			var raw, norm bytes.Buffer
			q := atlassim.UsageQuery{StartDate: start.Format("2006-01-02"), EndDate: start.AddDate(0, 1, 0).Format("2006-01-02")}
			if err := sim.WriteUsageCSV(&raw, org.ID, q); err != nil {
				t.Fatal(err)
			}
			if _, err := normalize.Usage(&norm, bytes.NewReader(raw.Bytes())); err != nil {
				t.Fatal(err)
			}
			part := "/org_id=" + org.ID + "/billing_month=" + m + "/usage"
			want["usage"+part+".csv"] = raw.Bytes()
			want["usage_normalized"+part+".parquet"] = norm.Bytes()
		}
	}
	// Per org and month: usage raw and normalized, the invoice raw and as
	// line items, its FOCUS report raw and normalized.
	if len(want) != 24 {
		t.Fatalf("expected 24 files, the simulator has %d", len(want))
	}
	const manifests = 4 // _manifests/org_id=.../billing_month=.../manifest.json

	// check compares the summary and the stored files with want; keys in the
	// summary carry prefix.
	check := func(t *testing.T, res result, prefix string, got func(key string) []byte) {
		t.Helper()
		if res.code != 0 {
			t.Fatalf("exit %d\nstderr: %s", res.code, res.stderr)
		}
		summary := summaryOf(t, res.stdout)
		var keys []string
		for _, o := range summary.Objects {
			o.Key = strings.TrimPrefix(o.Key, prefix)
			keys = append(keys, o.Key)
			if int64(len(want[o.Key])) != o.Bytes || o.Rows == 0 {
				t.Errorf("%s: summary says %d bytes, %d rows; Atlas served %d bytes", o.Key, o.Bytes, o.Rows, len(want[o.Key]))
			}
		}
		if len(keys) != len(want) {
			t.Errorf("summary lists %d objects, want %d: %v", len(keys), len(want), keys)
		}
		for key, b := range want {
			if !bytes.Equal(got(key), b) {
				t.Errorf("%s differs from what Atlas served", key)
			}
		}
		if len(summary.UsageTotals) == 0 {
			t.Error("no usage totals in the summary")
		}
	}

	t.Run("folder", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		res := run(t, atlasEnv, append(args, "--out", dir)...)
		check(t, res, "", func(key string) []byte {
			b, _ := os.ReadFile(filepath.Join(dir, filepath.FromSlash(key)))
			return b
		})
		// Nothing else in the folder but a manifest per org and month.
		var files []string
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files = append(files, p)
			}
			return nil
		})
		sort.Strings(files)
		if len(files) != len(want)+manifests {
			t.Errorf("%d files in the folder, want %d: %v", len(files), len(want)+manifests, files)
		}
		// A second run rewrites nothing.
		again := run(t, atlasEnv, append(args, "--out", dir)...)
		var rewritten []string
		objs := summaryOf(t, again.stdout).Objects
		for _, o := range objs {
			if !o.Skipped {
				rewritten = append(rewritten, o.Key)
			}
		}
		if again.code != 0 || len(objs) != len(want) || len(rewritten) > 0 {
			t.Errorf("second run: exit %d, %d objects, rewrote %v\n%s", again.code, len(objs), rewritten, again.stderr)
		}
	})

	t.Run("versitygw", func(t *testing.T) {
		t.Parallel()
		s3 := testenv.Versity(t)
		bucket := s3.Bucket(t)
		env := append([]string{
			"AWS_ACCESS_KEY_ID=" + s3.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s3.SecretKey, "AWS_REGION=" + testenv.Region,
		}, atlasEnv...)
		res := run(t, env, append(args, "--out", "s3://"+bucket+"/lake/atlas", "--s3-endpoint", s3.Endpoint)...)
		check(t, res, "lake/atlas/", func(key string) []byte { return s3.Get(t, bucket, "lake/atlas/"+key) })
		if keys := s3.Keys(t, bucket, ""); len(keys) != len(want)+manifests {
			t.Errorf("bucket holds %d keys, want %d: %v", len(keys), len(want)+manifests, keys)
		}
		if n := s3.OpenMultipartUploads(t, bucket); n != 0 {
			t.Errorf("%d open multipart uploads", n)
		}
	})
}

// runSummary is the "summary" event of `run --json`.
type runSummary struct {
	Objects []struct {
		Key     string
		Bytes   int64
		Rows    int64
		Skipped bool
	}
	UsageTotals []struct{ Month, Service, Amount string }
}

func summaryOf(t *testing.T, stdout string) runSummary {
	t.Helper()
	var summary runSummary
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if strings.Contains(line, `"event":"summary"`) {
			if err := json.Unmarshal([]byte(line), &summary); err != nil {
				t.Fatal(err)
			}
		}
	}
	return summary
}
