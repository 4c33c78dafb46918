// Package browsertest starts a real Chromium for the console's browser tests (chromedp). Tests
// skip with a clear message when Chromium is absent, except under CI=true, where its absence
// is a failure (.ci/run installs it).
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Viewports the tests take screenshots in.
const (
	DesktopWidth, DesktopHeight = 1280, 900
	PhoneWidth, PhoneHeight     = 390, 844 // a current phone, CSS pixels
)

// chromiumPath finds the browser: $CHROMIUM, /usr/bin/chromium, or chromium / google-chrome on
// the PATH.
func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// chromedp v0.23's API differs from most examples online: actions are typed values,
// chromedp.Do(ctx, steps...) runs Action[Void] steps, and chromedp.Run(ctx, action) returns an
// action's result, e.g. text, err := chromedp.Run(ctx, chromedp.Text("#id")).

// New starts a headless Chromium with a window of width × height and returns a browser context
// (one tab) that ends with the test. Every chromedp action gets the test's deadline.
func New(t testing.TB, width, height int) context.Context {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("Chromium not found (CI=true requires the browser tests): install it (apt-get install chromium) or set CHROMIUM")
		}
		t.Skip("Chromium not found: browser test skipped (install chromium or set CHROMIUM to run it)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // CI runs as root
		chromedp.WindowSize(width, height),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "en-US"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	deadline := 3 * time.Minute
	tctx, cancelT := context.WithTimeout(ctx, deadline)
	t.Cleanup(func() {
		cancelT()
		cancelCtx()
		cancelAlloc()
	})
	if err := chromedp.Do(tctx); err != nil { // starts the browser
		t.Fatalf("start Chromium %s: %v", path, err)
	}
	return tctx
}

// Screenshot saves a full-page PNG of the current page as dir/name.png when dir is not empty
// (tests take dir from RECOVERYDESK_SCREENSHOTS, so that `go test` alone writes nothing).
func Screenshot(t testing.TB, ctx context.Context, dir, name string) {
	t.Helper()
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// ScreenshotDir is where browser tests write their screenshots: $RECOVERYDESK_SCREENSHOTS, or
// "" (none) when unset. The README's screenshots are made with
// RECOVERYDESK_SCREENSHOTS=$PWD/docs/screenshots go test -run Browser ./console/.
func ScreenshotDir() string { return os.Getenv("RECOVERYDESK_SCREENSHOTS") }
