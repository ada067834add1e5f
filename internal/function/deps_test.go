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
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	const module = "github.com/atlas-billing-export/atlas-billing-export/"
	forbidden := []string{"testing", module + "internal/testenv", module + "internal/e2e", module + "internal/sfntest", module + "internal/atlassim"}
	for _, tags := range []string{"", "lambda.norpc"} {
		out, err := exec.Command(goTool, "list", "-tags", tags, "-deps", "../../functions/...").CombinedOutput()
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
					t.Errorf("a function links %s (tags %q)", d, tags)
				}
			}
		}
	}
}
