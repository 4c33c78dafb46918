package console

// An internal test: New reads the embedded assets, which a test cannot break, so the two
// start-up checks New relies on are tried here on file systems made for the purpose.

import (
	"testing"
	"testing/fstest"
)

func TestStartupRefusesBrokenAssets(t *testing.T) {
	good := `{{define "layout"}}<p>{{.}}</p>{{end}}`
	openapi := "openapi: 3.0.3\npaths:\n  /healthz: {}\n"
	for _, c := range []struct {
		name    string
		files   fstest.MapFS
		wantErr bool
	}{
		{"good", fstest.MapFS{"templates/layout.html": {Data: []byte(good)}, "openapi.yaml": {Data: []byte(openapi)}}, false},
		{"unclosed action", fstest.MapFS{"templates/layout.html": {Data: []byte(`{{define "layout"}}{{.Name`)}, "openapi.yaml": {Data: []byte(openapi)}}, true},
		{"no templates", fstest.MapFS{"openapi.yaml": {Data: []byte(openapi)}}, true},
		{"broken page", fstest.MapFS{"templates/layout.html": {Data: []byte(good)}, "templates/x/page.html": {Data: []byte(`{{define "content"}}{{end`)},
			"openapi.yaml": {Data: []byte(openapi)}}, true},
		{"openapi missing", fstest.MapFS{"templates/layout.html": {Data: []byte(good)}}, true},
		{"openapi not YAML", fstest.MapFS{"templates/layout.html": {Data: []byte(good)}, "openapi.yaml": {Data: []byte("openapi: [3.0\n")}}, true},
		{"openapi 2", fstest.MapFS{"templates/layout.html": {Data: []byte(good)}, "openapi.yaml": {Data: []byte("swagger: '2.0'\npaths:\n  /x: {}\n")}}, true},
		{"openapi without paths", fstest.MapFS{"templates/layout.html": {Data: []byte(good)}, "openapi.yaml": {Data: []byte("openapi: 3.0.3\n")}}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, errT := parsePages(c.files, templateFuncs())
			_, errO := loadOpenAPI(c.files)
			if got := errT != nil || errO != nil; got != c.wantErr {
				t.Fatalf("templates: %v; openapi: %v; want an error: %v", errT, errO, c.wantErr)
			}
		})
	}
}
