package sqlstore

// RestoreTokenTables maps each kind of single-use token to its table, for the test that keeps
// the list complete.
var RestoreTokenTables = restoreTokenTables
