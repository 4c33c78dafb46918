package console

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// accountJSON is an account as the host reads it: never the password hash or the facts.
type accountJSON struct {
	ID          string  `json:"id"`
	Email       string  `json:"email"`
	DisplayName string  `json:"display_name"`
	Phone       string  `json:"phone"`
	Staff       bool    `json:"staff"`
	HasPassword bool    `json:"has_password"`
	CreatedAt   *string `json:"created_at"`
	UpdatedAt   *string `json:"updated_at"`
}

func newAccountJSON(a recovery.Account) accountJSON {
	return accountJSON{
		ID: a.ID, Email: a.Email, DisplayName: a.DisplayName, Phone: a.Phone, Staff: a.Staff,
		HasPassword: a.PasswordHash != "", CreatedAt: timeJSON(a.CreatedAt), UpdatedAt: timeJSON(a.UpdatedAt),
	}
}

// upsertAccount handles PUT /api/v1/accounts/:account: 201 when it created the account, 200
// when it updated it. Fields left out keep their stored values.
func (s *server) upsertAccount() gin.HandlerFunc {
	type request struct {
		Email       *string        `json:"email"`
		DisplayName *string        `json:"display_name"`
		Phone       *string        `json:"phone"`
		Staff       *bool          `json:"staff"`
		Password    *string        `json:"password"`
		Facts       map[string]any `json:"facts"`
	}
	return func(c *gin.Context) {
		var req request
		if err := decode(c, &req); err != nil {
			s.fail(c, err)
			return
		}
		a, created, err := s.svc.UpsertAccount(c.Request.Context(), s.actor(c, ""), c.Param("account"), recovery.AccountInput{
			Email: req.Email, DisplayName: req.DisplayName, Phone: req.Phone, Staff: req.Staff,
			Password: req.Password, Facts: req.Facts,
		})
		if err != nil {
			s.fail(c, err)
			return
		}
		code := http.StatusOK
		if created {
			code = http.StatusCreated
		}
		c.JSON(code, newAccountJSON(a))
	}
}
