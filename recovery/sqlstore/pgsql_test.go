package sqlstore

import "testing"

// TestPgSQL checks the placeholder rewrite the PostgreSQL writer uses instead of gorm's.
func TestPgSQL(t *testing.T) {
	for q, want := range map[string]string{
		"SELECT 1": "SELECT 1",
		"UPDATE factors SET last_step = ?, updated_at = ? WHERE account_id = ? AND last_step < ?":  "UPDATE factors SET last_step = $1, updated_at = $2 WHERE account_id = $3 AND last_step < $4",
		"INSERT INTO t (a, b, c, d, e, f, g, h, i, j, k) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)": "INSERT INTO t (a, b, c, d, e, f, g, h, i, j, k) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
	} {
		if got := pgSQL(q); got != want {
			t.Errorf("pgSQL(%q) = %q, want %q", q, got, want)
		}
	}
}
