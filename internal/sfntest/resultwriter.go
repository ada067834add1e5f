package sfntest

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"time"
)

// aws-local-stepfunctions runs a Distributed Map as an inline one: it reads
// no ItemReader and writes no ResultWriter files. WriteResults writes what a
// ResultWriter (Transformation NONE, OutputType JSON) writes for a Map Run,
// as AWS documents it, so the code that reads them back can be tested:
//
//	PREFIX/<map run id>/manifest.json  {"DestinationBucket", "MapRunArn",
//	                                    "ResultFiles": {"FAILED": [{"Key", "Size"}], "PENDING": [...], "SUCCEEDED": [...]}}
//	PREFIX/<map run id>/SUCCEEDED_0.json  [{"ExecutionArn", "Input", "InputDetails", "Name", "Output",
//	                                        "OutputDetails", "RedriveCount", "RedriveStatus", "StartDate",
//	                                        "StateMachineArn", "Status", "StopDate"}, ...]
//	PREFIX/<map run id>/FAILED_0.json     the same, with "Error" and "Cause" and no "Output"
//
// (https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html)

// MapRun is a Distributed Map's output when it has a ResultWriter.
type MapRun struct {
	MapRunArn           string `json:"MapRunArn"`
	ResultWriterDetails struct {
		Bucket string `json:"Bucket"`
		Key    string `json:"Key"`
	} `json:"ResultWriterDetails"`
}

// Child is one child execution of a Map Run: its input, and its output or,
// when it failed, its error and cause. Pending ones never started.
type Child struct {
	Input   json.RawMessage
	Output  json.RawMessage
	Error   string
	Cause   string
	Pending bool
}

// ResultWriter writes Map Runs' results the way Step Functions does.
type ResultWriter struct {
	// Put stores one object in Bucket.
	Put    func(key string, body []byte) error
	Bucket string
	// StateMachine names the Map Run's state machine in its ARNs.
	StateMachine string
	// PerFile is the most records a result file holds (default: all in
	// one). AWS starts another file past 5 GB; a test sets it low to see
	// SUCCEEDED_1.json.
	PerFile int
}

type record struct {
	ExecutionArn        string   `json:"ExecutionArn"`
	Input               string   `json:"Input"`
	InputDetails        details  `json:"InputDetails"`
	Name                string   `json:"Name"`
	Output              *string  `json:"Output,omitempty"`
	OutputDetails       *details `json:"OutputDetails,omitempty"`
	Error               string   `json:"Error,omitempty"`
	Cause               string   `json:"Cause,omitempty"`
	RedriveCount        int      `json:"RedriveCount"`
	RedriveStatus       string   `json:"RedriveStatus"`
	RedriveStatusReason string   `json:"RedriveStatusReason"`
	StartDate           string   `json:"StartDate"`
	StateMachineArn     string   `json:"StateMachineArn"`
	Status              string   `json:"Status"`
	StopDate            string   `json:"StopDate"`
}

type details struct {
	Included bool `json:"Included"`
}

type resultFile struct {
	Key  string `json:"Key"`
	Size int    `json:"Size"`
}

// Write writes the results of one Map Run of the Map state label under
// prefix and returns the Map state's output.
func (w ResultWriter) Write(prefix, label string, children []Child) (MapRun, error) {
	id := uuid()
	smArn := "arn:aws:states:us-east-1:123456789012:stateMachine:" + cmp.Or(w.StateMachine, "sfntest")
	var run MapRun
	run.MapRunArn = "arn:aws:states:us-east-1:123456789012:mapRun:" + cmp.Or(w.StateMachine, "sfntest") + "/" + label + ":" + id
	dir := path.Join(strings.TrimSuffix(prefix, "/"), id)
	byStatus := map[string][]record{}
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	for _, c := range children {
		name := uuid()
		r := record{
			ExecutionArn: "arn:aws:states:us-east-1:123456789012:execution:" + cmp.Or(w.StateMachine, "sfntest") + "/" + label + ":" + name,
			Input:        string(c.Input), InputDetails: details{Included: true}, Name: name,
			StartDate: now, StopDate: now, StateMachineArn: smArn + "/" + label,
		}
		switch {
		case c.Pending:
			r.Status = "PENDING"
		case c.Error != "":
			r.Status, r.Error, r.Cause = "FAILED", c.Error, c.Cause
			r.RedriveStatus, r.RedriveStatusReason = "REDRIVABLE", ""
		default:
			out := string(c.Output)
			r.Status, r.Output, r.OutputDetails = "SUCCEEDED", &out, &details{Included: true}
			r.RedriveStatus, r.RedriveStatusReason = "NOT_REDRIVABLE", "Execution is SUCCEEDED and cannot be redriven"
		}
		byStatus[r.Status] = append(byStatus[r.Status], r)
	}
	manifest := struct {
		DestinationBucket string                  `json:"DestinationBucket"`
		MapRunArn         string                  `json:"MapRunArn"`
		ResultFiles       map[string][]resultFile `json:"ResultFiles"`
	}{w.Bucket, run.MapRunArn, map[string][]resultFile{"FAILED": {}, "PENDING": {}, "SUCCEEDED": {}}}
	for _, status := range []string{"SUCCEEDED", "FAILED", "PENDING"} {
		recs := byStatus[status]
		per := w.PerFile
		if per <= 0 {
			per = max(len(recs), 1)
		}
		for n := 0; n*per < len(recs); n++ {
			body, err := json.Marshal(recs[n*per : min((n+1)*per, len(recs))])
			if err != nil {
				return MapRun{}, err
			}
			key := fmt.Sprintf("%s/%s_%d.json", dir, status, n)
			if err := w.Put(key, body); err != nil {
				return MapRun{}, err
			}
			manifest.ResultFiles[status] = append(manifest.ResultFiles[status], resultFile{Key: key, Size: len(body)})
		}
	}
	body, err := json.Marshal(manifest)
	if err != nil {
		return MapRun{}, err
	}
	run.ResultWriterDetails.Bucket, run.ResultWriterDetails.Key = w.Bucket, dir+"/manifest.json"
	if err := w.Put(run.ResultWriterDetails.Key, body); err != nil {
		return MapRun{}, err
	}
	return run, nil
}

func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
