package console

import "github.com/gin-gonic/gin"

// accountRoutes registers the end-user pages: /account/…, /reenroll/{token}, /veto/{token}.
func (s *server) accountRoutes(r *gin.Engine) {}
