// Package assets embeds the files the HTTP surface serves or renders: the HTML templates
// (templates/), the static files (static/: CSS, tiny JS, icons) and the OpenAPI description of
// the host API (openapi.yaml). It holds no logic; the console parses and validates what it
// needs once at start-up, so a broken file stops start-up instead of failing a request.
package assets

import "embed"

// FS holds templates/, static/ and openapi.yaml, with those paths. It is read-only: an embed.FS
// cannot be changed at run time, so sharing it is not shared mutable state.
//
//go:embed all:templates static openapi.yaml
var FS embed.FS
