// Command submit is the submit Lambda function of atlas-billing-export.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/atlas-billing-export/atlas-billing-export/internal/function"
)

func main() {
	function.LimitMemory(os.Getenv)
	// No normalizer: submit stores no file, and so links no Parquet writer.
	h := function.New(context.Background(), os.Getenv, os.Stderr, nil)
	lambda.Start(h.Handler("submit"))
}
