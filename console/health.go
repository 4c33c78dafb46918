package console

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// readyTimeout bounds the database ping of /readyz, so a hung database answers 503 in time for
// a load balancer's probe instead of holding the probe open.
const readyTimeout = 3 * time.Second

type healthResponse struct {
	Status string `json:"status"`
}

// healthz answers whether the process serves; it touches no database, so a database outage
// does not get healthy replicas restarted.
func (s *server) healthz() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.JSON(http.StatusOK, healthResponse{Status: "ok"})
	}
}

// readyz answers whether the database answers (recovery.Service.Ready).
func (s *server) readyz() gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), readyTimeout)
		defer cancel()
		if err := s.svc.Ready(ctx); err != nil {
			s.answerError(c, apiError{status: http.StatusServiceUnavailable, code: "not_ready",
				message: "the database does not answer", internal: true}, err)
			return
		}
		c.JSON(http.StatusOK, healthResponse{Status: "ready"})
	}
}

// openAPI serves the embedded OpenAPI description, checked at start-up.
func (s *server) openAPI() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Data(http.StatusOK, "application/yaml", s.openapi)
	}
}

// noRoute answers unknown paths in the API's error shape.
func (s *server) noRoute() gin.HandlerFunc {
	return func(c *gin.Context) {
		s.answerError(c, apiError{status: http.StatusNotFound, code: "not_found", message: "no such route"}, nil)
	}
}

// noMethod answers a known path with a method it does not take; gin sets the Allow header.
func (s *server) noMethod() gin.HandlerFunc {
	return func(c *gin.Context) {
		s.answerError(c, apiError{status: http.StatusMethodNotAllowed, code: "method_not_allowed", message: "method not allowed on this route"}, nil)
	}
}
