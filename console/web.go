package console

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// htmlCSP is the Content-Security-Policy of every HTML page (security.md rule 5): no inline
// script or style, scripts and styles from our own /static only, images from us or data: URIs
// (QR codes), forms posting only to us, and no framing.
const htmlCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// templateFuncs are the helpers every template may use.
func templateFuncs() template.FuncMap {
	return template.FuncMap{
		// since is the age of t at now in the console's short form ("3h 10m"); "—" for never.
		"since": func(now, t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return ago(now.Sub(t))
		},
		// until is the time left from now to t ("0s" once passed); "—" for never.
		"until": func(now, t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return ago(t.Sub(now))
		},
		// ts writes a time in UTC to the minute; "—" for never.
		"ts": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
		// humanize turns an identifier like "pending_approval" into "pending approval".
		"humanize": func(v any) string { return strings.ReplaceAll(fmt.Sprint(v), "_", " ") },
	}
}

// pages holds one template set per page: templates/layout.html and the shared partials
// (templates/_*.html) cloned with the page's own file, so that every page can define its
// "title" and "content" blocks without overwriting another page's.
type pages map[string]*template.Template

// parsePages parses every page template under templates/ (and its subfolders) once; a broken
// one fails New. A page is named by its path under templates/ without ".html", e.g.
// "console/queue" or "account/signin".
func parsePages(fsys fs.FS, funcs template.FuncMap) (pages, error) {
	base := template.New("").Funcs(funcs)
	var partials []string
	var files []string
	err := fs.WalkDir(fsys, "templates", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".html") {
			return err
		}
		if name := path.Base(p); name == "layout.html" || strings.HasPrefix(name, "_") {
			partials = append(partials, p)
		} else {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	if len(partials) == 0 {
		return nil, fmt.Errorf("console: templates: no templates/layout.html")
	}
	if _, err := base.ParseFS(fsys, partials...); err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	out := pages{}
	for _, f := range files {
		t, err := base.Clone()
		if err != nil {
			return nil, err
		}
		if _, err := t.ParseFS(fsys, f); err != nil {
			return nil, fmt.Errorf("console: templates: %w", err)
		}
		out[strings.TrimSuffix(strings.TrimPrefix(f, "templates/"), ".html")] = t
	}
	return out, nil
}

// render writes page (executed through "layout") with status and the HTML security headers.
// The page is rendered into a buffer first, so that a template error becomes a clean 500
// instead of half a page.
func (s *server) render(c *gin.Context, status int, page string, data any) {
	t, ok := s.pages[page]
	if !ok {
		s.failPage(c, fmt.Errorf("console: no page %q", page))
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		s.failPage(c, fmt.Errorf("console: render %s: %w", page, err))
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", htmlCSP)
	// Pages show account data, codes or links: never cache them (security.md rule 5 asks for
	// no-store on pages with codes; the console shows personal data on every page).
	h.Set("Cache-Control", "no-store")
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

// failPage answers a server error on an HTML page as plain text and records the cause for the
// request log.
func (s *server) failPage(c *gin.Context, err error) {
	state(c).cause = err
	c.Header("Content-Security-Policy", htmlCSP)
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("Something went wrong on our side. Please try again.\n"))
	c.Abort()
}

// staticFiles serves static/ of fsys (CSS, the few scripts, icons) with a cache of an hour:
// the files are embedded in the binary and change only with it.
func staticFiles(fsys fs.FS) (gin.HandlerFunc, error) {
	sub, err := fs.Sub(fsys, "static")
	if err != nil {
		return nil, fmt.Errorf("console: static files: %w", err)
	}
	files := http.FileServer(http.FS(sub))
	return func(c *gin.Context) {
		c.Header("Cache-Control", "public, max-age=3600")
		c.Request.URL.Path = c.Param("file")
		files.ServeHTTP(c.Writer, c.Request)
	}, nil
}
