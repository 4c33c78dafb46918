package assets_test

import (
	"io/fs"
	"testing"

	"github.com/recoverydesk/recoverydesk/assets"
)

// TestEmbedded: the files the console needs are in the binary.
func TestEmbedded(t *testing.T) {
	for _, name := range []string{"openapi.yaml", "templates/layout.html", "static/style.css"} {
		b, err := fs.ReadFile(assets.FS, name)
		if err != nil || len(b) == 0 {
			t.Errorf("%s: %v (%d bytes)", name, err, len(b))
		}
	}
}
