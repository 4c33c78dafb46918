package console

import (
	"net/http"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// moreConsoleRoutes lists the console's secondary pages (CONSOLE2's part of the role × route
// table in console_auth.go). Each MinRole is the least role the page's purpose needs: approvals
// and the audit log are supervisors' work, managing agents is an admin's; the domain checks the
// admin actions again.
func (s *server) moreConsoleRoutes() []consoleRoute {
	const (
		agent      = recovery.RoleAgent
		supervisor = recovery.RoleSupervisor
		admin      = recovery.RoleAdmin
	)
	get, post := http.MethodGet, http.MethodPost
	// The verify status is cached for all requests of this server: built once here, with the
	// handlers that share it.
	verify := &recovery.VerifyCache{}
	return []consoleRoute{
		{get, "/console/approvals", supervisor, s.approvalsPage()},
		{get, "/console/accounts", agent, s.accountsPage()},
		{get, "/console/audit", supervisor, s.auditPage(verify)},
		{get, "/console/audit/export.jsonl", supervisor, s.auditExportJSONL()},
		{get, "/console/audit/export.csv", supervisor, s.auditExportCSV()},
		{get, "/console/outbox", agent, s.outboxPage()},
		{get, "/console/dashboard", agent, s.dashboardPage()},
		{get, "/console/agents", admin, s.agentsPage()},
		{post, "/console/agents", admin, s.addAgent()},
		{post, "/console/agents/:id/role", admin, s.agentRole()},
		{post, "/console/agents/:id/disable", admin, s.agentDisable()},
		{post, "/console/agents/:id/enable", admin, s.agentEnable()},
		{post, "/console/agents/:id/reset-2fa", admin, s.agentReset2FA()},
		{post, "/console/agents/:id/setup-link", admin, s.agentSetupLink()},
	}
}
