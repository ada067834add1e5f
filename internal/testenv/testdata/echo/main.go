// Command echo is a test-only Lambda function for the Runtime API harness: it
// answers its input, except for a few string commands.
package main

import (
	"context"
	"encoding/json"
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

func handle(ctx context.Context, in json.RawMessage) (any, error) {
	var cmd string
	if json.Unmarshal(in, &cmd) == nil {
		switch cmd {
		case "invalid":
			// aws-lambda-go keeps the Type only for this value type.
			return nil, messages.InvokeResponse_Error{Type: "Input.Invalid", Message: "input is invalid"}
		case "exit":
			os.Exit(3)
		case "sleep":
			time.Sleep(50 * time.Millisecond) // a known minimum duration
			return "slept", nil
		case "env":
			return os.Getenv("ECHO_VALUE"), nil
		case "context":
			lc, _ := lambdacontext.FromContext(ctx)
			deadline, _ := ctx.Deadline()
			return map[string]any{
				"requestId":   lc.AwsRequestID,
				"functionArn": lc.InvokedFunctionArn,
				"deadlineSet": time.Until(deadline) > 0,
			}, nil
		}
	}
	log.Printf("echo: %d bytes", len(in))
	return in, nil
}

func main() {
	if msg := os.Getenv("ECHO_INIT_FAIL"); msg != "" {
		quoted, _ := json.Marshal(msg)
		body := `{"errorMessage":` + string(quoted) + `,"errorType":"Config.Invalid"}`
		resp, err := http.Post("http://"+os.Getenv("AWS_LAMBDA_RUNTIME_API")+"/2018-06-01/runtime/init/error", "application/json", strings.NewReader(body))
		if err == nil {
			resp.Body.Close()
		}
		os.Exit(1)
	}
	lambda.Start(handle)
}
