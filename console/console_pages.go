package console

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// consoleRoutes registers the agent console (/console/…) and the agent setup pages (/setup/…).
// The sign-in steps and setup links are open to anyone; every other console route comes from
// the role × route table (consoleTable) and passes agentAuth with its row's role.
func (s *server) consoleRoutes(r *gin.Engine) {
	r.GET("/console/signin", s.signInPage())
	r.POST("/console/signin", s.signIn())
	r.GET("/console/signin/totp", s.totpPage())
	r.POST("/console/signin/totp", s.totp())
	r.GET("/console/enroll", s.enrollPage())
	r.POST("/console/enroll", s.enroll())
	r.POST("/console/signout", s.signOut())
	r.GET("/setup/:token", s.setupPage())
	r.POST("/setup/:token", s.setup())
	for _, rt := range s.consoleTable() {
		r.Handle(rt.Method, rt.Path, s.agentAuth(rt.MinRole), rt.Handler)
	}
}

// coreConsoleRoutes is the core's part of the role × route table. Each MinRole matches the
// role the domain itself requires for the action (the domain checks again; the table keeps
// agents from seeing forms they cannot use).
func (s *server) coreConsoleRoutes() []consoleRoute {
	const (
		agent      = recovery.RoleAgent
		supervisor = recovery.RoleSupervisor
		admin      = recovery.RoleAdmin
	)
	get, post := http.MethodGet, http.MethodPost
	return []consoleRoute{
		{get, "/console", agent, s.queue()},
		{post, "/console/tickets", agent, s.openTicket()},
		{get, "/console/tickets/:id", agent, s.ticketPage()},
		{post, "/console/tickets/:id/assign", agent, s.assign()},
		{post, "/console/tickets/:id/reply", agent, s.reply()},
		{post, "/console/tickets/:id/note", agent, s.note()},
		{post, "/console/tickets/:id/checklist", agent, s.checklist()},
		{post, "/console/tickets/:id/request", agent, s.requestReset()},
		{post, "/console/tickets/:id/approve", supervisor, s.approve()},
		{post, "/console/tickets/:id/deny", supervisor, s.deny()},
		{post, "/console/tickets/:id/execute", supervisor, s.execute()},
		{post, "/console/tickets/:id/reissue", agent, s.reissue()},
		{post, "/console/tickets/:id/reject", agent, s.reject()},
		{post, "/console/tickets/:id/close", agent, s.closeTicket()},
		{post, "/console/tickets/:id/freeze", supervisor, s.freeze()},
		{post, "/console/tickets/:id/unfreeze", admin, s.unfreeze()},
		{post, "/console/stepup", agent, s.stepUp()},
	}
}
