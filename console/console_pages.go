package console

import "github.com/gin-gonic/gin"

// consoleRoutes registers the agent console (/console/…) and the agent setup pages (/setup/…).
func (s *server) consoleRoutes(r *gin.Engine) {}
