package console

import "github.com/gin-gonic/gin"

// routes is the whole URL surface. Middleware order: observe (request id, panic recovery, the
// log line) wraps everything, including 404/405 answers; secure (headers, cross-origin refusal,
// body limit) comes next; the API group adds the key check and the account id check before any
// body is read.
func (s *server) routes(r *gin.Engine) {
	r.Use(s.observe(), s.secure())
	r.NoRoute(s.noRoute())
	r.NoMethod(s.noMethod())

	r.GET("/healthz", s.healthz())
	r.GET("/readyz", s.readyz())
	r.GET("/api/openapi.yaml", s.openAPI())
	r.GET("/static/*file", s.static)

	s.consoleRoutes(r) // the agent console under /console, and /setup/<token> (console_*.go)
	s.accountRoutes(r) // the end-user pages /account, /reenroll, /veto (account_*.go)
	if s.telegramWebhook != nil {
		r.POST("/telegram/webhook", gin.WrapH(s.telegramWebhook))
	}

	account := r.Group("/api/v1/accounts/:account", s.apiKey(), s.validAccount())
	account.PUT("", s.upsertAccount())
	account.GET("/2fa", s.twoFactorStatus())
	account.DELETE("/2fa", s.disable())
	account.POST("/2fa/enrollment", s.beginEnrollment())
	account.POST("/2fa/enrollment/confirm", s.confirmEnrollment())
	account.POST("/2fa/verify", s.verify())
	account.POST("/2fa/recovery-code", s.useRecoveryCode())
	account.POST("/2fa/recovery-codes", s.regenerateRecoveryCodes())
}
