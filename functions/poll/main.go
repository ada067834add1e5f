// Command poll is the poll Lambda function of atlas-billing-export.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/atlas-billing-export/atlas-billing-export/internal/function"
	"github.com/atlas-billing-export/atlas-billing-export/internal/normalize"
)

func main() {
	function.LimitMemory(os.Getenv)
	h := function.New(context.Background(), os.Getenv, os.Stderr, normalize.Parquet{})
	lambda.Start(h.Handler("poll"))
}
