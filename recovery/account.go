package recovery

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"unicode/utf8"
)

// CheckAccountID refuses (with ErrInvalidInput) an id that cannot name an account: it must be
// 1-128 of letters, digits and . _ : @ - (ASCII). A byte loop, not a regular expression: every
// host API request checks its id, some twice.
func CheckAccountID(id string) error {
	if len(id) == 0 || len(id) > 128 {
		return invalidf("account id must be 1-128 letters, digits or . _ : @ -")
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == ':' || c == '@' || c == '-') {
			return invalidf("account id must be 1-128 letters, digits or . _ : @ -")
		}
	}
	return nil
}

// AccountInput is an upsert. A nil field keeps the stored value; on creation Email is required.
type AccountInput struct {
	Email       *string
	DisplayName *string
	Phone       *string
	Staff       *bool
	Password    *string        // stored as Argon2id, never returned
	Facts       map[string]any // replaces all facts when not nil; values are strings, numbers or booleans
}

func validText(field, v string, max int) error {
	if !utf8.ValidString(v) {
		return invalidf("%s is not valid UTF-8", field)
	}
	if utf8.RuneCountInString(v) > max {
		return invalidf("%s is longer than %d characters", field, max)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return invalidf("%s contains control characters", field)
		}
	}
	return nil
}

func validEmail(e string) error {
	if err := validText("email", e, 254); err != nil {
		return err
	}
	local, domain, ok := strings.Cut(e, "@")
	if !ok || local == "" || domain == "" || strings.ContainsAny(e, " \t") || strings.Contains(domain, "@") || !strings.Contains(domain, ".") {
		return invalidf("email is not an e-mail address")
	}
	return nil
}

func validPhone(p string) error {
	if err := validText("phone", p, 32); err != nil {
		return err
	}
	for _, r := range p {
		if !strings.ContainsRune("0123456789+-() .", r) {
			return invalidf("phone may hold digits, spaces and + - ( ) . only")
		}
	}
	return nil
}

func validFacts(f map[string]any) error {
	if len(f) > 64 {
		return invalidf("facts holds more than 64 entries")
	}
	for k, v := range f {
		if k == "" || len(k) > 64 || !utf8.ValidString(k) {
			return invalidf("fact names must be 1-64 characters")
		}
		switch v := v.(type) {
		case string:
			if err := validText("fact "+k, v, 256); err != nil {
				return err
			}
		case json.Number, float64, bool, nil:
		default:
			return invalidf("fact %s must be a string, number or boolean", k)
		}
	}
	return nil
}

// accountView is the audit's picture of an account: contact data, never password or facts.
func accountView(a Account) map[string]any {
	return map[string]any{"email": a.Email, "display_name": a.DisplayName, "phone": a.Phone, "staff": a.Staff}
}

// UpsertAccount creates or updates an account and reports whether it was created.
func (s *Service) UpsertAccount(ctx context.Context, actor Actor, id string, in AccountInput) (Account, bool, error) {
	if err := CheckAccountID(id); err != nil {
		return Account{}, false, err
	}
	if in.Email != nil {
		if err := validEmail(*in.Email); err != nil {
			return Account{}, false, err
		}
	}
	if in.DisplayName != nil {
		if err := validText("display_name", *in.DisplayName, 128); err != nil {
			return Account{}, false, err
		}
	}
	if in.Phone != nil && *in.Phone != "" {
		if err := validPhone(*in.Phone); err != nil {
			return Account{}, false, err
		}
	}
	var pwHash string
	if in.Password != nil {
		if n := utf8.RuneCountInString(*in.Password); n < 8 || len(*in.Password) > 1024 || !utf8.ValidString(*in.Password) {
			return Account{}, false, invalidf("password must be 8 to 1024 characters of valid UTF-8")
		}
		var err error
		if pwHash, err = HashPassword(*in.Password); err != nil { // slow: outside the transaction
			return Account{}, false, err
		}
	}
	var factsJSON []byte
	if in.Facts != nil {
		if err := validFacts(in.Facts); err != nil {
			return Account{}, false, err
		}
		var err error
		if factsJSON, err = canonicalJSON(in.Facts); err != nil {
			return Account{}, false, invalidf("facts: %v", err)
		}
	}
	now := s.now()
	var out Account
	var created bool
	err := s.update(ctx, func(tx Tx) (error, error) {
		a, err := tx.Account(id)
		created = errors.Is(err, ErrNotFound)
		if err != nil && !created {
			return nil, err
		}
		before := a
		if created {
			if in.Email == nil {
				return invalidf("email is required for a new account"), nil
			}
			a = Account{ID: id, CreatedAt: now}
		}
		if in.Email != nil && *in.Email != a.Email {
			key := strings.ToLower(*in.Email)
			other, err := tx.AccountByEmail(key)
			if err == nil && other.ID != id {
				return ErrEmailTaken, nil
			}
			if err != nil && !errors.Is(err, ErrNotFound) {
				return nil, err
			}
			if !created {
				a.EmailChangedAt = now
			}
			a.Email, a.EmailKey = *in.Email, key
		}
		if in.Phone != nil && *in.Phone != a.Phone {
			if !created {
				a.PhoneChangedAt = now
			}
			a.Phone = *in.Phone
		}
		if in.DisplayName != nil {
			a.DisplayName = *in.DisplayName
		}
		if in.Staff != nil {
			a.Staff = *in.Staff
		}
		if pwHash != "" {
			a.PasswordHash = pwHash
		}
		var factKeys []string
		if factsJSON != nil {
			if a.FactsSealed, err = s.keys.Seal(factsJSON, id, PurposeFacts); err != nil {
				return nil, err
			}
			for k := range in.Facts {
				factKeys = append(factKeys, k)
			}
			sort.Strings(factKeys)
		}
		a.UpdatedAt = now
		if err := tx.PutAccount(a); err != nil {
			if errors.Is(err, ErrEmailTaken) {
				return ErrEmailTaken, nil
			}
			return nil, err
		}
		details := map[string]any{"after": accountView(a), "password_changed": pwHash != ""}
		action := "account.created"
		if !created {
			action = "account.updated"
			details["before"] = accountView(before)
		}
		if factKeys != nil {
			details["facts_set"] = factKeys // names only, never values
		}
		if err := newAuditLog(tx, now, actor).add(action, "account", id, details); err != nil {
			return nil, err
		}
		out = a
		return nil, nil
	})
	return out, created, err
}

// Account returns a stored account.
func (s *Service) Account(ctx context.Context, id string) (Account, error) {
	var a Account
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		a, err = tx.Account(id)
		return err
	})
	return a, err
}

// AccountFacts opens an account's facts (for checklist comparisons; never shown to agents).
func (s *Service) AccountFacts(a Account) (map[string]any, error) {
	if a.FactsSealed == "" {
		return map[string]any{}, nil
	}
	raw, err := s.keys.Open(a.FactsSealed, a.ID, PurposeFacts)
	if err != nil {
		return nil, err
	}
	var f map[string]any
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, err
	}
	return f, nil
}
