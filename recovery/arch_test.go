package recovery_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/recoverydesk/recoverydesk"

// Arrows point inward only (design.md): cmd → console, bot, sqlstore → recovery. The domain
// imports the standard library, pquerna/otp and x/crypto; console and bot never import each
// other; the store knows nothing of HTTP or Telegram.
func TestImportRules(t *testing.T) {
	rules := []struct {
		pkg    string
		banned []string
	}{
		{module + "/recovery", []string{"github.com/gin-gonic/", "gorm.io/", "github.com/go-telegram-bot-api/",
			"github.com/jackc/", "github.com/mattn/go-sqlite3", module + "/recovery/sqlstore", module + "/console",
			module + "/bot", module + "/assets", "net/http"}},
		{module + "/recovery/sqlstore", []string{"github.com/gin-gonic/", "github.com/go-telegram-bot-api/",
			module + "/console", module + "/bot", "net/http"}},
		{module + "/console", []string{module + "/bot", "github.com/go-telegram-bot-api/", module + "/recovery/sqlstore", "gorm.io/"}},
		{module + "/bot", []string{module + "/console", "github.com/gin-gonic/", module + "/recovery/sqlstore", "gorm.io/"}},
	}
	for _, r := range rules {
		out, err := exec.Command("go", "list", "-deps", r.pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", r.pkg, err)
		}
		deps := strings.Fields(string(out))
		if !slices.Contains(deps, r.pkg) {
			t.Fatalf("go list -deps %s does not list the package itself: %q", r.pkg, deps)
		}
		for _, d := range deps {
			for _, b := range r.banned {
				if d == b || strings.HasPrefix(d, b) && (strings.HasSuffix(b, "/") || strings.HasPrefix(d, b+"/")) {
					t.Errorf("%s depends on %s", r.pkg, d)
				}
			}
		}
	}
}
