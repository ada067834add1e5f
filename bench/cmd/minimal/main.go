// Command minimal is the cold-start floor of the benchmark: the smallest
// aws-lambda-go function, which returns its input.
package main

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(_ context.Context, in json.RawMessage) (json.RawMessage, error) { return in, nil })
}
