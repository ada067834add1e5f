package atlassim

import (
	"context"
	_ "embed"
	"fmt"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// billingSpec is the official Atlas Admin API v2 billing subset (source and
// licence on its first line). The simulator accepts and answers only what it allows.
//
//go:embed spec/billing-subset.yaml
var billingSpec []byte

// loadSpec parses and validates the embedded spec and builds a router that
// matches any host: the spec's only server is https://cloud.mongodb.com, and
// the simulator listens on loopback.
func loadSpec() (*openapi3.T, routers.Router, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(billingSpec)
	if err != nil {
		return nil, nil, fmt.Errorf("load embedded spec: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, nil, fmt.Errorf("validate embedded spec: %w", err)
	}
	// A server URL of "/" has no host or scheme, so routes match any host.
	doc.Servers = openapi3.Servers{{URL: "/"}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, nil, fmt.Errorf("build spec router: %w", err)
	}
	return doc, router, nil
}
