package console

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// errorBody is every error answer: {"error":"<code>","message":"<text>"}, plus
// retry_after_seconds on 429.
type errorBody struct {
	Error             string `json:"error"`
	Message           string `json:"message"`
	RetryAfterSeconds int    `json:"retry_after_seconds,omitempty"`
}

// apiError is an answer decided by status.
type apiError struct {
	status  int
	code    string
	message string
	// retryAfter is set (≥ 1 s) for 429.
	retryAfter int
	// internal marks answers whose cause must go to the log (5xx): the client learns nothing.
	internal bool
}

// status maps an error from the domain or from decoding to the answer the API gives. It is the
// only place that knows the mapping; handlers whose contract differs adjust its result (confirm
// answers invalid_code with 422). Messages come from a fixed table, except for bad input, whose
// text the domain writes to be shown to the caller (it never quotes the input).
func status(err error) apiError {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return apiError{status: http.StatusRequestEntityTooLarge, code: "payload_too_large",
			message: "request body is larger than " + strconv.FormatInt(tooLarge.Limit, 10) + " bytes"}
	case errors.Is(err, recovery.ErrInvalidInput):
		return apiError{status: http.StatusBadRequest, code: "invalid_request", message: inputMessage(err)}
	case errors.Is(err, recovery.ErrUnauthorized):
		return apiError{status: http.StatusUnauthorized, code: "unauthorized", message: "a valid API key is required (Authorization: Bearer <key>)"}
	case errors.Is(err, recovery.ErrInvalidCode):
		return apiError{status: http.StatusUnauthorized, code: "invalid_code", message: "the code is wrong or was already used"}
	case errors.Is(err, recovery.ErrNotFound):
		return apiError{status: http.StatusNotFound, code: "not_found", message: "no such account"}
	case errors.Is(err, recovery.ErrEmailTaken):
		return apiError{status: http.StatusConflict, code: "email_taken", message: "the e-mail address belongs to another account"}
	case errors.Is(err, recovery.ErrAlreadyEnrolled):
		return apiError{status: http.StatusConflict, code: "already_enrolled", message: "two-factor authentication is already active"}
	case errors.Is(err, recovery.ErrRecoveryRequired):
		return apiError{status: http.StatusConflict, code: "recovery_required", message: "two-factor authentication must be recovered through support (or re-enrolled with a valid link)"}
	case errors.Is(err, recovery.ErrNotEnrolled):
		return apiError{status: http.StatusConflict, code: "not_enrolled", message: "two-factor authentication is not enrolled"}
	case errors.Is(err, recovery.ErrConflict):
		return apiError{status: http.StatusConflict, code: "conflict", message: "a conflicting change happened; retry"}
	case errors.Is(err, recovery.ErrExpired):
		return apiError{status: http.StatusGone, code: "expired", message: "the pending enrollment has expired; start a new one"}
	case errors.Is(err, recovery.ErrRecoveryCodesSuspended):
		return apiError{status: http.StatusLocked, code: "suspended", message: "recovery codes are suspended after too many failed codes; contact support"}
	case errors.Is(err, recovery.ErrSuspended):
		return apiError{status: http.StatusLocked, code: "suspended", message: "two-factor authentication is suspended after too many failed codes; use a recovery code or contact support"}
	case errors.Is(err, recovery.ErrTooManyAttempts):
		wait, _ := recovery.RetryAfter(err)
		secs := recovery.RetryAfterSeconds(wait)
		return apiError{status: http.StatusTooManyRequests, code: "too_many_attempts",
			message: "too many attempts; retry after " + strconv.Itoa(secs) + " s", retryAfter: secs}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return apiError{status: http.StatusServiceUnavailable, code: "unavailable", message: "the request was cancelled or timed out", internal: true}
	default:
		return apiError{status: http.StatusInternalServerError, code: "internal_error", message: "internal error", internal: true}
	}
}

// inputMessage is the caller-facing part of a bad-input error, without the sentinel's prefix.
func inputMessage(err error) string {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, recovery.ErrInvalidInput.Error()+": "); ok && rest != "" {
		return rest
	}
	return msg
}

// invalid builds a bad-input error carrying a message for the caller.
func invalid(msg string) error {
	return &inputError{msg: msg}
}

type inputError struct{ msg string }

func (e *inputError) Error() string { return recovery.ErrInvalidInput.Error() + ": " + e.msg }
func (e *inputError) Unwrap() error { return recovery.ErrInvalidInput }

// fail answers err and stops the handler chain.
func (s *server) fail(c *gin.Context, err error) {
	s.answerError(c, status(err), err)
}

// answerError writes e. The cause of an internal answer goes to the request's log line only.
func (s *server) answerError(c *gin.Context, e apiError, cause error) {
	rs := state(c)
	rs.errorCode = e.code
	if e.internal && cause != nil {
		rs.cause = cause
	}
	if e.retryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(e.retryAfter))
	}
	c.AbortWithStatusJSON(e.status, errorBody{Error: e.code, Message: e.message, RetryAfterSeconds: e.retryAfter})
}
