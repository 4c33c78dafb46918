package console

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// agentRow is one agent in the admin list with its 2FA state.
type agentRow struct {
	recovery.Agent
	TwoFactor recovery.FactorState
}

// showAgents renders the agents admin page. setupLink, when not "", is a setup link just issued:
// shown this once (the page is no-store) and never again, as only its hash is kept.
func (s *server) showAgents(c *gin.Context, status int, msg, setupLink, linkFor string, draft map[string]string) {
	ctx := c.Request.Context()
	agents, err := s.svc.Agents(ctx)
	if err != nil {
		s.failPage(c, err)
		return
	}
	rows := make([]agentRow, 0, len(agents))
	for _, a := range agents {
		st, err := s.svc.AgentTwoFactorStatus(ctx, a.ID)
		if err != nil {
			s.failPage(c, err)
			return
		}
		rows = append(rows, agentRow{Agent: a, TwoFactor: st.State})
	}
	data := map[string]any{"Agents": rows, "Roles": []string{recovery.RoleAgent, recovery.RoleSupervisor, recovery.RoleAdmin},
		"SetupLink": setupLink, "LinkFor": linkFor, "Draft": draft}
	if msg != "" {
		data["Error"] = msg
	}
	s.renderConsole(c, status, "console/admin_agents", data)
}

func (s *server) agentsPage() gin.HandlerFunc {
	return func(c *gin.Context) { s.showAgents(c, http.StatusOK, "", "", "", nil) }
}

// agentMessage maps the domain's answers to an admin action to a status and a message.
func agentMessage(err error) (int, string) {
	switch {
	case errors.Is(err, recovery.ErrForbidden) && strings.Contains(err.Error(), "own account"):
		return http.StatusForbidden, "An admin cannot do this to their own account: ask another admin."
	case errors.Is(err, recovery.ErrForbidden):
		return http.StatusForbidden, "Your role does not allow this."
	case errors.Is(err, recovery.ErrEmailTaken):
		return http.StatusConflict, "An agent with this e-mail address exists already."
	case errors.Is(err, recovery.ErrInvalidInput):
		return http.StatusBadRequest, inputMessage(err)
	case errors.Is(err, recovery.ErrNotFound):
		return http.StatusNotFound, "There is no such agent."
	case errors.Is(err, recovery.ErrConflict):
		return http.StatusConflict, "Someone else changed this agent meanwhile. The page shows the current state."
	}
	return 0, ""
}

// agentAction runs one admin action on the agent :id and shows the list again; link is a new
// setup link to show once.
func (s *server) agentAction(do func(c *gin.Context, id string) (link string, err error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.Param("id")
		link, err := do(c, id)
		if err != nil {
			status, msg := agentMessage(err)
			if status == 0 {
				s.failPage(c, err)
				return
			}
			s.showAgents(c, status, msg, "", "", nil)
			return
		}
		if link != "" {
			s.showAgents(c, http.StatusOK, "", link, id, nil)
			return
		}
		s.setFlash(c, "saved")
		c.Redirect(http.StatusSeeOther, "/console/agents")
	}
}

// addAgent creates an agent and shows its setup link once.
func (s *server) addAgent() gin.HandlerFunc {
	return func(c *gin.Context) {
		email, name, role := strings.TrimSpace(c.PostForm("email")), strings.TrimSpace(c.PostForm("name")), c.PostForm("role")
		a, link, err := s.svc.CreateAgent(c.Request.Context(), agentActor(c), email, name, role)
		if err != nil {
			status, msg := agentMessage(err)
			if status == 0 {
				s.failPage(c, err)
				return
			}
			s.showAgents(c, status, msg, "", "", map[string]string{"email": email, "name": name, "role": role})
			return
		}
		s.showAgents(c, http.StatusCreated, "", link, a.ID, nil)
	}
}

func (s *server) agentRole() gin.HandlerFunc {
	return s.agentAction(func(c *gin.Context, id string) (string, error) {
		_, err := s.svc.SetAgentRole(c.Request.Context(), agentActor(c), currentAgent(c).ID, id, c.PostForm("role"))
		return "", err
	})
}

func (s *server) agentDisable() gin.HandlerFunc {
	return s.agentAction(func(c *gin.Context, id string) (string, error) {
		_, err := s.svc.DisableAgent(c.Request.Context(), agentActor(c), currentAgent(c).ID, id)
		return "", err
	})
}

func (s *server) agentEnable() gin.HandlerFunc {
	return s.agentAction(func(c *gin.Context, id string) (string, error) {
		_, err := s.svc.EnableAgent(c.Request.Context(), agentActor(c), currentAgent(c).ID, id)
		return "", err
	})
}

func (s *server) agentReset2FA() gin.HandlerFunc {
	return s.agentAction(func(c *gin.Context, id string) (string, error) {
		_, err := s.svc.ResetAgentTwoFactor(c.Request.Context(), agentActor(c), currentAgent(c).ID, id)
		return "", err
	})
}

func (s *server) agentSetupLink() gin.HandlerFunc {
	return s.agentAction(func(c *gin.Context, id string) (string, error) {
		return s.svc.IssueSetupLink(c.Request.Context(), agentActor(c), currentAgent(c).ID, id)
	})
}
