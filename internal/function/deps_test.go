package function_test

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestFunctionsLinkNoTestSupport fails if a Lambda binary links a package
// made for tests: the simulator, the test environments, or testing itself.
func TestFunctionsLinkNoTestSupport(t *testing.T) {
	forbidden := []string{"testing", module + "internal/testenv", module + "internal/e2e", module + "internal/sfntest", module + "internal/atlassim"}
	checkDeps(t, "../../functions/...", forbidden)
}

// TestSubmitLinksNoParquet fails if the submit function, which stores no
// file, links the normalizer or the Parquet writer: parquet-go and what it
// imports (every codec, protobuf, go-geom) make a binary twice the size
// and add a millisecond of package initialization to each cold start.
func TestSubmitLinksNoParquet(t *testing.T) {
	checkDeps(t, "../../functions/submit", []string{module + "internal/normalize", "github.com/parquet-go/parquet-go"})
}

const module = "github.com/atlas-billing-export/atlas-billing-export/"

// checkDeps fails if pkgs link a package of forbidden (or one under it),
// built as the tests or as Lambda builds them.
func checkDeps(t *testing.T, pkgs string, forbidden []string) {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	for _, tags := range []string{"", "lambda.norpc"} {
		out, err := exec.Command(goTool, "list", "-tags", tags, "-deps", pkgs).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps: %v\n%s", err, out)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 50 {
			t.Fatalf("go list -deps listed %d packages: %q", len(deps), deps)
		}
		for _, d := range deps {
			for _, f := range forbidden {
				if d == f || strings.HasPrefix(d, f+"/") {
					t.Errorf("%s links %s (tags %q)", pkgs, d, tags)
				}
			}
		}
	}
}
