package recovery_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The domain imports the standard library, pquerna/otp and x/crypto only: never an adapter's library.
func TestDomainImportsNoAdapter(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps returned %d packages: %q", len(deps), deps)
	}
	for _, d := range deps {
		for _, banned := range []string{"github.com/gin-gonic/", "gorm.io/", "github.com/go-telegram-bot-api/", "/recovery/sqlstore", "/console", "/bot", "net/http"} {
			if strings.Contains(d, banned) {
				t.Errorf("recovery depends on %s", d)
			}
		}
	}
}
