// Package mutate measures how many small planted bugs the unit tests catch:
// mutation testing of the core packages with gremlins.
//
// Run it with `make mutate`. The run lives in a _test.go file behind the
// "mutate" build tag, so `go test ./...` leaves it out; `make test` only
// checks equivalent.txt, the mutants excused from the score, each with the
// reason no test can kill it.
package mutate
