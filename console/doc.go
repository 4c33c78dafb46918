// Package console is RecoveryDesk's HTTP surface, built on Gin and hidden behind New: for now the
// host JSON API (/api/v1), the health endpoints and the middleware every request passes through
// (request id, request log, panic recovery, security headers, body limit, trusted proxies). The
// agent console, the end-user pages and the webhook endpoints join the same surface later.
//
// The package holds no business rule: handlers decode and check the shape of input, call
// recovery.Service, and map the domain's sentinel errors to a status and an error code in one
// place (status in errors.go). The whole URL surface is in routes.go.
package console
