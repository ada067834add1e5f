// Command atlas-billing-export exports MongoDB Atlas billing data: run the export here, invoke one
// function step, start the Atlas simulator, or start and backfill the deployed state machine.
// Run it with --help for the subcommands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/atlas-billing-export/atlas-billing-export/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.New().Main(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
