package browsertest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/recoverydesk/recoverydesk/console/browsertest"
)

// TestBrowserRendersAPage proves the harness drives a real Chromium: it loads a page, reads
// text that only script could have written, and takes a screenshot.
func TestBrowserRendersAPage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><p id="p">static</p><script>document.getElementById("p").textContent = "scripted"</script>`)
	}))
	defer srv.Close()
	ctx := browsertest.New(t, browsertest.PhoneWidth, browsertest.PhoneHeight)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text("#p"))
	if err != nil {
		t.Fatal(err)
	}
	if text != "scripted" {
		t.Fatalf("page text %q", text)
	}
	browsertest.Screenshot(t, ctx, t.TempDir(), "page")
}
