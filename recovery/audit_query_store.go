package recovery

// AuditQueryReadTx is the part of ReadTx that searches the audit chain for the console.
type AuditQueryReadTx interface {
}
