// Package bench measures what users pay for: flat memory and near-wire speed
// while streaming invoice CSVs, cold starts, poll economy and the cost of a
// monthly export. Each figure is a ratio against a floor measured in the same
// run on the same machine.
//
// Run it with `make bench`. The benchmark itself lives in _test.go files
// behind the "bench" build tag, so `go test ./...` and `go vet ./...` leave
// it out; it uses the same harness as the tests (versitygw, the Atlas
// simulator, aws-local-stepfunctions, a Lambda Runtime API). The programs it
// measures as child processes are under cmd/: download and upload are the
// floors, minimal is the smallest aws-lambda-go function.
package bench
