package console_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/recoverydesk/recoverydesk/console/browsertest"
)

// TestBrowserAccount drives the end-user pages in real Chromium, on a desktop and a phone-sized
// viewport: sign in, enable 2FA by reading the manual code from the page and computing the code
// here, see the recovery codes, sign out, sign in with a code; then re-enroll from the link of a
// ticket executed through the domain. Screenshots account-<size>-<step>.png go to
// $RECOVERYDESK_SCREENSHOTS when set.
func TestBrowserAccount(t *testing.T) {
	for _, size := range []struct {
		name string
		w, h int
	}{{"desktop", browsertest.DesktopWidth, browsertest.DesktopHeight}, {"phone", browsertest.PhoneWidth, browsertest.PhoneHeight}} {
		t.Run(size.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			e.user(t)
			ctx := browsertest.New(t, size.w, size.h)
			dir := browsertest.ScreenshotDir()
			if dir == "" {
				dir = t.TempDir()
			}
			shot := func(step string) { browsertest.Screenshot(t, ctx, dir, "account-"+size.name+"-"+step) }
			do := func(steps ...chromedp.Action[chromedp.Void]) {
				t.Helper()
				if err := chromedp.Do(ctx, steps...); err != nil {
					t.Fatal(err)
				}
			}
			text := func(sel string) string {
				t.Helper()
				v, err := chromedp.Run(ctx, chromedp.Text(sel))
				if err != nil {
					t.Fatal(err)
				}
				return v
			}

			do(chromedp.Navigate(e.srv.URL+"/account"), chromedp.WaitVisible("#email"))
			shot("1-signin")
			do(chromedp.SendKeys("#email", userEmail), chromedp.SendKeys("#password", userPassword), chromedp.Click("#signin"),
				chromedp.WaitVisible("#enable-password"))
			shot("2-security")
			do(chromedp.SendKeys("#enable-password", userPassword), chromedp.Click("#enable"), chromedp.WaitVisible("#manual-code"))
			shot("3-enroll")
			secret := strings.ReplaceAll(text("#manual-code"), " ", "")
			do(chromedp.SendKeys("#code", codeAt(t, secret, e.clock.Now(), 0)), chromedp.Click("#confirm"), chromedp.WaitVisible("#recovery-codes"))
			shot("4-recovery-codes")
			if n := strings.Count(text("#recovery-codes"), "-"); n != 30 {
				t.Fatalf("recovery codes on the page: %q", text("#recovery-codes"))
			}
			do(chromedp.Click("#saved"), chromedp.WaitVisible("#signout"))
			shot("5-security-on")
			do(chromedp.Click("#signout"), chromedp.WaitVisible("#email"))
			do(chromedp.SendKeys("#email", userEmail), chromedp.SendKeys("#password", userPassword), chromedp.Click("#signin"),
				chromedp.WaitVisible("#code"))
			shot("6-code")
			do(chromedp.SendKeys("#code", "000000"), chromedp.Click("#verify"), chromedp.WaitVisible("#error"))
			shot("7-code-refused")
			e.clock.Add(30 * time.Second)
			do(chromedp.SendKeys("#code", codeAt(t, secret, e.clock.Now(), 0)), chromedp.Click("#verify"), chromedp.WaitVisible("#signout"))
			if !strings.Contains(text("#state"), "On") {
				t.Fatalf("2FA state: %q", text("#state"))
			}

			// Re-enrollment from the link of a real executed ticket.
			_, token := e.desk(t, true)
			do(chromedp.Navigate(e.srv.URL+"/reenroll/"+token), chromedp.WaitVisible("#password"))
			shot("8-reenroll")
			do(chromedp.SendKeys("#password", userPassword), chromedp.Click("#continue"), chromedp.WaitVisible("#manual-code"))
			shot("9-reenroll-scan")
			secret = strings.ReplaceAll(text("#manual-code"), " ", "")
			e.clock.Add(30 * time.Second)
			do(chromedp.SendKeys("#code", codeAt(t, secret, e.clock.Now(), 0)), chromedp.Click("#confirm"), chromedp.WaitVisible("#recovery-codes"))
			shot("10-reenroll-done")
			do(chromedp.Navigate(e.srv.URL+"/reenroll/"+token), chromedp.WaitVisible("#title"))
			if got := text("#title"); got != "This link is not valid any more" {
				t.Fatalf("used link: %q", got)
			}
			shot("11-link-invalid")
		})
	}
}
