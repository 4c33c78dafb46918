package console

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// twoFactorStatus handles GET /api/v1/accounts/:account/2fa.
func (s *server) twoFactorStatus() gin.HandlerFunc {
	type response struct {
		State             recovery.FactorState `json:"state"`
		HoldUntil         *string              `json:"hold_until"`
		RecoveryCodesLeft int                  `json:"recovery_codes_left"`
	}
	return func(c *gin.Context) {
		st, err := s.svc.TwoFactorStatus(c.Request.Context(), c.Param("account"))
		if err != nil {
			s.fail(c, err)
			return
		}
		c.JSON(http.StatusOK, response{State: st.State, HoldUntil: timeJSON(st.HoldUntil), RecoveryCodesLeft: st.RecoveryCodesLeft})
	}
}

// beginEnrollment handles POST /api/v1/accounts/:account/2fa/enrollment. The answer holds the
// new secret: it is sent once, with no-store, and never logged.
func (s *server) beginEnrollment() gin.HandlerFunc {
	type request struct {
		ReenrollToken *string `json:"reenroll_token"`
	}
	type response struct {
		Secret     string  `json:"secret"`
		ManualCode string  `json:"manual_code"`
		OTPAuthURI string  `json:"otpauth_uri"`
		QRPNG      string  `json:"qr_png"`
		ExpiresAt  *string `json:"expires_at"`
	}
	return func(c *gin.Context) {
		var req request
		if err := decode(c, &req); err != nil {
			s.fail(c, err)
			return
		}
		token := ""
		if req.ReenrollToken != nil {
			token = *req.ReenrollToken
		}
		en, err := s.svc.BeginEnrollment(c.Request.Context(), s.actor(c, ""), c.Param("account"), token)
		if err != nil {
			s.fail(c, err)
			return
		}
		c.JSON(http.StatusCreated, response{
			Secret: en.Secret, ManualCode: en.ManualCode, OTPAuthURI: en.URI,
			QRPNG: base64.StdEncoding.EncodeToString(en.QRPNG), ExpiresAt: timeJSON(en.ExpiresAt),
		})
	}
}

// confirmEnrollment handles POST /api/v1/accounts/:account/2fa/enrollment/confirm. Unlike
// verify, a wrong code is 422: the request is well-formed and authenticated, but the code
// cannot complete the enrollment (the contract of the Host API table).
func (s *server) confirmEnrollment() gin.HandlerFunc {
	type response struct {
		State         recovery.FactorState `json:"state"`
		RecoveryCodes []string             `json:"recovery_codes"`
		DriftSeconds  int                  `json:"drift_seconds"`
	}
	return func(c *gin.Context) {
		code, actor, err := s.decodeCode(c)
		if err != nil {
			s.fail(c, err)
			return
		}
		out, err := s.svc.ConfirmEnrollment(c.Request.Context(), actor, c.Param("account"), code)
		if err != nil {
			e := status(err)
			if errors.Is(err, recovery.ErrInvalidCode) {
				e.status = http.StatusUnprocessableEntity
			}
			s.answerError(c, e, err)
			return
		}
		c.JSON(http.StatusOK, response{State: recovery.StateActive, RecoveryCodes: out.RecoveryCodes, DriftSeconds: out.DriftSeconds})
	}
}

// codeAction makes the handler of a host API call that carries a code: decode, call the domain,
// answer 200 with what call returns, or the error mapped by status.
func (s *server) codeAction(call func(ctx context.Context, actor recovery.Actor, account, code string) (any, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		code, actor, err := s.decodeCode(c)
		if err != nil {
			s.fail(c, err)
			return
		}
		out, err := call(c.Request.Context(), actor, c.Param("account"), code)
		if err != nil {
			s.fail(c, err)
			return
		}
		c.JSON(http.StatusOK, out)
	}
}

// verify handles POST /api/v1/accounts/:account/2fa/verify.
func (s *server) verify() gin.HandlerFunc {
	type response struct {
		OK           bool `json:"ok"`
		DriftSeconds int  `json:"drift_seconds"`
	}
	return s.codeAction(func(ctx context.Context, actor recovery.Actor, account, code string) (any, error) {
		out, err := s.svc.Verify(ctx, actor, account, code)
		return response{OK: true, DriftSeconds: out.DriftSeconds}, err
	})
}

// useRecoveryCode handles POST /api/v1/accounts/:account/2fa/recovery-code.
func (s *server) useRecoveryCode() gin.HandlerFunc {
	type response struct {
		OK        bool `json:"ok"`
		Remaining int  `json:"remaining"`
	}
	return s.codeAction(func(ctx context.Context, actor recovery.Actor, account, code string) (any, error) {
		out, err := s.svc.UseRecoveryCode(ctx, actor, account, code)
		return response{OK: true, Remaining: out.Remaining}, err
	})
}

// regenerateRecoveryCodes handles POST /api/v1/accounts/:account/2fa/recovery-codes.
func (s *server) regenerateRecoveryCodes() gin.HandlerFunc {
	type response struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	return s.codeAction(func(ctx context.Context, actor recovery.Actor, account, code string) (any, error) {
		codes, err := s.svc.RegenerateRecoveryCodes(ctx, actor, account, code)
		return response{RecoveryCodes: codes}, err
	})
}

// disable handles DELETE /api/v1/accounts/:account/2fa (a TOTP or a recovery code in the body).
func (s *server) disable() gin.HandlerFunc {
	type response struct {
		State recovery.FactorState `json:"state"`
	}
	return s.codeAction(func(ctx context.Context, actor recovery.Actor, account, code string) (any, error) {
		return response{State: recovery.StateDisabled}, s.svc.Disable(ctx, actor, account, code)
	})
}
